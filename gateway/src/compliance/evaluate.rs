//! The compliance evaluation of product brief section 3, as pure functions: a device's
//! inventory facts, its risk, the policies and tenant settings in; a small `Compliance` out,
//! including the time at which the result would change by time alone (`valid_until`), so
//! the snapshot re-evaluates exactly when needed.

use crate::clock::UnixMillis;
use crate::model::{ComplianceState, Risk};
use crate::reason::{ReasonCode, ReasonSet};

use super::device::{DeviceFacts, DeviceRecord, MdmState};
use super::policy::CompliancePolicies;
use super::risk::RiskObservation;
use super::settings::TenantSettings;

/// A device's computed compliance: state, reasons and the details a denial or the admin
/// explain needs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Compliance {
    pub state: ComplianceState,
    pub reasons: ReasonSet,
    pub details: ComplianceDetails,
    /// When this result would change by time alone (grace running out, check-in going
    /// stale, the risk observation ageing out); `None` = never.
    pub valid_until: Option<UnixMillis>,
}

/// Details behind the reasons.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct ComplianceDetails {
    /// The risk the evaluation used (`unavailable` when none or too old).
    pub observed_risk: Risk,
    /// For `risk_above_threshold`: the strictest allowed level among the failing policies.
    pub allowed_risk: Option<Risk>,
    /// For `in_grace_period`: when the device becomes noncompliant.
    pub grace_until: Option<UnixMillis>,
    /// Since when the device has been failing a policy (grace runs from here); carry it
    /// into the next evaluation.
    pub failing_since: Option<UnixMillis>,
}

impl Compliance {
    /// A device that is not in the inventory.
    pub const UNKNOWN: Self = Self {
        state: ComplianceState::Unknown,
        reasons: ReasonSet::EMPTY.with(ReasonCode::DeviceUnknown),
        details: ComplianceDetails {
            observed_risk: Risk::Unavailable,
            allowed_risk: None,
            grace_until: None,
            failing_since: None,
        },
        valid_until: None,
    };
}

/// Evaluates one device. `failing_since` is the previous result's
/// `details.failing_since` (`None` for a device seen for the first time).
pub fn evaluate(
    device: Option<&DeviceRecord>,
    risk: RiskObservation,
    failing_since: Option<UnixMillis>,
    policies: &CompliancePolicies,
    settings: &TenantSettings,
    now: UnixMillis,
) -> Compliance {
    evaluate_facts(
        device.map(DeviceRecord::facts),
        risk,
        failing_since,
        policies,
        settings,
        now,
    )
}

