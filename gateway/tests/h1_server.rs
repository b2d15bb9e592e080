//! The gateway's own HTTP/1.1 server loop over raw sockets: pipelined requests, HEAD,
//! `Connection: close`, the hand-over to hyper for requests it leaves (bodies, HTTP/1.0,
//! malformed heads, HTTP/2's preface) on the same connection, and closing idle connections on
//! shutdown.

mod common;

use std::time::{Duration, Instant};

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One response read off a raw connection.
#[derive(Debug)]
struct Answer {
    status: u16,
    /// Lower-cased `name: value` lines.
    headers: Vec<String>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        let prefix = format!("{name}: ");
        self.headers.iter().find_map(|h| h.strip_prefix(&prefix))
    }
}

/// Reads responses off a connection: framed by content-length or chunked coding, or none
/// for answers to HEAD.
struct Reader {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Reader {
    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 16384];
        let n = tokio::time::timeout(Duration::from_secs(5), self.s.read(&mut chunk))
            .await
            .expect("the gateway answers within 5 s")
            .unwrap_or(0);
        self.buf.extend_from_slice(&chunk[..n]);
        n > 0
    }

    async fn take(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            assert!(self.fill().await, "connection closed mid-body");
        }
        self.buf.drain(..n).collect()
    }

    async fn line(&mut self) -> String {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = self.take(i + 2).await;
                return String::from_utf8_lossy(&line[..i]).into_owned();
            }
            assert!(self.fill().await, "connection closed mid-head");
        }
    }

    async fn answer(&mut self, head_request: bool) -> Answer {
        let status_line = self.line().await;
        assert!(status_line.starts_with("HTTP/1.1 "), "{status_line:?}");
        let status = status_line[9..12].parse().unwrap();
        let mut headers = Vec::new();
        loop {
            let line = self.line().await;
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').unwrap();
            headers.push(format!("{}: {}", name.to_ascii_lowercase(), value.trim()));
        }
        let mut answer = Answer {
            status,
            headers,
            body: Vec::new(),
        };
        if head_request {
            return answer;
        }
        if answer.header("transfer-encoding") == Some("chunked") {
            loop {
                let size = usize::from_str_radix(&self.line().await, 16).unwrap();
                let data = self.take(size + 2).await;
                if size == 0 {
                    break;
                }
                answer.body.extend_from_slice(&data[..size]);
            }
        } else {
            let len: usize = answer.header("content-length").unwrap().parse().unwrap();
            answer.body = self.take(len).await;
        }
        answer
    }

    /// Whether the gateway closed the connection (EOF) with nothing more to read.
    async fn closed(&mut self) -> bool {
        self.buf.is_empty() && !self.fill().await
    }
}

