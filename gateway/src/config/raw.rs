//! The TOML shapes as serde sees them, and their validation into `Config`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use http::uri::Scheme;
use http::{HeaderValue, Uri};
use serde::Deserialize;
use toml::Spanned;

use super::identity::IdentityConfig;
use super::sources::SourcesConfig;
use super::{
    parse_duration, AdminConfig, ClientAuth, Config, ConfigError, ConfigErrors, DecisionLogConfig,
    HostHeader, Limits, ListenerConfig, RouteConfig, TlsConfig, Unprotected, Upstream,
};
use crate::ids::AppId;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default, rename = "listener")]
    listeners: Vec<RawListener>,
    #[serde(default, rename = "route")]
    routes: Vec<RawRoute>,
    #[serde(default)]
    limits: RawLimits,
    admin: Option<RawAdmin>,
    #[serde(default)]
    identity: IdentityConfig,
    sources: Option<SourcesConfig>,
    #[serde(default)]
    decision_log: RawDecisionLog,
    #[serde(default)]
    trusted_proxies: Vec<ipnet::IpNet>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawListener {
    name: Option<String>,
    addr: Spanned<String>,
    tls: Option<RawTls>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert: String,
    key: String,
    client_auth: Option<Spanned<String>>,
    client_ca: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    name: Option<String>,
    host: Option<Spanned<String>>,
    path_prefix: Option<Spanned<String>>,
    upstream: Spanned<String>,
    app_id: Spanned<String>,
    host_header: Option<Spanned<String>>,
    unprotected: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    header_read_timeout: Option<Spanned<String>>,
    idle_timeout: Option<Spanned<String>>,
    tls_handshake_timeout: Option<Spanned<String>>,
    max_header_bytes: Option<Spanned<i64>>,
    max_connections: Option<Spanned<i64>>,
    upstream_connect_timeout: Option<Spanned<String>>,
    upstream_response_timeout: Option<Spanned<String>>,
    upstream_idle_timeout: Option<Spanned<String>>,
    upstream_max_idle_per_host: Option<Spanned<i64>>,
    shutdown_grace: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAdmin {
    addr: Option<Spanned<String>>,
    token_file: Option<String>,
    token_env: Option<String>,
    journal: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDecisionLog {
    path: Option<String>,
    allow_sample_rate: Option<Spanned<f64>>,
}

/// Collects errors so that one run reports every problem in the file.
struct Checker<'a> {
    text: &'a str,
    path: &'a Path,
    errors: Vec<ConfigError>,
}

impl Checker<'_> {
    fn fail<T>(&mut self, key: &str, span: std::ops::Range<usize>, message: String) -> Option<T> {
        self.errors
            .push(ConfigError::new(self.path, key, message).at(self.text, span));
        None
    }

    fn duration(
        &mut self,
        key: &str,
        value: &Option<Spanned<String>>,
        default: Duration,
    ) -> Duration {
        let Some(v) = value else { return default };
        match parse_duration(v.get_ref()) {
            Ok(d) if !d.is_zero() => d,
            Ok(_) => self
                .fail(key, v.span(), "must be longer than zero".into())
                .unwrap_or(default),
            Err(e) => self.fail(key, v.span(), e).unwrap_or(default),
        }
    }

    fn count(&mut self, key: &str, value: &Option<Spanned<i64>>, default: usize) -> usize {
        let Some(v) = value else { return default };
        match usize::try_from(*v.get_ref()) {
            Ok(n) if n > 0 => n,
            _ => self
                .fail(
                    key,
                    v.span(),
                    format!("must be a positive number, not {}", v.get_ref()),
                )
                .unwrap_or(default),
        }
    }
}

