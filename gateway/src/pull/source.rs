//! One pulled endpoint's configuration, as it appears in the gateway's TOML.

use std::path::PathBuf;
use std::time::Duration;

use http::uri::{Authority, Scheme};
use http::Uri;
use serde::Deserialize;

use super::PullError;
use crate::config::parse_duration;

/// A polled endpoint: the first page's URL, how to authenticate, and how often to poll.
///
/// ```toml
/// url = "https://graph.microsoft.com/v1.0/deviceManagement/managedDevices"
/// bearer_token_file = "/run/secrets/graph-token"   # or bearer_token_env = "GRAPH_TOKEN"
/// interval = "5m"
/// timeout = "30s"      # per request; default 30s
/// max_pages = 1000     # default 1000
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawPullSource")]
pub struct PullSource {
    /// The first page; `http` or `https`.
    pub url: Uri,
    pub token: TokenSource,
    pub interval: Duration,
    /// Per request (one page), covering the connect, the headers and the whole body.
    pub timeout: Duration,
    pub max_pages: usize,
}

/// Where the bearer token comes from. It is read again before every fetch, so a token file
/// refreshed by another process is picked up without a reload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenSource {
    None,
    /// A file holding the token (surrounding whitespace is ignored). A relative path is taken
    /// as is; the config layer resolves it against the config file's directory.
    File(PathBuf),
    Env(String),
}

impl TokenSource {
    /// The current token, if any.
    pub fn read(&self) -> Result<Option<String>, PullError> {
        let token = match self {
            TokenSource::None => return Ok(None),
            TokenSource::File(path) => std::fs::read_to_string(path).map_err(|e| {
                PullError::Token(format!(
                    "cannot read bearer_token_file {}: {e}",
                    path.display()
                ))
            })?,
            TokenSource::Env(name) => std::env::var(name)
                .map_err(|e| PullError::Token(format!("bearer_token_env {name}: {e}")))?,
        };
        let token = token.trim();
        if token.is_empty() {
            return Err(PullError::Token(format!("{self} is empty")));
        }
        Ok(Some(token.to_string()))
    }
}

impl std::fmt::Display for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenSource::None => f.write_str("no token"),
            TokenSource::File(p) => write!(f, "bearer_token_file {}", p.display()),
            TokenSource::Env(n) => write!(f, "bearer_token_env {n}"),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPullSource {
    url: String,
    bearer_token_file: Option<PathBuf>,
    bearer_token_env: Option<String>,
    interval: String,
    timeout: Option<String>,
    max_pages: Option<usize>,
}

impl TryFrom<RawPullSource> for PullSource {
    type Error = String;

    fn try_from(raw: RawPullSource) -> Result<Self, String> {
        let url: Uri = raw
            .url
            .parse()
            .map_err(|e| format!("url {:?} is not a URL: {e}", raw.url))?;
        match url.scheme() {
            Some(s) if *s == Scheme::HTTP || *s == Scheme::HTTPS => {}
            _ => {
                return Err(format!(
                    "url {:?} must start with https:// or http://",
                    raw.url
                ))
            }
        }
        if url.host().is_none_or(str::is_empty) {
            return Err(format!("url {:?} has no host", raw.url));
        }
        let token = match (raw.bearer_token_file, raw.bearer_token_env) {
            (Some(_), Some(_)) => {
                return Err("set bearer_token_file or bearer_token_env, not both".into())
            }
            (Some(path), None) => TokenSource::File(path),
            (None, Some(name)) => TokenSource::Env(name),
            (None, None) => TokenSource::None,
        };
        let interval = parse_duration(&raw.interval).map_err(|e| format!("interval: {e}"))?;
        if interval.is_zero() {
            return Err("interval must be more than 0".into());
        }
        let timeout = match raw.timeout {
            Some(t) => parse_duration(&t).map_err(|e| format!("timeout: {e}"))?,
            None => Duration::from_secs(30),
        };
        if timeout.is_zero() {
            return Err("timeout must be more than 0".into());
        }
        let max_pages = raw.max_pages.unwrap_or(1000);
        if max_pages == 0 {
            return Err("max_pages must be at least 1".into());
        }
        Ok(PullSource {
            url,
            token,
            interval,
            timeout,
            max_pages,
        })
    }
}

