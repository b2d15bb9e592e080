//! The exact request head an upstream receives and the exact response head the client gets,
//! over raw sockets on both sides: forwarding headers replace what the client sent (one line
//! each, `Host` first; identity headers only from the gateway), hop-by-hop headers go in both
//! directions.

mod common;

use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Reads until the end of a head; the head as text.
async fn read_head(s: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut byte))
            .await
            .expect("head in time")
            .unwrap();
        assert!(
            n > 0,
            "closed inside a head: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&byte[..n]);
    }
    String::from_utf8(buf).unwrap()
}

#[tokio::test]
async fn the_upstream_gets_one_line_per_forwarding_header_and_no_hop_by_hop_headers() {
    let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up_addr = upstream.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (mut s, _) = upstream.accept().await.unwrap();
        let head = read_head(&mut s).await;
        s.write_all(
            b"HTTP/1.1 200 OK\r\nX-Secret: 1\r\nConnection: keep-alive, X-Secret\r\n\
              Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nContent-Length: 2\r\n\
              X-App: yes\r\n\r\nok",
        )
        .await
        .unwrap();
        let _ = tx.send(head);
        // Keep the connection open (pooled) until the test ends.
        let _ = s.read(&mut [0u8; 1]).await;
    });
    let dir = tempfile::tempdir().unwrap();
    let route = format!(
        "[[route]]\nname = \"raw\"\nupstream = \"http://{up_addr}\"\napp_id = \"{SHAREPOINT}\"\nunprotected = \"allow\"\n"
    );
    let gw = start_gateway(dir.path(), &route).await;
    let mut c = TcpStream::connect(gw.addr("public").unwrap())
        .await
        .unwrap();
    c.write_all(
        b"GET /a?b=1 HTTP/1.1\r\nX-Forwarded-Proto: https\r\nHost: app.test\r\n\
          X-Forwarded-For: 10.9.9.9\r\nX-Forwarded-Host: evil.test\r\nX-Request-Id: keep-me-1\r\n\
          X-Forwarded-Proto: ftp\r\nConnection: X-Drop\r\nX-Drop: 1\r\nTE: trailers\r\n\
          X-Portcullis-Compliance-State: compliant\r\nAccept: */*\r\n\r\n",
    )
    .await
    .unwrap();
    let response = read_head(&mut c).await;
    let sent = rx.await.unwrap();

    let lines: Vec<&str> = sent.trim_end().split("\r\n").collect();
    assert_eq!(lines[0], "GET /a?b=1 HTTP/1.1", "{sent}");
    assert_eq!(lines[1], "host: app.test", "Host comes first: {sent}");
    let mut fields: Vec<&str> = lines[2..].to_vec();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "accept: */*",
            "x-forwarded-for: 10.9.9.9, 127.0.0.1",
            "x-forwarded-host: app.test",
            "x-forwarded-proto: http",
            "x-portcullis-compliance-state: unknown",
            "x-portcullis-decision-id: keep-me-1",
            "x-portcullis-snapshot-version: 0",
            "x-request-id: keep-me-1",
        ],
        "{sent}"
    );

    let lower = response.to_ascii_lowercase();
    assert!(lower.starts_with("http/1.1 200 ok\r\n"), "{response}");
    assert!(lower.contains("\r\nx-app: yes\r\n"), "{response}");
    assert!(
        lower.contains("\r\nx-request-id: keep-me-1\r\n"),
        "{response}"
    );
    for gone in [
        "x-secret",
        "keep-alive:",
        "proxy-connection",
        "connection: keep-alive",
    ] {
        assert!(!lower.contains(gone), "{gone} was forwarded: {response}");
    }
}
