//! The facts about one request that conditional access reads: who, which app, which client,
//! from where, on which device. All borrowed and `Copy`, built by the proxy per request with
//! no allocation.
//!
//! How the proxy tells them from a request:
//! - **Client app type** (`ClientAppType::from_request`): Exchange ActiveSync when the path is
//!   `/Microsoft-Server-ActiveSync` or the User-Agent is a known EAS client; `other` (legacy
//!   authentication) when the request carries `Authorization: Basic`; a browser when the
//!   User-Agent contains `Mozilla/` and no native-client marker; anything else (including a
//!   missing User-Agent) is `mobileAppsAndDesktopClients`.
//! - **Platform**: the device record's platform when the device is known, else
//!   `platform_from_user_agent`.

use std::fmt;
use std::net::IpAddr;

use crate::access::filter::FilterAttribute;
use crate::ids::{DeviceId, GroupId, UserId};
use crate::model::{ComplianceState, Platform, TrustType};
use crate::reason::ReasonSet;

/// Graph's `clientAppTypes` values.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum ClientAppType {
    Browser,
    MobileAppsAndDesktopClients,
    ExchangeActiveSync,
    Other,
}

/// User-Agent fragments of native clients whose User-Agent also says `Mozilla/`.
const NATIVE_MARKERS: [&str; 9] = [
    "Microsoft Office",
    "MSOffice",
    "Outlook-",
    "Microsoft Outlook",
    "MSAL",
    "OneDrive",
    "Teams/",
    "Skype",
    "ms-office",
];

/// User-Agent fragments of Exchange ActiveSync clients.
const EAS_MARKERS: [&str; 5] = [
    "ExchangeServicesClient",
    "Android-Mail",
    "Apple-iPhone",
    "Apple-iPad",
    "Microsoft-Server-ActiveSync",
];

impl ClientAppType {
    pub const ALL: [ClientAppType; 4] = [
        ClientAppType::Browser,
        ClientAppType::MobileAppsAndDesktopClients,
        ClientAppType::ExchangeActiveSync,
        ClientAppType::Other,
    ];

    /// Classifies a request (see the module doc for the rule). `basic_auth`: the request
    /// carries `Authorization: Basic` (legacy authentication).
    pub fn from_request(user_agent: Option<&str>, path: &str, basic_auth: bool) -> Self {
        let eas_path = starts_with_ignore_case(path, "/Microsoft-Server-ActiveSync");
        let ua = user_agent.unwrap_or("");
        if eas_path || EAS_MARKERS.iter().any(|m| contains_ignore_case(ua, m)) {
            ClientAppType::ExchangeActiveSync
        } else if basic_auth {
            ClientAppType::Other
        } else if ua.contains("Mozilla/")
            && !NATIVE_MARKERS.iter().any(|m| contains_ignore_case(ua, m))
        {
            ClientAppType::Browser
        } else {
            ClientAppType::MobileAppsAndDesktopClients
        }
    }

    /// Graph's `clientAppTypes` spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            ClientAppType::Browser => "browser",
            ClientAppType::MobileAppsAndDesktopClients => "mobileAppsAndDesktopClients",
            ClientAppType::ExchangeActiveSync => "exchangeActiveSync",
            ClientAppType::Other => "other",
        }
    }

    /// The sign-in log's `clientAppUsed` spelling.
    pub const fn log_name(self) -> &'static str {
        match self {
            ClientAppType::Browser => "Browser",
            ClientAppType::MobileAppsAndDesktopClients => "Mobile Apps and Desktop clients",
            ClientAppType::ExchangeActiveSync => "Exchange ActiveSync",
            ClientAppType::Other => "Other clients",
        }
    }

    pub(crate) const fn bit(self) -> u8 {
        1 << self as u8
    }
}

impl fmt::Display for ClientAppType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The platform a User-Agent names, if any (used when the device record is unknown).
pub fn platform_from_user_agent(user_agent: &str) -> Option<Platform> {
    let ua = user_agent;
    if contains_ignore_case(ua, "Windows Phone") {
        Some(Platform::Other)
    } else if contains_ignore_case(ua, "Android") {
        Some(Platform::Android)
    } else if ["iPhone", "iPad", "iPod", "iOS"]
        .iter()
        .any(|m| ua.contains(m))
    {
        Some(Platform::Ios)
    } else if contains_ignore_case(ua, "Windows") {
        Some(Platform::Windows)
    } else if ua.contains("Macintosh") || ua.contains("Mac OS X") || ua.contains("macOS") {
        Some(Platform::MacOs)
    } else if ua.contains("CrOS") {
        Some(Platform::Other)
    } else if contains_ignore_case(ua, "Linux") {
        Some(Platform::Linux)
    } else {
        None
    }
}

fn contains_ignore_case(haystack: &str, needle: &str) -> bool {
    let (h, n) = (haystack.as_bytes(), needle.as_bytes());
    n.is_empty() || h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
}

fn starts_with_ignore_case(text: &str, prefix: &str) -> bool {
    let (t, p) = (text.as_bytes(), prefix.as_bytes());
    t.len() >= p.len() && t[..p.len()].eq_ignore_ascii_case(p)
}

