//! The parts of a device table that a risk update never changes, shared by every version
//! built from one rebuild: display names in one byte arena, interned group sets, interned
//! OS versions and (manufacturer, model) pairs, and rare extras keyed by device id.

use std::collections::HashMap;

use crate::compliance::ExtensionAttributes;
use crate::ids::GroupId;

/// Rare per-device values: extension attributes, and strings that did not fit an intern
/// table (more than 65,535 distinct values).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Extras {
    pub os_version: Option<Box<str>>,
    pub manufacturer: Option<Box<str>>,
    pub model: Option<Box<str>>,
    pub extension_attributes: Option<Box<ExtensionAttributes>>,
}

/// Index meaning "stored in `Extras`" for the 16-bit intern indexes.
pub(crate) const SPILLED: u16 = u16::MAX;

#[derive(Debug, Default)]
pub(crate) struct Statics {
    /// Each name: LEB128 length, then UTF-8 bytes.
    names: Box<[u8]>,
    group_sets: Box<[Box<[GroupId]>]>,
    os_versions: Box<[Box<str>]>,
    hardware: Box<[(Box<str>, Box<str>)]>,
    /// Sorted by device id.
    extras: Box<[(u128, Box<Extras>)]>,
}

impl Statics {
    pub fn name(&self, offset: u32) -> &str {
        let mut at = offset as usize;
        let mut len = 0usize;
        let mut shift = 0;
        while let Some(b) = self.names.get(at) {
            at += 1;
            len |= usize::from(b & 0x7f) << shift;
            shift += 7;
            if b & 0x80 == 0 {
                break;
            }
        }
        // The builder wrote whole `str`s at these offsets, so this always succeeds.
        self.names
            .get(at..at + len)
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or("")
    }

    pub fn groups(&self, index: u32) -> &[GroupId] {
        self.group_sets.get(index as usize).map_or(&[], |g| g)
    }

    pub fn os_version(&self, index: u16) -> &str {
        self.os_versions.get(usize::from(index)).map_or("", |s| s)
    }

    pub fn hardware(&self, index: u16) -> (&str, &str) {
        self.hardware
            .get(usize::from(index))
            .map_or(("", ""), |(a, b)| (a, b))
    }

    pub fn extras(&self, id: u128) -> Option<&Extras> {
        self.extras
            .binary_search_by_key(&id, |(k, _)| *k)
            .ok()
            .map(|i| &*self.extras[i].1)
    }

    pub fn group_set_count(&self) -> usize {
        self.group_sets.len()
    }
}

/// Collects and interns while a table is built.
#[derive(Default)]
pub(crate) struct StaticsBuilder {
    names: Vec<u8>,
    group_ids: HashMap<Box<[GroupId]>, u32>,
    group_sets: Vec<Box<[GroupId]>>,
    os_ids: HashMap<Box<str>, u16>,
    os_versions: Vec<Box<str>>,
    hw_ids: HashMap<(Box<str>, Box<str>), u16>,
    hardware: Vec<(Box<str>, Box<str>)>,
    /// (device id, last sync secs, extras): duplicates are resolved like the entries.
    pub extras: Vec<(u128, u32, Box<Extras>)>,
}

impl StaticsBuilder {
    pub fn new() -> Self {
        let mut b = Self::default();
        // Index 0 is the empty value everywhere.
        b.intern_os("");
        b.intern_hardware("", "");
        b.intern_groups(&[]);
        b
    }

    pub fn push_name(&mut self, name: &str) -> u32 {
        let offset = u32::try_from(self.names.len()).unwrap_or(u32::MAX);
        let mut len = name.len();
        loop {
            let byte = (len & 0x7f) as u8;
            len >>= 7;
            if len == 0 {
                self.names.push(byte);
                break;
            }
            self.names.push(byte | 0x80);
        }
        self.names.extend_from_slice(name.as_bytes());
        offset
    }

    pub fn intern_groups(&mut self, groups: &[GroupId]) -> u32 {
        if let Some(i) = self.group_ids.get(groups) {
            return *i;
        }
        let i = u32::try_from(self.group_sets.len()).unwrap_or(u32::MAX);
        let set: Box<[GroupId]> = groups.into();
        self.group_ids.insert(set.clone(), i);
        self.group_sets.push(set);
        i
    }

    /// The index of `os`, or `SPILLED` when the table is full.
    pub fn intern_os(&mut self, os: &str) -> u16 {
        if let Some(i) = self.os_ids.get(os) {
            return *i;
        }
        match u16::try_from(self.os_versions.len()) {
            Ok(i) if i < SPILLED => {
                self.os_ids.insert(os.into(), i);
                self.os_versions.push(os.into());
                i
            }
            _ => SPILLED,
        }
    }

    pub fn intern_hardware(&mut self, manufacturer: &str, model: &str) -> u16 {
        let key: (Box<str>, Box<str>) = (manufacturer.into(), model.into());
        if let Some(i) = self.hw_ids.get(&key) {
            return *i;
        }
        match u16::try_from(self.hardware.len()) {
            Ok(i) if i < SPILLED => {
                self.hw_ids.insert(key.clone(), i);
                self.hardware.push(key);
                i
            }
            _ => SPILLED,
        }
    }

    pub fn finish(self, mut extras: Vec<(u128, Box<Extras>)>) -> Statics {
        extras.sort_unstable_by_key(|(id, _)| *id);
        Statics {
            names: self.names.into_boxed_slice(),
            group_sets: self.group_sets.into_boxed_slice(),
            os_versions: self.os_versions.into_boxed_slice(),
            hardware: self.hardware.into_boxed_slice(),
            extras: extras.into_boxed_slice(),
        }
    }
}