/// `evaluate` over borrowed facts (what the snapshot stores).
pub fn evaluate_facts(
    device: Option<DeviceFacts<'_>>,
    risk: RiskObservation,
    failing_since: Option<UnixMillis>,
    policies: &CompliancePolicies,
    settings: &TenantSettings,
    now: UnixMillis,
) -> Compliance {
    let Some(device) = device else {
        return Compliance::UNKNOWN;
    };
    let expires_at = risk_expires_at(risk, settings);
    let (observed_risk, expires_at) = match expires_at {
        Some(at) if now >= at => (Risk::Unavailable, None),
        other => (risk.risk, other),
    };
    let mut details = ComplianceDetails {
        observed_risk,
        failing_since,
        ..ComplianceDetails::default()
    };
    let fixed = |code: ReasonCode, details: ComplianceDetails| Compliance {
        state: ComplianceState::Noncompliant,
        reasons: ReasonSet::EMPTY.with(code),
        details,
        valid_until: None,
    };
    if !device.managed {
        return fixed(ReasonCode::DeviceNotManaged, details);
    }
    let stale = match device.last_sync.map(|at| stale_at(at, settings)) {
        Some(stale) if now < stale => stale,
        _ => return fixed(ReasonCode::CheckinStale, details),
    };

    let mut assigned = false;
    let mut noncompliant = false;
    let mut reasons = ReasonSet::EMPTY;
    let mut grace_until: Option<UnixMillis> = None;
    if device.mdm_state == MdmState::Noncompliant {
        noncompliant = true;
        reasons.insert(ReasonCode::MdmNoncompliant);
    }
    for policy in policies.for_platform(device.platform) {
        if !policy.assignments.covers(&device) {
            continue;
        }
        assigned = true;
        let Some(max) = policy.max_risk else { continue };
        let failure = match (observed_risk.rank(), max.rank()) {
            (None, _) => ReasonCode::RiskUnavailable,
            (Some(seen), Some(allowed)) if seen > allowed => {
                details.allowed_risk = Some(match details.allowed_risk {
                    Some(prev) if prev.rank() < max.rank() => prev,
                    _ => max,
                });
                ReasonCode::RiskAboveThreshold
            }
            _ => continue,
        };
        reasons.insert(failure);
        let since = *details.failing_since.get_or_insert(now);
        let until = since.plus_hours(i64::from(policy.grace_hours));
        if policy.grace_hours > 0 && now < until {
            grace_until = Some(grace_until.map_or(until, |g| g.min(until)));
        } else {
            noncompliant = true;
        }
    }
    if reasons.contains(ReasonCode::MdmNoncompliant) {
        details.failing_since.get_or_insert(now);
    }

    let state = if !assigned && !reasons.contains(ReasonCode::MdmNoncompliant) {
        if settings.secure_by_default {
            reasons.insert(ReasonCode::NoPolicyAssigned);
            ComplianceState::Noncompliant
        } else {
            ComplianceState::Compliant
        }
    } else if noncompliant {
        ComplianceState::Noncompliant
    } else if grace_until.is_some() {
        reasons.insert(ReasonCode::InGracePeriod);
        details.grace_until = grace_until;
        ComplianceState::InGracePeriod
    } else {
        ComplianceState::Compliant
    };
    if state == ComplianceState::Compliant {
        details.failing_since = None;
    }
    Compliance {
        state,
        reasons,
        details,
        valid_until: deadline(stale, details.grace_until, expires_at),
    }
}

/// The first instant at which a device that last synced at `last_sync` is stale: its last
/// check-in is then older than the threshold.
pub fn stale_at(last_sync: UnixMillis, settings: &TenantSettings) -> UnixMillis {
    last_sync
        .plus_days(i64::from(settings.checkin_threshold_days))
        .plus_millis(1)
}

/// The first instant at which `risk` is too old to count (`None`: never, or nothing to age).
pub fn risk_expires_at(risk: RiskObservation, settings: &TenantSettings) -> Option<UnixMillis> {
    match (risk.risk, risk.observed_at, settings.risk_max_age_ms) {
        (Risk::Unavailable, _, _) => None,
        (_, Some(at), Some(max)) => Some(at.plus_millis(max).plus_millis(1)),
        _ => None,
    }
}

