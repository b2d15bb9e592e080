//! JWKS documents: parsing Entra-shaped key sets (`kid`, `kty`, `n`/`e`, `x5c`, EC `crv/x/y`)
//! into verification keys, and loading them from a file or an http(s) URL.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};
use serde::Deserialize;

use super::IdentityError;

/// Largest JWKS document accepted.
const MAX_JWKS_BYTES: usize = 1024 * 1024;
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// One usable public key.
pub(crate) struct VerifyKey {
    pub kid: Option<Box<str>>,
    /// The JWK's `alg`, when it names one: the key may then only verify that algorithm.
    pub alg: Option<Algorithm>,
    pub family: AlgorithmFamily,
    pub key: DecodingKey,
}

/// The asymmetric verification keys of one JWKS document.
#[derive(Default)]
pub struct KeySet {
    keys: Vec<VerifyKey>,
    /// Keys that were skipped (unsupported type, symmetric, encryption-only), for `check`.
    skipped: Vec<String>,
}

/// Result of looking a token's key up.
pub(crate) enum KeyLookup<'a> {
    Found(&'a VerifyKey),
    /// No key with that `kid` (the set may need a refresh).
    UnknownKid,
    /// The key exists but cannot verify this algorithm.
    WrongKeyType,
    /// No `kid` in the token and not exactly one candidate key.
    NoKid,
}

#[derive(Deserialize)]
struct RawSet {
    keys: Vec<serde_json::Value>,
}

impl KeySet {
    /// Parses a JWKS document. Each key is parsed on its own so one unsupported entry does not
    /// sink the set; symmetric (`oct`) keys are never accepted. A set with no usable key is an
    /// error.
    pub fn parse(json: &[u8], source_name: &str) -> Result<Self, IdentityError> {
        let err = |message: String| IdentityError::Jwks {
            source_name: source_name.to_owned(),
            message,
        };
        let raw: RawSet =
            serde_json::from_slice(json).map_err(|e| err(format!("not a JWKS document: {e}")))?;
        let mut set = KeySet::default();
        for (index, value) in raw.keys.into_iter().enumerate() {
            let label = value.get("kid").and_then(|k| k.as_str()).map_or_else(
                || format!("keys[{index}]"),
                |k| format!("keys[{index}] (kid {k})"),
            );
            match parse_key(value) {
                Ok(key) => set.keys.push(key),
                Err(why) => set.skipped.push(format!("{label}: {why}")),
            }
        }
        if set.keys.is_empty() {
            return Err(err(format!(
                "no usable signing key (skipped: {})",
                set.skipped.join("; ")
            )));
        }
        Ok(set)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Key ids in the set.
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().filter_map(|k| k.kid.as_deref())
    }

    /// Entries that were not usable, with why.
    pub fn skipped(&self) -> &[String] {
        &self.skipped
    }

    pub(crate) fn find(&self, kid: Option<&str>, alg: Algorithm) -> KeyLookup<'_> {
        let fits = |k: &VerifyKey| k.family == alg.family() && k.alg.is_none_or(|a| a == alg);
        match kid {
            Some(kid) => match self.keys.iter().find(|k| k.kid.as_deref() == Some(kid)) {
                Some(k) if fits(k) => KeyLookup::Found(k),
                Some(_) => KeyLookup::WrongKeyType,
                None => KeyLookup::UnknownKid,
            },
            None => {
                let mut candidates = self.keys.iter().filter(|k| fits(k));
                match (candidates.next(), candidates.next()) {
                    (Some(k), None) => KeyLookup::Found(k),
                    _ => KeyLookup::NoKid,
                }
            }
        }
    }
}

fn parse_key(value: serde_json::Value) -> Result<VerifyKey, String> {
    let jwk: Jwk = serde_json::from_value(value).map_err(|e| format!("unsupported key: {e}"))?;
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
        return Err("encryption key (use=enc)".into());
    }
    let family = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => AlgorithmFamily::Rsa,
        AlgorithmParameters::EllipticCurve(_) => AlgorithmFamily::Ec,
        AlgorithmParameters::OctetKeyPair(_) => AlgorithmFamily::Ed,
        AlgorithmParameters::OctetKey(_) => return Err("symmetric key (kty=oct) refused".into()),
    };
    let alg = match &jwk.common.key_algorithm {
        None => None,
        Some(ka) => {
            let alg = ka
                .to_string()
                .parse::<Algorithm>()
                .map_err(|_| format!("key algorithm {ka} is not a signature algorithm"))?;
            if alg.family() != family {
                return Err(format!("alg {ka} does not fit the key type"));
            }
            Some(alg)
        }
    };
    let key = DecodingKey::from_jwk(&jwk).map_err(|e| format!("bad key material: {e}"))?;
    Ok(VerifyKey {
        kid: jwk.common.key_id.map(String::into_boxed_str),
        alg,
        family,
        key,
    })
}

