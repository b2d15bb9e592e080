//! The per-request decision (product brief section 5): which policies apply, whether they
//! are satisfied, and the verdict with its reason. Pure and allocation-free; `decide` and
//! `explain` run the same `evaluate`, with a no-op or a recording `Recorder`.

use serde::Deserialize;

use crate::access::conditions::{check_grant, conditions_match, unmet_reason, GrantOutcome, Miss};
use crate::access::policy::PolicyState;
use crate::access::request::RequestFacts;
use crate::access::PolicySet;
use crate::reason::{ReasonCode, ReasonSet};

/// What a route does with a request no enabled policy applies to. Default: deny.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unprotected {
    Allow,
    #[default]
    Deny,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Verdict {
    Allow,
    Deny,
}

/// A fixed-size set of policy indices (`MAX_POLICIES` bits).
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct PolicyBits([u64; 4]);

impl PolicyBits {
    pub const EMPTY: Self = Self([0; 4]);

    #[inline]
    pub fn insert(&mut self, index: usize) {
        self.0[(index >> 6) & 3] |= 1 << (index & 63);
    }

    #[inline]
    pub fn contains(&self, index: usize) -> bool {
        index < 256 && self.0[index >> 6] & (1 << (index & 63)) != 0
    }

    pub fn is_empty(&self) -> bool {
        self.0 == [0; 4]
    }

    /// The indices in increasing order.
    pub fn iter(self) -> impl Iterator<Item = usize> {
        (0..256).filter(move |i| self.contains(*i))
    }
}

impl std::fmt::Debug for PolicyBits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// A policy's result in the sign-in log's vocabulary.
#[derive(Clone, Copy, PartialEq, Eq, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum PolicyResult {
    Success,
    Failure,
    NotApplied,
    NotEnabled,
    ReportOnlySuccess,
    ReportOnlyFailure,
    ReportOnlyNotApplied,
}

impl PolicyResult {
    pub const fn as_str(self) -> &'static str {
        match self {
            PolicyResult::Success => "success",
            PolicyResult::Failure => "failure",
            PolicyResult::NotApplied => "notApplied",
            PolicyResult::NotEnabled => "notEnabled",
            PolicyResult::ReportOnlySuccess => "reportOnlySuccess",
            PolicyResult::ReportOnlyFailure => "reportOnlyFailure",
            PolicyResult::ReportOnlyNotApplied => "reportOnlyNotApplied",
        }
    }
}

/// The verdict for one request, with what the decision log needs. `Copy`, no heap.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Decision {
    pub verdict: Verdict,
    pub reason: ReasonCode,
    /// The policies that decided: the blocking ones, the unsatisfied ones on a deny, the
    /// applying enforced ones on an allow; empty when the route's `unprotected` decided.
    pub deciding: PolicyBits,
    /// Policies (enabled or report-only) whose conditions all matched.
    pub applied: PolicyBits,
    /// Applied policies whose grant controls were satisfied.
    pub satisfied: PolicyBits,
    /// The device's compliance reasons (empty without a device).
    pub compliance_reasons: ReasonSet,
}

impl Decision {
    pub const fn is_allow(&self) -> bool {
        matches!(self.verdict, Verdict::Allow)
    }

    /// Policy `index`'s result for the log.
    pub fn result(&self, set: &PolicySet, index: usize) -> PolicyResult {
        let applied = self.applied.contains(index);
        let satisfied = self.satisfied.contains(index);
        match set.policies().get(index).map(|p| p.state) {
            Some(PolicyState::Enabled) => match (applied, satisfied) {
                (true, true) => PolicyResult::Success,
                (true, false) => PolicyResult::Failure,
                _ => PolicyResult::NotApplied,
            },
            Some(PolicyState::ReportOnly) => match (applied, satisfied) {
                (true, true) => PolicyResult::ReportOnlySuccess,
                (true, false) => PolicyResult::ReportOnlyFailure,
                _ => PolicyResult::ReportOnlyNotApplied,
            },
            Some(PolicyState::Disabled) | None => PolicyResult::NotEnabled,
        }
    }

    /// Whether any enabled policy applied (the log's `conditionalAccessStatus` is then
    /// success or failure rather than notApplied).
    pub fn enforced_applied(&self, set: &PolicySet) -> bool {
        self.applied
            .iter()
            .any(|i| set.policies().get(i).map(|p| p.state) == Some(PolicyState::Enabled))
    }
}

/// Observes each candidate policy's evaluation (what-if records; `decide` ignores).
pub(crate) trait Recorder {
    fn record(&mut self, index: usize, conditions: Result<(), Miss>, grant: Option<GrantOutcome>);
}

impl Recorder for () {
    #[inline(always)]
    fn record(&mut self, _: usize, _: Result<(), Miss>, _: Option<GrantOutcome>) {}
}

/// Decides one request. Pure, allocation-free, cannot fail.
pub fn decide(set: &PolicySet, req: &RequestFacts<'_>, unprotected: Unprotected) -> Decision {
    evaluate(set, req, unprotected, &mut ())
}

pub(crate) fn evaluate<R: Recorder>(
    set: &PolicySet,
    req: &RequestFacts<'_>,
    unprotected: Unprotected,
    rec: &mut R,
) -> Decision {
    let mut applied = PolicyBits::EMPTY;
    let mut satisfied = PolicyBits::EMPTY;
    let mut enforced = PolicyBits::EMPTY;
    let mut blocking = PolicyBits::EMPTY;
    let mut failing = PolicyBits::EMPTY;
    let mut deny_reason: Option<ReasonCode> = None;
    let policies = set.policies();
    for &i in set.candidates(req.app) {
        let i = usize::from(i);
        let Some(p) = policies.get(i) else { continue };
        let matched = conditions_match(p, req, false);
        if matched.is_err() {
            rec.record(i, matched, None);
            continue;
        }
        applied.insert(i);
        let outcome = check_grant(p, req);
        rec.record(i, matched, Some(outcome));
        if outcome.satisfied {
            satisfied.insert(i);
        }
        if p.state != PolicyState::Enabled {
            continue;
        }
        enforced.insert(i);
        if outcome.blocked {
            blocking.insert(i);
        } else if !outcome.satisfied {
            failing.insert(i);
            deny_reason.get_or_insert_with(|| unmet_reason(outcome.unmet, req));
        }
    }
    let (verdict, reason, deciding) = if !blocking.is_empty() {
        (Verdict::Deny, ReasonCode::BlockedByPolicy, blocking)
    } else if let Some(reason) = deny_reason {
        (Verdict::Deny, reason, failing)
    } else if !enforced.is_empty() {
        (Verdict::Allow, ReasonCode::PolicySatisfied, enforced)
    } else {
        match unprotected {
            Unprotected::Allow => (Verdict::Allow, ReasonCode::UnprotectedAllowed, enforced),
            Unprotected::Deny => (Verdict::Deny, ReasonCode::NotProtected, enforced),
        }
    };
    Decision {
        verdict,
        reason,
        deciding,
        applied,
        satisfied,
        compliance_reasons: req.device.map_or(ReasonSet::EMPTY, |d| d.reasons),
    }
}

#[cfg(test)]
#[path = "decision_tests.rs"]
pub(crate) mod tests;
