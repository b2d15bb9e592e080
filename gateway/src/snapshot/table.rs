//! The device table: every device sorted by a hash of its id, cut into fixed-size chunks
//! (256 entries, 18 KiB, stored inline in their `Arc`) gathered in groups of 64 chunks, so
//! that a change to one device copies one chunk, one group (64 pointers) and the group list
//! (about 62 pointers at a million devices): the writer touches some 130 reference counts and
//! copies under 20 KiB per change, so readers' cache lines stay valid and the shared cache is
//! barely disturbed (bench/README.md: 1,024-entry chunks cost random readers ~10%). A
//! directory of bucket starts (half a byte per device, shared by every version) finds a
//! device with one probe into it and, usually, one entry read.

use std::sync::Arc;

use crate::clock::UnixMillis;
use crate::compliance::evaluate::{deadline, risk_expires_at, stale_at};
use crate::compliance::TenantSettings;
use crate::ids::DeviceId;
use crate::model::ComplianceState;

use super::entry::DeviceEntry;
use super::packed::{self, Packed, MANAGED, RISK_EXPIRED};
use super::statics::Statics;

pub(crate) const CHUNK_BITS: u32 = 8;
pub(crate) const CHUNK_LEN: usize = 1 << CHUNK_BITS;
pub(crate) const GROUP_BITS: u32 = 6;
pub(crate) const GROUP_LEN: usize = 1 << GROUP_BITS;

/// A run of consecutive entries: the unit of copy-on-write. The entries are inline, so a
/// lookup goes from the chunk pointer straight to the entry. Only the first `len` are devices
/// (the last chunk of a table is padded).
#[derive(Debug, Clone)]
pub(crate) struct Chunk {
    /// The earliest `valid_until` of its entries (ms; `i64::MAX` = none).
    pub next_due: i64,
    len: usize,
    entries: [Packed; CHUNK_LEN],
}

/// Up to `GROUP_LEN` chunks: the second unit of copy-on-write.
pub(crate) type Group = Arc<[Arc<Chunk>]>;

impl Chunk {
    /// A chunk of up to `CHUNK_LEN` entries.
    pub fn new(entries: &[Packed], settings: &TenantSettings) -> Arc<Self> {
        let len = entries.len().min(CHUNK_LEN);
        let mut chunk = Arc::new(Self {
            next_due: i64::MAX,
            len,
            entries: [Packed::EMPTY; CHUNK_LEN],
        });
        if let Some(c) = Arc::get_mut(&mut chunk) {
            c.entries[..len].copy_from_slice(&entries[..len]);
            c.recompute_due(settings);
        }
        chunk
    }

    /// The devices in this chunk.
    pub fn entries(&self) -> &[Packed] {
        &self.entries[..self.len]
    }

    pub fn entry_mut(&mut self, i: usize) -> &mut Packed {
        &mut self.entries[i]
    }

    pub fn recompute_due(&mut self, settings: &TenantSettings) {
        self.next_due = self
            .entries()
            .iter()
            .filter_map(|e| valid_until(e, settings))
            .map(|t| t.0)
            .min()
            .unwrap_or(i64::MAX);
    }
}

/// Gathers chunks into groups of `GROUP_LEN`.
pub(crate) fn group(chunks: Vec<Arc<Chunk>>) -> Box<[Group]> {
    chunks.chunks(GROUP_LEN).map(Group::from).collect()
}

/// When a stored result changes by time alone (see `compliance::evaluate::deadline`).
pub(crate) fn valid_until(e: &Packed, settings: &TenantSettings) -> Option<UnixMillis> {
    use crate::reason::ReasonCode::{CheckinStale, DeviceNotManaged};
    let reasons = e.reasons();
    if !e.has(MANAGED) || reasons.contains(DeviceNotManaged) || reasons.contains(CheckinStale) {
        return None;
    }
    let sync = packed::from_secs(e.last_sync)?;
    let grace = if e.state() == ComplianceState::InGracePeriod {
        packed::from_secs(e.grace_until)
    } else {
        None
    };
    let expires = if e.has(RISK_EXPIRED) {
        None
    } else {
        risk_expires_at(e.risk(), settings)
    };
    deadline(stale_at(sync, settings), grace, expires)
}

