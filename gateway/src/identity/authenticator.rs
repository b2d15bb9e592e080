//! The per-request identity stage: trusted headers (from trusted peers only), else a bearer
//! token or session cookie verified through the cache, then the device reconciled with the
//! client certificate.

use std::net::IpAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderName};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::cache::IdentityCache;
use super::claims::Overage;
use super::directory::Directory;
use super::extract::{find_token, token_text};
use super::jwks::{JwksSource, KeySet};
use super::memo::TokenMemo;
use super::refresh::{self, RefreshPolicy};
use super::trusted::{self, TrustedHeaders};
use super::verify::{parse_algorithms, TokenVerifier, VerifierSettings};
use super::{
    mtls, CacheStats, DeviceSource, Identity, IdentityError, IdentityFailure, IdentitySource,
    RequestIdentity,
};
use crate::clock::UnixMillis;
use crate::config::identity::{GroupsOverage, IdentityConfig};
use crate::ids::DeviceId;
use crate::reason::ReasonCode;

/// Authenticates requests. Build once, share as `Arc`; every method takes `&self`.
pub struct Authenticator {
    verifier: Option<TokenVerifier>,
    jwks: Option<JwksSource>,
    cache: IdentityCache,
    /// Bumped whenever cached identities are dropped; connection memos of an older
    /// generation are ignored.
    generation: AtomicU64,
    cookie_name: String,
    trusted: Option<TrustedHeaders>,
    refresh_wanted: Arc<Notify>,
    refresh_policy: RefreshPolicy,
}

impl Authenticator {
    /// Validates the config and loads the JWKS (file or URL) and the directory file.
    pub async fn build(cfg: &IdentityConfig, base_dir: &Path) -> Result<Arc<Self>, IdentityError> {
        let keys = match cfg.jwks.as_deref().map(|j| JwksSource::parse(j, base_dir)) {
            Some(source) => Some(source.load().await?),
            None => None,
        };
        Self::with_keys(cfg, base_dir, keys)
    }

    /// Like [`Self::build`] with the key set given (or read from a JWKS *file* by the caller);
    /// for `check`, tests and benches. Reads the directory file if configured.
    pub fn with_keys(
        cfg: &IdentityConfig,
        base_dir: &Path,
        keys: Option<KeySet>,
    ) -> Result<Arc<Self>, IdentityError> {
        let jwks = cfg.jwks.as_deref().map(|j| JwksSource::parse(j, base_dir));
        let refresh_wanted = Arc::new(Notify::new());
        let verifier = match (jwks.is_some(), keys) {
            (false, _) => None,
            (true, None) => return Err(IdentityError::config("jwks", "key set not loaded")),
            (true, Some(keys)) => Some(TokenVerifier::new(
                verifier_settings(cfg, base_dir)?,
                keys,
                refresh_wanted.clone(),
            )),
        };
        if cfg.cache_max_entries == 0 {
            return Err(IdentityError::config(
                "cache_max_entries",
                "must be at least 1",
            ));
        }
        if cfg.jwks_refresh_secs == 0 {
            return Err(IdentityError::config(
                "jwks_refresh_secs",
                "must be at least 1",
            ));
        }
        let cookie_ok = !cfg.session_cookie.is_empty()
            && cfg
                .session_cookie
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !cookie_ok {
            return Err(IdentityError::config(
                "session_cookie",
                "not a valid cookie name",
            ));
        }
        Ok(Arc::new(Self {
            verifier,
            jwks,
            cache: IdentityCache::new(
                cfg.cache_max_entries,
                Duration::from_secs(cfg.failure_cache_secs),
            )?,
            generation: AtomicU64::new(0),
            cookie_name: cfg.session_cookie.clone(),
            trusted: TrustedHeaders::from_config(&cfg.trusted_headers)?,
            refresh_wanted,
            refresh_policy: RefreshPolicy {
                interval: Duration::from_secs(cfg.jwks_refresh_secs),
                min_spacing: Duration::from_secs(cfg.jwks_min_refresh_secs),
                max_backoff: Duration::from_secs(cfg.jwks_max_backoff_secs),
            },
        }))
    }

    /// Starts the JWKS refresh task (interval, unknown-`kid` trigger, backoff); `None` when no
    /// JWKS is configured. Needs a tokio runtime. The task ends once `self` is dropped.
    pub fn spawn_jwks_refresh(self: &Arc<Self>) -> Option<JoinHandle<()>> {
        self.jwks.as_ref()?;
        Some(refresh::spawn(
            Arc::downgrade(self),
            self.refresh_wanted.clone(),
            self.refresh_policy,
        ))
    }

    /// Re-loads the JWKS now. When a previously known key disappeared, cached identities are
    /// dropped (they may have been signed with a revoked key).
    pub async fn refresh_jwks(&self) -> Result<(), IdentityError> {
        let (Some(source), Some(verifier)) = (&self.jwks, &self.verifier) else {
            return Ok(());
        };
        let keys = source.load().await?;
        if verifier.replace_keys(keys) {
            self.generation.fetch_add(1, Ordering::AcqRel);
            self.cache.invalidate_all();
        }
        Ok(())
    }

