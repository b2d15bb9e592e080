//! Token verification: algorithm allow-list first (before any key is touched), key lookup by
//! `kid`, signature via jsonwebtoken, then `iss`, `aud`, `exp`, `nbf` checked here against the
//! passed-in `now` (jsonwebtoken's own clock-based checks are switched off).

use std::sync::Arc;

use arc_swap::ArcSwap;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, AlgorithmFamily, Validation};
use tokio::sync::Notify;

use super::claims::{numeric_date, Claims, Overage};
use super::jwks::{KeyLookup, KeySet};
use super::{Identity, IdentityFailure};
use crate::clock::UnixMillis;
use crate::reason::ReasonCode;

/// A refusal, and whether it may be cached (an unknown `kid` is not: a refresh may fix it).
pub(crate) struct Refused {
    pub failure: IdentityFailure,
    pub cacheable: bool,
}

impl From<IdentityFailure> for Refused {
    fn from(failure: IdentityFailure) -> Self {
        Self {
            failure,
            cacheable: true,
        }
    }
}

/// Verifies tokens against the current key set. Cheap to share; keys swap without blocking.
pub struct TokenVerifier {
    keys: ArcSwap<KeySet>,
    /// One `Validation` per allowed algorithm: signature and algorithm only.
    validations: Vec<(Algorithm, Validation)>,
    issuers: Vec<String>,
    audiences: Vec<String>,
    skew_ms: i64,
    max_token_bytes: usize,
    overage: Overage,
    /// Poked when a token names an unknown `kid`; the refresh task rate-limits.
    refresh_wanted: Arc<Notify>,
}

/// Parses the configured algorithm names, refusing symmetric ones and `none`.
pub(crate) fn parse_algorithms(names: &[String]) -> Result<Vec<Algorithm>, String> {
    if names.is_empty() {
        return Err("at least one algorithm is required".into());
    }
    names
        .iter()
        .map(|name| match name.parse::<Algorithm>() {
            Ok(a) if a.family() == AlgorithmFamily::Hmac => Err(format!(
                "{name} is symmetric; only public-key algorithms are allowed"
            )),
            Ok(a) => Ok(a),
            Err(_) => Err(format!("unknown or refused algorithm {name:?}")),
        })
        .collect()
}

pub(crate) struct VerifierSettings {
    pub algorithms: Vec<Algorithm>,
    pub issuers: Vec<String>,
    pub audiences: Vec<String>,
    pub skew_ms: i64,
    pub max_token_bytes: usize,
    pub overage: Overage,
}

impl TokenVerifier {
    pub(crate) fn new(
        settings: VerifierSettings,
        keys: KeySet,
        refresh_wanted: Arc<Notify>,
    ) -> Self {
        let validations = settings
            .algorithms
            .iter()
            .map(|&alg| {
                let mut v = Validation::new(alg);
                v.required_spec_claims.clear();
                v.validate_exp = false;
                v.validate_nbf = false;
                v.validate_aud = false;
                v.leeway = 0;
                (alg, v)
            })
            .collect();
        Self {
            keys: ArcSwap::from_pointee(keys),
            validations,
            issuers: settings.issuers,
            audiences: settings.audiences,
            skew_ms: settings.skew_ms,
            max_token_bytes: settings.max_token_bytes,
            overage: settings.overage,
            refresh_wanted,
        }
    }

    /// The key set in use.
    pub fn keys(&self) -> Arc<KeySet> {
        self.keys.load_full()
    }

    /// Installs a new key set; returns whether a previously known `kid` disappeared.
    pub fn replace_keys(&self, keys: KeySet) -> bool {
        let old = self.keys.swap(Arc::new(keys));
        let new = self.keys.load();
        let removed = old.kids().any(|k| !new.kids().any(|n| n == k));
        removed
    }

    pub fn clock_skew_ms(&self) -> i64 {
        self.skew_ms
    }

    /// Verifies `token` at `now`. Never panics, whatever the input.
    pub fn verify(&self, token: &str, now: UnixMillis) -> Result<Identity, IdentityFailure> {
        self.verify_inner(token, now).map_err(|r| r.failure)
    }

