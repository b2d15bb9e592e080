//! Where snapshots come from: reading the source documents named in `[sources]`
//! (`files`), and rebuilding when they change or when a device's state changes by time
//! alone (`watch`); pull sources write their documents over those files (`pulled`). The only module here that touches the file system and the clock.

pub mod files;
pub mod pulled;
pub mod watch;

use std::path::PathBuf;

use crate::compliance::parse::ParseError;

/// Why a snapshot could not be built from the sources. Always names the file.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{path}: cannot read: {message}")]
    Read { path: PathBuf, message: String },
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error("conditional access{}: {message}", path.as_ref().map(|p| format!(" ({})", p.display())).unwrap_or_default())]
    Access {
        path: Option<PathBuf>,
        message: String,
    },
}
