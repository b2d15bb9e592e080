//! The JWKS refresh task: re-loads the key set on an interval, early when a token names an
//! unknown `kid` (at most once per `min_spacing`), and backs off exponentially after failures
//! so neither garbage tokens nor an outage can hammer the JWKS endpoint.

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::Authenticator;

#[derive(Debug, Clone, Copy)]
pub(crate) struct RefreshPolicy {
    pub interval: Duration,
    pub min_spacing: Duration,
    pub max_backoff: Duration,
}

impl RefreshPolicy {
    /// The next backoff after a failure.
    fn next_backoff(&self, current: Option<Duration>) -> Duration {
        current
            .map_or(self.min_spacing, |b| b.saturating_mul(2))
            .clamp(
                self.min_spacing.max(Duration::from_millis(1)),
                self.max_backoff.max(self.min_spacing),
            )
    }
}

/// Runs until the authenticator is dropped (checked at each wake-up).
pub(crate) fn spawn(
    auth: Weak<Authenticator>,
    wanted: Arc<Notify>,
    policy: RefreshPolicy,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut backoff: Option<Duration> = None;
        let mut last_attempt = Instant::now();
        loop {
            let wait = backoff.unwrap_or(policy.interval);
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = wanted.notified() => {
                    let floor = backoff.unwrap_or_default().max(policy.min_spacing);
                    tokio::time::sleep_until(last_attempt + floor).await;
                }
            }
            let Some(auth) = auth.upgrade() else { return };
            last_attempt = Instant::now();
            match auth.refresh_jwks().await {
                Ok(()) => backoff = None,
                Err(e) => {
                    let next = policy.next_backoff(backoff);
                    tracing::warn!(error = %e, retry_in_secs = next.as_secs_f64(), "JWKS refresh failed; keeping the current keys");
                    backoff = Some(next);
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = RefreshPolicy {
            interval: Duration::from_secs(3600),
            min_spacing: Duration::from_secs(30),
            max_backoff: Duration::from_secs(100),
        };
        let mut b = None;
        let mut seen = Vec::new();
        for _ in 0..4 {
            let next = p.next_backoff(b);
            seen.push(next.as_secs());
            b = Some(next);
        }
        assert_eq!(seen, vec![30, 60, 100, 100]);
    }
}
