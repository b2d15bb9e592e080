//! The last token a connection presented, with its verified identity. A keep-alive client
//! (a browser, an API client, a load tool) repeats the same token on every request of a
//! connection, so most requests are answered here, without hashing the token or touching the
//! shared cache. The token is compared in full; the identity is served only before its
//! `exp`, and only while the key set it was verified under is current (a JWKS change that drops
//! a key bumps the authenticator's generation, which empties every memo).

use std::sync::Arc;

use super::Identity;
use crate::clock::UnixMillis;
use crate::per_connection::PerConnection;

struct Memo {
    generation: u64,
    token: Box<[u8]>,
    identity: Arc<Identity>,
}

/// One per connection (see `proxy::ConnInfo`); a clone starts empty.
#[derive(Default, Clone, Debug)]
pub struct TokenMemo(PerConnection<Option<Memo>>);

impl TokenMemo {
    /// The remembered identity for exactly these token bytes, if still valid at `now` under
    /// `generation`.
    pub(crate) fn get(
        &self,
        token: &[u8],
        generation: u64,
        now: UnixMillis,
    ) -> Option<Arc<Identity>> {
        let memo = self.0.lock();
        match &*memo {
            Some(m)
                if m.generation == generation
                    && now <= m.identity.expires_at
                    && *m.token == *token =>
            {
                Some(m.identity.clone())
            }
            _ => None,
        }
    }

    pub(crate) fn set(&self, token: &[u8], generation: u64, identity: Arc<Identity>) {
        *self.0.lock() = Some(Memo {
            generation,
            token: token.into(),
            identity,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(exp: i64) -> Arc<Identity> {
        Arc::new(Identity::expiring(exp))
    }

    #[test]
    fn serves_only_the_same_token_in_time_and_generation() {
        let memo = TokenMemo::default();
        assert!(memo.get(b"a.b.c", 0, UnixMillis(0)).is_none());
        memo.set(b"a.b.c", 3, identity(1_000));
        assert!(memo.get(b"a.b.c", 3, UnixMillis(1_000)).is_some());
        assert!(
            memo.get(b"a.b.d", 3, UnixMillis(10)).is_none(),
            "other token"
        );
        assert!(
            memo.get(b"a.b.c", 3, UnixMillis(1_001)).is_none(),
            "past exp"
        );
        assert!(
            memo.get(b"a.b.c", 4, UnixMillis(10)).is_none(),
            "keys changed"
        );
        assert!(
            memo.clone().get(b"a.b.c", 3, UnixMillis(10)).is_none(),
            "clones start empty"
        );
    }
}
