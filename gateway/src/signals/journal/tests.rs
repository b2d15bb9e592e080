use super::*;
use crate::clock::UnixMillis;
use crate::ids::DeviceId;
use crate::model::Risk;

fn sig(device: u128, at: i64) -> Signal {
    Signal {
        device: DeviceId::from_u128(device).unwrap(),
        risk: Risk::ALL[(device as usize + at as usize) % Risk::ALL.len()],
        observed_at: UnixMillis(at),
    }
}

fn batch(first: u128, n: u128, at: i64) -> Vec<Signal> {
    (first..first + n).map(|d| sig(d, at)).collect()
}

struct Dir(tempfile::TempDir);

impl Dir {
    fn new() -> Self {
        Self(tempfile::tempdir().unwrap())
    }
    fn file(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }
}

/// Opens `path` and compares the replayed signals and whether (and how) records were dropped.
fn check(path: &Path, signals: &[Signal], dropped: Option<&str>) -> Journal {
    let (journal, replay) = Journal::open(path).unwrap();
    assert_eq!(replay.signals, signals, "{}", path.display());
    match (replay.dropped_tail.as_deref(), dropped) {
        (None, None) => {}
        (Some(got), Some(part)) => assert!(got.contains(part), "{got:?} lacks {part:?}"),
        (got, want) => panic!("{}: dropped {got:?}, want {want:?}", path.display()),
    }
    journal
}

#[test]
fn round_trip_and_append_after_reopen() {
    let dir = Dir::new();
    let path = dir.file("signals.journal");
    let (a, b, c) = (batch(1, 1, 10), batch(2, 100, 20), batch(1, 3, 30));
    let mut j = check(&path, &[], None);
    j.append(&a).unwrap();
    j.append(&[]).unwrap();
    j.append(&b).unwrap();
    drop(j);
    let mut j = check(&path, &[a.clone(), b.clone()].concat(), None);
    j.append(&c).unwrap();
    drop(j);
    check(&path, &[a, b, c].concat(), None);
}

#[test]
fn torn_last_record_of_every_length() {
    let dir = Dir::new();
    let path = dir.file("full");
    let (a, b, c) = (batch(1, 3, 10), batch(10, 4, 20), batch(20, 2, 30));
    let (mut j, _) = Journal::open(&path).unwrap();
    j.append(&a).unwrap();
    let good = j.len_bytes();
    j.append(&b).unwrap();
    let full = fs::read(&path).unwrap();
    assert_eq!(full.len() as u64, j.len_bytes());
    for cut in good as usize..full.len() {
        let torn = dir.file(&format!("torn-{cut}"));
        fs::write(&torn, &full[..cut]).unwrap();
        let dropped = (cut > good as usize).then_some("torn last record");
        let mut j = check(&torn, &a, dropped);
        assert_eq!(fs::metadata(&torn).unwrap().len(), good, "cut at {cut}");
        j.append(&c).unwrap();
        drop(j);
        check(&torn, &[a.clone(), c.clone()].concat(), None);
    }
}

#[test]
fn torn_or_foreign_header() {
    let dir = Dir::new();
    for cut in 0..record::HEADER_LEN {
        let path = dir.file(&format!("h{cut}"));
        fs::write(&path, &record::header()[..cut]).unwrap();
        let dropped = (cut > 0).then_some("incomplete file header");
        let mut j = check(&path, &[], dropped);
        j.append(&batch(1, 1, 1)).unwrap();
        drop(j);
        check(&path, &batch(1, 1, 1), None);
    }
    let path = dir.file("notes.txt");
    fs::write(&path, b"not a journal at all").unwrap();
    let err = Journal::open(&path).unwrap_err();
    assert!(matches!(err, JournalError::NotAJournal { .. }), "{err}");
    assert_eq!(fs::read(&path).unwrap(), b"not a journal at all");
    fs::write(&path, b"PCSJ\x09\x00\x00\x00").unwrap();
    let err = Journal::open(&path).unwrap_err();
    assert!(err.to_string().contains("version 9"), "{err}");
}

