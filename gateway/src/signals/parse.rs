//! Parsing a risk-signal push body: JSON (one object, an array, or Graph's `{"value": [...]}`)
//! or NDJSON (one object per line). Each bad item is rejected with its line (NDJSON) or item
//! (JSON array) number and the reason; the good ones are kept.

use std::fmt;

use serde_json::{Map, Value};

use super::Signal;
use crate::clock::UnixMillis;
use crate::ids::DeviceId;
use crate::model::Risk;

/// Bounds on one push body; the caller sets them from its config.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParseLimits {
    /// Larger bodies are refused whole (`BodyError::TooLarge`).
    pub max_body_bytes: usize,
    /// Bodies with more items (good or bad) are refused whole (`BodyError::TooMany`).
    pub max_signals: usize,
    /// An `observedAt` further than this in the future (clock skew) is rejected.
    pub max_future_skew_ms: i64,
}

impl Default for ParseLimits {
    fn default() -> Self {
        Self {
            max_body_bytes: 8 * 1024 * 1024,
            max_signals: 100_000,
            max_future_skew_ms: 5 * 60 * 1000,
        }
    }
}

/// Why a whole body is refused (no signal from it is kept).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("body of {size} bytes is larger than the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("body holds more than {limit} signals")]
    TooMany { limit: usize },
    #[error("unsupported content type {0:?}: send application/json or application/x-ndjson")]
    UnsupportedMediaType(String),
}

/// How the body was read, which says whether `LineError::line` counts lines or items.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFormat {
    /// One JSON document; `line` is the 1-based item number (or the line of a syntax error).
    Json,
    /// One JSON object per line; `line` is the 1-based line number.
    Ndjson,
}

/// One rejected line or item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineError {
    /// 1-based: the line for NDJSON, the item (index + 1) for a JSON array.
    pub line: usize,
    pub message: String,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.line, self.message)
    }
}

/// The outcome of parsing one body: the good signals in body order and the rejected items.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedSignals {
    pub format: BodyFormat,
    pub good: Vec<Signal>,
    pub bad: Vec<LineError>,
}

/// Parses a push body. `now` stands in for a missing `observedAt`.
pub fn parse_signals(
    body: &[u8],
    content_type: Option<&str>,
    now: UnixMillis,
    limits: &ParseLimits,
) -> Result<ParsedSignals, BodyError> {
    if body.len() > limits.max_body_bytes {
        return Err(BodyError::TooLarge {
            size: body.len(),
            limit: limits.max_body_bytes,
        });
    }
    let declared = match content_type.map(media_type) {
        None => Declared::Unknown,
        Some(m) if is_ndjson(&m) => Declared::Ndjson,
        Some(m) if is_json(&m) => Declared::Json,
        Some(m) if m == "text/plain" || m.is_empty() => Declared::Unknown,
        Some(m) => return Err(BodyError::UnsupportedMediaType(m)),
    };
    let mut out = match declared {
        Declared::Ndjson => parse_ndjson(body, now, limits)?,
        Declared::Json | Declared::Unknown => match serde_json::from_slice::<Value>(body) {
            Ok(doc) => parse_json(doc, now, limits)?,
            Err(_) if looks_like_ndjson(body) => parse_ndjson(body, now, limits)?,
            Err(e) => ParsedSignals {
                format: BodyFormat::Json,
                good: Vec::new(),
                bad: vec![LineError {
                    line: e.line().max(1),
                    message: format!("not valid JSON: {e}"),
                }],
            },
        },
    };
    out.bad.sort_by_key(|e| e.line);
    Ok(out)
}

/// Converts one JSON object (a pushed signal or a Defender machine) into a signal.
///
/// Fields: `deviceId` (or Defender's `aadDeviceId`) as a GUID; `riskLevel`
/// (secured/low/medium/high/unavailable) or Defender's `riskScore` (None/Informational ->
/// secured, Low, Medium, High; null -> unavailable); an `onboardingStatus` other than
/// `Onboarded` makes the risk unavailable; `observedAt` (or Defender's `lastSeen`) as RFC 3339,
/// absent or null -> `now`. Other fields are ignored.
pub fn signal_from_json(item: &Value, now: UnixMillis) -> Result<Signal, String> {
    let obj = item
        .as_object()
        .ok_or_else(|| format!("expected a JSON object, found {}", kind(item)))?;
    Ok(Signal {
        device: device_of(obj)?,
        risk: risk_of(obj)?,
        observed_at: observed_at_of(obj, now)?,
    })
}

