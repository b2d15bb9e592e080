//! `DeviceEntry`: a borrowed view of one device in a `DeviceTable`, with accessors that
//! unpack the compact storage.

use std::fmt;

use crate::access::filter::FilterAttribute;
use crate::clock::UnixMillis;
use crate::compliance::{
    Compliance, ComplianceDetails, DeviceFacts, MdmState, Ownership, RiskObservation,
};
use crate::ids::{DeviceId, GroupId, UserId};
use crate::model::{ComplianceState, Platform, Risk, TrustType};
use crate::reason::ReasonSet;

use super::packed::{self, Packed, HAS_EXTRAS, MANAGED, RISK_EXPIRED};
use super::statics::{Extras, SPILLED};
use super::table::{valid_until, DeviceTable};

/// One device as the snapshot holds it. Cheap to copy (two pointers); every accessor is a
/// few loads, no allocation.
#[derive(Clone, Copy)]
pub struct DeviceEntry<'a> {
    table: &'a DeviceTable,
    p: &'a Packed,
}

impl<'a> DeviceEntry<'a> {
    pub(crate) fn new(table: &'a DeviceTable, p: &'a Packed) -> Self {
        Self { table, p }
    }

    pub fn id(&self) -> DeviceId {
        // Only non-nil ids are ever stored.
        DeviceId::from_u128(packed::join(self.p.id)).unwrap_or_else(|| unreachable!())
    }

    /// The compliance state (the one field the hot path needs).
    #[inline]
    pub fn state(&self) -> ComplianceState {
        self.p.state()
    }

    pub fn reasons(&self) -> ReasonSet {
        self.p.reasons()
    }

    /// The full computed compliance (times at one-second resolution).
    pub fn compliance(&self) -> Compliance {
        let risk = self.p.risk();
        Compliance {
            state: self.p.state(),
            reasons: self.p.reasons(),
            details: ComplianceDetails {
                observed_risk: if self.p.has(RISK_EXPIRED) {
                    Risk::Unavailable
                } else {
                    risk.risk
                },
                allowed_risk: self.p.allowed(),
                grace_until: (self.p.state() == ComplianceState::InGracePeriod)
                    .then(|| packed::from_secs(self.p.grace_until))
                    .flatten(),
                failing_since: packed::from_secs(self.p.failing_since),
            },
            valid_until: valid_until(self.p, &self.table.settings),
        }
    }

    /// The last risk observation applied (before any max-age ageing).
    pub fn risk(&self) -> RiskObservation {
        self.p.risk()
    }

    pub fn platform(&self) -> Platform {
        self.p.platform()
    }

    pub fn managed(&self) -> bool {
        self.p.has(MANAGED)
    }

    pub fn mdm_state(&self) -> MdmState {
        self.p.mdm_state()
    }

    pub fn trust_type(&self) -> TrustType {
        self.p.trust()
    }

    pub fn ownership(&self) -> Ownership {
        self.p.ownership()
    }

    pub fn display_name(&self) -> &'a str {
        self.table.statics.name(self.p.name)
    }

    pub fn last_sync(&self) -> Option<UnixMillis> {
        packed::from_secs(self.p.last_sync)
    }

    pub fn user_id(&self) -> Option<UserId> {
        UserId::from_u128(packed::join(self.p.user))
    }

    /// `memberOf`: group ids of the device and its primary user, sorted.
    pub fn groups(&self) -> &'a [GroupId] {
        self.table.statics.groups(self.p.groups)
    }

    fn extras(&self) -> Option<&'a Extras> {
        if self.p.has(HAS_EXTRAS) {
            self.table.statics.extras(packed::join(self.p.id))
        } else {
            None
        }
    }

    pub fn os_version(&self) -> &'a str {
        if self.p.os_version == SPILLED {
            return self
                .extras()
                .and_then(|e| e.os_version.as_deref())
                .unwrap_or("");
        }
        self.table.statics.os_version(self.p.os_version)
    }

    pub fn manufacturer(&self) -> &'a str {
        if self.p.hardware == SPILLED {
            return self
                .extras()
                .and_then(|e| e.manufacturer.as_deref())
                .unwrap_or("");
        }
        self.table.statics.hardware(self.p.hardware).0
    }

    pub fn model(&self) -> &'a str {
        if self.p.hardware == SPILLED {
            return self.extras().and_then(|e| e.model.as_deref()).unwrap_or("");
        }
        self.table.statics.hardware(self.p.hardware).1
    }

    /// `extensionAttribute{n}` (1..=15).
    pub fn extension_attribute(&self, n: usize) -> Option<&'a str> {
        self.extras()?.extension_attributes.as_ref()?.get(n)
    }

    /// The facts compliance evaluation reads.
    pub fn facts(&self) -> DeviceFacts<'a> {
        DeviceFacts {
            platform: self.p.platform(),
            managed: self.p.has(MANAGED),
            last_sync: packed::from_secs(self.p.last_sync),
            mdm_state: self.p.mdm_state(),
            has_user: self.p.user != [0, 0],
            groups: self.groups(),
        }
    }
}

impl fmt::Debug for DeviceEntry<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceEntry")
            .field("id", &self.id())
            .field("name", &self.display_name())
            .field("platform", &self.platform())
            .field("compliance", &self.compliance())
            .field("risk", &self.risk())
            .finish_non_exhaustive()
    }
}

impl<'a> DeviceEntry<'a> {
    /// The device as conditional access sees it: the packed fields now, the strings (display
    /// name, OS version, hardware, extension attributes) only if a device filter asks.
    #[inline]
    pub fn access_facts(&self) -> crate::access::DeviceFacts<'_> {
        crate::access::DeviceFacts {
            id: self.id(),
            state: self.state(),
            reasons: self.reasons(),
            platform: match self.platform() {
                Platform::Other => None,
                p => Some(p),
            },
            trust_type: self.trust_type(),
            managed: self.managed(),
            attributes: self,
        }
    }
}

fn non_empty(s: &str) -> Option<&str> {
    if s.is_empty() {
        None
    } else {
        Some(s)
    }
}

impl crate::access::DeviceAttributes for DeviceEntry<'_> {
    fn text(&self, attribute: &FilterAttribute) -> Option<&str> {
        match attribute {
            FilterAttribute::DisplayName => non_empty(self.display_name()),
            FilterAttribute::OperatingSystem => Some(self.platform().as_str()),
            FilterAttribute::OperatingSystemVersion => non_empty(self.os_version()),
            FilterAttribute::DeviceOwnership => self.ownership().as_str(),
            FilterAttribute::Model => non_empty(self.model()),
            FilterAttribute::Manufacturer => non_empty(self.manufacturer()),
            FilterAttribute::ExtensionAttribute(n @ 1..=15) => {
                self.extension_attribute(usize::from(*n))
            }
            _ => None,
        }
    }
}
