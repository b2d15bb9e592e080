//! The packed per-device record the table stores (72 bytes): ids as two `u64`s, times at
//! one-second resolution in `u32`s (except the risk observation time, kept in milliseconds
//! because signals are ordered by it), small enums as bytes, strings and group sets as
//! indexes into the table's shared `Statics`.

use crate::clock::UnixMillis;
use crate::compliance::{Compliance, MdmState, Ownership, RiskObservation};
use crate::model::{ComplianceState, Platform, Risk, TrustType};
use crate::reason::{ReasonCode, ReasonSet};

/// One device in the table. Private layout; read through `DeviceEntry`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Packed {
    pub id: [u64; 2],
    pub user: [u64; 2],
    /// Risk observation time in ms; `i64::MIN` = never observed.
    pub risk_at: i64,
    /// Seconds since the epoch; 0 = none.
    pub last_sync: u32,
    pub failing_since: u32,
    pub grace_until: u32,
    /// Offset of the display name in `Statics::names`.
    pub name: u32,
    pub groups: u32,
    pub os_version: u16,
    pub hardware: u16,
    pub platform: u8,
    pub trust: u8,
    pub ownership: u8,
    pub flags: u8,
    pub risk: u8,
    pub state: u8,
    pub allowed: u8,
    pub reasons: u8,
}

pub(crate) const MANAGED: u8 = 1;
pub(crate) const HAS_EXTRAS: u8 = 2;
pub(crate) const RISK_EXPIRED: u8 = 4;
const MDM_SHIFT: u8 = 3;

/// The reason codes a compliance state can carry, in the bit order `Packed::reasons` uses.
const REASONS: [ReasonCode; 8] = [
    ReasonCode::DeviceUnknown,
    ReasonCode::DeviceNotManaged,
    ReasonCode::CheckinStale,
    ReasonCode::NoPolicyAssigned,
    ReasonCode::MdmNoncompliant,
    ReasonCode::RiskAboveThreshold,
    ReasonCode::RiskUnavailable,
    ReasonCode::InGracePeriod,
];

const TRUST: [TrustType; 4] = [
    TrustType::AzureAd,
    TrustType::ServerAd,
    TrustType::Workplace,
    TrustType::None,
];
const OWNERSHIP: [Ownership; 3] = [Ownership::Company, Ownership::Personal, Ownership::Unknown];

fn index_of<T: PartialEq>(all: &[T], v: &T) -> u8 {
    // The arrays above and the enums' ALL lists are complete, so `position` always finds
    // `v`; the fallback is the last (catch-all) value.
    let i = all.iter().position(|x| x == v).unwrap_or(all.len() - 1);
    u8::try_from(i).unwrap_or(u8::MAX)
}

fn at<T: Copy>(all: &[T], i: u8) -> T {
    all.get(usize::from(i))
        .copied()
        .unwrap_or(all[all.len() - 1])
}

pub(crate) fn split(v: u128) -> [u64; 2] {
    [v as u64, (v >> 64) as u64]
}

pub(crate) fn join(v: [u64; 2]) -> u128 {
    u128::from(v[0]) | (u128::from(v[1]) << 64)
}

/// Milliseconds to whole seconds, rounding down; `None` and pre-epoch times become 0.
pub(crate) fn secs_floor(t: Option<UnixMillis>) -> u32 {
    t.map_or(0, |t| u32::try_from(t.as_secs().max(1)).unwrap_or(u32::MAX))
}

/// Milliseconds to whole seconds, rounding up (for deadlines).
pub(crate) fn secs_ceil(t: Option<UnixMillis>) -> u32 {
    t.map_or(0, |t| {
        u32::try_from(t.0.saturating_add(999).div_euclid(1000).max(1)).unwrap_or(u32::MAX)
    })
}

pub(crate) fn from_secs(s: u32) -> Option<UnixMillis> {
    (s != 0).then(|| UnixMillis::from_secs(i64::from(s)))
}

impl Packed {
    /// An all-zero record (pads the last chunk; never a device).
    pub const EMPTY: Packed = Packed {
        id: [0; 2],
        user: [0; 2],
        risk_at: i64::MIN,
        last_sync: 0,
        failing_since: 0,
        grace_until: 0,
        name: 0,
        groups: 0,
        os_version: 0,
        hardware: 0,
        platform: 0,
        trust: 0,
        ownership: 0,
        flags: 0,
        risk: 0,
        state: 0,
        allowed: 0,
        reasons: 0,
    };

