//! The per-request decision (product brief section 5): which policies apply, whether they
//! are satisfied, and the verdict with its reason. Pure and allocation-free; `decide` and
//! `explain` run the same `evaluate`, with a no-op or a recording `Recorder`.

use serde::Deserialize;

use crate::access::conditions::{
    checked_conditions_match, conditions_match, grant_outcome, met_controls, unmet_reason,
    GrantOutcome, Miss,
};
use crate::access::policy::{Policy, PolicyState};
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
    pub fn remove(&mut self, index: usize) {
        self.0[(index >> 6) & 3] &= !(1 << (index & 63));
    }

    #[inline]
    pub fn contains(&self, index: usize) -> bool {
        index < 256 && self.0[index >> 6] & (1 << (index & 63)) != 0
    }

    pub fn is_empty(&self) -> bool {
        self.0 == [0; 4]
    }

    #[inline]
    pub fn and(self, other: Self) -> Self {
        Self(std::array::from_fn(|w| self.0[w] & other.0[w]))
    }

    #[inline]
    pub fn or(self, other: Self) -> Self {
        Self(std::array::from_fn(|w| self.0[w] | other.0[w]))
    }

    /// The members of `self` not in `other`.
    #[inline]
    pub fn and_not(self, other: Self) -> Self {
        Self(std::array::from_fn(|w| self.0[w] & !other.0[w]))
    }

    /// The indices in increasing order.
    #[inline]
    pub fn iter(self) -> impl Iterator<Item = usize> {
        let mut words = self.0;
        let mut w = 0;
        std::iter::from_fn(move || {
            while w < words.len() {
                let word = words[w];
                if word != 0 {
                    words[w] = word & (word - 1);
                    return Some(w * 64 + word.trailing_zeros() as usize);
                }
                w += 1;
            }
            None
        })
    }
}

impl FromIterator<usize> for PolicyBits {
    /// Indices of 256 or more are ignored.
    fn from_iter<I: IntoIterator<Item = usize>>(iter: I) -> Self {
        let mut bits = Self::EMPTY;
        for i in iter.into_iter().filter(|&i| i < 256) {
            bits.insert(i);
        }
        bits
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
///
/// The policy screen narrows the app's candidates to those whose user, client-app and
/// platform conditions admit the request; locations and device filters are checked per
/// policy; the grant controls are looked up as bitsets by the controls the request meets.
/// `evaluate` (what-if) tests every condition and control of every candidate instead; the
/// tests hold both to the same decision.
pub fn decide(set: &PolicySet, req: &RequestFacts<'_>, unprotected: Unprotected) -> Decision {
    let screen = set.screen();
    let mut applied = screen.admit(set.candidates(req.app), req);
    for i in screen.needing_check(applied).iter() {
        let matched = set
            .policies()
            .get(i)
            .is_some_and(|p| checked_conditions_match(p, req).is_ok());
        if !matched {
            applied.remove(i);
        }
    }
    let met = met_controls(req);
    let satisfied = applied.and(screen.satisfied_by(met));
    let enforced = applied.and(screen.enabled);
    let failing = enforced.and_not(satisfied).and_not(screen.blocks);
    let deny_reason = failing.iter().next().and_then(|i| {
        let p = set.policies().get(i)?;
        Some(unmet_reason(grant_outcome(p, met).unmet, req))
    });
    Tally {
        applied,
        satisfied,
        enforced,
        blocking: enforced.and(screen.blocks),
        failing,
        deny_reason,
    }
    .finish(req, unprotected)
}

/// `decide`, testing each candidate's conditions in Entra's order and telling `rec` how each
/// policy fared.
pub(crate) fn evaluate<R: Recorder>(
    set: &PolicySet,
    req: &RequestFacts<'_>,
    unprotected: Unprotected,
    rec: &mut R,
) -> Decision {
    let met = met_controls(req);
    let mut tally = Tally::default();
    for i in set.candidates(req.app).iter() {
        let Some(p) = set.policies().get(i) else {
            continue;
        };
        let matched = conditions_match(p, req, false);
        if matched.is_err() {
            rec.record(i, matched, None);
            continue;
        }
        let outcome = grant_outcome(p, met);
        rec.record(i, matched, Some(outcome));
        tally.applied(i, p, outcome, req);
    }
    tally.finish(req, unprotected)
}

/// What the applied policies add up to.
#[derive(Default)]
struct Tally {
    applied: PolicyBits,
    satisfied: PolicyBits,
    enforced: PolicyBits,
    blocking: PolicyBits,
    failing: PolicyBits,
    /// The first failing enforced policy's reason.
    deny_reason: Option<ReasonCode>,
}

impl Tally {
    /// Policy `i`, whose conditions all matched, with its grant outcome.
    #[inline]
    fn applied(&mut self, i: usize, p: &Policy, outcome: GrantOutcome, req: &RequestFacts<'_>) {
        self.applied.insert(i);
        if outcome.satisfied {
            self.satisfied.insert(i);
        }
        if p.state != PolicyState::Enabled {
            return;
        }
        self.enforced.insert(i);
        if outcome.blocked {
            self.blocking.insert(i);
        } else if !outcome.satisfied {
            self.failing.insert(i);
            self.deny_reason
                .get_or_insert_with(|| unmet_reason(outcome.unmet, req));
        }
    }

    /// `block` wins, then unmet controls, then satisfied policies; with no enforced policy
    /// applied, the route's `unprotected` setting.
    fn finish(self, req: &RequestFacts<'_>, unprotected: Unprotected) -> Decision {
        let (verdict, reason, deciding) = if !self.blocking.is_empty() {
            (Verdict::Deny, ReasonCode::BlockedByPolicy, self.blocking)
        } else if let Some(reason) = self.deny_reason {
            (Verdict::Deny, reason, self.failing)
        } else if !self.enforced.is_empty() {
            (Verdict::Allow, ReasonCode::PolicySatisfied, self.enforced)
        } else {
            match unprotected {
                Unprotected::Allow => (
                    Verdict::Allow,
                    ReasonCode::UnprotectedAllowed,
                    self.enforced,
                ),
                Unprotected::Deny => (Verdict::Deny, ReasonCode::NotProtected, self.enforced),
            }
        };
        Decision {
            verdict,
            reason,
            deciding,
            applied: self.applied,
            satisfied: self.satisfied,
            compliance_reasons: req.device.map_or(ReasonSet::EMPTY, |d| d.reasons),
        }
    }
}

#[cfg(test)]
#[path = "decision_tests.rs"]
pub(crate) mod tests;
