//! `portcullis demo`: both stand-ins and the gateway in one process on loopback, from the
//! demo files embedded in the binary (config/demo/).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;

use super::signals::shutdown_requested;
use crate::config::Config;
use crate::standin::{self, App};

const DEMO_CONFIG: &str = include_str!("../../../config/demo/portcullis.toml");

pub async fn run(listen: SocketAddr) -> anyhow::Result<ExitCode> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let sharepoint = standin::spawn(loopback, App::Sharepoint, rx.clone())
        .await
        .context("starting the SharePoint stand-in")?;
    let exchange = standin::spawn(loopback, App::Exchange, rx)
        .await
        .context("starting the Exchange stand-in")?;

    let text = DEMO_CONFIG
        .replace("${SHAREPOINT}", &format!("http://{sharepoint}"))
        .replace("${EXCHANGE}", &format!("http://{exchange}"))
        .replace("${LISTEN}", &listen.to_string());
    let config = Config::parse(&text, &PathBuf::from("demo/portcullis.toml"))
        .map_err(|e| anyhow::anyhow!("the embedded demo config is invalid: {e}"))?;
    let running = crate::proxy::start(&config).await?;
    let gw = running
        .addrs
        .first()
        .map(|(_, a)| *a)
        .context("the demo config has no listener")?;

    println!("Portcullis demo");
    println!("  gateway            http://{gw}");
    println!("  SharePoint stand-in http://{sharepoint}");
    println!("  Exchange stand-in  http://{exchange}");
    println!();
    println!("Try:");
    println!("  curl -s -H 'Host: sharepoint.localhost' http://{gw}/_api/web/lists");
    println!("  curl -s -H 'Host: exchange.localhost' http://{gw}/api/v2.0/me/messages");
    println!("  curl -s -H 'Host: sharepoint.localhost' -H 'Accept: text/html' http://{gw}/sites/contoso/");
    println!();
    println!("Ctrl-C stops everything.");

    shutdown_requested().await;
    let _ = tx.send(true);
    running.shutdown().await;
    Ok(ExitCode::SUCCESS)
}
