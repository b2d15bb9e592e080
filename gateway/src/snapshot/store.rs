//! `SnapshotStore`: the one place snapshots are published. Readers take one atomic load
//! (`load`); writers (rebuilds, risk updates, time-driven re-evaluation) are serialized by
//! a mutex among themselves only, build the next value off to the side and swap it in.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use arc_swap::{ArcSwap, Guard};
use tokio::sync::watch;

use crate::clock::UnixMillis;
use crate::compliance::evaluate::evaluate_facts;
use crate::compliance::{Compliance, RiskObservation};
use crate::ids::DeviceId;

use super::entry::DeviceEntry;
use super::status::SourceHealth;
use super::table::{DeviceTable, Group, CHUNK_BITS, CHUNK_LEN, GROUP_BITS, GROUP_LEN};
use super::{ComplianceRules, Snapshot};

/// What happened to one risk signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Applied and published as `version`.
    Updated {
        version: u64,
        compliance: Compliance,
    },
    /// Older than the observation the device already has; ignored.
    IgnoredOlder { current: RiskObservation },
}

/// Why a risk signal could not be applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RiskError {
    #[error("device {0} is not in the inventory")]
    UnknownDevice(DeviceId),
}

/// The outcome of a batch of risk signals (published once).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// The version published, if anything changed.
    pub version: Option<u64>,
    pub updated: usize,
    pub ignored_older: usize,
    pub unknown: Vec<DeviceId>,
}

