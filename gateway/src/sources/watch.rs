//! A background thread that keeps the store current: rebuilds (debounced) when a source
//! file changes — watching the parent directories, so editors that save by writing a new
//! file and renaming it over the old one are seen — and re-evaluates devices when their
//! state changes by time alone (`SnapshotStore::reevaluate_due`).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use notify::RecursiveMode;
use notify_debouncer_full::{new_debouncer, DebounceEventResult, Debouncer, RecommendedCache};

use crate::clock::UnixMillis;
use crate::config::sources::SourcesConfig;
use crate::snapshot::SnapshotStore;

use super::files::{self, AccessLoader};

/// Longest sleep between checks for time-driven re-evaluation.
const MAX_IDLE: Duration = Duration::from_secs(60);

enum Msg {
    Fs(DebounceEventResult),
    Stop,
}

/// The running watcher; dropping it (or `stop`) ends the thread.
pub struct WatchHandle {
    tx: Sender<Msg>,
    thread: Option<JoinHandle<()>>,
    _debouncer: Option<Debouncer<notify::RecommendedWatcher, RecommendedCache>>,
}

impl WatchHandle {
    /// Stops the thread and waits for it.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let _ = self.tx.send(Msg::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for WatchHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Starts the thread. With `cfg.watch` false only the time-driven re-evaluation runs.
/// The store should already hold the first snapshot (`files::rebuild` once before).
pub fn spawn(
    store: Arc<SnapshotStore>,
    cfg: SourcesConfig,
    base_dir: PathBuf,
    access: Arc<AccessLoader>,
) -> Result<WatchHandle, notify::Error> {
    let (tx, rx) = channel::<Msg>();
    let files: HashSet<PathBuf> = files::paths(&cfg, &base_dir)
        .into_iter()
        .map(|p| normalise(&p))
        .collect();
    let debouncer = if cfg.watch {
        let fs_tx = tx.clone();
        let mut d = new_debouncer(cfg.debounce, None, move |r: DebounceEventResult| {
            let _ = fs_tx.send(Msg::Fs(r));
        })?;
        let dirs: HashSet<PathBuf> = files
            .iter()
            .filter_map(|p| p.parent().map(Path::to_path_buf))
            .collect();
        for dir in dirs {
            d.watch(&dir, RecursiveMode::NonRecursive)?;
        }
        Some(d)
    } else {
        None
    };
    let thread = std::thread::Builder::new()
        .name("portcullis-sources".into())
        .spawn(move || loop {
            let wait = match store.next_due() {
                Some(due) => {
                    let ms = due.0.saturating_sub(UnixMillis::now().0).max(0);
                    Duration::from_millis(u64::try_from(ms).unwrap_or(0)).min(MAX_IDLE)
                }
                None => MAX_IDLE,
            };
            match rx.recv_timeout(wait) {
                Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => return,
                Ok(Msg::Fs(Ok(events))) => {
                    let relevant = events
                        .iter()
                        .flat_map(|e| e.paths.iter())
                        .any(|p| files.contains(&normalise(p)));
                    if relevant {
                        let now = UnixMillis::now();
                        match files::rebuild(&store, &cfg, &base_dir, &*access, now) {
                            Ok(v) => tracing::info!(version = v, "sources reloaded"),
                            Err(e) => tracing::warn!(error = %e, "sources reload failed; keeping the last good snapshot"),
                        }
                    }
                }
                Ok(Msg::Fs(Err(errors))) => {
                    for e in errors {
                        tracing::warn!(error = %e, "file watcher error");
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    if let Some(v) = store.reevaluate_due(UnixMillis::now()) {
                        tracing::debug!(version = v, "time-driven compliance changes published");
                    }
                }
            }
        })
        .map_err(notify::Error::io)?;
    Ok(WatchHandle {
        tx,
        thread: Some(thread),
        _debouncer: debouncer,
    })
}

/// The path with its parent directory canonicalized (the file itself may be mid-rename).
fn normalise(path: &Path) -> PathBuf {
    match (path.parent(), path.file_name()) {
        (Some(dir), Some(name)) => std::fs::canonicalize(if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        })
        .map(|d| d.join(name))
        .unwrap_or_else(|_| path.to_owned()),
        _ => path.to_owned(),
    }
}
