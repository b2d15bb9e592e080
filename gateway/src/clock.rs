//! Time as the core sees it: milliseconds since the Unix epoch, passed in explicitly so that
//! the decision core stays pure (it never reads the clock itself).

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since 1970-01-01T00:00:00Z.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct UnixMillis(pub i64);

impl UnixMillis {
    pub const EPOCH: Self = Self(0);

    /// The wall clock now. Only the edges (sources, proxy, admin) call this.
    pub fn now() -> Self {
        let d = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Self(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }

    pub const fn from_secs(secs: i64) -> Self {
        Self(secs.saturating_mul(1000))
    }

    pub const fn as_secs(self) -> i64 {
        self.0.div_euclid(1000)
    }

    pub const fn plus_millis(self, ms: i64) -> Self {
        Self(self.0.saturating_add(ms))
    }

    pub const fn plus_hours(self, hours: i64) -> Self {
        self.plus_millis(hours.saturating_mul(3_600_000))
    }

    pub const fn plus_days(self, days: i64) -> Self {
        self.plus_hours(days.saturating_mul(24))
    }

    /// Parses an RFC 3339 / ISO 8601 timestamp as Graph and Defender write them
    /// (`2026-11-20T10:00:00Z`, `2026-11-20T10:00:00.1234567Z`, `+01:00` offsets).
    pub fn parse_rfc3339(text: &str) -> Option<Self> {
        let t = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
            .ok()?;
        let ms = t.unix_timestamp_nanos() / 1_000_000;
        i64::try_from(ms).ok().map(Self)
    }

    /// Formats as RFC 3339 in UTC with millisecond precision.
    pub fn to_rfc3339(self) -> String {
        let nanos = i128::from(self.0) * 1_000_000;
        match time::OffsetDateTime::from_unix_timestamp_nanos(nanos) {
            Ok(t) => {
                let fmt = time::macros::format_description!(
                    "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
                );
                t.format(&fmt).unwrap_or_else(|_| self.0.to_string())
            }
            Err(_) => self.0.to_string(),
        }
    }
}

impl fmt::Debug for UnixMillis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl fmt::Display for UnixMillis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_graph_and_defender_timestamps() {
        let base = UnixMillis::parse_rfc3339("2026-11-20T10:00:00Z").unwrap();
        assert_eq!(base.to_rfc3339(), "2026-11-20T10:00:00.000Z");
        let seven = UnixMillis::parse_rfc3339("2026-11-20T10:00:00.1234567Z").unwrap();
        assert_eq!(seven.0 - base.0, 123);
        let offset = UnixMillis::parse_rfc3339("2026-11-20T11:00:00+01:00").unwrap();
        assert_eq!(offset, base);
        assert!(UnixMillis::parse_rfc3339("yesterday").is_none());
    }

    #[test]
    fn arithmetic_saturates() {
        assert_eq!(UnixMillis(i64::MAX).plus_days(1), UnixMillis(i64::MAX));
        assert_eq!(UnixMillis(0).plus_hours(2), UnixMillis(7_200_000));
    }
}