/// Holds the current snapshot.
pub struct SnapshotStore {
    current: ArcSwap<Snapshot>,
    writer: Mutex<()>,
    health: Mutex<SourceHealth>,
    /// Ticks with every publish and every staleness change: long-lived responses re-decide.
    changed: watch::Sender<u64>,
    /// Set while the sources are stale past their grace: every protected request is denied
    /// with `snapshot_stale` (fail closed).
    failing_closed: AtomicBool,
    /// Why, while `failing_closed` (or serving stale): for `/readyz` and the admin API.
    stale_note: Mutex<Option<String>>,
    /// When a risk signal was last pushed (ms since the epoch; 0 = never): the push feed
    /// counts as hearing from the risk source.
    last_signal: AtomicI64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking writer cannot leave the published snapshot half-written (it is swapped in
    // whole), so a poisoned lock is safe to keep using.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl SnapshotStore {
    pub fn new(initial: Snapshot) -> Self {
        Self {
            current: ArcSwap::from_pointee(initial),
            writer: Mutex::new(()),
            health: Mutex::new(SourceHealth::default()),
            changed: watch::Sender::new(0),
            failing_closed: AtomicBool::new(false),
            stale_note: Mutex::new(None),
            last_signal: AtomicI64::new(0),
        }
    }

    /// A receiver that sees every publish and staleness change (continuous evaluation).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// True while failing closed for staleness.
    #[inline]
    pub fn failing_closed(&self) -> bool {
        self.failing_closed.load(Ordering::Acquire)
    }

    /// Sets the staleness state; a change wakes every long-lived response to re-decide.
    pub fn set_staleness(&self, failing_closed: bool, note: Option<String>) {
        *lock(&self.stale_note) = note;
        if self.failing_closed.swap(failing_closed, Ordering::AcqRel) != failing_closed {
            self.changed.send_modify(|v| *v = v.wrapping_add(1));
        }
    }

    /// Why the data is stale, if it is.
    pub fn stale_note(&self) -> Option<String> {
        lock(&self.stale_note).clone()
    }

    /// Records that risk signals were pushed at `now`.
    pub fn note_signal(&self, now: UnixMillis) {
        self.last_signal.fetch_max(now.0, Ordering::AcqRel);
    }

    /// When risk signals were last pushed.
    pub fn last_signal(&self) -> Option<UnixMillis> {
        match self.last_signal.load(Ordering::Acquire) {
            0 => None,
            ms => Some(UnixMillis(ms)),
        }
    }

    /// Swaps `next` in and tells subscribers.
    fn store(&self, next: Snapshot) {
        let version = next.version;
        self.current.store(Arc::new(next));
        self.changed.send_replace(version);
    }

    /// The current snapshot: one atomic load, never blocks.
    #[inline]
    pub fn load(&self) -> Guard<Arc<Snapshot>> {
        self.current.load()
    }

    /// The current snapshot as an owned `Arc` (for holding across awaits).
    pub fn load_full(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// The outcome of the latest rebuild attempts.
    pub fn health(&self) -> SourceHealth {
        lock(&self.health).clone()
    }

    /// Runs a full rebuild with the writer lock held (so no risk update is lost between
    /// reading `prev` and publishing), publishes the result as the next version, and
    /// records the outcome in `health`. On error the current snapshot stays.
    pub fn rebuild<E: std::fmt::Display>(
        &self,
        now: UnixMillis,
        build: impl FnOnce(&Snapshot) -> Result<Snapshot, E>,
    ) -> Result<u64, E> {
        let _w = lock(&self.writer);
        let prev = self.current.load_full();
        let result = build(&prev);
        let mut health = lock(&self.health);
        health.last_attempt = Some(now);
        match result {
            Ok(mut next) => {
                next.version = prev.version + 1;
                let version = next.version;
                self.store(next);
                health.last_success = Some(now);
                health.last_error = None;
                Ok(version)
            }
            Err(e) => {
                health.last_error = Some(e.to_string());
                health.failures_total += 1;
                Err(e)
            }
        }
    }

    /// Applies one device's new risk and publishes; touches one chunk of the table.
    pub fn apply_risk(
        &self,
        device: DeviceId,
        observation: RiskObservation,
        now: UnixMillis,
    ) -> Result<Applied, RiskError> {
        let _w = lock(&self.writer);
        let cur = self.current.load_full();
        let pos = cur
            .devices
            .position(device)
            .ok_or(RiskError::UnknownDevice(device))?;
        let current = cur.devices.packed(pos).risk();
        if observation.is_older_than(&current) {
            return Ok(Applied::IgnoredOlder { current });
        }
        let mut edit = Edit::new(&cur.devices);
        let compliance = edit.set(pos, Some(observation), &cur.compliance, now);
        let version = self.publish(&cur, edit.finish(), now);
        Ok(Applied::Updated {
            version,
            compliance,
        })
    }

    /// Applies many signals and publishes once. A device listed more than once keeps its
    /// newest observation.
    pub fn apply_risks(
        &self,
        signals: &[(DeviceId, RiskObservation)],
        now: UnixMillis,
    ) -> BatchOutcome {
        let _w = lock(&self.writer);
        let cur = self.current.load_full();
        let mut out = BatchOutcome::default();
        let mut newest: HashMap<usize, RiskObservation> = HashMap::new();
        for (device, obs) in signals {
            let Some(pos) = cur.devices.position(*device) else {
                out.unknown.push(*device);
                continue;
            };
            let current = newest
                .get(&pos)
                .copied()
                .unwrap_or_else(|| cur.devices.packed(pos).risk());
            if obs.is_older_than(&current) {
                out.ignored_older += 1;
            } else {
                newest.insert(pos, *obs);
            }
        }
        if newest.is_empty() {
            return out;
        }
        let mut edit = Edit::new(&cur.devices);
        for (pos, obs) in &newest {
            edit.set(*pos, Some(*obs), &cur.compliance, now);
        }
        out.updated = newest.len();
        out.version = Some(self.publish(&cur, edit.finish(), now));
        out
    }

    /// Re-evaluates the devices whose result changes by time alone at or before `now`
    /// (grace running out, check-ins going stale, risk ageing out). Publishes only if
    /// something was due; returns the new version.
    pub fn reevaluate_due(&self, now: UnixMillis) -> Option<u64> {
        let _w = lock(&self.writer);
        let cur = self.current.load_full();
        let table = &cur.devices;
        let settings = table.settings;
        let mut edit = Edit::new(table);
        for (ci, chunk) in table.chunks().enumerate() {
            if chunk.next_due > now.0 {
                continue;
            }
            for (i, e) in chunk.entries().iter().enumerate() {
                let due = super::table::valid_until(e, &settings).is_some_and(|t| t <= now);
                if due {
                    edit.set((ci << CHUNK_BITS) | i, None, &cur.compliance, now);
                }
            }
        }
        if !edit.touched() {
            return None;
        }
        Some(self.publish(&cur, edit.finish(), now))
    }

    /// The earliest time `reevaluate_due` has work.
    pub fn next_due(&self) -> Option<UnixMillis> {
        self.current.load().devices.next_due()
    }

    fn publish(&self, cur: &Snapshot, devices: DeviceTable, now: UnixMillis) -> u64 {
        let next = Snapshot {
            version: cur.version + 1,
            built_at: cur.built_at,
            published_at: now,
            devices,
            compliance: cur.compliance.clone(),
            access: cur.access.clone(),
            sources: cur.sources.clone(),
        };
        let version = next.version;
        self.store(next);
        version
    }
}

/// Copy-on-write edits of a table: the group list is copied once (pointers), each touched
/// group once (pointers), each touched chunk once.
struct Edit<'a> {
    base: &'a DeviceTable,
    groups: Option<Box<[Group]>>,
    /// Touched chunks, by chunk index.
    touched: Vec<usize>,
}

impl<'a> Edit<'a> {
    fn new(base: &'a DeviceTable) -> Self {
        Self {
            base,
            groups: None,
            touched: Vec::new(),
        }
    }

