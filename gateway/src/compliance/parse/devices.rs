//! Graph `managedDevice` records (plus our `memberOf` extension) -> `DeviceRecord`s.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::clock::UnixMillis;
use crate::compliance::device::{
    normalise_groups, DeviceRecord, ExtensionAttributes, MdmState, Ownership,
};
use crate::ids::{DeviceId, GroupId, GuidError, UserId};
use crate::model::{Platform, TrustType};

use super::error::{ParseError, RecordCtx};
use super::lenient::{name_of, opt, read_records, Lenient};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDevice {
    id: Option<Lenient<String>>,
    #[serde(rename = "azureADDeviceId", alias = "deviceId")]
    azure_ad_device_id: Option<Lenient<String>>,
    #[serde(alias = "displayName")]
    device_name: Option<Lenient<String>>,
    operating_system: Option<Lenient<String>>,
    os_version: Option<Lenient<String>>,
    is_managed: Option<Lenient<bool>>,
    management_agent: Option<Lenient<String>>,
    user_id: Option<Lenient<String>>,
    member_of: Option<Lenient<Vec<String>>>,
    last_sync_date_time: Option<Lenient<String>>,
    compliance_state: Option<Lenient<String>>,
    #[serde(alias = "trustType")]
    join_type: Option<Lenient<String>>,
    managed_device_owner_type: Option<Lenient<String>>,
    model: Option<Lenient<String>>,
    manufacturer: Option<Lenient<String>>,
    extension_attributes: Option<Lenient<BTreeMap<String, Option<String>>>>,
}

/// The inventory read from one document.
#[derive(Debug, Default)]
pub struct ParsedDevices {
    pub devices: Vec<DeviceRecord>,
    /// Records skipped because they have no Entra device id (nil `azureADDeviceId`, as Graph
    /// writes for devices that never registered): they cannot be matched to a request.
    pub skipped_without_device_id: usize,
}

/// Parses a Graph managed-devices export (`{"value": [...]}` or a bare array).
pub fn parse_managed_devices(file: &str, text: &str) -> Result<ParsedDevices, ParseError> {
    let raw: Vec<RawDevice> = read_records(file, text)?;
    let mut out = ParsedDevices {
        devices: Vec::with_capacity(raw.len()),
        ..ParsedDevices::default()
    };
    for (index, r) in raw.iter().enumerate() {
        let ctx = RecordCtx::new(file, index, name_of(&r.id), name_of(&r.device_name));
        match convert(&ctx, r)? {
            Some(d) => out.devices.push(d),
            None => out.skipped_without_device_id += 1,
        }
    }
    Ok(out)
}

fn convert(ctx: &RecordCtx<'_>, r: &RawDevice) -> Result<Option<DeviceRecord>, ParseError> {
    const ID: &str = "azureADDeviceId";
    let id = match opt(ctx, ID, &r.azure_ad_device_id)? {
        None => return Err(ctx.err(ID, "missing (the Entra device id is the join key)")),
        Some(text) => match DeviceId::parse(&text) {
            Ok(id) => id,
            Err(GuidError::Nil) => return Ok(None),
            Err(e) => return Err(ctx.err(ID, e.to_string())),
        },
    };
    let os = opt(ctx, "operatingSystem", &r.operating_system)?.unwrap_or_default();
    let mut d = DeviceRecord::new(id, Platform::from_graph(&os));
    d.display_name = opt(ctx, "deviceName", &r.device_name)?.unwrap_or_default();
    d.os_version = opt(ctx, "osVersion", &r.os_version)?.unwrap_or_default();
    let agent = opt(ctx, "managementAgent", &r.management_agent)?;
    d.managed = match opt(ctx, "isManaged", &r.is_managed)? {
        Some(m) => m,
        None => agent.as_deref().is_some_and(agent_manages),
    };
    d.user = match opt(ctx, "userId", &r.user_id)? {
        Some(text) if !text.trim().is_empty() => {
            Some(UserId::parse(&text).map_err(|e| ctx.err("userId", e.to_string()))?)
        }
        _ => None,
    };
    let groups = opt(ctx, "memberOf", &r.member_of)?.unwrap_or_default();
    d.groups = groups
        .iter()
        .map(|g| GroupId::parse(g).map_err(|e| ctx.err("memberOf", e.to_string())))
        .collect::<Result<_, _>>()?;
    normalise_groups(&mut d.groups);
    d.last_sync = match opt(ctx, "lastSyncDateTime", &r.last_sync_date_time)? {
        None => None,
        Some(text) => {
            let at = UnixMillis::parse_rfc3339(&text).ok_or_else(|| {
                ctx.err(
                    "lastSyncDateTime",
                    format!("not an RFC 3339 time: {text:?}"),
                )
            })?;
            // Graph writes 0001-01-01T00:00:00Z for "never".
            (at > UnixMillis::EPOCH).then_some(at)
        }
    };
    if let Some(text) = opt(ctx, "complianceState", &r.compliance_state)? {
        d.mdm_state = MdmState::parse(&text)
            .ok_or_else(|| ctx.err("complianceState", format!("unknown state {text:?}")))?;
    }
    if let Some(text) = opt(ctx, "joinType", &r.join_type)? {
        d.trust_type = TrustType::parse(&text)
            .ok_or_else(|| ctx.err("joinType", format!("unknown join type {text:?}")))?;
    }
    if let Some(text) = opt(ctx, "managedDeviceOwnerType", &r.managed_device_owner_type)? {
        d.ownership = Ownership::parse(&text).ok_or_else(|| {
            ctx.err(
                "managedDeviceOwnerType",
                format!("unknown owner type {text:?}"),
            )
        })?;
    }
    d.model = opt(ctx, "model", &r.model)?.unwrap_or_default();
    d.manufacturer = opt(ctx, "manufacturer", &r.manufacturer)?.unwrap_or_default();
    if let Some(map) = opt(ctx, "extensionAttributes", &r.extension_attributes)? {
        let mut ext = ExtensionAttributes::default();
        for (key, value) in map {
            let n = key
                .strip_prefix("extensionAttribute")
                .and_then(|n| n.parse::<usize>().ok())
                .filter(|n| (1..=15).contains(n))
                .ok_or_else(|| {
                    ctx.err("extensionAttributes", format!("unknown attribute {key:?}"))
                })?;
            ext.0[n - 1] = value.filter(|v| !v.is_empty()).map(String::into_boxed_str);
        }
        d.extension_attributes = (!ext.is_empty()).then(|| Box::new(ext));
    }
    Ok(Some(d))
}

