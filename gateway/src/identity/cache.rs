//! The verified-token cache: a bounded moka cache keyed by the whole token string (hashed with
//! a per-process random seed; moka compares the full key on lookup, so a hash collision can
//! never hand out another token's identity). Successes live no longer than the token's `exp`;
//! cacheable failures for `failure_ttl`. A hit re-checks `exp` against the passed `now`, so an
//! expired identity is never returned even before moka evicts it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::sync::Cache;
use moka::Expiry;

use super::verify::Refused;
use super::{Identity, IdentityFailure};
use crate::clock::UnixMillis;

/// Longest time a success is kept, whatever its `exp` (moka's clock and ours differ).
const MAX_SUCCESS_TTL: Duration = Duration::from_secs(24 * 3600);

#[derive(Clone)]
struct Entry {
    outcome: Result<Arc<Identity>, IdentityFailure>,
    ttl: Duration,
}

struct EntryExpiry;

impl Expiry<Arc<str>, Entry> for EntryExpiry {
    fn expire_after_create(
        &self,
        _key: &Arc<str>,
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
    cache: Cache<Arc<str>, Entry, foldhash::fast::RandomState>,
    failure_ttl: Duration,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl IdentityCache {
    pub fn new(max_entries: u64, failure_ttl: Duration) -> Self {
        Self {
            cache: Cache::builder()
                .max_capacity(max_entries)
                .expire_after(EntryExpiry)
                .build_with_hasher(foldhash::fast::RandomState::default()),
            failure_ttl,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// The cached outcome for `token`, or `verify()`'s, which is then cached.
    pub fn get_or_verify(
        &self,
        token: &str,
        now: UnixMillis,
        verify: impl FnOnce() -> Result<Identity, Refused>,
    ) -> Result<Arc<Identity>, IdentityFailure> {
        if let Some(entry) = self.cache.get(token) {
            match entry.outcome {
                // Past `exp` by our clock: never served from here; re-verification applies
                // the clock skew and gives the right answer.
                Ok(identity) if now <= identity.expires_at => {
                    self.hits.fetch_add(1, Ordering::Relaxed);
                    return Ok(identity);
                }
                Ok(_) => self.cache.invalidate(token),
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
                    self.insert(token, Ok(identity.clone()), ttl);
                }
                Ok(identity)
            }
            Err(Refused { failure, cacheable }) => {
                if cacheable && !self.failure_ttl.is_zero() {
                    self.insert(token, Err(failure.clone()), self.failure_ttl);
                }
                Err(failure)
            }
        }
    }

    fn insert(&self, token: &str, outcome: Result<Arc<Identity>, IdentityFailure>, ttl: Duration) {
        self.cache.insert(Arc::from(token), Entry { outcome, ttl });
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
        let c = IdentityCache::new(100, Duration::from_secs(5));
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
}