enum Declared {
    Json,
    Ndjson,
    Unknown,
}

fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

fn is_json(media: &str) -> bool {
    media == "application/json" || media == "text/json" || media.ends_with("+json")
}

fn is_ndjson(media: &str) -> bool {
    matches!(
        media,
        "application/x-ndjson"
            | "application/ndjson"
            | "application/jsonl"
            | "application/x-jsonl"
            | "application/jsonlines"
            | "application/x-jsonlines"
    )
}

/// NDJSON sent without (or with a plain JSON) content type: the whole body is not one JSON
/// document but its first non-blank line is a JSON object on its own.
fn looks_like_ndjson(body: &[u8]) -> bool {
    body.split(|b| *b == b'\n')
        .find(|line| !line.trim_ascii().is_empty())
        .is_some_and(|line| matches!(serde_json::from_slice::<Value>(line), Ok(Value::Object(_))))
}

fn parse_json(
    doc: Value,
    now: UnixMillis,
    limits: &ParseLimits,
) -> Result<ParsedSignals, BodyError> {
    let mut out = ParsedSignals {
        format: BodyFormat::Json,
        good: Vec::new(),
        bad: Vec::new(),
    };
    let items = match doc {
        Value::Array(items) => items,
        Value::Object(mut obj) if obj.contains_key("value") => match obj.remove("value") {
            Some(Value::Array(items)) => items,
            Some(other) => {
                out.bad.push(LineError {
                    line: 1,
                    message: format!("\"value\" must be an array, found {}", kind(&other)),
                });
                return Ok(out);
            }
            None => Vec::new(),
        },
        single @ Value::Object(_) => vec![single],
        other => {
            out.bad.push(LineError {
                line: 1,
                message: format!(
                    "expected an object, an array of objects or {{\"value\": [...]}}, found {}",
                    kind(&other)
                ),
            });
            return Ok(out);
        }
    };
    if items.len() > limits.max_signals {
        return Err(BodyError::TooMany {
            limit: limits.max_signals,
        });
    }
    out.good.reserve(items.len());
    for (index, item) in items.iter().enumerate() {
        push(&mut out, index + 1, checked(item, now, limits));
    }
    Ok(out)
}

fn parse_ndjson(
    body: &[u8],
    now: UnixMillis,
    limits: &ParseLimits,
) -> Result<ParsedSignals, BodyError> {
    let mut out = ParsedSignals {
        format: BodyFormat::Ndjson,
        good: Vec::new(),
        bad: Vec::new(),
    };
    let mut count = 0usize;
    for (index, line) in body.split(|b| *b == b'\n').enumerate() {
        let line = line.trim_ascii();
        if line.is_empty() {
            continue;
        }
        count += 1;
        if count > limits.max_signals {
            return Err(BodyError::TooMany {
                limit: limits.max_signals,
            });
        }
        let result = serde_json::from_slice::<Value>(line)
            .map_err(|e| format!("not valid JSON: {e}"))
            .and_then(|item| checked(&item, now, limits));
        push(&mut out, index + 1, result);
    }
    Ok(out)
}

fn checked(item: &Value, now: UnixMillis, limits: &ParseLimits) -> Result<Signal, String> {
    let signal = signal_from_json(item, now)?;
    if signal.observed_at > now.plus_millis(limits.max_future_skew_ms) {
        return Err(format!(
            "\"observedAt\" {} is in the future (now is {now})",
            signal.observed_at
        ));
    }
    Ok(signal)
}

fn push(out: &mut ParsedSignals, line: usize, result: Result<Signal, String>) {
    match result {
        Ok(signal) => out.good.push(signal),
        Err(message) => out.bad.push(LineError { line, message }),
    }
}

