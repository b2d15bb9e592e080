//! The keep-alive connection pool for plain-HTTP (`http://`) upstreams: one LIFO stack of idle
//! HTTP/1.1 connections per upstream authority. Each exchange runs on the [`h1`](super::h1)
//! client inside the task of the request that makes it.
//!
//! Rules:
//! - A connection goes back on its stack only when the response body it carried reached its
//!   end cleanly **and** the request body was sent completely (see [`PooledBody`]); a body
//!   dropped mid-stream, an error, `Connection: close` or a connection the upstream closed
//!   drops it instead.
//! - Idle connections older than the idle timeout, or that the upstream closed, are
//!   discarded on checkout and by a reaper task; at most `max_idle_per_host` are kept.
//! - A request on a pooled connection that turns out closed is retried once, on a fresh
//!   connection, only if no byte of its body can have been sent: either its head could not be
//!   written, or the request had no body at all, is idempotent and the connection had been
//!   idle long enough to be hit by an upstream's idle close (see [`RETRY_AFTER_IDLE`]).
//!   Anything else is an error (the gateway answers 502).
//!
//! HTTPS upstreams keep using the hyper-util client (see `upstream`).

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::uri::Authority;
use http::{Method, Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use tokio::net::TcpStream;

use super::added::AddedHeaders;
use super::body::ClientBody;
use super::h1::{BoxError, Conn, Exchange, ExchangeError, Outgoing};

/// A connection idle at least this long may have a body-less request sent on it again, if
/// the upstream closed the connection just as the request went out (servers close idle
/// keep-alive connections after seconds, never sooner). Connections in steady use are not
/// the ones closed for being idle.
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
        source: ExchangeError,
    },
}

/// What a request body must be to go through the pool (the gateway sends `ClientBody`).
pub trait RequestBody:
    Body<Data = Bytes, Error = Self::BodyError> + Send + Unpin + 'static
{
    type BodyError: Into<BoxError>;
}

impl<B> RequestBody for B
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    type BodyError = B::Error;
}

/// Every upstream's pool, created on first use.
pub struct Pools<B: RequestBody = ClientBody> {
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

struct Idle {
    conn: Conn,
    since: Instant,
}

/// The idle connections to one upstream authority.
pub struct HostPool<B: RequestBody = ClientBody> {
    authority: Authority,
    /// The socket address when the authority is an IP literal (no resolver on connect).
    addr: Option<SocketAddr>,
    settings: PoolSettings,
    idle: Mutex<Vec<Idle>>,
    connects: AtomicU64,
    _body: std::marker::PhantomData<fn(B)>,
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
            _body: std::marker::PhantomData,
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
        self.send_adding(Box::new(req), &mut AddedHeaders::new())
            .await
    }

    /// As `send`, with `added` written in place of the request's headers of the same names.
    /// `added` is left empty.
    pub async fn send_adding(
        self: &Arc<Self>,
        req: Box<Request<B>>,
        added: &mut AddedHeaders,
    ) -> Result<Response<PooledBody<B>>, SendError> {
        let (parts, body) = req.into_parts();
        let mut outgoing = Outgoing::new(&parts, body, added);
        let method = parts.method.clone();
        // The head is encoded: the request's headers and the added ones are dropped now, while
        // they are in cache, rather than after the upstream answers, when at hundreds of
        // connections they no longer are.
        drop(parts);
        added.clear();

        if let Some((conn, idle_for)) = self.checkout() {
            let resend_if_closed =
                !outgoing.has_body() && idle_for >= RETRY_AFTER_IDLE && is_idempotent(&method);
            let mut exchange = Box::new(Exchange::new(conn, outgoing, &method, resend_if_closed));
            match exchange.response_head().await {
                Ok(head) => return Ok(self.wrap(head, exchange)),
                Err(e) => {
                    let again = if resend_if_closed && e.closed_before_answer() {
                        exchange.bodyless_request()
                    } else {
                        exchange.unsent()
                    };
                    match again {
                        Some(request) => outgoing = request,
                        None => return Err(self.request_error(e)),
                    }
                }
            }
        }

        let conn = self.connect().await?;
        let mut exchange = Box::new(Exchange::new(conn, outgoing, &method, false));
        match exchange.response_head().await {
            Ok(head) => Ok(self.wrap(head, exchange)),
            Err(e) => Err(self.request_error(e)),
        }
    }

