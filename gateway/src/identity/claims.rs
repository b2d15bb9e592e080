//! Entra token claims (the serde edge) and their mapping into a typed [`Identity`].

use serde::de::IgnoredAny;
use serde::Deserialize;

use super::directory::Directory;
use super::{Identity, IdentityFailure};
use crate::clock::UnixMillis;
use crate::ids::{DeviceId, GroupId, Guid, TenantId, UserId};
use crate::reason::ReasonCode;

/// The claims Portcullis reads; others are ignored.
#[derive(Deserialize)]
pub(crate) struct Claims {
    pub iss: Option<String>,
    pub aud: Option<Audience>,
    pub exp: Option<serde_json::Number>,
    pub nbf: Option<serde_json::Number>,
    oid: Option<String>,
    tid: Option<String>,
    groups: Option<Vec<String>>,
    amr: Option<Vec<String>>,
    deviceid: Option<String>,
    #[serde(rename = "_claim_names")]
    claim_names: Option<ClaimNames>,
}

#[derive(Deserialize)]
#[serde(untagged)]
pub(crate) enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    pub fn any(&self, accepted: &[String]) -> bool {
        match self {
            Self::One(a) => accepted.contains(a),
            Self::Many(list) => list.iter().any(|a| accepted.contains(a)),
        }
    }
}

#[derive(Deserialize)]
struct ClaimNames {
    groups: Option<IgnoredAny>,
}

/// What to do when the groups did not fit in the token.
pub(crate) enum Overage {
    Deny,
    Directory(Directory),
}

/// A JWT NumericDate (seconds, possibly fractional) as milliseconds.
pub(crate) fn numeric_date(n: &serde_json::Number) -> UnixMillis {
    match n.as_i64() {
        Some(secs) => UnixMillis::from_secs(secs),
        // `as` saturates for out-of-range floats (and maps NaN to 0): never panics.
        None => UnixMillis((n.as_f64().unwrap_or(0.0) * 1000.0) as i64),
    }
}

fn guid(claim: &'static str, text: &str) -> Result<Guid, IdentityFailure> {
    Guid::parse(text).map_err(|_| IdentityFailure::invalid(format!("claim {claim} is not a GUID")))
}

impl Claims {
    /// Maps the Entra claims; `expires_at` is the already checked `exp`.
    pub fn into_identity(
        self,
        expires_at: UnixMillis,
        overage: &Overage,
    ) -> Result<Identity, IdentityFailure> {
        let oid = self
            .oid
            .ok_or_else(|| IdentityFailure::invalid("missing claim oid"))?;
        let user = UserId(guid("oid", &oid)?);
        let tenant = match &self.tid {
            Some(t) => Some(TenantId(guid("tid", t)?)),
            None => None,
        };
        let device = match &self.deviceid {
            Some(d) => Some(DeviceId(guid("deviceid", d)?)),
            None => None,
        };
        let overaged = self.claim_names.is_some_and(|n| n.groups.is_some());
        let groups = match (self.groups, overaged) {
            (Some(list), _) => {
                let mut groups = Vec::with_capacity(list.len());
                for g in &list {
                    groups.push(GroupId(guid("groups", g)?));
                }
                Identity::normalize_groups(groups)
            }
            (None, false) => Box::default(),
            (None, true) => match overage {
                Overage::Deny => {
                    return Err(IdentityFailure::new(
                        ReasonCode::GroupsOverage,
                        "groups claim overage and groups_overage = \"deny\"",
                    ))
                }
                Overage::Directory(dir) => dir.groups_of(user).ok_or_else(|| {
                    IdentityFailure::new(
                        ReasonCode::GroupsOverage,
                        "groups claim overage and the user is not in the directory file",
                    )
                })?,
            },
        };
        let mfa = self
            .amr
            .is_some_and(|amr| amr.iter().any(|m| m.eq_ignore_ascii_case("mfa")));
        Ok(Identity {
            user,
            tenant,
            groups,
            mfa,
            device,
            expires_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const U: &str = "11111111-1111-1111-1111-111111111111";
    const G1: &str = "22222222-2222-2222-2222-222222222222";
    const G2: &str = "33333333-3333-3333-3333-333333333333";

    fn check(
        claims: serde_json::Value,
        overage: &Overage,
    ) -> Result<(usize, bool, bool), (ReasonCode, String)> {
        let claims: Claims = serde_json::from_value(claims)
            .map_err(|e| (ReasonCode::TokenInvalid, e.to_string()))?;
        claims
            .into_identity(UnixMillis(0), overage)
            .map(|i| (i.groups.len(), i.mfa, i.device.is_some()))
            .map_err(|f| (f.reason, f.message.to_string()))
    }

    #[test]
    fn maps_entra_claims() {
        use serde_json::json;
        let deny = Overage::Deny;
        let dir = Overage::Directory(
            Directory::from_json(format!(r#"{{"{U}":["{G1}","{G2}"]}}"#).as_bytes(), "dir")
                .unwrap(),
        );
        assert_eq!(
            check(
                json!({"oid": U, "groups": [G2, G1, G2], "amr": ["pwd", "mfa"], "deviceid": G1}),
                &deny
            ),
            Ok((2, true, true))
        );
        assert_eq!(check(json!({"oid": U}), &deny), Ok((0, false, false)));
        let bad_device = check(json!({"oid": U, "deviceid": "nope"}), &deny);
        assert_eq!(
            bad_device,
            Err((
                ReasonCode::TokenInvalid,
                "claim deviceid is not a GUID".into()
            ))
        );
        let bad_group = check(json!({"oid": U, "groups": ["x"]}), &deny);
        assert_eq!(
            bad_group,
            Err((
                ReasonCode::TokenInvalid,
                "claim groups is not a GUID".into()
            ))
        );
        assert!(check(json!({"tid": U}), &deny).is_err_and(|e| e.1.contains("oid")));
        let overage = json!({"oid": U, "_claim_names": {"groups": "src1"}});
        assert!(check(overage.clone(), &deny).is_err_and(|e| e.0 == ReasonCode::GroupsOverage));
        assert_eq!(check(overage, &dir), Ok((2, false, false)));
        let stranger = json!({"oid": G1, "_claim_names": {"groups": "src1"}});
        assert!(check(stranger, &dir).is_err_and(|e| e.0 == ReasonCode::GroupsOverage));
    }

    #[test]
    fn numeric_dates_never_panic() {
        let n = |v: serde_json::Value| numeric_date(&serde_json::from_value(v).unwrap());
        assert_eq!(n(serde_json::json!(10)), UnixMillis(10_000));
        assert_eq!(n(serde_json::json!(1.5)), UnixMillis(1500));
        assert_eq!(n(serde_json::json!(1e300)), UnixMillis(i64::MAX));
        assert_eq!(n(serde_json::json!(u64::MAX)), UnixMillis(i64::MAX));
    }
}
