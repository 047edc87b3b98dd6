//! What must be used once, and what replicas share: `--store memory` (one
//! replica), `--store sqlite:PATH` (one replica that restarts),
//! `--store redis://HOST:PORT[/DB]` (any number of replicas; Valkey speaks
//! the same protocol).
//!
//! It holds:
//! - the authorization codes redeemed, until they would have expired: a
//!   code is redeemed once across every replica that shares the store;
//! - the grants: one record per consent (a refresh-token family), with the
//!   generation of its current refresh token. A refresh presents its
//!   generation: the current one rotates it, an older one (a replayed,
//!   rotated token) revokes the grant on every replica (RFC 9700 §4.14.2).
//!   The record is rewritten, not added to, so a chain of 100,000 refreshes
//!   keeps one record; it expires with the grant;
//! - whether a grant is revoked: every access token names its grant, and
//!   each `/mcp` request asks the store once whether it is live.
//!
//! One client can never exhaust it for others: live grants are bounded per
//! client ([`MAX_GRANTS_PER_CLIENT`]), and only that client's new grants
//! are refused past the bound. A store that cannot be reached fails closed
//! ([`StoreError`]): nothing is accepted, and the caller answers 503.
//!
//! Times are Unix seconds, so that replicas agree through the store.

mod memory;
mod redis_store;
mod sqlite;

use std::fmt;
use std::path::PathBuf;

/// The most live (unexpired, unrevoked) grants one client may hold; past
/// it, that client's new grants are refused.
pub const MAX_GRANTS_PER_CLIENT: usize = 1000;
/// The most codes held as used at once by the memory store (each lasts a
/// minute); past it, a redemption is refused (closed, never open).
pub const MAX_CODES: usize = 100_000;
/// The most grants the memory store holds at once.
pub const MAX_GRANTS: usize = 200_000;

/// Where the store is, as `--store` names it.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// In this process: forgotten on restart, not shared.
    Memory,
    /// A SQLite file: kept across restarts, for one replica.
    Sqlite(PathBuf),
    /// A Redis (or Valkey) server: shared by every replica that names it.
    Redis(url::Url),
}

impl std::str::FromStr for StoreUrl {
    type Err = String;

    /// `memory`, `sqlite:PATH`, `redis://[:PASSWORD@]HOST[:PORT][/DB]`,
    /// `rediss://…` or `redis+unix:///PATH`.
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s == "memory" {
            return Ok(StoreUrl::Memory);
        }
        if let Some(path) = s.strip_prefix("sqlite:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Err("--store sqlite:PATH needs a path".into());
            }
            return Ok(StoreUrl::Sqlite(PathBuf::from(path)));
        }
        if s.starts_with("redis://") || s.starts_with("rediss://") || s.starts_with("redis+unix://") {
            let url = url::Url::parse(s).map_err(|e| format!("--store: not a Redis URL: {e}"))?;
            return Ok(StoreUrl::Redis(url));
        }
        Err("--store: `memory`, `sqlite:PATH` or `redis://HOST:PORT[/DB]`".into())
    }
}

impl fmt::Display for StoreUrl {
    /// The store as a log line may name it: never its password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreUrl::Memory => f.write_str("memory"),
            StoreUrl::Sqlite(path) => write!(f, "sqlite:{}", path.display()),
            StoreUrl::Redis(url) => {
                let mut shown = url.clone();
                if shown.password().is_some() {
                    let _ = shown.set_password(Some("redacted"));
                }
                f.write_str(shown.as_str())
            }
        }
    }
}

impl fmt::Debug for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The store could not answer: nothing was decided, and nothing may be
/// accepted on its behalf. Its message names the store, never a password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the store {store} cannot be reached: {message}")]
pub struct StoreError {
    /// The store, as [`StoreUrl`]'s `Display` names it.
    pub store: String,
    /// What failed.
    pub message: String,
}

/// A redemption's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Once {
    /// The first use, anywhere the store is shared.
    First,
    /// Used before.
    Again,
    /// The store holds as many live entries as it may: refused.
    Full,
}

