//! The proxy core over real sockets: routing, streaming, HTTP/2 over TLS, headers, timeouts,
//! upstream failures and graceful drain.

mod common;

use std::time::{Duration, Instant};

use common::*;
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

async fn get_json(client: &reqwest::Client, url: String, host: &str) -> (u16, serde_json::Value) {
    let resp = client.get(url).header("host", host).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

#[tokio::test]
async fn routes_by_host_and_path_and_passes_forwarding_headers() {
    let apps = start_apps().await;
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        "{}\n[[route]]\nname = \"sp-by-path\"\npath_prefix = \"/_api/\"\nupstream = \"http://{}\"\napp_id = \"{SHAREPOINT}\"\nunprotected = \"allow\"\n",
        open_routes(&apps),
        apps.sharepoint
    );
    let gw = start_gateway(dir.path(), &extra).await;
    let base = format!("http://{}", gw.addr("public").unwrap());
    let c = client();

    let (status, body) =
        get_json(&c, format!("{base}/_api/web/lists"), "sharepoint.localhost").await;
    assert_eq!(status, 200);
    assert_eq!(body["value"][0]["Title"], "Documents");
    let received = &body["received"];
    assert_eq!(received["x-forwarded-for"], "127.0.0.1");
    assert_eq!(received["x-forwarded-proto"], "http");
    assert_eq!(received["x-forwarded-host"], "sharepoint.localhost");
    assert_eq!(received["host"], "sharepoint.localhost");
    assert_eq!(received["x-request-id"].as_str().unwrap().len(), 24);

    let (status, body) = get_json(
        &c,
        format!("{base}/api/v2.0/me/messages"),
        "exchange.localhost",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["value"][0]["Subject"], "Quarterly results");

    // No host route matches, but the path route does.
    let (status, body) = get_json(&c, format!("{base}/_api/web/lists"), "other.localhost").await;
    assert_eq!(status, 200);
    assert_eq!(body["value"][1]["Title"], "Site Pages");

    // Nothing matches: 404 problem+json naming the request id.
    let resp = c
        .get(format!("{base}/owa/"))
        .header("host", "other.localhost")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    let problem: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(problem["reason"], "no_route");
    assert_eq!(problem["correlationId"], id.as_str());
    gw.shutdown().await;
}

#[tokio::test]
async fn hop_by_hop_headers_are_removed_and_request_ids_kept() {
    let apps = start_apps().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = start_gateway(dir.path(), &open_routes(&apps)).await;
    let addr = gw.addr("public").unwrap();

    // A raw request, so that nothing normalises the headers on the way.
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = "GET /headers HTTP/1.1\r\nHost: exchange.localhost\r\nConnection: keep-alive, X-Private\r\n\
X-Private: secret\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nProxy-Authorization: Basic eA==\r\n\
X-Forwarded-For: 10.1.2.3\r\nX-Request-Id: client-id-42\r\nX-Portcullis-Device-Id: spoofed\r\n\r\n";
    s.write_all(req.as_bytes()).await.unwrap();
    let text = read_response(&mut s).await;
    let body: serde_json::Value =
        serde_json::from_str(text.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    for gone in [
        "x-private",
        "keep-alive",
        "te",
        "proxy-authorization",
        "x-portcullis-device-id",
    ] {
        assert!(body.get(gone).is_none(), "{gone} reached the app: {body}");
    }
    assert_eq!(body["x-forwarded-for"], "10.1.2.3, 127.0.0.1");
    assert_eq!(body["x-request-id"], "client-id-42");
    assert!(text
        .to_ascii_lowercase()
        .contains("x-request-id: client-id-42"));
    gw.shutdown().await;
}

/// Reads one response with a content-length body from a raw stream.
async fn read_response(s: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut chunk))
            .await
            .unwrap()
            .unwrap();
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len = head.lines().find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().parse::<usize>().unwrap())
            });
            if len.is_some_and(|len| body.len() >= len) {
                break;
            }
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

