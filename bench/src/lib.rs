//! Shared fixtures for the Portcullis benchmarks (see `benches/` and `bench/README.md`):
//! a deterministic synthetic fleet of any size, with the shape of a real tenant (four
//! platforms, a few dozen OS versions and models, group sets drawn from a bounded pool,
//! about 1.5 devices per user, every risk level).

use portcullis::clock::UnixMillis;
use portcullis::compliance::device::normalise_groups;
use portcullis::compliance::{
    Assignments, CompliancePolicies, CompliancePolicy, DeviceRecord, MdmState, RiskObservation,
    TenantSettings,
};
use portcullis::ids::{DeviceId, GroupId, UserId};
use portcullis::model::{Platform, Risk, TrustType};
use portcullis::snapshot::ComplianceRules;

/// The fixed "now" of the synthetic fleet.
pub const NOW: UnixMillis = UnixMillis(1_800_000_000_000);

/// Distinct `memberOf` sets in the fleet.
pub const GROUP_SETS: u64 = 2_000;

/// A 64-bit mixer (splitmix64), for deterministic pseudo-random values.
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The id of device `i` (random-looking, never nil).
pub fn device_id(i: u64) -> DeviceId {
    let v = (u128::from(mix(i)) << 64) | u128::from(mix(i ^ 0xdead_beef)) | 1;
    DeviceId::from_u128(v).unwrap_or_else(|| unreachable!("low bit set"))
}

fn group(n: u64) -> GroupId {
    GroupId::from_u128(0xbbbb_bbbb_0000_0000_0000_0000_0000_0000 | u128::from(n) | 1 << 64)
        .unwrap_or_else(|| unreachable!("non-zero"))
}

/// Device `i` of the synthetic fleet with its risk observation.
pub fn device(i: u64) -> (DeviceRecord, RiskObservation) {
    let r = mix(i.wrapping_mul(31).wrapping_add(7));
    let platform = [
        Platform::Windows,
        Platform::Android,
        Platform::Ios,
        Platform::MacOs,
    ][(r % 4) as usize];
    let mut d = DeviceRecord::new(device_id(i), platform);
    d.display_name = format!("DESKTOP-{:07X}", i & 0xfff_ffff);
    d.os_version = format!("{}.0.{}", 10 + (r >> 8) % 4, (r >> 12) % 8);
    d.model = format!("Model {}", (r >> 16) % 40);
    d.manufacturer =
        ["Contoso", "Fabrikam", "Northwind", "Apple"][((r >> 22) % 4) as usize].to_owned();
    d.user =
        UserId::from_u128(0xaaaa_0000_0000_0000_0000_0000_0000_0000 | u128::from(i * 2 / 3 + 1));
    let set = (r >> 24) % GROUP_SETS;
    d.groups = (0..3 + set % 6)
        .map(|k| group(mix(set * 8 + k) % 200))
        .collect();
    normalise_groups(&mut d.groups);
    d.last_sync = Some(NOW.plus_hours(-(((r >> 32) % 240) as i64)));
    d.mdm_state = if (r >> 40).is_multiple_of(50) {
        MdmState::Noncompliant
    } else {
        MdmState::Compliant
    };
    d.trust_type = TrustType::AzureAd;
    let risk = Risk::ALL[((r >> 44) % 5) as usize];
    (d, RiskObservation::new(risk, NOW.plus_hours(-1)))
}

/// The first `n` devices of the fleet.
pub fn fleet(n: u64) -> impl Iterator<Item = (DeviceRecord, RiskObservation)> {
    (0..n).map(device)
}

/// One policy per platform with different threat levels (Windows medium with a 24 h grace,
/// Android low, iOS secured, macOS medium excluding one group).
pub fn rules() -> ComplianceRules {
    let policy = |platform, max, grace, assignments| CompliancePolicy {
        id: format!("{platform}"),
        display_name: format!("{platform} baseline"),
        platform,
        max_risk: Some(max),
        grace_hours: grace,
        assignments,
        os_minimum_version: None,
        storage_require_encryption: None,
    };
    let all = Assignments {
        all_devices: true,
        ..Assignments::default()
    };
    let mac = Assignments {
        all_devices: true,
        exclude_groups: vec![group(3)],
        ..Assignments::default()
    };
    ComplianceRules {
        policies: CompliancePolicies::new([
            policy(Platform::Windows, Risk::Medium, 24, all.clone()),
            policy(Platform::Android, Risk::Low, 0, all.clone()),
            policy(Platform::Ios, Risk::Secured, 0, all),
            policy(Platform::MacOs, Risk::Medium, 0, mac),
        ]),
        settings: TenantSettings::default(),
    }
}

/// Resident set size of this process in KiB (Linux `/proc/self/status` `VmRSS`).
pub fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
