//! Every response the gateway writes itself. `Refusal` lists why a request did not reach (or
//! come back from) the app; `Refusal::status` is the one place that decides status codes;
//! `render` writes HTML for browsers and `application/problem+json` for everything else.
//! No policy internals reach the client: only the reason code, its plain-words description and
//! the correlation (request) id, which the admin side can explain fully.

use http::header::{self, HeaderMap, HeaderValue};
use http::{Response, StatusCode};

use super::body::ProxyBody;
use super::headers::X_REQUEST_ID;
use crate::reason::ReasonCode;

/// Why the gateway answers instead of the app.
#[derive(Debug, Clone)]
pub enum Refusal {
    /// No route matches the request's host and path.
    NoRoute,
    /// The upstream refused the connection or could not be reached.
    UpstreamUnreachable,
    /// The upstream did not connect or answer in time.
    UpstreamTimeout,
    /// The upstream broke the protocol or the connection.
    UpstreamFailed,
    /// No valid identity: 401 with a `WWW-Authenticate` challenge.
    Unauthenticated {
        reason: ReasonCode,
        challenge: HeaderValue,
    },
    /// Access refused by the decision: 403.
    Denied(ReasonCode),
    /// The gateway cannot decide safely right now (no snapshot yet, stale data): 503.
    Unavailable(ReasonCode),
}

impl Refusal {
    pub fn status(&self) -> StatusCode {
        match self {
            Refusal::NoRoute => StatusCode::NOT_FOUND,
            Refusal::UpstreamUnreachable | Refusal::UpstreamFailed => StatusCode::BAD_GATEWAY,
            Refusal::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
            Refusal::Unauthenticated { .. } => StatusCode::UNAUTHORIZED,
            Refusal::Denied(_) => StatusCode::FORBIDDEN,
            Refusal::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The machine-readable code, also the metrics label.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::NoRoute => "no_route",
            Refusal::UpstreamUnreachable => "upstream_unreachable",
            Refusal::UpstreamTimeout => "upstream_timeout",
            Refusal::UpstreamFailed => "upstream_failed",
            Refusal::Unauthenticated { reason, .. } => reason.as_str(),
            Refusal::Denied(reason) | Refusal::Unavailable(reason) => reason.as_str(),
        }
    }

    fn title(&self) -> &'static str {
        match self {
            Refusal::NoRoute => "Not found",
            Refusal::UpstreamUnreachable | Refusal::UpstreamFailed => "The app is not reachable",
            Refusal::UpstreamTimeout => "The app did not answer in time",
            Refusal::Unauthenticated { .. } => "Sign-in required",
            Refusal::Denied(_) => "Access blocked",
            Refusal::Unavailable(_) => "Temporarily unavailable",
        }
    }

    fn detail(&self) -> &'static str {
        match self {
            Refusal::NoRoute => "No app is published at this address.",
            Refusal::UpstreamUnreachable | Refusal::UpstreamFailed => {
                "The gateway could not reach the app behind it. Try again in a moment."
            }
            Refusal::UpstreamTimeout => {
                "The app behind the gateway took too long to answer. Try again in a moment."
            }
            Refusal::Unauthenticated { reason, .. }
            | Refusal::Denied(reason)
            | Refusal::Unavailable(reason) => reason.describe(),
        }
    }

    fn advice(&self) -> &'static str {
        match self {
            Refusal::Denied(_) | Refusal::Unauthenticated { .. } => {
                "If you think this is wrong, contact your IT help desk and give them the correlation id below."
            }
            _ => "If this keeps happening, contact your IT help desk with the correlation id below.",
        }
    }
}

/// Whether the client prefers HTML (a browser) over JSON.
pub fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"))
}

