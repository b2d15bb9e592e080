//! Enforcement end to end over real sockets, on the demo's data: the seed scenario (a medium-risk
//! device under a medium policy reaches SharePoint; its risk raised to high in the Defender file
//! is refused on the next request without a restart; lowered, allowed again), risk signals
//! pushed through the admin API (journaled and replayed after a restart), HTML for browsers and
//! problem+json for API clients, spoofed identity headers never reaching the app, and the admin
//! explain endpoints.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use portcullis::app::App as Running;
use portcullis::clock::UnixMillis;
use portcullis::config::Config;
use portcullis::identity::issuer::{DemoIssuer, TokenRequest};
use portcullis::ids::{DeviceId, GroupId, UserId};
use serde_json::Value;

const ALICE: &str = "aaaaaaaa-0000-0000-0000-000000000001";
const ALL_STAFF: &str = "bbbbbbbb-0000-0000-0000-000000000001";
/// Windows, managed, Defender risk Medium, under "Windows: risk at most medium".
const MEDIUM_PC: &str = "11111111-0000-0000-0000-00000000000b";
const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

/// The demo's data and config in `dir`, pointing at the stand-ins.
fn write_demo(dir: &Path, apps: &Apps) -> Config {
    write_demo_with(dir, apps, "")
}

/// Same, with `extra` TOML appended to the config.
fn write_demo_with(dir: &Path, apps: &Apps, extra: &str) -> Config {
    let path = common::write_demo(
        dir,
        &format!("http://{}", apps.sharepoint),
        &format!("http://{}", apps.exchange),
        "127.0.0.1:0",
        ADMIN_TOKEN,
        extra,
    );
    Config::load(&path).unwrap_or_else(|e| panic!("demo config invalid: {e}"))
}

struct Demo {
    running: Running,
    gateway: SocketAddr,
    admin: SocketAddr,
    token: String,
}

async fn start(config: &Config) -> Demo {
    let running = portcullis::app::start(config).await.unwrap();
    let gateway = running.addr("public").unwrap();
    let admin = running.admin_addr.unwrap();
    let issuer = DemoIssuer::from_config(&config.identity, &config.base_dir).unwrap();
    let token = issuer
        .mint(
            &TokenRequest {
                user: UserId::parse(ALICE).unwrap(),
                device: Some(DeviceId::parse(MEDIUM_PC).unwrap()),
                groups: vec![GroupId::parse(ALL_STAFF).unwrap()],
                mfa: false,
                expires_in: Duration::from_secs(600),
                audience: config.identity.audiences[0].clone(),
                issuer: config.identity.issuers[0].clone(),
                tenant: None,
            },
            UnixMillis::now(),
        )
        .unwrap();
    Demo {
        running,
        gateway,
        admin,
        token,
    }
}

impl Demo {
    /// GET `path` on SharePoint with the device's token as an API client.
    async fn get(&self, path: &str) -> reqwest::Response {
        client()
            .get(format!("http://{}{path}", self.gateway))
            .header("host", "sharepoint.localhost")
            .header("accept", "application/json")
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
    }

    fn admin(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        client()
            .request(method, format!("http://{}/admin/v1/{path}", self.admin))
            .bearer_auth(ADMIN_TOKEN)
    }
}

