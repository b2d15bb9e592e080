//! Portcullis: a self-hosted access-decision gateway.
//!
//! A request flows through named stages: **accept** (`proxy::server`) -> **identify**
//! (`identity`) -> **decide** (`access`, reading one `snapshot`) -> **forward or deny**
//! (`proxy::forward`, `proxy::deny`) -> **record** (`metrics`, decision log).
//!
//! The decision core (`model`, `compliance`, `access`, the snapshot's read side) is pure: no
//! I/O, no clock reads, no failure paths. Sources, proxy and admin do the I/O at the edges.
//! See `ARCHITECTURE.md` at the repository root for the map and the invariants.

pub mod access;
pub mod admin;
pub mod app;
pub mod cli;
pub mod clock;
pub mod compliance;
pub mod config;
pub mod decision_log;
pub mod identity;
pub mod ids;
pub mod metrics;
pub mod model;
pub mod per_connection;
pub mod proxy;
pub mod pull;
pub mod reason;
pub mod signals;
pub mod snapshot;
pub mod sources;
pub mod standin;
pub mod whatif;
