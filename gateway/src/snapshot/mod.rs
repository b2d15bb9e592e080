//! The immutable snapshot the hot path reads, published through `arc-swap` (product brief
//! section 6): the device table with every device's computed compliance, the compiled
//! compliance rules, the conditional-access policy set and the status of the sources it was
//! built from.
//!
//! **Invariant:** a published `Snapshot` is never mutated. Readers take one atomic load
//! (`SnapshotStore::load`) and never wait for writers; writers (rebuilds, risk updates,
//! time-driven re-evaluation) are serialized among themselves and publish a new value that
//! shares every untouched part with the previous one.

mod build;
mod entry;
mod packed;
pub mod staleness;
mod statics;
mod status;
mod store;
mod table;

use std::sync::Arc;

use crate::access::PolicySet;
use crate::clock::UnixMillis;
use crate::compliance::{CompliancePolicies, TenantSettings};

pub use build::build_table;
pub use entry::DeviceEntry;
pub use status::{SourceHealth, SourceStatus};
pub use store::{Applied, BatchOutcome, RiskError, SnapshotStore};
pub use table::DeviceTable;

/// Compliance policies and tenant settings, as compiled for one snapshot.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ComplianceRules {
    pub policies: CompliancePolicies,
    pub settings: TenantSettings,
}

/// Everything a decision reads, as one immutable value.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Increases by one with every publish (rebuild, risk update, re-evaluation).
    pub version: u64,
    /// When the source documents were last fully read and the table rebuilt.
    pub built_at: UnixMillis,
    /// When this version was published (a risk update publishes a new version).
    pub published_at: UnixMillis,
    pub devices: DeviceTable,
    pub compliance: Arc<ComplianceRules>,
    pub access: Arc<PolicySet>,
    /// The documents this snapshot was built from.
    pub sources: Arc<[SourceStatus]>,
}

impl Snapshot {
    /// A snapshot with no devices and no policies (version 0): every device is unknown.
    pub fn empty(access: Arc<PolicySet>, now: UnixMillis) -> Self {
        let rules = Arc::new(ComplianceRules::default());
        Self {
            version: 0,
            built_at: now,
            published_at: now,
            devices: build_table(std::iter::empty(), &rules, None, now),
            compliance: rules,
            access,
            sources: Arc::from(Vec::new()),
        }
    }
}
