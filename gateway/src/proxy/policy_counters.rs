//! `portcullis_policy_results_total` by policy and result, counted per request. The counters
//! of the current policy set are resolved once each, on first use, instead of looked up by
//! their label values (two strings hashed, a lock taken) for every applied policy of every
//! request. No series is made before its first count, as with `with_label_values`.

use std::sync::{Arc, OnceLock};

use arc_swap::ArcSwapOption;
use prometheus::{IntCounter, IntCounterVec};

use crate::access::{Decision, PolicyResult, PolicySet};

/// How many `PolicyResult`s there are.
const RESULTS: usize = 7;

pub struct PolicyCounters {
    vec: IntCounterVec,
    current: ArcSwapOption<Resolved>,
}

/// The counters of one policy set, by policy index and result.
struct Resolved {
    /// Held so that its address keeps naming this set while the counters are in use.
    set: Arc<PolicySet>,
    counters: Box<[[OnceLock<IntCounter>; RESULTS]]>,
}

impl PolicyCounters {
    pub fn new(vec: IntCounterVec) -> Self {
        Self {
            vec,
            current: ArcSwapOption::empty(),
        }
    }

    /// Counts each applied policy's result (report-only included) for one request.
    pub fn record(&self, set: &Arc<PolicySet>, decision: &Decision) {
        if decision.applied.is_empty() {
            return;
        }
        let loaded = self.current.load();
        if let Some(current) = loaded.as_ref().filter(|r| Arc::ptr_eq(&r.set, set)) {
            self.count(current, decision);
            return;
        }
        // A new policy set (a reload): its counters are resolved as they are first used.
        let fresh = Arc::new(Resolved {
            set: set.clone(),
            counters: (0..set.policies().len())
                .map(|_| [const { OnceLock::new() }; RESULTS])
                .collect(),
        });
        self.current.store(Some(fresh.clone()));
        self.count(&fresh, decision);
    }

    fn count(&self, resolved: &Resolved, decision: &Decision) {
        let set = &*resolved.set;
        for i in decision.applied.iter() {
            let (Some(policy), Some(slots)) = (set.policies().get(i), resolved.counters.get(i))
            else {
                continue;
            };
            let result = decision.result(set, i);
            slots[index(result)]
                .get_or_init(|| self.vec.with_label_values(&[&*policy.id, result.as_str()]))
                .inc();
        }
    }
}

fn index(result: PolicyResult) -> usize {
    match result {
        PolicyResult::Success => 0,
        PolicyResult::Failure => 1,
        PolicyResult::NotApplied => 2,
        PolicyResult::NotEnabled => 3,
        PolicyResult::ReportOnlySuccess => 4,
        PolicyResult::ReportOnlyFailure => 5,
        PolicyResult::ReportOnlyNotApplied => 6,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::decision::tests::{pol, request, set_of};
    use crate::access::{decide, Unprotected};

    fn count(vec: &IntCounterVec, policy: &str, result: &str) -> u64 {
        vec.get_metric_with_label_values(&[policy, result])
            .map_or(0, |c| c.get())
    }

    #[test]
    fn counts_each_applied_policy_and_follows_a_new_set() {
        let vec =
            IntCounterVec::new(prometheus::Opts::new("t", "t"), &["policy", "result"]).unwrap();
        let counters = PolicyCounters::new(vec.clone());
        let ro = "enabledForReportingButNotEnforced";
        let first = Arc::new(set_of(&[
            pol("ok", "enabled", "", "OR compliantDevice"),
            pol("fail", "enabled", "", "OR mfa"),
            pol("off", "disabled", "", "OR block"),
            pol("ro-fail", ro, "", "OR block"),
        ]));
        let d = decide(&first, &request(), Unprotected::Deny);
        counters.record(&first, &d);
        counters.record(&first, &d);
        assert_eq!(count(&vec, "ok", "success"), 2);
        assert_eq!(count(&vec, "fail", "failure"), 2);
        assert_eq!(count(&vec, "ro-fail", "reportOnlyFailure"), 2);
        // Not applied, so not counted, and no series made for it.
        assert_eq!(
            prometheus::core::Collector::collect(&vec)[0]
                .get_metric()
                .len(),
            3
        );

        // A reload: same ids at other positions, one policy gone.
        let second = Arc::new(set_of(&[
            pol("fail", "enabled", "", "OR compliantDevice"),
            pol("ok", "enabled", "", "OR mfa"),
        ]));
        let d = decide(&second, &request(), Unprotected::Deny);
        counters.record(&second, &d);
        assert_eq!(count(&vec, "fail", "success"), 1);
        assert_eq!(count(&vec, "ok", "failure"), 1);
        assert_eq!(count(&vec, "ok", "success"), 2);
        assert_eq!(count(&vec, "fail", "failure"), 2);
    }
}
