//! Signal accepted -> request denied, end to end over real sockets, at 1,000,000 devices with
//! 1,000 signals/s pushed in the background, and the gateway's request throughput with and
//! without that signal load. Everything runs in this process on 127.0.0.1: a stand-in app,
//! the gateway (admin API with an on-disk journal, group-committed), a background pusher, a
//! closed-loop request load and the probes. Bounded: about 40 s.
//!
//! A probe takes a compliant device whose token is already cached, pushes one signal raising
//! its risk to high, and from the moment the 200 arrives sends the device's request until one
//! is refused: that time is the latency (the first request after the 200 should already be
//! refused, since the snapshot is published before the answer).
//!
//! `cargo run --release -p portcullis-bench --example signal_latency`

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use portcullis::access::PolicySet;
use portcullis::admin::{self, AdminState, JournalWriter, SignalJournal};
use portcullis::clock::UnixMillis;
use portcullis::compliance::RiskObservation;
use portcullis::config::Config;
use portcullis::decision_log::DecisionLog;
use portcullis::identity::issuer::{DemoIssuer, TokenRequest};
use portcullis::identity::Authenticator;
use portcullis::ids::{DeviceId, UserId};
use portcullis::metrics::Metrics;
use portcullis::model::{ComplianceState, Platform};
use portcullis::snapshot::{build_table, Snapshot, SnapshotStore};
use portcullis::standin::{self, App};
use portcullis_bench::{device_id, fleet, rules};
use tokio::net::TcpListener;

const DEVICES: u64 = 1_000_000;
/// The last signal time handed out: signals are stamped with the wall clock, strictly
/// increasing, so every signal is the newest observation of its device.
static SIGNAL_CLOCK: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

fn observed_at() -> String {
    let now = UnixMillis::now().0;
    let prev = SIGNAL_CLOCK
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |last| {
            Some(now.max(last + 1))
        })
        .unwrap_or(now);
    UnixMillis(now.max(prev + 1)).to_rfc3339()
}
const SIGNALS_PER_SECOND: u64 = 1_000;
/// Signals per push request in the background load.
const PER_PUSH: u64 = 10;
const PROBES: usize = 300;
/// Closed-loop request load: connections and the length of each throughput phase.
const CLIENTS: usize = 16;
const PHASE: Duration = Duration::from_secs(8);
const ADMIN_TOKEN: &str = "bench-admin-token";
const SHAREPOINT: &str = "00000003-0000-0ff1-ce00-000000000000";