/// `valid_until` for a device in the inventory, managed and not stale: the earliest of its
/// check-in going stale, its grace running out and its risk ageing out (the latter two only
/// when still pending).
pub fn deadline(
    stale_at: UnixMillis,
    grace_until: Option<UnixMillis>,
    risk_expires_at: Option<UnixMillis>,
) -> Option<UnixMillis> {
    let mut at = stale_at;
    for t in [grace_until, risk_expires_at].into_iter().flatten() {
        at = at.min(t);
    }
    Some(at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compliance::device::DeviceRecord;
    use crate::compliance::policy::{Assignments, CompliancePolicy};
    use crate::ids::{DeviceId, GroupId, UserId};
    use crate::model::Platform;
    use ComplianceState::{Compliant, Noncompliant, Unknown};
    const GRACE: ComplianceState = ComplianceState::InGracePeriod;
    use ReasonCode::*;

    const DAY: i64 = 86_400_000;
    const HOUR: i64 = 3_600_000;
    const NOW: UnixMillis = UnixMillis(1_800_000_000_000);

    fn group(n: u128) -> GroupId {
        GroupId::from_u128(0xbbbb_0000 + n).unwrap()
    }

    fn policy(
        platform: Platform,
        max: Option<Risk>,
        grace: u32,
        a: Assignments,
    ) -> CompliancePolicy {
        CompliancePolicy {
            id: "p".into(),
            display_name: "p".into(),
            platform,
            max_risk: max,
            grace_hours: grace,
            assignments: a,
            os_minimum_version: None,
            storage_require_encryption: None,
        }
    }

    fn all() -> Assignments {
        Assignments {
            all_devices: true,
            ..Assignments::default()
        }
    }

    fn groups(inc: &[u128], exc: &[u128]) -> Assignments {
        Assignments {
            include_groups: inc.iter().map(|n| group(*n)).collect(),
            exclude_groups: exc.iter().map(|n| group(*n)).collect(),
            ..Assignments::default()
        }
    }

    fn windows() -> DeviceRecord {
        let mut d = DeviceRecord::new(DeviceId::from_u128(1).unwrap(), Platform::Windows);
        d.last_sync = Some(NOW.plus_millis(-DAY));
        d.groups = vec![group(1)];
        d
    }

    struct Case {
        name: &'static str,
        device: Option<DeviceRecord>,
        risk: Risk,
        policies: Vec<CompliancePolicy>,
        settings: TenantSettings,
        failing_since: Option<UnixMillis>,
        state: ComplianceState,
        reasons: &'static [ReasonCode],
    }

    fn case(name: &'static str) -> Case {
        Case {
            name,
            device: Some(windows()),
            risk: Risk::Low,
            policies: vec![policy(Platform::Windows, Some(Risk::Medium), 0, all())],
            settings: TenantSettings::default(),
            failing_since: None,
            state: Compliant,
            reasons: &[],
        }
    }

    fn check(c: Case) -> Compliance {
        let policies = CompliancePolicies::new(c.policies.clone());
        let got = evaluate(
            c.device.as_ref(),
            RiskObservation::new(c.risk, NOW.plus_millis(-HOUR)),
            c.failing_since,
            &policies,
            &c.settings,
            NOW,
        );
        assert_eq!(got.state, c.state, "{}: state ({got:?})", c.name);
        let want = c.reasons.iter().fold(ReasonSet::EMPTY, |s, r| s.with(*r));
        assert_eq!(got.reasons, want, "{}: reasons", c.name);
        got
    }

    #[test]
    fn rules_table() {
        let stale = |d: &mut DeviceRecord| d.last_sync = Some(NOW.plus_millis(-31 * DAY));
        let mut cases = vec![
            Case {
                device: None,
                state: Unknown,
                reasons: &[DeviceUnknown],
                ..case("not in inventory")
            },
            Case {
                state: Compliant,
                ..case("low risk under medium policy")
            },
            Case {
                risk: Risk::Medium,
                ..case("risk equal to the level is fine")
            },
            Case {
                risk: Risk::High,
                state: Noncompliant,
                reasons: &[RiskAboveThreshold],
                ..case("high under medium")
            },
            Case {
                risk: Risk::Unavailable,
                state: Noncompliant,
                reasons: &[RiskUnavailable],
                ..case("no risk data")
            },
            Case {
                policies: vec![],
                state: Noncompliant,
                reasons: &[NoPolicyAssigned],
                ..case("no policy, secure by default")
            },
            Case {
                policies: vec![],
                settings: TenantSettings {
                    secure_by_default: false,
                    ..TenantSettings::default()
                },
                ..case("no policy, Intune default")
            },
            Case {
                policies: vec![policy(Platform::Android, Some(Risk::Secured), 0, all())],
                state: Noncompliant,
                reasons: &[NoPolicyAssigned],
                ..case("policy for another platform does not apply")
            },
            Case {
                policies: vec![policy(Platform::Windows, None, 0, all())],
                risk: Risk::High,
                ..case("threat check off ignores risk")
            },
            Case {
                policies: vec![policy(
                    Platform::Windows,
                    Some(Risk::Low),
                    0,
                    groups(&[1], &[]),
                )],
                risk: Risk::Medium,
                state: Noncompliant,
                reasons: &[RiskAboveThreshold],
                ..case("included by group")
            },
            Case {
                policies: vec![policy(
                    Platform::Windows,
                    Some(Risk::Low),
                    0,
                    groups(&[2], &[]),
                )],
                risk: Risk::Medium,
                state: Noncompliant,
                reasons: &[NoPolicyAssigned],
                ..case("not in the included group")
            },
            Case {
                policies: vec![policy(
                    Platform::Windows,
                    Some(Risk::Low),
                    0,
                    Assignments {
                        all_devices: true,
                        exclude_groups: vec![group(1)],
                        ..Assignments::default()
                    },
                )],
                risk: Risk::Medium,
                state: Noncompliant,
                reasons: &[NoPolicyAssigned],
                ..case("exclusion beats inclusion")
            },
            Case {
                policies: vec![policy(
                    Platform::Windows,
                    Some(Risk::Low),
                    0,
                    Assignments {
                        all_licensed_users: true,
                        ..Assignments::default()
                    },
                )],
                risk: Risk::Medium,
                state: Noncompliant,
                reasons: &[NoPolicyAssigned],
                ..case("all licensed users needs a primary user")
            },
            Case {
                risk: Risk::High,
                policies: vec![policy(Platform::Windows, Some(Risk::Medium), 24, all())],
                state: GRACE,
                reasons: &[RiskAboveThreshold, InGracePeriod],
                ..case("failing with grace starts the grace now")
            },
            Case {
                risk: Risk::High,
                policies: vec![policy(Platform::Windows, Some(Risk::Medium), 24, all())],
                failing_since: Some(NOW.plus_millis(-25 * HOUR)),
                state: Noncompliant,
                reasons: &[RiskAboveThreshold],
                ..case("grace ran out")
            },
            Case {
                risk: Risk::High,
                policies: vec![
                    policy(Platform::Windows, Some(Risk::Medium), 24, all()),
                    policy(Platform::Windows, Some(Risk::Medium), 0, groups(&[1], &[])),
                ],
                state: Noncompliant,
                reasons: &[RiskAboveThreshold],
                ..case("worst wins: noncompliant beats grace")
            },
            Case {
                risk: Risk::Low,
                policies: vec![
                    policy(Platform::Windows, Some(Risk::Secured), 24, all()),
                    policy(Platform::Windows, Some(Risk::High), 0, all()),
                ],
                state: GRACE,
                reasons: &[RiskAboveThreshold, InGracePeriod],
                ..case("worst wins: grace beats compliant")
            },
        ];
        let mut unmanaged = case("not managed");
        unmanaged.device.as_mut().unwrap().managed = false;
        unmanaged.state = Noncompliant;
        unmanaged.reasons = &[DeviceNotManaged];
        cases.push(unmanaged);
        let mut old = case("stale check-in");
        stale(old.device.as_mut().unwrap());
        old.state = Noncompliant;
        old.reasons = &[CheckinStale];
        cases.push(old);
        let mut never = case("never checked in");
        never.device.as_mut().unwrap().last_sync = None;
        never.state = Noncompliant;
        never.reasons = &[CheckinStale];
        cases.push(never);
        let mut threshold = case("threshold from tenant settings");
        stale(threshold.device.as_mut().unwrap());
        threshold.settings.checkin_threshold_days = 60;
        cases.push(threshold);
        let mut mdm = case("MDM says noncompliant");
        mdm.device.as_mut().unwrap().mdm_state = MdmState::Noncompliant;
        mdm.state = Noncompliant;
        mdm.reasons = &[MdmNoncompliant];
        cases.push(mdm);
        let mut mdm_risk = case("MDM noncompliant and risky");
        mdm_risk.device.as_mut().unwrap().mdm_state = MdmState::Noncompliant;
        mdm_risk.risk = Risk::High;
        mdm_risk.state = Noncompliant;
        mdm_risk.reasons = &[MdmNoncompliant, RiskAboveThreshold];
        cases.push(mdm_risk);
        let mut mdm_grace = case("MDM in grace is not a failure");
        mdm_grace.device.as_mut().unwrap().mdm_state = MdmState::InGracePeriod;
        cases.push(mdm_grace);
        let mut user = case("all licensed users covers a device with a user");
        user.device.as_mut().unwrap().user = UserId::from_u128(7);
        user.policies = vec![policy(
            Platform::Windows,
            Some(Risk::Low),
            0,
            Assignments {
                all_licensed_users: true,
                ..Assignments::default()
            },
        )];
        user.risk = Risk::Medium;
        user.state = Noncompliant;
        user.reasons = &[RiskAboveThreshold];
        cases.push(user);
        for c in cases {
            check(c);
        }
    }

    #[test]
    fn details_carry_observed_allowed_and_grace() {
        let got = check(Case {
            risk: Risk::High,
            policies: vec![
                policy(Platform::Windows, Some(Risk::Medium), 0, all()),
                policy(Platform::Windows, Some(Risk::Low), 0, all()),
            ],
            state: Noncompliant,
            reasons: &[RiskAboveThreshold],
            ..case("two levels")
        });
        assert_eq!(got.details.observed_risk, Risk::High);
        assert_eq!(got.details.allowed_risk, Some(Risk::Low));
        assert_eq!(got.details.failing_since, Some(NOW));

        let since = NOW.plus_millis(-HOUR);
        let got = check(Case {
            risk: Risk::High,
            policies: vec![policy(Platform::Windows, Some(Risk::Medium), 24, all())],
            failing_since: Some(since),
            state: GRACE,
            reasons: &[RiskAboveThreshold, InGracePeriod],
            ..case("grace keeps the earlier start")
        });
        assert_eq!(got.details.grace_until, Some(since.plus_hours(24)));
        assert_eq!(got.valid_until, Some(since.plus_hours(24)));
        assert_eq!(got.details.failing_since, Some(since));
    }

    #[test]
    fn valid_until_is_the_earliest_time_driven_change() {
        let got = check(case("compliant: until check-in goes stale"));
        let sync = NOW.plus_millis(-DAY);
        assert_eq!(got.valid_until, Some(sync.plus_days(30).plus_millis(1)));
        assert_eq!(got.details.failing_since, None);

        let settings = TenantSettings {
            risk_max_age_ms: Some(2 * HOUR),
            ..TenantSettings::default()
        };
        let got = check(Case {
            settings,
            ..case("risk ages out first")
        });
        assert_eq!(got.valid_until, Some(NOW.plus_millis(HOUR + 1)));

        let settings = TenantSettings {
            risk_max_age_ms: Some(HOUR / 2),
            ..TenantSettings::default()
        };
        let got = check(Case {
            settings,
            state: Noncompliant,
            reasons: &[RiskUnavailable],
            ..case("risk too old")
        });
        assert_eq!(got.details.observed_risk, Risk::Unavailable);

        let mut unmanaged = windows();
        unmanaged.managed = false;
        let got = check(Case {
            device: Some(unmanaged),
            state: Noncompliant,
            reasons: &[DeviceNotManaged],
            ..case("no change by time")
        });
        assert_eq!(got.valid_until, None);
    }

    /// The worked example of product brief section 1.
    #[test]
    fn worked_example_medium_policy_high_then_medium() {
        let policies =
            CompliancePolicies::new([policy(Platform::Windows, Some(Risk::Medium), 0, all())]);
        let settings = TenantSettings::default();
        let d = windows();
        let high = evaluate(
            Some(&d),
            RiskObservation::new(Risk::High, NOW),
            None,
            &policies,
            &settings,
            NOW,
        );
        assert_eq!(high.state, Noncompliant);
        assert!(high.reasons.contains(RiskAboveThreshold));
        assert_eq!(
            (high.details.observed_risk, high.details.allowed_risk),
            (Risk::High, Some(Risk::Medium))
        );
        let later = NOW.plus_millis(60_000);
        let back = evaluate(
            Some(&d),
            RiskObservation::new(Risk::Medium, later),
            high.details.failing_since,
            &policies,
            &settings,
            later,
        );
        assert_eq!(back.state, Compliant);
        assert!(back.reasons.is_empty());
    }
}
