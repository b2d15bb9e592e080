//! The plain-HTTP upstream pool against scripted upstreams on 127.0.0.1 that count the
//! connections they accept: reuse, no reuse after a body dropped mid-way or a request body not
//! sent completely, upstreams that close idle connections, retry rules, idle limits; and reuse
//! end to end through the gateway.

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request};
use http_body::{Body, Frame};
use http_body_util::{BodyExt, Either, Empty, Full};
use portcullis::proxy::pool::{HostPool, PoolSettings, SendError, RETRY_AFTER_IDLE};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use common::{client, start_gateway, SHAREPOINT};

/// What the scripted upstream does with the `n`-th request (0-based) on a connection.
#[derive(Clone, Copy, Debug)]
enum Act {
    /// Read the request, answer 200 with `len` bytes, keep the connection.
    Answer(usize),
    /// Read the request, answer, then close the connection after `idle` without a request.
    AnswerThenCloseAfter(usize, Duration),
    /// Read the request, then close without answering.
    CloseSilently,
    /// Answer 200 at once, without reading the request body.
    AnswerEarly,
}

struct Upstream {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
}

impl Upstream {
    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

async fn upstream(script: fn(usize) -> Act) -> Upstream {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = listener.accept().await else {
                return;
            };
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(serve(s, script));
        }
    });
    Upstream { addr, accepted }
}

async fn serve(mut s: TcpStream, script: fn(usize) -> Act) {
    let mut buf = Vec::new();
    for n in 0.. {
        let act = script(n);
        let Some(head_end) = read_head(&mut s, &mut buf).await else {
            return;
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
        let body_len = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map_or(0, |v| v.trim().parse::<usize>().unwrap());
        if let Act::AnswerEarly = act {
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                .await;
            // Keep the connection open (never reading the body) until the client gives up.
            let _ = s.read(&mut [0u8; 1]).await;
            tokio::time::sleep(Duration::from_secs(5)).await;
            return;
        }
        while buf.len() < head_end + body_len {
            let mut chunk = [0u8; 8192];
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(k) => buf.extend_from_slice(&chunk[..k]),
            }
        }
        buf.drain(..head_end + body_len);
        let len = match act {
            Act::Answer(len) | Act::AnswerThenCloseAfter(len, _) => len,
            Act::CloseSilently => return,
            Act::AnswerEarly => unreachable!(),
        };
        let resp = format!("HTTP/1.1 200 OK\r\ncontent-length: {len}\r\n\r\n");
        if s.write_all(resp.as_bytes()).await.is_err() {
            return;
        }
        let chunk = vec![b'x'; 64 * 1024];
        let mut left = len;
        while left > 0 {
            let k = left.min(chunk.len());
            if s.write_all(&chunk[..k]).await.is_err() {
                return;
            }
            left -= k;
        }
        if let Act::AnswerThenCloseAfter(_, idle) = act {
            tokio::time::sleep(idle).await;
            return;
        }
    }
}

/// Reads until the end of a request head; returns its length, or `None` at EOF.
async fn read_head(s: &mut TcpStream, buf: &mut Vec<u8>) -> Option<usize> {
    loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            return Some(i + 4);
        }
        let mut chunk = [0u8; 4096];
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(k) => buf.extend_from_slice(&chunk[..k]),
        }
    }
}

/// A request body that never ends (a client still uploading).
struct Endless;

impl Body for Endless {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Pending
    }
}

type TestBody = Either<Either<Empty<Bytes>, Full<Bytes>>, Endless>;

fn settings() -> PoolSettings {
    PoolSettings {
        connect_timeout: Duration::from_secs(2),
        idle_timeout: Duration::from_secs(30),
        max_idle_per_host: 16,
    }
}

fn pool(up: &Upstream, settings: PoolSettings) -> Arc<HostPool<TestBody>> {
    HostPool::new(up.addr.to_string().parse().unwrap(), settings)
}

fn get() -> Request<TestBody> {
    Request::builder()
        .uri("/")
        .header("host", "up.test")
        .body(Either::Left(Either::Left(Empty::new())))
        .unwrap()
}

fn post(body: &'static str) -> Request<TestBody> {
    Request::builder()
        .method(Method::POST)
        .uri("/")
        .header("host", "up.test")
        .header("content-length", body.len())
        .body(Either::Left(Either::Right(Full::new(Bytes::from(body)))))
        .unwrap()
}

/// Sends `req` and reads the whole response body; returns its length.
async fn fetch(pool: &Arc<HostPool<TestBody>>, req: Request<TestBody>) -> Result<usize, SendError> {
    let resp = pool.send(req).await?;
    assert_eq!(resp.status(), 200);
    Ok(resp.into_body().collect().await.unwrap().to_bytes().len())
}

#[tokio::test]
async fn sequential_requests_reuse_one_connection() {
    let up = upstream(|_| Act::Answer(100)).await;
    let p = pool(&up, settings());
    for _ in 0..5 {
        assert_eq!(fetch(&p, get()).await.unwrap(), 100);
        assert_eq!(fetch(&p, post("hello")).await.unwrap(), 100);
    }
    assert_eq!(up.accepted(), 1);
    assert_eq!(p.connects(), 1);
    assert_eq!(p.idle_count(), 1);
}

