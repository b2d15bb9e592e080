//! State that belongs to one client connection and is shared by that connection's requests
//! (one at a time over HTTP/1.1, several at once over HTTP/2): the token memo, the GUID header
//! values, the upstream response timer.

use std::sync::{Mutex, MutexGuard};

/// `T` behind an uncontended lock. A clone starts from `T::default()`: the state of one
/// connection is never carried over to another.
#[derive(Default)]
pub struct PerConnection<T>(Mutex<T>);

impl<T> PerConnection<T> {
    /// The state; a panic while it was held leaves it as it was (each use overwrites or
    /// checks what it reads).
    pub fn lock(&self) -> MutexGuard<'_, T> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<T: Default> Clone for PerConnection<T> {
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl<T> std::fmt::Debug for PerConnection<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(std::any::type_name::<Self>())
    }
}