/// A new grant, made when a code is exchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewGrant {
    /// Its id (a UUID), written into every token of the grant.
    pub id: String,
    /// The client, as a digest of its id (a sealed id is long).
    pub client: String,
    /// The client's name, cleaned, for an operator's listing.
    pub client_name: String,
    /// The fingerprint of the TokPortal key it wraps (never the key).
    pub key_id: String,
    /// Its scope.
    pub scope: String,
    /// When it was made.
    pub created_at: i64,
    /// When it ends unless refreshed.
    pub expires_at: i64,
}

/// A grant as the store holds it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Grant {
    /// Its id.
    pub id: String,
    /// The client's digest.
    pub client: String,
    /// The client's name.
    pub client_name: String,
    /// The key's fingerprint.
    pub key_id: String,
    /// Its scope.
    pub scope: String,
    /// The generation of its current refresh token (0 for the first).
    pub generation: u64,
    /// When it was made (Unix seconds).
    pub created_at: i64,
    /// When it ends unless refreshed (Unix seconds).
    pub expires_at: i64,
    /// Whether it was revoked (kept until it would have expired, so that a
    /// replay is still recognised).
    pub revoked: bool,
}

impl Grant {
    /// Live: unexpired and not revoked.
    pub fn is_live(&self, now: i64) -> bool {
        !self.revoked && self.expires_at > now
    }
}

/// A grant's creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    /// Made.
    Created,
    /// The client holds [`MAX_GRANTS_PER_CLIENT`] live grants (or the
    /// memory store is full): refused.
    TooMany,
}

/// A refresh's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    /// The current generation: the grant now stands at this one.
    Rotated {
        /// The new generation.
        generation: u64,
    },
    /// An older generation: a rotated token used again. The grant is now
    /// revoked everywhere.
    Replayed,
    /// The grant was revoked before.
    Revoked,
    /// No such live grant (expired, or never made here).
    Unknown,
}

/// The decision every backend makes for a refresh presenting `presented`
/// to `grant` (the same rules, one place): what happens, and the grant as
/// it is to be written (`None`: unchanged).
pub(crate) fn rotation(grant: &Grant, presented: u64, now: i64, expires_at: i64) -> (Rotation, Option<Grant>) {
    if grant.revoked {
        return (Rotation::Revoked, None);
    }
    if grant.expires_at <= now {
        return (Rotation::Unknown, None);
    }
    if presented == grant.generation {
        let generation = grant.generation + 1;
        let next = Grant {
            generation,
            expires_at,
            ..grant.clone()
        };
        return (Rotation::Rotated { generation }, Some(next));
    }
    // Older (a replay) or newer (which only a forger could present): the
    // grant ends either way.
    let revoked = Grant {
        revoked: true,
        ..grant.clone()
    };
    (Rotation::Replayed, Some(revoked))
}

/// A reservation's outcome (`Store::reserve`), in thousandths of a credit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reserved {
    /// Reserved: the day's total now stands at `spent`.
    Reserved {
        /// The day's total, this reservation included.
        spent: i64,
    },
    /// Refused: the day's total (`spent`, before it) plus the amount would
    /// pass the limit. Nothing was reserved.
    Over {
        /// The day's total before it.
        spent: i64,
    },
}

/// The store.
pub struct Store {
    url: StoreUrl,
    backend: Backend,
}

enum Backend {
    Memory(memory::Memory),
    Sqlite(sqlite::Sqlite),
    Redis(redis_store::Redis),
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store").field("url", &self.url).finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (or connects to) the store `url` names.
    pub async fn open(url: &StoreUrl) -> Result<Store, StoreError> {
        let backend = match url {
            StoreUrl::Memory => Backend::Memory(memory::Memory::default()),
            StoreUrl::Sqlite(path) => Backend::Sqlite(sqlite::Sqlite::open(path).await.map_err(|e| fail(url, e))?),
            StoreUrl::Redis(redis) => {
                Backend::Redis(redis_store::Redis::connect(redis).await.map_err(|e| fail(url, e))?)
            }
        };
        Ok(Store {
            url: url.clone(),
            backend,
        })
    }

    /// A memory store.
    pub fn memory() -> Store {
        Store {
            url: StoreUrl::Memory,
            backend: Backend::Memory(memory::Memory::default()),
        }
    }

    /// Where it is (no password).
    pub fn url(&self) -> &StoreUrl {
        &self.url
    }

