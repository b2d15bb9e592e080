//! A device as the inventory (Graph `managedDevice`) describes it, in core types, and the few
//! facts compliance evaluation reads from it.

use crate::clock::UnixMillis;
use crate::ids::{DeviceId, GroupId, UserId};
use crate::model::{Platform, TrustType};

/// The compliance state the MDM itself reports (`complianceState`). Only `Noncompliant`
/// influences our evaluation (as `mdm_noncompliant`); the rest is kept for display.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub enum MdmState {
    Compliant,
    Noncompliant,
    InGracePeriod,
    Conflict,
    Error,
    ConfigManager,
    #[default]
    Unknown,
}

impl MdmState {
    pub const ALL: [MdmState; 7] = [
        MdmState::Compliant,
        MdmState::Noncompliant,
        MdmState::InGracePeriod,
        MdmState::Conflict,
        MdmState::Error,
        MdmState::ConfigManager,
        MdmState::Unknown,
    ];

    /// Graph's spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            MdmState::Compliant => "compliant",
            MdmState::Noncompliant => "noncompliant",
            MdmState::InGracePeriod => "inGracePeriod",
            MdmState::Conflict => "conflict",
            MdmState::Error => "error",
            MdmState::ConfigManager => "configManager",
            MdmState::Unknown => "unknown",
        }
    }

    /// Reads Graph's spelling, case-insensitively.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(text.trim()))
    }
}

/// Who owns the device (`managedDeviceOwnerType`; `device.deviceOwnership` in device filters).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub enum Ownership {
    Company,
    Personal,
    #[default]
    Unknown,
}

impl Ownership {
    /// The device-filter spelling (`Company`, `Personal`); `None` when unknown.
    pub const fn as_str(self) -> Option<&'static str> {
        match self {
            Ownership::Company => Some("Company"),
            Ownership::Personal => Some("Personal"),
            Ownership::Unknown => None,
        }
    }

    /// Reads Graph's `managedDeviceOwnerType` (`company`, `personal`, `unknown`).
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "company" => Some(Ownership::Company),
            "personal" => Some(Ownership::Personal),
            "" | "unknown" => Some(Ownership::Unknown),
            _ => None,
        }
    }
}

/// `extensionAttribute1` .. `extensionAttribute15`; rare, so kept boxed.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Default)]
pub struct ExtensionAttributes(pub [Option<Box<str>>; 15]);

impl ExtensionAttributes {
    /// Attribute `n` (1-based, as Graph numbers them).
    pub fn get(&self, n: usize) -> Option<&str> {
        n.checked_sub(1)
            .and_then(|i| self.0.get(i))
            .and_then(|v| v.as_deref())
    }

    pub fn is_empty(&self) -> bool {
        self.0.iter().all(Option::is_none)
    }
}

/// One inventory record. `groups` is sorted and free of duplicates (see `DeviceRecord::new`
/// callers: the parser and the bench generator normalise it with `normalise_groups`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceRecord {
    pub id: DeviceId,
    pub display_name: String,
    pub platform: Platform,
    pub os_version: String,
    pub managed: bool,
    pub user: Option<UserId>,
    /// `memberOf`: group ids of the device and of its primary user, sorted, no duplicates.
    pub groups: Vec<GroupId>,
    /// `lastSyncDateTime`; `None` when the device never checked in.
    pub last_sync: Option<UnixMillis>,
    pub mdm_state: MdmState,
    pub trust_type: TrustType,
    pub ownership: Ownership,
    pub model: String,
    pub manufacturer: String,
    pub extension_attributes: Option<Box<ExtensionAttributes>>,
}

impl DeviceRecord {
    /// A managed device with no extras; the other fields can be set afterwards.
    pub fn new(id: DeviceId, platform: Platform) -> Self {
        Self {
            id,
            display_name: String::new(),
            platform,
            os_version: String::new(),
            managed: true,
            user: None,
            groups: Vec::new(),
            last_sync: None,
            mdm_state: MdmState::Unknown,
            trust_type: TrustType::None,
            ownership: Ownership::Unknown,
            model: String::new(),
            manufacturer: String::new(),
            extension_attributes: None,
        }
    }

    /// The facts evaluation reads.
    pub fn facts(&self) -> DeviceFacts<'_> {
        DeviceFacts {
            platform: self.platform,
            managed: self.managed,
            last_sync: self.last_sync,
            mdm_state: self.mdm_state,
            has_user: self.user.is_some(),
            groups: &self.groups,
        }
    }
}

/// Sorts and de-duplicates a group list so membership tests can binary-search it.
pub fn normalise_groups(groups: &mut Vec<GroupId>) {
    groups.sort_unstable();
    groups.dedup();
}

/// What compliance evaluation needs to know about a device, borrowed from wherever it is
/// stored (a `DeviceRecord` or a snapshot entry).
#[derive(Clone, Copy, Debug)]
pub struct DeviceFacts<'a> {
    pub platform: Platform,
    pub managed: bool,
    pub last_sync: Option<UnixMillis>,
    pub mdm_state: MdmState,
    /// Whether the device has a primary user (for `allLicensedUsers` targets).
    pub has_user: bool,
    /// Sorted group ids (`memberOf`).
    pub groups: &'a [GroupId],
}

impl DeviceFacts<'_> {
    pub fn in_group(&self, group: GroupId) -> bool {
        self.groups.binary_search(&group).is_ok()
    }
}