    fn touched(&self) -> bool {
        !self.touched.is_empty()
    }

    /// Re-evaluates the device at `pos`, with a new risk observation if given.
    fn set(
        &mut self,
        pos: usize,
        risk: Option<RiskObservation>,
        rules: &ComplianceRules,
        now: UnixMillis,
    ) -> Compliance {
        let base = self.base;
        let before = DeviceEntry::new(base, base.packed(pos));
        let facts = before.facts();
        let failing_since = before.compliance().details.failing_since;
        let risk = risk.unwrap_or_else(|| before.risk());
        let c = evaluate_facts(
            Some(facts),
            risk,
            failing_since,
            &rules.policies,
            &rules.settings,
            now,
        );
        let groups = self.groups.get_or_insert_with(|| base.groups.clone());
        let ci = pos >> CHUNK_BITS;
        // `make_mut` copies the group (or chunk) the first time this edit touches it: the
        // copy is then unique, so later changes to it write in place.
        let group = Arc::make_mut(&mut groups[ci >> GROUP_BITS]);
        let chunk = Arc::make_mut(&mut group[ci & (GROUP_LEN - 1)]);
        let p = chunk.entry_mut(pos & (CHUNK_LEN - 1));
        p.set_risk(risk);
        p.set_compliance(&c);
        if !self.touched.contains(&ci) {
            self.touched.push(ci);
        }
        c
    }

