//! The serde edge: Graph's JSON shapes for `conditionalAccessPolicy` and `namedLocation`,
//! as loose as Graph writes them (every field optional, unknown fields ignored). `compile`
//! turns them into core types.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::access::error::{line_column, DocumentKind, PolicyError};

/// One record of a document with its text and where it starts, for error positions.
pub(crate) struct Record<'a> {
    pub text: &'a str,
    pub offset: usize,
}

impl Record<'_> {
    /// The position of the first occurrence of `"key"` in the record (or of the record).
    pub fn position_of(&self, doc: &str, key: Option<&str>) -> (usize, usize) {
        let local = key
            .and_then(|k| self.text.find(&format!("\"{k}\"")))
            .unwrap_or(0);
        line_column(doc, self.offset + local)
    }
}

#[derive(Deserialize)]
struct Wrapped<'a> {
    #[serde(borrow)]
    value: Vec<&'a RawValue>,
}

/// Splits `{"value": [...]}` or a bare array into records.
pub(crate) fn records(doc: &str, kind: DocumentKind) -> Result<Vec<Record<'_>>, PolicyError> {
    let syntax = |e: serde_json::Error| PolicyError {
        document: kind,
        record: None,
        field: None,
        position: Some((e.line(), e.column())),
        message: e.to_string(),
    };
    let raw: Vec<&RawValue> = match doc.trim_start().as_bytes().first() {
        Some(b'[') => serde_json::from_str(doc).map_err(syntax)?,
        Some(b'{') => {
            serde_json::from_str::<Wrapped<'_>>(doc)
                .map_err(syntax)?
                .value
        }
        _ => {
            return Err(PolicyError {
                document: kind,
                record: None,
                field: None,
                position: Some((1, 1)),
                message: "expected a JSON object {\"value\": [...]} or an array".into(),
            })
        }
    };
    let base = doc.as_ptr() as usize;
    Ok(raw
        .into_iter()
        .map(|r| Record {
            text: r.get(),
            // `r.get()` borrows from `doc`, so the difference is its offset in `doc`.
            offset: (r.get().as_ptr() as usize).saturating_sub(base),
        })
        .collect())
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct RawPolicy {
    pub id: Option<String>,
    pub display_name: Option<String>,
    pub state: Option<String>,
    pub conditions: Option<RawConditions>,
    pub grant_controls: Option<RawGrant>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct RawConditions {
    pub users: Option<RawUsers>,
    pub applications: Option<RawApps>,
    pub client_app_types: Option<Vec<String>>,
    pub platforms: Option<RawPlatforms>,
    pub locations: Option<RawLocations>,
    pub devices: Option<RawDevices>,
    // Conditions Portcullis cannot evaluate: when set, the policy never applies (warning).
    pub user_risk_levels: Option<Vec<String>>,
    pub sign_in_risk_levels: Option<Vec<String>>,
    pub service_principal_risk_levels: Option<Vec<String>>,
    pub insider_risk_levels: Option<serde_json::Value>,
    pub client_applications: Option<serde_json::Value>,
    pub authentication_flows: Option<serde_json::Value>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct RawUsers {
    pub include_users: Option<Vec<String>>,
    pub exclude_users: Option<Vec<String>>,
    pub include_groups: Option<Vec<String>>,
    pub exclude_groups: Option<Vec<String>>,
    pub include_roles: Option<Vec<String>>,
    pub exclude_roles: Option<Vec<String>>,
    pub include_guests_or_external_users: Option<serde_json::Value>,
    pub exclude_guests_or_external_users: Option<serde_json::Value>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct RawApps {
    pub include_applications: Option<Vec<String>>,
    pub exclude_applications: Option<Vec<String>>,
    pub include_user_actions: Option<Vec<String>>,
    pub include_authentication_context_class_references: Option<Vec<String>>,
    pub application_filter: Option<serde_json::Value>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct RawPlatforms {
    pub include_platforms: Option<Vec<String>>,
    pub exclude_platforms: Option<Vec<String>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct RawLocations {
    pub include_locations: Option<Vec<String>>,
    pub exclude_locations: Option<Vec<String>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct RawDevices {
    pub device_filter: Option<RawDeviceFilter>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct RawDeviceFilter {
    pub mode: Option<String>,
    pub rule: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct RawGrant {
    pub operator: Option<String>,
    pub built_in_controls: Option<Vec<String>>,
    pub custom_authentication_factors: Option<Vec<String>>,
    pub terms_of_use: Option<Vec<String>>,
    pub authentication_strength: Option<serde_json::Value>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct RawNamedLocation {
    pub id: Option<String>,
    pub display_name: Option<String>,
    #[serde(rename = "@odata.type")]
    pub odata_type: Option<String>,
    pub is_trusted: Option<bool>,
    pub ip_ranges: Option<Vec<RawIpRange>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct RawIpRange {
    pub cidr_address: Option<String>,
}
