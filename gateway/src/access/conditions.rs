//! Condition matching and grant checking for one policy against one request. `decide` and
//! `explain` both call these, so what-if explains exactly what the proxy enforces.

use std::fmt;

use crate::access::policy::{AppMiss, Controls, GrantOperator, Policy};
use crate::access::request::{ClientAppType, RequestFacts};
use crate::model::{Platform, TrustType};
use crate::reason::ReasonCode;

/// The first condition of a policy that did not match a request (checked in Entra's order:
/// users, apps, client apps, platforms, locations, device filter).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Miss {
    UserNotIncluded,
    UserExcluded,
    AppNotIncluded,
    AppExcluded,
    ClientApp(ClientAppType),
    PlatformUnknown,
    PlatformNotIncluded(Platform),
    PlatformExcluded(Platform),
    LocationNotIncluded,
    LocationExcluded,
    DeviceFilterNotMatched,
    DeviceFilterExcluded,
    UnsupportedCondition,
}

impl Miss {
    /// Words for what-if, naming the policy's setting where useful.
    pub fn describe(self, policy: &Policy) -> String {
        match self {
            Miss::UserNotIncluded => "user not included".into(),
            Miss::UserExcluded => "user excluded".into(),
            Miss::AppNotIncluded => "app not included".into(),
            Miss::AppExcluded => "app excluded".into(),
            Miss::ClientApp(t) => format!("client app type {t} not in {}", policy.client_apps),
            Miss::PlatformUnknown => "platform unknown and the policy does not include all".into(),
            Miss::PlatformNotIncluded(p) => match policy.platforms {
                Some(c) => format!("platform {p} not in {}", c.include),
                None => format!("platform {p} not included"),
            },
            Miss::PlatformExcluded(p) => format!("platform {p} excluded"),
            Miss::LocationNotIncluded => "location (IP address) not included".into(),
            Miss::LocationExcluded => "location (IP address) excluded".into(),
            Miss::UnsupportedCondition => {
                "sets a condition this gateway cannot evaluate (see warnings)".into()
            }
            Miss::DeviceFilterNotMatched => match &policy.device_filter {
                Some(f) => format!("device does not match the include filter `{}`", f.source),
                None => "device filter not matched".into(),
            },
            Miss::DeviceFilterExcluded => match &policy.device_filter {
                Some(f) => format!("device matches the exclude filter `{}`", f.source),
                None => "device excluded by filter".into(),
            },
        }
    }
}

impl fmt::Display for Miss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Whether every condition the policy sets matches. `check_app`: false when the caller
/// already took the policy from the set's per-app index.
#[inline]
pub fn conditions_match(p: &Policy, req: &RequestFacts<'_>, check_app: bool) -> Result<(), Miss> {
    if p.unsupported_condition {
        return Err(Miss::UnsupportedCondition);
    }
    users_match(p, req)?;
    if check_app {
        p.apps.covers(req.app).map_err(|m| match m {
            AppMiss::NotIncluded => Miss::AppNotIncluded,
            AppMiss::Excluded => Miss::AppExcluded,
        })?;
    }
    if !p.client_apps.contains(req.client_app) {
        return Err(Miss::ClientApp(req.client_app));
    }
    if let Some(c) = &p.platforms {
        match req.platform() {
            None if !c.include_all => return Err(Miss::PlatformUnknown),
            None => {}
            Some(platform) => {
                if !(c.include_all || c.include.contains(platform)) {
                    return Err(Miss::PlatformNotIncluded(platform));
                }
                if c.exclude.contains(platform) {
                    return Err(Miss::PlatformExcluded(platform));
                }
            }
        }
    }
    checked_conditions_match(p, req)
}

