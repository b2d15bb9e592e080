//! Routing: pick the route for a request by Host and path prefix.

use http::uri::Authority;
use http::HeaderValue;

use crate::config::{HostHeader, RouteConfig, Unprotected, Upstream};
use crate::ids::AppId;

/// A route ready for the hot path: the upstream pre-parsed, the Host value pre-built.
#[derive(Debug)]
pub struct Route {
    pub name: String,
    pub host: Option<String>,
    pub path_prefix: String,
    pub upstream: Upstream,
    pub app_id: AppId,
    pub unprotected: Unprotected,
    /// The Host header to send upstream; `None` keeps the client's.
    pub host_header: Option<HeaderValue>,
}

/// Routes in match order: exact hosts before wildcards before any-host, longer path prefixes
/// first. The first match wins.
#[derive(Debug, Default)]
pub struct RouteTable {
    routes: Vec<Route>,
}

impl RouteTable {
    pub fn new(configs: &[RouteConfig]) -> Self {
        let mut routes: Vec<Route> = configs
            .iter()
            .map(|c| Route {
                name: c.name.clone(),
                host: c.host.clone(),
                path_prefix: c.path_prefix.clone(),
                upstream: c.upstream.clone(),
                app_id: c.app_id,
                unprotected: c.unprotected,
                host_header: match &c.host_header {
                    HostHeader::Preserve => None,
                    HostHeader::Upstream => authority_value(&c.upstream.authority),
                    HostHeader::Fixed(v) => Some(v.clone()),
                },
            })
            .collect();
        routes.sort_by_key(|r| {
            let host_rank = match &r.host {
                Some(h) if h.starts_with("*.") => 1,
                Some(_) => 0,
                None => 2,
            };
            (host_rank, std::cmp::Reverse(r.path_prefix.len()))
        });
        Self { routes }
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The route for `host` (port already removed or not: it is ignored) and `path`.
    pub fn find(&self, host: Option<&str>, path: &str) -> Option<&Route> {
        let host = host.map(strip_port);
        self.routes.iter().find(|r| {
            path_matches(&r.path_prefix, path)
                && match (&r.host, host) {
                    (None, _) => true,
                    (Some(_), None) => false,
                    (Some(want), Some(got)) => host_matches(want, got),
                }
        })
    }
}

fn authority_value(a: &Authority) -> Option<HeaderValue> {
    HeaderValue::from_str(a.as_str()).ok()
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        // [::1]:8080
        return host.find(']').map_or(host, |i| &host[..=i]);
    }
    match host.rfind(':') {
        Some(i) if host[i + 1..].bytes().all(|b| b.is_ascii_digit()) => &host[..i],
        _ => host,
    }
}

fn host_matches(want: &str, got: &str) -> bool {
    let got = got.strip_suffix('.').unwrap_or(got);
    match want.strip_prefix("*.") {
        Some(suffix) => {
            got.len() > suffix.len() + 1
                && got.as_bytes()[got.len() - suffix.len() - 1] == b'.'
                && got[got.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
        }
        None => got.eq_ignore_ascii_case(want),
    }
}

/// `/sites` matches `/sites`, `/sites/` and `/sites/x`, not `/sitesx`.
fn path_matches(prefix: &str, path: &str) -> bool {
    if prefix == "/" {
        return true;
    }
    let prefix = prefix.strip_suffix('/').unwrap_or(prefix);
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/') || rest.starts_with('?'))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::Config;

    fn table() -> RouteTable {
        let text = r#"
[[listener]]
addr = "127.0.0.1:0"
[[route]]
name = "any"
upstream = "http://127.0.0.1:1"
app_id = "00000003-0000-0ff1-ce00-000000000000"
[[route]]
name = "sp-api"
host = "sharepoint.localhost"
path_prefix = "/_api/"
upstream = "http://127.0.0.1:2"
app_id = "00000003-0000-0ff1-ce00-000000000000"
[[route]]
name = "sp"
host = "sharepoint.localhost"
upstream = "http://127.0.0.1:3"
app_id = "00000003-0000-0ff1-ce00-000000000000"
host_header = "upstream"
[[route]]
name = "wild"
host = "*.example.com"
upstream = "http://127.0.0.1:4"
app_id = "00000002-0000-0ff1-ce00-000000000000"
"#;
        RouteTable::new(&Config::parse(text, Path::new("t.toml")).unwrap().routes)
    }

    fn check(host: Option<&str>, path: &str, expected: &str) {
        let t = table();
        let got = t.find(host, path).map_or("none", |r| r.name.as_str());
        assert_eq!(got, expected, "{host:?} {path}");
    }

    #[test]
    fn routes_by_host_then_longest_prefix() {
        check(Some("sharepoint.localhost"), "/_api/web/lists", "sp-api");
        check(Some("SharePoint.Localhost:8080"), "/_api", "sp-api");
        check(Some("sharepoint.localhost"), "/_apix", "sp");
        check(Some("sharepoint.localhost"), "/sites/x/", "sp");
        check(Some("mail.example.com"), "/owa/", "wild");
        check(Some("example.com"), "/", "any");
        check(Some("evil-example.com"), "/", "any");
        check(None, "/", "any");
        check(Some("[::1]:8080"), "/", "any");
    }

    #[test]
    fn host_header_rewrite_is_prebuilt() {
        let t = table();
        let sp = t.routes().iter().find(|r| r.name == "sp").unwrap();
        assert_eq!(sp.host_header.as_ref().unwrap(), "127.0.0.1:3");
    }
}
