//! `portcullis check`: validate a config and everything it points at.

use std::path::Path;
use std::process::ExitCode;

use crate::config::Config;
use crate::proxy::tls::server_config;

pub fn run(path: &Path) -> anyhow::Result<ExitCode> {
    let config = match Config::load(path) {
        Ok(c) => c,
        Err(errors) => {
            println!("{errors}");
            println!("{}: {} error(s)", path.display(), errors.0.len());
            return Ok(ExitCode::from(2));
        }
    };
    let mut errors = Vec::new();
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
    for e in &errors {
        println!("{e}");
    }
    if errors.is_empty() {
        println!("ok");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("{} error(s)", errors.len());
        Ok(ExitCode::from(2))
    }
}