/// Whether Graph's `managementAgent` means the device is managed (anything but Exchange
/// ActiveSync only or unknown).
fn agent_manages(agent: &str) -> bool {
    let a = agent.trim();
    !(a.is_empty() || a.eq_ignore_ascii_case("eas") || a.eq_ignore_ascii_case("unknown"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(json: &str, expect: Result<&str, &str>) -> Option<ParsedDevices> {
        let got = parse_managed_devices("devices.json", json);
        match (got, expect) {
            (Ok(p), Ok(debug_contains)) => {
                let text = format!("{:?}", p.devices);
                assert!(
                    text.contains(debug_contains),
                    "{text} lacks {debug_contains}"
                );
                Some(p)
            }
            (Err(e), Err(msg)) => {
                let text = e.to_string();
                assert!(text.contains(msg), "{text:?} lacks {msg:?}");
                None
            }
            (got, want) => panic!("{json}: got {got:?}, want {want:?}"),
        }
    }

    const FULL: &str = r#"{"@odata.context": "x", "value": [{
        "id": "m1", "azureADDeviceId": "11111111-0000-0000-0000-000000000001",
        "deviceName": "DESKTOP-1", "operatingSystem": "Windows", "osVersion": "10.0.22631",
        "managementAgent": "mdm", "userId": "aaaaaaaa-0000-0000-0000-000000000001",
        "memberOf": ["bbbbbbbb-0000-0000-0000-000000000002", "bbbbbbbb-0000-0000-0000-000000000001"],
        "lastSyncDateTime": "2026-11-20T10:00:00Z", "complianceState": "compliant",
        "joinType": "azureADJoined", "managedDeviceOwnerType": "company",
        "model": "Surface", "manufacturer": "Microsoft", "somethingNew": {"x": 1},
        "extensionAttributes": {"extensionAttribute3": "kiosk", "extensionAttribute4": null}
    }]}"#;

    #[test]
    fn reads_graph_page_with_every_field() {
        let p = check(FULL, Ok("DESKTOP-1")).unwrap();
        let d = &p.devices[0];
        assert!(d.managed);
        assert_eq!(d.platform, Platform::Windows);
        assert_eq!(d.trust_type, TrustType::AzureAd);
        assert_eq!(d.ownership, Ownership::Company);
        assert_eq!(d.groups.len(), 2);
        assert!(d.groups[0] < d.groups[1]);
        assert_eq!(
            d.extension_attributes.as_ref().unwrap().get(3),
            Some("kiosk")
        );
        assert_eq!(
            d.last_sync,
            UnixMillis::parse_rfc3339("2026-11-20T10:00:00Z")
        );
    }

    #[test]
    fn shapes_and_errors() {
        let id = r#""azureADDeviceId": "11111111-0000-0000-0000-000000000002""#;
        check(
            &format!("[{{{id}, \"managementAgent\": \"eas\"}}]"),
            Ok("managed: false"),
        );
        check(
            &format!("[{{{id}, \"isManaged\": true, \"userId\": \"\"}}]"),
            Ok("user: None"),
        );
        check(
            &format!("[{{{id}, \"lastSyncDateTime\": \"0001-01-01T00:00:00Z\"}}]"),
            Ok("last_sync: None"),
        );
        check(
            &format!("[{{{id}, \"isManaged\": \"yes\", \"deviceName\": \"PC\"}}]"),
            Err("devices.json: record #0 (\"PC\"): field `isManaged`: invalid type"),
        );
        check(
            &format!("[{{{id}, \"lastSyncDateTime\": \"soon\"}}]"),
            Err("field `lastSyncDateTime`"),
        );
        check(
            &format!("[{{{id}, \"complianceState\": \"maybe\"}}]"),
            Err("field `complianceState`: unknown state"),
        );
        check(
            &format!("[{{{id}, \"memberOf\": [\"nope\"]}}]"),
            Err("field `memberOf`: not a GUID"),
        );
        check(
            &format!("[{{{id}, \"joinType\": \"welded\"}}]"),
            Err("field `joinType`"),
        );
        check(
            &format!("[{{{id}, \"extensionAttributes\": {{\"extensionAttribute16\": \"x\"}}}}]"),
            Err("field `extensionAttributes`"),
        );
        check(
            r#"[{"id": "m9"}]"#,
            Err("record #0 (id \"m9\"): field `azureADDeviceId`: missing"),
        );
        check(
            r#"[{"azureADDeviceId": "xyz"}]"#,
            Err("field `azureADDeviceId`: not a GUID"),
        );
        check("[{\"azureADDeviceId\": 1,\n}]", Err("line 2 column 1"));
        check(r#"{"value": 3}"#, Err("devices.json: invalid type"));
        let p = check(
            r#"[{"azureADDeviceId": "00000000-0000-0000-0000-000000000000"}]"#,
            Ok("[]"),
        )
        .unwrap();
        assert_eq!(p.skipped_without_device_id, 1);
    }
}
