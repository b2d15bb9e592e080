//! Continuous evaluation: a response admitted by policy stays admitted only while the same
//! request would still be let through. Every snapshot publish (a risk signal, a rebuild, a
//! re-evaluation) and every staleness change wakes the streaming response, which re-decides
//! against the new snapshot and, if the request would now be refused, ends the stream with an
//! error (the connection or HTTP/2 stream is reset, so the client sees a cut download, never a
//! complete-looking truncated one).
//!
//! Cost when nothing changes: responses whose body is ready at once allocate nothing for
//! this; a body that has to wait arms one boxed `watch::changed` future, once.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::sync::watch;

use super::body::{BoxError, ProxyBody};
use crate::access::{self, ClientAppType, Decision, DeviceFacts, RequestFacts, Unprotected};
use crate::identity::Identity;
use crate::ids::{AppId, DeviceId};
use crate::model::Platform;
use crate::reason::ReasonCode;
use crate::snapshot::{Snapshot, SnapshotStore};

/// What a request was admitted with: enough to decide it again on a newer snapshot.
pub struct Grant {
    pub store: Arc<SnapshotStore>,
    pub identity: Option<Arc<Identity>>,
    pub device: Option<DeviceId>,
    pub app: AppId,
    pub client_app: ClientAppType,
    pub ua_platform: Option<Platform>,
    pub ip: IpAddr,
    pub unprotected: Unprotected,
    /// The snapshot version the admission was decided on.
    pub version: u64,
    /// The request's correlation id, for the log line when access is revoked.
    pub request_id: http::HeaderValue,
}

impl Grant {
    /// The decision the same request gets on `snapshot` now (fail-closed staleness included).
    pub fn decide(&self, snapshot: &Snapshot, failing_closed: bool) -> Decision {
        let entry = self.device.and_then(|id| snapshot.devices.get(id));
        let facts = request_facts(
            self.identity.as_deref(),
            self.device,
            entry.as_ref().map(|e| e.access_facts()),
            (self.app, self.client_app, self.ua_platform, self.ip),
        );
        fail_closed_if_stale(
            access::decide(&snapshot.access, &facts, self.unprotected),
            failing_closed,
        )
    }

    /// Why the request would now be refused, or `None` while it would still be let through
    /// (cheap when nothing changed).
    pub fn revoked_because(&self) -> Option<ReasonCode> {
        let failing_closed = self.store.failing_closed();
        let snapshot = self.store.load();
        if snapshot.version == self.version && !failing_closed {
            return None;
        }
        let decision = self.decide(&snapshot, failing_closed);
        (!decision.is_allow()).then_some(decision.reason)
    }
}

/// The facts `access::decide` reads, from the request's identity, device and route: one
/// shape for the gateway's first decision and every later re-decision.
pub fn request_facts<'a>(
    identity: Option<&'a Identity>,
    device_id: Option<DeviceId>,
    device: Option<DeviceFacts<'a>>,
    (app, client_app, ua_platform, ip): (AppId, ClientAppType, Option<Platform>, IpAddr),
) -> RequestFacts<'a> {
    RequestFacts {
        user: identity.map(|i| i.user),
        groups: identity.map_or(&[][..], |i| &i.groups[..]),
        mfa: identity.is_some_and(|i| i.mfa),
        app,
        client_app,
        ua_platform,
        ip,
        device,
        device_presented: device_id.is_some(),
    }
}

/// While the feeds are stale past their grace, a policy-based allow becomes a
/// `snapshot_stale` deny; a route opened explicitly (`unprotected = "allow"`) stays open.
pub fn fail_closed_if_stale(mut decision: Decision, failing_closed: bool) -> Decision {
    if failing_closed && decision.reason == ReasonCode::PolicySatisfied {
        decision.verdict = access::Verdict::Deny;
        decision.reason = ReasonCode::SnapshotStale;
    }
    decision
}

/// Why a stream was ended.
#[derive(Debug, thiserror::Error)]
#[error("access revoked mid-stream: the request is no longer allowed ({0})")]
pub struct Revoked(pub &'static str);

type Changed = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A response body that ends with an error once its grant no longer holds.
pub struct Revocable {
    inner: ProxyBody,
    grant: Grant,
    seen: watch::Receiver<u64>,
    waiting: Option<Changed>,
    revoked: bool,
}

impl Revocable {
    pub fn new(inner: ProxyBody, grant: Grant) -> Self {
        let mut seen = grant.store.subscribe();
        seen.borrow_and_update();
        Self {
            inner,
            grant,
            seen,
            waiting: None,
            revoked: false,
        }
    }
}

impl Body for Revocable {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.revoked {
            return Poll::Ready(None);
        }
        if let Some(fut) = this.waiting.as_mut() {
            if fut.as_mut().poll(cx).is_ready() {
                this.waiting = None;
            }
        }
        if this.seen.has_changed().unwrap_or(false) {
            this.seen.borrow_and_update();
            if let Some(reason) = this.grant.revoked_because() {
                this.revoked = true;
                let reason = reason.as_str();
                let request_id = this.grant.request_id.to_str().unwrap_or("");
                tracing::info!(
                    request_id,
                    reason,
                    "ending a streaming response: access revoked"
                );
                return Poll::Ready(Some(Err(Box::new(Revoked(reason)))));
            }
        }
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if polled.is_pending() && this.waiting.is_none() && this.seen.has_changed().is_ok() {
            let mut rx = this.seen.clone();
            let mut fut: Changed = Box::pin(async move {
                let _ = rx.changed().await;
            });
            if fut.as_mut().poll(cx).is_ready() {
                cx.waker().wake_by_ref();
            } else {
                this.waiting = Some(fut);
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.revoked || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