    fn wrap(
        self: &Arc<Self>,
        head: http::response::Parts,
        exchange: Box<Exchange<B>>,
    ) -> Response<PooledBody<B>> {
        let upgraded = head.status == StatusCode::SWITCHING_PROTOCOLS;
        let body = PooledBody {
            exchange: Some(exchange),
            pool: self.clone(),
            upgraded,
        };
        Response::from_parts(head, body)
    }

    fn request_error(&self, source: ExchangeError) -> SendError {
        SendError::Request {
            authority: self.authority.clone(),
            source,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Idle>> {
        // Nothing panics while the lock is held; if something did, the Vec is still valid.
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The most recently used idle connection that is still open, and how long it was idle.
    fn checkout(&self) -> Option<(Conn, Duration)> {
        loop {
            let idle = self.lock().pop()?;
            let idle_for = idle.since.elapsed();
            if idle_for < self.settings.idle_timeout && idle.conn.is_open() {
                return Some((idle.conn, idle_for));
            }
        }
    }

    fn put(&self, conn: Conn) {
        let mut idle = self.lock();
        if idle.len() < self.settings.max_idle_per_host {
            idle.push(Idle {
                conn,
                since: Instant::now(),
            });
        }
    }

    async fn connect(&self) -> Result<Conn, SendError> {
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
        Ok(Conn::new(stream))
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
                .retain(|i| i.since.elapsed() < idle_timeout && i.conn.is_open());
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

/// An upstream response body, read from the connection as it is polled. Once it reached its
/// end and the request body was sent completely, the connection goes back to the pool;
/// dropped before the end, it drops the connection (the upstream may still be sending).
pub struct PooledBody<B: RequestBody = ClientBody> {
    /// Boxed: the response it belongs to is moved up through several futures, and the
    /// exchange is most of its size.
    exchange: Option<Box<Exchange<B>>>,
    pool: Arc<HostPool<B>>,
    upgraded: bool,
}

impl<B: RequestBody> PooledBody<B> {
    fn release(&mut self) {
        if let Some(conn) = self.exchange.take().and_then(|e| e.into_reusable()) {
            self.pool.put(conn);
        }
    }

    /// After a `101 Switching Protocols`: the upstream socket and the bytes it already sent
    /// past the response head.
    pub fn into_upgraded(mut self) -> Option<(TcpStream, Bytes)> {
        if !self.upgraded {
            return None;
        }
        self.exchange.take().map(|e| e.into_upgraded())
    }
}

impl<B: RequestBody> Body for PooledBody<B> {
    type Data = Bytes;
    type Error = ExchangeError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ExchangeError>>> {
        let this = self.get_mut();
        if this.upgraded {
            return Poll::Ready(None);
        }
        let Some(exchange) = this.exchange.as_mut() else {
            return Poll::Ready(None);
        };
        match exchange.poll_data(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => {
                this.release();
                Poll::Ready(None)
            }
            Poll::Ready(Some(Ok(data))) => {
                if exchange.is_end_stream() {
                    this.release();
                }
                Poll::Ready(Some(Ok(Frame::data(data))))
            }
            Poll::Ready(Some(Err(e))) => {
                this.exchange = None;
                Poll::Ready(Some(Err(e)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.upgraded || self.exchange.as_ref().is_none_or(|e| e.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        match self.exchange.as_ref().map(|e| e.remaining()) {
            Some(Some(n)) => SizeHint::with_exact(n),
            Some(None) => SizeHint::default(),
            None => SizeHint::with_exact(0),
        }
    }
}

impl<B: RequestBody> Drop for PooledBody<B> {
    fn drop(&mut self) {
        // Bodies nobody polls (empty, HEAD, 204, 304) end here.
        if !self.upgraded && self.exchange.as_ref().is_some_and(|e| e.is_end_stream()) {
            self.release();
        }
    }
}