/// Writes the response for a refusal.
pub fn render(refusal: &Refusal, request_id: &HeaderValue, html: bool) -> Response<ProxyBody> {
    let status = refusal.status();
    let id = request_id.to_str().unwrap_or("");
    let (content_type, body) = if html {
        ("text/html; charset=utf-8", html_page(refusal, status, id))
    } else {
        (
            "application/problem+json",
            problem_json(refusal, status, id),
        )
    };
    let mut resp = Response::new(ProxyBody::full(body));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(X_REQUEST_ID.clone(), request_id.clone());
    if let Refusal::Unauthenticated { challenge, .. } = refusal {
        h.insert(header::WWW_AUTHENTICATE, challenge.clone());
    }
    resp
}

fn problem_json(refusal: &Refusal, status: StatusCode, id: &str) -> String {
    serde_json::json!({
        "type": format!("urn:portcullis:problem:{}", refusal.code()),
        "title": refusal.title(),
        "status": status.as_u16(),
        "detail": refusal.detail(),
        "reason": refusal.code(),
        "correlationId": id,
    })
    .to_string()
}

fn html_page(refusal: &Refusal, status: StatusCode, id: &str) -> String {
    // Every interpolated value is a static string or a request id limited to [A-Za-z0-9._:-].
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
<style>body{{font-family:system-ui,sans-serif;max-width:40em;margin:4em auto;padding:0 1em;color:#222}}\
code{{background:#f2f2f2;padding:.1em .3em}}</style></head><body>\n\
<h1>{title}</h1>\n<p>{detail}</p>\n<p>{advice}</p>\n\
<dl><dt>Reason</dt><dd><code>{code}</code></dd><dt>Correlation id</dt><dd><code>{id}</code></dd>\
<dt>Status</dt><dd>{status}</dd></dl>\n</body></html>\n",
        title = refusal.title(),
        detail = refusal.detail(),
        advice = refusal.advice(),
        code = refusal.code(),
        id = html_escape(id),
        status = status.as_u16(),
    )
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body_text(resp: Response<ProxyBody>) -> String {
        match resp.into_body() {
            ProxyBody::Full(Some(b)) => String::from_utf8(b.to_vec()).unwrap(),
            _ => String::new(),
        }
    }

    #[test]
    fn statuses_are_decided_in_one_place() {
        let cases = [
            (Refusal::NoRoute, 404, "no_route"),
            (Refusal::UpstreamUnreachable, 502, "upstream_unreachable"),
            (Refusal::UpstreamTimeout, 504, "upstream_timeout"),
            (
                Refusal::Denied(ReasonCode::RiskAboveThreshold),
                403,
                "risk_above_threshold",
            ),
            (
                Refusal::Unavailable(ReasonCode::SnapshotStale),
                503,
                "snapshot_stale",
            ),
        ];
        for (refusal, status, code) in cases {
            assert_eq!(refusal.status().as_u16(), status);
            assert_eq!(refusal.code(), code);
        }
    }

    #[test]
    fn json_for_clients_html_for_browsers() {
        let id = HeaderValue::from_static("req-1");
        let r = Refusal::Denied(ReasonCode::RiskAboveThreshold);
        let json = render(&r, &id, false);
        assert_eq!(
            json.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        let v: serde_json::Value = serde_json::from_str(&body_text(json)).unwrap();
        assert_eq!(v["reason"], "risk_above_threshold");
        assert_eq!(v["correlationId"], "req-1");
        assert_eq!(v["status"], 403);

        let html = body_text(render(&r, &id, true));
        assert!(
            html.contains("Access blocked")
                && html.contains("req-1")
                && html.contains("risk_above_threshold")
        );
    }

    #[test]
    fn unauthenticated_carries_a_challenge() {
        let r = Refusal::Unauthenticated {
            reason: ReasonCode::TokenMissing,
            challenge: HeaderValue::from_static("Bearer realm=\"portcullis\""),
        };
        let resp = render(&r, &HeaderValue::from_static("x"), false);
        assert_eq!(resp.status(), 401);
        assert_eq!(
            resp.headers()[header::WWW_AUTHENTICATE],
            "Bearer realm=\"portcullis\""
        );
    }

    #[test]
    fn accept_negotiation() {
        let mut h = HeaderMap::new();
        assert!(!wants_html(&h));
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static("text/html,application/xhtml+xml"),
        );
        assert!(wants_html(&h));
    }
}
