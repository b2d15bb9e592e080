//! `portcullis demo`: both stand-ins and the gateway in one process on loopback, from the demo
//! files embedded in the binary (config/demo/), written into a working directory the user can
//! edit while the demo runs. Prints ready-to-paste curl commands with minted tokens.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;

use super::signals::shutdown_requested;
use super::token::mint;
use crate::config::Config;
use crate::ids::{DeviceId, GroupId, UserId};
use crate::standin::{self, App};

/// Every demo file, by name.
const FILES: &[(&str, &str)] = &[
    (
        "portcullis.toml",
        include_str!("../../../config/demo/portcullis.toml"),
    ),
    (
        "devices.json",
        include_str!("../../../config/demo/devices.json"),
    ),
    (
        "defender-machines.json",
        include_str!("../../../config/demo/defender-machines.json"),
    ),
    (
        "compliance-policies.json",
        include_str!("../../../config/demo/compliance-policies.json"),
    ),
    (
        "tenant.json",
        include_str!("../../../config/demo/tenant.json"),
    ),
    (
        "conditional-access.json",
        include_str!("../../../config/demo/conditional-access.json"),
    ),
    (
        "named-locations.json",
        include_str!("../../../config/demo/named-locations.json"),
    ),
    (
        "issuer-key.pem",
        include_str!("../../../config/demo/issuer-key.pem"),
    ),
    ("jwks.json", include_str!("../../../config/demo/jwks.json")),
    (
        "directory-groups.json",
        include_str!("../../../config/demo/directory-groups.json"),
    ),
];

const ALICE: &str = "aaaaaaaa-0000-0000-0000-000000000001";
const BOB: &str = "aaaaaaaa-0000-0000-0000-000000000002";
const CAROL: &str = "aaaaaaaa-0000-0000-0000-000000000003";
const ALL_STAFF: &str = "bbbbbbbb-0000-0000-0000-000000000001";

/// One scenario the demo prints a command for.
struct Scenario {
    what: &'static str,
    user: &'static str,
    device: Option<&'static str>,
    mfa: bool,
    host: &'static str,
    path: &'static str,
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        what: "compliant laptop (low risk) reaches SharePoint: 200",
        user: ALICE,
        device: Some("11111111-0000-0000-0000-000000000001"),
        mfa: false,
        host: "sharepoint.localhost",
        path: "/_api/web/lists",
    },
    Scenario {
        what: "same laptop, Exchange needs MFA too; with MFA: 200",
        user: ALICE,
        device: Some("11111111-0000-0000-0000-000000000001"),
        mfa: true,
        host: "exchange.localhost",
        path: "/api/v2.0/me/messages",
    },
    Scenario {
        what: "high-risk desktop: 403 risk_above_threshold",
        user: BOB,
        device: Some("11111111-0000-0000-0000-000000000002"),
        mfa: false,
        host: "sharepoint.localhost",
        path: "/_api/web/lists",
    },
    Scenario {
        what: "device not in the inventory: 403 device_unknown",
        user: CAROL,
        device: Some("11111111-0000-0000-0000-0000000000ff"),
        mfa: false,
        host: "sharepoint.localhost",
        path: "/_api/web/lists",
    },
    Scenario {
        what: "unmanaged home PC: 403 device_not_managed",
        user: BOB,
        device: Some("11111111-0000-0000-0000-000000000004"),
        mfa: false,
        host: "sharepoint.localhost",
        path: "/_api/web/lists",
    },
    Scenario {
        what: "kiosk silent since 2020: 403 checkin_stale",
        user: ALICE,
        device: Some("11111111-0000-0000-0000-000000000005"),
        mfa: false,
        host: "sharepoint.localhost",
        path: "/_api/web/lists",
    },
    Scenario {
        what: "token without a device: 403 device_missing",
        user: ALICE,
        device: None,
        mfa: false,
        host: "sharepoint.localhost",
        path: "/_api/web/lists",
    },
];

