//! The decision table: every condition and their combinations through one `check`.

use serde_json::{json, Value};

use super::*;
use crate::access::request::tests::device;
use crate::access::{explain, ClientAppType, DeviceFacts};
use crate::ids::{apps, AppId, GroupId, UserId};
use crate::model::{ComplianceState, Platform, TrustType};

const fn user(n: u128) -> UserId {
    match UserId::from_u128(0xaaaaaaaa_0000_0000_0000_000000000000 + n) {
        Some(u) => u,
        None => panic!("non-zero"),
    }
}

const fn group(n: u128) -> GroupId {
    match GroupId::from_u128(0xbbbbbbbb_0000_0000_0000_000000000000 + n) {
        Some(g) => g,
        None => panic!("non-zero"),
    }
}

const U1: &str = "aaaaaaaa-0000-0000-0000-000000000001";
const G2: &str = "bbbbbbbb-0000-0000-0000-000000000002";
const G3: &str = "bbbbbbbb-0000-0000-0000-000000000003";
const SHAREPOINT: &str = "00000003-0000-0ff1-ce00-000000000000";
const EXCHANGE: &str = "00000002-0000-0ff1-ce00-000000000000";
static STAFF: [GroupId; 1] = [group(1)];
static BREAK_GLASS: [GroupId; 2] = [group(1), group(3)];
static ADMINS: [GroupId; 1] = [group(2)];

pub(crate) const LOCATIONS: &str = r##"{"value": [
  {"@odata.type": "#microsoft.graph.ipNamedLocation", "id": "office", "displayName": "Loopback office",
   "isTrusted": true, "ipRanges": [{"cidrAddress": "127.0.0.0/8"}]},
  {"@odata.type": "#microsoft.graph.ipNamedLocation", "id": "branch", "displayName": "Branch",
   "isTrusted": false, "ipRanges": [{"cidrAddress": "10.1.0.0/16"}]}
]}"##;

/// The base request: user 1 in the staff group, SharePoint, a browser on Windows from
/// 10.0.0.1, with the compliant, Entra-joined test device.
pub(crate) fn request() -> RequestFacts<'static> {
    RequestFacts {
        user: Some(user(1)),
        groups: &STAFF,
        mfa: false,
        app: apps::SHAREPOINT_ONLINE,
        client_app: ClientAppType::Browser,
        ua_platform: Some(Platform::Windows),
        ip: std::net::IpAddr::from([10, 0, 0, 1]),
        device: Some(device()),
        device_presented: true,
    }
}

/// A policy: `conditions` (JSON members without braces) override all-users/all-apps;
/// `grant` is `"OR compliantDevice mfa"` style, empty for none.
pub(crate) fn pol(id: &str, state: &str, conditions: &str, grant: &str) -> Value {
    let mut c = json!({"users": {"includeUsers": ["All"]}, "applications": {"includeApplications": ["All"]}});
    let extra: Value = serde_json::from_str(&format!("{{{conditions}}}")).unwrap();
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    let mut words = grant.split_whitespace();
    let grant = match words.next() {
        None => Value::Null,
        Some(op) => json!({"operator": op, "builtInControls": words.collect::<Vec<_>>()}),
    };
    json!({"id": id, "displayName": format!("policy {id}"), "state": state, "conditions": c, "grantControls": grant})
}

pub(crate) fn set_of(policies: &[Value]) -> PolicySet {
    let doc = json!({ "value": policies }).to_string();
    PolicySet::parse(&doc, Some(LOCATIONS)).unwrap_or_else(|e| panic!("{e}"))
}

fn noncompliant(d: &mut RequestFacts<'static>) {
    d.device = Some(DeviceFacts {
        state: ComplianceState::Noncompliant,
        reasons: ReasonSet::EMPTY
            .with(ReasonCode::RiskAboveThreshold)
            .with(ReasonCode::InGracePeriod),
        ..device()
    });
}

type Case = (
    &'static str,
    Vec<Value>,
    fn(&mut RequestFacts<'static>),
    Unprotected,
    Verdict,
    ReasonCode,
    &'static [&'static str],
);

