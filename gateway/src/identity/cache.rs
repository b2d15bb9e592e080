//! The verified-token cache: a bounded moka cache keyed by a hash of the whole token.
//!
//! The key is XXH3-128 of the token under a 192-byte secret drawn from the system's random
//! source when the cache is built, so a key is 16 bytes however long the token (10,000 cached
//! ES256 tokens are 160 KB of keys, not 6.6 MB of token text). Two distinct tokens share a key
//! by accident with probability 2^-128 per pair; on purpose, an attacker would have to make a
//! token collide, under a secret he does not know, with a token he has not seen (had he seen
//! it, he could present it). As a second, independent guard the entry keeps the last
//! [`TAIL_LEN`] bytes of its token (the signature's tail, unpredictable without the token) and
//! a hit must match them too.
//!
//! Successes live no longer than the token's `exp`; cacheable failures for `failure_ttl`. A hit
//! re-checks `exp` against the passed `now`, so an expired identity is never returned even
//! before moka evicts it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::sync::Cache;
use moka::Expiry;
use xxhash_rust::xxh3::xxh3_128_with_secret;

use super::verify::Refused;
use super::{Identity, IdentityError, IdentityFailure};
use crate::clock::UnixMillis;

/// Longest time a success is kept, whatever its `exp` (moka's clock and ours differ).
const MAX_SUCCESS_TTL: Duration = Duration::from_secs(24 * 3600);

/// How many trailing token bytes an entry keeps and a hit compares.
const TAIL_LEN: usize = 16;

/// XXH3's default secret size (its minimum is 136 bytes).
const SECRET_LEN: usize = 192;

/// A token's cache key: its keyed 128-bit hash.
type TokenKey = u128;

/// The last `TAIL_LEN` bytes of a token, zero-padded in front when it is shorter.
type Tail = [u8; TAIL_LEN];

fn tail_of(token: &str) -> Tail {
    let bytes = token.as_bytes();
    let take = bytes.len().min(TAIL_LEN);
    let mut tail = [0; TAIL_LEN];
    tail[TAIL_LEN - take..].copy_from_slice(&bytes[bytes.len() - take..]);
    tail
}

#[derive(Clone)]
struct Entry {
    outcome: Result<Arc<Identity>, IdentityFailure>,
    ttl: Duration,
    tail: Tail,
}

struct EntryExpiry;

