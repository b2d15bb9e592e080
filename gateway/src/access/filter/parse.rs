//! Tokenizer and recursive-descent parser for Entra device-filter rules.
//!
//! Grammar (operators and attribute names case-insensitive; `-and` binds tighter than
//! `-or`):
//! ```text
//! rule       := or
//! or         := and ("-or" and)*
//! and        := primary ("-and" primary)*
//! primary    := "(" or ")" | comparison
//! comparison := "device." attribute operator value
//! value      := string | "[" string ("," string)* "]"
//! ```
//! Strings are double- or single-quoted (a backslash escapes the next character); a bare
//! word such as `True` is accepted as a string too.

use super::{FilterAttribute, FilterExpr, FilterOp};

/// Why a rule does not parse: the 1-based character column and what was expected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("device filter rule, column {column}: {message}")]
pub struct FilterError {
    pub column: usize,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    /// `-name`, without the dash.
    Operator(String),
    Str(String),
    Word(String),
    End,
}

impl Token {
    fn describe(&self) -> String {
        match self {
            Token::LParen => "`(`".into(),
            Token::RParen => "`)`".into(),
            Token::LBracket => "`[`".into(),
            Token::RBracket => "`]`".into(),
            Token::Comma => "`,`".into(),
            Token::Operator(o) => format!("operator `-{o}`"),
            Token::Str(s) => format!("string {s:?}"),
            Token::Word(w) => format!("`{w}`"),
            Token::End => "end of rule".into(),
        }
    }
}

fn error(column: usize, message: impl Into<String>) -> FilterError {
    FilterError {
        column,
        message: message.into(),
    }
}

fn tokenize(text: &str) -> Result<Vec<(Token, usize)>, FilterError> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let column = i + 1;
        match c {
            c if c.is_whitespace() => i += 1,
            '(' | ')' | '[' | ']' | ',' => {
                out.push((
                    match c {
                        '(' => Token::LParen,
                        ')' => Token::RParen,
                        '[' => Token::LBracket,
                        ']' => Token::RBracket,
                        _ => Token::Comma,
                    },
                    column,
                ));
                i += 1;
            }
            '"' | '\'' => {
                let quote = c;
                let mut value = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(error(column, "unterminated string")),
                        Some('\\') => {
                            if let Some(next) = chars.get(i + 1) {
                                value.push(*next);
                            }
                            i += 2;
                        }
                        Some(ch) if *ch == quote => {
                            i += 1;
                            break;
                        }
                        Some(ch) => {
                            value.push(*ch);
                            i += 1;
                        }
                    }
                }
                out.push((Token::Str(value), column));
            }
            '-' => {
                let start = i + 1;
                i = start;
                while i < chars.len() && chars[i].is_ascii_alphabetic() {
                    i += 1;
                }
                if i == start {
                    return Err(error(column, "expected an operator name after `-`"));
                }
                out.push((Token::Operator(chars[start..i].iter().collect()), column));
            }
            c if c.is_alphanumeric() || c == '_' || c == '.' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_alphanumeric() || matches!(chars[i], '_' | '.' | '-'))
                {
                    i += 1;
                }
                out.push((Token::Word(chars[start..i].iter().collect()), column));
            }
            other => return Err(error(column, format!("unexpected character {other:?}"))),
        }
    }
    out.push((Token::End, chars.len() + 1));
    Ok(out)
}

pub(super) fn parse(text: &str) -> Result<FilterExpr, FilterError> {
    let tokens = tokenize(text)?;
    let mut parser = Parser { tokens, at: 0 };
    let expr = parser.or()?;
    let (token, column) = parser.peek();
    if *token != Token::End {
        return Err(error(
            column,
            format!(
                "expected `-and`, `-or` or end of rule, found {}",
                token.describe()
            ),
        ));
    }
    Ok(expr)
}

struct Parser {
    tokens: Vec<(Token, usize)>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> (&Token, usize) {
        // The token list always ends with `End`, and `next` never moves past it.
        let (t, c) = &self.tokens[self.at.min(self.tokens.len() - 1)];
        (t, *c)
    }

    fn next(&mut self) -> (Token, usize) {
        let (t, c) = self.peek();
        let out = (t.clone(), c);
        if self.at + 1 < self.tokens.len() {
            self.at += 1;
        }
        out
    }

    fn is_keyword(&self, word: &str) -> bool {
        matches!(self.peek().0, Token::Operator(o) if o.eq_ignore_ascii_case(word))
    }

    fn or(&mut self) -> Result<FilterExpr, FilterError> {
        let mut parts = vec![self.and()?];
        while self.is_keyword("or") {
            self.next();
            parts.push(self.and()?);
        }
        Ok(collapse(parts, FilterExpr::Or))
    }

    fn and(&mut self) -> Result<FilterExpr, FilterError> {
        let mut parts = vec![self.primary()?];
        while self.is_keyword("and") {
            self.next();
            parts.push(self.primary()?);
        }
        Ok(collapse(parts, FilterExpr::And))
    }

