//! Pushed signals under a real crash: `portcullis serve` runs as a child process on the demo
//! data with a signal journal; batches are pushed over its admin API until some are
//! acknowledged, then the process is killed with SIGKILL while pushes are still in flight.
//! Every acknowledged signal must be in the journal, and a restarted gateway must enforce them.

mod common;

use std::collections::HashSet;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portcullis::signals::journal::Journal;
use serde_json::Value;

const TOKEN: &str = "crash-test-admin-token";
/// Windows, Defender Medium, under "Windows: risk at most medium" in the demo data.
const MEDIUM_PC: &str = "11111111-0000-0000-0000-00000000000b";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn write_demo(dir: &Path, admin: u16) -> std::path::PathBuf {
    common::write_demo(
        dir,
        "http://127.0.0.1:9",
        "http://127.0.0.1:9",
        &format!("127.0.0.1:{admin}"),
        TOKEN,
        "",
    )
}

struct Gateway(Child);

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn serve(config: &Path, admin: u16) -> Gateway {
    let child = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["serve", "--config", config.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let gateway = Gateway(child);
    let start = Instant::now();
    let client = reqwest::Client::new();
    loop {
        let up = client
            .get(format!("http://127.0.0.1:{admin}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200);
        if up {
            return gateway;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "gateway did not become ready"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The device of signal `n` of a batch: unique per signal, so compaction keeps every one.
fn device(n: u64) -> String {
    format!("22222222-0000-4000-8000-{n:012x}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_signal_survives_kill_9() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let admin = free_port();
    let config = write_demo(dir.path(), admin);
    let mut gateway = serve(&config, admin).await;
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{admin}/admin/v1/signals");

    // The demo device goes to high first, acknowledged before the stream starts.
    let first = client
        .post(&url)
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({ "deviceId": MEDIUM_PC, "riskLevel": "high" }))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 200);

    // Four pushers, batches of 5 signals each, until 40 batches are acknowledged.
    let acked: Arc<Mutex<HashSet<String>>> = Arc::default();
    let batches = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut pushers = Vec::new();
    for _ in 0..4 {
        let (client, url, acked, batches) =
            (client.clone(), url.clone(), acked.clone(), batches.clone());
        pushers.push(tokio::spawn(async move {
            loop {
                let b = batches.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let ids: Vec<String> = (0..5).map(|k| device(b * 5 + k + 1)).collect();
                let body: String = ids
                    .iter()
                    .map(|d| format!("{{\"deviceId\":\"{d}\",\"riskLevel\":\"high\"}}\n"))
                    .collect();
                let sent = client
                    .post(&url)
                    .bearer_auth(TOKEN)
                    .header("content-type", "application/x-ndjson")
                    .body(body)
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status() == 200 => acked.lock().unwrap().extend(ids),
                    _ => return,
                }
            }
        }));
    }
    let start = Instant::now();
    while acked.lock().unwrap().len() < 200 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "pushes were not acknowledged"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    gateway.0.kill().unwrap(); // SIGKILL, with pushes in flight
    gateway.0.wait().unwrap();
    for p in pushers {
        let _ = p.await;
    }
    let acked = acked.lock().unwrap().clone();

    let (_, replay) = Journal::open(dir.path().join("signals.journal")).unwrap();
    let journaled: HashSet<String> = replay
        .signals
        .iter()
        .map(|s| s.device.to_string())
        .collect();
    let lost: Vec<&String> = acked.difference(&journaled).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged signals lost: {lost:?}",
        lost.len()
    );
    assert!(journaled.contains(MEDIUM_PC));

    // Restarted on the same directory, the gateway enforces what was acknowledged.
    let _again = serve(&config, admin).await;
    let device: Value = client
        .get(format!(
            "http://127.0.0.1:{admin}/admin/v1/devices/{MEDIUM_PC}"
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(device["risk"]["level"], "high", "{device}");
    assert_eq!(device["state"], "noncompliant", "{device}");
    assert!(acked.len() >= 200, "{}", acked.len());
}
