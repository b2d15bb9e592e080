//! `portcullis serve` and `portcullis standin`.

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;

use super::signals::shutdown_requested;
use crate::config::Config;
use crate::standin::{self, App};

pub async fn run(path: &Path) -> anyhow::Result<ExitCode> {
    let config = match Config::load(path) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("{errors}");
            eprintln!("portcullis: the config has errors; nothing was started");
            return Ok(ExitCode::from(2));
        }
    };
    let running = crate::proxy::start(&config).await?;
    shutdown_requested().await;
    tracing::info!(grace = ?config.limits.shutdown_grace, "shutting down: no new connections, draining in-flight requests");
    running.shutdown().await;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

pub async fn standin(app: App, listen: SocketAddr) -> anyhow::Result<ExitCode> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    let addr = standin::spawn(listen, app, rx)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    tracing::info!(app = app.title(), address = %format!("http://{addr}"), "stand-in listening");
    println!("{} listening on http://{addr}", app.title());
    shutdown_requested().await;
    let _ = tx.send(true);
    Ok(ExitCode::SUCCESS)
}
