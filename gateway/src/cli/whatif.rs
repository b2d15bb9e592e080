//! `portcullis whatif`: explain offline the decision for a user, groups, device, app and
//! client type, with the engine the gateway runs on every request (`crate::whatif`).

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::app::first_snapshot;
use crate::config::Config;
use crate::ids::{DeviceId, GroupId, UserId};
use crate::whatif::{self, WhatIf};

/// The command's arguments (see `portcullis whatif --help`).
#[derive(Debug, clap::Args)]
pub struct WhatIfArgs {
    /// The gateway's TOML config; its [sources] give devices and policies.
    #[arg(long, short)]
    pub config: PathBuf,
    /// User object id (GUID).
    #[arg(long)]
    pub user: UserId,
    /// Group object id the user is in; repeat for several.
    #[arg(long = "group")]
    pub groups: Vec<GroupId>,
    /// The device the request comes from (Entra device id).
    #[arg(long)]
    pub device: Option<DeviceId>,
    /// The app: its id (GUID) or the host of a route, e.g. `sharepoint.localhost`.
    #[arg(long)]
    pub app: String,
    /// Client app type.
    #[arg(long, default_value = "browser", value_parser = ["browser", "mobileAppsAndDesktopClients", "exchangeActiveSync", "other"])]
    pub client: String,
    /// Client IP, for named locations.
    #[arg(long)]
    pub ip: Option<IpAddr>,
    /// The sign-in satisfied MFA (`amr` contains `mfa`).
    #[arg(long)]
    pub mfa: bool,
    /// A User-Agent, for the platform when the device is not in the inventory.
    #[arg(long)]
    pub user_agent: Option<String>,
    /// Print the answer as JSON (the shape of `POST /admin/v1/whatif`).
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: WhatIfArgs) -> anyhow::Result<ExitCode> {
    let config = match Config::load(&args.config) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("{errors}");
            return Ok(ExitCode::from(2));
        }
    };
    let store = first_snapshot(&config)?;
    let question = WhatIf {
        user: args.user,
        groups: args.groups,
        device: args.device,
        app: args.app,
        client: Some(args.client),
        ip: args.ip,
        mfa: args.mfa,
        user_agent: args.user_agent,
    };
    let answer = match whatif::ask(&store.load(), &config.routes, &question) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("portcullis whatif: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
    } else {
        print!("{}", whatif::render(&answer));
    }
    Ok(ExitCode::SUCCESS)
}