    fn primary(&mut self) -> Result<FilterExpr, FilterError> {
        let (token, column) = self.next();
        match token {
            Token::LParen => {
                let inner = self.or()?;
                let (close, column) = self.next();
                if close != Token::RParen {
                    return Err(error(
                        column,
                        format!("expected `)`, found {}", close.describe()),
                    ));
                }
                Ok(inner)
            }
            Token::Word(word) => self.comparison(&word, column),
            other => Err(error(
                column,
                format!(
                    "expected `device.<attribute>` or `(`, found {}",
                    other.describe()
                ),
            )),
        }
    }

    fn comparison(&mut self, word: &str, column: usize) -> Result<FilterExpr, FilterError> {
        let attribute = attribute(word, column)?;
        let (token, op_column) = self.next();
        let op = match token {
            Token::Operator(name) => operator(&name, op_column)?,
            other => {
                return Err(error(
                    op_column,
                    format!(
                        "expected an operator such as `-eq`, found {}",
                        other.describe()
                    ),
                ))
            }
        };
        let values = if op.takes_list() {
            self.list()?
        } else {
            let (token, column) = self.next();
            match token {
                Token::Str(s) | Token::Word(s) => vec![s],
                other => {
                    return Err(error(
                        column,
                        format!("expected a quoted string, found {}", other.describe()),
                    ))
                }
            }
        };
        Ok(FilterExpr::Compare {
            attribute,
            op,
            values: values
                .into_iter()
                .map(|v| v.to_ascii_lowercase().into_boxed_str())
                .collect(),
        })
    }

    fn list(&mut self) -> Result<Vec<String>, FilterError> {
        let (open, column) = self.next();
        if open != Token::LBracket {
            return Err(error(
                column,
                format!(
                    "expected a list such as [\"a\", \"b\"], found {}",
                    open.describe()
                ),
            ));
        }
        let mut values = Vec::new();
        loop {
            let (token, column) = self.next();
            match token {
                Token::Str(s) | Token::Word(s) => values.push(s),
                Token::RBracket if values.is_empty() => {
                    return Err(error(column, "expected at least one value in the list"))
                }
                other => {
                    return Err(error(
                        column,
                        format!("expected a quoted string, found {}", other.describe()),
                    ))
                }
            }
            let (token, column) = self.next();
            match token {
                Token::Comma => continue,
                Token::RBracket => return Ok(values),
                other => {
                    return Err(error(
                        column,
                        format!("expected `,` or `]`, found {}", other.describe()),
                    ))
                }
            }
        }
    }
}

fn collapse(mut parts: Vec<FilterExpr>, make: fn(Box<[FilterExpr]>) -> FilterExpr) -> FilterExpr {
    if parts.len() == 1 {
        if let Some(only) = parts.pop() {
            return only;
        }
    }
    make(parts.into_boxed_slice())
}

fn attribute(word: &str, column: usize) -> Result<FilterAttribute, FilterError> {
    let lower = word.to_ascii_lowercase();
    let Some(name) = lower.strip_prefix("device.") else {
        return Err(error(
            column,
            format!("expected `device.<attribute>`, found `{word}`"),
        ));
    };
    let attr = match name {
        "deviceid" => FilterAttribute::DeviceId,
        "displayname" => FilterAttribute::DisplayName,
        "operatingsystem" => FilterAttribute::OperatingSystem,
        "operatingsystemversion" => FilterAttribute::OperatingSystemVersion,
        "trusttype" => FilterAttribute::TrustType,
        "iscompliant" => FilterAttribute::IsCompliant,
        "deviceownership" => FilterAttribute::DeviceOwnership,
        "model" => FilterAttribute::Model,
        "manufacturer" => FilterAttribute::Manufacturer,
        "mdmappid" => FilterAttribute::Unsupported("mdmAppId"),
        "profiletype" => FilterAttribute::Unsupported("profileType"),
        "enrollmentprofilename" => FilterAttribute::Unsupported("enrollmentProfileName"),
        "systemlabels" => FilterAttribute::Unsupported("systemLabels"),
        "physicalids" => FilterAttribute::Unsupported("physicalIds"),
        other => match other
            .strip_prefix("extensionattribute")
            .and_then(|n| n.parse::<u8>().ok())
        {
            Some(n @ 1..=15) => FilterAttribute::ExtensionAttribute(n),
            _ => {
                return Err(error(
                    column,
                    format!(
                        "unknown attribute `{}`; expected one of deviceId, displayName, \
                         operatingSystem, operatingSystemVersion, trustType, isCompliant, \
                         deviceOwnership, model, manufacturer, extensionAttribute1-15",
                        &word["device.".len().min(word.len())..]
                    ),
                ))
            }
        },
    };
    Ok(attr)
}

