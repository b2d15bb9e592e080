//! Tenant-wide compliance settings (Graph `deviceManagement/settings`) plus Portcullis's
//! own risk max age.

/// Tenant settings. Portcullis's default for `secure_by_default` is **true** (Intune's is
/// false): a device with no compliance policy assigned is noncompliant.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct TenantSettings {
    /// `secureByDefault`: a device with no policy assigned is noncompliant.
    pub secure_by_default: bool,
    /// `deviceComplianceCheckinThresholdDays`: a device that has not checked in for longer
    /// is noncompliant (`checkin_stale`).
    pub checkin_threshold_days: u16,
    /// From `[sources] risk_max_age`: an observation older than this counts as `unavailable`.
    pub risk_max_age_ms: Option<i64>,
}

impl TenantSettings {
    pub const DEFAULT_CHECKIN_THRESHOLD_DAYS: u16 = 30;
}

impl Default for TenantSettings {
    fn default() -> Self {
        Self {
            secure_by_default: true,
            checkin_threshold_days: Self::DEFAULT_CHECKIN_THRESHOLD_DAYS,
            risk_max_age_ms: None,
        }
    }
}
