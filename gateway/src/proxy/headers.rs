//! Header rules of a proxy: hop-by-hop headers removed (RFC 9110 section 7.6.1), forwarding
//! headers added, request ids kept or made.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

use super::added::AddedHeaders;

pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// The hop-by-hop headers every proxy removes, besides those `Connection` lists.
static FIXED_HOP_BY_HOP: [&HeaderName; 8] = [
    &KEEP_ALIVE,
    &PROXY_CONNECTION,
    &header::PROXY_AUTHENTICATE,
    &header::PROXY_AUTHORIZATION,
    &header::TE,
    &header::TRAILER,
    &header::TRANSFER_ENCODING,
    &header::UPGRADE,
];

/// Removes the hop-by-hop headers: those named in `Connection`, `Connection` itself, and the
/// fixed list. One pass over the names first: most messages carry none of them, or only
/// `Connection: keep-alive`, and each `remove` costs a hash and a probe.
pub fn remove_hop_by_hop(headers: &mut HeaderMap) {
    let mut connection = false;
    let mut fixed = 0u8; // bit i: FIXED_HOP_BY_HOP[i] is present
    for name in headers.keys() {
        if name == header::CONNECTION {
            connection = true;
        } else if let Some(i) = FIXED_HOP_BY_HOP.iter().position(|h| *h == name) {
            fixed |= 1 << i;
        }
    }
    if connection {
        let mut values = headers.get_all(header::CONNECTION).iter();
        match (values.next().cloned(), values.next()) {
            // One value, the usual case: a clone of a parsed value shares its buffer.
            (Some(only), None) => remove_listed(headers, &only),
            _ => {
                let all: Vec<HeaderValue> = headers
                    .get_all(header::CONNECTION)
                    .iter()
                    .cloned()
                    .collect();
                for v in &all {
                    remove_listed(headers, v);
                }
            }
        }
        headers.remove(header::CONNECTION);
    }
    for (i, name) in FIXED_HOP_BY_HOP.iter().enumerate() {
        if fixed & (1 << i) != 0 {
            headers.remove(*name);
        }
    }
}

/// Whether `name` is one of the hop-by-hop headers every proxy removes (`Connection` and the
/// headers it names aside).
pub fn is_fixed_hop_by_hop(name: &HeaderName) -> bool {
    FIXED_HOP_BY_HOP.contains(&name)
}

/// Removes the headers a `Connection` value names (`keep-alive` is in the fixed list).
fn remove_listed(headers: &mut HeaderMap, listed: &HeaderValue) {
    let Ok(listed) = listed.to_str() else { return };
    for name in listed.split(',') {
        let name = name.trim();
        if !name.is_empty() && !name.eq_ignore_ascii_case("keep-alive") {
            headers.remove(name);
        }
    }
}

/// Adds `X-Forwarded-For` (appending the peer to what the client sent in `headers`), and sets
/// `X-Forwarded-Proto` and `X-Forwarded-Host`.
pub fn add_forwarded(
    headers: &HeaderMap,
    added: &mut AddedHeaders,
    peer: IpAddr,
    tls: bool,
    host: Option<&HeaderValue>,
) {
    let mut buf = [0u8; 48];
    let peer_text = ip_text(peer, &mut buf);
    let xff = match headers.get(&X_FORWARDED_FOR).and_then(|v| v.to_str().ok()) {
        Some(prior) if !prior.trim().is_empty() => {
            HeaderValue::from_str(&format!("{prior}, {peer_text}"))
        }
        _ => HeaderValue::from_str(peer_text),
    };
    match xff {
        Ok(v) => added.set(&X_FORWARDED_FOR, v),
        // Not reachable (the prior value was text, the peer is an address); never forward
        // the client's value unchecked.
        Err(_) => added.remove(&X_FORWARDED_FOR),
    }
    added.set(
        &X_FORWARDED_PROTO,
        HeaderValue::from_static(if tls { "https" } else { "http" }),
    );
    match host {
        Some(h) => added.set(&X_FORWARDED_HOST, h.clone()),
        None => added.remove(&X_FORWARDED_HOST),
    }
}

