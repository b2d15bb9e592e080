//! Findings about a policy set for `portcullis check`: unprotected routes, policies that can
//! never apply or never be satisfied, lock-outs, unknown groups, unsupported conditions.

use std::fmt;

use serde::Serialize;

use crate::access::policy::{Controls, Policy, PolicyState};
use crate::access::PolicySet;
use crate::ids::{AppId, GroupId};

#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
    Info,
}

/// One finding.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct Lint {
    pub severity: Severity,
    /// The policy it is about (`"name" (id)`), if any.
    pub policy: Option<String>,
    pub message: String,
}

impl fmt::Display for Lint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        };
        match &self.policy {
            Some(p) => write!(f, "{level}: policy {p}: {}", self.message),
            None => write!(f, "{level}: {}", self.message),
        }
    }
}

impl PolicySet {
    /// Lints the set against the group ids the directory knows and the apps the routes front.
    pub fn lint(&self, known_groups: &dyn Fn(GroupId) -> bool, route_apps: &[AppId]) -> Vec<Lint> {
        let mut out = Vec::new();
        for &app in route_apps {
            let protected = self.candidates(app).iter().any(|i| {
                self.policies()
                    .get(i)
                    .is_some_and(|p| p.state == PolicyState::Enabled)
            });
            if !protected {
                out.push(Lint {
                    severity: Severity::Warning,
                    policy: None,
                    message: format!(
                        "app {app} is not covered by any enabled policy; the route's \
                         `unprotected` setting decides its requests"
                    ),
                });
            }
        }
        for p in self.policies() {
            lint_policy(p, known_groups, &mut out);
        }
        out
    }
}

fn lint_policy(p: &Policy, known_groups: &dyn Fn(GroupId) -> bool, out: &mut Vec<Lint>) {
    let mut push = |severity, message: String| {
        out.push(Lint {
            severity,
            policy: Some(p.label()),
            message,
        })
    };
    match p.state {
        PolicyState::ReportOnly => push(
            Severity::Info,
            "report-only: evaluated and logged, never enforced".into(),
        ),
        PolicyState::Disabled => push(Severity::Info, "disabled: never evaluated".into()),
        PolicyState::Enabled => {}
    }
    if let Some(why) = never_applies(p) {
        push(Severity::Warning, format!("can never apply: {why}"));
    }
    let u = &p.users;
    if p.state == PolicyState::Enabled
        && !p.unsupported_condition
        && p.grant.controls.contains(Controls::BLOCK)
        && u.include_all
        && u.exclude_users.is_empty()
        && u.exclude_groups.is_empty()
        && p.apps.include_all
        && p.apps.exclude.is_empty()
        && p.client_apps == crate::access::policy::ClientAppSet::ALL
        && p.platforms.is_none()
        && p.locations.is_none()
        && p.device_filter.is_none()
    {
        push(
            Severity::Warning,
            "blocks every user from every app with no exclusion (lock-out); exclude a \
             break-glass group"
                .into(),
        );
    }
    if p.grant.controls.contains(Controls::UNKNOWN) {
        push(
            Severity::Warning,
            format!(
                "requires {} which this gateway cannot satisfy: every request it applies to is \
                 denied",
                p.grant.unknown.join(", ")
            ),
        );
    }
    for (groups, side) in [
        (&u.exclude_groups, "excludes"),
        (&u.include_groups, "includes"),
    ] {
        for g in groups.iter().filter(|g| !known_groups(**g)) {
            push(Severity::Warning, format!("{side} unknown group {g}"));
        }
    }
    for w in &p.warnings {
        push(Severity::Warning, w.clone());
    }
}

