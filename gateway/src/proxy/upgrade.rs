//! HTTP/1.1 upgrades (WebSocket): the `Upgrade` and `Connection` headers, which forwarding
//! strips as hop-by-hop, are passed on for an upgrade request and its `101` answer, and the two
//! upgraded connections are joined. The tunnel is watched like any admitted response: when a
//! new snapshot would refuse the request that opened it, both sides are closed.

use http::header::{self, HeaderMap, HeaderValue};
use http::{Request, Version};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

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

/// Joins the client's and the upstream's upgraded connections until either side closes or
/// the grant no longer holds.
pub fn spawn_tunnel(client: OnUpgrade, upstream: OnUpgrade, grant: Option<Grant>) {
    tokio::spawn(async move {
        let (client, upstream) = match tokio::try_join!(client, upstream) {
            Ok(pair) => pair,
            Err(e) => {
                tracing::debug!(error = %e, "upgrade did not complete");
                return;
            }
        };
        let mut client = TokioIo::new(client);
        let mut upstream = TokioIo::new(upstream);
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
    });
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
