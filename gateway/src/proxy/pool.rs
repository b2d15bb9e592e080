//! The keep-alive connection pool for plain-HTTP (`http://`) upstreams: one LIFO stack of idle
//! HTTP/1.1 connections per upstream authority, built on `hyper::client::conn::http1`.
//!
//! Rules:
//! - A connection goes back on its stack only when the response body it carried reached its
//!   end cleanly **and** the request body was sent completely (see [`PooledBody`]); a body
//!   dropped mid-stream, an error, `Connection: close` or a connection the upstream closed
//!   drops it instead.
//! - Idle connections older than the idle timeout are discarded on checkout and by a reaper
//!   task; at most `max_idle_per_host` are kept.
//! - A request on a pooled connection that turns out closed is retried once, on a fresh
//!   connection, only if no byte of its body can have been sent: either hyper handed the
//!   request back unsent, or the request had no body at all, is idempotent and the connection
//!   had been idle long enough to be hit by an upstream's idle close (see [`RETRY_AFTER_IDLE`]).
//!   Anything else is an error (the gateway answers 502).
//!
//! HTTPS upstreams keep using the hyper-util client (see `upstream`).

use std::error::Error as _;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderMap};
use http::uri::Authority;
use http::{Method, Request, Response, Uri, Version};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// A connection idle at least this long gets a copy of a body-less request's head kept, so
/// that the request can be sent again if the upstream closed the connection just as the
/// request went out (servers close idle keep-alive connections after seconds, never
/// sooner). Connections in steady use skip the copy: they are not the ones closed for being
/// idle.
pub const RETRY_AFTER_IDLE: Duration = Duration::from_millis(250);

/// How the pool connects and keeps connections.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    pub connect_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_idle_per_host: usize,
}

/// Why a request through the pool got no response head.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("connect to {authority} failed: {source}")]
    Connect {
        authority: Authority,
        source: std::io::Error,
    },
    #[error("connect to {authority} timed out")]
    ConnectTimeout { authority: Authority },
    #[error("request to {authority} failed: {source}")]
    Request {
        authority: Authority,
        source: hyper::Error,
    },
}

/// What a request body must be to go through the pool (the gateway sends `Incoming`).
pub trait RequestBody:
    Body<Data = Bytes, Error = Self::BodyError> + Send + Unpin + 'static
{
    type BodyError: Into<Box<dyn std::error::Error + Send + Sync>>;
}

impl<B> RequestBody for B
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type BodyError = B::Error;
}

/// Every upstream's pool, created on first use.
pub struct Pools<B: RequestBody = Incoming> {
    settings: PoolSettings,
    hosts: RwLock<Vec<Arc<HostPool<B>>>>,
}

impl<B: RequestBody> Pools<B> {
    pub fn new(settings: PoolSettings) -> Self {
        Self {
            settings,
            hosts: RwLock::new(Vec::new()),
        }
    }

    /// The pool for `authority` (a linear scan: a gateway has a handful of upstreams).
    pub fn host(&self, authority: &Authority) -> Arc<HostPool<B>> {
        // A poisoned lock only means another thread panicked while pushing; the Vec is intact.
        let hosts = self.hosts.read().unwrap_or_else(|e| e.into_inner());
        if let Some(h) = hosts.iter().find(|h| h.authority == *authority) {
            return h.clone();
        }
        drop(hosts);
        let mut hosts = self.hosts.write().unwrap_or_else(|e| e.into_inner());
        if let Some(h) = hosts.iter().find(|h| h.authority == *authority) {
            return h.clone();
        }
        let pool = HostPool::new(authority.clone(), self.settings.clone());
        hosts.push(pool.clone());
        pool
    }
}

struct Idle<B> {
    sender: SendRequest<SendBody<B>>,
    since: Instant,
}

/// A checked-out idle connection and how long it had been idle.
struct Reused<B> {
    sender: SendRequest<SendBody<B>>,
    idle_for: Duration,
}

/// The idle connections to one upstream authority.
pub struct HostPool<B: RequestBody = Incoming> {
    authority: Authority,
    /// The socket address when the authority is an IP literal (no resolver on connect).
    addr: Option<SocketAddr>,
    settings: PoolSettings,
    idle: Mutex<Vec<Idle<B>>>,
    connects: AtomicU64,
}

impl<B: RequestBody> HostPool<B> {
    pub fn new(authority: Authority, settings: PoolSettings) -> Arc<Self> {
        let port = authority.port_u16().unwrap_or(80);
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let addr = host.parse().ok().map(|ip| SocketAddr::new(ip, port));
        let pool = Arc::new(Self {
            authority,
            addr,
            settings,
            idle: Mutex::new(Vec::new()),
            connects: AtomicU64::new(0),
        });
        spawn_reaper(Arc::downgrade(&pool), pool.settings.idle_timeout);
        pool
    }

