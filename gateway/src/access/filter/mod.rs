//! Entra device filters (`conditions.devices.deviceFilter.rule`): the compiled rule and its
//! allocation-free evaluation against a device's attributes. Parsing lives in `parse`.
//!
//! Semantics follow Entra: operators and attribute names are case-insensitive, string
//! comparisons are case-insensitive, and a null attribute (a device not in the inventory has
//! only null attributes) never matches a positive operator (`-eq`, `-startsWith`,
//! `-endsWith`, `-contains`, `-in`) and always matches a negative one (`-ne`,
//! `-notStartsWith`, `-notEndsWith`, `-notContains`, `-notIn`).

mod parse;

use std::fmt;

use crate::access::request::DeviceFacts;

pub use parse::FilterError;

/// A device attribute a filter rule can name.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FilterAttribute {
    DeviceId,
    DisplayName,
    OperatingSystem,
    OperatingSystemVersion,
    TrustType,
    IsCompliant,
    DeviceOwnership,
    Model,
    Manufacturer,
    /// `extensionAttribute1` .. `extensionAttribute15` (the number, 1-based).
    ExtensionAttribute(u8),
    /// An attribute Entra knows but Portcullis has no data for (`mdmAppId`, `profileType`,
    /// `enrollmentProfileName`, `systemLabels`, `physicalIds`): always null, with a warning.
    Unsupported(&'static str),
}

impl FilterAttribute {
    pub fn name(self) -> String {
        match self {
            FilterAttribute::DeviceId => "deviceId".into(),
            FilterAttribute::DisplayName => "displayName".into(),
            FilterAttribute::OperatingSystem => "operatingSystem".into(),
            FilterAttribute::OperatingSystemVersion => "operatingSystemVersion".into(),
            FilterAttribute::TrustType => "trustType".into(),
            FilterAttribute::IsCompliant => "isCompliant".into(),
            FilterAttribute::DeviceOwnership => "deviceOwnership".into(),
            FilterAttribute::Model => "model".into(),
            FilterAttribute::Manufacturer => "manufacturer".into(),
            FilterAttribute::ExtensionAttribute(n) => format!("extensionAttribute{n}"),
            FilterAttribute::Unsupported(name) => name.into(),
        }
    }
}

/// A comparison operator.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FilterOp {
    Eq,
    Ne,
    StartsWith,
    NotStartsWith,
    EndsWith,
    NotEndsWith,
    Contains,
    NotContains,
    In,
    NotIn,
}

impl FilterOp {
    pub const fn is_negative(self) -> bool {
        matches!(
            self,
            FilterOp::Ne
                | FilterOp::NotStartsWith
                | FilterOp::NotEndsWith
                | FilterOp::NotContains
                | FilterOp::NotIn
        )
    }

    pub const fn takes_list(self) -> bool {
        matches!(self, FilterOp::In | FilterOp::NotIn)
    }
}

/// A rule's syntax tree. Values are stored lower-cased for case-insensitive comparison.
#[derive(Clone, Debug, PartialEq)]
pub enum FilterExpr {
    Compare {
        attribute: FilterAttribute,
        op: FilterOp,
        values: Box<[Box<str>]>,
    },
    And(Box<[FilterExpr]>),
    Or(Box<[FilterExpr]>),
}

/// Whether a matching device is the only one the policy applies to, or the one it skips.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FilterMode {
    Include,
    Exclude,
}

/// A compiled `deviceFilter`.
#[derive(Clone, Debug)]
pub struct DeviceFilter {
    pub mode: FilterMode,
    pub rule: FilterExpr,
    /// The rule as written, for explanations.
    pub source: Box<str>,
}

impl DeviceFilter {
    /// Whether the policy's device condition holds for this device (`None`: not in the
    /// inventory, every attribute null).
    pub fn admits(&self, device: Option<&DeviceFacts<'_>>) -> bool {
        let matched = self.rule.matches(device);
        match self.mode {
            FilterMode::Include => matched,
            FilterMode::Exclude => !matched,
        }
    }
}

impl FilterExpr {
    /// Parses Entra filter syntax.
    pub fn parse(text: &str) -> Result<Self, FilterError> {
        parse::parse(text)
    }

    /// Evaluates the rule; allocation-free.
    pub fn matches(&self, device: Option<&DeviceFacts<'_>>) -> bool {
        match self {
            FilterExpr::And(parts) => parts.iter().all(|p| p.matches(device)),
            FilterExpr::Or(parts) => parts.iter().any(|p| p.matches(device)),
            FilterExpr::Compare {
                attribute,
                op,
                values,
            } => {
                let mut buf = [0u8; 36];
                let value = device.and_then(|d| d.filter_attribute(*attribute, &mut buf));
                compare(value, *op, values)
            }
        }
    }

    /// Attributes the rule names that Portcullis has no data for.
    pub fn unsupported_attributes(&self, out: &mut Vec<&'static str>) {
        match self {
            FilterExpr::And(parts) | FilterExpr::Or(parts) => {
                parts.iter().for_each(|p| p.unsupported_attributes(out))
            }
            FilterExpr::Compare {
                attribute: FilterAttribute::Unsupported(name),
                ..
            } => out.push(name),
            FilterExpr::Compare { .. } => {}
        }
    }
}

