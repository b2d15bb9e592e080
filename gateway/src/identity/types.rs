//! The identity types the rest of the gateway reads, and the failure a request gets.

use std::fmt;
use std::sync::Arc;

use http::HeaderValue;

use crate::clock::UnixMillis;
use crate::ids::{DeviceId, GroupId, TenantId, UserId};
use crate::reason::ReasonCode;

/// A verified user identity (from a token or trusted headers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user: UserId,
    pub tenant: Option<TenantId>,
    /// Sorted and deduplicated, so membership is a binary search.
    pub groups: Box<[GroupId]>,
    /// `amr` contains `mfa`.
    pub mfa: bool,
    /// The token's `deviceid` claim.
    pub device: Option<DeviceId>,
    /// The token's `exp`; for trusted headers the request time (valid for that request only).
    pub expires_at: UnixMillis,
}

impl Identity {
    /// Sorts and deduplicates `groups`.
    pub fn normalize_groups(mut groups: Vec<GroupId>) -> Box<[GroupId]> {
        groups.sort_unstable();
        groups.dedup();
        groups.into_boxed_slice()
    }

    pub fn in_group(&self, group: GroupId) -> bool {
        self.groups.binary_search(&group).is_ok()
    }
}

/// How the user identity was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentitySource {
    BearerToken,
    SessionCookie,
    TrustedHeaders,
}

/// Where the resolved device id came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceSource {
    None,
    /// The token's `deviceid` claim (or the trusted device header).
    Token,
    /// The mTLS client certificate.
    Certificate,
    /// Both, and they agree.
    TokenAndCertificate,
}

/// The outcome of authenticating one request.
#[derive(Debug, Clone)]
pub struct RequestIdentity {
    pub identity: Arc<Identity>,
    /// The device, after reconciling the token claim with the client certificate.
    pub device: Option<DeviceId>,
    pub source: IdentitySource,
    pub device_source: DeviceSource,
}

#[cfg(test)]
impl Identity {
    /// A user with no groups, MFA or device whose identity expires at `exp` (ms).
    pub(crate) fn expiring(exp: i64) -> Self {
        Identity {
            user: UserId::from_u128(7).unwrap_or_else(|| unreachable!("non-zero")),
            tenant: None,
            groups: Box::default(),
            mfa: false,
            device: None,
            expires_at: UnixMillis(exp),
        }
    }
}

/// Why a request has no usable identity. `message` is short and safe to show the client
/// (it never contains token contents beyond a claim name).
#[derive(Clone, PartialEq, Eq)]
pub struct IdentityFailure {
    pub reason: ReasonCode,
    pub message: Arc<str>,
}

impl IdentityFailure {
    pub fn new(reason: ReasonCode, message: impl Into<Arc<str>>) -> Self {
        Self {
            reason,
            message: message.into(),
        }
    }

    pub(crate) fn invalid(message: impl Into<Arc<str>>) -> Self {
        Self::new(ReasonCode::TokenInvalid, message)
    }
}

impl fmt::Debug for IdentityFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason, self.message)
    }
}

impl fmt::Display for IdentityFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// The `WWW-Authenticate` value for a 401 (RFC 6750 section 3): no error code when the request
/// carried no token, otherwise `error="invalid_token"` with the failure as description.
pub fn www_authenticate(failure: &IdentityFailure) -> HeaderValue {
    if failure.reason == ReasonCode::TokenMissing {
        return HeaderValue::from_static("Bearer realm=\"portcullis\"");
    }
    // RFC 6750: error_description is %x20-21 / %x23-5B / %x5D-7E (no quote, no backslash).
    let description: String = format!("{}: {}", failure.reason, failure.message)
        .chars()
        .map(|c| match c {
            '"' | '\\' => '\'',
            ' '..='~' => c,
            _ => '?',
        })
        .take(200)
        .collect();
    let text = format!(
        "Bearer realm=\"portcullis\", error=\"invalid_token\", error_description=\"{description}\""
    );
    // Only printable ASCII went in, so this cannot fail; the fallback keeps it panic-free.
    HeaderValue::from_str(&text).unwrap_or_else(|_| {
        HeaderValue::from_static("Bearer realm=\"portcullis\", error=\"invalid_token\"")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(reason: ReasonCode, message: &str, expected: &str) {
        let value = www_authenticate(&IdentityFailure::new(reason, message));
        assert_eq!(value.to_str().ok(), Some(expected));
    }

    #[test]
    fn www_authenticate_follows_rfc6750() {
        check(ReasonCode::TokenMissing, "x", "Bearer realm=\"portcullis\"");
        check(
            ReasonCode::TokenExpired,
            "expired \"at\" \\ 5\u{7f}é",
            "Bearer realm=\"portcullis\", error=\"invalid_token\", error_description=\"token_expired: expired 'at' ' 5??\"",
        );
    }

    #[test]
    fn groups_are_sorted_for_binary_search() {
        let g = |n| GroupId::from_u128(n).unwrap();
        let groups = Identity::normalize_groups(vec![g(3), g(1), g(3), g(2)]);
        assert_eq!(&*groups, &[g(1), g(2), g(3)]);
    }
}
