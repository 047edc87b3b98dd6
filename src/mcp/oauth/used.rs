//! One use per replica: the codes and refresh tokens already redeemed here,
//! kept until they would have expired anyway, in a bounded table.
//!
//! Replicas share no store, so a code could be redeemed once on each
//! replica within its short life (60 s by default); each redemption still
//! needs the PKCE verifier, which only the client that started the flow
//! holds. A load balancer with affinity for `/token` (by client) closes
//! even that; the README says so.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// The most identifiers held; past it, expired ones are dropped, and if
/// none has expired, a redemption is refused (closed, never open).
pub(crate) const CAPACITY: usize = 100_000;

/// What happened to a redemption.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Redeemed {
    /// The first use here.
    First,
    /// Used before.
    Again,
    /// The table is full of live entries: refused.
    Full,
}

/// The identifiers used here.
#[derive(Debug, Default)]
pub(crate) struct Used {
    seen: Mutex<HashMap<String, Instant>>,
}

impl Used {
    /// Marks `id` used until `until`.
    pub(crate) fn redeem(&self, id: &str, until: Instant) -> Redeemed {
        let Ok(mut seen) = self.seen.lock() else {
            return Redeemed::Full;
        };
        let now = Instant::now();
        if let Some(expiry) = seen.get(id)
            && *expiry > now
        {
            return Redeemed::Again;
        }
        if seen.len() >= CAPACITY {
            seen.retain(|_, expiry| *expiry > now);
            if seen.len() >= CAPACITY {
                return Redeemed::Full;
            }
        }
        seen.insert(id.to_owned(), until);
        Redeemed::First
    }

    /// How many identifiers are held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.seen.lock().map(|s| s.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn once_only_until_it_would_have_expired() {
        let used = Used::default();
        let soon = Instant::now() + Duration::from_millis(50);
        assert_eq!(used.redeem("a", soon), Redeemed::First);
        assert_eq!(used.redeem("a", soon), Redeemed::Again);
        assert_eq!(used.redeem("b", soon), Redeemed::First);
        assert_eq!(used.len(), 2);
    }
}
