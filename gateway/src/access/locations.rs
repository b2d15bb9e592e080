//! Named locations (Graph `namedLocation`): IP ranges by id, some marked trusted. Policies
//! refer to them by id; `compile` resolves the ids into ranges once.

use std::collections::HashMap;

use ipnet::IpNet;

use crate::access::error::{DocumentKind, PolicyError};
use crate::access::graph::{records, RawNamedLocation};

/// One named location.
#[derive(Clone, Debug)]
pub struct NamedLocation {
    pub id: String,
    pub display_name: String,
    pub trusted: bool,
    pub ranges: Vec<IpNet>,
    /// A kind Portcullis cannot evaluate (e.g. `countryNamedLocation`): matches no address.
    pub unsupported: Option<String>,
}

/// Named locations by id (compared case-insensitively).
#[derive(Clone, Debug, Default)]
pub struct NamedLocations {
    by_id: HashMap<String, NamedLocation>,
}

impl NamedLocations {
    /// Parses a Graph `namedLocation` document (`{"value": [...]}` or a bare array).
    pub fn parse(doc: &str) -> Result<Self, PolicyError> {
        let mut by_id = HashMap::new();
        for (index, record) in records(doc, DocumentKind::NamedLocations)?
            .into_iter()
            .enumerate()
        {
            let fail =
                |label: Option<String>, field: Option<&str>, key: Option<&str>, message: String| {
                    PolicyError {
                        document: DocumentKind::NamedLocations,
                        record: Some(label.unwrap_or_else(|| format!("#{}", index + 1))),
                        field: field.map(str::to_owned),
                        position: Some(record.position_of(doc, key)),
                        message,
                    }
                };
            let raw: RawNamedLocation = serde_json::from_str(record.text)
                .map_err(|e| fail(None, None, None, e.to_string()))?;
            let label = Some(format!(
                "{:?} ({})",
                raw.display_name.as_deref().unwrap_or(""),
                raw.id.as_deref().unwrap_or("no id")
            ));
            let Some(id) = raw.id.clone().filter(|s| !s.trim().is_empty()) else {
                return Err(fail(
                    label,
                    Some("id"),
                    None,
                    "a named location needs an id".into(),
                ));
            };
            let kind = raw
                .odata_type
                .as_deref()
                .unwrap_or("#microsoft.graph.ipNamedLocation");
            let mut ranges = Vec::new();
            let unsupported = if kind.eq_ignore_ascii_case("#microsoft.graph.ipNamedLocation") {
                for (i, r) in raw.ip_ranges.iter().flatten().enumerate() {
                    let field = format!("ipRanges[{i}].cidrAddress");
                    let Some(cidr) = r.cidr_address.as_deref() else {
                        return Err(fail(
                            label,
                            Some(&field),
                            Some("ipRanges"),
                            "missing".into(),
                        ));
                    };
                    let net = cidr.trim().parse::<IpNet>().map_err(|e| {
                        fail(
                            label.clone(),
                            Some(&field),
                            Some("ipRanges"),
                            format!("{cidr:?} is not a CIDR range: {e}"),
                        )
                    })?;
                    ranges.push(net.trunc());
                }
                None
            } else {
                Some(format!(
                    "named location kind {kind} is not supported; it matches no address"
                ))
            };
            let location = NamedLocation {
                id: id.clone(),
                display_name: raw.display_name.unwrap_or_default(),
                trusted: raw.is_trusted.unwrap_or(false),
                ranges,
                unsupported,
            };
            if by_id.insert(id.to_ascii_lowercase(), location).is_some() {
                return Err(fail(
                    label,
                    Some("id"),
                    Some("id"),
                    format!("duplicate id {id:?}"),
                ));
            }
        }
        Ok(Self { by_id })
    }

    pub fn get(&self, id: &str) -> Option<&NamedLocation> {
        self.by_id.get(&id.trim().to_ascii_lowercase())
    }

    /// Every trusted range (`AllTrusted`).
    pub fn trusted_ranges(&self) -> impl Iterator<Item = IpNet> + '_ {
        self.by_id
            .values()
            .filter(|l| l.trusted)
            .flat_map(|l| l.ranges.iter().copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(doc: &str, expected: Result<(&str, bool, usize), &str>) {
        match (NamedLocations::parse(doc), expected) {
            (Ok(set), Ok((id, trusted, ranges))) => {
                let l = set.get(id).unwrap_or_else(|| panic!("{id} missing"));
                assert_eq!((l.trusted, l.ranges.len()), (trusted, ranges));
            }
            (Err(e), Err(fragment)) => {
                assert!(e.to_string().contains(fragment), "{e}")
            }
            (got, want) => panic!("got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn parses_ip_locations_and_names_bad_fields() {
        for (doc, expected) in [
            (
                r##"{"value":[{"@odata.type":"#microsoft.graph.ipNamedLocation","id":"L1","displayName":"Office","isTrusted":true,"ipRanges":[{"cidrAddress":"127.0.0.0/8"},{"cidrAddress":"2001:db8::/32"}]}]}"##,
                Ok(("l1", true, 2)),
            ),
            (
                r##"[{"@odata.type":"#microsoft.graph.countryNamedLocation","id":"C","countriesAndRegions":["NL"]}]"##,
                Ok(("C", false, 0)),
            ),
            (
                "[\n{\"id\":\"L1\",\"displayName\":\"Office\",\n\"ipRanges\":[{\"cidrAddress\":\"300.0.0.0/8\"}]}]",
                Err(r#"location "Office" (L1), field ipRanges[0].cidrAddress (line 3, column 1): "300.0.0.0/8" is not a CIDR range"#),
            ),
            (r#"[{"displayName":"x"}]"#, Err("field id")),
            (r#"[{"id":"a"},{"id":"A"}]"#, Err("duplicate id")),
            ("[1,", Err("named locations (line 1, column 3)")),
        ] {
            check(doc, expected);
        }
    }
}
