//! Conditional-access decision cost (product brief section 8). One request against 20
//! policies of a realistic mix, seven of which can apply to its app: the decision alone, then
//! the whole decide stage as the gateway runs it at 1,000,000 devices (snapshot load, device
//! lookup, device facts, decide) for a hot set of devices and for devices drawn at random;
//! `explain` measured for reference.

use std::hint::black_box;
use std::net::IpAddr;

use criterion::{criterion_group, criterion_main, Criterion};
use portcullis::access::{
    decide, explain, ClientAppType, DeviceFacts, DeviceText, PolicySet, RequestFacts, Unprotected,
};
use portcullis::ids::{apps, DeviceId, GroupId, UserId};
use portcullis::model::{ComplianceState, Platform, TrustType};
use portcullis::reason::ReasonSet;
use portcullis::snapshot::{build_table, Snapshot, SnapshotStore};
use portcullis_bench::{device_id, fleet, mix, rules, NOW};

const NAMED_LOCATIONS: &str = r##"[{"@odata.type":"#microsoft.graph.ipNamedLocation","id":"office",
  "displayName":"Office","isTrusted":true,"ipRanges":[{"cidrAddress":"127.0.0.0/8"},{"cidrAddress":"192.168.0.0/16"}]}]"##;

/// 20 policies: 7 can apply to SharePoint (all users or staff groups, various conditions and
/// controls), the rest target other apps, other users, or are disabled.
fn policies() -> String {
    let sp = "00000003-0000-0ff1-ce00-000000000000";
    let ex = "00000002-0000-0ff1-ce00-000000000000";
    let mut out = Vec::new();
    let mut add = |state: &str, users: String, apps: String, extra: &str, grant: &str| {
        let n = out.len() + 1;
        out.push(format!(
            r#"{{"id":"c0a1e001-0000-4000-8000-{n:012}","displayName":"policy {n}","state":"{state}",
               "conditions":{{"users":{users},"applications":{apps}{extra}}},"grantControls":{grant}}}"#
        ));
    };
    let all_users =
        r#"{"includeUsers":["All"],"excludeGroups":["bbbbbbbb-0000-0000-0000-000000000003"]}"#;
    let group = |g: u32| format!(r#"{{"includeGroups":["bbbbbbbb-0000-0000-0000-{g:012}"]}}"#);
    let app = |a: &str| format!(r#"{{"includeApplications":["{a}"]}}"#);
    let compliant = r#"{"operator":"OR","builtInControls":["compliantDevice"]}"#;
    let mfa = r#"{"operator":"OR","builtInControls":["mfa"]}"#;
    let block = r#"{"operator":"OR","builtInControls":["block"]}"#;
    let either = r#"{"operator":"OR","builtInControls":["compliantDevice","mfa"]}"#;
    // Can apply to SharePoint.
    add(
        "enabled",
        all_users.into(),
        app(sp),
        r#","clientAppTypes":["all"]"#,
        compliant,
    );
    add(
        "enabled",
        all_users.into(),
        app("Office365"),
        r#","clientAppTypes":["exchangeActiveSync","other"]"#,
        block,
    );
    add(
        "enabled",
        group(1),
        app("All"),
        r#","platforms":{"includePlatforms":["all"],"excludePlatforms":["linux"]}"#,
        either,
    );
    add(
        "enabled",
        all_users.into(),
        app(sp),
        r#","locations":{"includeLocations":["All"],"excludeLocations":["AllTrusted"]}"#,
        either,
    );
    add(
        "enabledForReportingButNotEnforced",
        group(2),
        app("All"),
        "",
        mfa,
    );
    add(
        "enabled",
        all_users.into(),
        app(sp),
        r#","devices":{"deviceFilter":{"mode":"exclude","rule":"device.extensionAttribute1 -eq \"kiosk\" -or device.trustType -eq \"ServerAD\""}}"#,
        compliant,
    );
    add(
        "enabled",
        group(4),
        app("All"),
        r#","clientAppTypes":["browser"]"#,
        either,
    );
    // Cannot apply to SharePoint.
    for i in 0..6 {
        add(
            "enabled",
            all_users.into(),
            app(ex),
            r#","clientAppTypes":["mobileAppsAndDesktopClients"]"#,
            if i % 2 == 0 { compliant } else { mfa },
        );
    }
    for i in 0..4 {
        add(
            "enabled",
            group(1),
            app(&format!("11111111-0000-0000-0000-{:012}", i + 1)),
            "",
            mfa,
        );
    }
    for _ in 0..3 {
        add("disabled", all_users.into(), app("All"), "", block);
    }
    format!("{{\"value\":[{}]}}", out.join(","))
}

const fn group(v: u128) -> GroupId {
    match GroupId::from_u128(v) {
        Some(g) => g,
        None => panic!("non-zero"),
    }
}

static GROUPS: [GroupId; 3] = [
    group(0xbbbbbbbb_0000_0000_0000_000000000001),
    group(0xbbbbbbbb_0000_0000_0000_000000000004),
    group(0xbbbbbbbb_0000_0000_0000_000000000009),
];
static EXTENSIONS: [Option<&str>; 15] = [None; 15];

fn request() -> RequestFacts<'static> {
    static TEXT: DeviceText<'static> = DeviceText {
        display_name: Some("FIN-LT-0042"),
        operating_system: Some("Windows"),
        os_version: Some("10.0.22631.4460"),
        ownership: Some("Company"),
        model: Some("Latitude 7450"),
        manufacturer: Some("Dell Inc."),
        extension_attributes: &EXTENSIONS,
    };
    let device = DeviceFacts {
        platform: Some(Platform::Windows),
        trust_type: TrustType::AzureAd,
        managed: true,
        attributes: &TEXT,
        ..DeviceFacts::new(
            DeviceId::from_u128(0x6f9619ff_8b86_d011_b42d_00c04fc964ff).expect("non-zero"),
            ComplianceState::Compliant,
            ReasonSet::EMPTY,
        )
    };
    RequestFacts {
        user: UserId::from_u128(0xaaaaaaaa_0000_0000_0000_000000000001),
        groups: &GROUPS,
        mfa: false,
        app: apps::SHAREPOINT_ONLINE,
        client_app: ClientAppType::Browser,
        ua_platform: Some(Platform::Windows),
        ip: IpAddr::from([203, 0, 113, 7]),
        device: Some(device),
        device_presented: true,
    }
}

