//! Defender for Endpoint machine records -> risk observations by Entra device id.

use std::collections::HashMap;

use serde::Deserialize;

use crate::clock::UnixMillis;
use crate::compliance::risk::RiskObservation;
use crate::ids::{DeviceId, GuidError};
use crate::model::Risk;

use super::error::{ParseError, RecordCtx};
use super::lenient::{name_of, opt, read_records, Lenient};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawMachine {
    id: Option<Lenient<String>>,
    computer_dns_name: Option<Lenient<String>>,
    aad_device_id: Option<Lenient<String>>,
    risk_score: Option<Lenient<String>>,
    onboarding_status: Option<Lenient<String>>,
    last_seen: Option<Lenient<String>>,
}

/// Risk per device from one Defender document (the newest observation when a device
/// appears more than once).
pub type DefenderRisks = HashMap<DeviceId, RiskObservation>;

/// Parses a Defender machines export (`{"value": [...]}` or a bare array). Machines without
/// an `aadDeviceId` cannot be joined to the inventory and are left out.
pub fn parse_defender_machines(file: &str, text: &str) -> Result<DefenderRisks, ParseError> {
    let raw: Vec<RawMachine> = read_records(file, text)?;
    let mut out = DefenderRisks::with_capacity(raw.len());
    for (index, r) in raw.iter().enumerate() {
        let ctx = RecordCtx::new(file, index, name_of(&r.id), name_of(&r.computer_dns_name));
        let id = match opt(&ctx, "aadDeviceId", &r.aad_device_id)? {
            None => continue,
            Some(text) => match DeviceId::parse(&text) {
                Ok(id) => id,
                Err(GuidError::Nil) => continue,
                Err(e) => return Err(ctx.err("aadDeviceId", e.to_string())),
            },
        };
        let observation = convert(&ctx, r)?;
        let newer = out
            .get(&id)
            .is_none_or(|prev| !observation.is_older_than(prev));
        if newer {
            out.insert(id, observation);
        }
    }
    Ok(out)
}

fn convert(ctx: &RecordCtx<'_>, r: &RawMachine) -> Result<RiskObservation, ParseError> {
    let observed_at = match opt(ctx, "lastSeen", &r.last_seen)? {
        None => None,
        Some(text) => Some(
            UnixMillis::parse_rfc3339(&text)
                .ok_or_else(|| ctx.err("lastSeen", format!("not an RFC 3339 time: {text:?}")))?,
        ),
    };
    let onboarded = match opt(ctx, "onboardingStatus", &r.onboarding_status)? {
        Some(s) => s.eq_ignore_ascii_case("onboarded"),
        None => true,
    };
    let score = opt(ctx, "riskScore", &r.risk_score)?;
    let risk = match score.as_deref().map(str::to_ascii_lowercase).as_deref() {
        _ if !onboarded => Risk::Unavailable,
        None => Risk::Unavailable,
        Some("none" | "informational") => Risk::Secured,
        Some("low") => Risk::Low,
        Some("medium") => Risk::Medium,
        Some("high") => Risk::High,
        Some(other) => {
            return Err(ctx.err("riskScore", format!("unknown risk score {other:?}")));
        }
    };
    Ok(RiskObservation { risk, observed_at })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(machine: &str, expect: Result<Risk, &str>) {
        let doc = format!(
            r#"{{"value": [{{"id": "m1", "aadDeviceId": "11111111-0000-0000-0000-000000000001", {machine}}}]}}"#
        );
        let got = parse_defender_machines("defender.json", &doc);
        match (got, expect) {
            (Ok(map), Ok(risk)) => {
                let obs = map.values().next().copied().unwrap();
                assert_eq!(obs.risk, risk, "{machine}");
            }
            (Err(e), Err(msg)) => assert!(e.to_string().contains(msg), "{e}"),
            (got, want) => panic!("{machine}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn risk_scores_map_as_documented() {
        let on = r#""onboardingStatus": "Onboarded", "lastSeen": "2026-11-20T10:00:00Z""#;
        check(&format!(r#"{on}, "riskScore": "None""#), Ok(Risk::Secured));
        check(
            &format!(r#"{on}, "riskScore": "Informational""#),
            Ok(Risk::Secured),
        );
        check(&format!(r#"{on}, "riskScore": "Low""#), Ok(Risk::Low));
        check(&format!(r#"{on}, "riskScore": "Medium""#), Ok(Risk::Medium));
        check(&format!(r#"{on}, "riskScore": "High""#), Ok(Risk::High));
        check(
            &format!(r#"{on}, "riskScore": null"#),
            Ok(Risk::Unavailable),
        );
        check(
            r#""onboardingStatus": "CanBeOnboarded", "riskScore": "Low""#,
            Ok(Risk::Unavailable),
        );
        check(
            r#""riskScore": "Severe""#,
            Err("record #0 (id \"m1\"): field `riskScore`: unknown"),
        );
        check(r#""lastSeen": 5"#, Err("field `lastSeen`: invalid type"));
    }

    #[test]
    fn keeps_the_newest_and_skips_machines_without_device_id() {
        let doc = r#"[
            {"aadDeviceId": "11111111-0000-0000-0000-000000000001", "riskScore": "High", "lastSeen": "2026-11-20T11:00:00Z"},
            {"aadDeviceId": "11111111-0000-0000-0000-000000000001", "riskScore": "Low", "lastSeen": "2026-11-20T10:00:00Z"},
            {"aadDeviceId": null, "riskScore": "Low"}
        ]"#;
        let map = parse_defender_machines("d.json", doc).unwrap();
        assert_eq!(map.len(), 1);
        assert_eq!(map.values().next().unwrap().risk, Risk::High);
    }
}
