//! Risk signals: one device's risk level at one time, as pushed to the admin API or pulled
//! from a Defender-style feed.
//!
//! Owns the `Signal` value, the parsing of push bodies (`parse`: JSON or NDJSON, each bad item
//! rejected with its line or item number) and the durable journal of accepted signals
//! (`journal`). It does not apply signals to the snapshot: the caller does, after the journal
//! has made them durable.

pub mod journal;
mod parse;

use std::collections::HashMap;

pub use parse::{
    parse_signals, signal_from_json, BodyError, BodyFormat, LineError, ParseLimits, ParsedSignals,
};

use crate::clock::UnixMillis;
use crate::ids::DeviceId;
use crate::model::Risk;

/// One device's risk level as observed at one time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Signal {
    pub device: DeviceId,
    pub risk: Risk,
    pub observed_at: UnixMillis,
}

/// Keeps the latest signal per device: the greatest `observed_at` wins, and on a tie the one
/// that comes later in `signals` (the later arrival). The result is ordered by device id so
/// that it is deterministic.
pub fn latest_per_device(signals: &[Signal]) -> Vec<Signal> {
    let mut latest: HashMap<DeviceId, Signal> = HashMap::with_capacity(signals.len());
    for s in signals {
        latest
            .entry(s.device)
            .and_modify(|cur| {
                if s.observed_at >= cur.observed_at {
                    *cur = *s;
                }
            })
            .or_insert(*s);
    }
    let mut out: Vec<Signal> = latest.into_values().collect();
    out.sort_by_key(|s| s.device);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sig(device: u128, risk: Risk, at: i64) -> Signal {
        Signal {
            device: DeviceId::from_u128(device).unwrap(),
            risk,
            observed_at: UnixMillis(at),
        }
    }

    fn check(input: &[Signal], expected: &[Signal]) {
        assert_eq!(latest_per_device(input), expected, "input {input:?}");
    }

    #[test]
    fn latest_wins_by_observed_time_then_arrival() {
        check(&[], &[]);
        check(
            &[sig(2, Risk::Low, 10), sig(1, Risk::High, 5)],
            &[sig(1, Risk::High, 5), sig(2, Risk::Low, 10)],
        );
        // A later arrival with an older observation does not replace a newer one.
        check(
            &[sig(1, Risk::High, 20), sig(1, Risk::Low, 10)],
            &[sig(1, Risk::High, 20)],
        );
        // Same observation time: the later arrival wins.
        check(
            &[sig(1, Risk::High, 20), sig(1, Risk::Secured, 20)],
            &[sig(1, Risk::Secured, 20)],
        );
    }
}
