//! One fetch of a paged OData collection: the first page, then every `@odata.nextLink`, all or
//! nothing. A failed page fails the whole fetch so that a partial inventory is never published.

use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, ETAG, IF_NONE_MATCH, USER_AGENT};
use http::{HeaderValue, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use serde_json::Value;

use super::source::origin;
use super::{PullError, PullSource};

/// The HTTP(S) client used for pulling; cheap to clone.
pub type PullClient = Client<HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// The largest page body accepted.
pub const MAX_PAGE_BYTES: usize = 64 * 1024 * 1024;

/// What one fetch found.
#[derive(Debug, Clone, PartialEq)]
pub enum FetchOutcome {
    /// The first page answered 304 to our `If-None-Match`: nothing changed.
    NotModified,
    /// The whole collection: the `value` items of every page, in order.
    Document {
        items: Vec<Value>,
        /// The first page's `ETag`, to send as `If-None-Match` next time.
        etag: Option<String>,
        pages: usize,
    },
}

/// Builds a client for pulling: HTTPS verified against the web PKI roots, plain HTTP allowed
/// (for local test feeds).
pub fn client() -> Result<PullClient, PullError> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
        .map_err(|e| PullError::Client(e.to_string()))?
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .build(https))
}

/// Fetches every page of `source`. With `etag`, the first request carries `If-None-Match`
/// and a 304 answer gives `NotModified`. The bearer token is read once and sent on every
/// page; each page has `source.timeout`; only next links to the configured scheme, host and
/// port are followed.
pub async fn fetch(
    client: &PullClient,
    source: &PullSource,
    etag: Option<&str>,
) -> Result<FetchOutcome, PullError> {
    let token = match source.token.read()? {
        Some(t) => {
            let mut v = HeaderValue::try_from(format!("Bearer {t}")).map_err(|_| {
                PullError::Token(format!(
                    "{} holds characters not allowed in a header",
                    source.token
                ))
            })?;
            v.set_sensitive(true);
            Some(v)
        }
        None => None,
    };
    let home = origin(&source.url);
    let mut url = source.url.clone();
    let mut items = Vec::new();
    let mut first_etag = None;
    for page in 1..=source.max_pages {
        let if_none_match = if page == 1 { etag } else { None };
        let (status, headers, body) = get_page(
            client,
            &url,
            token.as_ref(),
            if_none_match,
            source.timeout,
            page,
        )
        .await?;
        if status == StatusCode::NOT_MODIFIED && if_none_match.is_some() {
            return Ok(FetchOutcome::NotModified);
        }
        if !status.is_success() {
            return Err(PullError::Status {
                page,
                url: url.to_string(),
                status: status.as_u16(),
                body: snippet(&body),
            });
        }
        if page == 1 {
            first_etag = headers
                .get(ETAG)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
        }
        let next = read_page(&body, page, &mut items)?;
        match next {
            None => {
                return Ok(FetchOutcome::Document {
                    items,
                    etag: first_etag,
                    pages: page,
                })
            }
            Some(link) => url = check_next_link(&link, home.as_ref(), page)?,
        }
    }
    Err(PullError::TooManyPages {
        max: source.max_pages,
    })
}

async fn get_page(
    client: &PullClient,
    url: &Uri,
    token: Option<&HeaderValue>,
    if_none_match: Option<&str>,
    timeout: Duration,
    page: usize,
) -> Result<(StatusCode, http::HeaderMap, Bytes), PullError> {
    let mut req = Request::get(url.clone())
        .header(ACCEPT, "application/json")
        .header(
            USER_AGENT,
            concat!("portcullis/", env!("CARGO_PKG_VERSION")),
        );
    if let Some(t) = token {
        req = req.header(AUTHORIZATION, t.clone());
    }
    if let Some(tag) = if_none_match {
        req = req.header(IF_NONE_MATCH, tag);
    }
    let req = req.body(Empty::new()).map_err(|e| PullError::Request {
        page,
        url: url.to_string(),
        message: e.to_string(),
    })?;
    let exchange = async {
        let resp = client.request(req).await.map_err(|e| PullError::Request {
            page,
            url: url.to_string(),
            message: error_chain(&e),
        })?;
        let (parts, body) = resp.into_parts();
        let body = Limited::new(body, MAX_PAGE_BYTES)
            .collect()
            .await
            .map_err(|e| PullError::Body {
                page,
                message: format!("reading the body failed: {e}"),
            })?
            .to_bytes();
        Ok((parts.status, parts.headers, body))
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| PullError::Timeout {
            page,
            url: url.to_string(),
            timeout,
        })?
}

