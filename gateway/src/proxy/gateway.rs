//! The request path, as named stages: identify -> decide -> forward or deny -> record.
//! `Gateway::handle` is the whole lifecycle of one request; each stage is its own function.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode, Version};
use ipnet::IpNet;

use super::added::{self, AddedHeaders};
use super::body::{ClientBody, ProxyBody};
use super::guid_headers::{GuidHeaders, Slot};
use super::headers::{
    add_forwarded, remove_hop_by_hop, NumberHeader, RequestIds, X_FORWARDED_FOR, X_REQUEST_ID,
};
use super::policy_counters::PolicyCounters;
use super::respond::{render, wants_html, Refusal};
use super::response_timer::ResponseTimer;
use super::revocable::{fail_closed_if_stale, request_facts, Grant, Revocable};
use super::route::{Route, RouteTable};
use super::upgrade;
use super::upstream::UpstreamClient;
use crate::access::{self, platform_from_user_agent, ClientAppType, DecisionLogEntry, LogContext};
use crate::clock::UnixMillis;
use crate::config::Limits;
use crate::decision_log::DecisionLog;
use crate::identity::{www_authenticate, Authenticator, IdentityFailure, TokenMemo};
use crate::ids::{DeviceId, UserId};
use crate::metrics::Metrics;
use crate::model::ComplianceState;
use crate::reason::ReasonCode;
use crate::snapshot::SnapshotStore;

/// What the gateway knows about a client connection.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    pub listener: Arc<str>,
    pub tls: bool,
    /// The device named by the client certificate (mTLS), read once per connection.
    pub cert_device: Option<DeviceId>,
    /// Why the client certificate could not name a device, when it could not.
    pub cert_error: Option<IdentityFailure>,
    /// The connection's last token and its identity (keep-alive clients repeat it).
    pub token_memo: TokenMemo,
    /// The connection's last user and device GUIDs as header values.
    pub guid_headers: GuidHeaders,
    /// The connection's upstream response-header deadline, moved forward by each request.
    pub response_timer: ResponseTimer,
}

/// Everything a request needs, shared by all connections.
pub struct Gateway {
    routes: RouteTable,
    client: UpstreamClient,
    limits: Limits,
    ids: RequestIds,
    version_header: NumberHeader,
    metrics: Arc<Metrics>,
    unrouted: prometheus::IntCounter,
    policy_counters: PolicyCounters,
    store: Arc<SnapshotStore>,
    auth: Arc<Authenticator>,
    log: Arc<DecisionLog>,
    trusted_proxies: Vec<IpNet>,
}

/// The shared parts a `Gateway` is built from.
pub struct GatewayParts {
    pub routes: RouteTable,
    pub client: UpstreamClient,
    pub limits: Limits,
    pub metrics: Arc<Metrics>,
    pub store: Arc<SnapshotStore>,
    pub auth: Arc<Authenticator>,
    pub log: Arc<DecisionLog>,
    pub trusted_proxies: Vec<IpNet>,
}

/// What the decide stage hands to the forward stage.
struct Admitted {
    user: Option<UserId>,
    device: Option<DeviceId>,
    state: Option<ComplianceState>,
    snapshot_version: u64,
    /// Set when a policy let the request through: the response is then watched and cut if
    /// the same request would be refused later (continuous evaluation).
    grant: Option<Grant>,
}