/// `ip` as text in `buf`: IPv4 by hand (the formatter costs more than the rest of
/// `add_forwarded`), IPv6 through `Display`.
fn ip_text(ip: IpAddr, buf: &mut [u8; 48]) -> &str {
    let len = match ip {
        IpAddr::V4(v4) => {
            let mut n = 0;
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    buf[n] = b'.';
                    n += 1;
                }
                if octet >= 100 {
                    buf[n] = b'0' + octet / 100;
                    n += 1;
                }
                if octet >= 10 {
                    buf[n] = b'0' + octet / 10 % 10;
                    n += 1;
                }
                buf[n] = b'0' + octet % 10;
                n += 1;
            }
            n
        }
        IpAddr::V6(v6) => {
            use std::io::Write;
            let mut cursor = std::io::Cursor::new(&mut buf[..]);
            // An IPv6 address is at most 45 characters: it always fits.
            let _ = write!(cursor, "{v6}");
            cursor.position() as usize
        }
    };
    // Only ASCII digits, dots, colons and hex letters were written.
    std::str::from_utf8(&buf[..len]).unwrap_or("")
}

/// Makes request ids: a random per-process prefix and a counter, 24 hex digits.
pub struct RequestIds {
    prefix: u64,
    counter: AtomicU64,
}

impl RequestIds {
    pub fn new() -> Self {
        use std::hash::{BuildHasher, Hasher};
        // A per-process random seed from the std hasher's random keys, mixed with time and pid.
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(crate::clock::UnixMillis::now().0 as u128);
        h.write_u32(std::process::id());
        Self {
            prefix: h.finish(),
            counter: AtomicU64::new(0),
        }
    }

    /// Keeps the client's `X-Request-Id` when it is sane (1-128 of `[A-Za-z0-9._:-]`), else
    /// makes one.
    pub fn for_request(&self, headers: &HeaderMap) -> HeaderValue {
        if let Some(v) = headers.get(&X_REQUEST_ID) {
            let b = v.as_bytes();
            if !b.is_empty()
                && b.len() <= 128
                && b.iter()
                    .all(|c| c.is_ascii_alphanumeric() || b"._:-".contains(c))
            {
                return v.clone();
            }
        }
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let mut buf = [0u8; 24];
        hex(self.prefix >> 32, &mut buf[..8]);
        hex(n, &mut buf[8..]);
        // Only hex digits were written, which are always valid header bytes. A shared `Bytes`
        // from the start: the id is cloned into the upstream request and the response, and
        // cloning a plain `Vec`-backed value would allocate again.
        HeaderValue::from_maybe_shared(bytes::Bytes::from_owner(buf))
            .unwrap_or_else(|_| HeaderValue::from_static("0"))
    }
}

impl Default for RequestIds {
    fn default() -> Self {
        Self::new()
    }
}

/// A number sent as a header value on every request (the snapshot version), formatted once
/// per value instead of once per request.
pub struct NumberHeader(arc_swap::ArcSwap<(u64, HeaderValue)>);

impl NumberHeader {
    pub fn new() -> Self {
        Self(arc_swap::ArcSwap::from_pointee((
            0,
            HeaderValue::from_static("0"),
        )))
    }

    /// `n` as a header value (a cheap reference-counted copy when `n` is the last one).
    pub fn get(&self, n: u64) -> HeaderValue {
        let last = self.0.load();
        if last.0 == n {
            return last.1.clone();
        }
        let value = HeaderValue::from_maybe_shared(bytes::Bytes::from(n.to_string()))
            .unwrap_or_else(|_| HeaderValue::from_static("0"));
        self.0.store(std::sync::Arc::new((n, value.clone())));
        value
    }
}

impl Default for NumberHeader {
    fn default() -> Self {
        Self::new()
    }
}

