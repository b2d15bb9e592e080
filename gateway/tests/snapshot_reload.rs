//! Sources end to end: load files, change a device's risk by atomic rename, see the new
//! snapshot published; write garbage, see the last good snapshot kept and the error
//! reported.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use portcullis::access::PolicySet;
use portcullis::clock::UnixMillis;
use portcullis::config::sources::SourcesConfig;
use portcullis::ids::DeviceId;
use portcullis::model::ComplianceState;
use portcullis::snapshot::{Snapshot, SnapshotStore};
use portcullis::sources::{files, watch};

const DEVICE: &str = "11111111-0000-0000-0000-000000000001";

fn devices() -> String {
    let sync = UnixMillis::now().to_rfc3339();
    format!(
        r#"{{"value": [{{"azureADDeviceId": "{DEVICE}", "deviceName": "PC-1", "operatingSystem": "Windows",
        "managementAgent": "mdm", "lastSyncDateTime": "{sync}", "complianceState": "compliant"}}]}}"#
    )
}

const POLICIES: &str = r##"[{"id": "w", "displayName": "Windows medium",
  "@odata.type": "#microsoft.graph.windows10CompliancePolicy",
  "deviceThreatProtectionEnabled": true, "deviceThreatProtectionRequiredSecurityLevel": "medium",
  "assignments": [{"target": {"@odata.type": "#microsoft.graph.allDevicesAssignmentTarget"}}]}]"##;

fn machines(score: &str) -> String {
    let seen = UnixMillis::now().to_rfc3339();
    format!(
        r#"[{{"aadDeviceId": "{DEVICE}", "riskScore": "{score}", "onboardingStatus": "Onboarded", "lastSeen": "{seen}"}}]"#
    )
}

/// Writes `text` to `name` in `dir` the way editors do: a temporary file renamed over it.
fn replace(dir: &Path, name: &str, text: &str) {
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, dir.join(name)).unwrap();
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn reloads_on_change_and_keeps_last_good_on_error() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path();
    replace(base, "devices.json", &devices());
    replace(base, "policies.json", POLICIES);
    replace(base, "machines.json", &machines("Low"));
    let toml_text = "managed_devices = \"devices.json\"\ncompliance_policies = \"policies.json\"\ndefender_machines = \"machines.json\"\ndebounce = \"50ms\"\n";
    let cfg: SourcesConfig = toml::from_str(toml_text).unwrap();
    let access: Arc<files::AccessLoader> =
        Arc::new(|_: Option<&Path>| Ok(Arc::new(PolicySet::empty())));

    let store = Arc::new(SnapshotStore::new(Snapshot::empty(
        Arc::new(PolicySet::empty()),
        UnixMillis::now(),
    )));
    let v1 = files::rebuild(&store, &cfg, base, &*access, UnixMillis::now()).unwrap();
    assert_eq!(v1, 1);
    let id = DeviceId::parse(DEVICE).unwrap();
    let state = |s: &SnapshotStore| s.load().devices.get(id).map(|e| e.state());
    assert_eq!(state(&store), Some(ComplianceState::Compliant));

    let handle = watch::spawn(store.clone(), cfg, base.to_owned(), access).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    replace(base, "machines.json", &machines("High"));
    wait_for("the high risk to be published", || {
        state(&store) == Some(ComplianceState::Noncompliant)
    });
    let good = store.load().version;
    assert!(good > v1);

    replace(
        base,
        "policies.json",
        "[{\"id\": \"w\",\n  \"@odata.type\": 42",
    );
    wait_for("the failure to be reported", || {
        store.health().last_error.is_some()
    });
    let health = store.health();
    let err = health.last_error.unwrap();
    assert!(
        err.contains("policies.json") && err.contains("line 2"),
        "{err}"
    );
    assert_eq!(store.load().version, good, "the last good snapshot stays");
    assert_eq!(state(&store), Some(ComplianceState::Noncompliant));

    replace(base, "policies.json", POLICIES);
    replace(base, "machines.json", &machines("Medium"));
    wait_for("recovery", || {
        state(&store) == Some(ComplianceState::Compliant) && store.health().last_error.is_none()
    });
    handle.stop();
}

/// The demo data of config/demo covers every reason code as config/README.md says.
#[test]
fn demo_data_covers_every_reason() {
    use portcullis::reason::ReasonCode::*;
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/demo");
    let mut cfg = SourcesConfig::new("devices.json", "compliance-policies.json");
    cfg.defender_machines = Some("defender-machines.json".into());
    cfg.tenant_settings = Some("tenant.json".into());
    let snap = files::load(
        &cfg,
        &base,
        Arc::new(PolicySet::empty()),
        None,
        UnixMillis::now(),
    )
    .unwrap();
    use ComplianceState::{Compliant as C, InGracePeriod as G, Noncompliant as N};
    let want = [
        (1, C, None),
        (2, N, Some(RiskAboveThreshold)),
        (3, N, Some(RiskUnavailable)),
        (4, N, Some(DeviceNotManaged)),
        (5, N, Some(CheckinStale)),
        (6, C, None),
        (7, N, Some(MdmNoncompliant)),
        (8, N, Some(RiskAboveThreshold)),
        (9, G, Some(InGracePeriod)),
        (10, C, None),
        (11, C, None),
        (12, N, Some(NoPolicyAssigned)),
    ];
    for (n, state, reason) in want {
        let id = DeviceId::parse(&format!("11111111-0000-0000-0000-{n:012x}")).unwrap();
        let e = snap.devices.get(id).unwrap();
        assert_eq!(e.state(), state, "device {n}: {e:?}");
        assert_eq!(
            reason.is_none(),
            e.reasons().is_empty(),
            "device {n}: {e:?}"
        );
        if let Some(r) = reason {
            assert!(e.reasons().contains(r), "device {n}: {e:?}");
        }
    }
    let unknown = DeviceId::parse("11111111-0000-0000-0000-0000000000ff").unwrap();
    assert!(snap.devices.get(unknown).is_none());
    assert_eq!(snap.devices.len(), 12);
}