    fn finish(self) -> DeviceTable {
        let mut table = self.base.clone_shallow();
        if let Some(mut groups) = self.groups {
            for ci in &self.touched {
                let group = Arc::make_mut(&mut groups[ci >> GROUP_BITS]);
                Arc::make_mut(&mut group[ci & (GROUP_LEN - 1)]).recompute_due(&table.settings);
            }
            table.groups = groups;
        }
        table
    }
}

impl DeviceTable {
    /// A copy sharing every group (the group list itself is copied: pointers only).
    fn clone_shallow(&self) -> DeviceTable {
        self.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::PolicySet;
    use crate::compliance::DeviceRecord;
    use crate::model::{ComplianceState, Platform, Risk};
    use crate::reason::ReasonCode;
    use crate::snapshot::build_table;

    const NOW: UnixMillis = UnixMillis(1_800_000_000_000);

    fn rules(grace: u32) -> Arc<ComplianceRules> {
        Arc::new(crate::snapshot::build::tests::rules(Risk::Medium, grace))
    }

    fn store(n: u128, grace: u32) -> SnapshotStore {
        let rules = rules(grace);
        let records = (1..=n).map(|i| {
            (
                crate::snapshot::build::tests::device(i),
                RiskObservation::new(Risk::Low, NOW),
            )
        });
        let devices = build_table(records, &rules, None, NOW);
        let mut s = Snapshot::empty(Arc::new(PolicySet::empty()), NOW);
        s.devices = devices;
        s.compliance = rules;
        s.version = 1;
        SnapshotStore::new(s)
    }

    fn id(n: u128) -> DeviceId {
        DeviceId::from_u128(n).unwrap()
    }

    fn check(s: &SnapshotStore, n: u128, state: ComplianceState, reason: Option<ReasonCode>) {
        let snap = s.load();
        let e = snap.devices.get(id(n)).unwrap();
        assert_eq!(e.state(), state, "{e:?}");
        if let Some(r) = reason {
            assert!(e.reasons().contains(r), "{e:?}");
        }
    }

    #[test]
    fn worked_example_through_the_store() {
        let s = store(40_000, 0); // 157 chunks in 3 groups
        let before = s.load_full();
        let t1 = NOW.plus_millis(1_000);
        let got = s
            .apply_risk(id(2_000), RiskObservation::new(Risk::High, t1), t1)
            .unwrap();
        assert!(matches!(got, Applied::Updated { version: 2, .. }));
        check(
            &s,
            2_000,
            ComplianceState::Noncompliant,
            Some(ReasonCode::RiskAboveThreshold),
        );
        // The old snapshot is untouched and shares all but one chunk and one group.
        assert_eq!(
            before.devices.get(id(2_000)).unwrap().state(),
            ComplianceState::Compliant
        );
        let after = s.load_full();
        let shared = before
            .devices
            .chunks()
            .zip(after.devices.chunks())
            .filter(|(a, b)| Arc::ptr_eq(a, b))
            .count();
        assert_eq!(shared, before.devices.chunks().count() - 1);
        let shared_groups = before
            .devices
            .groups
            .iter()
            .zip(after.devices.groups.iter())
            .filter(|(a, b)| Arc::ptr_eq(a, b))
            .count();
        assert_eq!(shared_groups, before.devices.groups.len() - 1);
        let t2 = t1.plus_millis(1_000);
        s.apply_risk(id(2_000), RiskObservation::new(Risk::Medium, t2), t2)
            .unwrap();
        check(&s, 2_000, ComplianceState::Compliant, None);
    }

    #[test]
    fn older_signals_are_ignored_and_unknown_devices_refused() {
        let s = store(10, 0);
        let got = s
            .apply_risk(
                id(3),
                RiskObservation::new(Risk::High, NOW.plus_millis(-1)),
                NOW,
            )
            .unwrap();
        assert!(matches!(got, Applied::IgnoredOlder { .. }));
        check(&s, 3, ComplianceState::Compliant, None);
        assert_eq!(
            s.apply_risk(id(99), RiskObservation::new(Risk::High, NOW), NOW),
            Err(RiskError::UnknownDevice(id(99)))
        );
        assert_eq!(s.load().version, 1);
    }

    #[test]
    fn batch_publishes_once() {
        let s = store(5_000, 0);
        let t = NOW.plus_millis(5);
        let signals: Vec<_> = (1..=100)
            .map(|i| (id(i * 37), RiskObservation::new(Risk::High, t)))
            .chain([
                (id(9_999), RiskObservation::new(Risk::High, t)),
                (id(1), RiskObservation::new(Risk::High, NOW.plus_millis(-5))),
            ])
            .collect();
        let out = s.apply_risks(&signals, t);
        assert_eq!(
            (
                out.version,
                out.updated,
                out.ignored_older,
                out.unknown.len()
            ),
            (Some(2), 100, 1, 1)
        );
        check(
            &s,
            37 * 50,
            ComplianceState::Noncompliant,
            Some(ReasonCode::RiskAboveThreshold),
        );
        check(&s, 1, ComplianceState::Compliant, None);
    }

    #[test]
    fn grace_runs_out_by_reevaluation() {
        let s = store(100, 2);
        let t = NOW.plus_millis(1_000);
        s.apply_risk(id(5), RiskObservation::new(Risk::High, t), t)
            .unwrap();
        check(
            &s,
            5,
            ComplianceState::InGracePeriod,
            Some(ReasonCode::InGracePeriod),
        );
        let until = s
            .load()
            .devices
            .get(id(5))
            .unwrap()
            .compliance()
            .valid_until
            .unwrap();
        assert_eq!(s.next_due(), Some(until));
        assert_eq!(s.reevaluate_due(until.plus_millis(-1)), None);
        assert_eq!(s.reevaluate_due(until), Some(3));
        check(
            &s,
            5,
            ComplianceState::Noncompliant,
            Some(ReasonCode::RiskAboveThreshold),
        );
        check(&s, 6, ComplianceState::Compliant, None);
    }

    #[test]
    fn rebuild_failure_keeps_the_snapshot_and_reports() {
        let s = store(10, 0);
        let got = s.rebuild(NOW, |_| Err::<Snapshot, _>("devices.json: line 3 column 2"));
        assert!(got.is_err());
        assert_eq!(s.load().version, 1);
        let h = s.health();
        assert_eq!(
            h.last_error.as_deref(),
            Some("devices.json: line 3 column 2")
        );
        let v = s
            .rebuild(NOW, |prev| Ok::<_, String>(prev.clone()))
            .unwrap();
        assert_eq!(v, 2);
        assert_eq!(s.health().last_error, None);
        let _ = DeviceRecord::new(id(1), Platform::Windows);
    }
}
