//! Gateway configuration: TOML parsed into serde types at the edge (`raw`), then validated into
//! runtime types that cannot hold invalid values. Every error names the file, line and key.
//! `config/README.md` at the repository root lists every key with its default.

mod duration;
mod error;
pub mod identity;
mod raw;
pub mod sources;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use http::uri::{Authority, Scheme};
use http::HeaderValue;

pub use duration::parse_duration;
pub use error::{line_column, ConfigError, ConfigErrors};

pub use crate::access::Unprotected;
use crate::ids::AppId;
use identity::IdentityConfig;
use sources::SourcesConfig;

/// The whole validated gateway configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from.
    pub path: PathBuf,
    /// Relative paths in the config are relative to this directory (the file's own).
    pub base_dir: PathBuf,
    pub listeners: Vec<ListenerConfig>,
    pub routes: Vec<RouteConfig>,
    pub limits: Limits,
    pub admin: Option<AdminConfig>,
    pub identity: IdentityConfig,
    /// Where devices, risk and policies come from; without it every device is unknown and
    /// no policy applies.
    pub sources: Option<SourcesConfig>,
    pub decision_log: DecisionLogConfig,
    /// Proxies in front whose `X-Forwarded-For` is believed when telling the client's address
    /// for named locations.
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

#[derive(Debug, Clone)]
pub struct ListenerConfig {
    pub name: String,
    pub addr: SocketAddr,
    pub tls: Option<TlsConfig>,
}

#[derive(Debug, Clone)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_auth: ClientAuth,
    pub client_ca: Option<PathBuf>,
}

/// Whether a TLS listener asks for a device client certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    Off,
    Optional,
    Required,
}

#[derive(Debug, Clone)]
pub struct RouteConfig {
    pub name: String,
    /// Lower-case host to match (without port); `*.example.com` matches subdomains; `None`
    /// matches any host.
    pub host: Option<String>,
    /// Path prefix to match; `/` matches everything.
    pub path_prefix: String,
    pub upstream: Upstream,
    /// The app this route fronts (conditional access `includeApplications`).
    pub app_id: AppId,
    pub host_header: HostHeader,
    /// What happens to a request no enabled conditional-access policy applies to.
    pub unprotected: Unprotected,
}

/// A pre-parsed upstream origin.
#[derive(Debug, Clone)]
pub struct Upstream {
    pub scheme: Scheme,
    pub authority: Authority,
    /// The URL as written, for messages.
    pub url: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostHeader {
    /// Pass the client's Host through (default).
    Preserve,
    /// Send the upstream's authority.
    Upstream,
    /// Send this value.
    Fixed(HeaderValue),
}

/// Limits and timeouts (section `[limits]`).
#[derive(Debug, Clone)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub tls_handshake_timeout: Duration,
    pub max_header_bytes: usize,
    pub max_connections: usize,
    pub upstream_connect_timeout: Duration,
    pub upstream_response_timeout: Duration,
    pub upstream_idle_timeout: Duration,
    pub upstream_max_idle_per_host: usize,
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            tls_handshake_timeout: Duration::from_secs(10),
            max_header_bytes: 64 * 1024,
            max_connections: 10_000,
            upstream_connect_timeout: Duration::from_secs(3),
            upstream_response_timeout: Duration::from_secs(30),
            upstream_idle_timeout: Duration::from_secs(90),
            upstream_max_idle_per_host: 1024,
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// The admin listener (section `[admin]`).
#[derive(Debug, Clone)]
pub struct AdminConfig {
    pub addr: SocketAddr,
    /// Bearer token required for `/admin/v1/*`; `None` leaves those endpoints disabled.
    pub token: Option<String>,
    /// Where accepted risk signals are journaled (fsync before the 2xx) and replayed from at
    /// start; `None` keeps pushed signals in memory only.
    pub journal: Option<PathBuf>,
}

/// The decision log (section `[decision_log]`).
#[derive(Debug, Clone)]
pub struct DecisionLogConfig {
    /// File to append JSON lines to; `-` for standard output; `None` for no log.
    pub path: Option<PathBuf>,
    /// Fraction of allows logged (every deny is logged).
    pub allow_sample_rate: f64,
}

impl Default for DecisionLogConfig {
    fn default() -> Self {
        Self {
            path: None,
            allow_sample_rate: 0.01,
        }
    }
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors(vec![ConfigError::new(
                path,
                "",
                format!("cannot read the config file: {e}"),
            )])
        })?;
        Self::parse(&text, path)
    }

    /// Validates config text as if read from `path`.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigErrors> {
        raw::parse(text, path)
    }

    /// Resolves a path from the config against the config file's directory.
    pub fn resolve(&self, relative: &Path) -> PathBuf {
        self.base_dir.join(relative)
    }
}