/// A device's descriptive text attributes: display name, operating system and version,
/// ownership, model, manufacturer, `extensionAttribute1..15`. Only device filters (and the
/// sign-in log) read them, so the snapshot hands over a view that looks each one up when
/// asked: a decision whose policies name none of them never touches the device's strings
/// (a cold memory access per string at a million devices).
pub trait DeviceAttributes: fmt::Debug + Sync {
    /// The attribute's text, `None` when null. Asked only for the text attributes above.
    fn text(&self, attribute: &FilterAttribute) -> Option<&str>;
}

/// Device attributes given as values (tests, benchmarks, hand-made what-if devices).
#[derive(Clone, Copy, Debug, Default)]
pub struct DeviceText<'a> {
    pub display_name: Option<&'a str>,
    /// Graph's `operatingSystem` as recorded ("Windows", "iOS", ...).
    pub operating_system: Option<&'a str>,
    pub os_version: Option<&'a str>,
    /// `deviceOwnership` ("Company", "Personal").
    pub ownership: Option<&'a str>,
    pub model: Option<&'a str>,
    pub manufacturer: Option<&'a str>,
    /// `extensionAttribute1..15` at index 0..14; shorter (or empty) slices mean null.
    pub extension_attributes: &'a [Option<&'a str>],
}

impl DeviceText<'static> {
    /// Every attribute null.
    pub const NONE: DeviceText<'static> = DeviceText {
        display_name: None,
        operating_system: None,
        os_version: None,
        ownership: None,
        model: None,
        manufacturer: None,
        extension_attributes: &[],
    };
}

impl DeviceAttributes for DeviceText<'_> {
    fn text(&self, attribute: &FilterAttribute) -> Option<&str> {
        match attribute {
            FilterAttribute::DisplayName => self.display_name,
            FilterAttribute::OperatingSystem => self.operating_system,
            FilterAttribute::OperatingSystemVersion => self.os_version,
            FilterAttribute::DeviceOwnership => self.ownership,
            FilterAttribute::Model => self.model,
            FilterAttribute::Manufacturer => self.manufacturer,
            FilterAttribute::ExtensionAttribute(n) => self
                .extension_attributes
                .get(usize::from(*n).wrapping_sub(1))
                .copied()
                .flatten(),
            _ => None,
        }
    }
}

/// What the gateway knows about the device a request came from (an inventory entry with its
/// computed compliance state). Built by the proxy from the snapshot; every field borrowed.
#[derive(Clone, Copy, Debug)]
pub struct DeviceFacts<'a> {
    pub id: DeviceId,
    pub state: ComplianceState,
    /// The compliance state's reason codes (the first one names a denial).
    pub reasons: ReasonSet,
    /// `None` when the record does not say.
    pub platform: Option<Platform>,
    pub trust_type: TrustType,
    pub managed: bool,
    /// The text attributes, read only when asked.
    pub attributes: &'a dyn DeviceAttributes,
}

impl<'a> DeviceFacts<'a> {
    /// A known device with only the fields every record has; the rest null.
    pub const fn new(id: DeviceId, state: ComplianceState, reasons: ReasonSet) -> Self {
        Self {
            id,
            state,
            reasons,
            platform: None,
            trust_type: TrustType::None,
            managed: false,
            attributes: &DeviceText::NONE,
        }
    }

    /// Graph's `operatingSystem`: as recorded, else the platform's name.
    pub fn operating_system(&self) -> Option<&'a str> {
        self.attributes
            .text(&FilterAttribute::OperatingSystem)
            .or_else(|| self.platform.map(Platform::as_str))
    }

    /// `isCompliant` as device filters and the sign-in log see it.
    pub const fn is_compliant(&self) -> bool {
        self.state.satisfies_compliant_device()
    }

    /// A filter attribute's value; `buf` holds the formatted device id when asked for it.
    pub(crate) fn filter_attribute<'b>(
        &'b self,
        attribute: FilterAttribute,
        buf: &'b mut [u8; 36],
    ) -> Option<&'b str> {
        match attribute {
            FilterAttribute::DeviceId => Some(
                uuid::Uuid::from_u128(self.id.as_u128())
                    .hyphenated()
                    .encode_lower(buf),
            ),
            FilterAttribute::OperatingSystem => self.operating_system(),
            FilterAttribute::TrustType => self.trust_type.as_str(),
            FilterAttribute::IsCompliant => match self.state {
                ComplianceState::Unknown => None,
                s if s.satisfies_compliant_device() => Some("True"),
                _ => Some("False"),
            },
            FilterAttribute::DisplayName
            | FilterAttribute::OperatingSystemVersion
            | FilterAttribute::DeviceOwnership
            | FilterAttribute::Model
            | FilterAttribute::Manufacturer
            | FilterAttribute::ExtensionAttribute(_) => self.attributes.text(&attribute),
            FilterAttribute::Unsupported(_) => None,
        }
    }
}