fn device_of(obj: &Map<String, Value>) -> Result<DeviceId, String> {
    let (field, value) = match (obj.get("deviceId"), obj.get("aadDeviceId")) {
        (Some(v), _) => ("deviceId", v),
        (None, Some(v)) => ("aadDeviceId", v),
        (None, None) => return Err("missing \"deviceId\" (or \"aadDeviceId\")".into()),
    };
    let text = match value {
        Value::String(s) => s,
        Value::Null => return Err(format!("\"{field}\" is null: the device has no Entra id")),
        other => {
            return Err(format!(
                "\"{field}\" must be a GUID string, found {}",
                kind(other)
            ))
        }
    };
    DeviceId::parse(text).map_err(|e| format!("\"{field}\": {e}"))
}

fn risk_of(obj: &Map<String, Value>) -> Result<Risk, String> {
    if let Some(status) = obj.get("onboardingStatus") {
        if status.as_str() != Some("Onboarded") {
            return Ok(Risk::Unavailable);
        }
    }
    if let Some(level) = obj.get("riskLevel") {
        return match level.as_str().and_then(Risk::parse) {
            Some(risk) => Ok(risk),
            None => Err(format!(
                "\"riskLevel\" must be one of secured, low, medium, high, unavailable; found {}",
                shown(level)
            )),
        };
    }
    match obj.get("riskScore") {
        None => Err("missing \"riskLevel\" (or \"riskScore\")".into()),
        Some(Value::Null) => Ok(Risk::Unavailable),
        Some(score) => match score.as_str().map(str::to_ascii_lowercase).as_deref() {
            Some("none" | "informational") => Ok(Risk::Secured),
            Some("low") => Ok(Risk::Low),
            Some("medium") => Ok(Risk::Medium),
            Some("high") => Ok(Risk::High),
            _ => Err(format!(
                "\"riskScore\" must be one of None, Informational, Low, Medium, High; found {}",
                shown(score)
            )),
        },
    }
}