pub(super) fn parse(text: &str, path: &Path) -> Result<Config, ConfigErrors> {
    let raw: RawConfig = toml::from_str(text).map_err(|e| {
        let mut err = ConfigError::new(path, "", e.message().to_string());
        if let Some(span) = e.span() {
            err = err.at(text, span);
        }
        ConfigErrors(vec![err])
    })?;
    let mut c = Checker {
        text,
        path,
        errors: Vec::new(),
    };

    let listeners: Vec<ListenerConfig> = raw
        .listeners
        .iter()
        .enumerate()
        .filter_map(|(i, l)| listener(&mut c, i, l))
        .collect();
    if raw.listeners.is_empty() {
        c.errors.push(ConfigError::new(
            path,
            "listener",
            "no [[listener]]: add one, e.g. [[listener]] addr = \"127.0.0.1:8080\"",
        ));
    }
    let routes: Vec<RouteConfig> = raw
        .routes
        .iter()
        .enumerate()
        .filter_map(|(i, r)| route(&mut c, i, r))
        .collect();
    if raw.routes.is_empty() {
        c.errors.push(ConfigError::new(
            path,
            "route",
            "no [[route]]: add one with upstream and app_id",
        ));
    }

    let l = &raw.limits;
    let d = Limits::default();
    let limits = Limits {
        header_read_timeout: c.duration(
            "limits.header_read_timeout",
            &l.header_read_timeout,
            d.header_read_timeout,
        ),
        idle_timeout: c.duration("limits.idle_timeout", &l.idle_timeout, d.idle_timeout),
        tls_handshake_timeout: c.duration(
            "limits.tls_handshake_timeout",
            &l.tls_handshake_timeout,
            d.tls_handshake_timeout,
        ),
        max_header_bytes: c.count(
            "limits.max_header_bytes",
            &l.max_header_bytes,
            d.max_header_bytes,
        ),
        max_connections: c.count(
            "limits.max_connections",
            &l.max_connections,
            d.max_connections,
        ),
        upstream_connect_timeout: c.duration(
            "limits.upstream_connect_timeout",
            &l.upstream_connect_timeout,
            d.upstream_connect_timeout,
        ),
        upstream_response_timeout: c.duration(
            "limits.upstream_response_timeout",
            &l.upstream_response_timeout,
            d.upstream_response_timeout,
        ),
        upstream_idle_timeout: c.duration(
            "limits.upstream_idle_timeout",
            &l.upstream_idle_timeout,
            d.upstream_idle_timeout,
        ),
        upstream_max_idle_per_host: c.count(
            "limits.upstream_max_idle_per_host",
            &l.upstream_max_idle_per_host,
            d.upstream_max_idle_per_host,
        ),
        shutdown_grace: c.duration("limits.shutdown_grace", &l.shutdown_grace, d.shutdown_grace),
    };
    if limits.max_header_bytes < 8192 {
        let span = l.max_header_bytes.as_ref().map_or(0..0, |v| v.span());
        c.fail::<()>(
            "limits.max_header_bytes",
            span,
            "must be at least 8192 (hyper's minimum buffer)".into(),
        );
    }

    if let Some(s) = &raw.sources {
        if s.pull.defender_machines.is_some() && s.defender_machines.is_none() {
            c.fail::<()>(
                "sources.pull.defender_machines",
                0..0,
                "needs `sources.defender_machines`: the file each pull is written to".into(),
            );
        }
    }
    let admin = raw.admin.as_ref().and_then(|a| admin(&mut c, a));
    let decision_log = decision_log(&mut c, &raw.decision_log);

    if !c.errors.is_empty() {
        return Err(ConfigErrors(c.errors));
    }
    let base_dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    Ok(Config {
        path: path.to_path_buf(),
        base_dir,
        listeners,
        routes,
        limits,
        admin,
        identity: raw.identity,
        sources: raw.sources,
        decision_log,
        trusted_proxies: raw.trusted_proxies,
    })
}

fn socket_addr(c: &mut Checker<'_>, key: &str, value: &Spanned<String>) -> Option<SocketAddr> {
    match value.get_ref().parse() {
        Ok(a) => Some(a),
        Err(_) => c.fail(
            key,
            value.span(),
            format!(
                "{:?} is not an address such as \"127.0.0.1:8080\" or \"[::1]:8443\"",
                value.get_ref()
            ),
        ),
    }
}