    /// The token verifier (no cache), if a JWKS is configured.
    pub fn verifier(&self) -> Option<&TokenVerifier> {
        self.verifier.as_ref()
    }

    pub fn cache_stats(&self) -> CacheStats {
        self.cache.stats()
    }

    /// Strips identity headers the peer may not set (see [`trusted::strip_identity_headers`]).
    /// Call before anything reads the request.
    pub fn strip_identity_headers(&self, headers: &mut HeaderMap, peer: IpAddr) {
        match &self.trusted {
            Some(t) => trusted::strip_identity_headers(headers, &t.names(), t.peer_trusted(peer)),
            None => trusted::strip_identity_headers(headers, &[] as &[&HeaderName], false),
        }
    }

    /// Verifies a token through the cache.
    pub fn verify_token(
        &self,
        token: &str,
        now: UnixMillis,
    ) -> Result<Arc<Identity>, IdentityFailure> {
        let Some(verifier) = &self.verifier else {
            return Err(IdentityFailure::invalid("no token issuer is configured"));
        };
        self.cache
            .get_or_verify(token, now, || verifier.verify_inner(token, now))
    }

    /// Who sent this request. `cert_device` is the device of the connection's verified client
    /// certificate ([`mtls::device_from_peer_certificates`]).
    pub fn authenticate(
        &self,
        headers: &HeaderMap,
        peer: IpAddr,
        cert_device: Option<DeviceId>,
        now: UnixMillis,
    ) -> Result<RequestIdentity, IdentityFailure> {
        self.authenticate_on(headers, peer, cert_device, now, None)
    }

    /// `authenticate`, with the connection's memo of its last token in front of the cache.
    pub fn authenticate_on(
        &self,
        headers: &HeaderMap,
        peer: IpAddr,
        cert_device: Option<DeviceId>,
        now: UnixMillis,
        memo: Option<&TokenMemo>,
    ) -> Result<RequestIdentity, IdentityFailure> {
        if let Some(t) = self.trusted.as_ref().filter(|t| t.peer_trusted(peer)) {
            if let Some(identity) = t.identity(headers, now) {
                return finish(
                    Arc::new(identity?),
                    IdentitySource::TrustedHeaders,
                    cert_device,
                );
            }
        }
        let Some((token, source)) = find_token(headers, &self.cookie_name)? else {
            return Err(IdentityFailure::new(
                ReasonCode::TokenMissing,
                "no bearer token or session cookie",
            ));
        };
        let Some(memo) = memo else {
            return finish(
                self.verify_token(token_text(token)?, now)?,
                source,
                cert_device,
            );
        };
        let generation = self.generation.load(Ordering::Acquire);
        let identity = match memo.get(token, generation, now) {
            Some(identity) => {
                self.cache.count_hit();
                identity
            }
            None => {
                let identity = self.verify_token(token_text(token)?, now)?;
                memo.set(token, generation, identity.clone());
                identity
            }
        };
        finish(identity, source, cert_device)
    }
}

fn finish(
    identity: Arc<Identity>,
    source: IdentitySource,
    cert_device: Option<DeviceId>,
) -> Result<RequestIdentity, IdentityFailure> {
    let device = mtls::resolve_device(identity.device, cert_device).map_err(|reason| {
        IdentityFailure::new(
            reason,
            "the device certificate and the token name different devices",
        )
    })?;
    let device_source = match (identity.device, cert_device) {
        (None, None) => DeviceSource::None,
        (Some(_), None) => DeviceSource::Token,
        (None, Some(_)) => DeviceSource::Certificate,
        (Some(_), Some(_)) => DeviceSource::TokenAndCertificate,
    };
    Ok(RequestIdentity {
        identity,
        device,
        source,
        device_source,
    })
}

fn verifier_settings(
    cfg: &IdentityConfig,
    base_dir: &Path,
) -> Result<VerifierSettings, IdentityError> {
    if cfg.issuers.is_empty() {
        return Err(IdentityError::config(
            "issuers",
            "at least one issuer is required with jwks",
        ));
    }
    if cfg.audiences.is_empty() {
        return Err(IdentityError::config(
            "audiences",
            "at least one audience is required with jwks",
        ));
    }
    let algorithms =
        parse_algorithms(&cfg.algorithms).map_err(|m| IdentityError::config("algorithms", m))?;
    let overage = match (cfg.groups_overage, &cfg.directory_groups) {
        (GroupsOverage::Deny, _) => Overage::Deny,
        (GroupsOverage::Directory, Some(path)) => {
            Overage::Directory(Directory::load(&base_dir.join(path))?)
        }
        (GroupsOverage::Directory, None) => {
            return Err(IdentityError::config(
                "directory_groups",
                "required with groups_overage = \"directory\"",
            ))
        }
    };
    Ok(VerifierSettings {
        algorithms,
        issuers: cfg.issuers.clone(),
        audiences: cfg.audiences.clone(),
        skew_ms: i64::try_from(cfg.clock_skew_secs.saturating_mul(1000)).unwrap_or(i64::MAX),
        max_token_bytes: cfg.max_token_bytes,
        overage,
    })
}

#[cfg(test)]
#[path = "authenticator_tests.rs"]
mod tests;
