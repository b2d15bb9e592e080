//! The durable journal of accepted risk signals: an append-only file of checksummed batches
//! (format in `record`), replayed on start and compacted to the latest signal per device.
//!
//! Invariant: `append` returns only after the batch is written and `fdatasync`ed, so a signal
//! acknowledged to its sender survives a crash of the process or the machine. A torn last
//! record (a crash mid-write) is dropped and cut off on open; everything before it is kept.
//!
//! The journal is synchronous and single-writer (`&mut self`): async callers run it on a
//! blocking thread. Two processes must not open the same file.

mod record;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::{latest_per_device, Signal};

/// Why a journal could not be opened. Damage to its records is not an error: it is reported
/// in `Replay`.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} is not a Portcullis signal journal (bad magic); refusing to overwrite it")]
    NotAJournal { path: PathBuf },
    #[error("journal {path} has format version {version}; this build reads version 1")]
    UnsupportedVersion { path: PathBuf, version: u16 },
}

/// What the journal held when it was opened.
#[derive(Debug, Default)]
pub struct Replay {
    /// Every recovered signal in append order (fold with `latest_per_device`).
    pub signals: Vec<Signal>,
    /// Set when records were dropped: where, why and how many bytes.
    pub dropped_tail: Option<String>,
    /// Bytes cut off the end of the file.
    pub dropped_bytes: u64,
    /// For damage in mid-file (not a torn tail), the copy of the damaged file kept before it
    /// was cut, for inspection.
    pub corrupt_copy: Option<PathBuf>,
}

/// When `needs_compaction` says yes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JournalOptions {
    /// Never suggest compaction below this file size.
    pub compact_min_bytes: u64,
    /// Suggest compaction once the file is this many times the size of a compacted one.
    pub compact_growth_factor: u64,
}

impl Default for JournalOptions {
    fn default() -> Self {
        Self {
            compact_min_bytes: 4 * 1024 * 1024,
            compact_growth_factor: 4,
        }
    }
}

/// An open journal, positioned for appends.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: File,
    /// The file's length: everything before it is good, synced records.
    len: u64,
    /// The size of the file right after the last compaction (or an estimate of it at open).
    compacted_len: u64,
    options: JournalOptions,
    /// Set after a failed `fdatasync`: the state of the file is then unknown, so no more
    /// appends are accepted until the journal is reopened.
    poisoned: Option<String>,
    buf: Vec<u8>,
}

impl Journal {
    /// Opens (or creates) the journal at `path` with default options and replays it.
    pub fn open(path: impl AsRef<Path>) -> Result<(Journal, Replay), JournalError> {
        Self::open_with(path, JournalOptions::default())
    }

    pub fn open_with(
        path: impl AsRef<Path>,
        options: JournalOptions,
    ) -> Result<(Journal, Replay), JournalError> {
        let path = path.as_ref().to_path_buf();
        let io_err = |source| JournalError::Io {
            path: path.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io_err)?;

        let mut replay = Replay::default();
        match record::check_header(&bytes) {
            Ok(()) => {}
            Err(record::HeaderProblem::Torn) => {
                // New, or a crash before its header was synced: start it afresh.
                if !bytes.is_empty() {
                    replay.dropped_tail = Some(format!(
                        "incomplete file header ({} of 8 bytes) rewritten",
                        bytes.len()
                    ));
                    replay.dropped_bytes = bytes.len() as u64;
                }
                file.set_len(0).map_err(io_err)?;
                file.seek(SeekFrom::Start(0)).map_err(io_err)?;
                file.write_all(&record::header()).map_err(io_err)?;
                file.sync_all().map_err(io_err)?;
                sync_dir(&path).map_err(io_err)?;
                bytes = record::header().to_vec();
            }
            Err(record::HeaderProblem::NotAJournal) => {
                return Err(JournalError::NotAJournal { path });
            }
            Err(record::HeaderProblem::UnsupportedVersion(version)) => {
                return Err(JournalError::UnsupportedVersion { path, version });
            }
        }

        let scan = record::scan(&bytes);
        if let Some(problem) = &scan.problem {
            let dropped = bytes.len() - scan.good_len;
            if !problem.at_tail {
                let copy = corrupt_copy_path(&path);
                fs::write(&copy, &bytes).map_err(io_err)?;
                replay.corrupt_copy = Some(copy);
            }
            replay.dropped_tail = Some(format!(
                "{} at byte {} ({}): dropped the last {dropped} bytes, kept {} signals in {} records before it",
                if problem.at_tail { "torn last record" } else { "damaged record" },
                problem.offset,
                problem.detail,
                scan.signals.len(),
                scan.records,
            ));
            replay.dropped_bytes = dropped as u64;
            file.set_len(scan.good_len as u64).map_err(io_err)?;
            file.sync_all().map_err(io_err)?;
        }
        let len = scan.good_len as u64;
        file.seek(SeekFrom::Start(len)).map_err(io_err)?;
        let live = latest_per_device(&scan.signals).len();
        replay.signals = scan.signals;
        let journal = Journal {
            path,
            file,
            len,
            compacted_len: compacted_size(live),
            options,
            poisoned: None,
            buf: Vec::new(),
        };
        Ok((journal, replay))
    }