pub async fn run(listen: SocketAddr, dir: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let dir = dir.unwrap_or_else(|| {
        std::env::temp_dir().join(format!("portcullis-demo-{}", std::process::id()))
    });
    let (tx, rx) = tokio::sync::watch::channel(false);
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let sharepoint = standin::spawn(loopback, App::Sharepoint, rx.clone())
        .await
        .context("starting the SharePoint stand-in")?;
    let exchange = standin::spawn(loopback, App::Exchange, rx)
        .await
        .context("starting the Exchange stand-in")?;
    let config_path = write_files(&dir, listen, sharepoint, exchange)?;
    let config = Config::load(&config_path)
        .map_err(|e| anyhow::anyhow!("the demo config is invalid: {e}"))?;
    let running = crate::app::start(&config).await?;
    let gw = running
        .addr("public")
        .context("the demo config has no `public` listener")?;
    let admin_token = std::fs::read_to_string(dir.join("admin-token")).unwrap_or_default();

    println!("Portcullis demo (data and config in {})", dir.display());
    println!("  gateway             http://{gw}");
    println!("  SharePoint stand-in http://{sharepoint}");
    println!("  Exchange stand-in   http://{exchange}");
    if let Some(admin) = running.admin_addr {
        println!("  admin               http://{admin}  (/metrics, /healthz, /readyz; /admin/v1/* with the bearer token below)");
    }
    println!();
    for s in SCENARIOS {
        let token = scenario_token(&config, s)?;
        println!("# {}", s.what);
        println!(
            "curl -s -H 'Host: {}' -H 'Authorization: Bearer {token}' http://{gw}{}",
            s.host, s.path
        );
        println!();
    }
    println!("# no token at all: 401 token_missing");
    println!("curl -si -H 'Host: sharepoint.localhost' http://{gw}/_api/web/lists");
    println!();
    println!("# a browser gets an HTML page explaining the denial");
    println!("curl -s -H 'Host: sharepoint.localhost' -H 'Accept: text/html' -H 'User-Agent: Mozilla/5.0 (Windows NT 10.0)' http://{gw}/sites/contoso/");
    println!();
    println!(
        "Raise the laptop's risk without a restart: in {}, set the riskScore of",
        dir.join("defender-machines.json").display()
    );
    println!("aadDeviceId 11111111-0000-0000-0000-000000000001 to \"High\" and save; the first command then gets");
    println!("403 risk_above_threshold. Set it back to \"Low\" and it gets 200 again.");
    if let Some(admin) = running.admin_addr {
        println!("Or push a signal (applied within milliseconds, journaled):");
        println!(
            "curl -s -H 'Authorization: Bearer {}' -H 'Content-Type: application/json' -d '{{\"deviceId\":\"11111111-0000-0000-0000-000000000001\",\"riskLevel\":\"high\"}}' http://{admin}/admin/v1/signals",
            admin_token.trim()
        );
        println!(
            "Explain a denial a user reports, by the correlationId (X-Request-Id) of its 403:"
        );
        println!(
            "curl -s -H 'Authorization: Bearer {}' http://{admin}/admin/v1/decisions/<correlation id>",
            admin_token.trim()
        );
    }
    println!();
    println!(
        "Mint your own tokens: portcullis token --config {} --user {ALICE} --device <id> [--mfa]",
        config_path.display()
    );
    println!(
        "Ask why offline: portcullis whatif --config {} --user {BOB} --group {ALL_STAFF} \\\n    \
         --device 11111111-0000-0000-0000-000000000002 --app sharepoint.localhost",
        config_path.display()
    );
    println!("Ctrl-C stops everything.");

    shutdown_requested().await;
    let _ = tx.send(true);
    running.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

fn scenario_token(config: &Config, s: &Scenario) -> anyhow::Result<String> {
    let user = UserId::parse(s.user)?;
    let device = s.device.map(DeviceId::parse).transpose()?;
    let groups = vec![GroupId::parse(ALL_STAFF)?];
    mint(
        config,
        user,
        device,
        groups,
        s.mfa,
        Duration::from_secs(8 * 3600),
    )
}

/// Writes the demo files into `dir` (keeping data files a user already edited there) and
/// returns the config's path.
fn write_files(
    dir: &Path,
    listen: SocketAddr,
    sharepoint: SocketAddr,
    exchange: SocketAddr,
) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for (name, text) in FILES {
        let path = dir.join(name);
        let text = if *name == "portcullis.toml" {
            text.replace("${SHAREPOINT}", &format!("http://{sharepoint}"))
                .replace("${EXCHANGE}", &format!("http://{exchange}"))
                .replace("${LISTEN}", &listen.to_string())
                .replace("${ADMIN}", "127.0.0.1:0")
        } else if path.exists() {
            continue;
        } else {
            (*text).to_string()
        };
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    let token_path = dir.join("admin-token");
    if !token_path.exists() {
        // 122 random bits from the OS generator.
        let token = uuid::Uuid::new_v4().simple().to_string();
        std::fs::write(&token_path, format!("demo-{token}\n"))
            .with_context(|| format!("cannot write {}", token_path.display()))?;
    }
    Ok(dir.join("portcullis.toml"))
}