/// Devices by id, with their computed compliance.
#[derive(Debug, Clone)]
pub struct DeviceTable {
    /// `dir[b]..dir[b + 1]` are the positions of bucket `b`.
    pub(crate) dir: Arc<[u32]>,
    pub(crate) shift: u32,
    pub(crate) groups: Box<[Group]>,
    pub(crate) statics: Arc<Statics>,
    pub(crate) settings: TenantSettings,
    pub(crate) len: usize,
}

/// The position-defining hash of a device id (a 64-bit finalizer over both halves).
#[inline]
pub(crate) fn hash(id: u128) -> u64 {
    let mut x = (id as u64) ^ ((id >> 64) as u64).rotate_left(29);
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

impl DeviceTable {
    /// Looks a device up: a directory probe and, usually, one entry read. No allocation.
    #[inline]
    pub fn get(&self, id: DeviceId) -> Option<DeviceEntry<'_>> {
        self.position(id)
            .map(|pos| DeviceEntry::new(self, self.packed(pos)))
    }

    /// Finds a device's position: the directory gives its bucket (about 8 entries, sorted
    /// by hash); the rest of the hash estimates where in the bucket it sits, and a short
    /// scan in one direction finds it, so a lookup usually reads one or two cache lines.
    #[inline]
    pub(crate) fn position(&self, id: DeviceId) -> Option<usize> {
        let key = id.as_u128();
        let h = hash(key);
        let bucket = (h >> self.shift) as usize;
        let start = *self.dir.get(bucket)? as usize;
        let end = *self.dir.get(bucket + 1)? as usize;
        if start == end {
            return None;
        }
        // The hash bits below the bucket bits, as a fraction of the bucket.
        let frac = (h << (64 - self.shift)) >> 32;
        let guess = start + ((frac * (end - start) as u64) >> 32) as usize;
        let target = (h, key);
        let at = |pos: usize| {
            let k = packed::join(self.packed(pos).id);
            (hash(k), k)
        };
        let here = at(guess);
        if here == target {
            return Some(guess);
        }
        if here < target {
            (guess + 1..end)
                .map(|pos| (pos, at(pos)))
                .take_while(|(_, e)| *e <= target)
                .find(|(_, e)| *e == target)
                .map(|(pos, _)| pos)
        } else {
            (start..guess)
                .rev()
                .map(|pos| (pos, at(pos)))
                .take_while(|(_, e)| *e >= target)
                .find(|(_, e)| *e == target)
                .map(|(pos, _)| pos)
        }
    }

    #[inline]
    pub(crate) fn packed(&self, pos: usize) -> &Packed {
        let ci = pos >> CHUNK_BITS;
        &self.groups[ci >> GROUP_BITS][ci & (GROUP_LEN - 1)].entries[pos & (CHUNK_LEN - 1)]
    }

    /// Every chunk, in table order (chunk `i` holds positions `i << CHUNK_BITS ..`).
    pub(crate) fn chunks(&self) -> impl Iterator<Item = &Arc<Chunk>> {
        self.groups.iter().flat_map(|g| g.iter())
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every device, in table order.
    pub fn iter(&self) -> impl Iterator<Item = DeviceEntry<'_>> {
        self.chunks()
            .flat_map(|c| c.entries().iter())
            .map(|p| DeviceEntry::new(self, p))
    }

    /// How many devices are in each state, in the order of `ComplianceState::ALL`.
    pub fn count_by_state(&self) -> [usize; 4] {
        let mut counts = [0usize; 4];
        for entry in self.iter() {
            let state = entry.state();
            if let Some(i) = ComplianceState::ALL.iter().position(|s| *s == state) {
                counts[i] += 1;
            }
        }
        counts
    }

    /// The earliest time at which some device's compliance changes by time alone.
    pub fn next_due(&self) -> Option<UnixMillis> {
        let t = self.chunks().map(|c| c.next_due).min()?;
        (t != i64::MAX).then_some(UnixMillis(t))
    }

    /// Number of distinct `memberOf` sets (interned).
    pub fn group_set_count(&self) -> usize {
        self.statics.group_set_count()
    }
}
