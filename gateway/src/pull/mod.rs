//! Pulling JSON collections over HTTP(S): Graph-style `managedDevices` and Defender-style
//! `machines` endpoints (`{"value": [...], "@odata.nextLink": ...}` pages).
//!
//! Owns the per-source config (`PullSource`), one all-or-nothing fetch of every page
//! (`fetch`), and the polling loop with backoff and status (`spawn_poller`). It does not
//! interpret the items: the caller turns them into inventory or signals.

mod fetch;
mod poller;
mod source;

use std::time::Duration;

pub use fetch::{client, fetch, FetchOutcome, PullClient, MAX_PAGE_BYTES};
pub use poller::{backoff_delay, spawn_poller, PullStatus, PullStatusView};
pub use source::{PullSource, TokenSource};

/// Why a fetch failed. Page numbers are 1-based.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PullError {
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
    #[error("bearer token: {0}")]
    Token(String),
    #[error("page {page}: request to {url} failed: {message}")]
    Request {
        page: usize,
        url: String,
        message: String,
    },
    #[error("page {page}: no complete answer from {url} within {timeout:?}")]
    Timeout {
        page: usize,
        url: String,
        timeout: Duration,
    },
    #[error("page {page}: {url} answered HTTP {status}{body}")]
    Status {
        page: usize,
        url: String,
        status: u16,
        /// ": " and the start of the answer's body, or empty.
        body: String,
    },
    #[error("page {page}: {message}")]
    Body { page: usize, message: String },
    #[error("page {page}: not valid JSON: {message}")]
    Json { page: usize, message: String },
    #[error("page {page}: {message}")]
    Shape { page: usize, message: String },
    #[error("page {page}: refusing @odata.nextLink {link:?}: {reason}")]
    NextLink {
        page: usize,
        link: String,
        reason: String,
    },
    #[error("more than {max} pages (max_pages): is the next link looping?")]
    TooManyPages { max: usize },
}
