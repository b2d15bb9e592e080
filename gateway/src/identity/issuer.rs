//! Demo and test token issuer: signs Entra-shaped tokens with a local PEM key (ES256 for an
//! EC P-256 key, RS256 for RSA). [`DemoIssuer`] only exists for a key the config marks
//! `demo = true`, so a production key is never used to mint.

use std::path::Path;
use std::time::Duration;

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;

use super::IdentityError;
use crate::clock::UnixMillis;
use crate::config::identity::IdentityConfig;
use crate::ids::{DeviceId, GroupId, TenantId, UserId};

/// What a minted token says.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    pub user: UserId,
    pub device: Option<DeviceId>,
    pub groups: Vec<GroupId>,
    pub mfa: bool,
    pub expires_in: Duration,
    pub audience: String,
    pub issuer: String,
    pub tenant: Option<TenantId>,
}

#[derive(Serialize)]
struct MintedClaims<'a> {
    iss: &'a str,
    aud: &'a str,
    iat: i64,
    nbf: i64,
    exp: i64,
    oid: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    tid: Option<String>,
    groups: Vec<String>,
    amr: &'static [&'static str],
    #[serde(skip_serializing_if = "Option::is_none")]
    deviceid: Option<String>,
}

/// A signing key with its `kid` and public JWK.
pub struct Signer {
    kid: String,
    alg: Algorithm,
    key: EncodingKey,
    jwk: Jwk,
}

impl Signer {
    /// From a PKCS#8 PEM private key: EC P-256 -> ES256, RSA -> RS256.
    pub fn from_pem(pem: &str, kid: &str) -> Result<Self, IdentityError> {
        let (key, alg) = match EncodingKey::from_ec_pem(pem.as_bytes()) {
            Ok(k) => (k, Algorithm::ES256),
            Err(_) => (
                EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|e| {
                    IdentityError::Signing(format!("not an EC P-256 or RSA PEM key: {e}"))
                })?,
                Algorithm::RS256,
            ),
        };
        let mut jwk = Jwk::from_encoding_key(&key, alg)
            .map_err(|e| IdentityError::Signing(format!("deriving the public key: {e}")))?;
        jwk.common.key_id = Some(kid.to_owned());
        Ok(Self {
            kid: kid.to_owned(),
            alg,
            key,
            jwk,
        })
    }

    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a one-key JWKS document.
    pub fn jwks(&self) -> JwkSet {
        JwkSet {
            keys: vec![self.jwk.clone()],
        }
    }

    /// Signs a token for `request`, valid from `now` for `expires_in`.
    pub fn mint(&self, request: &TokenRequest, now: UnixMillis) -> Result<String, IdentityError> {
        let iat = now.as_secs();
        let lifetime = i64::try_from(request.expires_in.as_secs()).unwrap_or(i64::MAX);
        let claims = MintedClaims {
            iss: &request.issuer,
            aud: &request.audience,
            iat,
            nbf: iat,
            exp: iat.saturating_add(lifetime),
            oid: request.user.to_string(),
            tid: request.tenant.map(|t| t.to_string()),
            groups: request.groups.iter().map(ToString::to_string).collect(),
            amr: if request.mfa {
                &["pwd", "mfa"]
            } else {
                &["pwd"]
            },
            deviceid: request.device.map(|d| d.to_string()),
        };
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|e| IdentityError::Signing(e.to_string()))
    }
}

/// The issuer behind `portcullis demo`.
pub struct DemoIssuer {
    signer: Signer,
}

impl DemoIssuer {
    /// From `[identity.demo_issuer]`; refused unless the key is marked `demo = true`.
    pub fn from_config(cfg: &IdentityConfig, base_dir: &Path) -> Result<Self, IdentityError> {
        let demo = cfg
            .demo_issuer
            .as_ref()
            .ok_or_else(|| IdentityError::config("demo_issuer", "not configured"))?;
        if !demo.demo {
            return Err(IdentityError::NotDemoKey);
        }
        let path = base_dir.join(&demo.key);
        let pem = std::fs::read_to_string(&path).map_err(|source| IdentityError::Read {
            path: path.clone(),
            source,
        })?;
        let signer = Signer::from_pem(&pem, &demo.kid).map_err(|e| IdentityError::File {
            path,
            message: e.to_string(),
        })?;
        Ok(Self { signer })
    }

    pub fn signer(&self) -> &Signer {
        &self.signer
    }

    pub fn mint(&self, request: &TokenRequest, now: UnixMillis) -> Result<String, IdentityError> {
        self.signer.mint(request, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::identity::DemoIssuerConfig;
    use crate::identity::{Authenticator, JwksSource};

    fn demo_dir() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../config")
    }

    fn demo_config(demo: bool) -> IdentityConfig {
        IdentityConfig {
            jwks: Some("demo/jwks.json".into()),
            issuers: vec!["https://portcullis.demo".into()],
            audiences: vec!["api://portcullis".into()],
            demo_issuer: Some(DemoIssuerConfig {
                key: "demo/issuer-key.pem".into(),
                kid: "portcullis-demo-1".into(),
                demo,
            }),
            ..IdentityConfig::default()
        }
    }

    fn request() -> TokenRequest {
        TokenRequest {
            user: UserId::parse("6f1c2e4a-8b3d-4c5e-9f7a-1b2c3d4e5f60").unwrap(),
            device: DeviceId::from_u128(9),
            groups: vec![
                GroupId::from_u128(2).unwrap(),
                GroupId::from_u128(1).unwrap(),
            ],
            mfa: true,
            expires_in: Duration::from_secs(3600),
            audience: "api://portcullis".into(),
            issuer: "https://portcullis.demo".into(),
            tenant: None,
        }
    }

    #[test]
    fn demo_key_mints_tokens_the_demo_jwks_verifies() {
        let cfg = demo_config(true);
        let issuer = DemoIssuer::from_config(&cfg, &demo_dir()).unwrap();
        assert_eq!(issuer.signer().algorithm(), Algorithm::ES256);
        let now = UnixMillis::from_secs(1_800_000_000);
        let token = issuer.mint(&request(), now).unwrap();
        let keys = JwksSource::load_file_blocking(&demo_dir().join("demo/jwks.json")).unwrap();
        let auth = Authenticator::with_keys(&cfg, &demo_dir(), Some(keys)).unwrap();
        let id = auth.verify_token(&token, now).unwrap();
        assert_eq!(id.user, request().user);
        assert!(id.mfa && id.groups.len() == 2 && id.device == DeviceId::from_u128(9));
        assert_eq!(id.expires_at, now.plus_hours(1));
        // The published JWKS equals the key's derived public JWK.
        let published: serde_json::Value =
            serde_json::from_slice(&std::fs::read(demo_dir().join("demo/jwks.json")).unwrap())
                .unwrap();
        let derived = serde_json::to_value(issuer.signer().jwks()).unwrap();
        assert_eq!(published["keys"][0]["x"], derived["keys"][0]["x"]);
        assert_eq!(published["keys"][0]["y"], derived["keys"][0]["y"]);
    }

    #[test]
    fn minting_refused_unless_marked_demo() {
        let refused = DemoIssuer::from_config(&demo_config(false), &demo_dir());
        assert!(matches!(refused, Err(IdentityError::NotDemoKey)));
        let none = DemoIssuer::from_config(&IdentityConfig::default(), &demo_dir());
        assert!(none.is_err());
        assert!(Signer::from_pem("junk", "k").is_err());
        let rsa = Signer::from_pem(include_str!("testdata/rsa-a.pem"), "r").unwrap();
        assert_eq!(rsa.algorithm(), Algorithm::RS256);
    }
}