/// Writes the Defender export with `MEDIUM_PC`'s risk set to `score`, by atomic rename.
fn set_defender_risk(dir: &Path, score: &str) {
    let text = std::fs::read_to_string(dir.join("defender-machines.json")).unwrap();
    let mut doc: Value = serde_json::from_str(&text).unwrap();
    let list = doc.get_mut("value").and_then(Value::as_array_mut).unwrap();
    let machine = list
        .iter_mut()
        .find(|m| m["aadDeviceId"] == MEDIUM_PC)
        .unwrap();
    machine["riskScore"] = Value::from(score);
    machine["lastSeen"] = Value::from(UnixMillis::now().to_rfc3339());
    let tmp = dir.join(".defender-machines.json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    std::fs::rename(&tmp, dir.join("defender-machines.json")).unwrap();
}

/// Requests until the status is `want` (the file watcher debounces), bounded at 10 s.
async fn until_status(demo: &Demo, want: u16) -> reqwest::Response {
    let start = Instant::now();
    loop {
        let resp = demo.get("/_api/web/lists").await;
        if resp.status().as_u16() == want {
            return resp;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "still {} after 10 s, wanted {want}",
            resp.status()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn seed_scenario_risk_change_in_the_data_file_is_enforced_without_restart() {
    let dir = tempfile::tempdir().unwrap();
    let apps = start_apps().await;
    let demo = start(&write_demo(dir.path(), &apps)).await;

    let allowed = demo.get("/_api/web/lists").await;
    assert_eq!(allowed.status(), 200);
    let body: Value = allowed.json().await.unwrap();
    let received = &body["received"];
    assert_eq!(received["x-portcullis-user-id"], ALICE, "{received}");
    assert_eq!(received["x-portcullis-device-id"], MEDIUM_PC);
    assert_eq!(received["x-portcullis-compliance-state"], "compliant");
    let metrics = client()
        .get(format!("http://{}/metrics", demo.admin))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("portcullis_policy_results_total{policy=\"c0a1e001-0000-4000-8000-000000000001\",result=\"success\"} 1"),
        "{metrics}"
    );

    set_defender_risk(dir.path(), "High");
    let denied = until_status(&demo, 403).await;
    assert_eq!(denied.headers()["content-type"], "application/problem+json");
    let problem: Value = denied.json().await.unwrap();
    assert_eq!(problem["reason"], "risk_above_threshold", "{problem}");
    assert!(
        problem.to_string().find("c0a1e001").is_none(),
        "no policy internals: {problem}"
    );

    set_defender_risk(dir.path(), "Medium");
    until_status(&demo, 200).await;
    demo.running.shutdown().await;
}

#[tokio::test]
async fn browsers_get_html_and_api_clients_json() {
    let dir = tempfile::tempdir().unwrap();
    let apps = start_apps().await;
    let demo = start(&write_demo(dir.path(), &apps)).await;
    // No token: 401 with a challenge, in each format.
    let html = client()
        .get(format!("http://{}/sites/contoso/", demo.gateway))
        .header("host", "sharepoint.localhost")
        .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
        .header(
            "user-agent",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Edge/120",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(html.status(), 401);
    assert!(html.headers().contains_key("www-authenticate"));
    assert!(html.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let page = html.text().await.unwrap();
    assert!(
        page.contains("token_missing") && page.contains("<html"),
        "{page}"
    );

    let api = client()
        .get(format!("http://{}/_api/web/lists", demo.gateway))
        .header("host", "sharepoint.localhost")
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 401);
    assert_eq!(api.headers()["content-type"], "application/problem+json");
    let problem: Value = api.json().await.unwrap();
    assert_eq!(problem["reason"], "token_missing");
    assert!(problem["correlationId"]
        .as_str()
        .is_some_and(|s| !s.is_empty()));
    demo.running.shutdown().await;
}

#[tokio::test]
async fn spoofed_identity_headers_never_reach_the_app() {
    let dir = tempfile::tempdir().unwrap();
    let apps = start_apps().await;
    let demo = start(&write_demo(dir.path(), &apps)).await;
    let resp = client()
        .get(format!("http://{}/headers", demo.gateway))
        .header("host", "sharepoint.localhost")
        .bearer_auth(&demo.token)
        .header("x-portcullis-user-id", "evil")
        .header(
            "X-Portcullis-Device-Id",
            "11111111-0000-0000-0000-000000000002",
        )
        .header("x-portcullis-compliance-state", "compliant")
        .header("x-portcullis-anything", "spoofed")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let seen: Value = resp.json().await.unwrap();
    assert_eq!(seen["x-portcullis-user-id"], ALICE, "{seen}");
    assert_eq!(seen["x-portcullis-device-id"], MEDIUM_PC);
    assert!(seen.get("x-portcullis-anything").is_none(), "{seen}");
    assert!(!seen.to_string().contains("evil") && !seen.to_string().contains("spoofed"));

    // A spoofed header on a denied request does not make it through either.
    let denied = client()
        .get(format!("http://{}/headers", demo.gateway))
        .header("host", "sharepoint.localhost")
        .header("x-portcullis-user-id", ALICE)
        .header("x-portcullis-compliance-state", "compliant")
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 401);
    demo.running.shutdown().await;
}

#[tokio::test]
async fn pushed_signals_change_the_next_decision_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let apps = start_apps().await;
    let config = write_demo(dir.path(), &apps);
    let demo = start(&config).await;
    assert_eq!(demo.get("/_api/web/lists").await.status(), 200);

    // Without the admin token: refused.
    let anon = client()
        .get(format!("http://{}/admin/v1/snapshot", demo.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(anon.status(), 401);

    // One good line, one bad: the good one is applied, the bad one named by line.
    let now = UnixMillis::now().to_rfc3339();
    let ndjson = format!(
        "{{\"deviceId\":\"{MEDIUM_PC}\",\"riskLevel\":\"high\",\"observedAt\":\"{now}\"}}\n{{\"deviceId\":\"nope\",\"riskLevel\":\"high\"}}\n"
    );
    let pushed = demo
        .admin(reqwest::Method::POST, "signals")
        .header("content-type", "application/x-ndjson")
        .body(ndjson)
        .send()
        .await
        .unwrap();
    assert_eq!(pushed.status(), 200);
    let outcome: Value = pushed.json().await.unwrap();
    assert_eq!(outcome["accepted"], 1, "{outcome}");
    assert_eq!(outcome["applied"], 1, "{outcome}");
    assert_eq!(outcome["rejected"][0]["line"], 2, "{outcome}");

    // The very next request is refused: no polling.
    let denied = demo.get("/_api/web/lists").await;
    assert_eq!(denied.status(), 403);
    let problem: Value = denied.json().await.unwrap();
    assert_eq!(problem["reason"], "risk_above_threshold");

    // The admin side explains the device and the denial.
    let device: Value = demo
        .admin(reqwest::Method::GET, &format!("devices/{MEDIUM_PC}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(device["state"], "noncompliant", "{device}");
    assert_eq!(device["risk"]["level"], "high");
    assert_eq!(device["reasons"][0], "risk_above_threshold");
    let id = problem["correlationId"].as_str().unwrap();
    let decision = demo
        .admin(reqwest::Method::GET, &format!("decisions/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(decision.status(), 200);
    let decision: Value = decision.json().await.unwrap();
    assert!(
        decision.to_string().contains("risk_above_threshold"),
        "{decision}"
    );

    // An older observation does not overwrite the newer one.
    let older = demo
        .admin(reqwest::Method::POST, "signals")
        .json(&serde_json::json!([{ "deviceId": MEDIUM_PC, "riskLevel": "low", "observedAt": "2026-01-01T00:00:00Z" }]))
        .send()
        .await
        .unwrap();
    let older: Value = older.json().await.unwrap();
    assert_eq!(older["ignoredOlder"], 1, "{older}");
    assert_eq!(demo.get("/_api/web/lists").await.status(), 403);

    // What-if agrees with the gateway.
    let whatif: Value = demo
        .admin(reqwest::Method::POST, "whatif")
        .json(&serde_json::json!({ "user": ALICE, "groups": [ALL_STAFF], "device": MEDIUM_PC, "app": "sharepoint.localhost" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(whatif["verdict"], "deny", "{whatif}");
    assert_eq!(whatif["reasonCode"], "risk_above_threshold");

    // Restart on the same directory: the journal brings the signal back.
    demo.running.shutdown().await;
    let again = start(&config).await;
    let denied = again.get("/_api/web/lists").await;
    assert_eq!(
        denied.status(),
        403,
        "the journaled signal was lost on restart"
    );
    let status: Value = again
        .admin(reqwest::Method::GET, "snapshot")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["ready"], true, "{status}");
    assert!(status["devices"].as_u64().unwrap() >= 12);
    again.running.shutdown().await;
}

/// Pushes one risk signal for `MEDIUM_PC` through the admin API.
async fn push_risk(demo: &Demo, level: &str) {
    let resp = demo
        .admin(reqwest::Method::POST, "signals")
        .json(&serde_json::json!({ "deviceId": MEDIUM_PC, "riskLevel": level, "observedAt": UnixMillis::now().to_rfc3339() }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn a_long_download_is_cut_when_its_device_turns_high_risk() {
    let dir = tempfile::tempdir().unwrap();
    let apps = start_apps().await;
    let demo = start(&write_demo(dir.path(), &apps)).await;
    // 64 MiB paced at 20 ms a chunk: minutes unless cut.
    let mut download = demo.get("/download?bytes=67108864&pace_ms=20").await;
    assert_eq!(download.status(), 200);
    let mut received = 0usize;
    for _ in 0..3 {
        received += download.chunk().await.unwrap().unwrap().len();
    }
    push_risk(&demo, "high").await;
    let signalled = Instant::now();
    let ended = loop {
        match tokio::time::timeout(Duration::from_secs(5), download.chunk()).await {
            Err(_) => panic!("the download was not cut within 5 s of the signal"),
            Ok(Ok(Some(chunk))) => received += chunk.len(),
            Ok(Ok(None)) => panic!("the download completed instead of being cut"),
            Ok(Err(_cut)) => break signalled.elapsed(),
        }
    };
    assert!(received < 64 << 20, "received everything: {received}");
    eprintln!("cut {ended:?} after the signal was accepted");

    // A download that was fine stays fine when an unrelated device changes.
    push_risk(&demo, "medium").await;
    let mut other = demo.get("/download?bytes=1048576").await;
    let mut total = 0;
    while let Some(chunk) = other.chunk().await.unwrap() {
        total += chunk.len();
    }
    assert_eq!(total, 1 << 20);
    demo.running.shutdown().await;
}

#[tokio::test]
async fn stale_sources_fail_closed_on_schedule_and_recover_when_heard_from() {
    let dir = tempfile::tempdir().unwrap();
    let apps = start_apps().await;
    let config = write_demo_with(
        dir.path(),
        &apps,
        "\n[sources.staleness]\ndefender_machines = \"1s\"\nserve_stale_for = \"1s\"\ncheck_every = \"50ms\"\n",
    );
    // Fresh: the Defender file was just written.
    set_defender_risk(dir.path(), "Medium");
    let demo = start(&config).await;
    assert_eq!(demo.get("/_api/web/lists").await.status(), 200);
    let ready = |demo: &Demo| {
        let url = format!("http://{}/readyz", demo.admin);
        async move { client().get(url).send().await.unwrap() }
    };
    assert_eq!(ready(&demo).await.status(), 200);

    // Silent past 1 s + 1 s of grace: refused with snapshot_stale, not ready.
    let denied = until_status(&demo, 403).await;
    let problem: Value = denied.json().await.unwrap();
    assert_eq!(problem["reason"], "snapshot_stale", "{problem}");
    let not_ready = ready(&demo).await;
    assert_eq!(not_ready.status(), 503);
    let why = not_ready.text().await.unwrap();
    assert!(
        why.contains("snapshot_stale") && why.contains("defender_machines"),
        "{why}"
    );

    // A pushed signal is hearing from the risk feed: serving again.
    push_risk(&demo, "medium").await;
    until_status(&demo, 200).await;
    assert_eq!(ready(&demo).await.status(), 200);
    demo.running.shutdown().await;
}

/// A Defender-style `machines` endpoint serving whatever `body` holds.
async fn machines_endpoint(body: std::sync::Arc<std::sync::Mutex<String>>) -> SocketAddr {
    use hyper::service::service_fn;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let body = body.clone();
            tokio::spawn(async move {
                let service = service_fn(move |_req| {
                    let text = body.lock().unwrap().clone();
                    async move {
                        Ok::<_, std::convert::Infallible>(
                            http::Response::builder()
                                .header("content-type", "application/json")
                                .body(http_body_util::Full::new(bytes::Bytes::from(text)))
                                .unwrap(),
                        )
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

fn machines_page(score: &str) -> String {
    serde_json::json!({ "value": [{
        "aadDeviceId": MEDIUM_PC, "riskScore": score, "onboardingStatus": "Onboarded",
        "lastSeen": UnixMillis::now().to_rfc3339()
    }]})
    .to_string()
}

#[tokio::test]
async fn a_pulled_defender_feed_drives_decisions_and_a_bad_pull_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let apps = start_apps().await;
    let body = std::sync::Arc::new(std::sync::Mutex::new(machines_page("High")));
    let endpoint = machines_endpoint(body.clone()).await;
    let config = write_demo_with(
        dir.path(),
        &apps,
        &format!("\n[sources.pull.defender_machines]\nurl = \"http://{endpoint}/api/machines\"\ninterval = \"100ms\"\ntimeout = \"2s\"\n"),
    );
    let demo = start(&config).await;
    // The pulled document (High) replaces the demo's file (Medium).
    let denied = until_status(&demo, 403).await;
    let problem: Value = denied.json().await.unwrap();
    assert_eq!(problem["reason"], "risk_above_threshold");
    let on_disk = std::fs::read_to_string(dir.path().join("defender-machines.json")).unwrap();
    assert!(on_disk.contains("\"High\""), "{on_disk}");

    *body.lock().unwrap() = machines_page("Medium");
    until_status(&demo, 200).await;

    // Garbage from the feed: the file and the decisions stay, the status says why.
    *body.lock().unwrap() = "{\"value\": [{\"aadDeviceId\": 7}]}".to_string();
    let start_wait = Instant::now();
    let status = loop {
        let status: Value = demo
            .admin(reqwest::Method::GET, "snapshot")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if status["pulls"][0]["lastError"].is_string() {
            break status;
        }
        assert!(start_wait.elapsed() < Duration::from_secs(10), "{status}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status["pulls"][0]["kind"], "defender_machines", "{status}");
    assert!(
        status["pulls"][0]["lastError"]
            .as_str()
            .unwrap()
            .contains("aadDeviceId"),
        "{status}"
    );
    assert_eq!(demo.get("/_api/web/lists").await.status(), 200);
    let on_disk = std::fs::read_to_string(dir.path().join("defender-machines.json")).unwrap();
    assert!(on_disk.contains("\"Medium\""), "{on_disk}");
    demo.running.shutdown().await;
}

/// An upstream that answers any request with `101 Switching Protocols`, then echoes bytes.
async fn upgrade_echo_upstream() -> SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if stream.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
                assert!(head.contains("upgrade: websocket"), "{head}");
                assert!(head.contains("x-portcullis-device-id: "), "{head}");
                let _ = stream
                    .write_all(b"HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n")
                    .await;
                let mut buf = [0u8; 1024];
                loop {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if stream.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn an_upgraded_connection_is_tunnelled_and_closed_when_its_device_turns_high_risk() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let apps = start_apps().await;
    let echo = upgrade_echo_upstream().await;
    let config = write_demo_with(
        dir.path(),
        &apps,
        &format!("\n[[route]]\nname = \"live\"\nhost = \"live.localhost\"\nupstream = \"http://{echo}\"\napp_id = \"{SHAREPOINT}\"\n"),
    );
    let demo = start(&config).await;
    let mut ws = tokio::net::TcpStream::connect(demo.gateway).await.unwrap();
    let request = format!(
        "GET /socket HTTP/1.1\r\nhost: live.localhost\r\nconnection: Upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nauthorization: Bearer {}\r\n\r\n",
        demo.token
    );
    ws.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(
            ws.read(&mut byte).await.unwrap(),
            1,
            "closed during the handshake"
        );
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("upgrade: websocket"), "{head}");

    ws.write_all(b"ping").await.unwrap();
    let mut echoed = [0u8; 4];
    ws.read_exact(&mut echoed).await.unwrap();
    assert_eq!(&echoed, b"ping");

    push_risk(&demo, "high").await;
    let mut rest = [0u8; 16];
    let closed = tokio::time::timeout(Duration::from_secs(5), ws.read(&mut rest))
        .await
        .expect("the tunnel was not closed within 5 s of the signal");
    assert!(matches!(closed, Ok(0) | Err(_)), "{closed:?}");
    demo.running.shutdown().await;
}

#[tokio::test]
async fn an_http2_stream_is_cut_when_its_device_turns_high_risk() {
    let dir = tempfile::tempdir().unwrap();
    let apps = start_apps().await;
    let certs = server_certs(dir.path());
    let config = write_demo_with(
        dir.path(),
        &apps,
        "\n[[listener]]\nname = \"tls\"\naddr = \"127.0.0.1:0\"\ntls = { cert = \"server.pem\", key = \"server-key.pem\" }\n",
    );
    let demo = start(&config).await;
    let port = demo.running.addr("tls").unwrap().port();
    init_crypto();
    let h2 = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(certs.ca_pem.as_bytes()).unwrap())
        .build()
        .unwrap();
    let mut download = h2
        .get(format!(
            "https://localhost:{port}/download?bytes=67108864&pace_ms=20"
        ))
        .header("host", "sharepoint.localhost")
        .bearer_auth(&demo.token)
        .send()
        .await
        .unwrap();
    assert_eq!(download.version(), reqwest::Version::HTTP_2);
    assert_eq!(download.status(), 200);
    download.chunk().await.unwrap().unwrap();
    push_risk(&demo, "high").await;
    let cut = loop {
        match tokio::time::timeout(Duration::from_secs(5), download.chunk()).await {
            Err(_) => panic!("the HTTP/2 stream was not cut within 5 s of the signal"),
            Ok(Ok(Some(_))) => continue,
            Ok(Ok(None)) => panic!("the stream completed instead of being cut"),
            Ok(Err(e)) => break e,
        }
    };
    eprintln!("stream ended: {cut}");
    // The connection itself stays usable: the next request on it is refused, not broken.
    let next = h2
        .get(format!("https://localhost:{port}/_api/web/lists"))
        .header("host", "sharepoint.localhost")
        .header("accept", "application/json")
        .bearer_auth(&demo.token)
        .send()
        .await
        .unwrap();
    assert_eq!(next.status(), 403);
    demo.running.shutdown().await;
}