fn compare(value: Option<&str>, op: FilterOp, values: &[Box<str>]) -> bool {
    let Some(value) = value else {
        return op.is_negative();
    };
    let first = values.first().map(|v| v.as_bytes()).unwrap_or_default();
    let v = value.as_bytes();
    match op {
        FilterOp::Eq => v.eq_ignore_ascii_case(first),
        FilterOp::Ne => !v.eq_ignore_ascii_case(first),
        FilterOp::StartsWith => starts_with(v, first),
        FilterOp::NotStartsWith => !starts_with(v, first),
        FilterOp::EndsWith => ends_with(v, first),
        FilterOp::NotEndsWith => !ends_with(v, first),
        FilterOp::Contains => contains(v, first),
        FilterOp::NotContains => !contains(v, first),
        FilterOp::In => values.iter().any(|c| v.eq_ignore_ascii_case(c.as_bytes())),
        FilterOp::NotIn => !values.iter().any(|c| v.eq_ignore_ascii_case(c.as_bytes())),
    }
}

fn starts_with(v: &[u8], prefix: &[u8]) -> bool {
    v.len() >= prefix.len() && v[..prefix.len()].eq_ignore_ascii_case(prefix)
}

fn ends_with(v: &[u8], suffix: &[u8]) -> bool {
    v.len() >= suffix.len() && v[v.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
}

fn contains(v: &[u8], needle: &[u8]) -> bool {
    needle.is_empty()
        || v.windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle))
}

impl fmt::Display for DeviceFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = match self.mode {
            FilterMode::Include => "include",
            FilterMode::Exclude => "exclude",
        };
        write!(f, "{mode} devices matching `{}`", self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::request::tests::device;

    fn check(rule: &str, with_device: bool, expected: bool) {
        let expr = FilterExpr::parse(rule).unwrap_or_else(|e| panic!("{rule}: {e}"));
        let d = device();
        let dev = with_device.then_some(&d);
        assert_eq!(
            expr.matches(dev),
            expected,
            "rule {rule} device {with_device}"
        );
    }

    #[test]
    fn evaluates_against_attributes_and_nulls() {
        // The test device: Windows, "Finance-Laptop-7", AzureAD, compliant, company owned,
        // model "Surface Laptop 5", manufacturer "Microsoft", extensionAttribute1 "kiosk".
        for (rule, with_device, expected) in [
            (r#"device.trustType -eq "AzureAD""#, true, true),
            (r#"device.trustType -eq "azuread""#, true, true),
            (r#"DEVICE.TRUSTTYPE -EQ "AzureAD""#, true, true),
            (r#"device.trustType -ne "AzureAD""#, true, false),
            (r#"device.isCompliant -eq "True""#, true, true),
            (r#"device.isCompliant -eq "False""#, true, false),
            (r#"device.displayName -startsWith "finance""#, true, true),
            (
                r#"device.displayName -notStartsWith "finance""#,
                true,
                false,
            ),
            (r#"device.displayName -endsWith "-7""#, true, true),
            (r#"device.displayName -notEndsWith "-7""#, true, false),
            (r#"device.model -contains "laptop""#, true, true),
            (r#"device.model -notContains "laptop""#, true, false),
            (
                r#"device.manufacturer -in ["Dell", "microsoft"]"#,
                true,
                true,
            ),
            (
                r#"device.manufacturer -notIn ["Dell", "microsoft"]"#,
                true,
                false,
            ),
            (r#"device.extensionAttribute1 -eq "kiosk""#, true, true),
            (r#"device.extensionAttribute2 -eq "kiosk""#, true, false),
            (r#"device.extensionAttribute2 -ne "kiosk""#, true, true),
            (r#"device.operatingSystem -eq "Windows""#, true, true),
            (
                r#"device.operatingSystemVersion -startsWith "10.0""#,
                true,
                true,
            ),
            (r#"device.deviceOwnership -eq "Company""#, true, true),
            (
                r#"device.deviceId -eq "11111111-2222-3333-4444-555555555555""#,
                true,
                true,
            ),
            (r#"device.deviceId -startsWith "11111111-""#, true, true),
            // Null attributes: positive operators never match, negative ones always do.
            (r#"device.trustType -eq "AzureAD""#, false, false),
            (r#"device.trustType -ne "AzureAD""#, false, true),
            (r#"device.model -startsWith "x""#, false, false),
            (r#"device.model -notStartsWith "x""#, false, true),
            (r#"device.model -endsWith "x""#, false, false),
            (r#"device.model -notEndsWith "x""#, false, true),
            (r#"device.model -contains "x""#, false, false),
            (r#"device.model -notContains "x""#, false, true),
            (r#"device.model -in ["x"]"#, false, false),
            (r#"device.model -notIn ["x"]"#, false, true),
            (r#"device.mdmAppId -eq "x""#, true, false),
            // Precedence: -and binds tighter than -or; parentheses override.
            (
                r#"device.model -eq "no" -and device.model -eq "no" -or device.trustType -eq "AzureAD""#,
                true,
                true,
            ),
            (
                r#"device.model -eq "no" -and (device.model -eq "no" -or device.trustType -eq "AzureAD")"#,
                true,
                false,
            ),
            (
                r#"device.trustType -eq "AzureAD" -and device.isCompliant -eq "True""#,
                true,
                true,
            ),
            (
                r#"(device.trustType -eq "ServerAD") -or (device.manufacturer -eq "Microsoft")"#,
                true,
                true,
            ),
        ] {
            check(rule, with_device, expected);
        }
    }

    #[test]
    fn modes_include_and_exclude() {
        let rule = FilterExpr::parse(r#"device.trustType -eq "AzureAD""#).unwrap();
        let d = device();
        for (mode, dev, expected) in [
            (FilterMode::Include, Some(&d), true),
            (FilterMode::Include, None, false),
            (FilterMode::Exclude, Some(&d), false),
            (FilterMode::Exclude, None, true),
        ] {
            let filter = DeviceFilter {
                mode,
                rule: rule.clone(),
                source: "".into(),
            };
            assert_eq!(filter.admits(dev), expected, "{mode:?} {}", dev.is_some());
        }
    }
}