fn listener(c: &mut Checker<'_>, i: usize, l: &RawListener) -> Option<ListenerConfig> {
    let addr = socket_addr(c, &format!("listener[{i}].addr"), &l.addr)?;
    let tls = match &l.tls {
        None => None,
        Some(t) => {
            let client_auth = match t
                .client_auth
                .as_ref()
                .map(|s| (s.get_ref().as_str(), s.span()))
            {
                None | Some(("off", _)) => ClientAuth::Off,
                Some(("optional", _)) => ClientAuth::Optional,
                Some(("required", _)) => ClientAuth::Required,
                Some((other, span)) => {
                    return c.fail(
                        &format!("listener[{i}].tls.client_auth"),
                        span,
                        format!("{other:?} is not one of \"off\", \"optional\", \"required\""),
                    )
                }
            };
            if client_auth != ClientAuth::Off && t.client_ca.is_none() {
                let span = t.client_auth.as_ref().map_or(0..0, |s| s.span());
                return c.fail(
                    &format!("listener[{i}].tls.client_ca"),
                    span,
                    "client_auth needs client_ca: the PEM file of the device CA".into(),
                );
            }
            Some(TlsConfig {
                cert: PathBuf::from(&t.cert),
                key: PathBuf::from(&t.key),
                client_auth,
                client_ca: t.client_ca.as_ref().map(PathBuf::from),
            })
        }
    };
    Some(ListenerConfig {
        name: l.name.clone().unwrap_or_else(|| format!("listener{i}")),
        addr,
        tls,
    })
}

fn route(c: &mut Checker<'_>, i: usize, r: &RawRoute) -> Option<RouteConfig> {
    let key = |k: &str| format!("route[{i}].{k}");
    let app_id = match AppId::parse(r.app_id.get_ref()) {
        Ok(id) => id,
        Err(e) => return c.fail(&key("app_id"), r.app_id.span(), format!("{e} (app ids are GUIDs, e.g. SharePoint Online's 00000003-0000-0ff1-ce00-000000000000)")),
    };
    let upstream = upstream(c, &key("upstream"), &r.upstream)?;
    let host = match &r.host {
        None => None,
        Some(h) => {
            let host = h.get_ref().trim().to_ascii_lowercase();
            let bare = host.strip_prefix("*.").unwrap_or(&host);
            if bare.is_empty() || bare.contains(['/', ' ', ':', '*']) {
                return c.fail(
                    &key("host"),
                    h.span(),
                    format!(
                        "{:?} is not a host name (no port, scheme or path; `*.` may start it)",
                        h.get_ref()
                    ),
                );
            }
            Some(host)
        }
    };
    let path_prefix = match &r.path_prefix {
        None => "/".to_string(),
        Some(p) if p.get_ref().starts_with('/') => p.get_ref().clone(),
        Some(p) => {
            return c.fail(
                &key("path_prefix"),
                p.span(),
                format!("{:?} must start with /", p.get_ref()),
            )
        }
    };
    let host_header = match &r.host_header {
        None => HostHeader::Preserve,
        Some(h) => match h.get_ref().as_str() {
            "preserve" => HostHeader::Preserve,
            "upstream" => HostHeader::Upstream,
            other => match HeaderValue::from_str(other) {
                Ok(v) if !other.is_empty() => HostHeader::Fixed(v),
                _ => {
                    return c.fail(
                        &key("host_header"),
                        h.span(),
                        format!(
                            "{other:?} is not \"preserve\", \"upstream\" or a valid host value"
                        ),
                    )
                }
            },
        },
    };
    let unprotected = match r
        .unprotected
        .as_ref()
        .map(|u| (u.get_ref().as_str(), u.span()))
    {
        None | Some(("deny", _)) => Unprotected::Deny,
        Some(("allow", _)) => Unprotected::Allow,
        Some((other, span)) => {
            return c.fail(
                &key("unprotected"),
                span,
                format!("{other:?} is not \"deny\" or \"allow\""),
            )
        }
    };
    Some(RouteConfig {
        name: r.name.clone().unwrap_or_else(|| format!("route{i}")),
        host,
        path_prefix,
        upstream,
        app_id,
        host_header,
        unprotected,
    })
}