    /// Whether a restart forgets what it holds (used codes and tokens).
    pub fn forgets_on_restart(&self) -> bool {
        matches!(self.backend, Backend::Memory(_))
    }

    fn error(&self, message: String) -> StoreError {
        fail(&self.url, message)
    }

    /// Whether it answers (for `/readyz`).
    pub async fn ping(&self) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Memory(_) => Ok(()),
            Backend::Sqlite(s) => s.ping().await,
            Backend::Redis(r) => r.ping().await,
        }
        .map_err(|e| self.error(e))
    }

    /// Marks code `id` (valid until `expires_at`) used: [`Once::First`]
    /// only for its first redemption.
    pub async fn use_code(&self, id: &str, expires_at: i64) -> Result<Once, StoreError> {
        let now = now();
        match &self.backend {
            Backend::Memory(m) => Ok(m.use_code(id, now, expires_at)),
            Backend::Sqlite(s) => s.use_code(id, now, expires_at).await,
            Backend::Redis(r) => r.use_code(id, now, expires_at).await,
        }
        .map_err(|e| self.error(e))
    }

    /// Records a new grant, unless its client holds too many live ones.
    pub async fn create_grant(&self, grant: &NewGrant) -> Result<Created, StoreError> {
        let now = now();
        match &self.backend {
            Backend::Memory(m) => Ok(m.create_grant(grant, now)),
            Backend::Sqlite(s) => s.create_grant(grant, now).await,
            Backend::Redis(r) => r.create_grant(grant, now).await,
        }
        .map_err(|e| self.error(e))
    }

    /// A refresh of grant `id` presenting generation `presented`; a
    /// rotated grant now lasts until `expires_at`.
    pub async fn rotate(&self, id: &str, presented: u64, expires_at: i64) -> Result<Rotation, StoreError> {
        let now = now();
        match &self.backend {
            Backend::Memory(m) => Ok(m.rotate(id, presented, now, expires_at)),
            Backend::Sqlite(s) => s.rotate(id, presented, now, expires_at).await,
            Backend::Redis(r) => r.rotate(id, presented, now, expires_at).await,
        }
        .map_err(|e| self.error(e))
    }

    /// Whether grant `id` is live: one round trip.
    pub async fn is_live(&self, id: &str) -> Result<bool, StoreError> {
        let now = now();
        match &self.backend {
            Backend::Memory(m) => Ok(m.is_live(id, now)),
            Backend::Sqlite(s) => s.is_live(id, now).await,
            Backend::Redis(r) => r.is_live(id, now).await,
        }
        .map_err(|e| self.error(e))
    }

    /// Revokes grant `id`: its refresh and access tokens are refused from
    /// now on, on every replica sharing the store. Whether it was live.
    pub async fn revoke(&self, id: &str) -> Result<bool, StoreError> {
        let now = now();
        match &self.backend {
            Backend::Memory(m) => Ok(m.revoke(id, now)),
            Backend::Sqlite(s) => s.revoke(id, now).await,
            Backend::Redis(r) => r.revoke(id, now).await,
        }
        .map_err(|e| self.error(e))
    }

    /// Reserves `amount` of a daily budget (`connection`'s, on `day`),
    /// unless the day's total would pass `limit`: one atomic step, so
    /// replicas sharing the store never overspend it together. The day's
    /// record expires at `expires_at`.
    pub async fn reserve(
        &self,
        connection: &str,
        day: &str,
        amount: i64,
        limit: i64,
        expires_at: i64,
    ) -> Result<Reserved, StoreError> {
        let key = format!("{connection}:{day}");
        match &self.backend {
            Backend::Memory(m) => Ok(m.reserve(&key, amount, limit)),
            Backend::Sqlite(s) => s.reserve(&key, amount, limit, expires_at).await,
            Backend::Redis(r) => r.reserve(&key, amount, limit, expires_at).await,
        }
        .map_err(|e| self.error(e))
    }

    /// Gives back `amount` of a reservation (nothing was charged, or less).
    pub async fn release(&self, connection: &str, day: &str, amount: i64) -> Result<(), StoreError> {
        let key = format!("{connection}:{day}");
        match &self.backend {
            Backend::Memory(m) => {
                m.release(&key, amount);
                Ok(())
            }
            Backend::Sqlite(s) => s.release(&key, amount).await,
            Backend::Redis(r) => r.release(&key, amount).await,
        }
        .map_err(|e| self.error(e))
    }

    /// What `connection` has reserved or spent on `day`.
    pub async fn spent(&self, connection: &str, day: &str) -> Result<i64, StoreError> {
        let key = format!("{connection}:{day}");
        match &self.backend {
            Backend::Memory(m) => Ok(m.spent(&key)),
            Backend::Sqlite(s) => s.spent(&key).await,
            Backend::Redis(r) => r.spent(&key).await,
        }
        .map_err(|e| self.error(e))
    }

    /// Every grant not yet expired (revoked ones included), newest first.
    pub async fn grants(&self) -> Result<Vec<Grant>, StoreError> {
        let now = now();
        let mut grants = match &self.backend {
            Backend::Memory(m) => Ok(m.grants(now)),
            Backend::Sqlite(s) => s.grants(now).await,
            Backend::Redis(r) => r.grants(now).await,
        }
        .map_err(|e| self.error(e))?;
        grants.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| a.id.cmp(&b.id)));
        Ok(grants)
    }
}