#[tokio::test]
async fn streams_large_bodies_both_ways_with_bounded_memory() {
    let apps = start_apps().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = start_gateway(dir.path(), &open_routes(&apps)).await;
    let base = format!("http://{}", gw.addr("public").unwrap());
    let c = client();
    const SIZE: u64 = 128 * 1024 * 1024;
    let before = rss_kib();

    // Download: count the bytes as they arrive.
    let resp = c
        .get(format!("{base}/download?bytes={SIZE}"))
        .header("host", "sharepoint.localhost")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut stream = resp.bytes_stream();
    let mut total = 0u64;
    while let Some(chunk) = stream.next().await {
        total += chunk.unwrap().len() as u64;
    }
    assert_eq!(total, SIZE);

    // Upload: a generated stream, counted by the app.
    let chunks =
        (0..SIZE / 65536).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![7u8; 65536])));
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let resp = c
        .post(format!("{base}/upload"))
        .header("host", "exchange.localhost")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["bytes"], SIZE);

    let grown_mib = rss_kib().saturating_sub(before) / 1024;
    assert!(
        grown_mib < 64,
        "memory grew by {grown_mib} MiB while streaming 2 x 128 MiB"
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn http2_over_tls_with_alpn() {
    let apps = start_apps().await;
    let dir = tempfile::tempdir().unwrap();
    let certs = server_certs(dir.path());
    let text = format!(
        "[[listener]]\nname = \"tls\"\naddr = \"127.0.0.1:0\"\ntls = {{ cert = \"server.pem\", key = \"server-key.pem\" }}\n{}",
        open_routes(&apps)
    );
    let gw = portcullis::app::start(&config(dir.path(), &text))
        .await
        .unwrap();
    let port = gw.addr("tls").unwrap().port();
    init_crypto();
    let ca = reqwest::Certificate::from_pem(certs.ca_pem.as_bytes()).unwrap();
    let c = reqwest::Client::builder()
        .add_root_certificate(ca)
        .build()
        .unwrap();
    // The certificate names localhost; the Host header picks the route.
    let resp = c
        .get(format!("https://localhost:{port}/_api/web/lists"))
        .header("host", "sharepoint.localhost")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);
    assert_eq!(resp.status(), 200);
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["received"]["x-forwarded-proto"], "https");

    // HTTP/1.1 still works on the same listener.
    let c11 = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(certs.ca_pem.as_bytes()).unwrap())
        .http1_only()
        .build()
        .unwrap();
    let resp = c11
        .get(format!("https://localhost:{port}/owa/"))
        .header("host", "exchange.localhost")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.version(), reqwest::Version::HTTP_11);
    assert_eq!(resp.status(), 200);
    // A streamed body of unknown length over TLS (chunked to the client), then another
    // request on the same kept-alive connection.
    let resp = c11
        .get(format!("https://localhost:{port}/download?bytes=3000000"))
        .header("host", "sharepoint.localhost")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.version(), reqwest::Version::HTTP_11);
    assert_eq!(resp.bytes().await.unwrap().len(), 3_000_000);
    let resp = c11
        .get(format!("https://localhost:{port}/_api/web/lists"))
        .header("host", "sharepoint.localhost")
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["received"]["x-forwarded-proto"], "https");
    // A paced stream over TLS: its first bytes arrive long before its end (nothing waits in
    // the TLS session's buffer for the next write).
    let started = Instant::now();
    let mut resp = c11
        .get(format!(
            "https://localhost:{port}/download?bytes=1000000&pace_ms=400"
        ))
        .header("host", "sharepoint.localhost")
        .send()
        .await
        .unwrap();
    let first = resp.chunk().await.unwrap().unwrap();
    assert!(!first.is_empty());
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "first bytes after {:?}",
        started.elapsed()
    );
    drop(resp);
    gw.shutdown().await;
}