/// Appends the page's `value` items; returns its `@odata.nextLink`, if any.
fn read_page(
    body: &[u8],
    page: usize,
    items: &mut Vec<Value>,
) -> Result<Option<String>, PullError> {
    let doc: Value = serde_json::from_slice(body).map_err(|e| PullError::Json {
        page,
        message: e.to_string(),
    })?;
    let Value::Object(mut obj) = doc else {
        return Err(PullError::Shape {
            page,
            message: "the page is not a JSON object".into(),
        });
    };
    let next = match obj.remove("@odata.nextLink") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(_) => {
            return Err(PullError::Shape {
                page,
                message: "\"@odata.nextLink\" is not a string".into(),
            })
        }
    };
    match obj.remove("value") {
        Some(Value::Array(page_items)) => items.extend(page_items),
        Some(_) => {
            return Err(PullError::Shape {
                page,
                message: "\"value\" is not an array".into(),
            })
        }
        None => {
            return Err(PullError::Shape {
                page,
                message: "no \"value\" array (a partial or error page)".into(),
            })
        }
    }
    Ok(next)
}

fn check_next_link(
    link: &str,
    home: Option<&(http::uri::Scheme, String, u16)>,
    page: usize,
) -> Result<Uri, PullError> {
    let refuse = |reason: &str| PullError::NextLink {
        page,
        link: link.chars().take(200).collect(),
        reason: reason.into(),
    };
    let uri: Uri = link.parse().map_err(|_| refuse("not a URL"))?;
    let there = origin(&uri).ok_or_else(|| refuse("not an absolute http(s) URL"))?;
    if Some(&there) != home {
        return Err(refuse(
            "it points to another scheme, host or port than the configured url",
        ));
    }
    Ok(uri)
}

fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        String::new()
    } else {
        let cut: String = text.chars().take(200).collect();
        format!(": {cut}")
    }
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(body: &str, expected: Result<(usize, Option<&str>), &str>) {
        let mut items = Vec::new();
        match (read_page(body.as_bytes(), 2, &mut items), expected) {
            (Ok(next), Ok((n, link))) => {
                assert_eq!(items.len(), n, "{body}");
                assert_eq!(next.as_deref(), link, "{body}");
            }
            (Err(e), Err(part)) => {
                let text = e.to_string();
                assert!(
                    text.starts_with("page 2: ") && text.contains(part),
                    "{body}: {text}"
                );
            }
            (got, want) => panic!("{body}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn page_shapes() {
        check(r#"{"value":[{},{}]}"#, Ok((2, None)));
        check(
            r#"{"value":[],"@odata.nextLink":"https://h/p?s=1"}"#,
            Ok((0, Some("https://h/p?s=1"))),
        );
        check(r#"{"value":[1],"@odata.nextLink":null}"#, Ok((1, None)));
        check(
            r#"{"value":[1],"@odata.nextLink":7}"#,
            Err("nextLink\" is not a string"),
        );
        check(r#"{"@odata.context":"x"}"#, Err("no \"value\" array"));
        check(r#"{"value":{}}"#, Err("\"value\" is not an array"));
        check("[]", Err("not a JSON object"));
        check(r#"{"value":[{"id":"#, Err("not valid JSON"));
        check("<html>", Err("not valid JSON"));
    }

    #[test]
    fn next_links_stay_on_the_configured_origin() {
        let home = origin(&"https://graph.example/v1.0/m".parse().unwrap());
        let ok = |l: &str| check_next_link(l, home.as_ref(), 1).is_ok();
        assert!(ok("https://graph.example/v1.0/m?$skiptoken=abc"));
        assert!(ok("https://graph.example:443/v1.0/m?$skiptoken=abc"));
        assert!(!ok("https://evil.example/v1.0/m"));
        assert!(!ok("http://graph.example/v1.0/m"));
        assert!(!ok("https://graph.example:8443/v1.0/m"));
        assert!(!ok("/v1.0/m?$skiptoken=abc"));
        assert!(!ok("not a url at all"));
    }
}