fn operator(name: &str, column: usize) -> Result<FilterOp, FilterError> {
    let op = match name.to_ascii_lowercase().as_str() {
        "eq" => FilterOp::Eq,
        "ne" => FilterOp::Ne,
        "startswith" => FilterOp::StartsWith,
        "notstartswith" => FilterOp::NotStartsWith,
        "endswith" => FilterOp::EndsWith,
        "notendswith" => FilterOp::NotEndsWith,
        "contains" => FilterOp::Contains,
        "notcontains" => FilterOp::NotContains,
        "in" => FilterOp::In,
        "notin" => FilterOp::NotIn,
        "match" | "notmatch" => {
            return Err(error(
                column,
                format!("operator `-{name}` (regular expressions) is not supported"),
            ))
        }
        _ => {
            return Err(error(
                column,
                format!(
                    "unknown operator `-{name}`; expected -eq, -ne, -startsWith, \
                     -notStartsWith, -endsWith, -notEndsWith, -contains, -notContains, -in \
                     or -notIn"
                ),
            ))
        }
    };
    Ok(op)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(rule: &str, expected: Result<&str, (usize, &str)>) {
        match (parse(rule), expected) {
            (Ok(expr), Ok(shape)) => assert_eq!(shape_of(&expr), shape, "{rule}"),
            (Err(e), Err((column, fragment))) => {
                assert_eq!(e.column, column, "{rule}: {e}");
                assert!(e.message.contains(fragment), "{rule}: {e}");
            }
            (got, want) => panic!("{rule}: got {got:?}, want {want:?}"),
        }
    }

    /// A compact rendering of the tree: `and(..)`, `or(..)`, `attr op [values]`.
    fn shape_of(e: &FilterExpr) -> String {
        match e {
            FilterExpr::And(p) => format!(
                "and({})",
                p.iter().map(shape_of).collect::<Vec<_>>().join(", ")
            ),
            FilterExpr::Or(p) => format!(
                "or({})",
                p.iter().map(shape_of).collect::<Vec<_>>().join(", ")
            ),
            FilterExpr::Compare {
                attribute,
                op,
                values,
            } => format!("{} {op:?} {values:?}", attribute.name()),
        }
    }

    #[test]
    fn parses_and_reports_positions() {
        for (rule, expected) in [
            (
                r#"device.trustType -eq "AzureAD""#,
                Ok(r#"trustType Eq ["azuread"]"#),
            ),
            (
                r#"device.isCompliant -EQ True"#,
                Ok(r#"isCompliant Eq ["true"]"#),
            ),
            (
                r#"device.model -in ["A", 'b']"#,
                Ok(r#"model In ["a", "b"]"#),
            ),
            (r#"device.a1 -eq "x""#, Err((1, "unknown attribute `a1`"))),
            (
                r#"device.model -eq "x" -or device.model -eq "y" -and device.model -eq "z""#,
                Ok(r#"or(model Eq ["x"], and(model Eq ["y"], model Eq ["z"]))"#),
            ),
            (
                r#"(device.model -eq "x" -or device.model -eq "y") -and device.extensionAttribute15 -ne "z""#,
                Ok(r#"and(or(model Eq ["x"], model Eq ["y"]), extensionAttribute15 Ne ["z"])"#),
            ),
            (
                r#"device.model -eq "say \"hi\"""#,
                Ok(r#"model Eq ["say \"hi\""]"#),
            ),
            // Errors name the column and what was expected.
            (
                r#"device.model -eq"#,
                Err((17, "expected a quoted string, found end of rule")),
            ),
            (
                r#"device.model -equals "x""#,
                Err((14, "unknown operator `-equals`")),
            ),
            (r#"device.model -match "x""#, Err((14, "not supported"))),
            (
                r#"model -eq "x""#,
                Err((1, "expected `device.<attribute>`")),
            ),
            (
                r#"device.colour -eq "x""#,
                Err((1, "unknown attribute `colour`")),
            ),
            (
                r#"device.extensionAttribute16 -eq "x""#,
                Err((1, "unknown attribute")),
            ),
            (r#"device.model -eq "x"#, Err((18, "unterminated string"))),
            (r#"(device.model -eq "x""#, Err((22, "expected `)`"))),
            (
                r#"device.model -eq "x" device.model"#,
                Err((22, "expected `-and`, `-or`")),
            ),
            (r#"device.model -in "x""#, Err((18, "expected a list"))),
            (
                r#"device.model -in ["x" "y"]"#,
                Err((23, "expected `,` or `]`")),
            ),
            (r#"device.model -in []"#, Err((19, "at least one value"))),
            (
                r#"device.model -eq "x" -and"#,
                Err((26, "found end of rule")),
            ),
            (
                r#"device.model -eq "x" & 1"#,
                Err((22, "unexpected character '&'")),
            ),
            ("", Err((1, "found end of rule"))),
        ] {
            check(rule, expected);
        }
    }
}
