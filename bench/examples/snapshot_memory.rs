//! Builds a 1,000,000-device snapshot and prints the build time and the process's resident
//! memory, right after the build and 3 s later (the gateway holds a snapshot far longer than
//! that).
//! `cargo run --release -p portcullis-bench --example snapshot_memory [-- N]`

use std::sync::Arc;
use std::time::Instant;

use portcullis::access::PolicySet;
use portcullis::snapshot::{build_table, Snapshot, SnapshotStore};
use portcullis_bench::{fleet, rss_kib, rules, NOW};

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let before = rss_kib().unwrap_or(0);
    let rules = Arc::new(rules());
    let start = Instant::now();
    let devices = build_table(fleet(n), &rules, None, NOW);
    let took = start.elapsed();
    let mut snap = Snapshot::empty(Arc::new(PolicySet::empty()), NOW);
    snap.devices = devices;
    snap.compliance = rules;
    let store = SnapshotStore::new(snap);
    let after = rss_kib().unwrap_or(0);
    let snap = store.load();
    println!("devices: {}", snap.devices.len());
    println!("distinct memberOf sets: {}", snap.devices.group_set_count());
    println!("build: {:.3} s", took.as_secs_f64());
    println!("VmRSS before: {:.1} MiB", before as f64 / 1024.0);
    println!(
        "VmRSS right after the build: {:.1} MiB",
        after as f64 / 1024.0
    );
    std::thread::sleep(std::time::Duration::from_secs(3));
    let settled = rss_kib().unwrap_or(0);
    println!(
        "VmRSS 3 s later: {:.1} MiB (target <= 100 MB)",
        settled as f64 / 1024.0
    );
}
