//! The user and device GUIDs of a connection's last request as header values. A keep-alive
//! client repeats the same token on every request, so each GUID is formatted once per
//! connection instead of once per request.

use http::HeaderValue;

use crate::per_connection::PerConnection;

/// Which GUID a value is for.
#[derive(Debug, Clone, Copy)]
pub enum Slot {
    User = 0,
    Device = 1,
}

/// One per connection (see `ConnInfo`); a clone starts empty.
#[derive(Default, Clone, Debug)]
pub struct GuidHeaders(PerConnection<[Option<(u128, HeaderValue)>; 2]>);

impl GuidHeaders {
    /// `guid` as a lowercase hyphenated header value (a reference-counted copy when it is the
    /// same GUID as last time in `slot`).
    pub fn value(&self, slot: Slot, guid: u128) -> HeaderValue {
        let mut memo = self.0.lock();
        let last = &mut memo[slot as usize];
        match last {
            Some((g, v)) if *g == guid => v.clone(),
            _ => {
                let value = format(guid);
                *last = Some((guid, value.clone()));
                value
            }
        }
    }
}

fn format(guid: u128) -> HeaderValue {
    let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    uuid::Uuid::from_u128(guid)
        .hyphenated()
        .encode_lower(&mut buf);
    // Shared from the start: cloning it is then one reference count, never an allocation.
    // Hex digits and hyphens are always valid header bytes.
    HeaderValue::from_maybe_shared(bytes::Bytes::from_owner(buf))
        .unwrap_or_else(|_| HeaderValue::from_static("00000000-0000-0000-0000-000000000000"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_follow_the_guid_in_each_slot() {
        let memo = GuidHeaders::default();
        let a = 0x0123_4567_89ab_cdef_0123_4567_89ab_cdef_u128;
        assert_eq!(
            memo.value(Slot::User, a),
            "01234567-89ab-cdef-0123-456789abcdef"
        );
        assert_eq!(
            memo.value(Slot::User, a),
            "01234567-89ab-cdef-0123-456789abcdef"
        );
        assert_eq!(
            memo.value(Slot::Device, 1),
            "00000000-0000-0000-0000-000000000001"
        );
        assert_eq!(
            memo.value(Slot::User, 2),
            "00000000-0000-0000-0000-000000000002"
        );
        assert_eq!(
            memo.value(Slot::Device, 1),
            "00000000-0000-0000-0000-000000000001"
        );
        assert_eq!(
            memo.clone().value(Slot::Device, 3),
            "00000000-0000-0000-0000-000000000003"
        );
    }
}
