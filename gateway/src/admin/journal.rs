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
