//! The request path, as named stages: identify -> decide -> forward or deny -> record.
//! `Gateway::handle` is the whole lifecycle of one request; each stage is its own function.

use std::net::SocketAddr;
use std::sync::Arc;

use http::header::{self, HeaderValue};
use http::{Request, Response, Uri, Version};
use hyper::body::Incoming;

use super::body::ProxyBody;
use super::headers::{add_forwarded, remove_hop_by_hop, RequestIds, X_REQUEST_ID};
use super::respond::{render, wants_html, Refusal};
use super::route::{Route, RouteTable};
use super::upstream::{classify, UpstreamClient};
use crate::config::Limits;

/// What the gateway knows about a client connection.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    pub listener: Arc<str>,
    pub tls: bool,
}

/// Everything a request needs, shared by all connections.
pub struct Gateway {
    routes: RouteTable,
    client: UpstreamClient,
    limits: Limits,
    ids: RequestIds,
}

impl Gateway {
    pub fn new(routes: RouteTable, client: UpstreamClient, limits: Limits) -> Self {
        Self {
            routes,
            client,
            limits,
            ids: RequestIds::new(),
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// One request, start to finish. Never fails: every problem becomes a response.
    pub async fn handle(&self, mut req: Request<Incoming>, conn: &ConnInfo) -> Response<ProxyBody> {
        let request_id = self.ids.for_request(req.headers());
        sanitize(&mut req);
        let html = wants_html(req.headers());
        let Some(route) = self.routes.find(request_host(&req), req.uri().path()) else {
            return render(&Refusal::NoRoute, &request_id, html);
        };
        match self.forward(req, route, conn, &request_id).await {
            Ok(resp) => resp,
            Err(refusal) => render(&refusal, &request_id, html),
        }
    }

    /// Stage "forward": rewrite the request for the upstream, send it, stream the answer back.
    async fn forward(
        &self,
        mut req: Request<Incoming>,
        route: &Route,
        conn: &ConnInfo,
        request_id: &HeaderValue,
    ) -> Result<Response<ProxyBody>, Refusal> {
        let original_host = req.headers().get(header::HOST).cloned().or_else(|| {
            req.uri()
                .authority()
                .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        });
        let path_and_query = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
        let uri = Uri::builder()
            .scheme(route.upstream.scheme.clone())
            .authority(route.upstream.authority.clone())
            .path_and_query(path_and_query)
            .build()
            .map_err(|_| Refusal::UpstreamFailed)?;
        *req.uri_mut() = uri;
        *req.version_mut() = Version::HTTP_11;

        let headers = req.headers_mut();
        remove_hop_by_hop(headers);
        add_forwarded(headers, conn.peer.ip(), conn.tls, original_host.as_ref());
        headers.insert(X_REQUEST_ID.clone(), request_id.clone());
        match (&route.host_header, original_host) {
            (Some(fixed), _) => {
                headers.insert(header::HOST, fixed.clone());
            }
            (None, Some(host)) => {
                headers.insert(header::HOST, host);
            }
            (None, None) => {}
        }

        let sent = tokio::time::timeout(
            self.limits.upstream_response_timeout,
            self.client.request(req),
        );
        let resp = match sent.await {
            Err(_elapsed) => return Err(Refusal::UpstreamTimeout),
            Ok(Err(e)) => {
                tracing::warn!(route = %route.name, upstream = %route.upstream.url, error = %e, "upstream request failed");
                return Err(classify(&e));
            }
            Ok(Ok(resp)) => resp,
        };
        let (mut parts, body) = resp.into_parts();
        remove_hop_by_hop(&mut parts.headers);
        parts
            .headers
            .insert(X_REQUEST_ID.clone(), request_id.clone());
        Ok(Response::from_parts(parts, ProxyBody::Upstream(body)))
    }
}

/// The Host a request is for: the `Host` header (HTTP/1.1) or the URI authority (HTTP/2).
fn request_host<B>(req: &Request<B>) -> Option<&str> {
    req.headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
}

/// Stage "sanitize": identity headers a client sent are removed before anything reads them.
fn sanitize<B>(req: &mut Request<B>) {
    let headers = req.headers_mut();
    let spoofed: Vec<_> = headers
        .keys()
        .filter(|k| k.as_str().starts_with("x-portcullis-"))
        .cloned()
        .collect();
    for name in spoofed {
        headers.remove(name);
    }
}
