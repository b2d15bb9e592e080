//! The pooled keep-alive client to upstreams, and how its errors map to refusals.

use std::error::Error as _;

use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::respond::Refusal;
use crate::config::Limits;

pub type UpstreamClient = Client<HttpsConnector<HttpConnector>, Incoming>;

/// Builds the shared client: TCP_NODELAY, connect timeout, idle pool sized by the limits,
/// HTTPS upstreams verified against the web PKI roots.
pub fn client(limits: &Limits) -> Result<UpstreamClient, rustls::Error> {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    http.set_connect_timeout(Some(limits.upstream_connect_timeout));
    http.enforce_http(false);
    http.set_keepalive(Some(std::time::Duration::from_secs(60)));

    let provider = rustls::crypto::ring::default_provider();
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_webpki_roots(provider)?
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(limits.upstream_idle_timeout)
        .pool_max_idle_per_host(limits.upstream_max_idle_per_host)
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .build(https))
}

/// Classifies a client error: a refused or failed connect is `UpstreamUnreachable`, a connect
/// that timed out is `UpstreamTimeout`, anything later is `UpstreamFailed`.
pub fn classify(err: &hyper_util::client::legacy::Error) -> Refusal {
    let timed_out = {
        let mut source = err.source();
        let mut found = false;
        while let Some(e) = source {
            if let Some(io) = e.downcast_ref::<std::io::Error>() {
                if io.kind() == std::io::ErrorKind::TimedOut {
                    found = true;
                    break;
                }
            }
            source = e.source();
        }
        found
    };
    if timed_out {
        Refusal::UpstreamTimeout
    } else if err.is_connect() {
        Refusal::UpstreamUnreachable
    } else {
        Refusal::UpstreamFailed
    }
}
