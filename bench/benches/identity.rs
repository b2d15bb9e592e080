//! Identity stage: uncached token verification (RS256, ES256) vs a cache hit with 10,000
//! cached tokens (target <= 500 ns), and `authenticate` on a HeaderMap with a cached token.

use std::hint::black_box;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use portcullis::config::identity::IdentityConfig;
use portcullis::identity::testing::{TestKeys, TokenSpec, NOW};
use portcullis::identity::{Authenticator, KeySet};

const CACHED_TOKENS: usize = 10_000;

fn authenticator() -> Arc<Authenticator> {
    let cfg = IdentityConfig {
        jwks: Some("bench-jwks.json".into()),
        issuers: vec![TokenSpec::ISSUER.into()],
        audiences: vec![TokenSpec::AUDIENCE.into()],
        ..IdentityConfig::default()
    };
    let json = TestKeys::jwks_json(&[TestKeys::rsa_a(), TestKeys::ec_a()]);
    let keys = KeySet::parse(json.as_bytes(), "bench").expect("bench JWKS parses");
    Authenticator::with_keys(&cfg, Path::new("."), Some(keys)).expect("bench config is valid")
}

fn token_for(keys: &TestKeys, i: usize) -> String {
    let spec = TokenSpec {
        user: format!("6f1c2e4a-8b3d-4c5e-9f7a-{:012x}", i + 1),
        ..TokenSpec::default()
    };
    keys.sign(&spec.claims())
}

/// A per-entry expiry, as the gateway's cache has (an hour for every entry).
struct AnHour;

impl moka::Expiry<u128, Arc<u64>> for AnHour {
    fn expire_after_create(
        &self,
        _key: &u128,
        _value: &Arc<u64>,
        _at: std::time::Instant,
    ) -> Option<std::time::Duration> {
        Some(std::time::Duration::from_secs(3600))
    }
}

type BareCache = moka::sync::Cache<u128, Arc<u64>, foldhash::fast::RandomState>;

fn bare_cache() -> BareCache {
    moka::sync::Cache::builder()
        .max_capacity(100_000)
        .expire_after(AnHour)
        .build_with_hasher(foldhash::fast::RandomState::default())
}

/// The `k`th key, spread over the `u128` range like a hash.
fn bare_key(k: usize) -> u128 {
    (k as u128).wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835)
}

fn bench_identity(c: &mut Criterion) {
    let auth = authenticator();
    let verifier = auth.verifier().expect("JWKS configured");
    let mut group = c.benchmark_group("identity");

    for (name, keys) in [("RS256", TestKeys::rsa_a()), ("ES256", TestKeys::ec_a())] {
        let token = token_for(&keys, 0);
        println!("{name} token: {} bytes", token.len());
        group.bench_function(format!("verify_uncached_{name}"), |b| {
            b.iter(|| black_box(verifier.verify(black_box(&token), NOW).is_ok()))
        });
    }

    let ec = TestKeys::ec_a();
    let tokens: Vec<String> = (0..CACHED_TOKENS).map(|i| token_for(&ec, i)).collect();
    // The floor under the hit: moka alone, configured as the gateway's (16-byte keys, the
    // default capacity, a per-entry expiry), values a bare `Arc`, filled in step with the
    // gateway's cache (so its nodes are spread through memory the same way) and walked the
    // same way (no token hashing, no identity read). `moka_alone_hit_10k_packed_keys` fills
    // another in one tight loop, its nodes side by side: the layout flatters it.
    let bare = bare_cache();
    let packed = bare_cache();
    for (k, t) in tokens.iter().enumerate() {
        assert!(auth.verify_token(t, NOW).is_ok(), "warm-up verification");
        bare.insert(bare_key(k), Arc::new(1));
    }
    for k in 0..CACHED_TOKENS {
        packed.insert(bare_key(k), Arc::new(1));
    }
    let mut i = 0usize;
    group.bench_function("cache_hit_10k_tokens", |b| {
        b.iter(|| {
            i = (i + 7919) % CACHED_TOKENS;
            black_box(auth.verify_token(black_box(&tokens[i]), NOW).is_ok())
        })
    });

    // The same walk, with the token just copied into a fresh buffer (untimed), as a request's
    // token is when it was just read off the socket: only the cache's own memory is cold.
    let mut k = 0usize;
    group.bench_function("cache_hit_10k_tokens_fresh_input", |b| {
        b.iter_batched_ref(
            || {
                k = (k + 7919) % CACHED_TOKENS;
                tokens[k].clone()
            },
            |token| black_box(auth.verify_token(black_box(token), NOW).is_ok()),
            // Batches of 32 inputs (21 KB): prepared just before use, so still in L1/L2.
            criterion::BatchSize::NumIterations(32),
        )
    });

    for (name, cache) in [
        ("moka_alone_hit_10k_keys", &bare),
        ("moka_alone_hit_10k_packed_keys", &packed),
    ] {
        let mut m = 0usize;
        group.bench_function(name, |b| {
            b.iter(|| {
                m = (m + 7919) % CACHED_TOKENS;
                black_box(cache.get(black_box(&bare_key(m))).is_some())
            })
        });
    }

    // The same token every time: everything hot in cache (how a keep-alive client looks).
    group.bench_function("cache_hit_same_token", |b| {
        b.iter(|| black_box(auth.verify_token(black_box(&tokens[0]), NOW).is_ok()))
    });

    let peer: IpAddr = "192.0.2.10".parse().expect("literal address");
    let headers: Vec<http::HeaderMap> = tokens
        .iter()
        .take(1000)
        .map(|t| {
            let mut h = http::HeaderMap::new();
            h.insert(
                http::header::AUTHORIZATION,
                format!("Bearer {t}").parse().expect("token is ASCII"),
            );
            h.insert(
                http::header::HOST,
                "sharepoint.local".parse().expect("literal"),
            );
            h.insert(
                http::header::USER_AGENT,
                "Mozilla/5.0".parse().expect("literal"),
            );
            h
        })
        .collect();
    let mut j = 0usize;
    group.bench_function("authenticate_cached_bearer", |b| {
        b.iter(|| {
            j = (j + 1) % headers.len();
            black_box(
                auth.authenticate(black_box(&headers[j]), peer, None, NOW)
                    .is_ok(),
            )
        })
    });
    group.finish();
    let stats = auth.cache_stats();
    println!(
        "cache: {} hits, {} misses, {} entries",
        stats.hits, stats.misses, stats.entries
    );
}

criterion_group!(benches, bench_identity);
criterion_main!(benches);
