//! The decision-log record (product brief section 7), shaped like an Entra sign-in log entry.
//! Pure: the caller passes the time, correlation id and snapshot version.

use std::net::IpAddr;

use serde::Serialize;

use crate::access::decision::{Decision, PolicyResult};
use crate::access::request::RequestFacts;
use crate::access::PolicySet;
use crate::clock::UnixMillis;
use crate::ids::{AppId, DeviceId, UserId};

/// What the caller knows that the decision does not.
#[derive(Clone, Copy, Debug)]
pub struct LogContext<'a> {
    pub correlation_id: &'a str,
    pub now: UnixMillis,
    pub snapshot_version: u64,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DeviceDetail {
    pub device_id: Option<DeviceId>,
    pub operating_system: Option<String>,
    pub is_compliant: bool,
    pub is_managed: bool,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AppliedPolicy {
    pub id: String,
    pub display_name: String,
    pub enforced_grant_controls: Vec<String>,
    pub result: PolicyResult,
}

/// One decision-log line.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DecisionLogEntry {
    pub correlation_id: String,
    pub created_date_time: String,
    pub user_id: Option<UserId>,
    pub app_id: AppId,
    pub ip_address: IpAddr,
    pub client_app_used: &'static str,
    /// `success`, `failure` or `notApplied` (no enabled policy applied).
    pub conditional_access_status: &'static str,
    pub device_detail: DeviceDetail,
    pub applied_conditional_access_policies: Vec<AppliedPolicy>,
    pub reason_code: &'static str,
    pub compliance_reasons: Vec<&'static str>,
    pub snapshot_version: u64,
}

impl DecisionLogEntry {
    pub fn new(
        set: &PolicySet,
        req: &RequestFacts<'_>,
        decision: &Decision,
        ctx: LogContext<'_>,
    ) -> Self {
        let status = if !decision.enforced_applied(set) {
            "notApplied"
        } else if decision.is_allow() {
            "success"
        } else {
            "failure"
        };
        let applied_conditional_access_policies = set
            .policies()
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let mut controls: Vec<String> =
                    p.grant.controls.log_names().map(str::to_owned).collect();
                controls.extend(p.grant.unknown.iter().map(|u| u.to_string()));
                AppliedPolicy {
                    id: p.id.to_string(),
                    display_name: p.display_name.to_string(),
                    enforced_grant_controls: controls,
                    result: decision.result(set, i),
                }
            })
            .collect();
        let device = req.device;
        Self {
            correlation_id: ctx.correlation_id.to_owned(),
            created_date_time: ctx.now.to_rfc3339(),
            user_id: req.user,
            app_id: req.app,
            ip_address: req.ip,
            client_app_used: req.client_app.log_name(),
            conditional_access_status: status,
            device_detail: DeviceDetail {
                device_id: device.map(|d| d.id),
                operating_system: device
                    .and_then(|d| d.operating_system())
                    .map(str::to_owned)
                    .or_else(|| req.platform().map(|p| p.as_str().to_owned())),
                is_compliant: device.is_some_and(|d| d.is_compliant()),
                is_managed: device.is_some_and(|d| d.managed),
            },
            applied_conditional_access_policies,
            reason_code: decision.reason.as_str(),
            compliance_reasons: decision
                .compliance_reasons
                .iter()
                .map(|r| r.as_str())
                .collect(),
            snapshot_version: ctx.snapshot_version,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::access::decide;
    use crate::access::decision::tests::{pol, request, set_of};
    use crate::access::decision::Unprotected;
    use crate::reason::{ReasonCode, ReasonSet};

    #[test]
    fn shaped_like_a_sign_in_log_entry() {
        let set = set_of(&[
            pol("p1", "enabled", "", "AND compliantDevice mfa"),
            pol("p2", "disabled", "", "OR block"),
            pol(
                "p3",
                "enabledForReportingButNotEnforced",
                r#""clientAppTypes":["other"]"#,
                "OR block",
            ),
        ]);
        let mut req = request();
        if let Some(d) = req.device.as_mut() {
            d.reasons = ReasonSet::EMPTY.with(ReasonCode::InGracePeriod);
        }
        let decision = decide(&set, &req, Unprotected::Deny);
        let ctx = LogContext {
            correlation_id: "corr-1",
            now: UnixMillis(1_795_000_000_000),
            snapshot_version: 7,
        };
        let entry = DecisionLogEntry::new(&set, &req, &decision, ctx);
        assert_eq!(
            serde_json::to_value(&entry).unwrap(),
            json!({
                "correlationId": "corr-1",
                "createdDateTime": "2026-11-18T11:06:40.000Z",
                "userId": "aaaaaaaa-0000-0000-0000-000000000001",
                "appId": "00000003-0000-0ff1-ce00-000000000000",
                "ipAddress": "10.0.0.1",
                "clientAppUsed": "Browser",
                "conditionalAccessStatus": "failure",
                "deviceDetail": {
                    "deviceId": "11111111-2222-3333-4444-555555555555",
                    "operatingSystem": "Windows",
                    "isCompliant": true,
                    "isManaged": true
                },
                "appliedConditionalAccessPolicies": [
                    {"id": "p1", "displayName": "policy p1", "enforcedGrantControls": ["RequireCompliantDevice", "Mfa"], "result": "failure"},
                    {"id": "p2", "displayName": "policy p2", "enforcedGrantControls": ["Block"], "result": "notEnabled"},
                    {"id": "p3", "displayName": "policy p3", "enforcedGrantControls": ["Block"], "result": "reportOnlyNotApplied"}
                ],
                "reasonCode": "mfa_required",
                "complianceReasons": ["in_grace_period"],
                "snapshotVersion": 7
            })
        );
        let empty = DecisionLogEntry::new(
            &set_of(&[]),
            &req,
            &decide(&set_of(&[]), &req, Unprotected::Allow),
            ctx,
        );
        assert_eq!(
            (empty.conditional_access_status, empty.reason_code),
            ("notApplied", "unprotected_allowed")
        );
    }
}
