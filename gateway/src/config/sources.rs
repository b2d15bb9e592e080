//! The `[sources]` section: where device inventory, risk, policies and tenant settings come
//! from, whether to watch them, and how long a risk observation stays valid. Paths are
//! relative to the config file's directory (the caller resolves them with `resolve`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::pull::PullSource;

/// `[sources]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourcesConfig {
    /// Graph managed devices (with the `memberOf` extension).
    pub managed_devices: PathBuf,
    /// Defender machines; without it every device's risk is `unavailable`.
    #[serde(default)]
    pub defender_machines: Option<PathBuf>,
    /// Graph device compliance policies.
    pub compliance_policies: PathBuf,
    /// Graph deviceManagement settings; without it the defaults apply
    /// (`secureByDefault` true, check-in threshold 30 days).
    #[serde(default)]
    pub tenant_settings: Option<PathBuf>,
    /// Graph conditional-access policies (parsed by the access module).
    #[serde(default)]
    pub conditional_access: Option<PathBuf>,
    /// Graph named locations (`ipNamedLocation`), for conditional access's `locations`.
    #[serde(default)]
    pub named_locations: Option<PathBuf>,
    /// Rebuild when a file changes.
    #[serde(default = "default_watch")]
    pub watch: bool,
    /// Quiet time after the last change before rebuilding.
    #[serde(default = "default_debounce", deserialize_with = "de_duration")]
    pub debounce: Duration,
    /// Risk observations older than this count as `unavailable`.
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub risk_max_age: Option<Duration>,
    /// How long each feed may stay silent before the snapshot is stale, and what then.
    #[serde(default)]
    pub staleness: Option<StalenessConfig>,
    /// HTTP endpoints polled for the inventory and risk documents (`[sources.pull.*]`).
    #[serde(default)]
    pub pull: PullConfig,
}

/// `[sources.pull]`: each pulled document is written over the file of the same key, so the
/// file keys stay required and hold the last good pull across restarts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PullConfig {
    /// A Graph-style `deviceManagement/managedDevices` endpoint.
    #[serde(default)]
    pub managed_devices: Option<PullSource>,
    /// A Defender-style `machines` endpoint; needs the `defender_machines` file key.
    #[serde(default)]
    pub defender_machines: Option<PullSource>,
}

/// `[sources.staleness]`: a feed is heard from when its file changes, when its pull source
/// succeeds (a 304 included) or, for the risk feed, when signals are pushed. Past a feed's
/// maximum age the gateway keeps serving for `serve_stale_for`, then fails closed
/// (`snapshot_stale`) until the feed is heard from again.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StalenessConfig {
    /// Maximum age of the managed-devices document.
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub managed_devices: Option<Duration>,
    /// Maximum age of the risk feed (Defender file or pushed signals, whichever is newer).
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub defender_machines: Option<Duration>,
    /// How long to keep serving on stale data before failing closed.
    #[serde(default, deserialize_with = "de_duration")]
    pub serve_stale_for: Duration,
    /// How often staleness is checked.
    #[serde(default = "default_check_every", deserialize_with = "de_duration")]
    pub check_every: Duration,
}

fn default_check_every() -> Duration {
    Duration::from_millis(500)
}

fn default_watch() -> bool {
    true
}

fn default_debounce() -> Duration {
    Duration::from_millis(250)
}

impl SourcesConfig {
    /// A config naming just the two required documents, with defaults for the rest.
    pub fn new(
        managed_devices: impl Into<PathBuf>,
        compliance_policies: impl Into<PathBuf>,
    ) -> Self {
        Self {
            managed_devices: managed_devices.into(),
            defender_machines: None,
            compliance_policies: compliance_policies.into(),
            tenant_settings: None,
            conditional_access: None,
            named_locations: None,
            watch: default_watch(),
            debounce: default_debounce(),
            risk_max_age: None,
            staleness: None,
            pull: PullConfig::default(),
        }
    }

    /// `path` relative to `base_dir` (absolute paths stay as they are).
    pub fn resolve(base_dir: &Path, path: &Path) -> PathBuf {
        base_dir.join(path)
    }
}

/// Parses `"250ms"`, `"2s"`, `"5m"`, `"1h"`, `"1d"` (a whole number and a unit).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| {
        format!("not a duration: {text:?} (use e.g. \"250ms\", \"2s\", \"5m\", \"1h\")")
    })?;
    let secs = |mul: u64| n.checked_mul(mul).map(Duration::from_secs);
    match unit.trim() {
        "ms" => Some(Duration::from_millis(n)),
        "s" => secs(1),
        "m" => secs(60),
        "h" => secs(3600),
        "d" => secs(86_400),
        _ => None,
    }
    .ok_or_else(|| format!("not a duration: {text:?} (use e.g. \"250ms\", \"2s\", \"5m\", \"1h\")"))
}

fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    parse_duration(&text).map_err(serde::de::Error::custom)
}

fn de_opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    de_duration(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(toml_text: &str, expect: Result<&str, &str>) {
        match (toml::from_str::<SourcesConfig>(toml_text), expect) {
            (Ok(c), Ok(want)) => assert!(format!("{c:?}").contains(want), "{c:?} lacks {want}"),
            (Err(e), Err(want)) => assert!(e.to_string().contains(want), "{e} lacks {want}"),
            (got, want) => panic!("{toml_text}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn keys_defaults_and_errors() {
        let base = "managed_devices = \"d.json\"\ncompliance_policies = \"p.json\"\n";
        check(base, Ok("watch: true, debounce: 250ms, risk_max_age: None"));
        check(
            &format!("{base}debounce = \"2s\"\nrisk_max_age = \"1h\"\nwatch = false"),
            Ok("watch: false, debounce: 2s, risk_max_age: Some(3600s)"),
        );
        check(&format!("{base}defender_machines = \"m.json\"\ntenant_settings = \"t.json\"\nconditional_access = \"ca.json\""), Ok("conditional_access: Some(\"ca.json\")"));
        check(&format!("{base}debounce = \"soon\""), Err("not a duration"));
        check(
            &format!("{base}colour = \"red\""),
            Err("unknown field `colour`"),
        );
        check(
            "managed_devices = \"d.json\"",
            Err("missing field `compliance_policies`"),
        );
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert!(parse_duration("5 parsecs").is_err());
    }
}
