//! `pull` against small HTTP servers on 127.0.0.1:0 that serve Graph- and Defender-shaped
//! pages: paging, ETag 304, bearer tokens, timeouts, garbage and partial pages, foreign next
//! links, and the poller's backoff after a 500.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;

use portcullis::pull::{
    client, fetch, spawn_poller, FetchOutcome, PullError, PullSource, PullStatus, TokenSource,
};

const TOKEN: &str = "s3cret-token";

/// What the test server answers.
struct Reply {
    status: StatusCode,
    etag: Option<&'static str>,
    body: String,
    delay: Duration,
}

impl Reply {
    fn json(body: Value) -> Self {
        Self {
            status: StatusCode::OK,
            etag: None,
            body: body.to_string(),
            delay: Duration::ZERO,
        }
    }
    fn status(status: StatusCode, body: &str) -> Self {
        Self {
            status,
            etag: None,
            body: body.into(),
            delay: Duration::ZERO,
        }
    }
}

/// One request as the server saw it.
#[derive(Clone, Debug)]
struct Seen {
    at: Instant,
    path: String,
    authorization: Option<String>,
}

/// What a handler sees: the request's path and query, its If-None-Match, the server's base
/// URL and how many requests came before this one.
struct Ask<'a> {
    path: &'a str,
    if_none_match: Option<&'a str>,
    base: &'a str,
    n: usize,
}

