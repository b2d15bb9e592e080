//! Compact identifiers. Entra object ids and device ids are GUIDs; they are stored as a
//! non-zero `u128` (16 bytes, `Option` for free) and never as strings on the hot path.

use std::fmt;
use std::num::NonZeroU128;
use std::str::FromStr;

/// Why a string is not a usable GUID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuidError {
    #[error("not a GUID: {0:?}")]
    Malformed(String),
    #[error("the nil GUID 00000000-0000-0000-0000-000000000000 is not a valid id")]
    Nil,
}

/// A GUID as a non-zero 128-bit number. The nil GUID is refused when parsing.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Guid(NonZeroU128);

impl Guid {
    /// Builds a GUID from its numeric value; `None` for the nil GUID.
    pub const fn from_u128(value: u128) -> Option<Self> {
        match NonZeroU128::new(value) {
            Some(v) => Some(Self(v)),
            None => None,
        }
    }

    pub const fn as_u128(self) -> u128 {
        self.0.get()
    }

    /// Parses the hyphenated, simple, braced or URN forms, case-insensitively.
    pub fn parse(text: &str) -> Result<Self, GuidError> {
        let value = uuid::Uuid::try_parse(text.trim())
            .map_err(|_| GuidError::Malformed(shorten(text)))?
            .as_u128();
        Self::from_u128(value).ok_or(GuidError::Nil)
    }
}

fn shorten(text: &str) -> String {
    text.chars().take(64).collect()
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&uuid::Uuid::from_u128(self.as_u128()).hyphenated(), f)
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Guid {
    type Err = GuidError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

macro_rules! guid_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub Guid);

        impl $name {
            pub fn parse(text: &str) -> Result<Self, GuidError> {
                Guid::parse(text).map(Self)
            }
            pub const fn from_u128(value: u128) -> Option<Self> {
                match Guid::from_u128(value) {
                    Some(g) => Some(Self(g)),
                    None => None,
                }
            }
            pub const fn as_u128(self) -> u128 {
                self.0.as_u128()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl FromStr for $name {
            type Err = GuidError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                Self::parse(&text).map_err(serde::de::Error::custom)
            }
        }
    };
}

guid_newtype!(
    /// An Entra device id (Graph `azureADDeviceId`, Defender `aadDeviceId`, token `deviceid`).
    DeviceId
);
guid_newtype!(
    /// An Entra user object id (token `oid`).
    UserId
);
guid_newtype!(
    /// An Entra group object id.
    GroupId
);
guid_newtype!(
    /// An application (client) id, such as SharePoint Online's.
    AppId
);
guid_newtype!(
    /// An Entra tenant id (token `tid`).
    TenantId
);

/// Well-known application ids (product brief section 5).
pub mod apps {
    use super::AppId;

    const fn app(value: u128) -> AppId {
        match AppId::from_u128(value) {
            Some(id) => id,
            None => panic!("well-known app ids are non-zero"),
        }
    }

    /// SharePoint Online, `00000003-0000-0ff1-ce00-000000000000`.
    pub const SHAREPOINT_ONLINE: AppId = app(0x00000003_0000_0ff1_ce00_000000000000);
    /// Exchange Online, `00000002-0000-0ff1-ce00-000000000000`.
    pub const EXCHANGE_ONLINE: AppId = app(0x00000002_0000_0ff1_ce00_000000000000);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_all_forms_and_prints_hyphenated_lowercase() {
        for text in [
            "6F9619FF-8B86-D011-B42D-00C04FC964FF",
            "6f9619ff8b86d011b42d00c04fc964ff",
            "{6f9619ff-8b86-d011-b42d-00c04fc964ff}",
            " 6f9619ff-8b86-d011-b42d-00c04fc964ff ",
        ] {
            let id = DeviceId::parse(text).unwrap();
            assert_eq!(id.to_string(), "6f9619ff-8b86-d011-b42d-00c04fc964ff");
        }
    }

    #[test]
    fn refuses_nil_and_garbage() {
        assert_eq!(
            Guid::parse("00000000-0000-0000-0000-000000000000"),
            Err(GuidError::Nil)
        );
        assert!(matches!(
            Guid::parse("not-a-guid"),
            Err(GuidError::Malformed(_))
        ));
        assert!(matches!(Guid::parse(""), Err(GuidError::Malformed(_))));
    }

    #[test]
    fn well_known_apps_print_as_documented() {
        assert_eq!(
            apps::SHAREPOINT_ONLINE.to_string(),
            "00000003-0000-0ff1-ce00-000000000000"
        );
        assert_eq!(
            apps::EXCHANGE_ONLINE.to_string(),
            "00000002-0000-0ff1-ce00-000000000000"
        );
    }

    #[test]
    fn option_is_free() {
        assert_eq!(std::mem::size_of::<Option<DeviceId>>(), 16);
    }
}
