//! Snapshot benchmarks: device lookup at 1,000,000 devices (hot set and random ids), one
//! compliance evaluation, one risk update (copy-on-write publish), full build of 1,000,000.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};

use portcullis::access::PolicySet;
use portcullis::compliance::{evaluate, RiskObservation};
use portcullis::model::Risk;
use portcullis::snapshot::{build_table, Snapshot, SnapshotStore};
use portcullis_bench::{device, device_id, fleet, mix, rules, NOW};

const N: u64 = 1_000_000;

fn store() -> SnapshotStore {
    let rules = Arc::new(rules());
    let mut snap = Snapshot::empty(Arc::new(PolicySet::empty()), NOW);
    snap.devices = build_table(fleet(N), &rules, None, NOW);
    snap.compliance = rules;
    SnapshotStore::new(snap)
}

fn lookups(c: &mut Criterion) {
    let store = store();
    let snap = store.load_full();
    let hot: Vec<_> = (0..64).map(|i| device_id(mix(i) % N)).collect();
    let random: Vec<_> = (0..1 << 20)
        .map(|i| device_id(mix(i + 1_000) % N))
        .collect();
    let mut g = c.benchmark_group("lookup_1m");
    let mut i = 0usize;
    g.bench_function("hot_64", |b| {
        b.iter(|| {
            i = (i + 1) & 63;
            black_box(snap.devices.get(black_box(hot[i])).map(|e| e.state()))
        })
    });
    let mut j = 0usize;
    g.bench_function("random", |b| {
        b.iter(|| {
            j = (j + 1) & ((1 << 20) - 1);
            black_box(snap.devices.get(black_box(random[j])).map(|e| e.state()))
        })
    });
    g.bench_function("load_and_hot_lookup", |b| {
        b.iter(|| {
            i = (i + 1) & 63;
            let s = store.load();
            black_box(s.devices.get(black_box(hot[i])).map(|e| e.state()))
        })
    });
    g.finish();

    let mut k = 0u64;
    c.bench_function("risk_update_publish_1m", |b| {
        b.iter(|| {
            k += 1;
            let t = NOW.plus_millis(k as i64);
            let risk = if k.is_multiple_of(2) {
                Risk::High
            } else {
                Risk::Low
            };
            black_box(store.apply_risk(hot[(k % 64) as usize], RiskObservation::new(risk, t), t))
        })
    });
}

fn evaluation(c: &mut Criterion) {
    let rules = rules();
    let (d, risk) = device(42);
    c.bench_function("evaluate_one_device", |b| {
        b.iter(|| {
            black_box(evaluate(
                Some(black_box(&d)),
                black_box(risk),
                None,
                &rules.policies,
                &rules.settings,
                NOW,
            ))
        })
    });
}

fn full_build(c: &mut Criterion) {
    let rules = rules();
    let mut g = c.benchmark_group("build");
    g.sample_size(10);
    g.bench_function("full_build_1m", |b| {
        b.iter(|| black_box(build_table(fleet(N), &rules, None, NOW).len()))
    });
    g.finish();
}

criterion_group!(benches, lookups, evaluation, full_build);
criterion_main!(benches);