    pub(crate) fn verify_inner(&self, token: &str, now: UnixMillis) -> Result<Identity, Refused> {
        if token.len() > self.max_token_bytes {
            return Err(IdentityFailure::invalid("token too long").into());
        }
        if token.bytes().filter(|&b| b == b'.').count() != 2
            || !token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        {
            return Err(IdentityFailure::invalid("malformed token").into());
        }
        // The header is read first: the algorithm decides before any key is used.
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| IdentityFailure::invalid("malformed header or algorithm not allowed"))?;
        let Some((alg, validation)) = self.validations.iter().find(|(a, _)| *a == header.alg)
        else {
            return Err(IdentityFailure::invalid(format!(
                "algorithm {:?} not allowed",
                header.alg
            ))
            .into());
        };
        let keys = self.keys.load();
        let key = match keys.find(header.kid.as_deref(), *alg) {
            KeyLookup::Found(k) => k,
            KeyLookup::UnknownKid => {
                self.refresh_wanted.notify_one();
                return Err(Refused {
                    failure: IdentityFailure::invalid("unknown signing key"),
                    cacheable: false,
                });
            }
            KeyLookup::WrongKeyType => {
                return Err(
                    IdentityFailure::invalid("signing key does not fit the algorithm").into(),
                )
            }
            KeyLookup::NoKid => {
                return Err(IdentityFailure::invalid("token names no signing key (kid)").into())
            }
        };
        let claims = jsonwebtoken::decode::<Claims>(token, &key.key, validation)
            .map_err(|e| {
                IdentityFailure::invalid(match e.kind() {
                    ErrorKind::InvalidSignature => "bad signature",
                    ErrorKind::Json(_) => "malformed claims",
                    _ => "malformed token",
                })
            })?
            .claims;
        self.check_claims(claims, now).map_err(Refused::from)
    }

    fn check_claims(&self, claims: Claims, now: UnixMillis) -> Result<Identity, IdentityFailure> {
        if !claims
            .iss
            .as_ref()
            .is_some_and(|i| self.issuers.contains(i))
        {
            return Err(IdentityFailure::new(
                ReasonCode::TokenWrongIssuer,
                "issuer not accepted",
            ));
        }
        if !claims.aud.as_ref().is_some_and(|a| a.any(&self.audiences)) {
            return Err(IdentityFailure::new(
                ReasonCode::TokenWrongAudience,
                "audience not accepted",
            ));
        }
        let exp = claims
            .exp
            .as_ref()
            .map(numeric_date)
            .ok_or_else(|| IdentityFailure::invalid("missing claim exp"))?;
        if now > exp.plus_millis(self.skew_ms) {
            return Err(IdentityFailure::new(
                ReasonCode::TokenExpired,
                "token expired",
            ));
        }
        if let Some(nbf) = claims.nbf.as_ref().map(numeric_date) {
            if now.plus_millis(self.skew_ms) < nbf {
                return Err(IdentityFailure::new(
                    ReasonCode::TokenNotYetValid,
                    "token not valid yet",
                ));
            }
        }
        claims.into_identity(exp, &self.overage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::testing::{bad_tokens, TestKeys, TokenSpec, NOW};

    fn verifier() -> TokenVerifier {
        let keys = KeySet::parse(
            TestKeys::jwks_json(&[TestKeys::rsa_a(), TestKeys::ec_a()]).as_bytes(),
            "t",
        )
        .unwrap();
        TokenVerifier::new(
            VerifierSettings {
                algorithms: vec![Algorithm::RS256, Algorithm::ES256],
                issuers: vec![TokenSpec::ISSUER.into()],
                audiences: vec![TokenSpec::AUDIENCE.into()],
                skew_ms: 60_000,
                max_token_bytes: 32 * 1024,
                overage: Overage::Deny,
            },
            keys,
            Arc::new(Notify::new()),
        )
    }

    #[test]
    fn every_bad_token_kind_is_refused_with_its_reason() {
        let v = verifier();
        for (name, token, reason) in bad_tokens() {
            let got = v.verify(&token, NOW);
            assert_eq!(
                got.as_ref().err().map(|f| f.reason),
                Some(reason),
                "{name}: {got:?}"
            );
        }
    }

    #[test]
    fn good_tokens_verify_with_both_algorithms_and_skew() {
        let v = verifier();
        for keys in [TestKeys::rsa_a(), TestKeys::ec_a()] {
            let token = keys.sign(&TokenSpec::default().claims());
            let id = v.verify(&token, NOW);
            assert!(
                id.as_ref().is_ok_and(|i| i.mfa && i.groups.len() == 2),
                "{id:?}"
            );
            // Within the 60 s skew after exp, then past it.
            let exp = id.map(|i| i.expires_at).unwrap_or_default();
            assert!(v.verify(&token, exp.plus_millis(59_000)).is_ok());
            assert_eq!(
                v.verify(&token, exp.plus_millis(61_000))
                    .err()
                    .map(|f| f.reason),
                Some(ReasonCode::TokenExpired)
            );
        }
    }

    #[test]
    fn config_refuses_symmetric_and_none() {
        assert!(parse_algorithms(&["RS256".into(), "ES256".into()]).is_ok());
        assert!(parse_algorithms(&["HS256".into()]).is_err());
        assert!(parse_algorithms(&["none".into()]).is_err());
        assert!(parse_algorithms(&[]).is_err());
    }
}