fn hex(mut value: u64, out: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for slot in out.iter_mut().rev() {
        *slot = DIGITS[(value & 0xf) as usize];
        value >>= 4;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn number_headers_follow_the_number() {
        let h = super::NumberHeader::new();
        assert_eq!(h.get(0), "0");
        assert_eq!(h.get(42), "42");
        assert_eq!(h.get(42), "42");
        assert_eq!(h.get(u64::MAX), u64::MAX.to_string().as_str());
        assert_eq!(h.get(7), "7");
    }

    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn hop_by_hop_and_connection_listed_headers_go() {
        let mut h = map(&[
            ("connection", "keep-alive, x-secret"),
            ("keep-alive", "timeout=5"),
            ("x-secret", "1"),
            ("te", "trailers"),
            ("upgrade", "websocket"),
            ("proxy-authorization", "Basic x"),
            ("transfer-encoding", "chunked"),
            ("accept", "*/*"),
        ]);
        remove_hop_by_hop(&mut h);
        assert_eq!(
            h.keys().map(|k| k.as_str()).collect::<Vec<_>>(),
            vec!["accept"]
        );
    }

    #[test]
    fn connection_listed_headers_go_with_one_or_several_values() {
        let check = |pairs: &[(&str, &str)], left: &[&str]| {
            let mut h = map(pairs);
            remove_hop_by_hop(&mut h);
            let mut got: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
            got.sort_unstable();
            assert_eq!(got, left, "{pairs:?}");
        };
        check(
            &[("connection", "keep-alive"), ("accept", "*/*")],
            &["accept"],
        );
        check(
            &[("connection", "close, X-A"), ("x-a", "1"), ("x-b", "2")],
            &["x-b"],
        );
        check(
            &[
                ("connection", "x-a"),
                ("connection", "x-b"),
                ("x-a", "1"),
                ("x-b", "2"),
                ("x-c", "3"),
            ],
            &["x-c"],
        );
        check(&[("te", "trailers"), ("x-c", "3")], &["x-c"]);
        check(&[("x-c", "3")], &["x-c"]);
    }

    #[test]
    fn ip_text_matches_display() {
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "10.20.30.40",
            "255.255.255.255",
            "1.99.100.9",
            "::1",
            "2001:db8::8a2e:370:7334",
            "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            let mut buf = [0u8; 48];
            assert_eq!(ip_text(ip, &mut buf), ip.to_string());
        }
    }

    #[test]
    fn forwarded_headers_append_and_overwrite() {
        let mut h = map(&[
            ("x-forwarded-for", "10.0.0.1"),
            ("x-forwarded-proto", "https"),
        ]);
        let mut added = AddedHeaders::new();
        add_forwarded(
            &h,
            &mut added,
            "127.0.0.2".parse().unwrap(),
            false,
            Some(&HeaderValue::from_static("a.test")),
        );
        added.apply(&mut h);
        assert_eq!(h["x-forwarded-for"], "10.0.0.1, 127.0.0.2");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["x-forwarded-host"], "a.test");
        let mut h = map(&[("x-forwarded-host", "spoofed.test")]);
        let mut added = AddedHeaders::new();
        add_forwarded(&h, &mut added, "::1".parse().unwrap(), true, None);
        added.apply(&mut h);
        assert_eq!(h["x-forwarded-for"], "::1");
        assert_eq!(h["x-forwarded-proto"], "https");
        assert!(!h.contains_key("x-forwarded-host"));
    }

    #[test]
    fn request_ids_are_kept_when_sane_and_made_otherwise() {
        let ids = RequestIds::new();
        assert_eq!(
            ids.for_request(&map(&[("x-request-id", "abc-123")])),
            "abc-123"
        );
        let made = ids.for_request(&map(&[("x-request-id", "bad id with spaces")]));
        assert_eq!(made.len(), 24);
        let next = ids.for_request(&HeaderMap::new());
        assert_ne!(made, next);
    }
}