    pub fn platform(&self) -> Platform {
        at(&Platform::ALL, self.platform)
    }
    pub fn set_platform(&mut self, p: Platform) {
        self.platform = index_of(&Platform::ALL, &p);
    }
    pub fn trust(&self) -> TrustType {
        at(&TRUST, self.trust)
    }
    pub fn set_trust(&mut self, t: TrustType) {
        self.trust = index_of(&TRUST, &t);
    }
    pub fn ownership(&self) -> Ownership {
        at(&OWNERSHIP, self.ownership)
    }
    pub fn set_ownership(&mut self, o: Ownership) {
        self.ownership = index_of(&OWNERSHIP, &o);
    }
    pub fn mdm_state(&self) -> MdmState {
        at(&MdmState::ALL, self.flags >> MDM_SHIFT)
    }
    pub fn set_flags(&mut self, managed: bool, extras: bool, mdm: MdmState) {
        self.flags = (u8::from(managed) * MANAGED)
            | (u8::from(extras) * HAS_EXTRAS)
            | (index_of(&MdmState::ALL, &mdm) << MDM_SHIFT);
    }
    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }

    pub fn risk(&self) -> RiskObservation {
        RiskObservation {
            risk: at(&Risk::ALL, self.risk),
            observed_at: (self.risk_at != i64::MIN).then_some(UnixMillis(self.risk_at)),
        }
    }
    pub fn set_risk(&mut self, r: RiskObservation) {
        self.risk = index_of(&Risk::ALL, &r.risk);
        self.risk_at = r.observed_at.map_or(i64::MIN, |t| t.0);
    }

    pub fn state(&self) -> ComplianceState {
        at(&ComplianceState::ALL, self.state)
    }
    pub fn reasons(&self) -> ReasonSet {
        REASONS
            .iter()
            .enumerate()
            .filter(|(i, _)| self.reasons & (1 << i) != 0)
            .fold(ReasonSet::EMPTY, |s, (_, r)| s.with(*r))
    }
    pub fn allowed(&self) -> Option<Risk> {
        self.allowed.checked_sub(1).map(|i| at(&Risk::ALL, i))
    }

    /// Stores an evaluation result (times at one-second resolution).
    pub fn set_compliance(&mut self, c: &Compliance) {
        self.state = index_of(&ComplianceState::ALL, &c.state);
        self.reasons = REASONS
            .iter()
            .enumerate()
            .filter(|(_, r)| c.reasons.contains(**r))
            .fold(0, |bits, (i, _)| bits | (1 << i));
        self.allowed = c
            .details
            .allowed_risk
            .map_or(0, |r| index_of(&Risk::ALL, &r) + 1);
        self.grace_until = secs_ceil(c.details.grace_until);
        self.failing_since = secs_floor(c.details.failing_since);
        let expired =
            c.details.observed_risk == Risk::Unavailable && self.risk().risk != Risk::Unavailable;
        self.flags = (self.flags & !RISK_EXPIRED) | (u8::from(expired) * RISK_EXPIRED);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_is_compact_and_round_trips() {
        assert_eq!(std::mem::size_of::<Packed>(), 72);
        let mut p = Packed {
            id: split(5),
            ..Packed::EMPTY
        };
        for plat in Platform::ALL {
            p.set_platform(plat);
            assert_eq!(p.platform(), plat);
        }
        for t in TRUST {
            p.set_trust(t);
            assert_eq!(p.trust(), t);
        }
        for m in MdmState::ALL {
            p.set_flags(true, false, m);
            assert_eq!(
                (p.mdm_state(), p.has(MANAGED), p.has(HAS_EXTRAS)),
                (m, true, false)
            );
        }
        let obs = RiskObservation::new(Risk::High, UnixMillis(1_234));
        p.set_risk(obs);
        assert_eq!(p.risk(), obs);
        assert_eq!(join(split(u128::MAX - 3)), u128::MAX - 3);
        assert_eq!(secs_ceil(Some(UnixMillis(1_001))), 2);
        assert_eq!(secs_floor(Some(UnixMillis(1_999))), 1);
    }
}
