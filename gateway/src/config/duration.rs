//! Durations in config files: a number with a unit, `250ms`, `10s`, `5m`, `1h`, `2d`.

use std::time::Duration;

/// Parses `<number><unit>` with unit `ms`, `s`, `m`, `h` or `d`. No unit, a negative or a
/// fractional number is an error (say `1500ms`, not `1.5s`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let value: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as \"250ms\", \"10s\" or \"5m\""))?;
    let ms_per_unit: u64 = match unit.trim() {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "" => return Err(format!("{text:?} has no unit: write e.g. \"{value}s\"")),
        other => {
            return Err(format!(
                "unknown unit {other:?} in {text:?}: use ms, s, m, h or d"
            ))
        }
    };
    value
        .checked_mul(ms_per_unit)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("{text:?} is too long"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, expected: Result<u64, &str>) {
        match (parse_duration(text), expected) {
            (Ok(d), Ok(ms)) => assert_eq!(d.as_millis() as u64, ms, "{text}"),
            (Err(e), Err(part)) => assert!(e.contains(part), "{text}: {e}"),
            (got, want) => panic!("{text}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn units_and_errors() {
        check("250ms", Ok(250));
        check("10s", Ok(10_000));
        check(" 5m ", Ok(300_000));
        check("1h", Ok(3_600_000));
        check("2d", Ok(172_800_000));
        check("10", Err("no unit"));
        check("1.5s", Err("unknown unit"));
        check("-1s", Err("not a duration"));
        check("10 parsecs", Err("unknown unit"));
        check("99999999999999999999d", Err("not a duration"));
    }
}
