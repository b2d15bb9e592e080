//! Reads the `[sources]` documents and builds a `Snapshot` from them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::access::PolicySet;
use crate::clock::UnixMillis;
use crate::compliance::parse::{
    parse_compliance_policies, parse_defender_machines, parse_managed_devices,
    parse_tenant_settings, DefenderRisks,
};
use crate::compliance::{RiskObservation, TenantSettings};
use crate::config::sources::SourcesConfig;
use crate::snapshot::{build_table, ComplianceRules, Snapshot, SnapshotStore, SourceStatus};

use super::SourceError;

/// Builds the conditional-access policy set from the `conditional_access` document (its
/// resolved path, if configured). Supplied by the caller, since the access module owns
/// that format.
pub type AccessLoader = dyn Fn(Option<&Path>) -> Result<Arc<PolicySet>, String> + Send + Sync;

/// Reads every document and builds a snapshot (version `prev.version + 1`, or 1). `prev`
/// carries pushed risk observations newer than the files and failing-since times.
pub fn load(
    cfg: &SourcesConfig,
    base_dir: &Path,
    access: Arc<PolicySet>,
    prev: Option<&Snapshot>,
    now: UnixMillis,
) -> Result<Snapshot, SourceError> {
    let mut statuses = Vec::new();
    let devices_path = SourcesConfig::resolve(base_dir, &cfg.managed_devices);
    let (text, modified) = read(&devices_path)?;
    let devices = parse_managed_devices(&devices_path.display().to_string(), &text)?;
    statuses.push(status(
        "managed_devices",
        devices_path,
        devices.devices.len(),
        modified,
        now,
    ));

    let policies_path = SourcesConfig::resolve(base_dir, &cfg.compliance_policies);
    let (text, modified) = read(&policies_path)?;
    let policies = parse_compliance_policies(&policies_path.display().to_string(), &text)?;
    statuses.push(status(
        "compliance_policies",
        policies_path,
        policies.len(),
        modified,
        now,
    ));

    let mut settings = TenantSettings::default();
    if let Some(p) = &cfg.tenant_settings {
        let path = SourcesConfig::resolve(base_dir, p);
        let (text, modified) = read(&path)?;
        settings = parse_tenant_settings(&path.display().to_string(), &text)?;
        statuses.push(status("tenant_settings", path, 1, modified, now));
    }
    settings.risk_max_age_ms = cfg
        .risk_max_age
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));

    let mut risks = DefenderRisks::new();
    if let Some(p) = &cfg.defender_machines {
        let path = SourcesConfig::resolve(base_dir, p);
        let (text, modified) = read(&path)?;
        risks = parse_defender_machines(&path.display().to_string(), &text)?;
        statuses.push(status(
            "defender_machines",
            path,
            risks.len(),
            modified,
            now,
        ));
    }
    if let Some(p) = &cfg.conditional_access {
        let path = SourcesConfig::resolve(base_dir, p);
        let modified = std::fs::metadata(&path).ok().and_then(|m| modified_of(&m));
        statuses.push(status("conditional_access", path, 0, modified, now));
    }

    let rules = Arc::new(ComplianceRules { policies, settings });
    let records = devices.devices.into_iter().map(|d| {
        let risk = risks.get(&d.id).copied().unwrap_or(RiskObservation::NONE);
        (d, risk)
    });
    let table = build_table(records, &rules, prev.map(|p| &p.devices), now);
    Ok(Snapshot {
        version: prev.map_or(1, |p| p.version + 1),
        built_at: now,
        published_at: now,
        devices: table,
        compliance: rules,
        access,
        sources: statuses.into(),
    })
}

/// Rebuilds from the files and publishes into `store`; on failure the store keeps its
/// snapshot and records the error in its `health`. Returns the published version.
pub fn rebuild(
    store: &SnapshotStore,
    cfg: &SourcesConfig,
    base_dir: &Path,
    access: &AccessLoader,
    now: UnixMillis,
) -> Result<u64, SourceError> {
    store.rebuild(now, |prev| {
        let ca_path = cfg
            .conditional_access
            .as_ref()
            .map(|p| SourcesConfig::resolve(base_dir, p));
        let policy_set = access(ca_path.as_deref()).map_err(|message| SourceError::Access {
            path: ca_path.clone(),
            message,
        })?;
        load(cfg, base_dir, policy_set, Some(prev), now)
    })
}

/// Every file the sources read (resolved), for watching.
pub fn paths(cfg: &SourcesConfig, base_dir: &Path) -> Vec<PathBuf> {
    [
        Some(&cfg.managed_devices),
        cfg.defender_machines.as_ref(),
        Some(&cfg.compliance_policies),
        cfg.tenant_settings.as_ref(),
        cfg.conditional_access.as_ref(),
        cfg.named_locations.as_ref(),
    ]
    .into_iter()
    .flatten()
    .map(|p| SourcesConfig::resolve(base_dir, p))
    .collect()
}

fn read(path: &Path) -> Result<(String, Option<UnixMillis>), SourceError> {
    let err = |e: std::io::Error| SourceError::Read {
        path: path.to_owned(),
        message: e.to_string(),
    };
    let text = std::fs::read_to_string(path).map_err(err)?;
    let modified = std::fs::metadata(path).ok().and_then(|m| modified_of(&m));
    Ok((text, modified))
}

fn modified_of(m: &std::fs::Metadata) -> Option<UnixMillis> {
    let d = m
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    i64::try_from(d.as_millis()).ok().map(UnixMillis)
}

fn status(
    kind: &'static str,
    path: PathBuf,
    records: usize,
    modified: Option<UnixMillis>,
    now: UnixMillis,
) -> SourceStatus {
    SourceStatus {
        kind,
        path,
        records,
        modified,
        loaded_at: now,
    }
}

/// The standard access loader: parses the conditional-access document and, when configured,
/// the named-locations document. No document means no policies.
pub fn access_loader(cfg: &SourcesConfig, base_dir: &Path) -> Arc<AccessLoader> {
    let locations = cfg
        .named_locations
        .as_ref()
        .map(|p| SourcesConfig::resolve(base_dir, p));
    Arc::new(move |ca_path: Option<&Path>| {
        let Some(ca_path) = ca_path else {
            return Ok(Arc::new(PolicySet::empty()));
        };
        let ca = std::fs::read_to_string(ca_path)
            .map_err(|e| format!("cannot read {}: {e}", ca_path.display()))?;
        let named = match &locations {
            Some(p) => Some(
                std::fs::read_to_string(p)
                    .map_err(|e| format!("cannot read {}: {e}", p.display()))?,
            ),
            None => None,
        };
        PolicySet::parse(&ca, named.as_deref())
            .map(Arc::new)
            .map_err(|e| format!("{}: {e}", ca_path.display()))
    })
}
