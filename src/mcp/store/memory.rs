//! The store in this process (`--store memory`): one replica's, forgotten
//! on restart. Bounded: [`MAX_CODES`] codes, [`MAX_GRANTS`] grants, and
//! [`MAX_GRANTS_PER_CLIENT`] live grants per client; expired entries are
//! dropped when room is needed.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use super::{
    Created, Grant, MAX_CODES, MAX_GRANTS, MAX_GRANTS_PER_CLIENT, NewGrant, Once, Reserved, Rotation, rotation,
};

#[derive(Default)]
pub(super) struct Memory {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Used codes and when they would have expired.
    codes: HashMap<String, i64>,
    grants: HashMap<String, Grant>,
    /// Each client's grants, by id.
    by_client: HashMap<String, HashSet<String>>,
    /// Daily budgets: `connection:day` to thousandths of a credit. One
    /// entry per connection and day; days before yesterday are dropped when
    /// a new day's first is made.
    budgets: HashMap<String, i64>,
}

impl Inner {
    /// Drops the grants that have expired.
    fn drop_expired_grants(&mut self, now: i64) {
        let expired: Vec<(String, String)> = self
            .grants
            .values()
            .filter(|g| g.expires_at <= now)
            .map(|g| (g.id.clone(), g.client.clone()))
            .collect();
        for (id, client) in expired {
            self.forget(&id, &client);
        }
    }

    fn forget(&mut self, id: &str, client: &str) {
        self.grants.remove(id);
        if let Some(ids) = self.by_client.get_mut(client) {
            ids.remove(id);
            if ids.is_empty() {
                self.by_client.remove(client);
            }
        }
    }
}

impl Memory {
    /// The table, even after a panic elsewhere held it (its data stay whole:
    /// every change is one insert or remove).
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn use_code(&self, id: &str, now: i64, expires_at: i64) -> Once {
        let mut inner = self.lock();
        if inner.codes.get(id).is_some_and(|until| *until > now) {
            return Once::Again;
        }
        if inner.codes.len() >= MAX_CODES {
            inner.codes.retain(|_, until| *until > now);
            if inner.codes.len() >= MAX_CODES {
                return Once::Full;
            }
        }
        inner.codes.insert(id.to_owned(), expires_at);
        Once::First
    }

    pub(super) fn create_grant(&self, grant: &NewGrant, now: i64) -> Created {
        let mut inner = self.lock();
        let live = |inner: &Inner| {
            inner.by_client.get(&grant.client).map_or(0, |ids| {
                ids.iter()
                    .filter(|id| inner.grants.get(*id).is_some_and(|g| g.is_live(now)))
                    .count()
            })
        };
        if live(&inner) >= MAX_GRANTS_PER_CLIENT {
            return Created::TooMany;
        }
        if inner.grants.len() >= MAX_GRANTS {
            inner.drop_expired_grants(now);
            if inner.grants.len() >= MAX_GRANTS {
                return Created::TooMany;
            }
        }
        inner.grants.insert(
            grant.id.clone(),
            Grant {
                id: grant.id.clone(),
                client: grant.client.clone(),
                client_name: grant.client_name.clone(),
                key_id: grant.key_id.clone(),
                scope: grant.scope.clone(),
                generation: 0,
                created_at: grant.created_at,
                expires_at: grant.expires_at,
                revoked: false,
            },
        );
        inner
            .by_client
            .entry(grant.client.clone())
            .or_default()
            .insert(grant.id.clone());
        Created::Created
    }

    pub(super) fn rotate(&self, id: &str, presented: u64, now: i64, expires_at: i64) -> Rotation {
        let mut inner = self.lock();
        let Some(grant) = inner.grants.get(id) else {
            return Rotation::Unknown;
        };
        let (outcome, next) = rotation(grant, presented, now, expires_at);
        if let Some(next) = next {
            inner.grants.insert(id.to_owned(), next);
        }
        outcome
    }

    pub(super) fn is_live(&self, id: &str, now: i64) -> bool {
        self.lock().grants.get(id).is_some_and(|g| g.is_live(now))
    }

    pub(super) fn revoke(&self, id: &str, now: i64) -> bool {
        let mut inner = self.lock();
        match inner.grants.get_mut(id) {
            Some(g) if g.is_live(now) => {
                g.revoked = true;
                true
            }
            _ => false,
        }
    }

    pub(super) fn reserve(&self, key: &str, amount: i64, limit: i64) -> Reserved {
        let mut inner = self.lock();
        if !inner.budgets.contains_key(key) {
            // A new day's first reservation: the days before yesterday are
            // over (ISO dates compare as text).
            let day = key.rsplit(':').next().unwrap_or_default();
            if let Ok(date) = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d")
                && let Some(yesterday) = date.pred_opt()
            {
                let keep_from = yesterday.format("%Y-%m-%d").to_string();
                inner
                    .budgets
                    .retain(|k, _| k.rsplit(':').next().is_some_and(|d| d >= keep_from.as_str()));
            }
        }
        let spent = inner.budgets.get(key).copied().unwrap_or(0);
        if spent.saturating_add(amount) > limit {
            return Reserved::Over { spent };
        }
        inner.budgets.insert(key.to_owned(), spent + amount);
        Reserved::Reserved { spent: spent + amount }
    }

