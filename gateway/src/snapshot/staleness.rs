//! Staleness (product brief section 6): how long each feed has been silent, against its
//! maximum age. Pure: the caller passes the time and what the snapshot knows.

use crate::clock::UnixMillis;
use crate::config::sources::StalenessConfig;

use super::status::SourceStatus;

/// The verdict on the feeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Freshness {
    Fresh,
    /// Past a maximum age, still serving until `fail_at`.
    Stale {
        note: String,
        fail_at: UnixMillis,
    },
    /// Past a maximum age and the grace after it: deny with `snapshot_stale`.
    FailClosed {
        note: String,
    },
}

impl Freshness {
    pub fn failing_closed(&self) -> bool {
        matches!(self, Freshness::FailClosed { .. })
    }

    pub fn note(&self) -> Option<String> {
        match self {
            Freshness::Fresh => None,
            Freshness::Stale { note, .. } | Freshness::FailClosed { note } => Some(note.clone()),
        }
    }
}

/// Assesses each configured feed: heard from at its file's modification time, or at the
/// latest of the other events `heard` lists for it (pushed signals, pulls that found nothing
/// new), whichever is newer; a feed never heard from counts as silent since the epoch. The
/// worst feed decides.
pub fn assess(
    now: UnixMillis,
    sources: &[SourceStatus],
    heard: &[(&str, UnixMillis)],
    cfg: &StalenessConfig,
) -> Freshness {
    let feeds = [
        ("managed_devices", cfg.managed_devices),
        ("defender_machines", cfg.defender_machines),
    ];
    let grace = i64::try_from(cfg.serve_stale_for.as_millis()).unwrap_or(i64::MAX);
    let mut worst = Freshness::Fresh;
    for (kind, max_age) in feeds {
        let pushed = heard
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, t)| *t)
            .max();
        let Some(max_age) = max_age else { continue };
        let max_age = i64::try_from(max_age.as_millis()).unwrap_or(i64::MAX);
        let file = sources
            .iter()
            .find(|s| s.kind == kind)
            .and_then(|s| s.modified);
        let heard = file.max(pushed).unwrap_or(UnixMillis(0));
        let age = now.0.saturating_sub(heard.0);
        if age <= max_age {
            continue;
        }
        let note = format!(
            "{kind} silent for {}s (maximum age {}s)",
            age / 1000,
            max_age / 1000
        );
        let fail_at = UnixMillis(heard.0.saturating_add(max_age).saturating_add(grace));
        let verdict = if now.0 >= fail_at.0 {
            Freshness::FailClosed { note }
        } else {
            Freshness::Stale { note, fail_at }
        };
        worst = match (&worst, &verdict) {
            (Freshness::FailClosed { .. }, _) => worst,
            (_, Freshness::FailClosed { .. }) | (Freshness::Fresh, _) => verdict,
            _ => worst,
        };
    }
    worst
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use super::*;

    fn source(kind: &'static str, modified_s: i64) -> SourceStatus {
        SourceStatus {
            kind,
            path: PathBuf::from(kind),
            records: 1,
            modified: Some(UnixMillis(modified_s * 1000)),
            loaded_at: UnixMillis(0),
        }
    }

    /// `now_s` seconds; devices file at 0 s, Defender file at 100 s; max ages 60 s / 30 s.
    fn check(now_s: i64, pushed_s: Option<i64>, grace_s: u64, want: &str) {
        let cfg = StalenessConfig {
            managed_devices: Some(Duration::from_secs(600)),
            defender_machines: Some(Duration::from_secs(30)),
            serve_stale_for: Duration::from_secs(grace_s),
            check_every: Duration::from_secs(1),
        };
        let sources = [
            source("managed_devices", 0),
            source("defender_machines", 100),
        ];
        let got = assess(
            UnixMillis(now_s * 1000),
            &sources,
            &pushed_s
                .map(|s| vec![("defender_machines", UnixMillis(s * 1000))])
                .unwrap_or_default(),
            &cfg,
        );
        let got = match &got {
            Freshness::Fresh => "fresh".to_string(),
            Freshness::Stale { note, .. } => format!("stale: {note}"),
            Freshness::FailClosed { note } => format!("closed: {note}"),
        };
        assert!(got.starts_with(want), "at {now_s}s: {got}, want {want}");
    }

    #[test]
    fn feeds_age_into_stale_then_closed() {
        check(120, None, 0, "fresh");
        check(130, None, 0, "fresh");
        check(131, None, 0, "closed: defender_machines silent for 31s");
        check(131, None, 60, "stale: defender_machines silent for 31s");
        check(189, None, 60, "stale");
        check(190, None, 60, "closed");
        // A pushed signal counts as hearing from the risk feed.
        check(200, Some(190), 0, "fresh");
        // The devices document ages on its own clock; closed beats stale.
        check(600, Some(590), 0, "fresh");
        check(605, Some(600), 0, "closed: managed_devices silent for 605s");
        check(700, Some(690), 600, "stale: managed_devices");
    }

    #[test]
    fn a_feed_never_heard_from_is_silent_since_the_epoch() {
        let cfg = StalenessConfig {
            managed_devices: None,
            defender_machines: Some(Duration::from_secs(30)),
            serve_stale_for: Duration::ZERO,
            check_every: Duration::from_secs(1),
        };
        let got = assess(UnixMillis(1_000_000), &[], &[], &cfg);
        assert!(got.failing_closed(), "{got:?}");
        let none = StalenessConfig {
            defender_machines: None,
            ..cfg
        };
        assert_eq!(
            assess(UnixMillis(1_000_000), &[], &[], &none),
            Freshness::Fresh
        );
    }
}
