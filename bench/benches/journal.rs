//! Signal journal append latency, fdatasync included, for batches of 1 and 100 signals, on
//! disk (the target dir's tmp, or `PORTCULLIS_BENCH_DISK_DIR`) and on tmpfs (`/dev/shm`, where
//! it exists), so the cost of the sync itself shows.

use std::path::{Path, PathBuf};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

use portcullis::clock::UnixMillis;
use portcullis::ids::DeviceId;
use portcullis::model::Risk;
use portcullis::signals::journal::{Journal, JournalOptions};
use portcullis::signals::Signal;

fn batch(n: u128) -> Vec<Signal> {
    (1..=n)
        .map(|d| Signal {
            device: DeviceId::from_u128(d).expect("non-zero"),
            risk: Risk::Medium,
            observed_at: UnixMillis(1_800_000_000_000),
        })
        .collect()
}

fn dirs() -> Vec<(&'static str, PathBuf)> {
    let disk = std::env::var_os("PORTCULLIS_BENCH_DISK_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")));
    let mut dirs = vec![("disk", disk)];
    if Path::new("/dev/shm").is_dir() {
        dirs.push(("tmpfs", PathBuf::from("/dev/shm")));
    }
    dirs
}

fn append(c: &mut Criterion) {
    let mut group = c.benchmark_group("journal_append");
    for (kind, dir) in dirs() {
        let path = dir.join(format!("portcullis-bench-{}.journal", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let options = JournalOptions {
            compact_min_bytes: u64::MAX,
            compact_growth_factor: 1,
        };
        let (mut journal, _) = Journal::open_with(&path, options).expect("open journal");
        for n in [1u128, 100] {
            let signals = batch(n);
            group.throughput(Throughput::Elements(n as u64));
            group.bench_with_input(BenchmarkId::new(kind, n), &signals, |b, s| {
                b.iter(|| journal.append(s).expect("append"))
            });
        }
        drop(journal);
        let _ = std::fs::remove_file(&path);
    }
    group.finish();
}

criterion_group!(benches, append);
criterion_main!(benches);
