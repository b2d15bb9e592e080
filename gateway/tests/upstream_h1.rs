//! The HTTP/1.1 client the pool speaks to plain-HTTP upstreams, against scripted upstreams on
//! real sockets: response framings (length, chunked with extensions and trailers, until
//! close), interim responses, HEAD, chunked request bodies, and upstreams that break the
//! protocol.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{Method, Request};
use http_body_util::{BodyExt, Either, Empty, Full, StreamBody};
use portcullis::proxy::added::{AddedHeaders, HOST};
use portcullis::proxy::pool::{HostPool, PoolSettings, SendError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

type Chunks = StreamBody<
    futures_util::stream::Iter<
        std::vec::IntoIter<Result<http_body::Frame<Bytes>, std::convert::Infallible>>,
    >,
>;
type TestBody = Either<Either<Empty<Bytes>, Full<Bytes>>, Chunks>;

/// A scripted upstream: answers the `n`-th request on a connection with `answer(n)` (raw
/// bytes) and closes after it when `close` is set; records every request it read.
struct Upstream {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<String>>>,
    connections: Arc<Mutex<usize>>,
}

async fn upstream(answer: fn(usize) -> (&'static [u8], bool)) -> Upstream {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let requests = Arc::new(Mutex::new(Vec::new()));
    let connections = Arc::new(Mutex::new(0));
    let (seen, count) = (requests.clone(), connections.clone());
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            *count.lock().unwrap() += 1;
            tokio::spawn(serve(s, answer, seen.clone()));
        }
    });
    Upstream {
        addr,
        requests,
        connections,
    }
}

async fn serve(
    mut s: TcpStream,
    answer: fn(usize) -> (&'static [u8], bool),
    seen: Arc<Mutex<Vec<String>>>,
) {
    let mut buf = Vec::new();
    for n in 0.. {
        let Some(len) = read_request(&mut s, &mut buf).await else {
            return;
        };
        seen.lock()
            .unwrap()
            .push(String::from_utf8_lossy(&buf[..len]).into_owned());
        buf.drain(..len);
        let (bytes, close) = answer(n);
        if s.write_all(bytes).await.is_err() || close {
            return;
        }
    }
}

/// Reads one whole request (head and body, by Content-Length or up to the last chunk);
/// returns its length in `buf`, or `None` at EOF.
async fn read_request(s: &mut TcpStream, buf: &mut Vec<u8>) -> Option<usize> {
    loop {
        let text = String::from_utf8_lossy(buf).to_ascii_lowercase();
        if let Some(head) = text.find("\r\n\r\n").map(|i| i + 4) {
            let length = text[..head]
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map(|v| v.trim().parse::<usize>().unwrap());
            if let Some(l) = length {
                if buf.len() >= head + l {
                    return Some(head + l);
                }
            } else if text[..head].contains("transfer-encoding: chunked") {
                if let Some(end) = text[head..].find("0\r\n\r\n") {
                    return Some(head + end + 5);
                }
            } else {
                return Some(head);
            }
        }
        let mut chunk = [0u8; 4096];
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(k) => buf.extend_from_slice(&chunk[..k]),
        }
    }
}

fn pool(up: &Upstream) -> Arc<HostPool<TestBody>> {
    HostPool::new(
        up.addr.to_string().parse().unwrap(),
        PoolSettings {
            connect_timeout: Duration::from_secs(2),
            idle_timeout: Duration::from_secs(30),
            max_idle_per_host: 4,
        },
    )
}

fn request(method: Method, body: TestBody) -> Request<TestBody> {
    Request::builder()
        .method(method)
        .uri("/path?q=1")
        .header("host", "up.test")
        .body(body)
        .unwrap()
}

fn get() -> Request<TestBody> {
    request(Method::GET, Either::Left(Either::Left(Empty::new())))
}

/// Sends `req`; returns the status and the whole body.
async fn fetch(
    p: &Arc<HostPool<TestBody>>,
    req: Request<TestBody>,
) -> Result<(u16, Bytes), String> {
    let resp = p.send(req).await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?;
    Ok((status, body.to_bytes()))
}

#[tokio::test]
async fn chunked_responses_are_decoded_and_their_connection_reused() {
    let up = upstream(|_| {
        (
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5;name=value\r\nhello\r\n7\r\n, world\r\n0\r\nx-checksum: 1\r\n\r\n",
            false,
        )
    })
    .await;
    let p = pool(&up);
    for _ in 0..3 {
        let (status, body) = fetch(&p, get()).await.unwrap();
        assert_eq!((status, &body[..]), (200, &b"hello, world"[..]));
    }
    assert_eq!(*up.connections.lock().unwrap(), 1);
    assert_eq!(p.idle_count(), 1);
    let first = up.requests.lock().unwrap()[0].clone();
    assert!(
        first.starts_with("GET /path?q=1 HTTP/1.1\r\nhost: up.test\r\n"),
        "{first}"
    );
}

