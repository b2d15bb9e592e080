//! The `[sources]` section: where device inventory, risk, policies and tenant settings come from.

use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourcesConfig {}
