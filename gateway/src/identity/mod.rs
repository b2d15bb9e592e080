//! Who is asking, and from which device (product brief section 2): verified JWTs with a moka
//! cache, mTLS device certificates, trusted headers.
//!
//! Owns: turning request headers, the TCP peer address and the client certificate into a typed
//! [`Identity`] or an [`IdentityFailure`] with a reason code. It reads files and URLs only at
//! build time and in the JWKS refresh task; per request it does no I/O and never reads the
//! clock (`now` is passed in). It must not decide access: that is `access`.
//!
//! Entry points: [`Authenticator`] (per request), [`mtls`] (listener TLS config),
//! [`issuer`] (demo tokens).

mod authenticator;
mod cache;
mod claims;
mod directory;
mod error;
mod extract;
pub mod issuer;
mod jwks;
mod memo;
pub mod mtls;
mod refresh;
#[cfg(any(test, feature = "test-util"))]
pub mod testing;
mod trusted;
mod types;
mod verify;

pub use authenticator::Authenticator;
pub use cache::CacheStats;
pub use directory::Directory;
pub use error::IdentityError;
pub use jwks::{JwksSource, KeySet};
pub use memo::TokenMemo;
pub use mtls::{
    client_verifier, device_from_peer_certificates, device_id_from_cert, resolve_device,
};
pub use trusted::strip_identity_headers;
pub use types::{
    www_authenticate, DeviceSource, Identity, IdentityFailure, IdentitySource, RequestIdentity,
};
pub use verify::TokenVerifier;