    pub(super) fn release(&self, key: &str, amount: i64) {
        if let Some(spent) = self.lock().budgets.get_mut(key) {
            *spent = (*spent - amount).max(0);
        }
    }

    pub(super) fn spent(&self, key: &str) -> i64 {
        self.lock().budgets.get(key).copied().unwrap_or(0)
    }

    pub(super) fn grants(&self, now: i64) -> Vec<Grant> {
        self.lock()
            .grants
            .values()
            .filter(|g| g.expires_at > now)
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::grant;
    use super::*;

    #[test]
    fn codes_are_bounded_and_expired_ones_make_room() {
        let m = Memory::default();
        for n in 0..MAX_CODES {
            assert_eq!(m.use_code(&format!("c{n}"), 100, 101), Once::First);
        }
        assert_eq!(m.use_code("late", 100, 161), Once::Full, "full of live codes: closed");
        assert_eq!(m.use_code("late", 101, 161), Once::First, "expired ones make room");
        assert_eq!(m.use_code("late", 102, 161), Once::Again);
    }

    /// A used code is held until the second it expires, not in it (as
    /// SQLite's `expires_at <= now` has it).
    #[test]
    fn a_code_is_held_until_its_expiry() {
        let m = Memory::default();
        assert_eq!(m.use_code("c", 100, 160), Once::First);
        assert_eq!(m.use_code("c", 159, 160), Once::Again);
        assert_eq!(m.use_code("c", 160, 220), Once::First);
    }

    /// At most [`MAX_GRANTS`] grants: full of live ones, a new grant is
    /// refused (closed, never open); expired ones are dropped to make room,
    /// nothing of them left behind.
    #[test]
    fn grants_are_bounded_and_expired_ones_make_room() {
        let m = Memory::default();
        {
            // All but the last as creations would leave them (one grant a
            // client: the per-client bound stays out of the way), made
            // directly: a creation each would take long.
            let mut inner = m.lock();
            for n in 0..MAX_GRANTS - 1 {
                let (id, client) = (format!("g{n}"), format!("c{n}"));
                let g = Grant {
                    id: id.clone(),
                    client: client.clone(),
                    client_name: "Claude".into(),
                    key_id: "k1".into(),
                    scope: "tokportal:full".into(),
                    generation: 0,
                    created_at: 0,
                    expires_at: 10,
                    revoked: false,
                };
                inner.grants.insert(id.clone(), g);
                inner.by_client.entry(client).or_default().insert(id);
            }
        }
        let mut last = grant("last", "last", 0);
        last.expires_at = 10;
        assert_eq!(m.create_grant(&last, 0), Created::Created, "the last place");
        assert_eq!(
            m.create_grant(&grant("late", "other", 9), 9),
            Created::TooMany,
            "full of live grants: closed"
        );
        assert_eq!(
            m.create_grant(&grant("late", "other", 10), 10),
            Created::Created,
            "expired ones make room"
        );
        let inner = m.lock();
        assert_eq!((inner.grants.len(), inner.by_client.len()), (1, 1));
        assert!(inner.grants.contains_key("late") && inner.by_client.contains_key("other"));
    }

    /// A new day's first reservation forgets the days before yesterday.
    #[test]
    fn a_new_day_forgets_the_days_before_yesterday() {
        let m = Memory::default();
        assert_eq!(m.reserve("conn:2026-12-01", 5, 10), Reserved::Reserved { spent: 5 });
        assert_eq!(m.reserve("conn:2026-12-02", 6, 10), Reserved::Reserved { spent: 6 });
        assert_eq!(m.spent("conn:2026-12-01"), 5, "yesterday is kept");
        assert_eq!(m.reserve("conn:2026-12-03", 7, 10), Reserved::Reserved { spent: 7 });
        assert_eq!(
            (
                m.spent("conn:2026-12-01"),
                m.spent("conn:2026-12-02"),
                m.spent("conn:2026-12-03")
            ),
            (0, 6, 7)
        );
    }

    #[test]
    fn expired_grants_leave_and_free_their_clients_room() {
        let m = Memory::default();
        for n in 0..MAX_GRANTS_PER_CLIENT {
            let mut g = grant(&format!("g{n}"), "c", 0);
            g.expires_at = 10;
            assert_eq!(m.create_grant(&g, 0), Created::Created);
        }
        assert_eq!(m.create_grant(&grant("late", "c", 0), 5), Created::TooMany);
        assert_eq!(m.create_grant(&grant("late", "c", 10), 10), Created::Created);
        assert!(m.grants(10).iter().all(|g| g.id == "late"));
    }
}
