//! The error a parser returns: always names the file and, for a bad value, the record and
//! the field.

/// Why a document could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Not JSON, or JSON of the wrong overall shape; serde_json's message includes the line
    /// and column.
    #[error("{file}: {message}")]
    Syntax {
        file: String,
        message: String,
        line: usize,
        column: usize,
    },
    /// A known field of one record holds a bad value.
    #[error("{file}: {record}: field `{field}`: {message}")]
    Field {
        file: String,
        record: String,
        field: &'static str,
        message: String,
    },
}

impl ParseError {
    pub(crate) fn syntax(file: &str, err: &serde_json::Error) -> Self {
        ParseError::Syntax {
            file: file.to_owned(),
            message: err.to_string(),
            line: err.line(),
            column: err.column(),
        }
    }

    /// The line and column of a syntax error, when known.
    pub fn position(&self) -> Option<(usize, usize)> {
        match self {
            ParseError::Syntax { line, column, .. } => Some((*line, *column)),
            ParseError::Field { .. } => None,
        }
    }
}

/// Builds `Field` errors for one record: "record #3 (id "x", "Laptop")".
pub(crate) struct RecordCtx<'a> {
    pub file: &'a str,
    pub record: String,
}

impl<'a> RecordCtx<'a> {
    pub fn new(file: &'a str, index: usize, id: Option<&str>, name: Option<&str>) -> Self {
        let mut record = format!("record #{index}");
        match (id, name) {
            (Some(id), Some(name)) => record.push_str(&format!(" (id {id:?}, {name:?})")),
            (Some(id), None) => record.push_str(&format!(" (id {id:?})")),
            (None, Some(name)) => record.push_str(&format!(" ({name:?})")),
            (None, None) => {}
        }
        Self { file, record }
    }

    pub fn err(&self, field: &'static str, message: impl Into<String>) -> ParseError {
        ParseError::Field {
            file: self.file.to_owned(),
            record: self.record.clone(),
            field,
            message: message.into(),
        }
    }
}
