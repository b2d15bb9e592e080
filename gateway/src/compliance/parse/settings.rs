//! Graph `deviceManagement` settings -> `TenantSettings`. Accepts `{"settings": {...}}` (the
//! shape of `GET /deviceManagement?$select=settings`) and the bare inner object.

use serde::Deserialize;

use crate::compliance::settings::TenantSettings;

use super::error::{ParseError, RecordCtx};
use super::lenient::{opt, Lenient};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawSettings {
    secure_by_default: Option<Lenient<bool>>,
    device_compliance_checkin_threshold_days: Option<Lenient<i64>>,
}

#[derive(Deserialize)]
struct Wrapped {
    settings: Option<serde_json::Value>,
    #[serde(flatten)]
    rest: serde_json::Map<String, serde_json::Value>,
}

/// Parses tenant settings. Absent fields keep Portcullis's defaults (`secureByDefault`
/// true, threshold 30 days). `risk_max_age_ms` is left unset (it comes from the config).
pub fn parse_tenant_settings(file: &str, text: &str) -> Result<TenantSettings, ParseError> {
    let text = text.trim_start_matches('\u{feff}');
    let doc: Wrapped = serde_json::from_str(text).map_err(|e| ParseError::syntax(file, &e))?;
    let inner = match doc.settings {
        Some(v) => v,
        None => serde_json::Value::Object(doc.rest),
    };
    let raw: RawSettings = RawSettings::deserialize(&inner).map_err(|e| ParseError::Syntax {
        file: file.to_owned(),
        message: format!("settings: {e}"),
        line: 0,
        column: 0,
    })?;
    let ctx = RecordCtx {
        file,
        record: "settings".to_owned(),
    };
    let mut out = TenantSettings::default();
    if let Some(v) = opt(&ctx, "secureByDefault", &raw.secure_by_default)? {
        out.secure_by_default = v;
    }
    const DAYS: &str = "deviceComplianceCheckinThresholdDays";
    if let Some(days) = opt(&ctx, DAYS, &raw.device_compliance_checkin_threshold_days)? {
        out.checkin_threshold_days = u16::try_from(days)
            .ok()
            .filter(|d| (1..=120).contains(d))
            .ok_or_else(|| ctx.err(DAYS, format!("{days} is not between 1 and 120")))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(json: &str, expect: Result<(bool, u16), &str>) {
        match (parse_tenant_settings("tenant.json", json), expect) {
            (Ok(s), Ok(want)) => assert_eq!(
                (s.secure_by_default, s.checkin_threshold_days),
                want,
                "{json}"
            ),
            (Err(e), Err(want)) => assert!(e.to_string().contains(want), "{e} lacks {want}"),
            (got, want) => panic!("{json}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn shapes_defaults_and_errors() {
        check("{}", Ok((true, 30)));
        check(
            r#"{"settings": {"secureByDefault": false, "deviceComplianceCheckinThresholdDays": 7}}"#,
            Ok((false, 7)),
        );
        check(
            r#"{"@odata.context": "x", "secureByDefault": false}"#,
            Ok((false, 30)),
        );
        check(r#"{"settings": {"deviceComplianceCheckinThresholdDays": 0}}"#, Err("tenant.json: settings: field `deviceComplianceCheckinThresholdDays`: 0 is not between 1 and 120"));
        check(
            r#"{"secureByDefault": "no"}"#,
            Err("field `secureByDefault`: invalid type"),
        );
        check("{", Err("line 1 column 1"));
    }
}
