//! Test helpers (unit tests, `gateway/tests`, benches via the `test-util` feature): signing
//! keys with their JWKS, token claims, every kind of bad token, and a device CA that issues
//! good, expired and foreign client certificates.

use base64::Engine as _;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::clock::UnixMillis;
use crate::ids::DeviceId;
use crate::reason::ReasonCode;

/// The "now" test tokens are minted around (2027-01-15).
pub const NOW: UnixMillis = UnixMillis(1_800_000_000_000);

const RSA_A: &str = include_str!("testdata/rsa-a.pem");
const RSA_B: &str = include_str!("testdata/rsa-b.pem");
const EC_A: &str = include_str!("testdata/ec-a.pem");

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A signing key with its `kid` and public JWK.
#[derive(Clone)]
pub struct TestKeys {
    pub kid: String,
    pub alg: Algorithm,
    encoding: EncodingKey,
    jwk: Jwk,
}

impl TestKeys {
    fn from_pem(pem: &str, alg: Algorithm, kid: &str) -> Self {
        let encoding = match alg {
            Algorithm::ES256 => EncodingKey::from_ec_pem(pem.as_bytes()),
            _ => EncodingKey::from_rsa_pem(pem.as_bytes()),
        }
        .unwrap_or_else(|e| panic!("test key {kid}: {e}"));
        let mut jwk = Jwk::from_encoding_key(&encoding, alg)
            .unwrap_or_else(|e| panic!("test jwk {kid}: {e}"));
        jwk.common.key_id = Some(kid.to_owned());
        Self {
            kid: kid.to_owned(),
            alg,
            encoding,
            jwk,
        }
    }

    /// Fixed RSA key `rsa-a` (RS256).
    pub fn rsa_a() -> Self {
        Self::from_pem(RSA_A, Algorithm::RS256, "rsa-a")
    }

    /// A second fixed RSA key, `rsa-b`.
    pub fn rsa_b() -> Self {
        Self::from_pem(RSA_B, Algorithm::RS256, "rsa-b")
    }

    /// Fixed EC P-256 key `ec-a` (ES256).
    pub fn ec_a() -> Self {
        Self::from_pem(EC_A, Algorithm::ES256, "ec-a")
    }

    /// A freshly generated EC P-256 key.
    pub fn generate_ec(kid: &str) -> Self {
        let pair = KeyPair::generate().unwrap_or_else(|e| panic!("keygen: {e}"));
        Self::from_pem(&pair.serialize_pem(), Algorithm::ES256, kid)
    }

    /// The same private key under another `kid` (to sign with a key the JWKS does not hold
    /// under that name).
    pub fn with_kid(mut self, kid: &str) -> Self {
        self.kid = kid.to_owned();
        self.jwk.common.key_id = Some(kid.to_owned());
        self
    }

    pub fn jwk_json(&self) -> String {
        serde_json::to_string(&self.jwk).unwrap_or_default()
    }

    /// The JWK with `use`, `x5t` and `x5c` as Entra publishes them.
    pub fn jwk_json_with_x5c(&self) -> String {
        let mut value = serde_json::to_value(&self.jwk).unwrap_or_default();
        if let Some(map) = value.as_object_mut() {
            map.insert("use".into(), "sig".into());
            map.insert("x5t".into(), b64(b"thumbprint-of-cert00").into());
            map.insert(
                "x5c".into(),
                serde_json::json!(["MIIC/TCCAeWgAwIBAgIIdummy"]),
            );
        }
        value.to_string()
    }

    pub fn jwks_json(keys: &[TestKeys]) -> String {
        let list: Vec<String> = keys.iter().map(TestKeys::jwk_json).collect();
        format!("{{\"keys\":[{}]}}", list.join(","))
    }

    /// Public key bytes an attacker could know (the RSA modulus or EC x coordinate text).
    pub fn public_key_text(&self) -> String {
        self.jwk_json()
    }

    pub fn sign(&self, claims: &serde_json::Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        self.sign_with_header(&header, claims)
    }

    pub fn sign_with_header(&self, header: &Header, claims: &serde_json::Value) -> String {
        jsonwebtoken::encode(header, claims, &self.encoding)
            .unwrap_or_else(|e| panic!("signing test token: {e}"))
    }
}

/// Claims of a test token, Entra-shaped. `claims()` renders them.
#[derive(Clone, Debug)]
pub struct TokenSpec {
    pub user: String,
    pub tenant: Option<String>,
    pub groups: Option<Vec<String>>,
    pub groups_overage: bool,
    pub mfa: bool,
    pub device: Option<String>,
    pub issuer: String,
    pub audience: String,
    /// Seconds.
    pub exp: Option<i64>,
    pub nbf: Option<i64>,
}

