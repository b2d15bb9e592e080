//! Shared helpers for the integration tests: real servers on 127.0.0.1 port 0, real TLS with
//! certificates generated here, real HTTP clients.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use portcullis::app::App as Running;
use portcullis::config::Config;
use portcullis::standin::{self, App};
use tokio::sync::watch;

pub const SHAREPOINT: &str = "00000003-0000-0ff1-ce00-000000000000";
pub const EXCHANGE: &str = "00000002-0000-0ff1-ce00-000000000000";

pub fn init_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Stand-in apps that live as long as the value.
pub struct Apps {
    pub sharepoint: SocketAddr,
    pub exchange: SocketAddr,
    _stop: watch::Sender<bool>,
}

pub async fn start_apps() -> Apps {
    let (tx, rx) = watch::channel(false);
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    Apps {
        sharepoint: standin::spawn(any, App::Sharepoint, rx.clone())
            .await
            .unwrap(),
        exchange: standin::spawn(any, App::Exchange, rx).await.unwrap(),
        _stop: tx,
    }
}

/// Writes `text` as `gateway.toml` into `dir` and parses it.
pub fn config(dir: &Path, text: &str) -> Config {
    let path = dir.join("gateway.toml");
    std::fs::write(&path, text).unwrap();
    Config::load(&path).unwrap_or_else(|e| panic!("test config invalid: {e}"))
}

/// A gateway with a plain listener named `public` and the given extra TOML (routes, limits).
pub async fn start_gateway(dir: &Path, extra: &str) -> Running {
    let text = format!("[[listener]]\nname = \"public\"\naddr = \"127.0.0.1:0\"\n\n{extra}");
    portcullis::app::start(&config(dir, &text)).await.unwrap()
}

/// Two routes by host to the stand-ins, open (`unprotected = "allow"`).
pub fn open_routes(apps: &Apps) -> String {
    format!(
        r#"
[[route]]
name = "sharepoint"
host = "sharepoint.localhost"
upstream = "http://{}"
app_id = "{SHAREPOINT}"
unprotected = "allow"

[[route]]
name = "exchange"
host = "exchange.localhost"
upstream = "http://{}"
app_id = "{EXCHANGE}"
unprotected = "allow"
"#,
        apps.sharepoint, apps.exchange
    )
}

pub fn client() -> reqwest::Client {
    init_crypto();
    reqwest::Client::builder().build().unwrap()
}

/// A self-signed CA and a server certificate for `localhost` and 127.0.0.1, written as PEM files.
pub struct TestCerts {
    pub ca_pem: String,
    pub cert: PathBuf,
    pub key: PathBuf,
}

pub fn server_certs(dir: &Path) -> TestCerts {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Portcullis test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);

    let key = rcgen::KeyPair::generate().unwrap();
    let params =
        rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    let cert_path = dir.join("server.pem");
    let key_path = dir.join("server-key.pem");
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    TestCerts {
        ca_pem: ca.pem(),
        cert: cert_path,
        key: key_path,
    }
}

/// Resident memory of this process in KiB.
pub fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Writes the demo's data and config (`config/demo/`) into `dir` as `portcullis demo` does,
/// with the given upstream URLs, admin address and admin token, and `extra` TOML appended.
/// Returns the config's path.
pub fn write_demo(
    dir: &Path,
    sharepoint: &str,
    exchange: &str,
    admin: &str,
    admin_token: &str,
    extra: &str,
) -> PathBuf {
    let demo = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../config/demo"));
    for entry in std::fs::read_dir(demo).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
    }
    std::fs::write(dir.join("admin-token"), admin_token).unwrap();
    let text = std::fs::read_to_string(dir.join("portcullis.toml"))
        .unwrap()
        .replace("${SHAREPOINT}", sharepoint)
        .replace("${EXCHANGE}", exchange)
        .replace("${LISTEN}", "127.0.0.1:0")
        .replace("${ADMIN}", admin)
        + extra;
    let path = dir.join("portcullis.toml");
    std::fs::write(&path, text).unwrap();
    path
}