#[test]
fn bad_checksums_and_zero_tails() {
    let dir = Dir::new();
    let path = dir.file("base");
    let (a, b, c) = (batch(1, 2, 10), batch(5, 2, 20), batch(9, 2, 30));
    let (mut j, _) = Journal::open(&path).unwrap();
    j.append(&a).unwrap();
    let after_a = j.len_bytes() as usize;
    j.append(&b).unwrap();
    let after_b = j.len_bytes() as usize;
    j.append(&c).unwrap();
    drop(j);
    let full = fs::read(&path).unwrap();

    // A flipped bit in the last record: a torn write, cut silently.
    let mut last = full.clone();
    *last.last_mut().unwrap() ^= 1;
    let p = dir.file("last");
    fs::write(&p, &last).unwrap();
    check(
        &p,
        &[a.clone(), b.clone()].concat(),
        Some("torn last record"),
    );

    // A flipped bit in the middle record: damage; keep what is before, save a copy.
    let mut mid = full.clone();
    mid[after_a + 12] ^= 0x40;
    let p = dir.file("mid");
    fs::write(&p, &mid).unwrap();
    let (mut j, replay) = Journal::open(&p).unwrap();
    assert_eq!(replay.signals, a);
    let why = replay.dropped_tail.unwrap();
    assert!(
        why.contains("damaged record") && why.contains("checksum"),
        "{why}"
    );
    assert_eq!(replay.dropped_bytes as usize, full.len() - after_a);
    assert_eq!(fs::read(replay.corrupt_copy.unwrap()).unwrap(), mid);
    j.append(&c).unwrap();
    drop(j);
    check(&p, &[a.clone(), c.clone()].concat(), None);

    // Zeros after the last good record (a file extended but never written): torn.
    let mut zeros = full[..after_b].to_vec();
    zeros.extend_from_slice(&[0u8; 100]);
    let p = dir.file("zeros");
    fs::write(&p, &zeros).unwrap();
    check(
        &p,
        &[a.clone(), b.clone()].concat(),
        Some("impossible record length 0"),
    );
}

#[test]
fn compaction_keeps_the_latest_per_device() {
    let dir = Dir::new();
    let path = dir.file("compact");
    let options = JournalOptions {
        compact_min_bytes: 1_000,
        compact_growth_factor: 4,
    };
    let (mut j, _) = Journal::open_with(&path, options).unwrap();
    let mut all = Vec::new();
    for round in 0..20 {
        let b = batch(1, 5, 100 - round);
        j.append(&b).unwrap();
        all.extend(b);
        j.append(&batch(3, 1, 1_000 + round)).unwrap();
        all.extend(batch(3, 1, 1_000 + round));
    }
    assert!(j.needs_compaction(), "{} bytes", j.len_bytes());
    let live = latest_per_device(&all);
    assert_eq!(live.len(), 5);
    assert_eq!(
        live[0].observed_at,
        UnixMillis(100),
        "older observations lose"
    );
    assert_eq!(live[2].observed_at, UnixMillis(1_019));
    let before = j.len_bytes();
    j.compact(&live).unwrap();
    assert!(j.len_bytes() < before / 4);
    assert!(!j.needs_compaction());
    assert!(!tmp_path(&path).exists());
    j.append(&batch(9, 1, 5)).unwrap();
    drop(j);
    let mut expected = live.clone();
    expected.extend(batch(9, 1, 5));
    let mut j = check(&path, &expected, None);
    assert!(!j.needs_compaction());
    // Compacting again from a reopened journal, then reopening once more.
    j.compact(&latest_per_device(&expected)).unwrap();
    drop(j);
    check(&path, &latest_per_device(&expected), None);
}

#[test]
fn needs_compaction_estimates_from_replay() {
    let dir = Dir::new();
    let path = dir.file("estimate");
    let options = JournalOptions {
        compact_min_bytes: 0,
        compact_growth_factor: 2,
    };
    let (mut j, _) = Journal::open_with(&path, options).unwrap();
    for at in 0..4 {
        j.append(&batch(1, 10, at)).unwrap();
    }
    drop(j);
    let (j, replay) = Journal::open_with(&path, options).unwrap();
    assert_eq!(replay.signals.len(), 40);
    assert!(j.needs_compaction(), "4 copies of 10 devices is over 2x");
}