fn observed_at_of(obj: &Map<String, Value>, now: UnixMillis) -> Result<UnixMillis, String> {
    let (field, value) = match (obj.get("observedAt"), obj.get("lastSeen")) {
        (Some(v), _) => ("observedAt", v),
        (None, Some(v)) => ("lastSeen", v),
        (None, None) => return Ok(now),
    };
    match value {
        Value::Null => Ok(now),
        Value::String(s) => UnixMillis::parse_rfc3339(s)
            .ok_or_else(|| format!("\"{field}\" is not an RFC 3339 time: {}", shown(value))),
        other => Err(format!(
            "\"{field}\" must be an RFC 3339 string, found {}",
            kind(other)
        )),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The value as JSON, cut to a length fit for an error message.
fn shown(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() <= 64 {
        text
    } else {
        let cut: String = text.chars().take(61).collect();
        format!("{cut}...")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: UnixMillis = UnixMillis(1_795_600_000_000);
    const D1: &str = "11111111-1111-1111-1111-111111111111";
    const D2: &str = "22222222-2222-2222-2222-222222222222";

    fn sig(device: &str, risk: Risk, at: UnixMillis) -> Signal {
        Signal {
            device: DeviceId::parse(device).unwrap(),
            risk,
            observed_at: at,
        }
    }

    fn t(text: &str) -> UnixMillis {
        UnixMillis::parse_rfc3339(text).unwrap()
    }

    /// Parses `body` and compares the good signals and the (line, message fragment) of each
    /// rejection.
    fn check(
        body: &str,
        content_type: Option<&str>,
        format: BodyFormat,
        good: &[Signal],
        bad: &[(usize, &str)],
    ) {
        let got = parse_signals(body.as_bytes(), content_type, NOW, &ParseLimits::default())
            .unwrap_or_else(|e| panic!("{body}: refused whole: {e}"));
        assert_eq!(got.format, format, "{body}");
        assert_eq!(got.good, good, "{body}");
        let got_bad: Vec<usize> = got.bad.iter().map(|e| e.line).collect();
        let want_bad: Vec<usize> = bad.iter().map(|(l, _)| *l).collect();
        assert_eq!(got_bad, want_bad, "{body}: {:?}", got.bad);
        for (e, (_, part)) in got.bad.iter().zip(bad) {
            assert!(e.message.contains(part), "{body}: {e} lacks {part:?}");
        }
    }

    #[test]
    fn json_shapes() {
        let one = format!(
            r#"{{"deviceId":"{D1}","riskLevel":"high","observedAt":"2026-11-20T10:00:00Z"}}"#
        );
        let high = sig(D1, Risk::High, t("2026-11-20T10:00:00Z"));
        check(
            &one,
            Some("application/json"),
            BodyFormat::Json,
            &[high],
            &[],
        );
        check(&one, None, BodyFormat::Json, &[high], &[]);
        check(
            &format!("[{one},{one}]"),
            None,
            BodyFormat::Json,
            &[high, high],
            &[],
        );
        check(
            &format!(r#"{{"@odata.context":"x","value":[{one}]}}"#),
            Some("application/json; charset=utf-8"),
            BodyFormat::Json,
            &[high],
            &[],
        );
        check("[]", None, BodyFormat::Json, &[], &[]);
        check(
            r#"{"value":{}}"#,
            None,
            BodyFormat::Json,
            &[],
            &[(1, "must be an array")],
        );
        check("42", None, BodyFormat::Json, &[], &[(1, "found a number")]);
        check(
            "[1, {}]",
            None,
            BodyFormat::Json,
            &[],
            &[(1, "expected a JSON object"), (2, "missing \"deviceId\"")],
        );
        check(
            "{\n\"deviceId\":\n",
            None,
            BodyFormat::Json,
            &[],
            &[(3, "not valid JSON")],
        );
    }

    #[test]
    fn fields_and_aliases() {
        let now = |d, r| sig(d, r, NOW);
        let cases: &[(String, Result<Signal, &str>)] = &[
            (
                format!(r#"{{"deviceId":"{D1}","riskLevel":"Secured"}}"#),
                Ok(now(D1, Risk::Secured)),
            ),
            (
                format!(r#"{{"aadDeviceId":"{D2}","riskScore":"Informational"}}"#),
                Ok(now(D2, Risk::Secured)),
            ),
            (
                format!(r#"{{"aadDeviceId":"{D2}","riskScore":"None"}}"#),
                Ok(now(D2, Risk::Secured)),
            ),
            (
                format!(r#"{{"aadDeviceId":"{D2}","riskScore":"Medium"}}"#),
                Ok(now(D2, Risk::Medium)),
            ),
            (
                format!(r#"{{"aadDeviceId":"{D2}","riskScore":null}}"#),
                Ok(now(D2, Risk::Unavailable)),
            ),
            (
                format!(
                    r#"{{"aadDeviceId":"{D2}","riskScore":"High","onboardingStatus":"InsufficientInfo"}}"#
                ),
                Ok(now(D2, Risk::Unavailable)),
            ),
            (
                format!(
                    r#"{{"aadDeviceId":"{D2}","riskScore":"High","onboardingStatus":"Onboarded","lastSeen":"2026-11-19T00:00:00Z"}}"#
                ),
                Ok(sig(D2, Risk::High, t("2026-11-19T00:00:00Z"))),
            ),
            (
                format!(r#"{{"deviceId":"{D1}","riskLevel":"low","observedAt":null}}"#),
                Ok(now(D1, Risk::Low)),
            ),
            (
                format!(r#"{{"deviceId":"{D1}","riskLevel":"extreme"}}"#),
                Err("\"riskLevel\" must be one of"),
            ),
            (
                format!(r#"{{"deviceId":"{D1}","riskScore":"Severe"}}"#),
                Err("\"riskScore\" must be one of"),
            ),
            (
                format!(r#"{{"deviceId":"{D1}"}}"#),
                Err("missing \"riskLevel\""),
            ),
            (r#"{"riskLevel":"low"}"#.into(), Err("missing \"deviceId\"")),
            (
                r#"{"deviceId":"laptop-7","riskLevel":"low"}"#.into(),
                Err("\"deviceId\": not a GUID"),
            ),
            (
                r#"{"deviceId":"00000000-0000-0000-0000-000000000000","riskLevel":"low"}"#.into(),
                Err("nil GUID"),
            ),
            (
                r#"{"aadDeviceId":null,"riskScore":"Low"}"#.into(),
                Err("\"aadDeviceId\" is null"),
            ),
            (
                r#"{"deviceId":7,"riskLevel":"low"}"#.into(),
                Err("must be a GUID string"),
            ),
            (
                format!(r#"{{"deviceId":"{D1}","riskLevel":"low","observedAt":"yesterday"}}"#),
                Err("not an RFC 3339 time"),
            ),
            (
                format!(r#"{{"deviceId":"{D1}","riskLevel":"low","observedAt":17}}"#),
                Err("must be an RFC 3339 string"),
            ),
            (
                format!(
                    r#"{{"deviceId":"{D1}","riskLevel":"low","observedAt":"2099-01-01T00:00:00Z"}}"#
                ),
                Err("in the future"),
            ),
        ];
        for (body, want) in cases {
            match want {
                Ok(s) => check(body, None, BodyFormat::Json, &[*s], &[]),
                Err(part) => check(body, None, BodyFormat::Json, &[], &[(1, part)]),
            }
        }
    }

    #[test]
    fn ndjson_lines() {
        let line = |d: &str, r: &str| format!(r#"{{"deviceId":"{d}","riskLevel":"{r}"}}"#);
        let body = format!(
            "{}\n\n{}\r\nnot json\n{{\"deviceId\":\"{D1}\"}}\n{}\n",
            line(D1, "low"),
            line(D2, "high"),
            line(D1, "medium")
        );
        let good = [
            sig(D1, Risk::Low, NOW),
            sig(D2, Risk::High, NOW),
            sig(D1, Risk::Medium, NOW),
        ];
        let bad = [(4, "not valid JSON"), (5, "missing \"riskLevel\"")];
        check(
            &body,
            Some("application/x-ndjson"),
            BodyFormat::Ndjson,
            &good,
            &bad,
        );
        // Sniffed without a content type, or sent as application/json.
        check(&body, None, BodyFormat::Ndjson, &good, &bad);
        check(
            &body,
            Some("application/json"),
            BodyFormat::Ndjson,
            &good,
            &bad,
        );
        // One line of NDJSON is also one JSON object.
        check(
            &line(D1, "low"),
            Some("application/jsonl"),
            BodyFormat::Ndjson,
            &good[..1],
            &[],
        );
        check(
            "[1]\n",
            Some("application/x-ndjson"),
            BodyFormat::Ndjson,
            &[],
            &[(1, "expected a JSON object")],
        );
    }

    #[test]
    fn whole_body_refusals() {
        let limits = ParseLimits {
            max_body_bytes: 300,
            max_signals: 2,
            max_future_skew_ms: 0,
        };
        let one = format!(r#"{{"deviceId":"{D1}","riskLevel":"low"}}"#);
        let cases: &[(String, Option<&str>, BodyError)] = &[
            (
                "x".repeat(301),
                None,
                BodyError::TooLarge {
                    size: 301,
                    limit: 300,
                },
            ),
            (
                format!("[{one},{one},{one}]"),
                None,
                BodyError::TooMany { limit: 2 },
            ),
            (
                format!("{one}\n{one}\n\n{one}"),
                None,
                BodyError::TooMany { limit: 2 },
            ),
            (
                one.clone(),
                Some("text/csv"),
                BodyError::UnsupportedMediaType("text/csv".into()),
            ),
        ];
        for (body, ct, want) in cases {
            let got = parse_signals(body.as_bytes(), *ct, NOW, &limits);
            assert_eq!(got.as_ref().err(), Some(want), "{body}");
        }
        assert!(parse_signals(format!("[{one},{one}]").as_bytes(), None, NOW, &limits).is_ok());
    }
}