    /// Writes `signals` as one batch and `fdatasync`s before returning: once this returns
    /// `Ok`, the batch survives a crash. On error nothing of the batch counts (a partial write
    /// is cut off again); after a failed sync the journal refuses further appends.
    pub fn append(&mut self, signals: &[Signal]) -> io::Result<()> {
        if let Some(why) = &self.poisoned {
            return Err(io::Error::other(format!(
                "journal {} is unusable after an earlier failure ({why}); reopen it",
                self.path.display()
            )));
        }
        if signals.is_empty() {
            return Ok(());
        }
        self.buf.clear();
        record::encode(signals, &mut self.buf);
        let written = self
            .file
            .seek(SeekFrom::Start(self.len))
            .and_then(|_| self.file.write_all(&self.buf));
        if let Err(e) = written {
            // Cut a partial write off so later appends stay readable.
            if let Err(cut) = self.file.set_len(self.len) {
                self.poisoned = Some(format!("write failed: {e}; truncate failed: {cut}"));
            }
            return Err(e);
        }
        if let Err(e) = self.file.sync_data() {
            self.poisoned = Some(format!("fdatasync failed: {e}"));
            return Err(e);
        }
        self.len += self.buf.len() as u64;
        Ok(())
    }

    /// Replaces the journal with just `live` (normally the latest signal per device): writes a
    /// temporary file in the same directory, syncs it, renames it over the journal and syncs
    /// the directory. A crash at any point leaves either the old or the new journal whole.
    pub fn compact(&mut self, live: &[Signal]) -> io::Result<()> {
        let tmp = tmp_path(&self.path);
        let result = self.write_compacted(&tmp, live);
        if result.is_err() {
            // Best effort: the temporary file is garbage either way.
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    fn write_compacted(&mut self, tmp: &Path, live: &[Signal]) -> io::Result<()> {
        let mut bytes = record::header().to_vec();
        record::encode(live, &mut bytes);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(tmp)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        file.seek(SeekFrom::Start(bytes.len() as u64))?;
        fs::rename(tmp, &self.path)?;
        // From here on the new file is the journal, whatever happens next.
        self.file = file;
        self.len = bytes.len() as u64;
        self.compacted_len = self.len;
        self.poisoned = None;
        sync_dir(&self.path)
    }

    /// True when the file has grown well past the size a compaction would leave
    /// (see `JournalOptions`). The caller then calls `compact` with the latest per device.
    pub fn needs_compaction(&self) -> bool {
        self.len >= self.options.compact_min_bytes
            && self.len
                >= self
                    .compacted_len
                    .saturating_mul(self.options.compact_growth_factor)
    }

    /// The journal's size in bytes (all of it good, synced records).
    pub fn len_bytes(&self) -> u64 {
        self.len
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The size of a journal holding `signals` signals after compaction.
fn compacted_size(signals: usize) -> u64 {
    let records = signals.div_ceil(record::MAX_RECORD_SIGNALS) as u64;
    (record::HEADER_LEN as u64)
        + records * record::RECORD_HEADER_LEN as u64
        + (signals * record::SIGNAL_LEN) as u64
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

fn tmp_path(path: &Path) -> PathBuf {
    with_suffix(path, ".compact-tmp")
}

fn corrupt_copy_path(path: &Path) -> PathBuf {
    with_suffix(
        path,
        &format!(".corrupt-{}", crate::clock::UnixMillis::now().0),
    )
}

/// Makes a rename or a file creation in `path`'s directory durable.
fn sync_dir(path: &Path) -> io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests;
