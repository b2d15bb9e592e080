//! The `portcullis` command line. `main.rs` only calls `cli::main`.

mod check;
mod demo;
mod logging;
mod serve;
mod signals;
mod token;
mod whatif;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::standin::App;
pub use logging::LogFormat;

/// Portcullis: a gateway that lets a request reach a protected app only from a compliant device.
#[derive(Debug, Parser)]
#[command(name = "portcullis", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// Log format: human-readable text or one JSON object per line.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "PORTCULLIS_LOG_FORMAT")]
    pub log_format: LogFormat,

    /// Log filter, e.g. `info`, `portcullis=debug` (tracing's EnvFilter syntax).
    #[arg(long, global = true, default_value = "info", env = "PORTCULLIS_LOG")]
    pub log: String,

    /// Worker threads for the async runtime; 1 runs everything on the current thread (best
    /// when the gateway is pinned to one core). Default: the cores this process may use.
    #[arg(long, global = true, env = "PORTCULLIS_THREADS")]
    pub threads: Option<usize>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway with a config file.
    Serve {
        /// The gateway's TOML config (see config/README.md).
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Validate a config file and everything it points at; print a summary and warnings.
    /// Exits non-zero on errors.
    Check {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Run the gateway, both stand-in apps and sample data in one process on loopback, and
    /// print ready-to-paste curl commands.
    Demo {
        /// Address of the demo gateway's public listener (port 0 picks a free port).
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        /// Working directory for the demo's config and data (default: a new one under the
        /// system temp directory). Data files already there are kept, so edits survive.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Mint a token with the configured demo issuer key (refused unless the key is marked
    /// `demo = true`). Prints the token.
    Token {
        #[arg(long, short)]
        config: PathBuf,
        /// User object id (GUID).
        #[arg(long)]
        user: crate::ids::UserId,
        /// Device id (GUID) for the `deviceid` claim.
        #[arg(long)]
        device: Option<crate::ids::DeviceId>,
        /// Group object id; repeat for several.
        #[arg(long = "group")]
        groups: Vec<crate::ids::GroupId>,
        /// Put `mfa` in the `amr` claim.
        #[arg(long)]
        mfa: bool,
        /// Lifetime, e.g. `1h`, `30m`.
        #[arg(long, default_value = "1h", value_parser = crate::config::parse_duration)]
        expires_in: std::time::Duration,
    },
    /// Explain offline the decision for a user, groups, device, app and client type: the
    /// verdict and, per policy, applied or not and why (the gateway's own engine).
    Whatif(whatif::WhatIfArgs),
    /// Run a stand-in app server (SharePoint Online or Exchange Online).
    Standin {
        #[arg(long, value_enum)]
        app: App,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:9001")]
        listen: SocketAddr,
    },
}

/// Parses the command line and runs the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = logging::init(cli.log_format, &cli.log) {
        eprintln!("portcullis: {e}");
        return ExitCode::from(2);
    }
    let runtime = match cli.threads {
        Some(0) => {
            eprintln!("portcullis: --threads must be at least 1");
            return ExitCode::from(2);
        }
        // One thread: no work-stealing scheduler, no hand-offs between threads.
        Some(1) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        Some(n) => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .enable_all()
            .build(),
        None => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build(),
    };
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("portcullis: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve { config } => serve::run(&config).await,
            Command::Check { config } => check::run(&config).await,
            Command::Whatif(args) => whatif::run(args),
            Command::Demo { listen, dir } => demo::run(listen, dir).await,
            Command::Standin { app, listen } => serve::standin(app, listen).await,
            Command::Token {
                config,
                user,
                device,
                groups,
                mfa,
                expires_in,
            } => token::run(token::TokenArgs {
                config: &config,
                user,
                device,
                groups,
                mfa,
                expires_in,
            }),
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("portcullis: {e:#}");
            ExitCode::from(1)
        }
    }
}
