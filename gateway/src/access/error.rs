//! Errors from reading policy documents: each names the document, the record (policy or
//! named location, by display name and id, or by index), the field path, and the line and
//! column where they are known.

use std::fmt;

/// Which document an error is about.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum DocumentKind {
    ConditionalAccess,
    NamedLocations,
}

impl fmt::Display for DocumentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DocumentKind::ConditionalAccess => "conditional-access policies",
            DocumentKind::NamedLocations => "named locations",
        })
    }
}

/// A policy document that cannot be used. The caller adds the file name.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
#[error("{}", self.render())]
pub struct PolicyError {
    pub document: DocumentKind,
    /// `"Block legacy clients" (id 1234...)` or `#3` when the record has neither.
    pub record: Option<String>,
    /// A JSON path inside the record, e.g. `conditions.users.includeUsers[2]`.
    pub field: Option<String>,
    /// 1-based line and column in the document.
    pub position: Option<(usize, usize)>,
    pub message: String,
}

impl PolicyError {
    fn render(&self) -> String {
        let mut out = self.document.to_string();
        if let Some(r) = &self.record {
            let kind = match self.document {
                DocumentKind::ConditionalAccess => "policy",
                DocumentKind::NamedLocations => "location",
            };
            out.push_str(&format!(", {kind} {r}"));
        }
        if let Some(f) = &self.field {
            out.push_str(&format!(", field {f}"));
        }
        if let Some((line, column)) = self.position {
            out.push_str(&format!(" (line {line}, column {column})"));
        }
        out.push_str(": ");
        out.push_str(&self.message);
        out
    }
}

/// 1-based line and column of a byte offset in `text`.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map_or(1, |l| l.chars().count() + 1);
    (line, column)
}