/// Where the JWKS comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksSource {
    File(PathBuf),
    Url(String),
}

impl JwksSource {
    /// `http://` / `https://` values are URLs, anything else a path relative to `base_dir`.
    pub fn parse(value: &str, base_dir: &Path) -> Self {
        if value.starts_with("https://") || value.starts_with("http://") {
            Self::Url(value.to_owned())
        } else {
            Self::File(base_dir.join(value))
        }
    }

    pub fn name(&self) -> String {
        match self {
            Self::File(p) => p.display().to_string(),
            Self::Url(u) => u.clone(),
        }
    }

    /// Reads the file synchronously; for start-up and `check` only.
    pub fn load_file_blocking(path: &Path) -> Result<KeySet, IdentityError> {
        let bytes = std::fs::read(path).map_err(|source| IdentityError::Read {
            path: path.to_owned(),
            source,
        })?;
        KeySet::parse(&bytes, &path.display().to_string())
    }

    /// Loads and parses the document (file via tokio, URL via an https client).
    pub async fn load(&self) -> Result<KeySet, IdentityError> {
        match self {
            Self::File(path) => {
                let bytes = tokio::fs::read(path)
                    .await
                    .map_err(|source| IdentityError::Read {
                        path: path.clone(),
                        source,
                    })?;
                KeySet::parse(&bytes, &self.name())
            }
            Self::Url(url) => {
                let bytes = fetch(url).await.map_err(|message| IdentityError::Jwks {
                    source_name: url.clone(),
                    message,
                })?;
                KeySet::parse(&bytes, url)
            }
        }
    }
}

async fn fetch(url: &str) -> Result<Bytes, String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("bad URL: {e}"))?;
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
        .map_err(|e| format!("TLS setup: {e}"))?
        .https_or_http()
        .enable_http1()
        .build();
    let client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Empty<Bytes>> =
        Client::builder(TokioExecutor::new()).build(https);
    let work = async {
        let response = client
            .get(uri)
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("HTTP status {}", response.status()));
        }
        let body = Limited::new(response.into_body(), MAX_JWKS_BYTES)
            .collect()
            .await
            .map_err(|e| format!("reading body: {e}"))?;
        Ok(body.to_bytes())
    };
    tokio::time::timeout(FETCH_TIMEOUT, work)
        .await
        .map_err(|_| format!("timed out after {}s", FETCH_TIMEOUT.as_secs()))?
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses `json` and returns (usable kids, skipped count), or the error text.
    fn check(json: &str) -> Result<(Vec<String>, usize), String> {
        KeySet::parse(json.as_bytes(), "test")
            .map(|s| (s.kids().map(str::to_owned).collect(), s.skipped().len()))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn parses_entra_shapes_and_skips_unusable_keys() {
        let rsa = crate::identity::testing::TestKeys::rsa_a();
        let ec = crate::identity::testing::TestKeys::ec_a();
        let entra = format!(
            r#"{{"keys":[{},{},{{"kty":"oct","kid":"sym","k":"c2VjcmV0"}},{{"kty":"weird","kid":"w"}}]}}"#,
            rsa.jwk_json_with_x5c(),
            ec.jwk_json()
        );
        assert_eq!(check(&entra), Ok((vec![rsa.kid.clone(), "ec-a".into()], 2)));
        assert!(check(r#"{"keys":[]}"#).is_err());
        assert!(check("not json").is_err());
        assert!(
            check(r#"{"keys":[{"kty":"oct","kid":"s","k":"c2VjcmV0"}]}"#)
                .is_err_and(|e| e.contains("symmetric"))
        );
    }

    #[test]
    fn lookup_respects_kid_and_key_type() {
        let rsa = crate::identity::testing::TestKeys::rsa_a();
        let json = format!(r#"{{"keys":[{}]}}"#, rsa.jwk_json());
        let set = KeySet::parse(json.as_bytes(), "t").unwrap();
        assert!(matches!(
            set.find(Some(&rsa.kid), Algorithm::RS256),
            KeyLookup::Found(_)
        ));
        assert!(matches!(
            set.find(Some(&rsa.kid), Algorithm::ES256),
            KeyLookup::WrongKeyType
        ));
        assert!(matches!(
            set.find(Some("x"), Algorithm::RS256),
            KeyLookup::UnknownKid
        ));
        assert!(matches!(
            set.find(None, Algorithm::RS256),
            KeyLookup::Found(_)
        ));
        assert!(matches!(set.find(None, Algorithm::ES256), KeyLookup::NoKid));
    }
}