#[tokio::test]
async fn upstream_refused_is_502_and_slow_is_504() {
    let apps = start_apps().await;
    let dir = tempfile::tempdir().unwrap();
    // A port that was free a moment ago: nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let extra = format!(
        "[[route]]\nhost = \"gone.localhost\"\nupstream = \"http://{closed}\"\napp_id = \"{SHAREPOINT}\"\nunprotected = \"allow\"\n{}\n[limits]\nupstream_response_timeout = \"300ms\"\n",
        open_routes(&apps)
    );
    let gw = start_gateway(dir.path(), &extra).await;
    let base = format!("http://{}", gw.addr("public").unwrap());
    let c = client();

    let resp = c
        .get(format!("{base}/"))
        .header("host", "gone.localhost")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 502);
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["reason"], "upstream_unreachable");

    let started = Instant::now();
    let resp = c
        .get(format!("{base}/slow?ms=3000"))
        .header("host", "sharepoint.localhost")
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 504);
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(resp.text().await.unwrap().contains("upstream_timeout"));
    gw.shutdown().await;
}

#[tokio::test]
async fn upstream_connect_timeout_is_504() {
    // A listener whose accept queue is full and never drained: further connects hang.
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(1).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..8 {
        if let Ok(Ok(s)) =
            tokio::time::timeout(Duration::from_millis(200), TcpStream::connect(addr)).await
        {
            fillers.push(s);
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        "[[route]]\nupstream = \"http://{addr}\"\napp_id = \"{SHAREPOINT}\"\nunprotected = \"allow\"\n[limits]\nupstream_connect_timeout = \"300ms\"\nupstream_response_timeout = \"5s\"\n"
    );
    let gw = start_gateway(dir.path(), &extra).await;
    let started = Instant::now();
    let resp = client()
        .get(format!("http://{}/", gw.addr("public").unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 504);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    drop(listener);
    gw.shutdown().await;
}

#[tokio::test]
async fn header_read_and_idle_timeouts_close_connections() {
    let apps = start_apps().await;
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        "{}\n[limits]\nheader_read_timeout = \"300ms\"\nidle_timeout = \"400ms\"\n",
        open_routes(&apps)
    );
    let gw = start_gateway(dir.path(), &extra).await;
    let addr = gw.addr("public").unwrap();

    // Slowloris: half a request head, then silence.
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: sharepoint.localhost\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf))
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "header read timeout took {:?}",
        started.elapsed()
    );

    // Idle keep-alive connection: one request, then silence until the gateway closes it.
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /headers HTTP/1.1\r\nHost: sharepoint.localhost\r\n\r\n")
        .await
        .unwrap();
    let first = read_response(&mut s).await;
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    let started = Instant::now();
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut rest))
        .await
        .unwrap();
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_secs(3),
        "idle close after {waited:?}"
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn oversized_headers_are_refused() {
    let apps = start_apps().await;
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        "{}\n[limits]\nmax_header_bytes = 16384\n",
        open_routes(&apps)
    );
    let gw = start_gateway(dir.path(), &extra).await;
    let resp = client()
        .get(format!("http://{}/headers", gw.addr("public").unwrap()))
        .header("host", "sharepoint.localhost")
        .header("x-big", "a".repeat(40_000))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 431);
    gw.shutdown().await;
}

#[tokio::test]
async fn graceful_shutdown_drains_in_flight_requests() {
    let apps = start_apps().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = start_gateway(dir.path(), &open_routes(&apps)).await;
    let addr = gw.addr("public").unwrap();
    let c = client();
    let in_flight = tokio::spawn({
        let c = c.clone();
        async move {
            c.get(format!("http://{addr}/slow?ms=800"))
                .header("host", "sharepoint.localhost")
                .send()
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    gw.shutdown().await;
    let resp = in_flight.await.unwrap().unwrap();
    assert_eq!(resp.status(), 200, "the in-flight request finished");
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "shutdown waited for it"
    );
    // After the drain the listener is gone.
    assert!(TcpStream::connect(addr).await.is_err());
}
