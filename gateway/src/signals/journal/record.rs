//! The journal's byte format, and the scan that reads it back.
//!
//! ```text
//! file    = header record*
//! header  = "PCSJ" version:u16le flags:u16le            (8 bytes; version 1, flags 0)
//! record  = len:u32le crc:u32le payload[len]
//!           crc = CRC-32 (IEEE) of the 4 len bytes followed by the payload
//! payload = signal+                                     (one appended batch)
//! signal  = device:u128le risk:u8 observed_at:i64le     (25 bytes)
//!           risk: 0 secured, 1 low, 2 medium, 3 high, 4 unavailable
//! ```
//!
//! A record is one appended batch, so a batch is replayed whole or not at all.

use crate::clock::UnixMillis;
use crate::ids::DeviceId;
use crate::model::Risk;
use crate::signals::Signal;

pub const MAGIC: [u8; 4] = *b"PCSJ";
pub const VERSION: u16 = 1;
pub const HEADER_LEN: usize = 8;
pub const RECORD_HEADER_LEN: usize = 8;
pub const SIGNAL_LEN: usize = 25;
/// The most signals in one record; larger batches are split into several records.
pub const MAX_RECORD_SIGNALS: usize = 65_536;
const MAX_PAYLOAD: usize = MAX_RECORD_SIGNALS * SIGNAL_LEN;

pub fn header() -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..4].copy_from_slice(&MAGIC);
    h[4..6].copy_from_slice(&VERSION.to_le_bytes());
    h
}

/// Appends the records for `signals` (split into records of at most `MAX_RECORD_SIGNALS`) to
/// `out` and returns how many records were written.
pub fn encode(signals: &[Signal], out: &mut Vec<u8>) -> u64 {
    let mut records = 0;
    for chunk in signals.chunks(MAX_RECORD_SIGNALS) {
        let start = out.len();
        // A chunk holds at most MAX_PAYLOAD (< u32::MAX) bytes, so this cannot truncate.
        let len = (chunk.len() * SIGNAL_LEN) as u32;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&[0u8; 4]);
        for s in chunk {
            out.extend_from_slice(&s.device.as_u128().to_le_bytes());
            out.push(risk_code(s.risk));
            out.extend_from_slice(&s.observed_at.0.to_le_bytes());
        }
        let mut crc = crc32fast::Hasher::new();
        crc.update(&out[start..start + 4]);
        crc.update(&out[start + RECORD_HEADER_LEN..]);
        out[start + 4..start + 8].copy_from_slice(&crc.finalize().to_le_bytes());
        records += 1;
    }
    records
}

/// What is wrong with the file's header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderProblem {
    /// Shorter than a header but a prefix of one: a crash while the file was being created.
    Torn,
    NotAJournal,
    UnsupportedVersion(u16),
}

pub fn check_header(bytes: &[u8]) -> Result<(), HeaderProblem> {
    let expected = header();
    if bytes.len() < HEADER_LEN {
        return if expected.starts_with(bytes) {
            Err(HeaderProblem::Torn)
        } else {
            Err(HeaderProblem::NotAJournal)
        };
    }
    if bytes[..4] != MAGIC {
        return Err(HeaderProblem::NotAJournal);
    }
    let version = u16::from_le_bytes([bytes[4], bytes[5]]);
    if version != VERSION {
        return Err(HeaderProblem::UnsupportedVersion(version));
    }
    Ok(())
}

/// The result of reading the records after the header.
#[derive(Debug, Default)]
pub struct Scan {
    pub signals: Vec<Signal>,
    pub records: u64,
    /// Offset just after the last good record: everything before it is kept.
    pub good_len: usize,
    pub problem: Option<Problem>,
}

/// The first record that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub offset: usize,
    /// True when nothing readable can follow (the bad record reaches the end of the file, or
    /// only zero bytes follow): a write torn by a crash. False for damage in mid-file.
    pub at_tail: bool,
    pub detail: String,
}