fn never_applies(p: &Policy) -> Option<&'static str> {
    let u = &p.users;
    let a = &p.apps;
    if p.unsupported_condition {
        return Some("it sets a condition this gateway cannot evaluate");
    }
    if !u.include_all && u.include_users.is_empty() && u.include_groups.is_empty() {
        return Some("it includes no users");
    }
    if !u.include_all
        && u.include_groups.is_empty()
        && u.include_users.iter().all(|x| u.exclude_users.contains(x))
    {
        return Some("every included user is excluded");
    }
    if !a.include_all && a.include.iter().all(|x| a.exclude.contains(x)) {
        return Some("it includes no apps (or excludes every app it includes)");
    }
    if p.client_apps.0 == 0 {
        return Some("it includes no client app types");
    }
    if let Some(c) = &p.platforms {
        if !c.include_all && c.include.0 & !c.exclude.0 == 0 {
            return Some("every included platform is excluded");
        }
    }
    if let Some(l) = &p.locations {
        if l.include.is_empty() {
            return Some("its included locations contain no address");
        }
        if l.exclude.all {
            return Some("it excludes all locations");
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::decision::tests::{pol, set_of};
    use crate::ids::apps;

    fn check(policies: &[serde_json::Value], expected: &[(Severity, &str)]) {
        let set = set_of(policies);
        let known = |g: GroupId| g.to_string().ends_with('1');
        let lints = set.lint(&known, &[apps::SHAREPOINT_ONLINE, apps::EXCHANGE_ONLINE]);
        let rendered: Vec<String> = lints.iter().map(ToString::to_string).collect();
        for (severity, fragment) in expected {
            assert!(
                lints
                    .iter()
                    .any(|l| l.severity == *severity && l.to_string().contains(fragment)),
                "{severity:?} {fragment} not in {rendered:#?}"
            );
        }
        assert_eq!(lints.len(), expected.len(), "{rendered:#?}");
    }

    #[test]
    fn findings() {
        let sp =
            r#""applications":{"includeApplications":["00000003-0000-0ff1-ce00-000000000000"]}"#;
        let ex =
            r#""applications":{"includeApplications":["00000002-0000-0ff1-ce00-000000000000"]}"#;
        let unprotected_ex = (
            Severity::Warning,
            "app 00000002-0000-0ff1-ce00-000000000000 is not covered",
        );
        for (policies, expected) in [
            (
                vec![],
                vec![
                    (
                        Severity::Warning,
                        "app 00000003-0000-0ff1-ce00-000000000000 is not covered",
                    ),
                    unprotected_ex,
                ],
            ),
            (
                vec![pol("p1", "enabled", sp, "OR compliantDevice")],
                vec![unprotected_ex],
            ),
            (
                vec![pol("p1", "enabled", "", "OR block")],
                vec![(Severity::Warning, "lock-out")],
            ),
            (
                vec![
                    pol("p1", "enabledForReportingButNotEnforced", sp, "OR mfa"),
                    pol("p2", "enabled", ex, "OR mfa"),
                ],
                vec![
                    (
                        Severity::Warning,
                        "app 00000003-0000-0ff1-ce00-000000000000 is not covered",
                    ),
                    (Severity::Info, "policy \"policy p1\" (p1): report-only"),
                ],
            ),
            (
                vec![pol("p1", "disabled", "", "OR mfa")],
                vec![
                    (Severity::Warning, "app 00000003"),
                    unprotected_ex,
                    (Severity::Info, "disabled"),
                ],
            ),
            (
                vec![
                    pol(
                        "p1",
                        "enabled",
                        r#""users":{"includeUsers":["None"]}"#,
                        "OR mfa",
                    ),
                    pol("p2", "enabled", "", "OR mfa"),
                ],
                vec![(Severity::Warning, "can never apply: it includes no users")],
            ),
            (
                vec![
                    pol(
                        "p1",
                        "enabled",
                        r#""users":{"includeUsers":["aaaaaaaa-0000-0000-0000-000000000001"],"excludeUsers":["aaaaaaaa-0000-0000-0000-000000000001"]}"#,
                        "OR mfa",
                    ),
                    pol("p2", "enabled", "", "OR mfa"),
                ],
                vec![(Severity::Warning, "every included user is excluded")],
            ),
            (
                vec![
                    pol(
                        "p1",
                        "enabled",
                        r#""applications":{"includeApplications":["None"]}"#,
                        "OR mfa",
                    ),
                    pol("p2", "enabled", "", "OR mfa"),
                ],
                vec![(Severity::Warning, "it includes no apps")],
            ),
            (
                vec![
                    pol(
                        "p1",
                        "enabled",
                        r#""platforms":{"includePlatforms":["iOS"],"excludePlatforms":["iOS"]}"#,
                        "OR mfa",
                    ),
                    pol("p2", "enabled", "", "OR mfa"),
                ],
                vec![(Severity::Warning, "every included platform is excluded")],
            ),
            (
                vec![pol("p1", "enabled", "", "OR approvedApplication")],
                vec![
                    (
                        Severity::Warning,
                        "requires approvedApplication which this gateway cannot satisfy",
                    ),
                    (
                        Severity::Warning,
                        "grantControls: approvedApplication cannot be satisfied",
                    ),
                ],
            ),
            (
                vec![pol(
                    "p1",
                    "enabled",
                    r#""users":{"includeUsers":["All"],"excludeGroups":["bbbbbbbb-0000-0000-0000-000000000003", "bbbbbbbb-0000-0000-0000-000000000001"]}"#,
                    "OR block",
                )],
                vec![(
                    Severity::Warning,
                    "excludes unknown group bbbbbbbb-0000-0000-0000-000000000003",
                )],
            ),
            (
                vec![
                    pol(
                        "p1",
                        "enabled",
                        r#""signInRiskLevels":["high"]"#,
                        "OR block",
                    ),
                    pol("p2", "enabled", "", "OR mfa"),
                ],
                vec![
                    (Severity::Warning, "can never apply: it sets a condition"),
                    (Severity::Warning, "signInRiskLevels is not supported"),
                ],
            ),
        ] {
            check(&policies, &expected);
        }
    }
}
