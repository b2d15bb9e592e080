//! Parsers for the JSON documents of product brief sections 3 and 4 (Graph managed devices,
//! Graph compliance policies, Graph tenant settings, Defender machines). Unknown fields are
//! ignored; a known field with a bad value is a `ParseError` naming the file, the record and
//! the field.

mod defender;
mod devices;
mod error;
mod lenient;
mod policies;
mod settings;

pub use defender::{parse_defender_machines, DefenderRisks};
pub use devices::{parse_managed_devices, ParsedDevices};
pub use error::ParseError;
pub use policies::parse_compliance_policies;
pub use settings::parse_tenant_settings;
