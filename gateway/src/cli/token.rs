//! `portcullis token`: mint a token with the configured demo issuer key (refused unless the
//! key is marked `demo = true`).

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use crate::clock::UnixMillis;
use crate::config::Config;
use crate::identity::issuer::{DemoIssuer, TokenRequest};
use crate::ids::{DeviceId, GroupId, UserId};

pub struct TokenArgs<'a> {
    pub config: &'a Path,
    pub user: UserId,
    pub device: Option<DeviceId>,
    pub groups: Vec<GroupId>,
    pub mfa: bool,
    pub expires_in: Duration,
}

pub fn run(args: TokenArgs<'_>) -> anyhow::Result<ExitCode> {
    let config = match Config::load(args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::from(2));
        }
    };
    let token = mint(
        &config,
        args.user,
        args.device,
        args.groups,
        args.mfa,
        args.expires_in,
    )?;
    println!("{token}");
    Ok(ExitCode::SUCCESS)
}

/// Mints a token for the config's first issuer and audience with its demo issuer key.
pub fn mint(
    config: &Config,
    user: UserId,
    device: Option<DeviceId>,
    groups: Vec<GroupId>,
    mfa: bool,
    expires_in: Duration,
) -> anyhow::Result<String> {
    let issuer = DemoIssuer::from_config(&config.identity, &config.base_dir)?;
    let first = |v: &[String], key: &str| {
        v.first()
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("{}: [identity] {key} is empty", config.path.display()))
    };
    let request = TokenRequest {
        user,
        device,
        groups,
        mfa,
        expires_in,
        audience: first(&config.identity.audiences, "audiences")?,
        issuer: first(&config.identity.issuers, "issuers")?,
        tenant: None,
    };
    Ok(issuer.mint(&request, UnixMillis::now())?)
}