    /// The number of idle connections (for tests and metrics).
    pub fn idle_count(&self) -> usize {
        self.lock().len()
    }

    /// The number of connections opened so far (for tests and metrics).
    pub fn connects(&self) -> u64 {
        self.connects.load(Ordering::Relaxed)
    }

    /// Sends `req` (origin-form URI, Host already set) on an idle connection, or on a new one.
    /// See the module doc for when a request is retried.
    pub async fn send(
        self: &Arc<Self>,
        req: Request<B>,
    ) -> Result<Response<PooledBody<B>>, SendError> {
        let (parts, body) = req.into_parts();
        let (body, body_sent) = if body.is_end_stream() {
            (SendBody::Empty, None)
        } else {
            let sent = Arc::new(AtomicBool::new(false));
            let body = SendBody::Stream {
                body,
                sent: sent.clone(),
            };
            (body, Some(sent))
        };
        let mut req = Request::from_parts(parts, body);

        if let Some(Reused {
            mut sender,
            idle_for,
        }) = self.checkout().await
        {
            let head = (body_sent.is_none()
                && idle_for >= RETRY_AFTER_IDLE
                && is_idempotent(req.method()))
            .then(|| Head::of(&req));
            match sender.try_send_request(req).await {
                Ok(resp) => return Ok(self.wrap(resp, sender, body_sent)),
                Err(mut e) => match (e.take_message(), head) {
                    // Never written: safe to send on a fresh connection.
                    (Some(unsent), _) => req = unsent,
                    // Written, but it had no body and the connection closed under it.
                    (None, Some(head)) if closed_before_answer(e.error()) => {
                        req = head.into_request()
                    }
                    (None, _) => return Err(self.request_error(e.into_error())),
                },
            }
        }

        let mut sender = self.connect().await?;
        match sender.try_send_request(req).await {
            Ok(resp) => Ok(self.wrap(resp, sender, body_sent)),
            Err(e) => Err(self.request_error(e.into_error())),
        }
    }

    fn wrap(
        self: &Arc<Self>,
        resp: Response<Incoming>,
        sender: SendRequest<SendBody<B>>,
        body_sent: Option<Arc<AtomicBool>>,
    ) -> Response<PooledBody<B>> {
        let (parts, inner) = resp.into_parts();
        let closing = connection_close(&parts.headers)
            || parts.version == Version::HTTP_10
            || parts.status == http::StatusCode::SWITCHING_PROTOCOLS;
        let body = PooledBody {
            inner,
            give_back: (!closing).then(|| (sender, self.clone())),
            body_sent,
        };
        Response::from_parts(parts, body)
    }

    fn request_error(&self, source: hyper::Error) -> SendError {
        SendError::Request {
            authority: self.authority.clone(),
            source,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Idle<B>>> {
        // Nothing panics while the lock is held; if something did, the Vec is still valid.
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The most recently used idle connection that is still open and ready.
    async fn checkout(&self) -> Option<Reused<B>> {
        loop {
            let idle = self.lock().pop()?;
            let idle_for = idle.since.elapsed();
            if idle_for >= self.settings.idle_timeout {
                continue;
            }
            let mut sender = idle.sender;
            // Ready at once in the usual case; briefly pending while the connection task
            // finishes the previous exchange; an error when the upstream closed it.
            if sender.ready().await.is_ok() {
                return Some(Reused { sender, idle_for });
            }
        }
    }

    fn put(&self, sender: SendRequest<SendBody<B>>) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.lock();
        if idle.len() < self.settings.max_idle_per_host {
            idle.push(Idle {
                sender,
                since: Instant::now(),
            });
        }
    }

    async fn connect(&self) -> Result<SendRequest<SendBody<B>>, SendError> {
        let connecting = async {
            match self.addr {
                Some(addr) => TcpStream::connect(addr).await,
                None => {
                    let host = self.authority.host();
                    TcpStream::connect((host, self.authority.port_u16().unwrap_or(80))).await
                }
            }
        };
        let stream = match tokio::time::timeout(self.settings.connect_timeout, connecting).await {
            Err(_elapsed) => {
                return Err(SendError::ConnectTimeout {
                    authority: self.authority.clone(),
                })
            }
            Ok(Err(source)) => {
                return Err(SendError::Connect {
                    authority: self.authority.clone(),
                    source,
                })
            }
            Ok(Ok(s)) => s,
        };
        self.connects.fetch_add(1, Ordering::Relaxed);
        let _ = stream.set_nodelay(true);
        let keepalive = socket2::TcpKeepalive::new().with_time(Duration::from_secs(60));
        let _ = socket2::SockRef::from(&stream).set_tcp_keepalive(&keepalive);
        let (sender, conn) = http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|e| self.request_error(e))?;
        tokio::spawn(async move {
            // With upgrades: a `101` hands the connection to `hyper::upgrade::on`.
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!(error = %e, "upstream connection ended with an error");
            }
        });
        Ok(sender)
    }
}

