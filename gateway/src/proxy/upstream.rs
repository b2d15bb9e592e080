//! Sending requests to upstreams: plain-HTTP upstreams through the purpose-built pool
//! (`pool`), HTTPS upstreams through the hyper-util client; the response-header timeout; and
//! how errors map to refusals.

use std::error::Error as _;
use std::pin::pin;
use std::time::Duration;

use http::header::{self, HeaderValue};
use http::uri::{PathAndQuery, Scheme};
use http::{Request, Response, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::added::{AddedHeaders, HOST};
use super::body::{ClientBody, ProxyBody};
use super::pool::{PoolSettings, Pools, SendError};
use super::respond::Refusal;
use super::response_timer::{ResponseTimer, TimedOut};
use crate::config::{Limits, Upstream};

/// The hyper-util client, used for HTTPS upstreams.
pub type LegacyClient = Client<HttpsConnector<HttpConnector>, ClientBody>;

/// What the gateway holds to reach upstreams (the old name, kept for `Gateway::new`).
pub type UpstreamClient = Upstreams;

/// Every way to an upstream: the plain-HTTP pool and the HTTPS client.
pub struct Upstreams {
    plain: Pools,
    tls: LegacyClient,
    response_timeout: Duration,
}

/// Builds the upstream side: the plain-HTTP pool and the HTTPS client, both with TCP_NODELAY,
/// the connect timeout and idle limits of `limits`.
pub fn client(limits: &Limits) -> Result<Upstreams, rustls::Error> {
    Ok(Upstreams {
        plain: Pools::new(PoolSettings {
            connect_timeout: limits.upstream_connect_timeout,
            idle_timeout: limits.upstream_idle_timeout,
            max_idle_per_host: limits.upstream_max_idle_per_host,
        }),
        tls: legacy_client(limits)?,
        response_timeout: limits.upstream_response_timeout,
    })
}

impl Upstreams {
    /// Sends `req` to `upstream` and returns the response head with its body streaming, or the
    /// refusal to answer with (502 unreachable / failed, 504 on connect or response-header
    /// timeout; logged here with the upstream URL).
    ///
    /// `req` is forwarded with its headers as the caller rewrote them plus `added`, except
    /// that its URI is set for the upstream (origin-form for a plain-HTTP upstream; the
    /// upstream's scheme and authority for HTTPS), and a missing `Host` becomes the upstream's
    /// authority. `added` is left empty once the request is written.
    pub async fn send(
        &self,
        upstream: &Upstream,
        mut req: Box<Request<ClientBody>>,
        added: &mut AddedHeaders,
        timer: &ResponseTimer,
    ) -> Result<Response<ProxyBody>, Refusal> {
        // For the log line of a failure (a cheap reference-counted copy).
        let request_id = added.get(&super::headers::X_REQUEST_ID).cloned();
        let id = || {
            request_id
                .as_ref()
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned()
        };
        if added.get(&HOST).is_none() && !req.headers().contains_key(header::HOST) {
            if let Ok(host) = HeaderValue::from_str(upstream.authority.as_str()) {
                added.set(&HOST, host);
            }
        }
        if upstream.scheme == Scheme::HTTP {
            origin_form(req.uri_mut());
            let pool = self.plain.host(&upstream.authority);
            let send = pin!(pool.send_adding(req, added));
            match timer.run(self.response_timeout, send).await {
                Err(TimedOut) => {
                    tracing::warn!(request_id = %id(), upstream = %upstream.url, "upstream response headers timed out");
                    Err(Refusal::UpstreamTimeout)
                }
                Ok(Ok(resp)) => Ok(resp.map(ProxyBody::Pooled)),
                Ok(Err(e)) => {
                    tracing::warn!(request_id = %id(), upstream = %upstream.url, error = %e, "upstream request failed");
                    Err(classify_pool(&e))
                }
            }
        } else {
            let pq = req.uri().path_and_query().cloned();
            let uri = Uri::builder()
                .scheme(upstream.scheme.clone())
                .authority(upstream.authority.clone())
                .path_and_query(pq.unwrap_or_else(|| PathAndQuery::from_static("/")))
                .build()
                .map_err(|_| Refusal::UpstreamFailed)?;
            *req.uri_mut() = uri;
            added.apply(req.headers_mut());
            added.clear();
            let send = pin!(self.tls.request(*req));
            match timer.run(self.response_timeout, send).await {
                Err(TimedOut) => {
                    tracing::warn!(request_id = %id(), upstream = %upstream.url, "upstream response headers timed out");
                    Err(Refusal::UpstreamTimeout)
                }
                Ok(Ok(resp)) => Ok(resp.map(ProxyBody::Upstream)),
                Ok(Err(e)) => {
                    tracing::warn!(request_id = %id(), upstream = %upstream.url, error = %e, "upstream request failed");
                    Err(classify(&e))
                }
            }
        }
    }
}

/// Makes `uri` origin-form (`/path?query`), as HTTP/1.1 sends it to an origin server. A URI
/// from an HTTP/1.1 client already is; HTTP/2 requests carry scheme and authority.
fn origin_form(uri: &mut Uri) {
    if uri.scheme().is_none() && uri.authority().is_none() {
        return;
    }
    *uri = match uri.path_and_query() {
        Some(pq) if pq.as_str() != "/" => {
            let mut parts = http::uri::Parts::default();
            parts.path_and_query = Some(pq.clone());
            Uri::from_parts(parts).unwrap_or_default()
        }
        _ => Uri::default(),
    };
}

/// A pool error as a refusal: connect refused or failed is `UpstreamUnreachable`, connect
/// timed out is `UpstreamTimeout`, anything after the connect is `UpstreamFailed`.
fn classify_pool(err: &SendError) -> Refusal {
    match err {
        SendError::ConnectTimeout { .. } => Refusal::UpstreamTimeout,
        SendError::Connect { source, .. } if source.kind() == std::io::ErrorKind::TimedOut => {
            Refusal::UpstreamTimeout
        }
        SendError::Connect { .. } => Refusal::UpstreamUnreachable,
        SendError::Request { .. } => Refusal::UpstreamFailed,
    }
}

/// Builds the HTTPS client: TCP_NODELAY, connect timeout, idle pool sized by the limits,
/// upstreams verified against the web PKI roots.
fn legacy_client(limits: &Limits) -> Result<LegacyClient, rustls::Error> {
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
