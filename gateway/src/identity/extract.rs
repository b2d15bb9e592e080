//! Finding the token on a request: `Authorization: Bearer` first, then the session cookie.

use http::header::{AUTHORIZATION, COOKIE};
use http::HeaderMap;

use super::{IdentityFailure, IdentitySource};

/// The token's bytes and where it was found, or `None` when the request carries none. The
/// bytes are not checked here: a token the connection presented before is recognised by them
/// alone (see `TokenMemo`); a new one is checked to be ASCII by [`token_text`] before it is
/// verified.
pub(crate) fn find_token<'a>(
    headers: &'a HeaderMap,
    cookie_name: &str,
) -> Result<Option<(&'a [u8], IdentitySource)>, IdentityFailure> {
    let mut auth = headers.get_all(AUTHORIZATION).iter();
    if let Some(value) = auth.next() {
        if auth.next().is_some() {
            return Err(IdentityFailure::invalid(
                "more than one Authorization header",
            ));
        }
        // A header value holds no control bytes but tab: ASCII whitespace is space or tab.
        let text = value.as_bytes().trim_ascii();
        let (scheme, rest) = match text.iter().position(|&b| b == b' ') {
            Some(i) => (&text[..i], &text[i + 1..]),
            None => (text, &[][..]),
        };
        if scheme.eq_ignore_ascii_case(b"bearer") {
            let token = rest.trim_ascii();
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
                    return Ok(Some((value.as_bytes(), IdentitySource::SessionCookie)));
                }
            }
        }
    }
    Ok(None)
}

/// A token's text, to verify it: ASCII only (a JWT is base64url and dots).
pub(crate) fn token_text(token: &[u8]) -> Result<&str, IdentityFailure> {
    std::str::from_utf8(token)
        .ok()
        .filter(|t| t.is_ascii())
        .ok_or_else(|| IdentityFailure::invalid("the token is not ASCII"))
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
        // Found, then taken as text for verification (where a non-ASCII token stops).
        let found = find_token(&map, "portcullis_session").and_then(|found| {
            found
                .map(|(token, source)| token_text(token).map(|t| (t, source)))
                .transpose()
        });
        assert_eq!(found.map_err(|_| ()), expected, "{headers:?}");
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
