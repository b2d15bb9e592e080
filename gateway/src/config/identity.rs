//! The `[identity]` section: token verification, JWKS, cache, mTLS, trusted headers.

use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityConfig {}
