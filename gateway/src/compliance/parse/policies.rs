//! Graph `deviceCompliancePolicy` records (with `assignments` and
//! `scheduledActionsForRule` expanded) -> `CompliancePolicies`.

use serde::Deserialize;

use crate::compliance::policy::{Assignments, CompliancePolicies, CompliancePolicy};
use crate::ids::GroupId;
use crate::model::{Platform, Risk};

use super::error::{ParseError, RecordCtx};
use super::lenient::{name_of, opt, read_records, Lenient};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawPolicy {
    id: Option<Lenient<String>>,
    display_name: Option<Lenient<String>>,
    #[serde(rename = "@odata.type")]
    odata_type: Option<Lenient<String>>,
    device_threat_protection_enabled: Option<Lenient<bool>>,
    device_threat_protection_required_security_level: Option<Lenient<String>>,
    os_minimum_version: Option<Lenient<String>>,
    storage_require_encryption: Option<Lenient<bool>>,
    assignments: Option<Lenient<Vec<RawAssignment>>>,
    scheduled_actions_for_rule: Option<Lenient<Vec<RawRule>>>,
}

#[derive(Deserialize, Clone)]
struct RawAssignment {
    target: RawTarget,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
struct RawTarget {
    #[serde(rename = "@odata.type")]
    odata_type: String,
    group_id: Option<String>,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
struct RawRule {
    #[serde(default)]
    scheduled_action_configurations: Vec<RawAction>,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
struct RawAction {
    action_type: String,
    grace_period_hours: Option<i64>,
}

/// Parses a Graph compliance-policies export (`{"value": [...]}` or a bare array).
pub fn parse_compliance_policies(file: &str, text: &str) -> Result<CompliancePolicies, ParseError> {
    let raw: Vec<RawPolicy> = read_records(file, text)?;
    let mut out = Vec::with_capacity(raw.len());
    for (index, r) in raw.iter().enumerate() {
        let ctx = RecordCtx::new(file, index, name_of(&r.id), name_of(&r.display_name));
        out.push(convert(&ctx, r)?);
    }
    Ok(CompliancePolicies::new(out))
}

fn convert(ctx: &RecordCtx<'_>, r: &RawPolicy) -> Result<CompliancePolicy, ParseError> {
    const TYPE: &str = "@odata.type";
    let odata = opt(ctx, TYPE, &r.odata_type)?.ok_or_else(|| ctx.err(TYPE, "missing"))?;
    let platform = platform_of(&odata)
        .ok_or_else(|| ctx.err(TYPE, format!("unsupported policy type {odata:?}")))?;
    let enabled = opt(
        ctx,
        "deviceThreatProtectionEnabled",
        &r.device_threat_protection_enabled,
    )?;
    const LEVEL: &str = "deviceThreatProtectionRequiredSecurityLevel";
    let level = match opt(
        ctx,
        LEVEL,
        &r.device_threat_protection_required_security_level,
    )? {
        None => None,
        Some(text) => match text.to_ascii_lowercase().as_str() {
            "unavailable" | "notset" => None,
            other => Some(
                Risk::parse(other)
                    .ok_or_else(|| ctx.err(LEVEL, format!("unknown level {text:?}")))?,
            ),
        },
    };
    let mut assignments = Assignments::default();
    for a in opt(ctx, "assignments", &r.assignments)?.unwrap_or_default() {
        let t = &a.target;
        let kind = t.odata_type.trim_start_matches("#microsoft.graph.");
        let group = || -> Result<GroupId, ParseError> {
            let text = t
                .group_id
                .as_deref()
                .ok_or_else(|| ctx.err("assignments", format!("{kind} without a groupId")))?;
            GroupId::parse(text).map_err(|e| ctx.err("assignments", e.to_string()))
        };
        match kind {
            "groupAssignmentTarget" => assignments.include_groups.push(group()?),
            "exclusionGroupAssignmentTarget" => assignments.exclude_groups.push(group()?),
            "allDevicesAssignmentTarget" => assignments.all_devices = true,
            "allLicensedUsersAssignmentTarget" => assignments.all_licensed_users = true,
            other => return Err(ctx.err("assignments", format!("unknown target type {other:?}"))),
        }
    }
    assignments.include_groups.sort_unstable();
    assignments.exclude_groups.sort_unstable();
    let mut grace: Option<u32> = None;
    let rules = opt(
        ctx,
        "scheduledActionsForRule",
        &r.scheduled_actions_for_rule,
    )?;
    for action in rules
        .iter()
        .flatten()
        .flat_map(|r| &r.scheduled_action_configurations)
    {
        if !action.action_type.eq_ignore_ascii_case("block") {
            continue;
        }
        let hours = action.grace_period_hours.unwrap_or(0);
        let hours = u32::try_from(hours).map_err(|_| {
            ctx.err(
                "scheduledActionsForRule",
                format!("bad gracePeriodHours {hours}"),
            )
        })?;
        grace = Some(grace.map_or(hours, |g| g.min(hours)));
    }
    Ok(CompliancePolicy {
        id: opt(ctx, "id", &r.id)?.unwrap_or_default(),
        display_name: opt(ctx, "displayName", &r.display_name)?.unwrap_or_default(),
        platform,
        max_risk: if enabled == Some(true) { level } else { None },
        grace_hours: grace.unwrap_or(0),
        assignments,
        os_minimum_version: opt(ctx, "osMinimumVersion", &r.os_minimum_version)?,
        storage_require_encryption: opt(
            ctx,
            "storageRequireEncryption",
            &r.storage_require_encryption,
        )?,
    })
}

/// The platform a policy's `@odata.type` applies to.
fn platform_of(odata_type: &str) -> Option<Platform> {
    let kind = odata_type
        .trim_start_matches("#microsoft.graph.")
        .to_ascii_lowercase();
    Some(match kind.as_str() {
        "windows10compliancepolicy" | "windows10mobilecompliancepolicy" => Platform::Windows,
        "androidcompliancepolicy"
        | "androiddeviceownercompliancepolicy"
        | "androidworkprofilecompliancepolicy"
        | "androidforworkcompliancepolicy"
        | "aospdeviceownercompliancepolicy" => Platform::Android,
        "ioscompliancepolicy" => Platform::Ios,
        "macoscompliancepolicy" => Platform::MacOs,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(fields: &str, expect: Result<&str, &str>) {
        let doc = format!(r##"{{"value": [{{"id": "p1", "displayName": "Win", {fields}}}]}}"##);
        match (parse_compliance_policies("policies.json", &doc), expect) {
            (Ok(p), Ok(want)) => {
                let text = format!("{:?}", p.iter().next().unwrap());
                assert!(text.contains(want), "{text} lacks {want}");
            }
            (Err(e), Err(want)) => assert!(e.to_string().contains(want), "{e} lacks {want}"),
            (got, want) => panic!("{fields}: got {got:?}, want {want:?}"),
        }
    }

    const WIN: &str = r##""@odata.type": "#microsoft.graph.windows10CompliancePolicy""##;

    #[test]
    fn fields_table() {
        check(WIN, Ok("platform: Windows, max_risk: None, grace_hours: 0"));
        check(
            &format!(
                r##"{WIN}, "deviceThreatProtectionEnabled": true, "deviceThreatProtectionRequiredSecurityLevel": "medium""##
            ),
            Ok("max_risk: Some(Medium)"),
        );
        check(
            &format!(
                r##"{WIN}, "deviceThreatProtectionEnabled": false, "deviceThreatProtectionRequiredSecurityLevel": "medium""##
            ),
            Ok("max_risk: None"),
        );
        check(
            &format!(
                r##"{WIN}, "deviceThreatProtectionEnabled": true, "deviceThreatProtectionRequiredSecurityLevel": "notSet""##
            ),
            Ok("max_risk: None"),
        );
        check(
            &format!(
                r##"{WIN}, "deviceThreatProtectionEnabled": true, "deviceThreatProtectionRequiredSecurityLevel": "unavailable""##
            ),
            Ok("max_risk: None"),
        );
        check(
            r##""@odata.type": "#microsoft.graph.androidDeviceOwnerCompliancePolicy""##,
            Ok("platform: Android"),
        );
        check(
            r##""@odata.type": "#microsoft.graph.iosCompliancePolicy""##,
            Ok("platform: Ios"),
        );
        check(
            r##""@odata.type": "#microsoft.graph.macOSCompliancePolicy""##,
            Ok("platform: MacOs"),
        );
        check(
            &format!(
                r##"{WIN}, "scheduledActionsForRule": [{{"ruleName": "r", "scheduledActionConfigurations": [{{"actionType": "notification", "gracePeriodHours": 1}}, {{"actionType": "block", "gracePeriodHours": 72}}]}}]"##
            ),
            Ok("grace_hours: 72"),
        );
        check(&format!(r##"{WIN}, "assignments": [
            {{"target": {{"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": "bbbbbbbb-0000-0000-0000-000000000001"}}}},
            {{"target": {{"@odata.type": "#microsoft.graph.exclusionGroupAssignmentTarget", "groupId": "bbbbbbbb-0000-0000-0000-000000000002"}}}},
            {{"target": {{"@odata.type": "#microsoft.graph.allLicensedUsersAssignmentTarget"}}}}]"##),
            Ok("all_devices: false, all_licensed_users: true, include_groups: [GroupId(bbbbbbbb-0000-0000-0000-000000000001)], exclude_groups: [GroupId(bbbbbbbb-0000-0000-0000-000000000002)]"));
        check(
            r##""@odata.type": "#microsoft.graph.windows81CompliancePolicy""##,
            Err("policies.json: record #0 (id \"p1\", \"Win\"): field `@odata.type`: unsupported"),
        );
        check(
            &format!(r##"{WIN}, "deviceThreatProtectionRequiredSecurityLevel": "extreme""##),
            Err("field `deviceThreatProtectionRequiredSecurityLevel`: unknown level"),
        );
        check(
            &format!(r##"{WIN}, "deviceThreatProtectionEnabled": "yes""##),
            Err("field `deviceThreatProtectionEnabled`: invalid type"),
        );
        check(
            &format!(
                r##"{WIN}, "assignments": [{{"target": {{"@odata.type": "#microsoft.graph.groupAssignmentTarget"}}}}]"##
            ),
            Err("field `assignments`: groupAssignmentTarget without a groupId"),
        );
        check(
            &format!(
                r##"{WIN}, "assignments": [{{"target": {{"@odata.type": "x.someTarget"}}}}]"##
            ),
            Err("unknown target type"),
        );
        check(
            &format!(
                r##"{WIN}, "scheduledActionsForRule": [{{"scheduledActionConfigurations": [{{"actionType": "block", "gracePeriodHours": -1}}]}}]"##
            ),
            Err("bad gracePeriodHours"),
        );
        check(
            r##""description": "x""##,
            Err("field `@odata.type`: missing"),
        );
    }
}
