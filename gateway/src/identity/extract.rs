//! Finding the token on a request: `Authorization: Bearer` first, then the session cookie.

use http::header::{AUTHORIZATION, COOKIE};
use http::HeaderMap;

use super::{IdentityFailure, IdentitySource};

/// The token and where it was found, or `None` when the request carries none.
pub(crate) fn find_token<'a>(
    headers: &'a HeaderMap,
    cookie_name: &str,
) -> Result<Option<(&'a str, IdentitySource)>, IdentityFailure> {
    let mut auth = headers.get_all(AUTHORIZATION).iter();
    if let Some(value) = auth.next() {
        if auth.next().is_some() {
            return Err(IdentityFailure::invalid(
                "more than one Authorization header",
            ));
        }
        // What `to_str` checks, for a header value (its bytes are never controls other than
        // tab): all ASCII. `is_ascii` and the UTF-8 check run a word at a time, `to_str` a
        // byte at a time over a token of ~1 KB.
        let bytes = value.as_bytes();
        let text = bytes
            .is_ascii()
            .then(|| std::str::from_utf8(bytes).ok())
            .flatten()
            .ok_or_else(|| IdentityFailure::invalid("Authorization header is not ASCII"))?;
        let (scheme, rest) = text.trim().split_once(' ').unwrap_or((text.trim(), ""));
        if scheme.eq_ignore_ascii_case("bearer") {
            let token = rest.trim();
            if token.is_empty() {
                return Err(IdentityFailure::invalid("empty bearer token"));
            }
            return Ok(Some((token, IdentitySource::BearerToken)));
        }
        // Another scheme (Basic, Negotiate, ...) is not ours: fall through to the cookie.
    }
    for value in headers.get_all(COOKIE) {
        let Ok(text) = value.to_str() else { continue };
        for pair in text.split(';') {
            if let Some((name, value)) = pair.trim().split_once('=') {
                if name.trim() == cookie_name {
                    let value = value.trim().trim_matches('"');
                    if value.is_empty() {
                        return Err(IdentityFailure::invalid("empty session cookie"));
                    }
                    return Ok(Some((value, IdentitySource::SessionCookie)));
                }
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(headers: &[(&str, &[u8])], expected: Result<Option<(&str, IdentitySource)>, ()>) {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            if let (Ok(n), Ok(v)) = (
                http::HeaderName::from_bytes(name.as_bytes()),
                http::HeaderValue::from_bytes(value),
            ) {
                map.append(n, v);
            }
        }
        assert_eq!(
            find_token(&map, "portcullis_session").map_err(|_| ()),
            expected,
            "{headers:?}"
        );
    }

    #[test]
    fn finds_bearer_then_cookie() {
        use IdentitySource::*;
        check(&[], Ok(None));
        check(
            &[("authorization", b"Bearer abc")],
            Ok(Some(("abc", BearerToken))),
        );
        check(
            &[("authorization", b"bearer   abc ")],
            Ok(Some(("abc", BearerToken))),
        );
        check(&[("authorization", b"Bearer")], Err(()));
        check(
            &[
                ("authorization", b"Bearer a"),
                ("authorization", b"Bearer b"),
            ],
            Err(()),
        );
        check(&[("authorization", b"Bearer \xff\xfe")], Err(()));
        check(&[("authorization", b"Basic dXNlcjpwYXNz")], Ok(None));
        check(
            &[
                ("authorization", b"Basic x"),
                ("cookie", b"a=1; portcullis_session=tok; b=2"),
            ],
            Ok(Some(("tok", SessionCookie))),
        );
        check(&[("cookie", b"xportcullis_session=tok")], Ok(None));
        check(
            &[("cookie", b"\xff"), ("cookie", b"portcullis_session=\"t\"")],
            Ok(Some(("t", SessionCookie))),
        );
        check(&[("cookie", b"portcullis_session=")], Err(()));
        check(
            &[
                ("authorization", b"Bearer first"),
                ("cookie", b"portcullis_session=second"),
            ],
            Ok(Some(("first", BearerToken))),
        );
    }
}
