//! The polling loop: fetch every `interval`, back off exponentially (with jitter, capped) after
//! failures, and keep a status the admin API can show.

use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::fetch::{fetch, FetchOutcome, PullClient};
use super::PullSource;
use crate::clock::UnixMillis;

/// The first retry after a failure waits at most this long.
const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
/// Retries never wait longer than this (nor longer than the interval).
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// What a poller last did; shared with the admin API.
#[derive(Debug, Default)]
pub struct PullStatus {
    inner: Mutex<PullStatusView>,
}

/// A copy of a poller's status.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PullStatusView {
    #[serde(serialize_with = "opt_time")]
    pub last_attempt_at: Option<UnixMillis>,
    /// The last fetch that ended well (a new document applied, or 304 Not Modified).
    #[serde(serialize_with = "opt_time")]
    pub last_success_at: Option<UnixMillis>,
    /// The last time a new document was handed over and accepted.
    #[serde(serialize_with = "opt_time")]
    pub last_change_at: Option<UnixMillis>,
    /// The last failure's text; kept after a later success (compare `last_error_at`).
    pub last_error: Option<String>,
    #[serde(serialize_with = "opt_time")]
    pub last_error_at: Option<UnixMillis>,
    pub consecutive_failures: u32,
    /// The ETag of the last accepted document.
    pub etag: Option<String>,
    /// Items and pages of the last accepted document.
    pub items: usize,
    pub pages: usize,
}

fn opt_time<S: serde::Serializer>(t: &Option<UnixMillis>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_some(&t.to_rfc3339()),
        None => s.serialize_none(),
    }
}

impl PullStatus {
    pub fn view(&self) -> PullStatusView {
        self.lock().clone()
    }

    fn lock(&self) -> MutexGuard<'_, PullStatusView> {
        // The guarded data is plain values that are always consistent: a panic while it was
        // held cannot leave it half-updated in a way that matters.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn etag(&self) -> Option<String> {
        self.lock().etag.clone()
    }

    fn attempt(&self, now: UnixMillis) {
        self.lock().last_attempt_at = Some(now);
    }

    fn succeeded(&self, now: UnixMillis, document: Option<(Option<String>, usize, usize)>) {
        let mut s = self.lock();
        s.last_success_at = Some(now);
        s.consecutive_failures = 0;
        if let Some((etag, items, pages)) = document {
            s.last_change_at = Some(now);
            s.etag = etag;
            s.items = items;
            s.pages = pages;
        }
    }

    /// Records a failure and returns how many there have been in a row.
    fn failed(&self, now: UnixMillis, error: String) -> u32 {
        let mut s = self.lock();
        s.last_error = Some(error);
        s.last_error_at = Some(now);
        s.consecutive_failures = s.consecutive_failures.saturating_add(1);
        s.consecutive_failures
    }
}

/// Starts polling `source` until `shutdown` becomes true (or its sender is dropped).
///
/// Each complete document is handed to `on_document`; an `Err` from it counts as a failure
/// (its ETag is not kept, so the next poll fetches the document again). `on_document` runs on
/// the runtime: keep it short or hand the work to a blocking thread.
pub fn spawn_poller<F>(
    client: PullClient,
    source: PullSource,
    on_document: F,
    status: Arc<PullStatus>,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<()>
where
    F: Fn(Vec<Value>) -> Result<(), String> + Send + 'static,
{
    tokio::spawn(async move {
        let jitter = RandomState::new();
        loop {
            if *shutdown.borrow() {
                break;
            }
            status.attempt(UnixMillis::now());
            let etag = status.etag();
            let result = tokio::select! {
                r = fetch(&client, &source, etag.as_deref()) => r,
                _ = shutdown.changed() => break,
            };
            let delay = match result {
                Ok(FetchOutcome::NotModified) => {
                    status.succeeded(UnixMillis::now(), None);
                    source.interval
                }
                Ok(FetchOutcome::Document { items, etag, pages }) => {
                    let count = items.len();
                    match on_document(items) {
                        Ok(()) => {
                            status.succeeded(UnixMillis::now(), Some((etag, count, pages)));
                            source.interval
                        }
                        Err(why) => {
                            let msg = format!("document of {count} items rejected: {why}");
                            retry_delay(&status, msg, &source, &jitter)
                        }
                    }
                }
                Err(e) => retry_delay(&status, e.to_string(), &source, &jitter),
            };
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = shutdown.changed() => break,
            }
        }
    })
}

fn retry_delay(
    status: &PullStatus,
    error: String,
    source: &PullSource,
    jitter: &RandomState,
) -> Duration {
    tracing::warn!(url = %source.url, %error, "pull failed");
    let now = UnixMillis::now();
    let failures = status.failed(now, error);
    let unit = (jitter.hash_one((now.0, failures)) >> 11) as f64 / (1u64 << 53) as f64;
    backoff_delay(failures, source.interval, unit)
}

/// The wait before retry number `failures` (1 = first failure): doubling from
/// min(1 s, interval), capped at min(5 min, interval), then "equal jitter": a uniformly
/// random point in the upper half, `jitter_unit` in [0, 1).
pub fn backoff_delay(failures: u32, interval: Duration, jitter_unit: f64) -> Duration {
    let initial = INITIAL_BACKOFF.min(interval);
    let cap = MAX_BACKOFF.min(interval).max(initial);
    let doublings = failures.saturating_sub(1).min(30);
    let base = initial.saturating_mul(1u32 << doublings).min(cap);
    let half = base / 2;
    half + half.mul_f64(jitter_unit.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(failures: u32, interval_s: u64, jitter: f64, expected_ms: u64) {
        let got = backoff_delay(failures, Duration::from_secs(interval_s), jitter);
        assert_eq!(
            got.as_millis() as u64,
            expected_ms,
            "failures {failures}, interval {interval_s}s, jitter {jitter}"
        );
    }

    #[test]
    fn backoff_doubles_with_jitter_and_caps() {
        check(1, 300, 0.0, 500);
        check(1, 300, 0.999_999, 999);
        check(2, 300, 0.0, 1_000);
        check(3, 300, 0.5, 3_000);
        check(9, 300, 0.0, 128_000);
        check(10, 300, 0.0, 150_000);
        check(1_000, 300, 0.0, 150_000);
        check(1_000, 3_600, 0.0, 150_000);
        // Never slower than the normal interval.
        check(5, 2, 0.0, 1_000);
    }

    #[test]
    fn status_counts_failures_and_resets_on_success() {
        let s = PullStatus::default();
        assert_eq!(s.failed(UnixMillis(1), "boom".into()), 1);
        assert_eq!(s.failed(UnixMillis(2), "boom again".into()), 2);
        s.succeeded(UnixMillis(3), Some((Some("\"v1\"".into()), 7, 2)));
        let v = s.view();
        assert_eq!(v.consecutive_failures, 0);
        assert_eq!(v.last_error.as_deref(), Some("boom again"));
        assert_eq!(
            (v.items, v.pages, v.etag.as_deref()),
            (7, 2, Some("\"v1\""))
        );
        let json = serde_json::to_value(&v).unwrap();
        assert_eq!(json["lastSuccessAt"], "1970-01-01T00:00:00.003Z");
        assert_eq!(json["consecutiveFailures"], 0);
    }
}