/// Everything conditional access reads about one request.
#[derive(Clone, Copy, Debug)]
pub struct RequestFacts<'a> {
    /// The signed-in user (token `oid`); `None` for an anonymous request. An anonymous request
    /// is in scope only of policies that include `All` users (no exclusion can name it), so
    /// an all-users policy still guards it.
    pub user: Option<UserId>,
    /// The user's groups (token `groups`).
    pub groups: &'a [GroupId],
    /// The token's `amr` contains `mfa`.
    pub mfa: bool,
    /// The app the route fronts.
    pub app: crate::ids::AppId,
    pub client_app: ClientAppType,
    /// The platform the User-Agent names (`platform_from_user_agent`); the device record's
    /// platform wins when known.
    pub ua_platform: Option<Platform>,
    pub ip: IpAddr,
    /// The device's inventory entry; `None` when no device was presented or it is not in the
    /// inventory.
    pub device: Option<DeviceFacts<'a>>,
    /// The request named a device (token `deviceid` or client certificate). Decides between
    /// `device_missing` (false) and `device_unknown` (true) when `device` is `None`.
    pub device_presented: bool,
}

impl RequestFacts<'_> {
    /// The platform conditions see: the device record's, else the User-Agent's.
    pub fn platform(&self) -> Option<Platform> {
        self.device.and_then(|d| d.platform).or(self.ua_platform)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const EXTENSIONS: [Option<&str>; 15] = {
        let mut e = [None; 15];
        e[0] = Some("kiosk");
        e
    };

    /// The test device used across the access tests.
    pub(crate) fn device() -> DeviceFacts<'static> {
        let id = DeviceId::from_u128(0x11111111_2222_3333_4444_555555555555);
        static TEXT: DeviceText<'static> = DeviceText {
            display_name: Some("Finance-Laptop-7"),
            operating_system: Some("Windows"),
            os_version: Some("10.0.22631.4460"),
            ownership: Some("Company"),
            model: Some("Surface Laptop 5"),
            manufacturer: Some("Microsoft"),
            extension_attributes: &EXTENSIONS,
        };
        DeviceFacts {
            platform: Some(Platform::Windows),
            trust_type: TrustType::AzureAd,
            managed: true,
            attributes: &TEXT,
            ..DeviceFacts::new(id.unwrap(), ComplianceState::Compliant, ReasonSet::EMPTY)
        }
    }

    fn check_client(ua: Option<&str>, path: &str, basic: bool, expected: ClientAppType) {
        assert_eq!(
            ClientAppType::from_request(ua, path, basic),
            expected,
            "{ua:?} {path}"
        );
    }

    #[test]
    fn client_app_types() {
        use ClientAppType::*;
        let edge = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0";
        for (ua, path, basic, expected) in [
            (Some(edge), "/", false, Browser),
            (
                Some("Mozilla/5.0 (Windows NT 10.0; Microsoft Outlook 16.0.17928; ms-office)"),
                "/",
                false,
                MobileAppsAndDesktopClients,
            ),
            (
                Some("Mozilla/5.0 (Windows NT 10.0) Teams/24295.605.3225.8804"),
                "/",
                false,
                MobileAppsAndDesktopClients,
            ),
            (
                Some("Microsoft Office/16.0 (Windows NT 10.0; Microsoft Excel 16.0)"),
                "/",
                false,
                MobileAppsAndDesktopClients,
            ),
            (Some("curl/8.5.0"), "/", false, MobileAppsAndDesktopClients),
            (None, "/", false, MobileAppsAndDesktopClients),
            (
                Some(edge),
                "/Microsoft-Server-ActiveSync?Cmd=Sync",
                false,
                ExchangeActiveSync,
            ),
            (
                Some("Android-Mail/2024.09.01"),
                "/",
                false,
                ExchangeActiveSync,
            ),
            (
                Some("Apple-iPhone15C2/2104.100"),
                "/",
                false,
                ExchangeActiveSync,
            ),
            (Some(edge), "/EWS/Exchange.asmx", true, Other),
            (None, "/", true, Other),
        ] {
            check_client(ua, path, basic, expected);
        }
    }

    #[test]
    fn platforms_from_user_agents() {
        for (ua, expected) in [
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/131.0",
                Some(Platform::Windows),
            ),
            (
                "Mozilla/5.0 (Linux; Android 14; Pixel 8) Chrome/131.0 Mobile",
                Some(Platform::Android),
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) Safari/604.1",
                Some(Platform::Ios),
            ),
            (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) Safari/605.1.15",
                Some(Platform::MacOs),
            ),
            (
                "Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Firefox/132.0",
                Some(Platform::Linux),
            ),
            (
                "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) Chrome/131.0",
                Some(Platform::Other),
            ),
            ("curl/8.5.0", None),
        ] {
            assert_eq!(platform_from_user_agent(ua), expected, "{ua}");
        }
    }

    #[test]
    fn device_platform_wins_over_user_agent() {
        let d = device();
        let mut req = crate::access::decision::tests::request();
        req.ua_platform = Some(Platform::Ios);
        req.device = Some(d);
        assert_eq!(req.platform(), Some(Platform::Windows));
        req.device = None;
        assert_eq!(req.platform(), Some(Platform::Ios));
    }
}
