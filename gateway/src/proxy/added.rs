//! The headers the gateway sets on a forwarded request (identity, forwarding, request id,
//! `Host`), kept beside the client's header map instead of inserted into it. The HTTP/1.1
//! upstream client (`h1::Outgoing`) writes them with the client's headers, leaving out the
//! client's headers of the same names, so none of them is hashed into the map; the HTTPS
//! client (hyper) gets them inserted ([`AddedHeaders::apply`]). Setting a name here has the
//! meaning of `HeaderMap::insert` (or `remove`) on the forwarded request.

use arrayvec::ArrayVec;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// At most this many: five identity headers, three `X-Forwarded-*`, `X-Request-Id`, `Host`,
/// and room to spare.
const CAPACITY: usize = 12;

pub static HOST: HeaderName = header::HOST;

/// The headers a forwarded request gets, in the order they are set. Each name is set at most
/// once (the call sites are fixed); setting is a push, with no search.
///
/// Only the slots in use are ever written or dropped: the value lives in the request's
/// future, which at hundreds of connections is out of cache by the time the upstream answers,
/// so the upstream client [`clear`](Self::clear)s it once the head is written.
pub struct AddedHeaders {
    /// `None` removes the client's header of that name and adds nothing.
    entries: ArrayVec<(&'static HeaderName, Option<HeaderValue>), CAPACITY>,
    /// Bit `b % 64` set for the first byte `b` of every name: most client headers are ruled
    /// out by one test before any name is compared (a shared bit only costs a comparison).
    first_bytes: u64,
}

impl Default for AddedHeaders {
    fn default() -> Self {
        Self::new()
    }
}

impl AddedHeaders {
    pub const fn new() -> Self {
        Self {
            entries: ArrayVec::new_const(),
            first_bytes: 0,
        }
    }

    /// Sets `name` to `value` (as `HeaderMap::insert`).
    pub fn set(&mut self, name: &'static HeaderName, value: HeaderValue) {
        self.push(name, Some(value));
    }

    /// Removes the client's `name` header, if any, and adds none (as `HeaderMap::remove`).
    pub fn remove(&mut self, name: &'static HeaderName) {
        self.push(name, None);
    }

    fn push(&mut self, name: &'static HeaderName, value: Option<HeaderValue>) {
        debug_assert!(!self.names().any(|n| n == name), "{name} added twice");
        // The fixed call sites set at most ten names, so the array never fills; were that to
        // change, debug builds (the tests) stop here, and release builds set the last slot
        // again rather than index past the end.
        debug_assert!(
            !self.entries.is_full(),
            "more than {CAPACITY} added headers"
        );
        if self.entries.is_full() {
            self.entries.pop();
        }
        self.entries.push((name, value));
        self.first_bytes |= first_byte_bit(name);
    }

    fn names(&self) -> impl Iterator<Item = &'static HeaderName> + '_ {
        self.entries.iter().map(|(n, _)| *n)
    }

    /// How many names were set.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Forgets every name, dropping the values.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.first_bytes = 0;
    }

    /// The value set for `name`, if one was.
    pub fn get(&self, name: &HeaderName) -> Option<&HeaderValue> {
        let (_, value) = self.entries.iter().find(|(n, _)| *n == name)?;
        value.as_ref()
    }

    /// Whether a client header named `name` is replaced or removed.
    pub fn replaces(&self, name: &HeaderName) -> bool {
        self.first_bytes & first_byte_bit(name) != 0 && self.names().any(|n| n == name)
    }

    /// The headers to write, in the order set.
    pub fn iter(&self) -> impl Iterator<Item = (&'static HeaderName, &HeaderValue)> + '_ {
        self.entries
            .iter()
            .filter_map(|(n, v)| Some((*n, v.as_ref()?)))
    }

    /// Inserts (or removes) each into `headers`, for a client that sends the map as it is.
    pub fn apply(&self, headers: &mut HeaderMap) {
        for (name, value) in &self.entries {
            match value {
                Some(v) => {
                    headers.insert(*name, v.clone());
                }
                None => {
                    headers.remove(*name);
                }
            }
        }
    }
}

fn first_byte_bit(name: &HeaderName) -> u64 {
    // Names are lowercase: `b % 64` gives each letter its own bit (digits and `-` may share
    // one with a letter; the filter then lets a name through to the comparison).
    name.as_str()
        .as_bytes()
        .first()
        .map_or(0, |b| 1u64 << (b % 64))
}

#[cfg(test)]
mod tests {
    use super::*;

    static X_A: HeaderName = HeaderName::from_static("x-a");
    static X_B: HeaderName = HeaderName::from_static("x-b");

    #[test]
    fn set_and_remove_mean_insert_and_remove() {
        let mut added = AddedHeaders::new();
        added.set(&HOST, HeaderValue::from_static("up.test"));
        added.set(&X_A, HeaderValue::from_static("2"));
        added.remove(&X_B);
        assert!(added.replaces(&HeaderName::from_static("x-a")));
        assert!(added.replaces(&HeaderName::from_static("x-b")));
        assert!(added.replaces(&header::HOST));
        assert!(!added.replaces(&header::ACCEPT));
        assert!(!added.replaces(&HeaderName::from_static("x-c")));
        assert_eq!(added.get(&X_A).unwrap(), "2");
        assert!(added.get(&X_B).is_none());
        let listed: Vec<_> = added.iter().map(|(n, v)| (n.as_str(), v.clone())).collect();
        assert_eq!(
            listed,
            [
                ("host", "up.test".parse().unwrap()),
                ("x-a", "2".parse().unwrap())
            ]
        );

        let mut map = HeaderMap::new();
        map.insert("x-a", HeaderValue::from_static("client"));
        map.insert("x-b", HeaderValue::from_static("client"));
        map.insert("accept", HeaderValue::from_static("*/*"));
        added.apply(&mut map);
        assert_eq!(map["x-a"], "2");
        assert!(!map.contains_key("x-b"));
        assert_eq!(map["host"], "up.test");
        assert_eq!(map["accept"], "*/*");

        added.clear();
        assert!(added.is_empty() && added.get(&X_A).is_none());
        assert!(!added.replaces(&HeaderName::from_static("x-a")));
        assert_eq!(added.iter().count(), 0);
    }
}