/// Drops expired and closed idle connections every half idle timeout, until the pool is gone.
fn spawn_reaper<B: RequestBody>(pool: Weak<HostPool<B>>, idle_timeout: Duration) {
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let every = (idle_timeout / 2).max(Duration::from_millis(100));
    rt.spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            let Some(pool) = pool.upgrade() else { return };
            pool.lock()
                .retain(|i| i.since.elapsed() < idle_timeout && !i.sender.is_closed());
        }
    });
}

/// Methods whose request may be sent twice (RFC 9110 section 9.2.2).
fn is_idempotent(m: &Method) -> bool {
    matches!(
        *m,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

/// Whether `err` says the connection ended before any response: the upstream closed or reset
/// it (not a parse error, not a timeout).
fn closed_before_answer(err: &hyper::Error) -> bool {
    if err.is_incomplete_message() || err.is_canceled() || err.is_closed() {
        return true;
    }
    let mut source = err.source();
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            return matches!(
                io.kind(),
                ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof
            );
        }
        source = e.source();
    }
    false
}

/// Whether the upstream said it closes the connection after this response.
fn connection_close(headers: &HeaderMap) -> bool {
    headers.get_all(header::CONNECTION).iter().any(|v| {
        v.to_str()
            .is_ok_and(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")))
    })
}

/// A copy of a body-less request's head, to send it again.
struct Head {
    method: Method,
    uri: Uri,
    version: Version,
    headers: HeaderMap,
}

impl Head {
    fn of<T>(req: &Request<T>) -> Self {
        Self {
            method: req.method().clone(),
            uri: req.uri().clone(),
            version: req.version(),
            headers: req.headers().clone(),
        }
    }

    fn into_request<B>(self) -> Request<SendBody<B>> {
        let mut req = Request::new(SendBody::Empty);
        *req.method_mut() = self.method;
        *req.uri_mut() = self.uri;
        *req.version_mut() = self.version;
        *req.headers_mut() = self.headers;
        req
    }
}

/// The request body as sent upstream: nothing, or the client's body, marking when it was
/// sent completely.
pub enum SendBody<B> {
    Empty,
    Stream { body: B, sent: Arc<AtomicBool> },
}

impl<B: RequestBody> Body for SendBody<B> {
    type Data = Bytes;
    type Error = B::BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.get_mut() {
            SendBody::Empty => Poll::Ready(None),
            SendBody::Stream { body, sent } => {
                let polled = Pin::new(&mut *body).poll_frame(cx);
                match &polled {
                    Poll::Ready(None) => sent.store(true, Ordering::Release),
                    Poll::Ready(Some(Ok(_))) if body.is_end_stream() => {
                        sent.store(true, Ordering::Release)
                    }
                    _ => {}
                }
                polled
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            SendBody::Empty => true,
            SendBody::Stream { body, .. } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            SendBody::Empty => SizeHint::with_exact(0),
            SendBody::Stream { body, .. } => body.size_hint(),
        }
    }
}

/// A connection and the pool it goes back to.
type GiveBack<B> = (SendRequest<SendBody<B>>, Arc<HostPool<B>>);

/// An upstream response body that hands its connection back to the pool once it reached its
/// end and the request body was sent completely. Dropped before the end, it drops the
/// connection (the upstream may still be sending).
pub struct PooledBody<B: RequestBody = Incoming> {
    inner: Incoming,
    give_back: Option<GiveBack<B>>,
    /// Set once the request body was sent completely; `None` for a request without body.
    body_sent: Option<Arc<AtomicBool>>,
}

impl<B: RequestBody> PooledBody<B> {
    fn release(&mut self) {
        let Some((sender, pool)) = self.give_back.take() else {
            return;
        };
        let request_done = self
            .body_sent
            .as_ref()
            .is_none_or(|s| s.load(Ordering::Acquire));
        if request_done {
            pool.put(sender);
        }
    }
}

impl<B: RequestBody> Body for PooledBody<B> {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => this.release(),
            Poll::Ready(Some(Ok(_))) if this.inner.is_end_stream() => this.release(),
            Poll::Ready(Some(Err(_))) => this.give_back = None,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B: RequestBody> Drop for PooledBody<B> {
    fn drop(&mut self) {
        // Bodies nobody polls (empty, HEAD, 204, 304) end here.
        if self.inner.is_end_stream() {
            self.release();
        }
    }
}