fn upstream(c: &mut Checker<'_>, key: &str, value: &Spanned<String>) -> Option<Upstream> {
    let text = value.get_ref();
    let bad = |why: &str| {
        format!("{text:?} is not an upstream URL such as \"http://127.0.0.1:9001\": {why}")
    };
    let uri: Uri = match text.parse() {
        Ok(u) => u,
        Err(e) => return c.fail(key, value.span(), bad(&e.to_string())),
    };
    let scheme = match uri.scheme() {
        Some(s) if *s == Scheme::HTTP || *s == Scheme::HTTPS => s.clone(),
        Some(s) => {
            return c.fail(
                key,
                value.span(),
                bad(&format!("scheme {s} is not http or https")),
            )
        }
        None => return c.fail(key, value.span(), bad("it has no scheme")),
    };
    let Some(authority) = uri.authority().cloned() else {
        return c.fail(key, value.span(), bad("it has no host"));
    };
    if uri.path() != "/" && !uri.path().is_empty() {
        return c.fail(key, value.span(), bad("an upstream is an origin; paths are passed through unchanged, so leave the path out"));
    }
    Some(Upstream {
        scheme,
        authority,
        url: text.clone(),
    })
}

fn admin(c: &mut Checker<'_>, a: &RawAdmin) -> Option<AdminConfig> {
    let addr = match &a.addr {
        None => SocketAddr::from(([127, 0, 0, 1], 9900)),
        Some(v) => socket_addr(c, "admin.addr", v)?,
    };
    let token = if let Some(file) = &a.token_file {
        let p = c.path.parent().unwrap_or(Path::new(".")).join(file);
        match std::fs::read_to_string(&p) {
            Ok(t) if !t.trim().is_empty() => Some(t.trim().to_string()),
            Ok(_) => {
                return c.fail(
                    "admin.token_file",
                    0..0,
                    format!("{} is empty", p.display()),
                )
            }
            Err(e) => {
                return c.fail(
                    "admin.token_file",
                    0..0,
                    format!("cannot read {}: {e}", p.display()),
                )
            }
        }
    } else if let Some(var) = &a.token_env {
        match std::env::var(var) {
            Ok(t) if !t.trim().is_empty() => Some(t.trim().to_string()),
            _ => {
                return c.fail(
                    "admin.token_env",
                    0..0,
                    format!("environment variable {var} is not set or empty"),
                )
            }
        }
    } else {
        None
    };
    Some(AdminConfig {
        addr,
        token,
        journal: a.journal.as_ref().map(PathBuf::from),
    })
}