async fn connect(gw: &portcullis::app::App) -> Reader {
    let s = TcpStream::connect(gw.addr("public").unwrap())
        .await
        .unwrap();
    Reader { s, buf: Vec::new() }
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order_and_close_is_honoured() {
    let apps = start_apps().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = start_gateway(dir.path(), &open_routes(&apps)).await;
    let mut c = connect(&gw).await;
    // Three requests in one write: forwarded, HEAD, no route; the last asks to close.
    c.s.write_all(
        b"GET /headers HTTP/1.1\r\nHost: sharepoint.localhost\r\nX-Mark: one\r\n\r\n\
          HEAD /headers HTTP/1.1\r\nHost: exchange.localhost\r\n\r\n\
          GET /nothing HTTP/1.1\r\nHost: other.localhost\r\nAccept: application/json\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();

    let first = c.answer(false).await;
    assert_eq!(first.status, 200);
    let seen: serde_json::Value = serde_json::from_slice(&first.body).unwrap();
    assert_eq!(seen["x-mark"], "one");
    assert_eq!(seen["x-forwarded-host"], "sharepoint.localhost");
    assert!(first.header("date").is_some());
    assert_eq!(first.header("connection"), None);

    let head = c.answer(true).await;
    assert_eq!(head.status, 200);
    assert!(head.header("content-length").is_some_and(|l| l != "0"));

    let last = c.answer(false).await;
    assert_eq!(last.status, 404);
    assert_eq!(last.header("connection"), Some("close"));
    assert!(last.header("date").is_some_and(|d| d.ends_with(" GMT")));
    let problem: serde_json::Value = serde_json::from_slice(&last.body).unwrap();
    assert_eq!(problem["status"], 404);
    assert!(
        c.closed().await,
        "the connection ends after Connection: close"
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn requests_left_to_hyper_are_served_on_the_same_connection() {
    let apps = start_apps().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = start_gateway(dir.path(), &open_routes(&apps)).await;

    // A GET served by the gateway's loop, then a POST with a body (hyper from here on), then
    // another GET, written in two pieces so the POST's body arrives after its head.
    let mut c = connect(&gw).await;
    c.s.write_all(
        b"GET /headers HTTP/1.1\r\nHost: sharepoint.localhost\r\n\r\n\
          POST /upload HTTP/1.1\r\nHost: sharepoint.localhost\r\nContent-Length: 11\r\n\r\nhello",
    )
    .await
    .unwrap();
    assert_eq!(c.answer(false).await.status, 200);
    c.s.write_all(b" world").await.unwrap();
    let upload = c.answer(false).await;
    assert_eq!(upload.status, 200);
    let json: serde_json::Value = serde_json::from_slice(&upload.body).unwrap();
    assert_eq!(json["bytes"], 11);
    c.s.write_all(b"GET /headers HTTP/1.1\r\nHost: exchange.localhost\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(c.answer(false).await.status, 200);

    // HTTP/1.0 goes to hyper at once.
    let mut c = connect(&gw).await;
    c.s.write_all(b"GET /headers HTTP/1.0\r\nHost: sharepoint.localhost\r\n\r\n")
        .await
        .unwrap();
    let mut text = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), c.s.read_to_end(&mut text))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&text);
    assert!(
        text.starts_with("HTTP/1.0 200") || text.starts_with("HTTP/1.1 200"),
        "{text}"
    );
    assert!(text.contains("x-forwarded-host"), "{text}");

    // A malformed head: hyper answers 400.
    let mut c = connect(&gw).await;
    c.s.write_all(b"GET / HTTP/1.1\r\nBad Header Name: x\r\n\r\n")
        .await
        .unwrap();
    let mut text = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), c.s.read_to_end(&mut text)).await;
    let text = String::from_utf8_lossy(&text);
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    gw.shutdown().await;
}

#[tokio::test]
async fn shutdown_closes_idle_connections_at_once() {
    let apps = start_apps().await;
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        "{}\n[limits]\nshutdown_grace = \"20s\"\nidle_timeout = \"60s\"\n",
        open_routes(&apps)
    );
    let gw = start_gateway(dir.path(), &extra).await;
    let mut c = connect(&gw).await;
    c.s.write_all(b"GET /headers HTTP/1.1\r\nHost: sharepoint.localhost\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(c.answer(false).await.status, 200);
    // The connection is now idle in keep-alive; shutdown must not wait for its grace period.
    let started = Instant::now();
    gw.shutdown().await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "shutdown took {:?}",
        started.elapsed()
    );
    assert!(c.closed().await);
}

#[tokio::test]
async fn http2_with_prior_knowledge_on_a_plain_listener_reaches_hyper() {
    let apps = start_apps().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = start_gateway(dir.path(), &open_routes(&apps)).await;
    init_crypto();
    let c = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let resp = c
        .get(format!(
            "http://{}/_api/web/lists",
            gw.addr("public").unwrap()
        ))
        .header("host", "sharepoint.localhost")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);
    assert_eq!(resp.status(), 200);
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["received"]["x-forwarded-proto"], "http");
    gw.shutdown().await;
}
