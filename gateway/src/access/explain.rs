//! What-if: the decision for a request with, per policy, whether it applied (or the first
//! condition that did not match) and whether its controls were met. Runs the same
//! `evaluate` as `decide`, with a recording `Recorder`.

use std::fmt;

use serde::Serialize;

use crate::access::conditions::{conditions_match, GrantOutcome, Miss};
use crate::access::decision::{evaluate, Decision, PolicyResult, Recorder, Unprotected, Verdict};
use crate::access::policy::{GrantOperator, PolicyState};
use crate::access::request::RequestFacts;
use crate::access::PolicySet;

/// One policy's part in a what-if.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyExplanation {
    pub id: String,
    pub display_name: String,
    pub state: &'static str,
    pub result: PolicyResult,
    pub applied: bool,
    /// Why it did not apply (disabled, or the first condition that did not match).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_applied_because: Option<String>,
    /// Whether its grant controls were met (only when it applied).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub satisfied: Option<bool>,
    /// The grant controls, e.g. `compliantDevice OR mfa`.
    pub grant: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unmet_controls: Vec<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// A decision explained.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Explanation {
    pub verdict: &'static str,
    pub reason_code: &'static str,
    pub reason: &'static str,
    pub deciding_policies: Vec<String>,
    pub compliance_reasons: Vec<&'static str>,
    pub policies: Vec<PolicyExplanation>,
    #[serde(skip)]
    pub decision: Decision,
}

type Slot = Option<(Result<(), Miss>, Option<GrantOutcome>)>;

struct Recording(Vec<Slot>);

impl Recorder for Recording {
    fn record(&mut self, index: usize, conditions: Result<(), Miss>, grant: Option<GrantOutcome>) {
        if let Some(slot) = self.0.get_mut(index) {
            *slot = Some((conditions, grant));
        }
    }
}

/// Explains the decision `decide` would make for this request.
pub fn explain(set: &PolicySet, req: &RequestFacts<'_>, unprotected: Unprotected) -> Explanation {
    let mut rec = Recording(vec![None; set.len()]);
    let decision = evaluate(set, req, unprotected, &mut rec);
    let policies = set
        .policies()
        .iter()
        .zip(rec.0)
        .enumerate()
        .map(|(i, (p, slot))| {
            let (not_applied_because, satisfied, unmet) = match slot {
                _ if p.state == PolicyState::Disabled => {
                    (Some("disabled".to_owned()), None, vec![])
                }
                Some((Ok(()), Some(g))) => {
                    (None, Some(g.satisfied), g.unmet.graph_names().collect())
                }
                Some((Err(miss), _)) => (Some(miss.describe(p)), None, vec![]),
                // Not a candidate for this app: say which condition rules it out.
                _ => match conditions_match(p, req, true) {
                    Err(miss) => (Some(miss.describe(p)), None, vec![]),
                    Ok(()) => (Some("app not in scope".to_owned()), None, vec![]),
                },
            };
            let op = match p.grant.operator {
                GrantOperator::And => " AND ",
                GrantOperator::Or => " OR ",
            };
            let mut controls: Vec<String> = p
                .grant
                .controls
                .graph_names()
                .filter(|n| *n != "unknown")
                .map(str::to_owned)
                .collect();
            controls.extend(p.grant.unknown.iter().map(|u| format!("{u} (unsupported)")));
            PolicyExplanation {
                id: p.id.to_string(),
                display_name: p.display_name.to_string(),
                state: p.state.as_str(),
                result: decision.result(set, i),
                applied: not_applied_because.is_none(),
                not_applied_because,
                satisfied,
                grant: if controls.is_empty() {
                    "(none)".into()
                } else {
                    controls.join(op)
                },
                unmet_controls: unmet,
                warnings: p.warnings.clone(),
            }
        })
        .collect();
    Explanation {
        verdict: match decision.verdict {
            Verdict::Allow => "allow",
            Verdict::Deny => "deny",
        },
        reason_code: decision.reason.as_str(),
        reason: decision.reason.describe(),
        deciding_policies: decision
            .deciding
            .iter()
            .filter_map(|i| set.policies().get(i).map(|p| p.id.to_string()))
            .collect(),
        compliance_reasons: decision
            .compliance_reasons
            .iter()
            .map(|r| r.as_str())
            .collect(),
        policies,
        decision,
    }
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} ({}): {}",
            self.verdict.to_uppercase(),
            self.reason_code,
            self.reason
        )?;
        if !self.deciding_policies.is_empty() {
            writeln!(
                f,
                "deciding policies: {}",
                self.deciding_policies.join(", ")
            )?;
        }
        if !self.compliance_reasons.is_empty() {
            writeln!(
                f,
                "device compliance reasons: {}",
                self.compliance_reasons.join(", ")
            )?;
        }
        for p in &self.policies {
            write!(
                f,
                "  - {:?} ({}) [{}] -> {}: ",
                p.display_name,
                p.id,
                p.state,
                p.result.as_str()
            )?;
            match (&p.not_applied_because, p.satisfied) {
                (Some(why), _) => write!(f, "not applied: {why}")?,
                (None, Some(true)) => write!(f, "applied, grant {} satisfied", p.grant)?,
                (None, _) => write!(
                    f,
                    "applied, grant {} NOT satisfied (unmet: {})",
                    p.grant,
                    p.unmet_controls.join(", ")
                )?,
            }
            writeln!(f)?;
            for w in &p.warnings {
                writeln!(f, "      warning: {w}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::decision::tests::{pol, request, set_of};
    use crate::access::ClientAppType;

    fn check(edit: fn(&mut RequestFacts<'static>), expected: &[&str]) {
        let set = set_of(&[
            pol("cd", "enabled", "", "OR compliantDevice"),
            pol(
                "mob",
                "enabled",
                r#""clientAppTypes":["mobileAppsAndDesktopClients"]"#,
                "AND mfa compliantDevice",
            ),
            pol(
                "ex",
                "enabled",
                r#""applications":{"includeApplications":["00000002-0000-0ff1-ce00-000000000000"]}"#,
                "OR mfa",
            ),
            pol("off", "disabled", "", "OR block"),
            pol("ro", "enabledForReportingButNotEnforced", "", "OR mfa"),
        ]);
        let mut req = request();
        edit(&mut req);
        let e = explain(&set, &req, Unprotected::Deny);
        let text = e.to_string();
        let json = serde_json::to_string(&e).unwrap();
        for fragment in expected {
            assert!(
                text.contains(fragment) || json.contains(fragment),
                "{fragment:?} not in\n{text}\n{json}"
            );
        }
    }

    #[test]
    fn explains_each_policy() {
        check(
            |_| {},
            &[
                "ALLOW (policy_satisfied)",
                "deciding policies: cd",
                r#""policy cd" (cd) [enabled] -> success: applied, grant compliantDevice satisfied"#,
                "not applied: client app type browser not in [mobileAppsAndDesktopClients]",
                r#"(ex) [enabled] -> notApplied: not applied: app not included"#,
                "[disabled] -> notEnabled: not applied: disabled",
                "-> reportOnlyFailure: applied, grant mfa NOT satisfied (unmet: mfa)",
                r#""notAppliedBecause":"disabled""#,
                r#""result":"reportOnlyFailure""#,
            ],
        );
        check(
            |r| r.client_app = ClientAppType::MobileAppsAndDesktopClients,
            &[
                "DENY (mfa_required)",
                "deciding policies: mob",
                "grant compliantDevice AND mfa NOT satisfied (unmet: mfa)",
            ],
        );
    }
}
