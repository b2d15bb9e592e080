//! What the admin side shows about sources: the documents a snapshot was built from, and
//! the outcome of the latest rebuild attempt (which may have failed and left the last good
//! snapshot in place).

use std::path::PathBuf;

use crate::clock::UnixMillis;

/// One document a snapshot was built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceStatus {
    /// The `[sources]` key (`managed_devices`, `defender_machines`, ...).
    pub kind: &'static str,
    pub path: PathBuf,
    /// Records read (devices, machines, policies; 1 for settings).
    pub records: usize,
    /// The file's modification time when read, if the platform gives it.
    pub modified: Option<UnixMillis>,
    pub loaded_at: UnixMillis,
}

/// The outcome of rebuild attempts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceHealth {
    pub last_attempt: Option<UnixMillis>,
    pub last_success: Option<UnixMillis>,
    /// The error of the latest attempt if it failed (names the file and position); cleared
    /// by the next success.
    pub last_error: Option<String>,
    pub failures_total: u64,
}
