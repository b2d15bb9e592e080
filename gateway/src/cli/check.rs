//! `portcullis check`: validate a config and everything it points at (TLS files, identity
//! keys, sources, policies), print a summary, lint the policy set. Exit 2 on errors.

use std::collections::HashSet;
use std::path::Path;
use std::process::ExitCode;

use crate::access::lint::Severity;
use crate::app::first_snapshot;
use crate::config::Config;
use crate::identity::Authenticator;
use crate::ids::{AppId, GroupId};
use crate::model::ComplianceState;
use crate::proxy::tls::server_config;

pub async fn run(path: &Path) -> anyhow::Result<ExitCode> {
    let config = match Config::load(path) {
        Ok(c) => c,
        Err(errors) => {
            println!("{errors}");
            println!("{}: {} error(s)", path.display(), errors.0.len());
            return Ok(ExitCode::from(2));
        }
    };
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    for l in &config.listeners {
        if let Some(t) = &l.tls {
            if let Err(e) = server_config(&config.resolve(&t.cert), &config.resolve(&t.key), None) {
                errors.push(format!("{}: listener `{}`: {e}", path.display(), l.name));
            }
        }
    }
    println!(
        "{}: {} listener(s), {} route(s)",
        path.display(),
        config.listeners.len(),
        config.routes.len()
    );
    for r in &config.routes {
        println!(
            "  route {:<12} host={:<24} prefix={:<10} -> {} (app {})",
            r.name,
            r.host.as_deref().unwrap_or("*"),
            r.path_prefix,
            r.upstream.url,
            r.app_id
        );
    }
    if config.identity.jwks.is_none() {
        warnings.push(
            "warning: [identity] has no jwks: no token is accepted, so routes covered by a \
             policy deny every request (401)"
                .to_string(),
        );
    }
    match Authenticator::build(&config.identity, &config.base_dir).await {
        Ok(_) => println!("identity: keys and directory loaded"),
        Err(e) => errors.push(format!("{}: [identity]: {e}", path.display())),
    }
    match first_snapshot(&config) {
        Err(e) => errors.push(format!("{}: {e}", path.display())),
        Ok(store) => {
            let snap = store.load();
            let counts = snap.devices.count_by_state();
            let by_state: Vec<String> = ComplianceState::ALL
                .iter()
                .zip(counts)
                .map(|(s, n)| format!("{} {n}", s.as_str()))
                .collect();
            println!(
                "sources: {} device(s) ({}), {} conditional-access polic{}",
                snap.devices.len(),
                by_state.join(", "),
                snap.access.len(),
                if snap.access.len() == 1 { "y" } else { "ies" }
            );
            let settings = snap.compliance.settings;
            let from_file = config
                .sources
                .as_ref()
                .is_some_and(|s| s.tenant_settings.is_some());
            if settings.secure_by_default {
                warnings.push(format!(
                    "note: secureByDefault is true{}: a device with no compliance policy assigned \
                     is noncompliant (no_policy_assigned). Intune's default is false.",
                    if from_file {
                        ""
                    } else {
                        " (Portcullis's default; no tenant_settings file)"
                    }
                ));
            }
            for (p, w) in snap.access.warnings() {
                warnings.push(format!("warning: policy {}: {w}", p.label()));
            }
            let known = known_groups(&config, &snap);
            let apps: Vec<AppId> = config.routes.iter().map(|r| r.app_id).collect();
            let unknown_is_known = known.is_empty();
            for lint in snap
                .access
                .lint(&|g| unknown_is_known || known.contains(&g), &apps)
            {
                match lint.severity {
                    Severity::Error => errors.push(lint.to_string()),
                    _ => warnings.push(lint.to_string()),
                }
            }
        }
    }
    for w in &warnings {
        println!("{w}");
    }
    for e in &errors {
        println!("{e}");
    }
    if errors.is_empty() {
        println!("ok ({} warning(s))", warnings.len());
        Ok(ExitCode::SUCCESS)
    } else {
        println!("{} error(s)", errors.len());
        Ok(ExitCode::from(2))
    }
}

/// The group ids the data knows: devices' `memberOf` and the directory file. Empty when
/// neither says anything (then no group is reported unknown).
fn known_groups(config: &Config, snap: &crate::snapshot::Snapshot) -> HashSet<GroupId> {
    let mut known: HashSet<GroupId> = snap
        .devices
        .iter()
        .flat_map(|e| e.groups().iter().copied())
        .collect();
    if let Some(dir) = &config.identity.directory_groups {
        if let Ok(d) = crate::identity::Directory::load(&config.resolve(Path::new(dir))) {
            known.extend(d.all_groups());
        }
    }
    known
}