impl Gateway {
    pub fn new(parts: GatewayParts) -> Self {
        Self {
            routes: parts.routes,
            client: parts.client,
            limits: parts.limits,
            ids: RequestIds::new(),
            version_header: NumberHeader::new(),
            unrouted: parts.metrics.unrouted(),
            policy_counters: PolicyCounters::new(parts.metrics.policy_results.clone()),
            metrics: parts.metrics,
            store: parts.store,
            auth: parts.auth,
            log: parts.log,
            trusted_proxies: parts.trusted_proxies,
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    pub fn authenticator(&self) -> &Arc<Authenticator> {
        &self.auth
    }

    /// One request, start to finish. Never fails: every problem becomes a response.
    ///
    /// The request is boxed: it passes down four nested futures (this one, `forward`, the
    /// upstream send, the pool), each of which would otherwise keep its own copy of it.
    pub async fn handle(
        &self,
        mut req: Box<Request<ClientBody>>,
        conn: &ConnInfo,
    ) -> Response<ProxyBody> {
        let request_id = self.ids.for_request(req.headers());
        // Stage "sanitize": identity headers from the client go before anything reads them.
        self.auth
            .strip_identity_headers(req.headers_mut(), conn.peer.ip());
        let html = wants_html(req.headers());
        let Some(route) = self.routes.find(request_host(&req), req.uri().path()) else {
            self.unrouted.inc();
            return render(&Refusal::NoRoute, &request_id, html);
        };
        let started = std::time::Instant::now();
        let admitted = match self.decide(&req, route, conn, &request_id) {
            Ok(a) => a,
            Err(refusal) => {
                route.metrics.duration(started.elapsed());
                return render(&refusal, &request_id, html);
            }
        };
        let mut added = AddedHeaders::new();
        let version = self.version_header.get(admitted.snapshot_version);
        set_identity_headers(&mut added, &admitted, conn, &request_id, version);
        let upgrade = upgrade::requested(&req);
        let client_upgrade = upgrade.as_ref().map(|_| hyper::upgrade::on(&mut *req));
        let resp = match self
            .forward(req, &mut added, route, conn, &request_id, upgrade.as_ref())
            .await
        {
            Ok(mut resp) => {
                route.metrics.upstream_duration(started.elapsed());
                match (upgrade, client_upgrade) {
                    (Some(u), Some(client)) if resp.status() == StatusCode::SWITCHING_PROTOCOLS => {
                        upgrade::restore(resp.headers_mut(), &u);
                        let (parts, body) = resp.into_parts();
                        let mut resp = Response::from_parts(parts, ProxyBody::empty());
                        let upstream = match body {
                            ProxyBody::Pooled(pooled) => {
                                pooled.into_upgraded().map(|(io, already_read)| {
                                    upgrade::Upstream::Plain(io, already_read)
                                })
                            }
                            _ => Some(upgrade::Upstream::Hyper(hyper::upgrade::on(&mut resp))),
                        };
                        if let Some(upstream) = upstream {
                            upgrade::spawn_tunnel(client, upstream, admitted.grant);
                        }
                        resp
                    }
                    _ => match admitted.grant {
                        Some(grant) => resp.map(|body| {
                            ProxyBody::Revocable(Box::new(Revocable::new(body, grant)))
                        }),
                        None => resp,
                    },
                }
            }
            Err(refusal) => {
                route.metrics.upstream_error(match refusal {
                    Refusal::UpstreamTimeout => "timeout",
                    Refusal::UpstreamUnreachable => "connect",
                    _ => "protocol",
                });
                render(&refusal, &request_id, html)
            }
        };
        route.metrics.duration(started.elapsed());
        resp
    }

    /// Stages "identify" and "decide": who is asking from which device, and whether the
    /// policies let them through. Reads the snapshot once.
    fn decide(
        &self,
        req: &Request<ClientBody>,
        route: &Route,
        conn: &ConnInfo,
        request_id: &HeaderValue,
    ) -> Result<Admitted, Refusal> {
        let now = UnixMillis::now();
        let snapshot = self.store.load();
        let deny_identity = |failure: &IdentityFailure| {
            route.metrics.decision(false, failure.reason);
            self.log_identity_failure(request_id, route, conn, failure, now, snapshot.version);
            Refusal::Unauthenticated {
                reason: failure.reason,
                challenge: www_authenticate(failure),
            }
        };
        if let Some(failure) = &conn.cert_error {
            return Err(deny_identity(failure));
        }
        let identity = match self.auth.authenticate_on(
            req.headers(),
            conn.peer.ip(),
            conn.cert_device,
            now,
            Some(&conn.token_memo),
        ) {
            Ok(found) => Some(found),
            Err(f) if f.reason == ReasonCode::TokenMissing => None,
            Err(f) => return Err(deny_identity(&f)),
        };
        let device_id = identity.as_ref().map_or(conn.cert_device, |i| i.device);
        let entry = device_id.and_then(|id| snapshot.devices.get(id));
        let headers = req.headers();
        let user_agent = headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok());
        let basic = headers.get(header::AUTHORIZATION).is_some_and(|v| {
            v.as_bytes().len() > 6 && v.as_bytes()[..6].eq_ignore_ascii_case(b"basic ")
        });
        let facts = request_facts(
            identity.as_ref().map(|i| &*i.identity),
            device_id,
            entry.as_ref().map(|e| e.access_facts()),
            (
                route.app_id,
                ClientAppType::from_request(user_agent, req.uri().path(), basic),
                user_agent.and_then(platform_from_user_agent),
                client_ip(headers, conn.peer.ip(), &self.trusted_proxies),
            ),
        );
        let mut decision = fail_closed_if_stale(
            access::decide(&snapshot.access, &facts, route.unprotected),
            self.store.failing_closed(),
        );
        if !decision.is_allow() && identity.is_none() {
            // Refused with nobody signed in: answered 401 token_missing (below), so counted
            // and logged as that, not as the device or policy reason.
            decision.reason = ReasonCode::TokenMissing;
        }
        route.metrics.decision(decision.is_allow(), decision.reason);
        self.policy_counters.record(&snapshot.access, &decision);
        if !decision.is_allow() || self.log.sample_allow() {
            let id = request_id.to_str().unwrap_or("");
            let entry = DecisionLogEntry::new(
                &snapshot.access,
                &facts,
                &decision,
                LogContext {
                    correlation_id: id,
                    now,
                    snapshot_version: snapshot.version,
                },
            );
            if let Ok(value) = serde_json::to_value(&entry) {
                self.log.record(id, value);
            }
        }
        if decision.is_allow() {
            let grant = (decision.reason == ReasonCode::PolicySatisfied).then(|| Grant {
                store: self.store.clone(),
                identity: identity.as_ref().map(|i| i.identity.clone()),
                device: device_id,
                app: route.app_id,
                client_app: facts.client_app,
                ua_platform: facts.ua_platform,
                ip: facts.ip,
                unprotected: route.unprotected,
                version: snapshot.version,
                request_id: request_id.clone(),
            });
            return Ok(Admitted {
                user: facts.user,
                device: device_id,
                state: facts.device.map(|d| d.state),
                snapshot_version: snapshot.version,
                grant,
            });
        }
        if identity.is_none() {
            // Refused and nobody signed in: ask for a sign-in rather than blame a device.
            let failure = IdentityFailure::new(ReasonCode::TokenMissing, "no access token");
            return Err(Refusal::Unauthenticated {
                reason: ReasonCode::TokenMissing,
                challenge: www_authenticate(&failure),
            });
        }
        Err(Refusal::Denied(decision.reason))
    }

    fn log_identity_failure(
        &self,
        request_id: &HeaderValue,
        route: &Route,
        conn: &ConnInfo,
        failure: &IdentityFailure,
        now: UnixMillis,
        version: u64,
    ) {
        let id = request_id.to_str().unwrap_or("");
        self.log.record(
            id,
            serde_json::json!({
                "correlationId": id,
                "createdDateTime": now.to_rfc3339(),
                "appId": route.app_id.to_string(),
                "ipAddress": conn.peer.ip().to_string(),
                "conditionalAccessStatus": "failure",
                "reasonCode": failure.reason.as_str(),
                "detail": &*failure.message,
                "snapshotVersion": version,
            }),
        );
    }

    /// Stage "forward": rewrite the request for the upstream, send it, stream the answer back.
    async fn forward(
        &self,
        mut req: Box<Request<ClientBody>>,
        added: &mut AddedHeaders,
        route: &Route,
        conn: &ConnInfo,
        request_id: &HeaderValue,
        upgrade: Option<&HeaderValue>,
    ) -> Result<Response<ProxyBody>, Refusal> {
        let original_host = req.headers().get(header::HOST).cloned().or_else(|| {
            req.uri()
                .authority()
                .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        });
        *req.version_mut() = Version::HTTP_11;

        let headers = req.headers_mut();
        remove_hop_by_hop(headers);
        if let Some(u) = upgrade {
            upgrade::restore(headers, u);
        }
        add_forwarded(
            headers,
            added,
            conn.peer.ip(),
            conn.tls,
            original_host.as_ref(),
        );
        added.set(&X_REQUEST_ID, request_id.clone());
        match (&route.host_header, original_host) {
            (Some(fixed), _) => added.set(&added::HOST, fixed.clone()),
            (None, Some(host)) => added.set(&added::HOST, host),
            (None, None) => {}
        }

        // Sets the upstream URI, applies the response-header timeout, logs failures.
        let mut resp = self
            .client
            .send(&route.upstream, req, added, &conn.response_timer)
            .await?;
        if !matches!(resp.body(), ProxyBody::Pooled(_)) {
            // The pool's HTTP/1.1 client leaves them out while it parses the head.
            remove_hop_by_hop(resp.headers_mut());
        }
        resp.headers_mut()
            .insert(X_REQUEST_ID.clone(), request_id.clone());
        Ok(resp)
    }
}

/// The Host a request is for: the `Host` header (HTTP/1.1) or the URI authority (HTTP/2).
fn request_host<B>(req: &Request<B>) -> Option<&str> {
    req.headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
}

pub static X_USER_ID: HeaderName = HeaderName::from_static("x-portcullis-user-id");
pub static X_DEVICE_ID: HeaderName = HeaderName::from_static("x-portcullis-device-id");
pub static X_COMPLIANCE: HeaderName = HeaderName::from_static("x-portcullis-compliance-state");
pub static X_DECISION_ID: HeaderName = HeaderName::from_static("x-portcullis-decision-id");
pub static X_SNAPSHOT: HeaderName = HeaderName::from_static("x-portcullis-snapshot-version");

/// The identity headers the app receives (product brief section 7).
fn set_identity_headers(
    added: &mut AddedHeaders,
    admitted: &Admitted,
    conn: &ConnInfo,
    request_id: &HeaderValue,
    snapshot_version: HeaderValue,
) {
    if let Some(user) = admitted.user {
        added.set(
            &X_USER_ID,
            conn.guid_headers.value(Slot::User, user.as_u128()),
        );
    }
    if let Some(device) = admitted.device {
        added.set(
            &X_DEVICE_ID,
            conn.guid_headers.value(Slot::Device, device.as_u128()),
        );
    }
    let state = admitted.state.map_or("unknown", |s| s.as_str());
    added.set(&X_COMPLIANCE, HeaderValue::from_static(state));
    added.set(&X_DECISION_ID, request_id.clone());
    added.set(&X_SNAPSHOT, snapshot_version);
}

/// The client's address for named locations: the TCP peer, or, when the peer is a trusted
/// proxy, the right-most address in `X-Forwarded-For` that is not itself a trusted proxy.
fn client_ip(headers: &HeaderMap, peer: IpAddr, trusted: &[IpNet]) -> IpAddr {
    if trusted.is_empty() || !trusted.iter().any(|n| n.contains(&peer)) {
        return peer;
    }
    let Some(xff) = headers.get(&X_FORWARDED_FOR).and_then(|v| v.to_str().ok()) else {
        return peer;
    };
    for hop in xff.rsplit(',') {
        match hop.trim().parse::<IpAddr>() {
            Ok(ip) if trusted.iter().any(|n| n.contains(&ip)) => continue,
            Ok(ip) => return ip,
            Err(_) => return peer,
        }
    }
    peer
}
