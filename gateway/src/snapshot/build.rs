//! Building a `DeviceTable` from inventory records and risk observations: evaluate each
//! device, pack it, intern what repeats, sort by id hash, cut into chunks, index.

use std::sync::Arc;

use crate::clock::UnixMillis;
use crate::compliance::evaluate::evaluate_facts;
use crate::compliance::{DeviceRecord, RiskObservation};

use super::packed::{self, Packed};
use super::statics::{Extras, StaticsBuilder, SPILLED};
use super::table::{group, hash, Chunk, DeviceTable, CHUNK_LEN};
use super::ComplianceRules;

/// Builds a table. Each record comes with the risk observation from the files; when `prev`
/// holds a newer observation for the device (a pushed signal) that one wins, and the
/// device's failing-since time carries over so grace periods keep running. A device listed
/// twice keeps the record with the latest check-in.
pub fn build_table(
    records: impl IntoIterator<Item = (DeviceRecord, RiskObservation)>,
    rules: &ComplianceRules,
    prev: Option<&DeviceTable>,
    now: UnixMillis,
) -> DeviceTable {
    let records = records.into_iter();
    let mut statics = StaticsBuilder::new();
    let mut entries: Vec<Packed> = Vec::with_capacity(records.size_hint().0);
    for (record, risk) in records {
        entries.push(pack(&mut statics, &record, risk, rules, prev, now));
    }
    entries.sort_unstable_by_key(|e| {
        let id = packed::join(e.id);
        (hash(id), id, std::cmp::Reverse(e.last_sync))
    });
    entries.dedup_by_key(|e| e.id);
    let mut extras = std::mem::take(&mut statics.extras);
    extras.sort_unstable_by_key(|(id, sync, _)| (*id, std::cmp::Reverse(*sync)));
    extras.dedup_by_key(|(id, _, _)| *id);
    let extras = extras.into_iter().map(|(id, _, e)| (id, e)).collect();
    assemble(entries, statics.finish(extras), rules)
}

fn pack(
    statics: &mut StaticsBuilder,
    d: &DeviceRecord,
    file_risk: RiskObservation,
    rules: &ComplianceRules,
    prev: Option<&DeviceTable>,
    now: UnixMillis,
) -> Packed {
    let before = prev.and_then(|t| t.get(d.id));
    let risk = match before.map(|b| b.risk()) {
        Some(pushed) if file_risk.is_older_than(&pushed) => pushed,
        _ => file_risk,
    };
    let failing_since = before.and_then(|b| b.compliance().details.failing_since);
    let last_sync = packed::secs_floor(d.last_sync);
    let mut extras = Extras {
        extension_attributes: d.extension_attributes.clone(),
        ..Extras::default()
    };
    let os_version = statics.intern_os(&d.os_version);
    if os_version == SPILLED {
        extras.os_version = Some(d.os_version.as_str().into());
    }
    let hardware = statics.intern_hardware(&d.manufacturer, &d.model);
    if hardware == SPILLED {
        extras.manufacturer = Some(d.manufacturer.as_str().into());
        extras.model = Some(d.model.as_str().into());
    }
    let has_extras = extras != Extras::default();
    let mut p = Packed {
        id: packed::split(d.id.as_u128()),
        user: packed::split(d.user.map_or(0, |u| u.as_u128())),
        last_sync,
        name: statics.push_name(&d.display_name),
        groups: statics.intern_groups(&d.groups),
        os_version,
        hardware,
        ..Packed::EMPTY
    };
    p.set_platform(d.platform);
    p.set_trust(d.trust_type);
    p.set_ownership(d.ownership);
    p.set_flags(d.managed, has_extras, d.mdm_state);
    p.set_risk(risk);
    if has_extras {
        statics
            .extras
            .push((d.id.as_u128(), last_sync, Box::new(extras)));
    }
    let mut facts = d.facts();
    facts.last_sync = packed::from_secs(last_sync);
    let c = evaluate_facts(
        Some(facts),
        risk,
        failing_since,
        &rules.policies,
        &rules.settings,
        now,
    );
    p.set_compliance(&c);
    p
}

