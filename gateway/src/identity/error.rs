//! Errors building the identity stage from configuration (files, URLs, keys). Per-request
//! failures are [`super::IdentityFailure`] instead.

use std::path::PathBuf;

/// Why the identity configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("[identity] {key}: {message}")]
    Config { key: &'static str, message: String },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("JWKS {source_name}: {message}")]
    Jwks {
        source_name: String,
        message: String,
    },
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("device CA {path}: {message}")]
    DeviceCa { path: PathBuf, message: String },
    #[error("token signing: {0}")]
    Signing(String),
    #[error("minting refused: the configured issuer key is not marked `demo = true`")]
    NotDemoKey,
}

impl IdentityError {
    pub(crate) fn config(key: &'static str, message: impl Into<String>) -> Self {
        Self::Config {
            key,
            message: message.into(),
        }
    }
}
