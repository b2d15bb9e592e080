//! The admin `/metrics` endpoint as a real Prometheus sees it: the gateway runs in-process, real
//! traffic goes through the proxy, a real `prometheus` process scrapes the admin listener and the
//! test asserts on series through Prometheus's HTTP query API. `promtool check metrics` lints the
//! exposition. Prometheus is installed from the Debian package when missing (CI on a fresh
//! machine). Everything stays on 127.0.0.1 and is bounded in time.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use portcullis::clock::UnixMillis;
use portcullis::identity::testing::{TestKeys, TokenSpec};
use tokio::io::AsyncWriteExt;

/// Requests sent to the open `sharepoint` route.
const ALLOWED: u64 = 5;
/// Requests sent to a host no route matches.
const UNROUTED: u64 = 3;
/// Requests without a token sent to the protected route (refused: 401 `token_missing`).
const NO_TOKEN: u64 = 4;
/// Requests with one valid token sent to the protected route (no policy opens it: 403).
const WITH_TOKEN: u64 = 6;
/// How long Prometheus may take to start, scrape and answer a query.
const DEADLINE: Duration = Duration::from_secs(20);

/// Runs `program --version`; true when it ran and succeeded.
fn runs(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn show(out: &Output) -> String {
    format!(
        "exit: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Makes sure `prometheus` and `promtool` are on PATH, installing the Debian package if not.
fn ensure_prometheus() {
    if runs("prometheus") && runs("promtool") {
        return;
    }
    if !runs("apt-get") {
        panic!(
            "prometheus/promtool are missing and apt-get is unavailable: install Prometheus \
             (Debian package `prometheus`, or put `prometheus` and `promtool` on PATH) to run \
             this test"
        );
    }
    let script = "apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
                  apt-get install -y -qq --no-install-recommends prometheus";
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    let mut cmd = if is_root {
        Command::new("sh")
    } else {
        // Non-interactive sudo: fail rather than wait for a password.
        let mut c = Command::new("sudo");
        c.args(["-n", "sh"]);
        c
    };
    let out = cmd
        .args(["-c", script])
        .output()
        .unwrap_or_else(|e| panic!("cannot run the prometheus install ({script}): {e}"));
    assert!(
        out.status.success(),
        "installing the Debian package `prometheus` failed ({script}{}):\n{}",
        if is_root { "" } else { ", run via `sudo -n`" },
        show(&out)
    );
    assert!(
        runs("prometheus") && runs("promtool"),
        "the Debian package `prometheus` was installed but `prometheus`/`promtool` still do not run"
    );
}

/// A free port on 127.0.0.1 (bound, read, released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A Prometheus process that is killed when dropped.
struct PrometheusProcess {
    child: Child,
    log: std::path::PathBuf,
    base: String,
}

impl PrometheusProcess {
    /// Starts Prometheus in `dir`, scraping `target` every second.
    fn start(dir: &Path, target: SocketAddr) -> Self {
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: portcullis\n    static_configs:\n      - targets: [\"{target}\"]\n"
            ),
        )
        .unwrap();
        let data = dir.join("data");
        let log = dir.join("prometheus.log");
        let log_file = std::fs::File::create(&log).unwrap();
        let listen = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .arg(format!("--web.listen-address={listen}"))
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start prometheus: {e}"));
        Self {
            child,
            log,
            base: format!("http://{listen}"),
        }
    }

    /// Starts Prometheus and waits until it answers `/-/ready`. The listen port is picked free
    /// and released before Prometheus binds it, so another process may take it first: then
    /// Prometheus exits and is started again on another port (three attempts).
    async fn start_ready(
        dir: &Path,
        target: SocketAddr,
        client: &reqwest::Client,
        until: Instant,
    ) -> Self {
        let mut failures = Vec::new();
        for attempt in 0..3 {
            let attempt_dir = dir.join(format!("attempt{attempt}"));
            std::fs::create_dir_all(&attempt_dir).unwrap();
            let mut prom = Self::start(&attempt_dir, target);
            while Instant::now() < until {
                if let Ok(Some(status)) = prom.child.try_wait() {
                    failures.push(format!("exited ({status}):\n{}", prom.log_tail()));
                    break;
                }
                let ready = client
                    .get(format!("{}/-/ready", prom.base))
                    .timeout(Duration::from_secs(1))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                if ready {
                    return prom;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            if Instant::now() >= until {
                panic!(
                    "prometheus was not ready within {DEADLINE:?}; log:\n{}",
                    prom.log_tail()
                );
            }
        }
        panic!("prometheus did not start:\n{}", failures.join("\n---\n"));
    }

    /// The last lines Prometheus logged, for failure messages.
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Runs an instant query; the result vector as (labels, value), or an error text.
    async fn query(
        &self,
        client: &reqwest::Client,
        q: &str,
    ) -> Result<Vec<(serde_json::Value, f64)>, String> {
        let resp = client
            .get(format!("{}/api/v1/query", self.base))
            .query(&[("query", q)])
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        let body: serde_json::Value = resp.json().await.map_err(|e| format!("not JSON: {e}"))?;
        if body["status"] != "success" {
            return Err(format!("query failed: {body}"));
        }
        let result = body["data"]["result"]
            .as_array()
            .ok_or_else(|| format!("no result vector: {body}"))?;
        result
            .iter()
            .map(|s| {
                s["value"][1]
                    .as_str()
                    .and_then(|v| v.parse().ok())
                    .map(|v| (s["metric"].clone(), v))
                    .ok_or_else(|| format!("bad sample: {s}"))
            })
            .collect()
    }

    /// Polls `q` until it returns exactly one sample equal to `want`, or panics at the deadline.
    async fn expect(&self, client: &reqwest::Client, q: &str, want: f64, until: Instant) {
        let mut last = String::new();
        while Instant::now() < until {
            match self.query(client, q).await {
                Ok(v) if v.len() == 1 && v[0].1 == want => return,
                Ok(v) => {
                    last = v
                        .iter()
                        .map(|(labels, value)| format!("{} {value}", series_name(labels)))
                        .collect::<Vec<_>>()
                        .join(", ");
                }
                Err(e) => last = e,
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        // What Prometheus does hold, to see where the counts went.
        let nonzero = match self
            .query(
                client,
                r#"{job="portcullis",__name__=~"portcullis_.*",__name__!~".*_bucket"} > 0"#,
            )
            .await
        {
            Ok(v) => v
                .iter()
                .map(|(labels, value)| format!("  {} {value}", series_name(labels)))
                .collect::<Vec<_>>()
                .join("\n"),
            Err(e) => e,
        };
        panic!(
            "`{q}` did not become {want} within {DEADLINE:?}; last: {last}\n\
             non-zero portcullis series:\n{nonzero}\nprometheus log:\n{}",
            self.log_tail()
        );
    }
}

/// `name{label="value",...}` of a result's labels, without the scrape's `job` and `instance`.
fn series_name(labels: &serde_json::Value) -> String {
    let Some(map) = labels.as_object() else {
        return labels.to_string();
    };
    let pairs: Vec<String> = map
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "__name__" | "job" | "instance"))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    format!(
        "{}{{{}}}",
        map["__name__"].as_str().unwrap_or(""),
        pairs.join(",")
    )
}

impl Drop for PrometheusProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Pipes `body` into `promtool check metrics`.
async fn promtool_check(body: &str) -> Output {
    let mut child = tokio::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("cannot start promtool");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(body.as_bytes()).await.unwrap();
    drop(stdin);
    tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("promtool check metrics timed out")
        .unwrap()
}

/// The gateway's config: admin and public listeners, the two open routes, a protected route
/// (no policy covers it, so it is closed) and token verification against `jwks.json`.
fn gateway_toml(apps: &Apps) -> String {
    format!(
        r#"[admin]
addr = "127.0.0.1:0"

[[listener]]
name = "public"
addr = "127.0.0.1:0"

[identity]
jwks = "jwks.json"
issuers = ["{issuer}"]
audiences = ["{audience}"]

{open}
[[route]]
name = "protected"
host = "protected.localhost"
upstream = "http://{upstream}"
app_id = "{SHAREPOINT}"
"#,
        issuer = TokenSpec::ISSUER,
        audience = TokenSpec::AUDIENCE,
        open = open_routes(apps),
        upstream = apps.sharepoint,
    )
}

/// A token the gateway accepts, valid for an hour from now.
fn valid_token(keys: &TestKeys) -> String {
    let now = UnixMillis::now().as_secs();
    keys.sign(
        &TokenSpec {
            exp: Some(now + 3600),
            nbf: Some(now - 60),
            ..TokenSpec::default()
        }
        .claims(),
    )
}

/// Sends `n` GETs for `host` with an optional bearer token; asserts each status and, for
/// refusals, the reason code in the problem+json body.
async fn send(
    c: &reqwest::Client,
    base: &str,
    host: &str,
    token: Option<&str>,
    n: u64,
    status: u16,
    reason: Option<&str>,
) {
    for _ in 0..n {
        let mut req = c.get(format!("{base}/_api/web/lists")).header("host", host);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), status, "{host}");
        let body = resp.text().await.unwrap();
        if let Some(reason) = reason {
            let v: serde_json::Value = serde_json::from_str(&body)
                .unwrap_or_else(|e| panic!("{host}: refusal is not JSON ({e}): {body}"));
            assert_eq!(v["reason"], reason, "{host}: {body}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_scrapes_the_admin_metrics() {
    ensure_prometheus();
    let started = Instant::now();
    let apps = start_apps().await;
    let dir = tempfile::tempdir().unwrap();
    let keys = TestKeys::rsa_a();
    std::fs::write(
        dir.path().join("jwks.json"),
        TestKeys::jwks_json(std::slice::from_ref(&keys)),
    )
    .unwrap();
    let gw = portcullis::app::start(&config(dir.path(), &gateway_toml(&apps)))
        .await
        .unwrap();
    let admin = gw.admin_addr.expect("admin listener bound");
    let base = format!("http://{}", gw.addr("public").unwrap());
    let c = client();

    let token = valid_token(&keys);
    send(&c, &base, "sharepoint.localhost", None, ALLOWED, 200, None).await;
    send(&c, &base, "nowhere.localhost", None, UNROUTED, 404, None).await;
    send(
        &c,
        &base,
        "protected.localhost",
        None,
        NO_TOKEN,
        401,
        Some("token_missing"),
    )
    .await;
    send(
        &c,
        &base,
        "protected.localhost",
        Some(&token),
        WITH_TOKEN,
        403,
        Some("not_protected"),
    )
    .await;

    // The exposition passes promtool's lint and carries no user or device id.
    let body = c
        .get(format!("http://{admin}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let lint = promtool_check(&body).await;
    assert!(
        lint.status.success() && lint.stderr.is_empty(),
        "promtool check metrics rejected /metrics:\n{}\n/metrics:\n{body}",
        show(&lint)
    );
    for id in [TokenSpec::USER, TokenSpec::DEVICE] {
        assert!(!body.contains(id), "/metrics names {id}:\n{body}");
    }

    // A real Prometheus scrapes the admin listener and sees exactly the traffic sent.
    let prom_dir = tempfile::tempdir().unwrap();
    let until = Instant::now() + DEADLINE;
    let prom = PrometheusProcess::start_ready(prom_dir.path(), admin, &c, until).await;
    let version = gw.store.load().version as f64;
    let requests = |app: &str, decision: &str, reason: &str| {
        format!(
            r#"portcullis_requests_total{{job="portcullis",app="{app}",decision="{decision}",reason="{reason}"}}"#
        )
    };
    let checks = [
        (r#"up{job="portcullis"}"#.to_string(), 1.0),
        ("portcullis_ready".to_string(), 1.0),
        // Requests by app, decision and reason: exactly what was sent.
        (
            requests("sharepoint", "allow", "unprotected_allowed"),
            ALLOWED as f64,
        ),
        (requests("exchange", "allow", "unprotected_allowed"), 0.0),
        (requests("none", "deny", "no_route"), UNROUTED as f64),
        (
            "sum(portcullis_requests_total)".to_string(),
            (ALLOWED + UNROUTED + NO_TOKEN + WITH_TOKEN) as f64,
        ),
        (
            r#"sum(portcullis_requests_total{decision="allow"})"#.to_string(),
            ALLOWED as f64,
        ),
        // Histograms by app: every routed request timed, only forwarded ones upstream.
        (
            r#"portcullis_request_duration_seconds_count{app="sharepoint"}"#.to_string(),
            ALLOWED as f64,
        ),
        (
            r#"portcullis_request_duration_seconds_bucket{app="sharepoint",le="+Inf"}"#.to_string(),
            ALLOWED as f64,
        ),
        (
            r#"portcullis_request_duration_seconds_count{app="protected"}"#.to_string(),
            (NO_TOKEN + WITH_TOKEN) as f64,
        ),
        (
            r#"portcullis_upstream_duration_seconds_count{app="sharepoint"}"#.to_string(),
            ALLOWED as f64,
        ),
        (
            r#"portcullis_upstream_duration_seconds_count{app="protected"}"#.to_string(),
            0.0,
        ),
        (r#"sum(portcullis_upstream_errors_total)"#.to_string(), 0.0),
        // Snapshot: the version decisions are made on, devices by state (empty snapshot).
        ("portcullis_snapshot_version".to_string(), version),
        ("count(portcullis_snapshot_age_seconds)".to_string(), 1.0),
        ("count(portcullis_devices)".to_string(), 4.0),
        ("sum(portcullis_devices)".to_string(), 0.0),
        (
            "portcullis_snapshot_build_duration_seconds_count".to_string(),
            1.0,
        ),
        ("portcullis_snapshot_build_failures_total".to_string(), 0.0),
        // Token cache: the first use of the token verifies it, the rest are cache hits.
        (
            r#"portcullis_token_cache_requests_total{result="miss"}"#.to_string(),
            1.0,
        ),
        (
            r#"portcullis_token_cache_requests_total{result="hit"}"#.to_string(),
            (WITH_TOKEN - 1) as f64,
        ),
        (r#"sum(portcullis_config_reloads_total)"#.to_string(), 0.0),
        (
            r#"count(portcullis_open_connections{listener="public"})"#.to_string(),
            1.0,
        ),
        // Counted under the reason the client was given: 401 token_missing without a token,
        // 403 not_protected with one.
        (
            requests("protected", "deny", "not_protected"),
            WITH_TOKEN as f64,
        ),
        (
            requests("protected", "deny", "token_missing"),
            NO_TOKEN as f64,
        ),
    ];
    for (q, want) in &checks {
        prom.expect(&c, q, *want, until).await;
    }
    drop(prom);
    gw.shutdown().await;
    assert!(
        started.elapsed() < Duration::from_secs(50),
        "the test took {:?} (Prometheus installed)",
        started.elapsed()
    );
}
