//! Device compliance (product brief sections 3 and 4): device records, Graph compliance
//! policies, Defender risk, tenant settings, and the pure evaluation that turns them into a
//! `ComplianceState` with reason codes. Owns no I/O beyond parsing text it is handed
//! (`parse`); reading files is `sources`' job, storing results is `snapshot`'s.
//!
//! **Invariant:** `evaluate` is pure: no I/O, no clock, cannot fail, does not allocate.

pub mod device;
pub mod evaluate;
pub mod parse;
pub mod policy;
pub mod risk;
pub mod settings;

pub use device::{DeviceFacts, DeviceRecord, ExtensionAttributes, MdmState, Ownership};
pub use evaluate::{evaluate, evaluate_facts, Compliance, ComplianceDetails};
pub use policy::{Assignments, CompliancePolicies, CompliancePolicy};
pub use risk::RiskObservation;
pub use settings::TenantSettings;
