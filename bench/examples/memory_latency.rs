//! The machine's floor for the random-access targets: the latency of one dependent load
//! (pointer chasing through a random cyclic permutation, one 64-byte line per hop) in
//! working sets of 1, 8, 16 and 72 MiB (the 1,000,000-device table is 72 MB; 10,000 cached
//! tokens with their cache entries are about 8-16 MB). A random device lookup or token-cache
//! hit cannot be faster than the dependent cold loads it needs.
//! `cargo run --release -p portcullis-bench --example memory_latency`
//! (Page size matters: run it again with `GLIBC_TUNABLES=glibc.malloc.hugetlb=1` to let
//! glibc back large allocations with transparent huge pages where the kernel allows it.)

use std::hint::black_box;
use std::time::Instant;

use portcullis_bench::mix;

const LINE: usize = 8; // u64s per 64-byte cache line
const HOPS: usize = 10_000_000;

fn main() {
    for mib in [1usize, 8, 16, 72] {
        let lines = mib * 1024 * 1024 / 64;
        // A random cyclic order of the lines (Sattolo's shuffle).
        let mut order: Vec<usize> = (0..lines).collect();
        for i in (1..lines).rev() {
            let j = (mix(i as u64) % i as u64) as usize;
            order.swap(i, j);
        }
        let mut next = vec![0u64; lines * LINE];
        for (i, &line) in order.iter().enumerate() {
            next[line * LINE] = (order[(i + 1) % lines] * LINE) as u64;
        }
        let mut at = 0usize;
        for _ in 0..lines {
            at = next[at] as usize; // warm up: touch every line once
        }
        let start = Instant::now();
        for _ in 0..HOPS {
            at = next[at] as usize;
        }
        let ns = start.elapsed().as_nanos() as f64 / HOPS as f64;
        black_box(at);
        println!("{mib:>3} MiB working set: {ns:6.1} ns per dependent load");
    }
}
