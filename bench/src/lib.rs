//! Shared fixtures for the Portcullis benchmarks (see `benches/` and `bench/README.md`).