const CA_POLICY: &str = r#"[{"id": "c0a1e001-0000-4000-8000-000000000001",
  "displayName": "Compliant device for SharePoint", "state": "enabled",
  "conditions": {"users": {"includeUsers": ["All"]},
                 "applications": {"includeApplications": ["00000003-0000-0ff1-ce00-000000000000"]},
                 "clientAppTypes": ["all"]},
  "grantControls": {"operator": "OR", "builtInControls": ["compliantDevice"]}}]"#;

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("temp dir");
    let demo = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../config/demo"));
    for f in ["jwks.json", "issuer-key.pem"] {
        std::fs::copy(demo.join(f), dir.path().join(f)).expect("copy demo keys");
    }
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    let upstream = standin::spawn(any, App::Sharepoint, stop.clone())
        .await
        .expect("stand-in");
    let text = format!(
        r#"[[listener]]
name = "public"
addr = "127.0.0.1:0"
[[route]]
name = "sharepoint"
upstream = "http://{upstream}"
app_id = "{SHAREPOINT}"
[identity]
jwks = "jwks.json"
issuers = ["https://login.portcullis.demo/contoso/v2.0"]
audiences = ["api://portcullis-demo"]
[identity.demo_issuer]
key = "issuer-key.pem"
demo = true
"#
    );
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, text).expect("write config");
    let config = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));

    let started = Instant::now();
    let rules = Arc::new(rules());
    let now = UnixMillis::now();
    let mut snap = Snapshot::empty(
        Arc::new(PolicySet::parse(CA_POLICY, None).expect("policy")),
        now,
    );
    // The fleet's risk observations re-dated an hour before the wall clock, so that pushed
    // signals (stamped now) are newer.
    let an_hour_ago = UnixMillis(now.0 - 3_600_000);
    let devices = fleet(DEVICES).map(|(d, r)| (d, RiskObservation::new(r.risk, an_hour_ago)));
    snap.devices = build_table(devices, &rules, None, now);
    snap.compliance = rules;
    let store = Arc::new(SnapshotStore::new(snap));
    println!(
        "snapshot of {DEVICES} devices built in {:?}",
        started.elapsed()
    );

    // Compliant devices: probes and the load's clients. Not Windows: the fleet's Windows
    // policy has a 24 h grace period, so a Windows device turning high risk stays admitted.
    let compliant: Vec<DeviceId> = (0..DEVICES)
        .map(device_id)
        .filter(|id| {
            store.load().devices.get(*id).is_some_and(|e| {
                e.state() == ComplianceState::Compliant && e.platform() != Platform::Windows
            })
        })
        .take(PROBES + CLIENTS)
        .collect();
    let issuer = DemoIssuer::from_config(&config.identity, &config.base_dir).expect("issuer");
    let token = |device: DeviceId| {
        issuer
            .mint(
                &TokenRequest {
                    user: UserId::from_u128(0xaaaa_0000_0000_0000_0000_0000_0000_0001)
                        .expect("non-zero"),
                    device: Some(device),
                    groups: vec![],
                    mfa: false,
                    expires_in: Duration::from_secs(3600),
                    audience: config.identity.audiences[0].clone(),
                    issuer: config.identity.issuers[0].clone(),
                    tenant: None,
                },
                UnixMillis::now(),
            )
            .expect("mint")
    };
    let tokens: Vec<(DeviceId, String)> = compliant.iter().map(|d| (*d, token(*d))).collect();

    let metrics = Arc::new(Metrics::new().expect("metrics"));
    let auth = Authenticator::build(&config.identity, &config.base_dir)
        .await
        .expect("identity");
    let log = Arc::new(DecisionLog::disabled(1024));
    let (journal, _) = SignalJournal::open(&dir.path().join("signals.journal")).expect("journal");
    let admin_state = Arc::new(AdminState {
        metrics: metrics.clone(),
        ready: AtomicBool::new(true),
        token: Some(ADMIN_TOKEN.into()),
        store: store.clone(),
        log: log.clone(),
        routes: config.routes.clone(),
        journal: Some(JournalWriter::start(journal).expect("journal writer")),
        sources: None,
        pulls: std::sync::Mutex::new(Vec::new()),
    });
    let admin_listener = TcpListener::bind(any).await.expect("admin bind");
    let admin_addr = admin_listener.local_addr().expect("admin addr");
    tokio::spawn(admin::serve(admin_listener, admin_state, stop.clone()));
    let gateway = portcullis::proxy::run::gateway(&config, metrics, store.clone(), auth, log)
        .expect("gateway");
    let running = portcullis::proxy::start(&config, gateway)
        .await
        .expect("proxy");
    let gw = running.addr("public").expect("listener");

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .expect("client");
    let get = |token: &str| {
        client
            .get(format!("http://{gw}/_api/web/lists"))
            .bearer_auth(token)
            .header("accept", "application/json")
            .send()
    };
    // Warm every token into the cache (and check they are all let through).
    for (_, t) in &tokens {
        let status = get(t).await.expect("warm-up request").status();
        assert_eq!(status, 200, "a compliant device was refused during warm-up");
    }

    let quiet = throughput(&client, gw, &tokens[PROBES..]).await;
    let pushing = Arc::new(AtomicBool::new(true));
    let pushed = Arc::new(AtomicU64::new(0));
    let pusher = tokio::spawn(push_background(
        client.clone(),
        admin_addr,
        pushing.clone(),
        pushed.clone(),
    ));
    let busy = throughput(&client, gw, &tokens[PROBES..]).await;

    let mut latencies = Vec::with_capacity(PROBES);
    let mut first_request_denied = 0usize;
    for (device, token) in &tokens[..PROBES] {
        let body = serde_json::json!({ "deviceId": device.to_string(), "riskLevel": "high",
            "observedAt": observed_at() });
        let resp = client
            .post(format!("http://{admin_addr}/admin/v1/signals"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&body)
            .send()
            .await
            .expect("push");
        assert_eq!(resp.status(), 200, "push refused");
        let accepted = Instant::now();
        let mut tries = 0;
        loop {
            tries += 1;
            let status = get(token).await.expect("probe request").status();
            if status == 403 {
                break;
            }
            assert!(accepted.elapsed() < Duration::from_secs(5), "never refused");
        }
        latencies.push(accepted.elapsed());
        if tries == 1 {
            first_request_denied += 1;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    pushing.store(false, Ordering::Release);
    let pushed_total = pusher.await.expect("pusher");
    latencies.sort_unstable();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!("devices: {DEVICES}; background signals pushed: {pushed_total} (target {SIGNALS_PER_SECOND}/s in batches of {PER_PUSH})");
    println!(
        "signal accepted -> request denied: p50 {:?}  p99 {:?}  max {:?}  ({} probes, first request after the 200 refused in {first_request_denied})",
        pct(0.50),
        pct(0.99),
        latencies[latencies.len() - 1],
        latencies.len()
    );
    println!(
        "gateway throughput, {CLIENTS} connections: {quiet:.0} req/s without signals, {busy:.0} req/s with {SIGNALS_PER_SECOND} signals/s ({:+.1}%)",
        (busy / quiet - 1.0) * 100.0
    );
    running.shutdown().await;
    let _ = stop_tx.send(true);
}

/// Closed-loop load for `PHASE`: each client sends its device's request back to back.
async fn throughput(
    client: &reqwest::Client,
    gw: SocketAddr,
    tokens: &[(DeviceId, String)],
) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + PHASE;
    let mut tasks = Vec::new();
    for (_, token) in tokens.iter().take(CLIENTS) {
        let (client, token, done) = (client.clone(), token.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < until {
                let r = client
                    .get(format!("http://{gw}/_api/web/lists"))
                    .bearer_auth(&token)
                    .send()
                    .await;
                if let Ok(r) = r {
                    let ok = r.status() == 200;
                    let _ = r.bytes().await;
                    if ok {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    done.load(Ordering::Relaxed) as f64 / PHASE.as_secs_f64()
}

/// Pushes `SIGNALS_PER_SECOND` signals a second for devices of the fleet (not the probes'
/// devices: they are taken from the far end of the fleet), alternating low and medium.
async fn push_background(
    client: reqwest::Client,
    admin: SocketAddr,
    running: Arc<AtomicBool>,
    pushed: Arc<AtomicU64>,
) -> u64 {
    let every = Duration::from_micros(1_000_000 * PER_PUSH / SIGNALS_PER_SECOND);
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut n: u64 = 0;
    while running.load(Ordering::Acquire) {
        tick.tick().await;
        let mut body = String::new();
        for _ in 0..PER_PUSH {
            let at = observed_at();
            n += 1;
            let device = device_id(DEVICES - 1 - (n % (DEVICES / 2)));
            let level = if n.is_multiple_of(2) { "low" } else { "medium" };
            body.push_str(&format!(
                "{{\"deviceId\":\"{device}\",\"riskLevel\":\"{level}\",\"observedAt\":\"{at}\"}}\n"
            ));
        }
        let (client, pushed) = (client.clone(), pushed.clone());
        tokio::spawn(async move {
            let ok = client
                .post(format!("http://{admin}/admin/v1/signals"))
                .bearer_auth(ADMIN_TOKEN)
                .header("content-type", "application/x-ndjson")
                .body(body)
                .send()
                .await
                .is_ok_and(|r| r.status() == 200);
            if ok {
                pushed.fetch_add(PER_PUSH, Ordering::Relaxed);
            }
        });
    }
    pushed.load(Ordering::Relaxed)
}
