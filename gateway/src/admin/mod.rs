//! The admin listener: `/healthz`, `/readyz`, `/metrics` for everyone who can reach it
//! (loopback by default), and `/admin/v1/*` behind a bearer token.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::sources::SourcesConfig;
use crate::config::RouteConfig;
use crate::decision_log::DecisionLog;
use crate::metrics::Metrics;
use crate::proxy::body::ProxyBody;
use crate::snapshot::SnapshotStore;

mod api;
pub mod journal;

pub use journal::{JournalWriter, SignalJournal};

/// What the admin endpoints read.
pub struct AdminState {
    pub metrics: Arc<Metrics>,
    /// Set once the first good snapshot is published; cleared while failing closed.
    pub ready: AtomicBool,
    pub token: Option<String>,
    pub store: Arc<SnapshotStore>,
    pub log: Arc<DecisionLog>,
    pub routes: Vec<RouteConfig>,
    pub journal: Option<JournalWriter>,
    /// The sources to rebuild from on `POST /admin/v1/reload`, with their base directory.
    pub sources: Option<(SourcesConfig, std::path::PathBuf)>,
    /// The running pull sources and their status (set once they start).
    pub pulls: std::sync::Mutex<crate::sources::pulled::Pulls>,
}

impl AdminState {
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
        self.metrics.ready.set(i64::from(ready));
    }
}

/// Serves the admin endpoints until `shutdown` turns true.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AdminState>,
    mut shutdown: watch::Receiver<bool>,
) {
    let builder = auto::Builder::new(TokioExecutor::new());
    loop {
        let (stream, _) = tokio::select! {
            r = listener.accept() => match r {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "admin accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let state = state.clone();
        let builder = builder.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(handle(&state, req).await) }
            });
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle(state: &Arc<AdminState>, req: Request<Incoming>) -> Response<ProxyBody> {
    if req.uri().path().starts_with("/admin/v1/") {
        return api::handle(state, req).await;
    }
    match req.uri().path() {
        "/healthz" | "/live" => text(StatusCode::OK, "ok\n"),
        "/readyz" | "/ready" => {
            if let (true, Some(note)) = (state.store.failing_closed(), state.store.stale_note()) {
                let mut resp = Response::new(ProxyBody::full(Bytes::from(format!(
                    "not ready: failing closed (snapshot_stale): {note}\n"
                ))));
                *resp.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
                resp
            } else if state.ready.load(Ordering::Acquire) {
                text(StatusCode::OK, "ready\n")
            } else {
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "not ready: no good, fresh snapshot yet\n",
                )
            }
        }
        "/metrics" => {
            let mut resp = Response::new(ProxyBody::full(Bytes::from(state.metrics.render())));
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            resp
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

fn text(status: StatusCode, body: &'static str) -> Response<ProxyBody> {
    let mut resp = Response::new(ProxyBody::full(Bytes::from_static(body.as_bytes())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}
