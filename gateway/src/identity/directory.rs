//! The directory file used for group overage: a JSON object mapping a user object id to the
//! ids of the groups the user is in, `{"<user id>": ["<group id>", ...]}`.

use std::collections::HashMap;
use std::path::Path;

use super::{Identity, IdentityError};
use crate::ids::{GroupId, UserId};

/// User id -> group ids, for group overage.
pub struct Directory {
    groups: HashMap<UserId, Box<[GroupId]>>,
}

impl Directory {
    pub fn load(path: &Path) -> Result<Self, IdentityError> {
        let bytes = std::fs::read(path).map_err(|source| IdentityError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_json(&bytes, &path.display().to_string())
    }

    pub fn from_json(bytes: &[u8], name: &str) -> Result<Self, IdentityError> {
        let err = |message: String| IdentityError::File {
            path: name.into(),
            message,
        };
        let raw: HashMap<String, Vec<String>> = serde_json::from_slice(bytes).map_err(|e| {
            err(format!(
                "expected {{\"<user id>\": [\"<group id>\", ...]}}: {e}"
            ))
        })?;
        let mut groups = HashMap::with_capacity(raw.len());
        for (user, list) in raw {
            let id = UserId::parse(&user).map_err(|e| err(format!("user {user:?}: {e}")))?;
            let mut ids = Vec::with_capacity(list.len());
            for (i, g) in list.iter().enumerate() {
                ids.push(
                    GroupId::parse(g).map_err(|e| err(format!("user {user}, group [{i}]: {e}")))?,
                );
            }
            groups.insert(id, Identity::normalize_groups(ids));
        }
        Ok(Self { groups })
    }

    pub fn groups_of(&self, user: UserId) -> Option<Box<[GroupId]>> {
        self.groups.get(&user).cloned()
    }

    /// Every group id the file mentions (for `check`'s unknown-group lint).
    pub fn all_groups(&self) -> impl Iterator<Item = GroupId> + '_ {
        self.groups.values().flat_map(|g| g.iter().copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(json: &str, expect: Result<usize, &str>) {
        match (Directory::from_json(json.as_bytes(), "dir.json"), expect) {
            (Ok(d), Ok(n)) => assert_eq!(d.groups.len(), n),
            (Err(e), Err(part)) => assert!(e.to_string().contains(part), "{e}"),
            (got, want) => panic!(
                "{json}: got {:?}, want {want:?}",
                got.map(|d| d.groups.len())
            ),
        }
    }

    #[test]
    fn parses_and_names_bad_records() {
        check(r#"{"11111111-1111-1111-1111-111111111111": []}"#, Ok(1));
        check(r#"{"bob": []}"#, Err("user \"bob\""));
        check(
            r#"{"11111111-1111-1111-1111-111111111111": ["g"]}"#,
            Err("group [0]"),
        );
        check("[]", Err("dir.json"));
    }

    #[test]
    fn demo_file_parses() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/demo/directory-groups.json");
        assert!(Directory::load(&path).is_ok_and(|d| !d.groups.is_empty()));
    }
}
