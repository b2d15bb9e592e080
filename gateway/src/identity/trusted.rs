//! Trusted-header mode (off by default): identity from headers set by an authenticating proxy
//! in front, accepted only from configured networks. And the stripping of identity headers
//! from everyone else, which must happen before anything reads the request.

use std::net::IpAddr;

use http::{HeaderMap, HeaderName};
use ipnet::IpNet;

use super::{Identity, IdentityError, IdentityFailure};
use crate::clock::UnixMillis;
use crate::config::identity::TrustedHeadersConfig;
use crate::ids::{DeviceId, GroupId, UserId};

/// Prefix of the identity headers the gateway itself sends upstream; never accepted from a
/// client.
pub const GATEWAY_HEADER_PREFIX: &str = "x-portcullis-";

pub(crate) struct TrustedHeaders {
    networks: Vec<IpNet>,
    user: HeaderName,
    groups: HeaderName,
    device: HeaderName,
    mfa: HeaderName,
}

fn header_name(key: &'static str, name: &str) -> Result<HeaderName, IdentityError> {
    let parsed = HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| IdentityError::config(key, format!("{name:?} is not a header name")))?;
    if parsed.as_str().starts_with(GATEWAY_HEADER_PREFIX) {
        return Err(IdentityError::config(
            key,
            format!("{name:?} uses the gateway's own {GATEWAY_HEADER_PREFIX} prefix"),
        ));
    }
    Ok(parsed)
}

impl TrustedHeaders {
    /// `None` when the mode is off.
    pub fn from_config(cfg: &TrustedHeadersConfig) -> Result<Option<Self>, IdentityError> {
        if !cfg.enabled {
            return Ok(None);
        }
        if cfg.networks.is_empty() {
            return Err(IdentityError::config(
                "trusted_headers.networks",
                "required when trusted headers are enabled",
            ));
        }
        Ok(Some(Self {
            networks: cfg.networks.clone(),
            user: header_name("trusted_headers.user", &cfg.user)?,
            groups: header_name("trusted_headers.groups", &cfg.groups)?,
            device: header_name("trusted_headers.device", &cfg.device)?,
            mfa: header_name("trusted_headers.mfa", &cfg.mfa)?,
        }))
    }

    pub fn names(&self) -> [&HeaderName; 4] {
        [&self.user, &self.groups, &self.device, &self.mfa]
    }

    pub fn peer_trusted(&self, peer: IpAddr) -> bool {
        let peer = peer.to_canonical();
        self.networks.iter().any(|n| n.contains(&peer))
    }

    /// The identity the headers state, or `None` when the user header is absent. The caller
    /// checks the peer first.
    pub fn identity(
        &self,
        headers: &HeaderMap,
        now: UnixMillis,
    ) -> Option<Result<Identity, IdentityFailure>> {
        let user = headers.get(&self.user)?;
        Some(self.parse(user, headers, now))
    }

    fn parse(
        &self,
        user: &http::HeaderValue,
        headers: &HeaderMap,
        now: UnixMillis,
    ) -> Result<Identity, IdentityFailure> {
        let bad =
            |name: &HeaderName| IdentityFailure::invalid(format!("header {name} is not valid"));
        let text = |name: &HeaderName, v: &http::HeaderValue| {
            v.to_str().map(str::to_owned).map_err(|_| bad(name))
        };
        let user = UserId::parse(&text(&self.user, user)?).map_err(|_| bad(&self.user))?;
        let mut groups = Vec::new();
        for value in headers.get_all(&self.groups) {
            for item in text(&self.groups, value)?
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
            {
                groups.push(GroupId::parse(item).map_err(|_| bad(&self.groups))?);
            }
        }
        let device = match headers.get(&self.device) {
            Some(v) => {
                Some(DeviceId::parse(&text(&self.device, v)?).map_err(|_| bad(&self.device))?)
            }
            None => None,
        };
        let mfa = match headers.get(&self.mfa) {
            Some(v) => text(&self.mfa, v)?.split(',').map(str::trim).any(|item| {
                ["true", "1", "yes", "mfa"]
                    .iter()
                    .any(|t| item.eq_ignore_ascii_case(t))
            }),
            None => false,
        };
        Ok(Identity {
            user,
            tenant: None,
            groups: Identity::normalize_groups(groups),
            mfa,
            device,
            expires_at: now,
        })
    }
}

