//! Every reason code a decision, a compliance state or an identity failure can carry, defined
//! once. The codes are the strings operators see in deny pages, logs, metrics labels and the
//! admin API, so they form a small fixed set.

use std::fmt;

macro_rules! reasons {
    ($($variant:ident => $code:literal, $words:literal;)*) => {
        /// A reason code. `as_str` is the stable machine spelling; `describe` plain words for
        /// a person.
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
        pub enum ReasonCode {
            $($variant,)*
        }

        impl ReasonCode {
            pub const ALL: &'static [ReasonCode] = &[$(ReasonCode::$variant,)*];

            pub const fn as_str(self) -> &'static str {
                match self {
                    $(ReasonCode::$variant => $code,)*
                }
            }

            /// A sentence for the person who was refused; never names policy internals.
            pub const fn describe(self) -> &'static str {
                match self {
                    $(ReasonCode::$variant => $words,)*
                }
            }

            pub fn parse(text: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|r| r.as_str() == text)
            }
        }
    };
}

reasons! {
    // Allowed.
    PolicySatisfied => "policy_satisfied", "Every access policy that applies to this request is satisfied.";
    UnprotectedAllowed => "unprotected_allowed", "No access policy covers this app and the gateway is configured to let such requests through.";
    // Conditional access.
    BlockedByPolicy => "blocked_by_policy", "An access policy blocks this request.";
    NotProtected => "not_protected", "No access policy covers this app, and apps are closed unless a policy opens them.";
    MfaRequired => "mfa_required", "This app requires multi-factor authentication; sign in again with MFA.";
    DomainJoinRequired => "domain_join_required", "This app requires a domain-joined (hybrid joined) device.";
    ControlUnsatisfiable => "control_unsatisfiable", "An access policy requires a control this gateway cannot satisfy.";
    // Device compliance.
    DeviceMissing => "device_missing", "The request did not say which device it came from; use a registered device.";
    DeviceUnknown => "device_unknown", "This device is not enrolled in device management.";
    DeviceNotManaged => "device_not_managed", "This device is registered but not managed.";
    CheckinStale => "checkin_stale", "This device has not checked in with device management recently; sync it.";
    NoPolicyAssigned => "no_policy_assigned", "No compliance policy is assigned to this device, and unassigned devices count as noncompliant.";
    MdmNoncompliant => "mdm_noncompliant", "Device management reports this device as noncompliant.";
    RiskAboveThreshold => "risk_above_threshold", "This device's security risk is higher than allowed.";
    RiskUnavailable => "risk_unavailable", "No current security risk assessment is available for this device.";
    InGracePeriod => "in_grace_period", "This device fails a compliance rule but is still within its grace period.";
    DeviceMismatch => "device_mismatch", "The device certificate and the sign-in token name different devices.";
    // Identity.
    TokenMissing => "token_missing", "Sign in first: the request carried no access token.";
    TokenInvalid => "token_invalid", "The access token is not valid; sign in again.";
    TokenExpired => "token_expired", "The access token has expired; sign in again.";
    TokenNotYetValid => "token_not_yet_valid", "The access token is not valid yet; check the device clock.";
    TokenWrongAudience => "token_wrong_audience", "The access token was issued for another application.";
    TokenWrongIssuer => "token_wrong_issuer", "The access token was issued by an untrusted issuer.";
    GroupsOverage => "groups_overage", "The account is in too many groups for the token to list them; ask an administrator.";
    CertificateInvalid => "certificate_invalid", "The device certificate is not valid.";
    // Gateway state.
    SnapshotStale => "snapshot_stale", "The gateway's device data is out of date, so it is refusing access until it catches up.";
    NotReady => "not_ready", "The gateway is starting and has no device data yet.";
}

impl fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A small set of reason codes (a bitset), `Copy` and allocation-free: what a compliance state
/// carries.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ReasonSet(u64);

impl ReasonSet {
    pub const EMPTY: Self = Self(0);

    pub const fn with(self, code: ReasonCode) -> Self {
        Self(self.0 | (1 << code as u32))
    }

    pub fn insert(&mut self, code: ReasonCode) {
        *self = self.with(code);
    }

    pub const fn contains(self, code: ReasonCode) -> bool {
        self.0 & (1 << code as u32) != 0
    }

    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The codes in declaration order.
    pub fn iter(self) -> impl Iterator<Item = ReasonCode> {
        ReasonCode::ALL
            .iter()
            .copied()
            .filter(move |c| self.contains(*c))
    }

    /// The first code in declaration order: the one a denial names.
    pub fn first(self) -> Option<ReasonCode> {
        self.iter().next()
    }
}

impl fmt::Debug for ReasonSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_round_trip() {
        assert!(ReasonCode::ALL.len() < 64, "ReasonSet is a u64 bitset");
        for (i, a) in ReasonCode::ALL.iter().enumerate() {
            assert_eq!(ReasonCode::parse(a.as_str()), Some(*a));
            for b in &ReasonCode::ALL[i + 1..] {
                assert_ne!(a.as_str(), b.as_str());
            }
        }
    }

    #[test]
    fn set_keeps_declaration_order() {
        let set = ReasonSet::EMPTY
            .with(ReasonCode::RiskAboveThreshold)
            .with(ReasonCode::CheckinStale);
        assert_eq!(
            set.iter().collect::<Vec<_>>(),
            vec![ReasonCode::CheckinStale, ReasonCode::RiskAboveThreshold]
        );
        assert_eq!(set.first(), Some(ReasonCode::CheckinStale));
        assert!(!set.contains(ReasonCode::DeviceUnknown));
    }
}