fn fail(url: &StoreUrl, message: String) -> StoreError {
    StoreError {
        store: url.to_string(),
        message,
    }
}

/// Now, in Unix seconds.
pub(crate) fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn grant(id: &str, client: &str, now: i64) -> NewGrant {
        NewGrant {
            id: id.into(),
            client: client.into(),
            client_name: "Claude".into(),
            key_id: "k1".into(),
            scope: "tokportal:full".into(),
            created_at: now,
            expires_at: now + 3600,
        }
    }

    #[test]
    fn urls_parse_and_never_show_a_password() {
        assert_eq!("memory".parse::<StoreUrl>(), Ok(StoreUrl::Memory));
        assert_eq!(
            "sqlite:/tmp/x.db".parse::<StoreUrl>(),
            Ok(StoreUrl::Sqlite("/tmp/x.db".into()))
        );
        let redis: StoreUrl = "redis://:hunter2@127.0.0.1:6379/2".parse().unwrap();
        assert_eq!(redis.to_string(), "redis://:redacted@127.0.0.1:6379/2");
        assert!(!format!("{redis:?}").contains("hunter2"));
        assert!("postgres://x".parse::<StoreUrl>().is_err());
        assert!("sqlite:".parse::<StoreUrl>().is_err());
    }

    #[test]
    fn every_redis_scheme_is_a_redis_store_and_debug_shows_what_display_does() {
        for url in [
            "redis://127.0.0.1:6379/0",
            "rediss://:hunter2@cache.example:6380",
            "redis+unix:///run/redis/redis.sock",
        ] {
            let parsed: StoreUrl = url.parse().unwrap();
            assert!(matches!(parsed, StoreUrl::Redis(_)), "{url}");
            assert_eq!(format!("{parsed:?}"), parsed.to_string(), "{url}");
        }
        let tls: StoreUrl = "rediss://:hunter2@cache.example:6380".parse().unwrap();
        assert_eq!(format!("{tls:?}"), "rediss://:redacted@cache.example:6380");
        assert_eq!(format!("{:?}", Store::memory()), "Store { url: memory, .. }");
    }

    #[test]
    fn rotation_rules() {
        let now = 1_000;
        let g = Grant {
            id: "g".into(),
            client: "c".into(),
            client_name: "n".into(),
            key_id: "k".into(),
            scope: "s".into(),
            generation: 3,
            created_at: 0,
            expires_at: now + 10,
            revoked: false,
        };
        let (r, next) = rotation(&g, 3, now, now + 99);
        assert_eq!(r, Rotation::Rotated { generation: 4 });
        let next = next.unwrap();
        assert_eq!((next.generation, next.expires_at, next.revoked), (4, now + 99, false));
        let (r, next) = rotation(&g, 2, now, now + 99);
        assert_eq!(r, Rotation::Replayed);
        assert!(next.unwrap().revoked);
        assert_eq!(rotation(&g, 4, now, now + 99).0, Rotation::Replayed);
        let revoked = Grant {
            revoked: true,
            ..g.clone()
        };
        assert_eq!(rotation(&revoked, 3, now, now + 99), (Rotation::Revoked, None));
        assert_eq!(rotation(&g, 3, now + 10, now + 99), (Rotation::Unknown, None));
        assert!(g.is_live(now) && !g.is_live(now + 10) && !revoked.is_live(now));
    }

    /// The rules every backend must keep, run against each (the Redis one
    /// in tests/mcp_store.rs, against a real redis-server).
    pub(crate) async fn conformance(store: &Store) {
        let now = now();
        // A code: once.
        assert_eq!(store.use_code("code-1", now + 60).await.unwrap(), Once::First);
        assert_eq!(store.use_code("code-1", now + 60).await.unwrap(), Once::Again);
        assert_eq!(store.use_code("code-2", now + 60).await.unwrap(), Once::First);
        // A grant: rotates, and a replay revokes it.
        let g = grant("grant-1", "client-a", now);
        assert_eq!(store.create_grant(&g).await.unwrap(), Created::Created);
        assert!(store.is_live("grant-1").await.unwrap());
        assert!(!store.is_live("nope").await.unwrap());
        assert_eq!(
            store.rotate("grant-1", 0, now + 7200).await.unwrap(),
            Rotation::Rotated { generation: 1 }
        );
        assert_eq!(
            store.rotate("grant-1", 1, now + 7200).await.unwrap(),
            Rotation::Rotated { generation: 2 }
        );
        assert_eq!(
            store.rotate("grant-1", 0, now + 7200).await.unwrap(),
            Rotation::Replayed
        );
        assert!(!store.is_live("grant-1").await.unwrap(), "a replay revokes");
        assert_eq!(store.rotate("grant-1", 2, now + 7200).await.unwrap(), Rotation::Revoked);
        assert_eq!(store.rotate("nope", 0, now + 7200).await.unwrap(), Rotation::Unknown);
        // Revocation.
        assert_eq!(
            store.create_grant(&grant("grant-2", "client-a", now)).await.unwrap(),
            Created::Created
        );
        assert!(store.revoke("grant-2").await.unwrap());
        assert!(!store.is_live("grant-2").await.unwrap());
        assert!(!store.revoke("grant-2").await.unwrap(), "already revoked");
        assert_eq!(store.rotate("grant-2", 0, now + 7200).await.unwrap(), Rotation::Revoked);
        // The listing.
        let listed = store.grants().await.unwrap();
        let ids: Vec<&str> = listed.iter().map(|g| g.id.as_str()).collect();
        assert!(ids.contains(&"grant-1") && ids.contains(&"grant-2"), "{ids:?}");
        assert!(listed.iter().all(|g| g.revoked));
        // A chain of refreshes keeps one record.
        assert_eq!(
            store.create_grant(&grant("chain", "client-b", now)).await.unwrap(),
            Created::Created
        );
        for generation in 0..200 {
            assert_eq!(
                store.rotate("chain", generation, now + 7200).await.unwrap(),
                Rotation::Rotated {
                    generation: generation + 1
                }
            );
        }
        let chain: Vec<Grant> = store
            .grants()
            .await
            .unwrap()
            .into_iter()
            .filter(|g| g.id == "chain")
            .collect();
        assert_eq!(chain.len(), 1);
        assert_eq!(chain[0].generation, 200);
        // The bound is per client: a full client is refused, another is not.
        for n in 0..MAX_GRANTS_PER_CLIENT {
            assert_eq!(
                store
                    .create_grant(&grant(&format!("flood-{n}"), "greedy", now))
                    .await
                    .unwrap(),
                Created::Created,
                "{n}"
            );
        }
        assert_eq!(
            store.create_grant(&grant("one-more", "greedy", now)).await.unwrap(),
            Created::TooMany
        );
        assert_eq!(
            store.create_grant(&grant("other", "modest", now)).await.unwrap(),
            Created::Created
        );
        // A daily budget: reserved up to the limit and no further, released
        // when nothing was charged.
        let exp = now + 86_400;
        assert_eq!(
            store.reserve("conn", "2026-12-06", 4000, 10_000, exp).await.unwrap(),
            Reserved::Reserved { spent: 4000 }
        );
        assert_eq!(
            store.reserve("conn", "2026-12-06", 6000, 10_000, exp).await.unwrap(),
            Reserved::Reserved { spent: 10_000 }
        );
        assert_eq!(
            store.reserve("conn", "2026-12-06", 1, 10_000, exp).await.unwrap(),
            Reserved::Over { spent: 10_000 }
        );
        assert_eq!(
            store.reserve("conn", "2026-12-07", 1, 10_000, exp).await.unwrap(),
            Reserved::Reserved { spent: 1 },
            "another day"
        );
        store.release("conn", "2026-12-06", 6000).await.unwrap();
        assert_eq!(store.spent("conn", "2026-12-06").await.unwrap(), 4000);
        store.release("conn", "2026-12-06", 99_999).await.unwrap();
        assert_eq!(store.spent("conn", "2026-12-06").await.unwrap(), 0, "never below zero");
        assert_eq!(store.spent("other", "2026-12-06").await.unwrap(), 0);
        // Revoking one of the greedy client's makes room for one more.
        assert!(store.revoke("flood-0").await.unwrap());
        assert_eq!(
            store.create_grant(&grant("one-more", "greedy", now)).await.unwrap(),
            Created::Created
        );
    }

    #[tokio::test]
    async fn the_memory_store_keeps_the_rules() {
        let store = Store::memory();
        assert!(store.forgets_on_restart());
        conformance(&store).await;
    }

    /// Debian's `redis-server` on a socket of its own (no port to race
    /// for), or `None` where it is not installed (outside CI, which
    /// installs it and where its absence fails).
    pub(crate) fn redis_server(dir: &std::path::Path) -> Option<(std::process::Child, StoreUrl)> {
        let socket = dir.join("redis.sock");
        let child = std::process::Command::new("redis-server")
            .args(["--port", "0", "--save", "", "--appendonly", "no", "--unixsocket"])
            .arg(&socket)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        let child = match child {
            Ok(child) => child,
            Err(e) => {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "redis-server is needed in CI ({e}); .ci/run installs it"
                );
                eprintln!("SKIPPED: redis-server is not installed (apt-get install redis-server); .ci/run installs it");
                return None;
            }
        };
        for _ in 0..500 {
            if socket.exists() {
                let url = url::Url::parse(&format!("redis+unix://{}", socket.display())).ok()?;
                return Some((child, StoreUrl::Redis(url)));
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("redis-server did not open its socket");
    }

    #[tokio::test]
    async fn the_redis_store_keeps_the_rules() {
        let dir = tempfile::tempdir().unwrap();
        let Some((mut server, url)) = redis_server(dir.path()) else {
            return;
        };
        let store = Store::open(&url).await.unwrap();
        store.ping().await.unwrap();
        assert!(!store.forgets_on_restart());
        conformance(&store).await;
        // Two stores on one server (two replicas) share the rules: a code
        // used through one is used for the other.
        let other = Store::open(&url).await.unwrap();
        let now = now();
        assert_eq!(store.use_code("shared", now + 60).await.unwrap(), Once::First);
        assert_eq!(other.use_code("shared", now + 60).await.unwrap(), Once::Again);
        // Stopped: refused, named, and no password.
        let _ = server.kill();
        let _ = server.wait();
        let e = store.use_code("after", now + 60).await.unwrap_err();
        assert!(e.store.starts_with("redis+unix://"), "{e}");
        assert!(store.is_live("chain").await.is_err());
        assert!(store.ping().await.is_err(), "/readyz sees a stopped store");
        // A server that is not there at start: refused, saying why.
        let gone = StoreUrl::Redis(
            url::Url::parse(&format!("redis+unix://{}", dir.path().join("none.sock").display())).unwrap(),
        );
        let e = Store::open(&gone).await.unwrap_err();
        assert!(e.message.contains("No such file or directory"), "{e}");
    }

    #[tokio::test]
    async fn the_sqlite_store_keeps_the_rules() {
        let dir = tempfile::tempdir().unwrap();
        let url = StoreUrl::Sqlite(dir.path().join("store.db"));
        let store = Store::open(&url).await.unwrap();
        assert!(!store.forgets_on_restart());
        conformance(&store).await;
    }
}