fn check(case: Case) {
    let (name, policies, edit, unprotected, verdict, reason, deciding) = case;
    let set = set_of(&policies);
    let mut req = request();
    edit(&mut req);
    let d = decide(&set, &req, unprotected);
    let ids: Vec<&str> = d.deciding.iter().map(|i| &*set.policies()[i].id).collect();
    assert_eq!(
        (d.verdict, d.reason, ids.as_slice()),
        (verdict, reason, deciding),
        "case {name}"
    );
    // What-if runs the same evaluation and must agree.
    assert_eq!(
        explain(&set, &req, unprotected).decision,
        d,
        "explain, case {name}"
    );
}

#[test]
fn decision_table() {
    use ReasonCode::*;
    use Unprotected::{Allow as Open, Deny as Closed};
    use Verdict::{Allow, Deny};
    let en = "enabled";
    let compliant = "OR compliantDevice";
    let none: fn(&mut RequestFacts<'static>) = |_| {};
    let no_policy_request = |r: &mut RequestFacts<'static>| r.user = None;
    let cases: Vec<Case> = vec![
        // No policy applies: the route decides.
        (
            "no policies, open route",
            vec![],
            none,
            Open,
            Allow,
            UnprotectedAllowed,
            &[],
        ),
        (
            "no policies, closed route",
            vec![],
            none,
            Closed,
            Deny,
            NotProtected,
            &[],
        ),
        (
            "anonymous, no policies",
            vec![],
            no_policy_request,
            Closed,
            Deny,
            NotProtected,
            &[],
        ),
        // compliantDevice and the device reasons.
        (
            "compliant device",
            vec![pol("p1", en, "", compliant)],
            none,
            Closed,
            Allow,
            PolicySatisfied,
            &["p1"],
        ),
        (
            "noncompliant names its first reason",
            vec![pol("p1", en, "", compliant)],
            noncompliant,
            Closed,
            Deny,
            RiskAboveThreshold,
            &["p1"],
        ),
        (
            "device presented but unknown",
            vec![pol("p1", en, "", compliant)],
            |r| r.device = None,
            Closed,
            Deny,
            DeviceUnknown,
            &["p1"],
        ),
        (
            "no device presented",
            vec![pol("p1", en, "", compliant)],
            |r| {
                r.device = None;
                r.device_presented = false
            },
            Closed,
            Deny,
            DeviceMissing,
            &["p1"],
        ),
        (
            "grace period satisfies",
            vec![pol("p1", en, "", compliant)],
            |r| {
                r.device = Some(DeviceFacts {
                    state: ComplianceState::InGracePeriod,
                    ..device()
                })
            },
            Closed,
            Allow,
            PolicySatisfied,
            &["p1"],
        ),
        (
            "unknown state without reasons",
            vec![pol("p1", en, "", compliant)],
            |r| {
                r.device = Some(DeviceFacts {
                    state: ComplianceState::Unknown,
                    reasons: ReasonSet::EMPTY,
                    ..device()
                })
            },
            Closed,
            Deny,
            DeviceUnknown,
            &["p1"],
        ),
        // Users: direct, groups, All/None, exclusions.
        (
            "user excluded directly",
            vec![pol(
                "p1",
                en,
                &format!(r#""users":{{"includeUsers":["All"],"excludeUsers":["{U1}"]}}"#),
                "OR block",
            )],
            none,
            Closed,
            Deny,
            NotProtected,
            &[],
        ),
        (
            "user excluded via group",
            vec![pol(
                "p1",
                en,
                &format!(r#""users":{{"includeUsers":["All"],"excludeGroups":["{G3}"]}}"#),
                "OR block",
            )],
            |r| r.groups = &BREAK_GLASS,
            Open,
            Allow,
            UnprotectedAllowed,
            &[],
        ),
        (
            "user not in excluded group",
            vec![pol(
                "p1",
                en,
                &format!(r#""users":{{"includeUsers":["All"],"excludeGroups":["{G3}"]}}"#),
                "OR block",
            )],
            none,
            Open,
            Deny,
            BlockedByPolicy,
            &["p1"],
        ),
        (
            "included group, user not in it",
            vec![pol(
                "p1",
                en,
                &format!(r#""users":{{"includeGroups":["{G2}"]}}"#),
                "OR mfa",
            )],
            none,
            Open,
            Allow,
            UnprotectedAllowed,
            &[],
        ),
        (
            "included group, user in it",
            vec![pol(
                "p1",
                en,
                &format!(r#""users":{{"includeGroups":["{G2}"]}}"#),
                "OR mfa",
            )],
            |r| r.groups = &ADMINS,
            Open,
            Deny,
            MfaRequired,
            &["p1"],
        ),
        (
            "included user directly",
            vec![pol(
                "p1",
                en,
                &format!(r#""users":{{"includeUsers":["{U1}"]}}"#),
                "OR mfa",
            )],
            none,
            Open,
            Deny,
            MfaRequired,
            &["p1"],
        ),
        (
            "other user not included",
            vec![pol(
                "p1",
                en,
                &format!(r#""users":{{"includeUsers":["{U1}"]}}"#),
                "OR mfa",
            )],
            |r| r.user = Some(user(2)),
            Open,
            Allow,
            UnprotectedAllowed,
            &[],
        ),
        (
            "includeUsers None",
            vec![pol(
                "p1",
                en,
                r#""users":{"includeUsers":["None"]}"#,
                "OR block",
            )],
            none,
            Open,
            Allow,
            UnprotectedAllowed,
            &[],
        ),
        (
            "anonymous is in All",
            vec![pol("p1", en, "", compliant)],
            |r| {
                r.user = None;
                r.device = None;
                r.device_presented = false
            },
            Open,
            Deny,
            DeviceMissing,
            &["p1"],
        ),
        (
            "anonymous not in a user list",
            vec![pol(
                "p1",
                en,
                &format!(r#""users":{{"includeUsers":["{U1}"]}}"#),
                "OR block",
            )],
            |r| r.user = None,
            Open,
            Allow,
            UnprotectedAllowed,
            &[],
        ),
        // Apps: ids, Office365, All, None, exclusions, apps no policy names.
        (
            "app included by id",
            vec![pol(
                "p1",
                en,
                &format!(r#""applications":{{"includeApplications":["{SHAREPOINT}"]}}"#),
                "OR mfa",
            )],
            none,
            Open,
            Deny,
            MfaRequired,
            &["p1"],
        ),
        (
            "other app not included",
            vec![pol(
                "p1",
                en,
                &format!(r#""applications":{{"includeApplications":["{SHAREPOINT}"]}}"#),
                "OR mfa",
            )],
            |r| r.app = apps::EXCHANGE_ONLINE,
            Open,
            Allow,
            UnprotectedAllowed,
            &[],
        ),
        (
            "Office365 covers Exchange",
            vec![pol(
                "p1",
                en,
                r#""applications":{"includeApplications":["Office365"]}"#,
                "OR mfa",
            )],
            |r| r.app = apps::EXCHANGE_ONLINE,
            Open,
            Deny,
            MfaRequired,
            &["p1"],
        ),
        (
            "Office365 does not cover other apps",
            vec![pol(
                "p1",
                en,
                r#""applications":{"includeApplications":["Office365"]}"#,
                "OR mfa",
            )],
            |r| r.app = AppId::from_u128(77).unwrap(),
            Open,
            Allow,
            UnprotectedAllowed,
            &[],
        ),
        (
            "All covers unnamed apps",
            vec![pol("p1", en, "", "OR mfa")],
            |r| r.app = AppId::from_u128(77).unwrap(),
            Open,
            Deny,
            MfaRequired,
            &["p1"],
        ),
        (
            "All minus excluded app",
            vec![pol(
                "p1",
                en,
                &format!(
                    r#""applications":{{"includeApplications":["All"],"excludeApplications":["{EXCHANGE}"]}}"#
                ),
                "OR mfa",
            )],
            |r| r.app = apps::EXCHANGE_ONLINE,
            Open,
            Allow,
            UnprotectedAllowed,
            &[],
        ),
        (
            "All minus another app",
            vec![pol(
                "p1",
                en,
                &format!(
                    r#""applications":{{"includeApplications":["All"],"excludeApplications":["{EXCHANGE}"]}}"#
                ),
                "OR mfa",
            )],
            none,
            Open,
            Deny,
            MfaRequired,
            &["p1"],
        ),
        (
            "Office365 excluded",
            vec![pol(
                "p1",
                en,
                r#""applications":{"includeApplications":["All"],"excludeApplications":["Office365"]}"#,
                "OR mfa",
            )],
            none,
            Open,
            Allow,
            UnprotectedAllowed,
            &[],
        ),
        (
            "includeApplications None",
            vec![pol(
                "p1",
                en,
                r#""applications":{"includeApplications":["None"]}"#,
                "OR block",
            )],
            none,
            Open,
            Allow,
            UnprotectedAllowed,
            &[],
        ),
        // Client app types.
        (
            "browser not in [mobile]",
            vec![pol(
                "p1",
                en,
                r#""clientAppTypes":["mobileAppsAndDesktopClients"]"#,
                "OR block",
            )],
            none,
            Open,
            Allow,
            UnprotectedAllowed,
            &[],
        ),
        (
            "mobile in [mobile]",
            vec![pol(
                "p1",
                en,
                r#""clientAppTypes":["mobileAppsAndDesktopClients"]"#,
                "OR block",
            )],
            |r| r.client_app = ClientAppType::MobileAppsAndDesktopClients,
            Open,
            Deny,
            BlockedByPolicy,
            &["p1"],
        ),
        (
            "EAS in legacy",
            vec![pol(
                "p1",
                en,
                r#""clientAppTypes":["exchangeActiveSync","other"]"#,
                "OR block",
            )],
            |r| r.client_app = ClientAppType::ExchangeActiveSync,
            Open,
            Deny,
            BlockedByPolicy,
            &["p1"],
        ),
        (
            "other in legacy",
            vec![pol(
                "p1",
                en,
                r#""clientAppTypes":["exchangeActiveSync","other"]"#,
                "OR block",
            )],
            |r| r.client_app = ClientAppType::Other,
            Open,
            Deny,
            BlockedByPolicy,
            &["p1"],
        ),
        (
            "all client apps",
            vec![pol("p1", en, r#""clientAppTypes":["all"]"#, "OR block")],
            none,
            Open,
            Deny,
            BlockedByPolicy,
            &["p1"],
        ),
        // Platforms: from the device record, else the User-Agent; unknown only matches `all`.
        (
            "device platform not included",
            vec![pol(
                "p1",
                en,
                r#""platforms":{"includePlatforms":["iOS"]}"#,
                "OR block",
            )],
            none,
            Open,
            Allow,
            UnprotectedAllowed,
            &[],
        ),
        (
            "device platform wins over UA",
            vec![pol(
                "p1",
                en,
                r#""platforms":{"includePlatforms":["iOS"]}"#,
                "OR block",
            )],
            |r| r.ua_platform = Some(Platform::Ios),
            Open,
            Allow,
            UnprotectedAllowed,
            &[],
        ),
        (
            "UA platform without device",
            vec![pol(
                "p1",
                en,
                r#""platforms":{"includePlatforms":["iOS"]}"#,
                "OR block",
            )],
            |r| {
                r.device = None;
                r.ua_platform = Some(Platform::Ios)
            },
            Open,
            Deny,
            BlockedByPolicy,
            &["p1"],
        ),
        (
            "device without platform uses UA",
            vec![pol(
                "p1",
                en,
                r#""platforms":{"includePlatforms":["iOS"]}"#,
                "OR block",
            )],
            |r| {
                r.device = Some(DeviceFacts {
                    platform: None,
                    ..device()
                });
                r.ua_platform = Some(Platform::Ios)
            },
            Open,
            Deny,
            BlockedByPolicy,
            &["p1"],
        ),
        (
            "unknown platform vs list",
            vec![pol(
                "p1",
                en,
                r#""platforms":{"includePlatforms":["windows"]}"#,
                "OR block",
            )],
            |r| {
                r.device = None;
                r.ua_platform = None
            },
            Open,
            Allow,
            UnprotectedAllowed,
            &[],
        ),
        (
            "unknown platform vs all",
            vec![pol(
                "p1",
                en,
                r#""platforms":{"includePlatforms":["all"],"excludePlatforms":["iOS"]}"#,
                "OR block",
            )],
            |r| {
                r.device = None;
                r.ua_platform = None
            },
            Open,
            Deny,
            BlockedByPolicy,
            &["p1"],
        ),
        (
            "platform excluded",
            vec![pol(
                "p1",
                en,
                r#""platforms":{"includePlatforms":["all"],"excludePlatforms":["windows"]}"#,
                "OR block",
            )],
            none,
            Open,
            Allow,
            UnprotectedAllowed,
            &[],
        ),
        // Locations: named ranges, All, AllTrusted, exclusions.
        (
            "AllTrusted includes loopback",
            vec![pol(
                "p1",
                en,
                r#""locations":{"includeLocations":["AllTrusted"]}"#,
                "OR block",
            )],
            |r| r.ip = [127, 0, 0, 1].into(),
            Open,
            Deny,
            BlockedByPolicy,
            &["p1"],
        ),
        (
            "AllTrusted excludes others",
            vec![pol(
                "p1",
                en,
                r#""locations":{"includeLocations":["AllTrusted"]}"#,
                "OR block",
            )],
            none,
            Open,
            Allow,
            UnprotectedAllowed,
            &[],
        ),
        (
            "All except trusted, trusted ip",
            vec![pol(
                "p1",
                en,
                r#""locations":{"includeLocations":["All"],"excludeLocations":["AllTrusted"]}"#,
                "OR mfa",
            )],
            |r| r.ip = [127, 0, 0, 1].into(),
            Open,
            Allow,
            UnprotectedAllowed,
            &[],
        ),
        (
            "All except trusted, other ip",
            vec![pol(
                "p1",
                en,
                r#""locations":{"includeLocations":["All"],"excludeLocations":["AllTrusted"]}"#,
                "OR mfa",
            )],
            none,
            Open,
            Deny,
            MfaRequired,
            &["p1"],
        ),
        (
            "named location by id",
            vec![pol(
                "p1",
                en,
                r#""locations":{"includeLocations":["branch"]}"#,
                "OR block",
            )],
            |r| r.ip = [10, 1, 2, 3].into(),
            Open,
            Deny,
            BlockedByPolicy,
            &["p1"],
        ),
        (
            "named location, ip outside",
            vec![pol(
                "p1",
                en,
                r#""locations":{"includeLocations":["branch"]}"#,
                "OR block",
            )],
            none,
            Open,
            Allow,
            UnprotectedAllowed,
            &[],
        ),
        // Device filters, including null attributes for unknown devices.
        (
            "include filter matches",
            vec![pol(
                "p1",
                en,
                r#""devices":{"deviceFilter":{"mode":"include","rule":"device.trustType -eq \"AzureAD\""}}"#,
                "OR mfa",
            )],
            none,
            Open,
            Deny,
            MfaRequired,
            &["p1"],
        ),
        (
            "include filter, unknown device",
            vec![pol(
                "p1",
                en,
                r#""devices":{"deviceFilter":{"mode":"include","rule":"device.trustType -eq \"AzureAD\""}}"#,
                "OR mfa",
            )],
            |r| r.device = None,
            Open,
            Allow,
            UnprotectedAllowed,
            &[],
        ),
        (
            "exclude filter matches",
            vec![pol(
                "p1",
                en,
                r#""devices":{"deviceFilter":{"mode":"exclude","rule":"device.model -startsWith \"Surface\""}}"#,
                "OR mfa",
            )],
            none,
            Open,
            Allow,
            UnprotectedAllowed,
            &[],
        ),
        (
            "exclude filter, negative op on null",
            vec![pol(
                "p1",
                en,
                r#""devices":{"deviceFilter":{"mode":"exclude","rule":"device.trustType -ne \"AzureAD\""}}"#,
                "OR mfa",
            )],
            |r| r.device = None,
            Open,
            Allow,
            UnprotectedAllowed,
            &[],
        ),
        (
            "exclude filter, positive op on null",
            vec![pol(
                "p1",
                en,
                r#""devices":{"deviceFilter":{"mode":"exclude","rule":"device.trustType -eq \"AzureAD\""}}"#,
                "OR mfa",
            )],
            |r| r.device = None,
            Open,
            Deny,
            MfaRequired,
            &["p1"],
        ),
        // Grant controls: block wins, AND/OR, mfa, domain join, unknown controls.
        (
            "block wins over satisfied",
            vec![pol("p1", en, "", compliant), pol("p2", en, "", "OR block")],
            none,
            Open,
            Deny,
            BlockedByPolicy,
            &["p2"],
        ),
        (
            "AND needs both",
            vec![pol("p1", en, "", "AND compliantDevice mfa")],
            none,
            Open,
            Deny,
            MfaRequired,
            &["p1"],
        ),
        (
            "AND with both",
            vec![pol("p1", en, "", "AND compliantDevice mfa")],
            |r| r.mfa = true,
            Open,
            Allow,
            PolicySatisfied,
            &["p1"],
        ),
        (
            "OR with one",
            vec![pol("p1", en, "", "OR compliantDevice mfa")],
            |r| {
                noncompliant(r);
                r.mfa = true
            },
            Open,
            Allow,
            PolicySatisfied,
            &["p1"],
        ),
        (
            "OR with none names the device",
            vec![pol("p1", en, "", "OR compliantDevice mfa")],
            noncompliant,
            Open,
            Deny,
            RiskAboveThreshold,
            &["p1"],
        ),
        (
            "mfa missing",
            vec![pol("p1", en, "", "OR mfa")],
            none,
            Open,
            Deny,
            MfaRequired,
            &["p1"],
        ),
        (
            "mfa present",
            vec![pol("p1", en, "", "OR mfa")],
            |r| r.mfa = true,
            Open,
            Allow,
            PolicySatisfied,
            &["p1"],
        ),
        (
            "domain join required",
            vec![pol("p1", en, "", "OR domainJoinedDevice")],
            none,
            Open,
            Deny,
            DomainJoinRequired,
            &["p1"],
        ),
        (
            "domain joined",
            vec![pol("p1", en, "", "OR domainJoinedDevice")],
            |r| {
                r.device = Some(DeviceFacts {
                    trust_type: TrustType::ServerAd,
                    ..device()
                })
            },
            Open,
            Allow,
            PolicySatisfied,
            &["p1"],
        ),
        (
            "unknown control",
            vec![pol("p1", en, "", "OR approvedApplication")],
            none,
            Open,
            Deny,
            ControlUnsatisfiable,
            &["p1"],
        ),
        (
            "unknown control OR mfa",
            vec![pol("p1", en, "", "OR approvedApplication mfa")],
            |r| r.mfa = true,
            Open,
            Allow,
            PolicySatisfied,
            &["p1"],
        ),
        (
            "no grant controls",
            vec![pol("p1", en, "", "")],
            none,
            Closed,
            Allow,
            PolicySatisfied,
            &["p1"],
        ),
        (
            "two failing: first names the reason",
            vec![pol("p1", en, "", compliant), pol("p2", en, "", "OR mfa")],
            |r| r.device = None,
            Open,
            Deny,
            DeviceUnknown,
            &["p1", "p2"],
        ),
        (
            "all satisfied are deciding",
            vec![pol("p1", en, "", compliant), pol("p2", en, "", "OR mfa")],
            |r| r.mfa = true,
            Closed,
            Allow,
            PolicySatisfied,
            &["p1", "p2"],
        ),
        // Report-only and disabled policies are never enforced.
        (
            "report-only block",
            vec![pol(
                "p1",
                "enabledForReportingButNotEnforced",
                "",
                "OR block",
            )],
            none,
            Open,
            Allow,
            UnprotectedAllowed,
            &[],
        ),
        (
            "report-only does not protect",
            vec![pol(
                "p1",
                "enabledForReportingButNotEnforced",
                "",
                compliant,
            )],
            none,
            Closed,
            Deny,
            NotProtected,
            &[],
        ),
        (
            "disabled block",
            vec![
                pol("p1", "disabled", "", "OR block"),
                pol("p2", en, "", compliant),
            ],
            none,
            Closed,
            Allow,
            PolicySatisfied,
            &["p2"],
        ),
        (
            "unsupported condition never applies",
            vec![pol("p1", en, r#""signInRiskLevels":["high"]"#, "OR block")],
            none,
            Open,
            Allow,
            UnprotectedAllowed,
            &[],
        ),
    ];
    for case in cases {
        check(case);
    }
}

#[test]
fn per_policy_results() {
    let ro = "enabledForReportingButNotEnforced";
    let set = set_of(&[
        pol("ok", "enabled", "", "OR compliantDevice"),
        pol("fail", "enabled", "", "OR mfa"),
        pol("na", "enabled", r#""clientAppTypes":["other"]"#, "OR block"),
        pol("off", "disabled", "", "OR block"),
        pol("ro-ok", ro, "", "OR compliantDevice"),
        pol("ro-fail", ro, "", "OR block"),
        pol("ro-na", ro, r#""clientAppTypes":["other"]"#, "OR block"),
    ]);
    let d = decide(&set, &request(), Unprotected::Deny);
    let results: Vec<_> = (0..set.len()).map(|i| d.result(&set, i).as_str()).collect();
    assert_eq!(
        results,
        [
            "success",
            "failure",
            "notApplied",
            "notEnabled",
            "reportOnlySuccess",
            "reportOnlyFailure",
            "reportOnlyNotApplied"
        ]
    );
    assert_eq!(
        (d.verdict, d.reason),
        (Verdict::Deny, ReasonCode::MfaRequired)
    );
}

#[test]
fn index_only_lists_policies_that_can_apply() {
    let set = set_of(&[
        pol(
            "sp",
            "enabled",
            &format!(r#""applications":{{"includeApplications":["{SHAREPOINT}"]}}"#),
            "OR mfa",
        ),
        pol(
            "all-but-ex",
            "enabled",
            &format!(
                r#""applications":{{"includeApplications":["All"],"excludeApplications":["{EXCHANGE}"]}}"#
            ),
            "OR mfa",
        ),
        pol("off", "disabled", "", "OR block"),
        pol("all", "enabled", "", "OR mfa"),
    ]);
    for (app, expected) in [
        (apps::SHAREPOINT_ONLINE, &[0usize, 1, 3][..]),
        (apps::EXCHANGE_ONLINE, &[3]),
        (AppId::from_u128(9).unwrap(), &[1, 3]),
    ] {
        let listed: Vec<usize> = set.candidates(app).iter().collect();
        assert_eq!(listed, expected, "{app}");
    }
}

/// A small deterministic generator (xorshift64*) for the randomized comparison below.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n
    }

    fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[self.below(from.len())]
    }
}

/// A random policy drawn from every kind of condition and control the decision knows.
fn random_policy(rng: &mut Rng, n: usize) -> Value {
    let users = [
        r#""users":{"includeUsers":["All"]}"#.to_owned(),
        format!(r#""users":{{"includeUsers":["All"],"excludeGroups":["{G3}"]}}"#),
        format!(r#""users":{{"includeGroups":["{G2}"]}}"#),
        format!(r#""users":{{"includeUsers":["{U1}"],"includeGroups":["{G3}"]}}"#),
        format!(r#""users":{{"includeUsers":["All"],"excludeUsers":["{U1}"]}}"#),
        r#""users":{"includeUsers":["None"]}"#.to_owned(),
        format!(
            r#""users":{{"includeGroups":["bbbbbbbb-0000-0000-0000-000000000001"],"excludeGroups":["{G2}"]}}"#
        ),
    ];
    let apps = [
        r#""applications":{"includeApplications":["All"]}"#.to_owned(),
        format!(r#""applications":{{"includeApplications":["{SHAREPOINT}"]}}"#),
        r#""applications":{"includeApplications":["Office365"]}"#.to_owned(),
        format!(
            r#""applications":{{"includeApplications":["All"],"excludeApplications":["{EXCHANGE}"]}}"#
        ),
    ];
    let extras = [
        "",
        r#","clientAppTypes":["browser"]"#,
        r#","clientAppTypes":["mobileAppsAndDesktopClients","exchangeActiveSync"]"#,
        r#","clientAppTypes":["other"]"#,
        r#","platforms":{"includePlatforms":["all"],"excludePlatforms":["linux"]}"#,
        r#","platforms":{"includePlatforms":["windows","iOS"]}"#,
        r#","platforms":{"includePlatforms":["android"],"excludePlatforms":["android"]}"#,
        r#","locations":{"includeLocations":["All"],"excludeLocations":["AllTrusted"]}"#,
        r#","locations":{"includeLocations":["branch"]}"#,
        r#","devices":{"deviceFilter":{"mode":"exclude","rule":"device.extensionAttribute1 -eq \"kiosk\""}}"#,
        r#","devices":{"deviceFilter":{"mode":"include","rule":"device.trustType -eq \"ServerAD\""}}"#,
        r#","signInRiskLevels":["high"]"#,
    ];
    let grants = [
        "OR compliantDevice",
        "OR mfa",
        "OR block",
        "OR compliantDevice mfa",
        "AND compliantDevice mfa",
        "OR domainJoinedDevice",
        "OR approvedApplication",
        "",
    ];
    let states = [
        "enabled",
        "enabled",
        "enabledForReportingButNotEnforced",
        "disabled",
    ];
    let mut conditions = format!(
        "{},{}",
        users[rng.below(users.len())],
        apps[rng.below(apps.len())]
    );
    for _ in 0..rng.below(3) {
        let extra = rng.pick(&extras);
        if !conditions.contains(&extra[..extra.find(':').unwrap_or(0)]) {
            conditions.push_str(extra);
        }
    }
    pol(
        &format!("p{n}"),
        rng.pick(&states),
        &conditions,
        rng.pick(&grants),
    )
}

/// A random request: user, groups, app, client, platform, address, device state and trust.
fn random_request(rng: &mut Rng) -> RequestFacts<'static> {
    static GROUP_SETS: [&[GroupId]; 5] =
        [&[], &STAFF, &BREAK_GLASS, &ADMINS, &[group(2), group(3)]];
    let mut req = request();
    req.user = rng.pick(&[None, Some(user(1)), Some(user(2))]);
    req.groups = rng.pick(&GROUP_SETS);
    req.mfa = rng.below(2) == 0;
    req.app = rng.pick(&[
        apps::SHAREPOINT_ONLINE,
        apps::EXCHANGE_ONLINE,
        AppId::from_u128(9).expect("non-zero"),
    ]);
    req.client_app = rng.pick(&ClientAppType::ALL);
    req.ua_platform = rng.pick(&[
        None,
        Some(Platform::Linux),
        Some(Platform::Android),
        Some(Platform::Ios),
    ]);
    req.ip = rng
        .pick(&[[127, 0, 0, 1], [10, 1, 2, 3], [203, 0, 113, 7]])
        .into();
    req.device_presented = rng.below(2) == 0;
    req.device = match rng.below(4) {
        0 => None,
        k => Some(DeviceFacts {
            state: rng.pick(&ComplianceState::ALL),
            platform: rng.pick(&[None, Some(Platform::Windows), Some(Platform::Android)]),
            trust_type: rng.pick(&[TrustType::AzureAd, TrustType::ServerAd, TrustType::None]),
            reasons: if k == 1 {
                ReasonSet::EMPTY.with(ReasonCode::RiskAboveThreshold)
            } else {
                ReasonSet::EMPTY
            },
            ..device()
        }),
    };
    req
}

/// `decide` takes the screen's shortcut; `explain` tests each policy's conditions in turn.
/// Over many random policy sets and requests they must reach the same decision.
#[test]
fn screened_decide_agrees_with_per_policy_evaluation() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut allowed = 0;
    for round in 0..60 {
        let count = 1 + rng.below(24);
        let policies: Vec<Value> = (0..count).map(|n| random_policy(&mut rng, n)).collect();
        let set = set_of(&policies);
        for _ in 0..200 {
            let req = random_request(&mut rng);
            let unprotected = rng.pick(&[Unprotected::Allow, Unprotected::Deny]);
            let d = decide(&set, &req, unprotected);
            assert_eq!(
                d,
                explain(&set, &req, unprotected).decision,
                "round {round}: {req:?}\n{}",
                serde_json::to_string_pretty(&policies).unwrap()
            );
            allowed += usize::from(d.is_allow());
        }
    }
    // The draw reaches both verdicts often (a check that the comparison is not vacuous).
    assert!(
        (2_000..10_000).contains(&allowed),
        "{allowed} of 12,000 allowed"
    );
}

#[test]
fn policy_bits_across_words() {
    let picks = [0usize, 5, 63, 64, 130, 200, 255];
    let mut bits: PolicyBits = picks.iter().copied().chain([256, 999]).collect();
    assert_eq!(
        bits.iter().collect::<Vec<_>>(),
        picks,
        "sorted, out-of-range ignored"
    );
    assert!(bits.contains(64) && !bits.contains(65) && !bits.contains(300));
    bits.remove(64);
    bits.remove(255);
    assert_eq!(bits.iter().collect::<Vec<_>>(), [0, 5, 63, 130, 200]);
    let low: PolicyBits = (0..70).collect();
    assert_eq!(bits.and(low).iter().collect::<Vec<_>>(), [0, 5, 63]);
    assert_eq!(bits.and_not(low).iter().collect::<Vec<_>>(), [130, 200]);
    assert_eq!(bits.or(low).iter().count(), 72);
    assert!(PolicyBits::EMPTY.iter().next().is_none() && PolicyBits::EMPTY.is_empty());
}