#[tokio::test]
async fn added_headers_replace_the_clients_and_are_used_up_by_the_send() {
    static X_A: HeaderName = HeaderName::from_static("x-a");
    static X_GONE: HeaderName = HeaderName::from_static("x-gone");
    let up = upstream(|_| (b"HTTP/1.1 204 No Content\r\n\r\n", false)).await;
    let p = pool(&up);
    let mut req = get();
    req.headers_mut()
        .insert("x-a", HeaderValue::from_static("client"));
    req.headers_mut()
        .insert("x-gone", HeaderValue::from_static("client"));
    let mut added = AddedHeaders::new();
    added.set(&X_A, HeaderValue::from_static("gateway"));
    added.remove(&X_GONE);
    added.set(&HOST, HeaderValue::from_static("app.test"));
    let resp = p.send_adding(Box::new(req), &mut added).await.unwrap();
    assert_eq!(resp.status(), 204);
    // Written into the head and dropped before the upstream answered.
    assert!(added.is_empty());
    let head = up.requests.lock().unwrap()[0].clone();
    assert_eq!(
        head,
        "GET /path?q=1 HTTP/1.1\r\nhost: app.test\r\nx-a: gateway\r\n\r\n"
    );
}

#[tokio::test]
async fn a_body_until_close_is_read_to_the_end_and_not_reused() {
    let up = upstream(|_| {
        (
            b"HTTP/1.0 200 OK\r\ncontent-type: text/plain\r\n\r\nall of it",
            true,
        )
    })
    .await;
    let p = pool(&up);
    for _ in 0..2 {
        let (status, body) = fetch(&p, get()).await.unwrap();
        assert_eq!((status, &body[..]), (200, &b"all of it"[..]));
    }
    assert_eq!(*up.connections.lock().unwrap(), 2);
    assert_eq!(p.idle_count(), 0);
}

#[tokio::test]
async fn interim_responses_are_skipped_and_head_responses_have_no_body() {
    let up = upstream(|n| match n {
        0 => (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok", false),
        1 => (b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n", false),
        _ => (b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok", false),
    })
    .await;
    let p = pool(&up);
    let (status, body) = fetch(&p, get()).await.unwrap();
    assert_eq!((status, &body[..]), (200, &b"ok"[..]));
    let resp = p
        .send(request(
            Method::HEAD,
            Either::Left(Either::Left(Empty::new())),
        ))
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-length"], "1000");
    drop(resp);
    // The HEAD exchange left the connection clean: it carries the next request.
    assert_eq!(p.idle_count(), 1);
    assert_eq!(fetch(&p, get()).await.unwrap().0, 200);
    assert_eq!(*up.connections.lock().unwrap(), 1);
}

#[tokio::test]
async fn a_request_body_without_length_goes_out_chunked() {
    let up = upstream(|_| (b"HTTP/1.1 204 No Content\r\n\r\n", false)).await;
    let p = pool(&up);
    let frames: Vec<Result<http_body::Frame<Bytes>, std::convert::Infallible>> =
        ["abc", "", "defgh"]
            .into_iter()
            .map(|s| Ok(http_body::Frame::data(Bytes::from(s))))
            .collect();
    let body = Either::Right(StreamBody::new(futures_util::stream::iter(frames)));
    let (status, _) = fetch(&p, request(Method::POST, body)).await.unwrap();
    assert_eq!(status, 204);
    let sent = up.requests.lock().unwrap()[0].clone();
    assert!(sent.contains("transfer-encoding: chunked\r\n"), "{sent}");
    assert!(
        sent.ends_with("\r\n\r\n3\r\nabc\r\n5\r\ndefgh\r\n0\r\n\r\n"),
        "{sent:?}"
    );
    // And a sized body goes out as it is, an empty POST with a zero length.
    let sized = request(
        Method::PUT,
        Either::Left(Either::Right(Full::new(Bytes::from("xyz")))),
    );
    let (parts, body) = sized.into_parts();
    let mut sized = Request::from_parts(parts, body);
    sized.headers_mut().insert("content-length", 3.into());
    assert_eq!(fetch(&p, sized).await.unwrap().0, 204);
    assert_eq!(
        fetch(
            &p,
            request(Method::POST, Either::Left(Either::Left(Empty::new())))
        )
        .await
        .unwrap()
        .0,
        204
    );
    let all = up.requests.lock().unwrap().clone();
    assert!(
        all[1].ends_with("content-length: 3\r\n\r\nxyz"),
        "{:?}",
        all[1]
    );
    assert!(
        all[2].ends_with("content-length: 0\r\n\r\n"),
        "{:?}",
        all[2]
    );
}

#[tokio::test]
async fn upstreams_breaking_the_protocol_are_errors() {
    let garbage = upstream(|_| (b"SPDY/9 ok\r\n\r\n", true)).await;
    let err = pool(&garbage).send(get()).await.err().unwrap();
    assert!(matches!(err, SendError::Request { .. }), "{err}");
    assert!(err.to_string().contains("malformed"), "{err}");

    let short = upstream(|_| (b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhalf", true)).await;
    let p = pool(&short);
    let err = fetch(&p, get()).await.unwrap_err();
    assert!(err.contains("before the end of the response body"), "{err}");
    assert_eq!(p.idle_count(), 0);

    let silent = upstream(|_| (b"", true)).await;
    let err = pool(&silent).send(get()).await.err().unwrap();
    assert!(err.to_string().contains("without answering"), "{err}");

    let bad_chunk = upstream(|_| {
        (
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
            true,
        )
    })
    .await;
    let err = fetch(&pool(&bad_chunk), get()).await.unwrap_err();
    assert!(err.contains("chunk size"), "{err}");
}