impl TokenSpec {
    pub const ISSUER: &'static str =
        "https://login.microsoftonline.com/8e7a3b1c-1111-4a2b-9c3d-000000000001/v2.0";
    pub const AUDIENCE: &'static str = "api://portcullis";
    pub const USER: &'static str = "6f1c2e4a-8b3d-4c5e-9f7a-1b2c3d4e5f60";
    pub const DEVICE: &'static str = "d0d0d0d0-1111-4222-8333-444455556666";

    pub fn claims(&self) -> serde_json::Value {
        let mut map = serde_json::Map::new();
        map.insert("oid".into(), self.user.clone().into());
        map.insert("iss".into(), self.issuer.clone().into());
        map.insert("aud".into(), self.audience.clone().into());
        map.insert(
            "amr".into(),
            if self.mfa {
                serde_json::json!(["pwd", "mfa"])
            } else {
                serde_json::json!(["pwd"])
            },
        );
        if let Some(t) = &self.tenant {
            map.insert("tid".into(), t.clone().into());
        }
        if let Some(g) = &self.groups {
            map.insert("groups".into(), serde_json::json!(g));
        }
        if self.groups_overage {
            map.insert("_claim_names".into(), serde_json::json!({"groups": "src1"}));
            map.insert(
                "_claim_sources".into(),
                serde_json::json!({"src1": {"endpoint": "https://graph.microsoft.com/v1.0/users/x/getMemberObjects"}}),
            );
        }
        if let Some(d) = &self.device {
            map.insert("deviceid".into(), d.clone().into());
        }
        if let Some(e) = self.exp {
            map.insert("exp".into(), e.into());
        }
        if let Some(n) = self.nbf {
            map.insert("nbf".into(), n.into());
        }
        serde_json::Value::Object(map)
    }
}

impl Default for TokenSpec {
    fn default() -> Self {
        Self {
            user: Self::USER.into(),
            tenant: Some("8e7a3b1c-1111-4a2b-9c3d-000000000001".into()),
            groups: Some(vec![
                "a1b2c3d4-0000-4000-8000-000000000002".into(),
                "a1b2c3d4-0000-4000-8000-000000000001".into(),
            ]),
            groups_overage: false,
            mfa: true,
            device: Some(Self::DEVICE.into()),
            issuer: Self::ISSUER.into(),
            audience: Self::AUDIENCE.into(),
            exp: Some(NOW.as_secs() + 3600),
            nbf: Some(NOW.as_secs() - 60),
        }
    }
}

