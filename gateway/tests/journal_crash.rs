//! The journal's promise under a real crash: a child process (this test binary, re-executed)
//! appends batches and prints `ack <n>` after each `append` returns; the parent kills it with
//! SIGKILL mid-stream, reopens the journal and finds every acknowledged signal.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use portcullis::clock::UnixMillis;
use portcullis::ids::DeviceId;
use portcullis::model::Risk;
use portcullis::signals::journal::Journal;
use portcullis::signals::Signal;

const CHILD_ENV: &str = "PORTCULLIS_JOURNAL_CHILD";

/// Signal number `seq` (0-based): the device id is derived from it, so the check is exact.
fn signal(seq: u64) -> Signal {
    Signal {
        device: DeviceId::from_u128(u128::from(seq) + 1).expect("non-zero"),
        risk: Risk::ALL[(seq % 5) as usize],
        observed_at: UnixMillis(1_800_000_000_000 + seq as i64),
    }
}

/// The writer. A no-op unless run as the child (the env var names the journal file).
#[test]
fn journal_writer_child() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (mut journal, replay) = Journal::open(&path).expect("open journal");
    assert!(replay.signals.is_empty());
    let stdout = std::io::stdout();
    let mut seq = 0u64;
    // Runs until killed; the bound only keeps a lost child from running forever.
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let n = 1 + seq % 10;
        let batch: Vec<Signal> = (seq..seq + n).map(signal).collect();
        journal.append(&batch).expect("append");
        seq += n;
        let mut out = stdout.lock();
        writeln!(out, "ack {seq}").expect("stdout");
        out.flush().expect("stdout");
    }
}

#[test]
fn acknowledged_signals_survive_sigkill() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("signals.journal");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "journal_writer_child",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut acked = 0u64;
    let started = Instant::now();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(n) = line.strip_prefix("ack ") {
            acked = n.trim().parse().unwrap();
            if acked >= 2_000 || started.elapsed() > Duration::from_secs(10) {
                break;
            }
        }
    }
    // SIGKILL while the child is still appending.
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "the child was killed, not finished: {status}"
    );
    assert!(acked > 0, "the child acknowledged nothing");

    let (_journal, replay) = Journal::open(&path).unwrap();
    let got = replay.signals;
    assert!(
        got.len() as u64 >= acked,
        "{} signals replayed, {acked} acknowledged ({:?})",
        got.len(),
        replay.dropped_tail
    );
    // Every replayed signal is exactly the one written at its position: acknowledged ones
    // all present, and at most whole unacknowledged batches after them.
    for (seq, s) in got.iter().enumerate() {
        assert_eq!(*s, signal(seq as u64), "signal {seq}");
    }
    eprintln!(
        "acked {acked}, replayed {}, dropped tail: {:?}",
        got.len(),
        replay.dropped_tail
    );
}
