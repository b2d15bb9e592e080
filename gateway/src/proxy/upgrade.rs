//! HTTP/1.1 upgrades (WebSocket): the `Upgrade` and `Connection` headers, which forwarding
//! strips as hop-by-hop, are passed on for an upgrade request and its `101` answer, and the two
//! upgraded connections are joined. The tunnel is watched like any admitted response: when a
//! new snapshot would refuse the request that opened it, both sides are closed.

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Request, Version};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::revocable::Grant;

/// The `Upgrade` header of an HTTP/1.1 request that asks for one (`Connection: upgrade`).
pub fn requested<B>(req: &Request<B>) -> Option<HeaderValue> {
    if req.version() != Version::HTTP_11 {
        return None;
    }
    let asks = req
        .headers()
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    if !asks {
        return None;
    }
    req.headers().get(header::UPGRADE).cloned()
}

/// Puts the upgrade headers back after hop-by-hop removal.
pub fn restore(headers: &mut HeaderMap, upgrade: &HeaderValue) {
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, upgrade.clone());
}

/// The upstream side of an upgraded connection.
pub enum Upstream {
    /// From the hyper-util client (HTTPS upstreams).
    Hyper(OnUpgrade),
    /// A plain-HTTP upstream's socket and the bytes it sent past the `101` head.
    Plain(TcpStream, Bytes),
}

/// Joins the client's and the upstream's upgraded connections until either side closes or
/// the grant no longer holds.
pub fn spawn_tunnel(client: OnUpgrade, upstream: Upstream, grant: Option<Grant>) {
    tokio::spawn(async move {
        let client = match client.await {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(error = %e, "upgrade did not complete");
                return;
            }
        };
        let mut client = TokioIo::new(client);
        match upstream {
            Upstream::Hyper(on) => match on.await {
                Ok(up) => join(client, TokioIo::new(up), grant).await,
                Err(e) => tracing::debug!(error = %e, "upstream upgrade did not complete"),
            },
            Upstream::Plain(up, already_read) => {
                if client.write_all(&already_read).await.is_ok() {
                    join(client, up, grant).await;
                }
            }
        }
    });
}

/// Copies both ways until either side closes or the grant no longer holds.
async fn join<C, U>(mut client: C, mut upstream: U, grant: Option<Grant>)
where
    C: AsyncRead + AsyncWrite + Unpin,
    U: AsyncRead + AsyncWrite + Unpin,
{
    let copy = tokio::io::copy_bidirectional(&mut client, &mut upstream);
    tokio::pin!(copy);
    let Some(grant) = grant else {
        let _ = copy.await;
        return;
    };
    let mut changes = grant.store.subscribe();
    changes.borrow_and_update();
    loop {
        tokio::select! {
            _ = &mut copy => return,
            changed = changes.changed() => {
                if changed.is_err() {
                    let _ = copy.await;
                    return;
                }
                if let Some(reason) = grant.revoked_because() {
                    let request_id = grant.request_id.to_str().unwrap_or("");
                    tracing::info!(request_id, reason = reason.as_str(), "closing an upgraded connection: access revoked");
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(version: Version, headers: &[(&str, &str)], want: Option<&str>) {
        let mut req = Request::builder().version(version).uri("/");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(()).unwrap();
        assert_eq!(
            requested(&req).as_ref().map(|v| v.to_str().unwrap()),
            want,
            "{headers:?}"
        );
    }

    #[test]
    fn only_an_http11_connection_upgrade_asks() {
        let ws = [
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "websocket"),
        ];
        check(Version::HTTP_11, &ws, Some("websocket"));
        check(Version::HTTP_2, &ws, None);
        check(Version::HTTP_11, &[("upgrade", "websocket")], None);
        check(Version::HTTP_11, &[("connection", "upgrade")], None);
    }
}