/// Every kind of bad token, as (name, token, expected reason), for a verifier trusting
/// `rsa-a` and `ec-a` with `TokenSpec::ISSUER` / `AUDIENCE`, RS256 + ES256, 60 s skew, at
/// [`NOW`].
pub fn bad_tokens() -> Vec<(&'static str, String, ReasonCode)> {
    use ReasonCode::*;
    let rsa = TestKeys::rsa_a();
    let good = TokenSpec::default();
    let good_token = rsa.sign(&good.claims());
    let spec = |f: &dyn Fn(&mut TokenSpec)| {
        let mut s = good.clone();
        f(&mut s);
        rsa.sign(&s.claims())
    };
    let header = |alg: Algorithm, kid: &str| {
        let mut h = Header::new(alg);
        h.kid = Some(kid.into());
        h
    };
    let hs256 = TestKeys {
        kid: "rsa-a".into(),
        alg: Algorithm::HS256,
        encoding: EncodingKey::from_secret(rsa.public_key_text().as_bytes()),
        jwk: rsa.jwk.clone(),
    };
    let claims_b64 = b64(good.claims().to_string().as_bytes());
    let mut huge = good.clone();
    huge.groups = Some(vec!["a1b2c3d4-0000-4000-8000-000000000001".into(); 1800]);
    let (first_dot, _) = good_token.split_once('.').unwrap_or_default();
    vec![
        (
            "wrong RSA key",
            TestKeys::rsa_b().with_kid("rsa-a").sign(&good.claims()),
            TokenInvalid,
        ),
        (
            "wrong EC key",
            TestKeys::generate_ec("ec-a").sign(&good.claims()),
            TokenInvalid,
        ),
        (
            "EC token naming the RSA kid",
            TestKeys::generate_ec("rsa-a").sign(&good.claims()),
            TokenInvalid,
        ),
        (
            "algorithm not allowed (RS384)",
            rsa.sign_with_header(&header(Algorithm::RS384, "rsa-a"), &good.claims()),
            TokenInvalid,
        ),
        (
            "algorithm not allowed (PS256)",
            rsa.sign_with_header(&header(Algorithm::PS256, "rsa-a"), &good.claims()),
            TokenInvalid,
        ),
        (
            "alg none",
            format!("{}.{claims_b64}.", b64(br#"{"alg":"none","typ":"JWT"}"#)),
            TokenInvalid,
        ),
        (
            "alg none with kid",
            format!("{}.{claims_b64}.", b64(br#"{"alg":"none","kid":"rsa-a"}"#)),
            TokenInvalid,
        ),
        (
            "HS256 signed with the public key",
            hs256.sign(&good.claims()),
            TokenInvalid,
        ),
        (
            "unknown kid",
            rsa.clone().with_kid("nobody").sign(&good.claims()),
            TokenInvalid,
        ),
        (
            "expired",
            spec(&|s| s.exp = Some(NOW.as_secs() - 120)),
            TokenExpired,
        ),
        (
            "not yet valid",
            spec(&|s| s.nbf = Some(NOW.as_secs() + 120)),
            TokenNotYetValid,
        ),
        (
            "wrong audience",
            spec(&|s| s.audience = "api://other".into()),
            TokenWrongAudience,
        ),
        (
            "wrong issuer",
            spec(&|s| s.issuer = "https://evil.example".into()),
            TokenWrongIssuer,
        ),
        ("no exp", spec(&|s| s.exp = None), TokenInvalid),
        (
            "bad oid",
            spec(&|s| s.user = "not-a-guid".into()),
            TokenInvalid,
        ),
        (
            "truncated signature",
            good_token[..good_token.len() - 8].to_owned(),
            TokenInvalid,
        ),
        ("truncated to header", first_dot.to_owned(), TokenInvalid),
        ("empty", String::new(), TokenInvalid),
        ("garbage", "garbage".into(), TokenInvalid),
        (
            "binary garbage",
            "\u{0}\u{7f}\u{fffd}.\u{1}.\u{2}".into(),
            TokenInvalid,
        ),
        ("bad base64", "a!b.c$d.e%f".into(), TokenInvalid),
        (
            "bad header JSON",
            format!("{}.{claims_b64}.c2ln", b64(b"{not json")),
            TokenInvalid,
        ),
        (
            "bad claims JSON",
            format!(
                "{}.{}.c2ln",
                b64(br#"{"alg":"RS256","kid":"rsa-a"}"#),
                b64(b"[1,2")
            ),
            TokenInvalid,
        ),
        (
            "64 KB of dots and letters",
            format!(
                "{}.{}.{}",
                "a".repeat(32 * 1024),
                "b".repeat(32 * 1024),
                "c"
            ),
            TokenInvalid,
        ),
        ("64 KB signed token", rsa.sign(&huge.claims()), TokenInvalid),
    ]
}

/// A device certificate authority issuing client certificates.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate with its private key.
pub struct IssuedCert {
    pub cert_der: CertificateDer<'static>,
    pub cert_pem: String,
    pub key_der: PrivatePkcs8KeyDer<'static>,
}

impl IssuedCert {
    pub fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(self.key_der.clone_key())
    }
}

/// How a device certificate names its device.
#[derive(Clone, Copy, Debug)]
pub enum DeviceName {
    CommonName,
    SanUri,
    Neither,
}

impl TestCa {
    pub fn new(name: &str) -> Self {
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap_or_else(|e| panic!("keygen: {e}"));
        let issuer =
            CertifiedIssuer::self_signed(params, key).unwrap_or_else(|e| panic!("CA {name}: {e}"));
        Self { issuer }
    }

    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    pub fn der(&self) -> CertificateDer<'static> {
        self.issuer.der().clone()
    }

    /// A client certificate for `device`; `expired` makes it valid only in 2020.
    pub fn device_cert(&self, device: DeviceId, naming: DeviceName, expired: bool) -> IssuedCert {
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        match naming {
            DeviceName::CommonName => params
                .distinguished_name
                .push(DnType::CommonName, device.to_string()),
            DeviceName::SanUri => {
                params
                    .distinguished_name
                    .push(DnType::CommonName, "some laptop");
                if let Ok(uri) = format!("urn:device:{device}").try_into() {
                    params.subject_alt_names.push(SanType::URI(uri));
                }
            }
            DeviceName::Neither => params.distinguished_name.push(DnType::CommonName, "no id"),
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2020, 12, 31);
        }
        self.issue(params)
    }

    /// A server certificate for `localhost` (for TLS tests).
    pub fn server_cert(&self) -> IssuedCert {
        let mut params = CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap_or_else(|e| panic!("server params: {e}"));
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.issue(params)
    }

    fn issue(&self, params: CertificateParams) -> IssuedCert {
        let key = KeyPair::generate().unwrap_or_else(|e| panic!("keygen: {e}"));
        let cert = params
            .signed_by(&key, &self.issuer)
            .unwrap_or_else(|e| panic!("issuing: {e}"));
        IssuedCert {
            cert_pem: cert.pem(),
            cert_der: cert.der().clone(),
            key_der: PrivatePkcs8KeyDer::from(key.serialize_der()),
        }
    }
}
