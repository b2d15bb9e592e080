//! Stand-in apps for SharePoint Online and Exchange Online: a few realistic endpoints each,
//! every response showing the forwarding and identity headers the app received, plus a large
//! streamed download, an upload counter and a deliberately slow endpoint for tests.

mod body;
mod pages;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use body::StandinBody;

/// Which app a stand-in plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum App {
    Sharepoint,
    Exchange,
}

impl App {
    pub fn title(self) -> &'static str {
        match self {
            App::Sharepoint => "SharePoint Online (stand-in)",
            App::Exchange => "Exchange Online (stand-in)",
        }
    }
}

/// Serves `app` on `listener` until `shutdown` turns true.
pub async fn serve(listener: TcpListener, app: App, mut shutdown: watch::Receiver<bool>) {
    let builder = auto::Builder::new(TokioExecutor::new());
    loop {
        let (stream, _) = tokio::select! {
            r = listener.accept() => match r {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "stand-in accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let _ = stream.set_nodelay(true);
        let builder = builder.clone();
        tokio::spawn(async move {
            let service =
                service_fn(move |req| async move { Ok::<_, Infallible>(handle(app, req).await) });
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Binds `addr` and serves `app` in the background; returns the bound address.
pub async fn spawn(
    addr: SocketAddr,
    app: App,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(serve(listener, app, shutdown));
    Ok(bound)
}

/// One stand-in request.
pub async fn handle(app: App, req: Request<Incoming>) -> Response<StandinBody> {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let seen = pages::Seen::from_headers(req.headers());
    match (req.method(), app, path.as_str()) {
        (_, _, "/download") => {
            let bytes = param(&query, "bytes").unwrap_or(100 * 1024 * 1024);
            let pace = param(&query, "pace_ms").map(Duration::from_millis);
            let mut resp = Response::new(StandinBody::stream(bytes, pace));
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            resp
        }
        (_, _, "/slow") => {
            let ms = param(&query, "ms").unwrap_or(5_000);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            json(
                StatusCode::OK,
                &serde_json::json!({ "sleptMs": ms, "received": seen.json() }),
            )
        }
        (&Method::POST, _, "/upload") => {
            let mut body = req.into_body();
            let mut total: u64 = 0;
            while let Some(frame) = body.frame().await {
                match frame {
                    Ok(f) => total += f.data_ref().map_or(0, |d| d.len() as u64),
                    Err(e) => {
                        return json(
                            StatusCode::BAD_REQUEST,
                            &serde_json::json!({ "error": e.to_string() }),
                        )
                    }
                }
            }
            json(
                StatusCode::OK,
                &serde_json::json!({ "bytes": total, "received": seen.json() }),
            )
        }
        (_, _, "/headers") => json(StatusCode::OK, &seen.json()),
        (_, App::Sharepoint, p) if p.starts_with("/_api/web/lists") => {
            json(StatusCode::OK, &pages::sharepoint_lists(&seen))
        }
        (_, App::Sharepoint, p) if p.starts_with("/sites/") => {
            html(pages::sharepoint_site(p, &seen))
        }
        (_, App::Exchange, p) if p.starts_with("/api/v2.0/me/messages") => {
            json(StatusCode::OK, &pages::exchange_messages(&seen))
        }
        (_, App::Exchange, p) if p.starts_with("/owa") => html(pages::exchange_mailbox(&seen)),
        (_, _, "/") => html(pages::index(app, &seen)),
        _ => json(
            StatusCode::NOT_FOUND,
            &serde_json::json!({ "error": "not found", "path": path }),
        ),
    }
}

fn param(query: &str, name: &str) -> Option<u64> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .and_then(|(_, v)| v.parse().ok())
}

fn json(status: StatusCode, value: &serde_json::Value) -> Response<StandinBody> {
    let mut resp = Response::new(StandinBody::full(Bytes::from(value.to_string())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

fn html(page: String) -> Response<StandinBody> {
    let mut resp = Response::new(StandinBody::full(Bytes::from(page)));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    resp
}
