//! The `[identity]` section: token verification, JWKS, cache, mTLS, trusted headers.
//!
//! These are the serde types only (the edge); `identity::Authenticator::build` turns them into
//! runtime types and refuses bad values. Every key is listed with its default in
//! `config/README.md`.

use ipnet::IpNet;
use serde::Deserialize;

/// `[identity]`. All keys are optional; with no `jwks` no token is ever accepted.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdentityConfig {
    /// JWKS document: a file path (relative to the config file's directory) or an
    /// `http(s)://` URL fetched at start and refreshed.
    pub jwks: Option<String>,
    /// Periodic JWKS refresh, seconds.
    pub jwks_refresh_secs: u64,
    /// Minimum spacing between JWKS fetches triggered by an unknown `kid`, and the first backoff
    /// step after a failed fetch, seconds.
    pub jwks_min_refresh_secs: u64,
    /// Longest backoff between failed JWKS fetches, seconds.
    pub jwks_max_backoff_secs: u64,
    /// Accepted `iss` values (exact match). Required when `jwks` is set.
    pub issuers: Vec<String>,
    /// Accepted `aud` values (exact match). Required when `jwks` is set.
    pub audiences: Vec<String>,
    /// Allowed signing algorithms; only asymmetric ones (RS*, PS*, ES*) may be listed.
    pub algorithms: Vec<String>,
    /// Tolerance for `exp` and `nbf`, seconds.
    pub clock_skew_secs: u64,
    /// Cookie carrying the token for browsers.
    pub session_cookie: String,
    /// Longest token accepted, bytes; longer ones are refused before any parsing.
    pub max_token_bytes: usize,
    /// What a token whose groups did not fit (`_claim_names.groups`) gets.
    pub groups_overage: GroupsOverage,
    /// With `groups_overage = "directory"`: JSON file mapping user id -> group ids.
    pub directory_groups: Option<String>,
    /// Most verified tokens kept in the cache.
    pub cache_max_entries: u64,
    /// How long a failed verification is remembered, seconds (caps the cost of replayed junk).
    pub failure_cache_secs: u64,
    /// Identity from headers set by an authenticating proxy in front.
    pub trusted_headers: TrustedHeadersConfig,
    /// Signing key for `portcullis demo` tokens.
    pub demo_issuer: Option<DemoIssuerConfig>,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        Self {
            jwks: None,
            jwks_refresh_secs: 3600,
            jwks_min_refresh_secs: 30,
            jwks_max_backoff_secs: 600,
            issuers: Vec::new(),
            audiences: Vec::new(),
            algorithms: vec!["RS256".to_owned(), "ES256".to_owned()],
            clock_skew_secs: 60,
            session_cookie: "portcullis_session".to_owned(),
            max_token_bytes: 32 * 1024,
            groups_overage: GroupsOverage::Deny,
            directory_groups: None,
            cache_max_entries: 100_000,
            failure_cache_secs: 5,
            trusted_headers: TrustedHeadersConfig::default(),
            demo_issuer: None,
        }
    }
}

/// `groups_overage`: never silently "no groups".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupsOverage {
    /// Fail with reason `groups_overage`.
    #[default]
    Deny,
    /// Take the user's groups from `directory_groups`.
    Directory,
}

/// Per-listener client-certificate mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MtlsMode {
    /// No client certificate is requested.
    #[default]
    Off,
    /// Requested; a connection without one is accepted, a bad one is refused.
    Optional,
    /// A valid device certificate is required to connect.
    Required,
}

/// `[identity.trusted_headers]`, off by default.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrustedHeadersConfig {
    pub enabled: bool,
    /// Peers allowed to set the headers (CIDR). Required when enabled.
    pub networks: Vec<IpNet>,
    /// Header with the user object id (GUID).
    pub user: String,
    /// Header with comma-separated group ids.
    pub groups: String,
    /// Header with the device id.
    pub device: String,
    /// Header saying MFA was done (`true`, `1`, `yes`, or a list containing `mfa`).
    pub mfa: String,
}

impl Default for TrustedHeadersConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            networks: Vec::new(),
            user: "x-auth-user-id".to_owned(),
            groups: "x-auth-groups".to_owned(),
            device: "x-auth-device-id".to_owned(),
            mfa: "x-auth-mfa".to_owned(),
        }
    }
}

/// `[identity.demo_issuer]`: a local signing key for demo tokens. Minting is refused unless
/// `demo = true`, so a production key is never used to mint by accident.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoIssuerConfig {
    /// PKCS#8 PEM private key (EC P-256 for ES256, or RSA for RS256).
    pub key: String,
    /// `kid` written into minted tokens; must match the key's entry in the JWKS.
    #[serde(default = "default_demo_kid")]
    pub kid: String,
    /// Must be `true`: marks the key as a demo key.
    #[serde(default)]
    pub demo: bool,
}

fn default_demo_kid() -> String {
    "portcullis-demo-1".to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(toml_text: &str, expect_ok: bool) -> Option<IdentityConfig> {
        let parsed = toml::from_str::<IdentityConfig>(toml_text);
        assert_eq!(parsed.is_ok(), expect_ok, "{toml_text}: {parsed:?}");
        parsed.ok()
    }

    #[test]
    fn parses_defaults_and_full_section() {
        let empty = check("", true).unwrap_or_default();
        assert_eq!(empty.session_cookie, "portcullis_session");
        assert_eq!(empty.cache_max_entries, 100_000);
        assert_eq!(empty.groups_overage, GroupsOverage::Deny);
        let full = check(
            r#"
            jwks = "demo/jwks.json"
            issuers = ["https://issuer"]
            audiences = ["api://portcullis"]
            groups_overage = "directory"
            directory_groups = "demo/directory-groups.json"
            [trusted_headers]
            enabled = true
            networks = ["10.0.0.0/8"]
            [demo_issuer]
            key = "demo/issuer-key.pem"
            demo = true
            "#,
            true,
        );
        let full = full.unwrap_or_default();
        assert_eq!(full.groups_overage, GroupsOverage::Directory);
        assert!(full.trusted_headers.enabled);
        assert_eq!(
            full.demo_issuer.map(|d| d.kid),
            Some("portcullis-demo-1".into())
        );
        check("jwks_url = \"x\"", false);
        check("groups_overage = \"ignore\"", false);
        check("[trusted_headers]\nnetworks = [\"not a net\"]", false);
    }
}