type Handler = dyn Fn(Ask<'_>) -> Reply + Send + Sync;

struct Server {
    base: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    /// Serves `handler`; requests without the bearer token get 401.
    async fn start(handler: impl Fn(Ask<'_>) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let (b, s) = (base.clone(), seen.clone());
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (handler, base, seen) = (handler.clone(), b.clone(), s.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<Incoming>| {
                        let reply = answer(&req, handler.as_ref(), &base, &seen);
                        async move {
                            tokio::time::sleep(reply.delay).await;
                            let mut resp = Response::builder().status(reply.status);
                            if let Some(tag) = reply.etag {
                                resp = resp.header("etag", tag);
                            }
                            Ok::<_, Infallible>(
                                resp.body(Full::new(Bytes::from(reply.body))).unwrap(),
                            )
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Server { base, seen }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn answer(
    req: &Request<Incoming>,
    handler: &Handler,
    base: &str,
    seen: &Mutex<Vec<Seen>>,
) -> Reply {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/")
        .to_string();
    let authorization = header("authorization");
    let n = {
        let mut seen = seen.lock().unwrap();
        seen.push(Seen {
            at: Instant::now(),
            path: path.clone(),
            authorization: authorization.clone(),
        });
        seen.len() - 1
    };
    if authorization.as_deref() != Some(&format!("Bearer {TOKEN}")) {
        return Reply::status(
            StatusCode::UNAUTHORIZED,
            r#"{"error":{"code":"InvalidAuthenticationToken"}}"#,
        );
    }
    let inm = header("if-none-match");
    handler(Ask {
        path: &path,
        if_none_match: inm.as_deref(),
        base,
        n,
    })
}

fn token_file() -> (tempfile::TempDir, TokenSource) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token");
    std::fs::write(&path, format!("{TOKEN}\n")).unwrap();
    (dir, TokenSource::File(path))
}

fn source(url: String, token: TokenSource) -> PullSource {
    PullSource {
        url: url.parse().unwrap(),
        token,
        interval: Duration::from_millis(300),
        timeout: Duration::from_millis(500),
        max_pages: 10,
    }
}

/// Three pages in Graph's shape: page N links to page N+1 (`?page=N`).
fn three_pages(ask: Ask<'_>) -> Reply {
    let page = ask
        .path
        .rsplit("page=")
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or(1);
    let next = format!(
        "{}/v1.0/deviceManagement/managedDevices?page={}",
        ask.base,
        page + 1
    );
    let items: Vec<Value> = (0..page)
        .map(|i| json!({"azureADDeviceId": format!("{page}-{i}")}))
        .collect();
    let body = if page < 3 {
        json!({"@odata.context": "x", "value": items, "@odata.nextLink": next})
    } else {
        json!({"@odata.context": "x", "value": items})
    };
    Reply {
        etag: (page == 1).then_some("\"v1\""),
        ..Reply::json(body)
    }
}

#[tokio::test]
async fn follows_three_pages_with_the_token_on_each() {
    let server = Server::start(three_pages).await;
    let (_dir, token) = token_file();
    let src = source(server.url("/v1.0/deviceManagement/managedDevices"), token);
    let got = fetch(&client().unwrap(), &src, None).await.unwrap();
    let FetchOutcome::Document { items, etag, pages } = got else {
        panic!("{got:?}")
    };
    assert_eq!(pages, 3);
    assert_eq!(etag.as_deref(), Some("\"v1\""));
    let ids: Vec<&str> = items
        .iter()
        .map(|v| v["azureADDeviceId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["1-0", "2-0", "2-1", "3-0", "3-1", "3-2"]);
    let seen = server.seen();
    assert_eq!(seen.len(), 3);
    assert!(seen
        .iter()
        .all(|s| s.authorization.as_deref() == Some("Bearer s3cret-token")));
    assert!(seen[2].path.ends_with("page=3"));
}

#[tokio::test]
async fn etag_gives_not_modified() {
    let server = Server::start(|ask: Ask<'_>| {
        if ask.if_none_match == Some("\"v7\"") {
            return Reply::status(StatusCode::NOT_MODIFIED, "");
        }
        Reply {
            etag: Some("\"v7\""),
            ..Reply::json(json!({"value": [{"aadDeviceId": "a"}]}))
        }
    })
    .await;
    let (_dir, token) = token_file();
    let src = source(server.url("/api/machines"), token);
    let c = client().unwrap();
    let first = fetch(&c, &src, None).await.unwrap();
    let FetchOutcome::Document { etag, .. } = &first else {
        panic!("{first:?}")
    };
    assert_eq!(etag.as_deref(), Some("\"v7\""));
    assert_eq!(
        fetch(&c, &src, Some("\"v7\"")).await.unwrap(),
        FetchOutcome::NotModified
    );
    let changed = fetch(&c, &src, Some("\"v6\"")).await.unwrap();
    assert!(
        matches!(changed, FetchOutcome::Document { pages: 1, .. }),
        "{changed:?}"
    );
}

#[tokio::test]
async fn bearer_token_is_required() {
    let server = Server::start(three_pages).await;
    let url = server.url("/v1.0/deviceManagement/managedDevices");
    let err = fetch(
        &client().unwrap(),
        &source(url.clone(), TokenSource::None),
        None,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            PullError::Status {
                page: 1,
                status: 401,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("InvalidAuthenticationToken"),
        "{err}"
    );

    let var = "PORTCULLIS_PULL_TEST_TOKEN_UNSET";
    let err = fetch(
        &client().unwrap(),
        &source(url, TokenSource::Env(var.into())),
        None,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, PullError::Token(_)) && err.to_string().contains(var),
        "{err}"
    );
    assert_eq!(server.seen().len(), 1, "no request without a token");
}

/// Runs a fetch against a three-page feed whose page `bad` is replaced by `reply`.
async fn fetch_with_bad_page(
    bad: usize,
    reply: fn(&str) -> Reply,
) -> (Result<FetchOutcome, PullError>, Duration) {
    let server = Server::start(move |ask: Ask<'_>| {
        if ask.path.ends_with(&format!("page={bad}")) {
            reply(ask.base)
        } else {
            three_pages(ask)
        }
    })
    .await;
    let (_dir, token) = token_file();
    let src = source(server.url("/m?page=1"), token);
    let started = Instant::now();
    let got = fetch(&client().unwrap(), &src, None).await;
    (got, started.elapsed())
}

#[tokio::test]
async fn a_slow_page_times_out() {
    let (got, took) = fetch_with_bad_page(2, |_| Reply {
        delay: Duration::from_secs(5),
        ..Reply::json(json!({"value": []}))
    })
    .await;
    let err = got.unwrap_err();
    assert!(matches!(err, PullError::Timeout { page: 2, .. }), "{err}");
    assert!(took < Duration::from_secs(3), "took {took:?}");
}

#[tokio::test]
async fn garbage_and_partial_pages_fail_the_whole_fetch() {
    let (got, _) =
        fetch_with_bad_page(2, |_| Reply::status(StatusCode::OK, "<html>oops</html>")).await;
    let err = got.unwrap_err();
    assert!(matches!(err, PullError::Json { page: 2, .. }), "{err}");

    let (got, _) = fetch_with_bad_page(3, |_| {
        Reply::status(StatusCode::OK, r#"{"value":[{"id":"1"},"#)
    })
    .await;
    let err = got.unwrap_err();
    assert!(matches!(err, PullError::Json { page: 3, .. }), "{err}");

    let (got, _) = fetch_with_bad_page(3, |_| Reply::json(json!({"@odata.context": "x"}))).await;
    let err = got.unwrap_err();
    assert!(matches!(err, PullError::Shape { page: 3, .. }), "{err}");
    assert!(err.to_string().contains("no \"value\" array"), "{err}");

    let (got, _) = fetch_with_bad_page(2, |_| {
        Reply::status(StatusCode::SERVICE_UNAVAILABLE, "busy")
    })
    .await;
    let err = got.unwrap_err();
    assert!(
        matches!(
            err,
            PullError::Status {
                page: 2,
                status: 503,
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn next_links_to_other_hosts_are_refused() {
    let server = Server::start(|ask: Ask<'_>| {
        let port = ask.base.rsplit(':').next().unwrap_or_default();
        let other = format!("http://localhost:{port}/m?page=2");
        Reply::json(json!({"value": [1], "@odata.nextLink": other}))
    })
    .await;
    let (_dir, token) = token_file();
    let err = fetch(&client().unwrap(), &source(server.url("/m"), token), None)
        .await
        .unwrap_err();
    assert!(matches!(err, PullError::NextLink { page: 1, .. }), "{err}");
    assert!(
        err.to_string().contains("another scheme, host or port"),
        "{err}"
    );
    assert_eq!(server.seen().len(), 1, "the foreign link was not followed");
}

#[tokio::test]
async fn a_looping_next_link_stops_at_max_pages() {
    let server = Server::start(|ask: Ask<'_>| {
        Reply::json(json!({"value": [1], "@odata.nextLink": format!("{}/m", ask.base)}))
    })
    .await;
    let (_dir, token) = token_file();
    let mut src = source(server.url("/m"), token);
    src.max_pages = 4;
    let err = fetch(&client().unwrap(), &src, None).await.unwrap_err();
    assert_eq!(err, PullError::TooManyPages { max: 4 });
    assert_eq!(server.seen().len(), 4);
}

#[tokio::test]
async fn poller_backs_off_after_a_500_then_succeeds() {
    let server = Server::start(|ask: Ask<'_>| match ask.n {
        0 => Reply::status(StatusCode::INTERNAL_SERVER_ERROR, "boom"),
        _ => Reply {
            etag: Some("\"e1\""),
            ..Reply::json(json!({"value": [{"aadDeviceId": "x"}, {"aadDeviceId": "y"}]}))
        },
    })
    .await;
    let (_dir, token) = token_file();
    let src = source(server.url("/api/machines"), token);
    let status = Arc::new(PullStatus::default());
    let (docs_tx, mut docs) = tokio::sync::mpsc::unbounded_channel();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = spawn_poller(
        client().unwrap(),
        src,
        move |items| docs_tx.send(items.len()).map_err(|e| e.to_string()),
        status.clone(),
        stopped,
    );
    let count = tokio::time::timeout(Duration::from_secs(5), docs.recv())
        .await
        .unwrap();
    assert_eq!(count, Some(2));
    // Give the status update after the callback a moment.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let view = status.view();
    assert_eq!(view.consecutive_failures, 0);
    assert!(
        view.last_error
            .as_deref()
            .unwrap_or_default()
            .contains("HTTP 500"),
        "{view:?}"
    );
    assert_eq!(
        (view.etag.as_deref(), view.items, view.pages),
        (Some("\"e1\""), 2, 1)
    );
    assert!(view.last_success_at.is_some() && view.last_change_at.is_some());
    let seen = server.seen();
    let gap = seen[1].at - seen[0].at;
    assert!(
        gap >= Duration::from_millis(140),
        "retried after {gap:?}: no backoff"
    );

    // The next poll sends the ETag; the test server ignores it, so a document comes again.
    let again = tokio::time::timeout(Duration::from_secs(5), docs.recv())
        .await
        .unwrap();
    assert_eq!(again, Some(2));
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(2), task)
        .await
        .unwrap()
        .unwrap();
}
