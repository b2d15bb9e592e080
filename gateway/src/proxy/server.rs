//! Accepting connections: the accept loop per listener, TLS handshakes, HTTP/1.1 and HTTP/2
//! with limits, idle timeout, and a graceful drain on shutdown.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

use super::batched::BatchedWrites;
use super::body::ClientBody;
use super::gateway::{ConnInfo, Gateway};
use super::h1_server::{self, Ending};
use super::prefixed::Prefixed;
use crate::config::Limits;
use crate::identity::mtls::device_from_peer_certificates;

/// A shutdown signal shared by every accept loop and connection: `true` once shutting down.
pub type ShutdownRx = watch::Receiver<bool>;

/// The HTTP server settings every connection uses.
pub fn http_builder(limits: &Limits) -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes)
        .keep_alive(true);
    b.http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(20));
    b
}

/// Runs one listener until `shutdown` turns true, then drains its connections for at most
/// `limits.shutdown_grace`.
pub async fn serve_listener(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    name: Arc<str>,
    gateway: Arc<Gateway>,
    mut shutdown: ShutdownRx,
) {
    let limits = gateway.limits().clone();
    let builder = Arc::new(http_builder(&limits));
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    // Each connection task holds a clone of `done`; when all are dropped, `recv` yields None.
    let (done, mut all_done) = mpsc::channel::<()>(1);
    loop {
        if *shutdown.borrow() {
            break;
        }
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = shutdown.changed() => continue,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(listener = %name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => continue,
        };
        let open = gateway
            .metrics()
            .open_connections
            .with_label_values(&[&name]);
        let tls_failures = gateway
            .metrics()
            .tls_handshake_failures
            .with_label_values(&[&name]);
        let conn = Connection {
            gateway: gateway.clone(),
            builder: builder.clone(),
            info: ConnInfo {
                peer,
                listener: name.clone(),
                tls: tls.is_some(),
                cert_device: None,
                cert_error: None,
                token_memo: Default::default(),
                guid_headers: Default::default(),
                response_timer: Default::default(),
            },
            shutdown: shutdown.clone(),
            h1: h1_server::Settings {
                header_read_timeout: limits.header_read_timeout,
                idle_timeout: limits.idle_timeout,
                max_header_bytes: limits.max_header_bytes,
            },
        };
        let tls = tls.clone();
        let handshake_timeout = limits.tls_handshake_timeout;
        let done = done.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let _done = done;
            open.inc();
            if !conn.run(stream, tls, handshake_timeout).await {
                tls_failures.inc();
            }
            open.dec();
        });
    }
    drop(listener);
    drop(done);
    if tokio::time::timeout(limits.shutdown_grace, all_done.recv())
        .await
        .is_err()
    {
        tracing::warn!(listener = %name, "shutdown deadline reached with requests still in flight");
    }
}

struct Connection {
    gateway: Arc<Gateway>,
    builder: Arc<auto::Builder<TokioExecutor>>,
    info: ConnInfo,
    shutdown: ShutdownRx,
    h1: h1_server::Settings,
}

impl Connection {
    /// Serves the connection; `false` when its TLS handshake failed.
    async fn run(
        self,
        stream: TcpStream,
        tls: Option<TlsAcceptor>,
        handshake_timeout: Duration,
    ) -> bool {
        let _ = stream.set_nodelay(true);
        match tls {
            None => self.serve(stream, true).await,
            Some(acceptor) => {
                match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                    Ok(Ok(tls_stream)) => {
                        let mut conn = self;
                        match device_from_peer_certificates(
                            tls_stream.get_ref().1.peer_certificates(),
                        ) {
                            Ok(device) => conn.info.cert_device = device,
                            Err(failure) => conn.info.cert_error = Some(failure),
                        }
                        let h2 = tls_stream.get_ref().1.alpn_protocol() == Some(b"h2");
                        conn.serve(tls_stream, !h2).await
                    }
                    Ok(Err(e)) => {
                        tracing::debug!(peer = %self.info.peer, error = %e, "TLS handshake failed");
                        return false;
                    }
                    Err(_) => {
                        tracing::debug!(peer = %self.info.peer, "TLS handshake timed out");
                        return false;
                    }
                }
            }
        }
        true
    }

    /// Serves HTTP/1.1 requests with `h1_server` while it can (when `http1`), then hands
    /// the connection to hyper's server (HTTP/2, and the HTTP/1 requests `h1_server` leaves).
    async fn serve<S>(mut self, mut io: S, http1: bool)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        if !http1 {
            return self.drive(BatchedWrites::new(TokioIo::new(io))).await;
        }
        let ending = h1_server::serve(
            &mut io,
            &self.gateway,
            &self.info,
            &mut self.shutdown,
            &self.h1,
        )
        .await;
        if let Ending::HandOff(read) = ending {
            self.drive(BatchedWrites::new(TokioIo::new(Prefixed::new(read, io))))
                .await;
        }
    }

    async fn drive<I>(mut self, io: I)
    where
        I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let activity = Arc::new(Activity::new());
        let info = Arc::new(self.info.clone());
        let service = {
            let gateway = self.gateway.clone();
            let info = info.clone();
            let activity = activity.clone();
            service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let gateway = gateway.clone();
                let info = info.clone();
                let activity = activity.clone();
                async move {
                    activity.begin();
                    let resp = gateway
                        .handle(Box::new(req.map(ClientBody::Streamed)), &info)
                        .await;
                    activity.end();
                    Ok::<_, Infallible>(resp)
                }
            })
        };
        let builder = self.builder.clone();
        let mut conn = pin!(builder.serve_connection_with_upgrades(io, service));
        let mut closing = false;
        let mut check =
            tokio::time::interval(self.h1.idle_timeout.max(Duration::from_millis(50)) / 2);
        check.tick().await;
        loop {
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(peer = %info.peer, error = %e, "connection ended with an error");
                    }
                    break;
                }
                _ = self.shutdown.changed(), if !closing => {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
                _ = check.tick(), if !closing => {
                    if activity.idle_for() >= self.h1.idle_timeout {
                        closing = true;
                        conn.as_mut().graceful_shutdown();
                    }
                }
            }
        }
    }
}

/// Requests in flight on a connection and when it last did something.
struct Activity {
    started: Instant,
    in_flight: AtomicUsize,
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self {
            started: Instant::now(),
            in_flight: AtomicUsize::new(0),
            last_ms: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn begin(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.touch();
    }

    fn end(&self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.touch();
    }

    /// How long the connection has had no request in flight; zero while one is.
    fn idle_for(&self) -> Duration {
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return Duration::ZERO;
        }
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        self.started.elapsed().saturating_sub(last)
    }
}

/// The address a listener bound, for logs.
pub fn describe(addr: SocketAddr, tls: bool) -> String {
    format!("{}://{addr}", if tls { "https" } else { "http" })
}