impl Expiry<TokenKey, Entry> for EntryExpiry {
    fn expire_after_create(
        &self,
        _key: &TokenKey,
        value: &Entry,
        _at: Instant,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

/// Cache counters for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    pub entries: u64,
}

pub(crate) struct IdentityCache {
    cache: Cache<TokenKey, Entry, foldhash::fast::RandomState>,
    secret: Box<[u8; SECRET_LEN]>,
    failure_ttl: Duration,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl IdentityCache {
    /// Fails only if the system cannot supply the random key secret.
    pub fn new(max_entries: u64, failure_ttl: Duration) -> Result<Self, IdentityError> {
        let mut secret = Box::new([0; SECRET_LEN]);
        getrandom::fill(&mut secret[..]).map_err(|e| {
            IdentityError::config(
                "cache",
                format!("no system randomness for the cache key: {e}"),
            )
        })?;
        Ok(Self {
            secret,
            cache: Cache::builder()
                .max_capacity(max_entries)
                .expire_after(EntryExpiry)
                .build_with_hasher(foldhash::fast::RandomState::default()),
            failure_ttl,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        })
    }

    fn key(&self, token: &str) -> TokenKey {
        xxh3_128_with_secret(token.as_bytes(), &self.secret[..])
    }

    /// The cached outcome for `token`, or `verify()`'s, which is then cached.
    pub fn get_or_verify(
        &self,
        token: &str,
        now: UnixMillis,
        verify: impl FnOnce() -> Result<Identity, Refused>,
    ) -> Result<Arc<Identity>, IdentityFailure> {
        let key = self.key(token);
        let tail = tail_of(token);
        if let Some(entry) = self.cache.get(&key).filter(|e| e.tail == tail) {
            match entry.outcome {
                // Past `exp` by our clock: never served from here; re-verification applies
                // the clock skew and gives the right answer.
                Ok(identity) if now <= identity.expires_at => {
                    self.hits.fetch_add(1, Ordering::Relaxed);
                    return Ok(identity);
                }
                Ok(_) => self.cache.invalidate(&key),
                Err(failure) => {
                    self.hits.fetch_add(1, Ordering::Relaxed);
                    return Err(failure);
                }
            }
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        match verify() {
            Ok(identity) => {
                let identity = Arc::new(identity);
                let left = identity.expires_at.0.saturating_sub(now.0);
                if left > 0 {
                    let ttl = Duration::from_millis(left.unsigned_abs()).min(MAX_SUCCESS_TTL);
                    self.insert(key, tail, Ok(identity.clone()), ttl);
                }
                Ok(identity)
            }
            Err(Refused { failure, cacheable }) => {
                if cacheable && !self.failure_ttl.is_zero() {
                    self.insert(key, tail, Err(failure.clone()), self.failure_ttl);
                }
                Err(failure)
            }
        }
    }

    fn insert(
        &self,
        key: TokenKey,
        tail: Tail,
        outcome: Result<Arc<Identity>, IdentityFailure>,
        ttl: Duration,
    ) {
        self.cache.insert(key, Entry { outcome, ttl, tail });
    }

    /// Counts a hit served in front of the cache (a connection's token memo).
    pub fn count_hit(&self) {
        self.hits.fetch_add(1, Ordering::Relaxed);
    }

    pub fn invalidate_all(&self) {
        self.cache.invalidate_all();
    }

    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            entries: self.cache.entry_count(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reason::ReasonCode;

    fn identity(exp: i64) -> Identity {
        Identity::expiring(exp)
    }

    /// Looks `token` up at `now`; `outcome` is what verification would say. Returns whether
    /// the result was Ok and whether verification ran.
    fn check(
        cache: &IdentityCache,
        token: &str,
        now: i64,
        outcome: Result<i64, bool>,
    ) -> (bool, bool) {
        let mut ran = false;
        let got = cache.get_or_verify(token, UnixMillis(now), || {
            ran = true;
            outcome.map(identity).map_err(|cacheable| Refused {
                failure: IdentityFailure::invalid("no"),
                cacheable,
            })
        });
        (got.is_ok(), ran)
    }

    #[test]
    fn hits_misses_expiry_and_failures() {
        let c = IdentityCache::new(100, Duration::from_secs(5)).expect("system randomness");
        assert_eq!(check(&c, "t1", 1000, Ok(5000)), (true, true));
        assert_eq!(check(&c, "t1", 2000, Err(true)), (true, false), "hit");
        // At exp it is still served; past it, re-verified (here: now refused).
        assert_eq!(check(&c, "t1", 5000, Err(true)), (true, false));
        assert_eq!(check(&c, "t1", 5001, Err(true)), (false, true));
        // Cacheable failure is served from cache; a non-cacheable one is not.
        assert_eq!(check(&c, "t1", 5002, Ok(9000)), (false, false));
        assert_eq!(check(&c, "t2", 0, Err(false)), (false, true));
        assert_eq!(check(&c, "t2", 0, Ok(9000)), (true, true));
        // Already past exp at verification time: not cached.
        assert_eq!(check(&c, "t3", 10_000, Ok(9000)), (true, true));
        assert_eq!(check(&c, "t3", 10_000, Ok(9000)), (true, true));
        let stats = c.stats();
        assert_eq!((stats.hits, stats.misses), (3, 6));
        assert!(ReasonCode::TokenInvalid == IdentityFailure::invalid("x").reason);
    }

    #[test]
    fn keys_are_secret_per_cache_and_a_hit_needs_the_tokens_tail() {
        let a = IdentityCache::new(10, Duration::from_secs(5)).expect("system randomness");
        let b = IdentityCache::new(10, Duration::from_secs(5)).expect("system randomness");
        assert_ne!(a.key("t1"), b.key("t1"), "each cache draws its own secret");
        assert_ne!(a.key("t1"), a.key("t2"));
        assert_eq!(tail_of("abc"), {
            let mut t = [0; TAIL_LEN];
            t[TAIL_LEN - 3..].copy_from_slice(b"abc");
            t
        });
        assert_eq!(&tail_of("x0123456789abcdefg")[..], b"123456789abcdefg");

        // An entry filed under t1's key but for another token's tail is never served for t1.
        let key = a.key("header.payload.signature-one");
        let forged = tail_of("header.payload.signature-two");
        a.insert(
            key,
            forged,
            Ok(Arc::new(identity(9000))),
            Duration::from_secs(60),
        );
        assert_eq!(
            check(&a, "header.payload.signature-one", 0, Err(true)),
            (false, true),
            "tail mismatch: verified afresh"
        );
    }
}