fn decision_log(c: &mut Checker<'_>, d: &RawDecisionLog) -> DecisionLogConfig {
    let default = DecisionLogConfig::default();
    let allow_sample_rate = match &d.allow_sample_rate {
        None => default.allow_sample_rate,
        Some(r) if (0.0..=1.0).contains(r.get_ref()) => *r.get_ref(),
        Some(r) => c
            .fail(
                "decision_log.allow_sample_rate",
                r.span(),
                format!("{} is not between 0 and 1", r.get_ref()),
            )
            .unwrap_or(default.allow_sample_rate),
    };
    DecisionLogConfig {
        path: d.path.as_ref().map(PathBuf::from),
        allow_sample_rate,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[[listener]]
addr = "127.0.0.1:8080"

[[route]]
name = "sharepoint"
host = "SharePoint.localhost"
upstream = "http://127.0.0.1:9001"
app_id = "00000003-0000-0ff1-ce00-000000000000"
"#;

    /// Parses `text`; `expected` is `Ok(())` or a fragment of the error's display.
    fn check(text: &str, expected: Result<(), &str>) {
        let got = parse(text, Path::new("gw.toml"));
        match (got, expected) {
            (Ok(_), Ok(())) => {}
            (Err(e), Err(part)) => assert!(e.to_string().contains(part), "{e}\n  wanted: {part}"),
            (Ok(_), Err(part)) => panic!("parsed, but wanted error {part}"),
            (Err(e), Ok(())) => panic!("unexpected error: {e}"),
        }
    }

    #[test]
    fn good_config_with_defaults() {
        let c = parse(GOOD, Path::new("/etc/p/gw.toml")).unwrap();
        assert_eq!(c.base_dir, Path::new("/etc/p"));
        let r = &c.routes[0];
        assert_eq!(r.host.as_deref(), Some("sharepoint.localhost"));
        assert_eq!(r.path_prefix, "/");
        assert_eq!(r.unprotected, Unprotected::Deny);
        assert_eq!(r.host_header, HostHeader::Preserve);
        assert_eq!(c.limits.max_connections, 10_000);
        assert!(c.admin.is_none());
    }

    #[test]
    fn bad_values_name_line_and_key() {
        let cases: &[(&str, &str)] = &[
            (
                "addr = \"127.0.0.1:8080\"",
                "gw.toml:3:8: `listener[0].addr`: \"nonsense\" is not an address",
            ),
            (
                "upstream = \"http://127.0.0.1:9001\"",
                "`route[0].upstream`: \"ftp://x\" is not an upstream URL",
            ),
            (
                "app_id = \"00000003-0000-0ff1-ce00-000000000000\"",
                "gw.toml:9:10: `route[0].app_id`: not a GUID",
            ),
        ];
        let replacement = [
            "addr = \"nonsense\"",
            "upstream = \"ftp://x\"",
            "app_id = \"sharepoint\"",
        ];
        for ((from, want), to) in cases.iter().zip(replacement) {
            check(&GOOD.replace(from, to), Err(want));
        }
    }

    #[test]
    fn structural_errors() {
        check(
            &format!("{GOOD}\n[limits]\nidle_timeout = \"10\"\n"),
            Err("gw.toml:12:16: `limits.idle_timeout`: \"10\" has no unit"),
        );
        check(
            &format!("{GOOD}\n[limits]\nmax_conections = 5\n"),
            Err("gw.toml:12:1: unknown field `max_conections`"),
        );
        check(
            &format!("{GOOD}\n[limits]\nmax_connections = -5\n"),
            Err("`limits.max_connections`: must be a positive number"),
        );
        check("[[route]]\nupstream = \"http://a\"\napp_id = \"00000003-0000-0ff1-ce00-000000000000\"\n", Err("`listener`: no [[listener]]"));
        check("this is = not toml", Err("gw.toml:1:"));
        check(
            &GOOD.replace(
                "upstream = \"http://127.0.0.1:9001\"",
                "upstream = \"http://127.0.0.1:9001/app\"",
            ),
            Err("leave the path out"),
        );
        check(
            &GOOD.replace("host = \"SharePoint.localhost\"", "host = \"a.b:80\""),
            Err("`route[0].host`"),
        );
        check(
            &format!("{GOOD}\n[decision_log]\nallow_sample_rate = 2.0\n"),
            Err("not between 0 and 1"),
        );
        check(&GOOD.replace("addr = \"127.0.0.1:8080\"", "addr = \"127.0.0.1:8080\"\ntls = { cert = \"c\", key = \"k\", client_auth = \"required\" }"), Err("client_auth needs client_ca"));
    }

    #[test]
    fn reports_every_error_at_once() {
        let text = GOOD
            .replace("addr = \"127.0.0.1:8080\"", "addr = \"x\"")
            .replace(
                "app_id = \"00000003-0000-0ff1-ce00-000000000000\"",
                "app_id = \"y\"",
            );
        let e = parse(&text, Path::new("gw.toml")).unwrap_err();
        assert_eq!(e.0.len(), 2, "{e}");
    }
}
