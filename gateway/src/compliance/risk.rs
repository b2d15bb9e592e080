//! A risk observation: the level a feed reported for a device and when it was observed.

use crate::clock::UnixMillis;
use crate::model::Risk;

/// What a risk feed said about a device. `observed_at` is `None` when nothing was ever
/// observed (the device is not onboarded to any feed).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct RiskObservation {
    pub risk: Risk,
    pub observed_at: Option<UnixMillis>,
}

impl RiskObservation {
    /// No observation at all.
    pub const NONE: Self = Self {
        risk: Risk::Unavailable,
        observed_at: None,
    };

    pub const fn new(risk: Risk, observed_at: UnixMillis) -> Self {
        Self {
            risk,
            observed_at: Some(observed_at),
        }
    }

    /// Whether this observation is strictly older than `other` (and should be ignored in
    /// its favour). An observation with a time is never older than one without.
    pub fn is_older_than(&self, other: &RiskObservation) -> bool {
        match (self.observed_at, other.observed_at) {
            (Some(a), Some(b)) => a < b,
            (None, Some(_)) => true,
            _ => false,
        }
    }
}
