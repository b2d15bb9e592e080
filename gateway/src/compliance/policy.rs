//! Compiled compliance policies (product brief section 4): platform, threat level, grace
//! period and assignment targets, indexed by platform for evaluation.

use crate::ids::GroupId;
use crate::model::{Platform, Risk};

use super::device::DeviceFacts;

/// Who a policy is assigned to. Exclusion beats inclusion.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Assignments {
    /// `allDevicesAssignmentTarget`.
    pub all_devices: bool,
    /// `allLicensedUsersAssignmentTarget`: devices with a primary user.
    pub all_licensed_users: bool,
    /// `groupAssignmentTarget` group ids, sorted.
    pub include_groups: Vec<GroupId>,
    /// `exclusionGroupAssignmentTarget` group ids, sorted.
    pub exclude_groups: Vec<GroupId>,
}

impl Assignments {
    /// Whether the policy is assigned to this device (included and not excluded).
    pub fn covers(&self, device: &DeviceFacts<'_>) -> bool {
        let included = self.all_devices
            || (self.all_licensed_users && device.has_user)
            || self.include_groups.iter().any(|g| device.in_group(*g));
        included && !self.exclude_groups.iter().any(|g| device.in_group(*g))
    }
}

/// One compliance policy in core form.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct CompliancePolicy {
    pub id: String,
    pub display_name: String,
    pub platform: Platform,
    /// The highest allowed risk when threat protection is on with a level of
    /// secured/low/medium/high; `None` = no threat check.
    pub max_risk: Option<Risk>,
    /// Grace period of the block action in hours; 0 (or no block action) = none.
    pub grace_hours: u32,
    pub assignments: Assignments,
    /// Kept for display; the MDM evaluates these and reports through `complianceState`.
    pub os_minimum_version: Option<String>,
    pub storage_require_encryption: Option<bool>,
}

/// All compliance policies, grouped by platform.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct CompliancePolicies {
    by_platform: [Vec<CompliancePolicy>; Platform::ALL.len()],
}

impl CompliancePolicies {
    pub fn new(policies: impl IntoIterator<Item = CompliancePolicy>) -> Self {
        let mut out = Self::default();
        for p in policies {
            out.by_platform[platform_index(p.platform)].push(p);
        }
        out
    }

    /// The policies for one platform.
    pub fn for_platform(&self, platform: Platform) -> &[CompliancePolicy] {
        &self.by_platform[platform_index(platform)]
    }

    pub fn iter(&self) -> impl Iterator<Item = &CompliancePolicy> {
        self.by_platform.iter().flatten()
    }

    pub fn len(&self) -> usize {
        self.by_platform.iter().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

const fn platform_index(p: Platform) -> usize {
    match p {
        Platform::Windows => 0,
        Platform::Android => 1,
        Platform::Ios => 2,
        Platform::MacOs => 3,
        Platform::Linux => 4,
        Platform::Other => 5,
    }
}