fn bench(c: &mut Criterion) {
    let set = PolicySet::parse(&policies(), Some(NAMED_LOCATIONS)).expect("bench policies parse");
    assert_eq!(set.len(), 20);
    let req = request();
    let d = decide(&set, &req, Unprotected::Deny);
    assert!(d.is_allow(), "{d:?}");
    let mut group = c.benchmark_group("decision");
    group.bench_function("decide_20_policies", |b| {
        b.iter(|| decide(black_box(&set), black_box(&req), Unprotected::Deny))
    });
    let mut denied = req;
    denied.device = None;
    group.bench_function("decide_20_policies_deny_device_unknown", |b| {
        b.iter(|| decide(black_box(&set), black_box(&denied), Unprotected::Deny))
    });
    group.bench_function("explain_20_policies", |b| {
        b.iter(|| explain(black_box(&set), black_box(&req), Unprotected::Deny))
    });

    // The decide stage at 1,000,000 devices, as `proxy::gateway` runs it.
    const N: u64 = 1_000_000;
    let compliance = std::sync::Arc::new(rules());
    let mut snap = Snapshot::empty(std::sync::Arc::new(set), NOW);
    snap.devices = build_table(fleet(N), &compliance, None, NOW);
    snap.compliance = compliance;
    let store = SnapshotStore::new(snap);
    let hot: Vec<DeviceId> = (0..64).map(|i| device_id(mix(i) % N)).collect();
    let random: Vec<DeviceId> = (0..1 << 20)
        .map(|i| device_id(mix(i ^ 0x5eed) % N))
        .collect();
    let stage = |id: DeviceId| {
        let snapshot = store.load();
        let entry = snapshot.devices.get(id);
        let facts = RequestFacts {
            device: entry.as_ref().map(|e| e.access_facts()),
            ..req
        };
        decide(&snapshot.access, &facts, Unprotected::Deny).is_allow()
    };
    let mut i = 0usize;
    group.bench_function("decide_stage_1m_devices_hot_64", |b| {
        b.iter(|| {
            i = (i + 1) & 63;
            black_box(stage(black_box(hot[i])))
        })
    });
    let mut j = 0usize;
    group.bench_function("decide_stage_1m_devices_random", |b| {
        b.iter(|| {
            j = (j + 1) & ((1 << 20) - 1);
            black_box(stage(black_box(random[j])))
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