/// The conditions `decide`'s screen leaves to a per-policy check: locations, device filter.
#[inline]
pub fn checked_conditions_match(p: &Policy, req: &RequestFacts<'_>) -> Result<(), Miss> {
    if let Some(c) = &p.locations {
        if !c.include.contains(req.ip) {
            return Err(Miss::LocationNotIncluded);
        }
        if c.exclude.contains(req.ip) {
            return Err(Miss::LocationExcluded);
        }
    }
    if let Some(f) = &p.device_filter {
        if !f.admits(req.device.as_ref()) {
            return Err(match f.mode {
                crate::access::filter::FilterMode::Include => Miss::DeviceFilterNotMatched,
                crate::access::filter::FilterMode::Exclude => Miss::DeviceFilterExcluded,
            });
        }
    }
    Ok(())
}

#[inline]
fn users_match(p: &Policy, req: &RequestFacts<'_>) -> Result<(), Miss> {
    let u = &p.users;
    let Some(user) = req.user else {
        // Anonymous: only `All` covers it, and no exclusion can name it.
        return if u.include_all {
            Ok(())
        } else {
            Err(Miss::UserNotIncluded)
        };
    };
    let in_groups = |groups: &[crate::ids::GroupId]| {
        !groups.is_empty() && req.groups.iter().any(|g| groups.contains(g))
    };
    let included = u.include_all || u.include_users.contains(&user) || in_groups(&u.include_groups);
    if !included {
        return Err(Miss::UserNotIncluded);
    }
    if u.exclude_users.contains(&user) || in_groups(&u.exclude_groups) {
        return Err(Miss::UserExcluded);
    }
    Ok(())
}

/// The result of a policy's grant controls for a request.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct GrantOutcome {
    pub satisfied: bool,
    pub blocked: bool,
    /// The controls the request does not meet.
    pub unmet: Controls,
}

/// The controls the request meets, whatever the policy asks.
#[inline]
pub fn met_controls(req: &RequestFacts<'_>) -> Controls {
    let mut met = Controls::NONE;
    if req
        .device
        .is_some_and(|d| d.state.satisfies_compliant_device())
    {
        met = met.union(Controls::COMPLIANT_DEVICE);
    }
    if req.mfa {
        met = met.union(Controls::MFA);
    }
    if req
        .device
        .is_some_and(|d| d.trust_type == TrustType::ServerAd)
    {
        met = met.union(Controls::DOMAIN_JOINED);
    }
    met
}

/// A policy's grant controls against the controls the request meets (`met_controls`).
#[inline]
pub fn grant_outcome(p: &Policy, met: Controls) -> GrantOutcome {
    let controls = p.grant.controls;
    if controls.contains(Controls::BLOCK) {
        return GrantOutcome {
            satisfied: false,
            blocked: true,
            unmet: Controls::BLOCK,
        };
    }
    let unmet = controls.minus(met);
    let satisfied = controls.is_empty()
        || match p.grant.operator {
            GrantOperator::And => unmet.is_empty(),
            GrantOperator::Or => unmet != controls,
        };
    GrantOutcome {
        satisfied,
        blocked: false,
        unmet,
    }
}

/// The reason a denial by unmet controls names: the device's compliance reason first, then
/// MFA, domain join, unknown controls.
pub fn unmet_reason(unmet: Controls, req: &RequestFacts<'_>) -> ReasonCode {
    if unmet.contains(Controls::BLOCK) {
        ReasonCode::BlockedByPolicy
    } else if unmet.contains(Controls::COMPLIANT_DEVICE) {
        device_reason(req)
    } else if unmet.contains(Controls::MFA) {
        ReasonCode::MfaRequired
    } else if unmet.contains(Controls::DOMAIN_JOINED) {
        ReasonCode::DomainJoinRequired
    } else {
        ReasonCode::ControlUnsatisfiable
    }
}

/// Why the device does not satisfy `compliantDevice`.
pub fn device_reason(req: &RequestFacts<'_>) -> ReasonCode {
    match req.device {
        None if req.device_presented => ReasonCode::DeviceUnknown,
        None => ReasonCode::DeviceMissing,
        Some(d) => d
            .reasons
            .iter()
            .find(|r| *r != ReasonCode::InGracePeriod)
            .unwrap_or(match d.state {
                crate::model::ComplianceState::Unknown => ReasonCode::DeviceUnknown,
                _ => ReasonCode::MdmNoncompliant,
            }),
    }
}