#[tokio::test]
async fn a_body_dropped_mid_way_drops_its_connection() {
    let up = upstream(|_| Act::Answer(4 * 1024 * 1024)).await;
    let p = pool(&up, settings());
    let resp = p.send(get()).await.unwrap();
    let mut body = resp.into_body();
    let first = body.frame().await.unwrap().unwrap();
    assert!(first.data_ref().is_some_and(|d| !d.is_empty()));
    drop(body);
    assert_eq!(p.idle_count(), 0);
    assert_eq!(fetch(&p, get()).await.unwrap(), 4 * 1024 * 1024);
    assert_eq!(up.accepted(), 2);
    assert_eq!(p.idle_count(), 1);
}

#[tokio::test]
async fn a_request_body_not_sent_completely_drops_its_connection() {
    let up = upstream(|_| Act::AnswerEarly).await;
    let p = pool(&up, settings());
    let req = Request::builder()
        .method(Method::POST)
        .uri("/")
        .header("host", "up.test")
        .header("content-length", "1000")
        .body(Either::Right(Endless))
        .unwrap();
    let resp = p.send(req).await.unwrap();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"ok");
    assert_eq!(p.idle_count(), 0);
}

#[tokio::test]
async fn an_upstream_closing_idle_connections_costs_no_request() {
    let up = upstream(|_| Act::AnswerThenCloseAfter(10, Duration::from_millis(50))).await;
    let p = pool(&up, settings());
    for _ in 0..3 {
        assert_eq!(fetch(&p, get()).await.unwrap(), 10);
        // Longer than the upstream keeps the connection: it is closed when we come back.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(up.accepted(), 3);
}

/// An upstream whose connections answer their first request and close under the second one,
/// and a pool holding one such connection, idle long enough for a request on it to be retried
/// if it can be.
async fn pooled_connection_about_to_close() -> (Upstream, Arc<HostPool<TestBody>>) {
    let up = upstream(|n| match n {
        0 => Act::Answer(10),
        _ => Act::CloseSilently,
    })
    .await;
    let p = pool(&up, settings());
    assert_eq!(fetch(&p, get()).await.unwrap(), 10);
    tokio::time::sleep(RETRY_AFTER_IDLE + Duration::from_millis(50)).await;
    (up, p)
}

#[tokio::test]
async fn a_body_less_request_hit_by_an_idle_close_is_sent_again() {
    let (up, p) = pooled_connection_about_to_close().await;
    // Sent on the pooled connection, which closes without answering: sent again, fresh.
    assert_eq!(fetch(&p, get()).await.unwrap(), 10);
    assert_eq!(up.accepted(), 2);
}

#[tokio::test]
async fn a_request_whose_body_went_out_is_not_sent_again() {
    let (up, p) = pooled_connection_about_to_close().await;
    let err = fetch(&p, post("payload")).await.unwrap_err();
    assert!(matches!(err, SendError::Request { .. }), "{err}");
    assert_eq!(up.accepted(), 1);
}

#[tokio::test]
async fn idle_connections_expire_and_are_capped() {
    let up = upstream(|_| Act::Answer(10)).await;
    let p = pool(
        &up,
        PoolSettings {
            idle_timeout: Duration::from_millis(200),
            max_idle_per_host: 2,
            ..settings()
        },
    );
    // Four at once need four connections; only two stay idle.
    let all = futures_join4(&p).await;
    assert!(all.iter().all(|r| *r == 10));
    assert_eq!(up.accepted(), 4);
    assert_eq!(p.idle_count(), 2);
    // The reaper drops them after the idle timeout; the next request connects again.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(p.idle_count(), 0);
    assert_eq!(fetch(&p, get()).await.unwrap(), 10);
    assert_eq!(up.accepted(), 5);
}

async fn futures_join4(p: &Arc<HostPool<TestBody>>) -> [usize; 4] {
    // Hold every response head before reading any body, so that no connection is free.
    let (a, b, c, d) = tokio::join!(p.send(get()), p.send(get()), p.send(get()), p.send(get()));
    let mut out = [0; 4];
    for (slot, resp) in out.iter_mut().zip([a, b, c, d]) {
        *slot = resp
            .unwrap()
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .len();
    }
    out
}

#[tokio::test]
async fn refused_connect_is_a_connect_error() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let p: Arc<HostPool<TestBody>> = HostPool::new(closed.to_string().parse().unwrap(), settings());
    let err = fetch(&p, get()).await.unwrap_err();
    assert!(matches!(err, SendError::Connect { .. }), "{err}");
}

#[tokio::test]
async fn the_gateway_reuses_upstream_connections() {
    let up = upstream(|_| Act::Answer(100)).await;
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        "[[route]]\nhost = \"app.localhost\"\nupstream = \"http://{}\"\napp_id = \"{SHAREPOINT}\"\nunprotected = \"allow\"\n",
        up.addr
    );
    let gw = start_gateway(dir.path(), &extra).await;
    let base = format!("http://{}", gw.addr("public").unwrap());
    let c = client();
    for i in 0..10 {
        let req = if i % 2 == 0 {
            c.get(format!("{base}/x"))
        } else {
            c.post(format!("{base}/x")).body("some body")
        };
        let resp = req.header("host", "app.localhost").send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.bytes().await.unwrap().len(), 100);
    }
    assert_eq!(up.accepted(), 1);
    gw.shutdown().await;
}
