//! Authenticator tests: bearer/cookie/trusted headers, device reconciliation, JWKS rotation
//! from a file and over HTTP, cache expiry at `exp`.

use std::net::IpAddr;
use std::sync::Arc;

use http::HeaderMap;

use super::*;
use crate::identity::testing::{bad_tokens, TestKeys, TokenSpec, NOW};

const PEER: &str = "192.0.2.10";

fn config(jwks: &str) -> IdentityConfig {
    let mut cfg = IdentityConfig {
        jwks: Some(jwks.into()),
        issuers: vec![TokenSpec::ISSUER.into()],
        audiences: vec![TokenSpec::AUDIENCE.into()],
        jwks_min_refresh_secs: 0,
        ..IdentityConfig::default()
    };
    cfg.trusted_headers.enabled = true;
    cfg.trusted_headers.networks = vec!["10.0.0.0/8".parse().unwrap()];
    cfg
}

fn authenticator(keys: &[TestKeys]) -> Arc<Authenticator> {
    let set = KeySet::parse(TestKeys::jwks_json(keys).as_bytes(), "t").unwrap();
    Authenticator::with_keys(&config("unused.json"), Path::new("."), Some(set)).unwrap()
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (n, v) in pairs {
        map.append(
            HeaderName::from_bytes(n.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    map
}

fn bearer(token: &str) -> HeaderMap {
    headers(&[("authorization", &format!("Bearer {token}"))])
}

/// Authenticates and returns (source, device source) or the reason.
fn check(
    auth: &Authenticator,
    headers: &HeaderMap,
    peer: &str,
    cert: Option<&str>,
    now: UnixMillis,
) -> Result<(IdentitySource, DeviceSource), ReasonCode> {
    let cert = cert.map(|c| DeviceId::parse(c).unwrap());
    auth.authenticate(headers, peer.parse::<IpAddr>().unwrap(), cert, now)
        .map(|r| (r.source, r.device_source))
        .map_err(|f| f.reason)
}

#[test]
fn bearer_cookie_and_missing() {
    let auth = authenticator(&[TestKeys::rsa_a(), TestKeys::ec_a()]);
    let token = TestKeys::ec_a().sign(&TokenSpec::default().claims());
    use DeviceSource as D;
    use IdentitySource as S;
    assert_eq!(
        check(&auth, &bearer(&token), PEER, None, NOW),
        Ok((S::BearerToken, D::Token))
    );
    let cookie = headers(&[("cookie", &format!("a=b; portcullis_session={token}"))]);
    assert_eq!(
        check(&auth, &cookie, PEER, None, NOW),
        Ok((S::SessionCookie, D::Token))
    );
    assert_eq!(
        check(&auth, &HeaderMap::new(), PEER, None, NOW),
        Err(ReasonCode::TokenMissing)
    );
    let stats = auth.cache_stats();
    assert_eq!((stats.hits, stats.misses), (1, 1));
}

#[test]
fn every_bad_token_through_the_request_path() {
    let auth = authenticator(&[TestKeys::rsa_a(), TestKeys::ec_a()]);
    for (name, token, reason) in bad_tokens() {
        let mut map = HeaderMap::new();
        if let Ok(v) = http::HeaderValue::from_str(&format!("Bearer {token}")) {
            map.insert(http::header::AUTHORIZATION, v);
        } else {
            map.insert(
                http::header::AUTHORIZATION,
                http::HeaderValue::from_bytes(b"Bearer \xff\x00garbage")
                    .unwrap_or(http::HeaderValue::from_static("Bearer x")),
            );
        }
        // Twice: the second answer may come from the failure cache and must be the same.
        for _ in 0..2 {
            let got = check(&auth, &map, PEER, None, NOW);
            assert_eq!(got.err(), Some(reason), "{name}");
        }
    }
}

#[test]
fn certificate_and_token_devices_must_agree() {
    let auth = authenticator(&[TestKeys::rsa_a()]);
    let with_device = TestKeys::rsa_a().sign(&TokenSpec::default().claims());
    let no_device = TestKeys::rsa_a().sign(
        &TokenSpec {
            device: None,
            ..TokenSpec::default()
        }
        .claims(),
    );
    let other = "99999999-9999-4999-8999-999999999999";
    use DeviceSource as D;
    assert_eq!(
        check(
            &auth,
            &bearer(&with_device),
            PEER,
            Some(TokenSpec::DEVICE),
            NOW
        )
        .map(|r| r.1),
        Ok(D::TokenAndCertificate)
    );
    assert_eq!(
        check(&auth, &bearer(&with_device), PEER, Some(other), NOW),
        Err(ReasonCode::DeviceMismatch)
    );
    assert_eq!(
        check(&auth, &bearer(&no_device), PEER, Some(other), NOW).map(|r| r.1),
        Ok(D::Certificate)
    );
    assert_eq!(
        check(&auth, &bearer(&no_device), PEER, None, NOW).map(|r| r.1),
        Ok(D::None)
    );
}

#[test]
fn trusted_headers_only_from_trusted_networks() {
    let auth = authenticator(&[TestKeys::rsa_a()]);
    let user = TokenSpec::USER;
    let pairs = [("x-auth-user-id", user), ("x-portcullis-user-id", user)];
    // From a trusted peer: accepted (after stripping, the trusted header survives).
    let mut h = headers(&pairs);
    auth.strip_identity_headers(&mut h, "10.1.1.1".parse().unwrap());
    assert!(h.get("x-portcullis-user-id").is_none());
    assert_eq!(
        check(&auth, &h, "10.1.1.1", None, NOW),
        Ok((IdentitySource::TrustedHeaders, DeviceSource::None))
    );
    // From anyone else: stripped, and even if not stripped, never read.
    let mut h = headers(&pairs);
    assert_eq!(
        check(&auth, &h, PEER, None, NOW),
        Err(ReasonCode::TokenMissing)
    );
    auth.strip_identity_headers(&mut h, PEER.parse().unwrap());
    assert!(h.is_empty());
    // A bad header value from a trusted peer is refused, not ignored.
    let bad = headers(&[("x-auth-user-id", "bob")]);
    assert_eq!(
        check(&auth, &bad, "10.0.0.1", None, NOW),
        Err(ReasonCode::TokenInvalid)
    );
}

#[test]
fn cached_identity_is_not_served_past_exp() {
    let auth = authenticator(&[TestKeys::rsa_a()]);
    let spec = TokenSpec {
        exp: Some(NOW.as_secs() + 60),
        ..TokenSpec::default()
    };
    let token = TestKeys::rsa_a().sign(&spec.claims());
    let h = bearer(&token);
    assert!(check(&auth, &h, PEER, None, NOW).is_ok());
    assert!(
        check(&auth, &h, PEER, None, NOW.plus_millis(60_000)).is_ok(),
        "at exp"
    );
    // Past exp + 60 s skew: expired although moka (real clock) still holds the entry.
    assert_eq!(
        check(&auth, &h, PEER, None, NOW.plus_millis(121_000)),
        Err(ReasonCode::TokenExpired)
    );
}

#[test]
fn config_is_validated() {
    let keys =
        || Some(KeySet::parse(TestKeys::jwks_json(&[TestKeys::rsa_a()]).as_bytes(), "t").unwrap());
    let build = |cfg: IdentityConfig| {
        Authenticator::with_keys(&cfg, Path::new("."), keys())
            .err()
            .map(|e| e.to_string())
    };
    assert_eq!(build(config("j")), None);
    type Edit = fn(&mut IdentityConfig);
    let cases: Vec<(Edit, &str)> = vec![
        (|c| c.issuers.clear(), "issuers"),
        (|c| c.audiences.clear(), "audiences"),
        (|c| c.algorithms = vec!["HS256".into()], "algorithms"),
        (|c| c.algorithms = vec!["none".into()], "algorithms"),
        (
            |c| c.groups_overage = GroupsOverage::Directory,
            "directory_groups",
        ),
        (|c| c.cache_max_entries = 0, "cache_max_entries"),
        (|c| c.session_cookie = "a b".into(), "session_cookie"),
        (
            |c| c.trusted_headers.networks.clear(),
            "trusted_headers.networks",
        ),
    ];
    for (edit, key) in cases {
        let mut cfg = config("j");
        edit(&mut cfg);
        assert!(build(cfg).is_some_and(|e| e.contains(key)), "{key}");
    }
}

/// An authenticator reading `jwks.json` (holding RSA key A) from a fresh directory.
async fn jwks_file_authenticator() -> (tempfile::TempDir, std::path::PathBuf, Arc<Authenticator>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    std::fs::write(&path, TestKeys::jwks_json(&[TestKeys::rsa_a()])).unwrap();
    let auth = Authenticator::build(&config("jwks.json"), dir.path())
        .await
        .unwrap();
    (dir, path, auth)
}

#[tokio::test]
async fn jwks_file_rotation_is_picked_up_without_restart() {
    let (_dir, path, auth) = jwks_file_authenticator().await;
    let task = auth.spawn_jwks_refresh();
    let new_key = TestKeys::generate_ec("rotated-1");
    let token = new_key.sign(&TokenSpec::default().claims());
    assert_eq!(
        check(&auth, &bearer(&token), PEER, None, NOW),
        Err(ReasonCode::TokenInvalid)
    );
    std::fs::write(&path, TestKeys::jwks_json(&[new_key])).unwrap();
    // The unknown kid pokes the refresh task; no restart, no explicit reload.
    let mut result = Err(ReasonCode::TokenInvalid);
    for _ in 0..100 {
        result = check(&auth, &bearer(&token), PEER, None, NOW);
        if result.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(result.is_ok(), "{result:?}");
    // The old key is gone: its tokens fail now, cached or not.
    let old = TestKeys::rsa_a().sign(&TokenSpec::default().claims());
    assert_eq!(
        check(&auth, &bearer(&old), PEER, None, NOW),
        Err(ReasonCode::TokenInvalid)
    );
    if let Some(t) = task {
        t.abort();
    }
}

#[tokio::test]
async fn jwks_over_http_with_rotation() {
    use http_body_util::Full;
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;

    let served = Arc::new(arc_swap::ArcSwap::from_pointee(TestKeys::jwks_json(&[
        TestKeys::rsa_a(),
    ])));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let body = served.clone();
    let server = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let body = body.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |_req| {
                    let text = body.load_full();
                    async move {
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                            bytes::Bytes::from(text.to_string()),
                        )))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    let url = format!("http://{addr}/discovery/v2.0/keys");
    let auth = Authenticator::build(&config(&url), Path::new("."))
        .await
        .unwrap();
    let token = TestKeys::rsa_a().sign(&TokenSpec::default().claims());
    assert!(check(&auth, &bearer(&token), PEER, None, NOW).is_ok());
    let rotated = TestKeys::ec_a().with_kid("http-rotated");
    served.store(Arc::new(TestKeys::jwks_json(&[
        TestKeys::rsa_a(),
        rotated.clone(),
    ])));
    auth.refresh_jwks().await.unwrap();
    let new_token = rotated.sign(&TokenSpec::default().claims());
    assert!(check(&auth, &bearer(&new_token), PEER, None, NOW).is_ok());
    // A broken endpoint keeps the last good keys.
    served.store(Arc::new("oops".into()));
    assert!(auth.refresh_jwks().await.is_err());
    assert!(check(&auth, &bearer(&new_token), PEER, None, NOW).is_ok());
    let bad_url = config("http://127.0.0.1:1/keys");
    assert!(Authenticator::build(&bad_url, Path::new("."))
        .await
        .is_err());
    server.abort();
}

#[tokio::test]
async fn a_connection_memo_forgets_tokens_of_a_dropped_key() {
    let (_dir, path, auth) = jwks_file_authenticator().await;
    let memo = crate::identity::TokenMemo::default();
    let token = TestKeys::rsa_a().sign(&TokenSpec::default().claims());
    let headers = bearer(&token);
    let peer: std::net::IpAddr = PEER.parse().unwrap();
    let on = |memo| {
        auth.authenticate_on(&headers, peer, None, NOW, Some(memo))
            .map(|_| ())
    };
    assert!(on(&memo).is_ok());
    let before = auth.cache_stats();
    assert!(on(&memo).is_ok(), "served from the memo");
    assert_eq!(auth.cache_stats().hits, before.hits + 1);
    // The key is withdrawn: the memo must not keep the token alive.
    std::fs::write(&path, TestKeys::jwks_json(&[TestKeys::ec_a()])).unwrap();
    auth.refresh_jwks().await.unwrap();
    assert_eq!(
        on(&memo).map_err(|f| f.reason),
        Err(ReasonCode::TokenInvalid)
    );
}
