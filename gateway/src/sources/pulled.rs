//! Pull sources wired into the file pipeline. A pulled document is checked with the same
//! parser as its file, then written over that file atomically (temporary file, fsync,
//! rename); the watcher rebuilds the snapshot from it as from any edit. So the last good pull
//! survives a restart, a bad pull never replaces a good file, and one code path builds
//! snapshots. A pull that finds nothing new (304) counts as hearing from the feed.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::watch;

use crate::compliance::parse::{parse_defender_machines, parse_managed_devices};
use crate::config::sources::SourcesConfig;
use crate::pull::{self, PullError, PullSource, PullStatus, TokenSource};
use crate::snapshot::SnapshotStore;

use super::files::{self, AccessLoader};

/// Each running pull by the `[sources]` key it feeds, with its status.
pub type Pulls = Vec<(&'static str, Arc<PullStatus>)>;

/// Starts a poller for every configured pull source.
pub fn spawn(
    cfg: &SourcesConfig,
    base_dir: &Path,
    store: Arc<SnapshotStore>,
    access: Arc<AccessLoader>,
    shutdown: watch::Receiver<bool>,
) -> Result<Pulls, PullError> {
    let mut feeds: Vec<(&'static str, &PullSource, PathBuf)> = Vec::new();
    if let Some(p) = &cfg.pull.managed_devices {
        feeds.push((
            "managed_devices",
            p,
            SourcesConfig::resolve(base_dir, &cfg.managed_devices),
        ));
    }
    if let Some(p) = &cfg.pull.defender_machines {
        // Config validation requires the file key when the pull is set.
        if let Some(file) = &cfg.defender_machines {
            feeds.push((
                "defender_machines",
                p,
                SourcesConfig::resolve(base_dir, file),
            ));
        }
    }
    if feeds.is_empty() {
        return Ok(Vec::new());
    }
    let client = pull::client()?;
    let mut pulls = Vec::new();
    for (kind, source, path) in feeds {
        let mut source = source.clone();
        if let TokenSource::File(f) = &source.token {
            source.token = TokenSource::File(SourcesConfig::resolve(base_dir, f));
        }
        let status = Arc::new(PullStatus::default());
        let (store, cfg, base, access) = (
            store.clone(),
            cfg.clone(),
            base_dir.to_owned(),
            access.clone(),
        );
        let on_document = move |items: Vec<Value>| {
            accept(kind, &path, items)?;
            if !cfg.watch {
                files::rebuild(
                    &store,
                    &cfg,
                    &base,
                    &*access,
                    crate::clock::UnixMillis::now(),
                )
                .map_err(|e| e.to_string())?;
            }
            Ok(())
        };
        pull::spawn_poller(
            client.clone(),
            source,
            on_document,
            status.clone(),
            shutdown.clone(),
        );
        pulls.push((kind, status));
    }
    Ok(pulls)
}

/// Checks a pulled collection as the `kind` document and writes it over `path`.
pub fn accept(kind: &str, path: &Path, items: Vec<Value>) -> Result<(), String> {
    let text = serde_json::to_string(&serde_json::json!({ "value": items }))
        .map_err(|e| format!("cannot serialize the pulled document: {e}"))?;
    let name = format!("{} (pulled)", path.display());
    match kind {
        "managed_devices" => parse_managed_devices(&name, &text).map(drop),
        _ => parse_defender_machines(&name, &text).map(drop),
    }
    .map_err(|e| e.to_string())?;
    write_atomically(path, text.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Temporary file beside `path`, fsync, rename over `path`, fsync the directory.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.pull-{}", std::process::id()));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_document_never_replaces_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("machines.json");
        std::fs::write(&path, "[]").unwrap();
        let bad = vec![serde_json::json!({ "aadDeviceId": "not-a-guid", "riskScore": "High" })];
        let err = accept("defender_machines", &path, bad).unwrap_err();
        assert!(
            err.contains("aadDeviceId") && err.contains("(pulled)"),
            "{err}"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "[]");

        let good = vec![serde_json::json!({
            "aadDeviceId": "11111111-0000-0000-0000-000000000001",
            "riskScore": "High", "onboardingStatus": "Onboarded",
            "lastSeen": "2026-11-20T09:00:00Z"
        })];
        accept("defender_machines", &path, good).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"riskScore\":\"High\""), "{text}");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary file left"
        );
    }
}
