//! Risk updates under read load at 1,000,000 devices: how long from `apply_risk` being
//! called until a reader thread sees the new version (p50/p99), and reader throughput
//! without and with 1,000 updates/s. This VM's memory latency drifts by tens of percent
//! from second to second, so the two are measured as interleaved pairs of short phases (the
//! order alternating) and the median of the pairs' ratios is reported, for a reader walking
//! random ids (DRAM-bound, noisy here) and one walking a hot set of 64 (cache-resident: it
//! shows what updates cost readers without the memory noise). Bounded:
//! 2 x ROUNDS (default 20) x 2 x PHASE_MS (default 500 ms).
//! `cargo run --release -p portcullis-bench --example snapshot_updates`

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portcullis::access::PolicySet;
use portcullis::compliance::RiskObservation;
use portcullis::model::Risk;
use portcullis::snapshot::{build_table, Snapshot, SnapshotStore};
use portcullis_bench::{device_id, fleet, mix, rules, NOW};

const N: u64 = 1_000_000;

fn main() {
    let rules = Arc::new(rules());
    let mut snap = Snapshot::empty(Arc::new(PolicySet::empty()), NOW);
    snap.devices = build_table(fleet(N), &rules, None, NOW);
    snap.compliance = rules;
    let store = Arc::new(SnapshotStore::new(snap));
    let random: Arc<Vec<_>> = Arc::new((0..1 << 20).map(|i| device_id(mix(i) % N)).collect());
    let hot: Arc<Vec<_>> = Arc::new((0..1 << 20).map(|i| random[i & 63]).collect());
    let env = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let rounds = env("ROUNDS", 20) as usize;
    let phase = Duration::from_millis(env("PHASE_MS", 500));
    let mut l = Vec::new();
    for (name, ids) in [("random ids", &random), ("hot set of 64", &hot)] {
        let median = compare(&store, ids, rounds, phase, &mut l);
        println!(
            "{name}: median ratio with/without 1000 updates/s over {rounds} interleaved pairs: \
             {median:.3} ({:+.1}%)",
            (median - 1.0) * 100.0
        );
    }
    l.sort_unstable();
    let pct = |p: f64| {
        l.get(((l.len() as f64 * p) as usize).min(l.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    println!("updates seen: {}", l.len());
    println!(
        "call -> visible in reader: p50 {:?}, p99 {:?}, max {:?}",
        pct(0.5),
        pct(0.99),
        l.last().copied().unwrap_or_default()
    );
}

/// Interleaved pairs of phases without and with updates; returns the median ratio.
fn compare(
    store: &Arc<SnapshotStore>,
    ids: &Arc<Vec<portcullis::ids::DeviceId>>,
    rounds: usize,
    phase: Duration,
    latencies: &mut Vec<Duration>,
) -> f64 {
    let mut ratios = Vec::new();
    for round in 0..rounds {
        let (quiet, busy) = if round % 2 == 0 {
            let (quiet, _) = run(store, ids, false, phase);
            let (busy, lat) = run(store, ids, true, phase);
            latencies.extend(lat);
            (quiet, busy)
        } else {
            let (busy, lat) = run(store, ids, true, phase);
            latencies.extend(lat);
            let (quiet, _) = run(store, ids, false, phase);
            (quiet, busy)
        };
        println!(
            "  round {round}: without {quiet:.0}/s, with {busy:.0}/s ({:+.1}%)",
            (busy / quiet - 1.0) * 100.0
        );
        ratios.push(busy / quiet);
    }
    ratios.sort_by(f64::total_cmp);
    ratios.get(ratios.len() / 2).copied().unwrap_or(1.0)
}

/// One phase: a reader thread doing load + random lookup, and optionally a writer at
/// 1,000 updates/s. Returns reader lookups/s and update visibility latencies.
fn run(
    store: &Arc<SnapshotStore>,
    ids: &Arc<Vec<portcullis::ids::DeviceId>>,
    updates: bool,
    phase: Duration,
) -> (f64, Vec<Duration>) {
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let seen: Arc<Mutex<Vec<(u64, Instant)>>> = Arc::default();
    let reader = {
        let (store, ids, stop, count, seen) = (
            store.clone(),
            ids.clone(),
            stop.clone(),
            count.clone(),
            seen.clone(),
        );
        std::thread::spawn(move || {
            let mut i = 0usize;
            let mut n = 0u64;
            let mut last = store.load().version;
            let mut local = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                for _ in 0..256 {
                    i = (i + 1) & ((1 << 20) - 1);
                    let s = store.load();
                    if s.version != last {
                        last = s.version;
                        local.push((last, Instant::now()));
                    }
                    black_box(s.devices.get(ids[i]).map(|e| e.state()));
                }
                n += 256;
            }
            count.store(n, Ordering::Relaxed);
            *seen.lock().unwrap_or_else(|e| e.into_inner()) = local;
        })
    };
    let start = Instant::now();
    let mut calls = Vec::new();
    if updates {
        let mut k = 0u64;
        while start.elapsed() < phase {
            k += 1;
            let t = NOW.plus_millis(k as i64);
            let risk = [Risk::Low, Risk::High][(k % 2) as usize];
            let called = Instant::now();
            if let Ok(portcullis::snapshot::Applied::Updated { version, .. }) = store.apply_risk(
                ids[(mix(k) % (1 << 20)) as usize],
                RiskObservation::new(risk, t),
                t,
            ) {
                calls.push((version, called));
            }
            let next = start + Duration::from_millis(k);
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
        }
    } else {
        std::thread::sleep(phase);
    }
    stop.store(true, Ordering::Relaxed);
    let _ = reader.join();
    let elapsed = start.elapsed().as_secs_f64();
    let seen = seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let latencies = calls
        .iter()
        .filter_map(|(v, called)| {
            // The first version the reader saw at or after `v`.
            seen.iter()
                .find(|(s, _)| s >= v)
                .map(|(_, at)| at.saturating_duration_since(*called))
        })
        .collect();
    (count.load(Ordering::Relaxed) as f64 / elapsed, latencies)
}
