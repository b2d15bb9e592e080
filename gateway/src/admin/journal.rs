//! The signal journal as the admin API uses it: append (fsync) before answering, remember the
//! latest signal per device, compact to just those when the file has grown.

use std::collections::HashMap;
use std::path::Path;

use crate::ids::DeviceId;
use crate::signals::journal::{Journal, JournalError, Replay};
use crate::signals::Signal;

pub struct SignalJournal {
    journal: Journal,
    latest: HashMap<DeviceId, Signal>,
}

impl SignalJournal {
    /// Opens (or creates) the journal and returns what it replayed.
    pub fn open(path: &Path) -> Result<(Self, Replay), JournalError> {
        let (journal, replay) = Journal::open(path)?;
        let mut latest = HashMap::new();
        remember(&mut latest, &replay.signals);
        Ok((Self { journal, latest }, replay))
    }

    /// Appends and syncs; compacts when the file has grown past what it needs.
    pub fn append(&mut self, signals: &[Signal]) -> std::io::Result<()> {
        self.journal.append(signals)?;
        remember(&mut self.latest, signals);
        if self.journal.needs_compaction() {
            let live: Vec<Signal> = self.latest.values().copied().collect();
            self.journal.compact(&live)?;
        }
        Ok(())
    }
}

fn remember(latest: &mut HashMap<DeviceId, Signal>, signals: &[Signal]) {
    for s in signals {
        match latest.get(&s.device) {
            Some(prev) if prev.observed_at > s.observed_at => {}
            _ => {
                latest.insert(s.device, *s);
            }
        }
    }
}

/// One push request waiting for its signals to be on disk.
struct Pending {
    signals: Vec<Signal>,
    done: tokio::sync::oneshot::Sender<Result<(), String>>,
}

/// Group commit: one thread owns the journal; every push request waiting while an `fsync`
/// runs goes into the next append together, so one flush acknowledges them all. A flush
/// costs milliseconds on a real disk (see bench/README.md), so without this the journal
/// would cap pushes at a few hundred requests per second.
pub struct JournalWriter {
    tx: std::sync::mpsc::Sender<Pending>,
}

impl JournalWriter {
    /// Starts the writer thread; it ends when the last `JournalWriter` is dropped.
    pub fn start(mut journal: SignalJournal) -> std::io::Result<Self> {
        let (tx, rx) = std::sync::mpsc::channel::<Pending>();
        std::thread::Builder::new()
            .name("portcullis-journal".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut batch = vec![first];
                    batch.extend(rx.try_iter());
                    let all: Vec<Signal> = batch
                        .iter()
                        .flat_map(|p| p.signals.iter().copied())
                        .collect();
                    let result = journal.append(&all).map_err(|e| e.to_string());
                    for p in batch {
                        let _ = p.done.send(result.clone());
                    }
                }
            })?;
        Ok(Self { tx })
    }

    /// Appends `signals` and returns once they are flushed to disk.
    pub async fn append(&self, signals: Vec<Signal>) -> Result<(), String> {
        let (done, wait) = tokio::sync::oneshot::channel();
        self.tx
            .send(Pending { signals, done })
            .map_err(|_| "the journal writer has stopped".to_string())?;
        wait.await
            .map_err(|_| "the journal writer has stopped".to_string())?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::UnixMillis;
    use crate::model::Risk;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_pushes_are_all_durable_and_replayed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signals.journal");
        let (journal, _) = SignalJournal::open(&path).unwrap();
        let writer = std::sync::Arc::new(JournalWriter::start(journal).unwrap());
        let mut tasks = Vec::new();
        for i in 1..=50u128 {
            let writer = writer.clone();
            tasks.push(tokio::spawn(async move {
                let signal = Signal {
                    device: DeviceId::from_u128(i).unwrap(),
                    risk: Risk::High,
                    observed_at: UnixMillis(1_000 + i as i64),
                };
                writer.append(vec![signal]).await
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        drop(writer);
        let (_, replay) = SignalJournal::open(&path).unwrap();
        let mut devices: Vec<u128> = replay.signals.iter().map(|s| s.device.as_u128()).collect();
        devices.sort_unstable();
        assert_eq!(devices, (1..=50).collect::<Vec<_>>());
    }
}