/// Scheme, host and port of a URL, with the default port filled in, for same-origin checks.
pub(crate) fn origin(uri: &Uri) -> Option<(Scheme, String, u16)> {
    let scheme = uri.scheme()?.clone();
    let authority: &Authority = uri.authority()?;
    let port = match authority.port_u16() {
        Some(p) => p,
        None if scheme == Scheme::HTTPS => 443,
        None if scheme == Scheme::HTTP => 80,
        None => return None,
    };
    Some((scheme, authority.host().to_ascii_lowercase(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(toml_text: &str, expected: Result<(&str, TokenSource, u64, u64, usize), &str>) {
        let got = toml::from_str::<PullSource>(toml_text);
        match (got, expected) {
            (Ok(s), Ok((url, token, interval_s, timeout_s, pages))) => {
                assert_eq!(s.url.to_string(), url, "{toml_text}");
                assert_eq!(s.token, token, "{toml_text}");
                assert_eq!(s.interval, Duration::from_secs(interval_s), "{toml_text}");
                assert_eq!(s.timeout, Duration::from_secs(timeout_s), "{toml_text}");
                assert_eq!(s.max_pages, pages, "{toml_text}");
            }
            (Err(e), Err(part)) => assert!(e.to_string().contains(part), "{toml_text}: {e}"),
            (got, want) => panic!("{toml_text}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn config_keys_defaults_and_errors() {
        let g = "https://graph.example/v1.0/deviceManagement/managedDevices";
        check(
            &format!("url = \"{g}\"\ninterval = \"5m\"\nbearer_token_env = \"T\""),
            Ok((g, TokenSource::Env("T".into()), 300, 30, 1000)),
        );
        check(
            "url = \"http://127.0.0.1:8080/m\"\ninterval = \"10s\"\ntimeout = \"2s\"\nmax_pages = 3\nbearer_token_file = \"/run/t\"",
            Ok(("http://127.0.0.1:8080/m", TokenSource::File("/run/t".into()), 10, 2, 3)),
        );
        check(
            "url = \"https://x/m\"\ninterval = \"5m\"\ncolour = 1",
            Err("unknown field `colour`"),
        );
        check("url = \"https://x/m\"", Err("missing field `interval`"));
        check(
            "url = \"ftp://x/m\"\ninterval = \"5m\"",
            Err("must start with https://"),
        );
        check(
            "url = \"/m\"\ninterval = \"5m\"",
            Err("must start with https://"),
        );
        check(
            "url = \"https://x/m\"\ninterval = \"5\"",
            Err("interval: \"5\" has no unit"),
        );
        check(
            "url = \"https://x/m\"\ninterval = \"0s\"",
            Err("interval must be more than 0"),
        );
        check(
            "url = \"https://x/m\"\ninterval = \"1m\"\ntimeout = \"0ms\"",
            Err("timeout must be"),
        );
        check(
            "url = \"https://x/m\"\ninterval = \"1m\"\nmax_pages = 0",
            Err("max_pages must be"),
        );
        check(
            "url = \"https://x/m\"\ninterval = \"1m\"\nbearer_token_env = \"A\"\nbearer_token_file = \"b\"",
            Err("not both"),
        );
    }

    #[test]
    fn origins_fill_default_ports() {
        let o = |u: &str| origin(&u.parse().unwrap());
        assert_eq!(
            o("https://Graph.example/a"),
            o("https://graph.example:443/b?c")
        );
        assert_ne!(o("https://graph.example/a"), o("http://graph.example/a"));
        assert_ne!(o("http://127.0.0.1:1/a"), o("http://127.0.0.1:2/a"));
        assert_eq!(o("/relative"), None);
    }
}