/// Reads every record of a whole file (header included) up to the first bad one.
pub fn scan(bytes: &[u8]) -> Scan {
    let mut scan = Scan {
        good_len: HEADER_LEN.min(bytes.len()),
        ..Scan::default()
    };
    let mut at = scan.good_len;
    while at < bytes.len() {
        match read_record(&bytes[at..], &mut scan.signals) {
            Ok(used) => {
                at += used;
                scan.good_len = at;
                scan.records += 1;
            }
            Err(Bad {
                reaches_end,
                detail,
            }) => {
                let rest_is_zero = bytes[at..].iter().all(|b| *b == 0);
                scan.problem = Some(Problem {
                    offset: at,
                    at_tail: reaches_end || rest_is_zero,
                    detail,
                });
                break;
            }
        }
    }
    scan
}

struct Bad {
    /// The record, as framed, ends exactly at or past the end of the file.
    reaches_end: bool,
    detail: String,
}

/// Reads one record from the start of `bytes`, pushing its signals; returns its length.
fn read_record(bytes: &[u8], out: &mut Vec<Signal>) -> Result<usize, Bad> {
    if bytes.len() < RECORD_HEADER_LEN {
        return Err(Bad {
            reaches_end: true,
            detail: format!("incomplete record header ({} of 8 bytes)", bytes.len()),
        });
    }
    let len = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
    let crc = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
    if len == 0 || len > MAX_PAYLOAD || len % SIGNAL_LEN != 0 {
        return Err(Bad {
            reaches_end: false,
            detail: format!("impossible record length {len}"),
        });
    }
    let end = RECORD_HEADER_LEN + len;
    if bytes.len() < end {
        return Err(Bad {
            reaches_end: true,
            detail: format!(
                "incomplete record ({} of {len} payload bytes)",
                bytes.len() - RECORD_HEADER_LEN
            ),
        });
    }
    let payload = &bytes[RECORD_HEADER_LEN..end];
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&bytes[..4]);
    hasher.update(payload);
    if hasher.finalize() != crc {
        return Err(Bad {
            reaches_end: bytes.len() == end,
            detail: "record checksum mismatch".into(),
        });
    }
    let first = out.len();
    for raw in payload.chunks_exact(SIGNAL_LEN) {
        match decode_signal(raw) {
            Some(s) => out.push(s),
            None => {
                out.truncate(first);
                return Err(Bad {
                    reaches_end: bytes.len() == end,
                    detail: "record holds an unknown risk code or a nil device id".into(),
                });
            }
        }
    }
    Ok(end)
}

fn decode_signal(raw: &[u8]) -> Option<Signal> {
    let device = u128::from_le_bytes(raw[..16].try_into().ok()?);
    let risk = *Risk::ALL.get(usize::from(raw[16]))?;
    let at = i64::from_le_bytes(raw[17..25].try_into().ok()?);
    Some(Signal {
        device: DeviceId::from_u128(device)?,
        risk,
        observed_at: UnixMillis(at),
    })
}

fn risk_code(risk: Risk) -> u8 {
    match risk {
        Risk::Secured => 0,
        Risk::Low => 1,
        Risk::Medium => 2,
        Risk::High => 3,
        Risk::Unavailable => 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn risk_codes_match_risk_all_order() {
        for (i, r) in Risk::ALL.into_iter().enumerate() {
            assert_eq!(usize::from(risk_code(r)), i, "{r}");
        }
    }

    fn check_header_case(bytes: &[u8], expected: Result<(), HeaderProblem>) {
        assert_eq!(check_header(bytes), expected, "{bytes:?}");
    }

    #[test]
    fn headers() {
        let good = header();
        check_header_case(&good, Ok(()));
        check_header_case(&good[..0], Err(HeaderProblem::Torn));
        check_header_case(&good[..5], Err(HeaderProblem::Torn));
        check_header_case(b"{\"a\":1}\n", Err(HeaderProblem::NotAJournal));
        check_header_case(b"PC", Err(HeaderProblem::Torn));
        check_header_case(b"PX", Err(HeaderProblem::NotAJournal));
        check_header_case(
            b"PCSJ\x02\x00\x00\x00",
            Err(HeaderProblem::UnsupportedVersion(2)),
        );
    }
}
