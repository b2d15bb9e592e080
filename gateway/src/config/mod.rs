//! Gateway configuration (TOML).

pub mod identity;
pub mod sources;
