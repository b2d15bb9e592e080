//! The shared vocabulary of the decision core: risk levels, platforms, compliance states.
//! Plain data with no I/O; every other module speaks in these types.

use std::fmt;

/// A device's risk as the endpoint-security feed reports it (product brief section 3).
/// Ordered `Secured < Low < Medium < High`; `Unavailable` means no data and is not ordered
/// against the others (a threat check treats it as a failure of its own).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub enum Risk {
    Secured,
    Low,
    Medium,
    High,
    #[default]
    Unavailable,
}

impl Risk {
    pub const ALL: [Risk; 5] = [
        Risk::Secured,
        Risk::Low,
        Risk::Medium,
        Risk::High,
        Risk::Unavailable,
    ];

    /// The rank of a known level (`Secured` = 0 .. `High` = 3); `None` for `Unavailable`.
    pub const fn rank(self) -> Option<u8> {
        match self {
            Risk::Secured => Some(0),
            Risk::Low => Some(1),
            Risk::Medium => Some(2),
            Risk::High => Some(3),
            Risk::Unavailable => None,
        }
    }

    /// The spelling used in Graph, Defender signals and our APIs.
    pub const fn as_str(self) -> &'static str {
        match self {
            Risk::Secured => "secured",
            Risk::Low => "low",
            Risk::Medium => "medium",
            Risk::High => "high",
            Risk::Unavailable => "unavailable",
        }
    }

    /// Parses our spelling, case-insensitively.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(text))
    }
}

impl fmt::Display for Risk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Operating system families that compliance policies and conditional access know.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Platform {
    Windows,
    Android,
    Ios,
    MacOs,
    Linux,
    Other,
}

impl Platform {
    pub const ALL: [Platform; 6] = [
        Platform::Windows,
        Platform::Android,
        Platform::Ios,
        Platform::MacOs,
        Platform::Linux,
        Platform::Other,
    ];

    /// The spelling of Graph's `operatingSystem` and conditional access's `platforms`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Platform::Windows => "windows",
            Platform::Android => "android",
            Platform::Ios => "iOS",
            Platform::MacOs => "macOS",
            Platform::Linux => "linux",
            Platform::Other => "other",
        }
    }

    /// Reads Graph's `operatingSystem` ("Windows", "iOS", "iPadOS", "macOS", "Android",
    /// "AndroidForWork", "Linux", ...), case-insensitively. Unknown names are `Other`.
    pub fn from_graph(text: &str) -> Self {
        let t = text.trim().to_ascii_lowercase();
        if t.starts_with("windows") {
            Platform::Windows
        } else if t.starts_with("android") {
            Platform::Android
        } else if t == "ios" || t == "ipados" {
            Platform::Ios
        } else if t == "macos" || t == "mac os x" || t == "osx" {
            Platform::MacOs
        } else if t.starts_with("linux") || t == "ubuntu" {
            Platform::Linux
        } else {
            Platform::Other
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A device's computed compliance state (product brief section 3). Computed when the snapshot
/// is built or a device's risk changes, never per request.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum ComplianceState {
    Compliant,
    /// Failing a policy whose block action has a grace period that has not run out yet:
    /// still allowed.
    InGracePeriod,
    Noncompliant,
    /// Not in the inventory.
    Unknown,
}

impl ComplianceState {
    pub const ALL: [ComplianceState; 4] = [
        ComplianceState::Compliant,
        ComplianceState::InGracePeriod,
        ComplianceState::Noncompliant,
        ComplianceState::Unknown,
    ];

    /// Whether `compliantDevice` is satisfied by this state.
    pub const fn satisfies_compliant_device(self) -> bool {
        matches!(
            self,
            ComplianceState::Compliant | ComplianceState::InGracePeriod
        )
    }

    /// Graph's spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            ComplianceState::Compliant => "compliant",
            ComplianceState::InGracePeriod => "inGracePeriod",
            ComplianceState::Noncompliant => "noncompliant",
            ComplianceState::Unknown => "unknown",
        }
    }
}

impl fmt::Display for ComplianceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a device is joined to Entra (`device.trustType` in device filters).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub enum TrustType {
    /// Entra joined (`AzureAD`).
    AzureAd,
    /// Hybrid joined (`ServerAD`): what `domainJoinedDevice` requires.
    ServerAd,
    /// Entra registered (`Workplace`).
    Workplace,
    #[default]
    None,
}

impl TrustType {
    pub const fn as_str(self) -> Option<&'static str> {
        match self {
            TrustType::AzureAd => Some("AzureAD"),
            TrustType::ServerAd => Some("ServerAD"),
            TrustType::Workplace => Some("Workplace"),
            TrustType::None => None,
        }
    }

    /// Reads Graph's `joinType` / `trustType` spellings, case-insensitively.
    pub fn parse(text: &str) -> Option<Self> {
        let t = text.trim().to_ascii_lowercase();
        match t.as_str() {
            "azuread" | "azureadjoined" | "entrajoined" => Some(TrustType::AzureAd),
            "serverad" | "hybridazureadjoined" | "hybridentrajoined" | "domainjoined" => {
                Some(TrustType::ServerAd)
            }
            "workplace" | "azureadregistered" | "entraregistered" => Some(TrustType::Workplace),
            "" | "none" | "unknown" => Some(TrustType::None),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn risk_order_and_spelling() {
        assert!(Risk::Secured.rank() < Risk::Low.rank());
        assert!(Risk::Medium.rank() < Risk::High.rank());
        assert_eq!(Risk::Unavailable.rank(), None);
        for r in Risk::ALL {
            assert_eq!(Risk::parse(r.as_str()), Some(r));
        }
        assert_eq!(Risk::parse("HIGH"), Some(Risk::High));
        assert_eq!(Risk::parse("severe"), None);
    }

    #[test]
    fn platforms_from_graph_names() {
        assert_eq!(Platform::from_graph("Windows"), Platform::Windows);
        assert_eq!(Platform::from_graph("iPadOS"), Platform::Ios);
        assert_eq!(Platform::from_graph("AndroidForWork"), Platform::Android);
        assert_eq!(Platform::from_graph("macOS"), Platform::MacOs);
        assert_eq!(Platform::from_graph("Plan9"), Platform::Other);
    }

    #[test]
    fn grace_period_satisfies_compliant_device() {
        assert!(ComplianceState::InGracePeriod.satisfies_compliant_device());
        assert!(!ComplianceState::Unknown.satisfies_compliant_device());
    }
}
