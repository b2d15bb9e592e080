//! `Lenient<T>`: a field that accepts any JSON value at the serde layer and remembers whether
//! it had the expected type, so the conversion step can report the record and field by name
//! (serde_json alone reports only a line and column).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

use super::error::{ParseError, RecordCtx};

/// A field value of the right type, or what was wrong with it.
#[derive(Debug, Clone)]
pub(crate) enum Lenient<T> {
    Ok(T),
    Bad(String),
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Lenient<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(d)?;
        Ok(match T::deserialize(&value) {
            Ok(v) => Lenient::Ok(v),
            Err(e) => Lenient::Bad(e.to_string()),
        })
    }
}

/// The value of an optional field, or a `Field` error naming it.
pub(crate) fn opt<T: Clone>(
    ctx: &RecordCtx<'_>,
    field: &'static str,
    value: &Option<Lenient<T>>,
) -> Result<Option<T>, ParseError> {
    match value {
        None => Ok(None),
        Some(Lenient::Ok(v)) => Ok(Some(v.clone())),
        Some(Lenient::Bad(msg)) => Err(ctx.err(field, msg.clone())),
    }
}

/// A string field used only to name a record: `None` when absent or not a string.
pub(crate) fn name_of(value: &Option<Lenient<String>>) -> Option<&str> {
    match value {
        Some(Lenient::Ok(v)) => Some(v.as_str()),
        _ => None,
    }
}

/// Reads `{"value": [...]}` (a Graph page) or a bare array of records.
pub(crate) fn read_records<T: DeserializeOwned>(
    file: &str,
    text: &str,
) -> Result<Vec<T>, ParseError> {
    #[derive(Deserialize)]
    #[serde(bound = "T: DeserializeOwned")]
    struct Page<T> {
        value: Vec<T>,
    }
    let text = text.trim_start_matches('\u{feff}');
    let first = text.trim_start().chars().next();
    let parsed = if first == Some('{') {
        serde_json::from_str::<Page<T>>(text).map(|p| p.value)
    } else {
        serde_json::from_str::<Vec<T>>(text)
    };
    parsed.map_err(|e| ParseError::syntax(file, &e))
}