/// Removes every identity header a client must not set: all `x-portcullis-*` headers, and the
/// configured trusted headers unless `keep_trusted` (the peer is inside a trusted network).
pub fn strip_identity_headers(
    headers: &mut HeaderMap,
    trusted: &[&HeaderName],
    keep_trusted: bool,
) {
    loop {
        let found = headers
            .keys()
            .find(|n| n.as_str().starts_with(GATEWAY_HEADER_PREFIX))
            .cloned();
        match found {
            Some(name) => {
                headers.remove(&name);
            }
            None => break,
        }
    }
    if !keep_trusted {
        for name in trusted {
            headers.remove(*name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const U: &str = "11111111-1111-1111-1111-111111111111";
    const G: &str = "22222222-2222-2222-2222-222222222222";

    fn trusted() -> TrustedHeaders {
        let cfg = TrustedHeadersConfig {
            enabled: true,
            networks: vec!["10.0.0.0/8".parse().unwrap(), "fd00::/8".parse().unwrap()],
            ..TrustedHeadersConfig::default()
        };
        TrustedHeaders::from_config(&cfg).unwrap().unwrap()
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (n, v) in pairs {
            map.append(
                HeaderName::from_bytes(n.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        map
    }

    /// Returns (groups, mfa, has device) or the error text, `None` if no user header.
    fn check(pairs: &[(&str, &str)]) -> Option<Result<(usize, bool, bool), String>> {
        trusted().identity(&headers(pairs), UnixMillis(0)).map(|r| {
            r.map(|i| (i.groups.len(), i.mfa, i.device.is_some()))
                .map_err(|f| f.message.to_string())
        })
    }

    #[test]
    fn reads_headers() {
        assert_eq!(check(&[]), None);
        assert_eq!(check(&[("x-auth-user-id", U)]), Some(Ok((0, false, false))));
        let groups = format!("{G}, {U},");
        let all = [
            ("x-auth-user-id", U),
            ("x-auth-groups", &groups),
            ("x-auth-device-id", G),
            ("x-auth-mfa", "pwd,MFA"),
        ];
        assert_eq!(check(&all), Some(Ok((2, true, true))));
        assert_eq!(
            check(&[("x-auth-user-id", "bob")]),
            Some(Err("header x-auth-user-id is not valid".into()))
        );
        assert!(check(&[("x-auth-user-id", U), ("x-auth-groups", "x")]).is_some_and(|r| r.is_err()));
    }

    #[test]
    fn peers_and_config() {
        let t = trusted();
        for (peer, ok) in [
            ("10.1.2.3", true),
            ("::ffff:10.1.2.3", true),
            ("fd00::1", true),
            ("11.0.0.1", false),
            ("127.0.0.1", false),
        ] {
            assert_eq!(t.peer_trusted(peer.parse().unwrap()), ok, "{peer}");
        }
        let mut cfg = TrustedHeadersConfig {
            enabled: true,
            ..Default::default()
        };
        assert!(
            TrustedHeaders::from_config(&cfg).is_err(),
            "networks required"
        );
        cfg.networks = vec!["10.0.0.0/8".parse().unwrap()];
        cfg.user = "x-portcullis-user".into();
        assert!(TrustedHeaders::from_config(&cfg).is_err());
        assert!(
            TrustedHeaders::from_config(&TrustedHeadersConfig::default())
                .is_ok_and(|t| t.is_none())
        );
    }

    #[test]
    fn strips_gateway_and_untrusted_headers() {
        let t = trusted();
        let pairs = [
            ("x-portcullis-user-id", U),
            ("X-Portcullis-Device-Id", U),
            ("x-auth-user-id", U),
            ("host", "a"),
        ];
        let mut h = headers(&pairs);
        strip_identity_headers(&mut h, &t.names(), false);
        assert_eq!(
            h.keys().map(|k| k.as_str()).collect::<Vec<_>>(),
            vec!["host"]
        );
        let mut h = headers(&pairs);
        strip_identity_headers(&mut h, &t.names(), true);
        let mut kept: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        kept.sort_unstable();
        assert_eq!(kept, vec!["host", "x-auth-user-id"]);
    }
}
