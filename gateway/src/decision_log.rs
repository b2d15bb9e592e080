//! The decision log: one JSON line per decision (every deny, a sample of allows), written by a
//! background task so the request path never waits on disk; and a bounded ring of recent
//! decisions that the admin API looks up by correlation id.

use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use tokio::sync::mpsc;

/// How many lines may wait for the writer before new ones are dropped (and counted).
const QUEUE: usize = 16 * 1024;

/// The writing end the request path holds.
pub struct DecisionLog {
    tx: Option<mpsc::Sender<String>>,
    /// Log one allow in `every_nth` (0 = none).
    every_nth: u64,
    seen_allows: AtomicU64,
    dropped: AtomicU64,
    recent: Mutex<Recent>,
}

struct Recent {
    capacity: usize,
    entries: VecDeque<(String, serde_json::Value)>,
}

impl DecisionLog {
    /// A log that writes nowhere but still keeps recent decisions for the admin API.
    pub fn disabled(recent_capacity: usize) -> Self {
        Self::with_sender(None, 0.0, recent_capacity)
    }

    fn with_sender(
        tx: Option<mpsc::Sender<String>>,
        allow_sample_rate: f64,
        recent_capacity: usize,
    ) -> Self {
        let every_nth = if allow_sample_rate <= 0.0 {
            0
        } else {
            (1.0 / allow_sample_rate).round().max(1.0) as u64
        };
        Self {
            tx,
            every_nth,
            seen_allows: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            recent: Mutex::new(Recent {
                capacity: recent_capacity,
                entries: VecDeque::with_capacity(recent_capacity.min(1024)),
            }),
        }
    }

    /// Starts the writer task appending to `path` (`-` for standard output).
    pub fn spawn(
        path: &Path,
        allow_sample_rate: f64,
        recent_capacity: usize,
    ) -> std::io::Result<Self> {
        let mut out: Box<dyn Write + Send> = if path == Path::new("-") {
            Box::new(std::io::stdout())
        } else {
            Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?,
            )
        };
        let (tx, mut rx) = mpsc::channel::<String>(QUEUE);
        let path_text = PathBuf::from(path).display().to_string();
        tokio::task::spawn_blocking(move || {
            while let Some(line) = rx.blocking_recv() {
                if let Err(e) = writeln!(out, "{line}").and_then(|_| {
                    if rx.is_empty() {
                        out.flush()
                    } else {
                        Ok(())
                    }
                }) {
                    tracing::error!(path = %path_text, error = %e, "cannot write the decision log");
                }
            }
            let _ = out.flush();
        });
        Ok(Self::with_sender(
            Some(tx),
            allow_sample_rate,
            recent_capacity,
        ))
    }

    /// Whether this allow is in the sample. Denies are always logged.
    pub fn sample_allow(&self) -> bool {
        self.every_nth != 0
            && self.seen_allows.fetch_add(1, Ordering::Relaxed) % self.every_nth == 0
    }

    /// Queues one entry for the log and keeps it in the recent ring. Never waits.
    pub fn record(&self, correlation_id: &str, entry: serde_json::Value) {
        if let Some(tx) = &self.tx {
            if tx.try_send(entry.to_string()).is_err() {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        if let Ok(mut recent) = self.recent.lock() {
            if recent.capacity == 0 {
                return;
            }
            if recent.entries.len() == recent.capacity {
                recent.entries.pop_front();
            }
            recent
                .entries
                .push_back((correlation_id.to_string(), entry));
        }
    }

    /// The most recent decision with this correlation id.
    pub fn find(&self, correlation_id: &str) -> Option<serde_json::Value> {
        let recent = self.recent.lock().ok()?;
        recent
            .entries
            .iter()
            .rev()
            .find(|(id, _)| id == correlation_id)
            .map(|(_, v)| v.clone())
    }

    /// Lines dropped because the writer fell behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_allows_at_the_configured_rate() {
        let log = DecisionLog::with_sender(None, 0.25, 0);
        let logged = (0..100).filter(|_| log.sample_allow()).count();
        assert_eq!(logged, 25);
        let none = DecisionLog::with_sender(None, 0.0, 0);
        assert!(!(0..100).any(|_| none.sample_allow()));
    }

    #[test]
    fn recent_ring_is_bounded_and_finds_by_id() {
        let log = DecisionLog::disabled(2);
        for i in 0..3 {
            log.record(&format!("id{i}"), serde_json::json!({ "n": i }));
        }
        assert!(log.find("id0").is_none(), "evicted");
        assert_eq!(log.find("id2").unwrap()["n"], 2);
    }

    #[tokio::test]
    async fn writes_json_lines_to_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("decisions.jsonl");
        let log = DecisionLog::spawn(&path, 1.0, 10).unwrap();
        log.record("a", serde_json::json!({ "correlationId": "a" }));
        log.record("b", serde_json::json!({ "correlationId": "b" }));
        drop(log);
        let mut text = String::new();
        for _ in 0..100 {
            text = std::fs::read_to_string(&path).unwrap_or_default();
            if text.lines().count() == 2 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let ids: Vec<String> = text
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["correlationId"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(ids, ["a", "b"]);
    }
}