/// Cuts sorted, de-duplicated entries into chunks and builds the bucket directory.
fn assemble(
    entries: Vec<Packed>,
    statics: super::statics::Statics,
    rules: &ComplianceRules,
) -> DeviceTable {
    let len = entries.len();
    // About 8 entries per bucket: the directory stays small (cache-resident) and the
    // in-bucket position estimate (see `DeviceTable::position`) lands within a line or two.
    let buckets = (len / 8).next_power_of_two().max(2);
    let shift = 64 - buckets.trailing_zeros();
    let mut dir = vec![0u32; buckets + 1];
    for e in &entries {
        let b = (hash(packed::join(e.id)) >> shift) as usize;
        dir[b + 1] += 1;
    }
    for b in 0..buckets {
        dir[b + 1] += dir[b];
    }
    let settings = rules.settings;
    let chunks = entries
        .chunks(CHUNK_LEN)
        .map(|c| Chunk::new(c, &settings))
        .collect();
    DeviceTable {
        dir: dir.into(),
        shift,
        groups: group(chunks),
        statics: Arc::new(statics),
        settings,
        len,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::compliance::{Assignments, CompliancePolicies, CompliancePolicy, TenantSettings};
    use crate::ids::{DeviceId, GroupId, UserId};
    use crate::model::{ComplianceState, Platform, Risk};
    use crate::reason::ReasonCode;

    const NOW: UnixMillis = UnixMillis(1_800_000_000_000);

    pub(crate) fn rules(max: Risk, grace_hours: u32) -> ComplianceRules {
        ComplianceRules {
            policies: CompliancePolicies::new([CompliancePolicy {
                id: "w".into(),
                display_name: "Windows".into(),
                platform: Platform::Windows,
                max_risk: Some(max),
                grace_hours,
                assignments: Assignments {
                    all_devices: true,
                    ..Assignments::default()
                },
                os_minimum_version: None,
                storage_require_encryption: None,
            }]),
            settings: TenantSettings::default(),
        }
    }

    pub(crate) fn device(n: u128) -> DeviceRecord {
        let mut d = DeviceRecord::new(DeviceId::from_u128(n).unwrap(), Platform::Windows);
        d.display_name = format!("PC-{n}");
        d.last_sync = Some(NOW.plus_hours(-1));
        d.os_version = "10.0.22631".into();
        d.model = "Surface".into();
        d.manufacturer = "Microsoft".into();
        d.user = UserId::from_u128(0xaaaa);
        d.groups = vec![GroupId::from_u128(0xbbbb).unwrap()];
        d
    }

    #[test]
    fn every_device_is_found_with_its_fields() {
        let n = 5_000u128;
        let records = (1..=n).map(|i| (device(i), RiskObservation::new(Risk::Low, NOW)));
        let table = build_table(records, &rules(Risk::Medium, 0), None, NOW);
        assert_eq!(table.len(), n as usize);
        for i in 1..=n {
            let e = table.get(DeviceId::from_u128(i).unwrap()).unwrap();
            assert_eq!(e.id().as_u128(), i);
            assert_eq!(e.display_name(), format!("PC-{i}"));
            assert_eq!(
                (e.os_version(), e.model(), e.manufacturer()),
                ("10.0.22631", "Surface", "Microsoft")
            );
            assert_eq!(e.state(), ComplianceState::Compliant);
            assert_eq!(e.groups().len(), 1);
        }
        for i in n + 1..=3 * n {
            assert!(table.get(DeviceId::from_u128(i).unwrap()).is_none());
        }
        assert_eq!(table.group_set_count(), 2, "empty set + the shared one");
    }

    #[test]
    fn device_filters_read_the_snapshots_strings_when_asked() {
        use crate::access::filter::FilterExpr;
        use crate::compliance::device::ExtensionAttributes;
        let mut with_extras = device(7);
        let mut ext = ExtensionAttributes::default();
        ext.0[2] = Some("kiosk".into());
        with_extras.extension_attributes = Some(Box::new(ext));
        with_extras.os_version = "10.0.99999.1".into(); // unique: spilled to the extras
        let table = build_table(
            [device(5), with_extras].map(|d| (d, RiskObservation::new(Risk::Low, NOW))),
            &rules(Risk::Medium, 0),
            None,
            NOW,
        );
        let matches = |n: u128, rule: &str| {
            let entry = table.get(DeviceId::from_u128(n).unwrap()).unwrap();
            let facts = entry.access_facts();
            FilterExpr::parse(rule).unwrap().matches(Some(&facts))
        };
        let all = r#"device.displayName -eq "PC-7" -and device.operatingSystem -eq "Windows" -and device.model -eq "Surface" -and device.manufacturer -eq "Microsoft" -and device.extensionAttribute3 -eq "kiosk" -and device.operatingSystemVersion -startsWith "10.0.99999""#;
        assert!(matches(7, all));
        assert!(!matches(5, all));
        assert!(matches(
            5,
            r#"device.displayName -eq "PC-5" -and device.operatingSystemVersion -eq "10.0.22631""#
        ));
        assert!(
            matches(5, r#"device.extensionAttribute3 -ne "kiosk""#),
            "null"
        );
    }

    #[test]
    fn duplicates_keep_the_latest_check_in_and_prev_carries_pushed_risk() {
        let mut old = device(7);
        old.last_sync = Some(NOW.plus_hours(-5));
        old.display_name = "old".into();
        let fresh = device(7);
        let file = RiskObservation::new(Risk::Low, NOW.plus_hours(-2));
        let table = build_table(
            [(old, file), (fresh.clone(), file)],
            &rules(Risk::Medium, 0),
            None,
            NOW,
        );
        assert_eq!(table.len(), 1);
        let e = table.get(fresh.id).unwrap();
        assert_eq!(e.display_name(), "PC-7");

        let pushed = RiskObservation::new(Risk::High, NOW.plus_hours(-1));
        let prev = build_table(
            [(fresh.clone(), pushed)],
            &rules(Risk::Medium, 24),
            None,
            NOW,
        );
        let first = prev.get(fresh.id).unwrap().compliance();
        assert_eq!(first.state, ComplianceState::InGracePeriod);
        let later = NOW.plus_hours(2);
        let next = build_table(
            [(fresh.clone(), file)],
            &rules(Risk::Medium, 24),
            Some(&prev),
            later,
        );
        let c = next.get(fresh.id).unwrap().compliance();
        assert_eq!(next.get(fresh.id).unwrap().risk(), pushed);
        assert_eq!(c.details.failing_since, first.details.failing_since);
        assert!(c.reasons.contains(ReasonCode::InGracePeriod));
        assert_eq!(
            c.details.grace_until,
            Some(UnixMillis::from_secs(NOW.as_secs()).plus_hours(24))
        );
    }
}
