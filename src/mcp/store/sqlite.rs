//! The store in a SQLite file (`--store sqlite:PATH`): one replica that
//! restarts keeps what was used and revoked. Each operation is one
//! transaction (`BEGIN IMMEDIATE`), run off the async threads; the file is
//! created 0600 (it names grants and key fingerprints, never a key).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::{Created, Grant, MAX_GRANTS_PER_CLIENT, NewGrant, Once, Reserved, Rotation, rotation};

pub(super) struct Sqlite {
    connection: Arc<Mutex<Connection>>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS codes (
    id TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS grants (
    id TEXT PRIMARY KEY,
    client TEXT NOT NULL,
    client_name TEXT NOT NULL,
    key_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    generation INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS grants_by_client ON grants (client, expires_at);
CREATE TABLE IF NOT EXISTS budgets (
    key TEXT PRIMARY KEY,
    spent INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
";

impl Sqlite {
    pub(super) async fn open(path: &Path) -> Result<Sqlite, String> {
        let path: PathBuf = path.to_owned();
        let connection = tokio::task::spawn_blocking(move || open(&path, BUSY_TIMEOUT))
            .await
            .map_err(|e| e.to_string())??;
        Ok(Sqlite {
            connection: Arc::new(Mutex::new(connection)),
        })
    }

    /// Runs `work` on the connection, off the async threads.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, String> {
        let connection = Arc::clone(&self.connection);
        tokio::task::spawn_blocking(move || {
            let mut connection = connection.lock().unwrap_or_else(|p| p.into_inner());
            work(&mut connection)
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
    }

    pub(super) async fn ping(&self) -> Result<(), String> {
        self.run(|c| c.query_row("SELECT 1", [], |_| Ok(()))).await
    }

    pub(super) async fn use_code(&self, id: &str, now: i64, expires_at: i64) -> Result<Once, String> {
        let id = id.to_owned();
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute("DELETE FROM codes WHERE expires_at <= ?1", params![now])?;
            let inserted = tx.execute(
                "INSERT INTO codes (id, expires_at) VALUES (?1, ?2) ON CONFLICT (id) DO NOTHING",
                params![id, expires_at],
            )?;
            tx.commit()?;
            Ok(if inserted == 1 { Once::First } else { Once::Again })
        })
        .await
    }

    pub(super) async fn create_grant(&self, grant: &NewGrant, now: i64) -> Result<Created, String> {
        let g = grant.clone();
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute("DELETE FROM grants WHERE expires_at <= ?1", params![now])?;
            let live: i64 = tx.query_row(
                "SELECT count(*) FROM grants WHERE client = ?1 AND expires_at > ?2 AND revoked = 0",
                params![g.client, now],
                |r| r.get(0),
            )?;
            if live as usize >= MAX_GRANTS_PER_CLIENT {
                return Ok(Created::TooMany);
            }
            tx.execute(
                "INSERT INTO grants (id, client, client_name, key_id, scope, generation, created_at, expires_at, revoked)
                 VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, ?7, 0)",
                params![g.id, g.client, g.client_name, g.key_id, g.scope, g.created_at, g.expires_at],
            )?;
            tx.commit()?;
            Ok(Created::Created)
        })
        .await
    }

    pub(super) async fn rotate(&self, id: &str, presented: u64, now: i64, expires_at: i64) -> Result<Rotation, String> {
        let id = id.to_owned();
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let Some(grant) = read(&tx, &id)? else {
                return Ok(Rotation::Unknown);
            };
            let (outcome, next) = rotation(&grant, presented, now, expires_at);
            if let Some(next) = next {
                tx.execute(
                    "UPDATE grants SET generation = ?2, expires_at = ?3, revoked = ?4 WHERE id = ?1",
                    params![id, next.generation as i64, next.expires_at, next.revoked],
                )?;
            }
            tx.commit()?;
            Ok(outcome)
        })
        .await
    }

    pub(super) async fn is_live(&self, id: &str, now: i64) -> Result<bool, String> {
        let id = id.to_owned();
        self.run(move |c| {
            c.query_row(
                "SELECT 1 FROM grants WHERE id = ?1 AND revoked = 0 AND expires_at > ?2",
                params![id, now],
                |_| Ok(()),
            )
            .optional()
            .map(|found| found.is_some())
        })
        .await
    }

    pub(super) async fn revoke(&self, id: &str, now: i64) -> Result<bool, String> {
        let id = id.to_owned();
        self.run(move |c| {
            c.execute(
                "UPDATE grants SET revoked = 1 WHERE id = ?1 AND revoked = 0 AND expires_at > ?2",
                params![id, now],
            )
            .map(|changed| changed == 1)
        })
        .await
    }

    pub(super) async fn reserve(
        &self,
        key: &str,
        amount: i64,
        limit: i64,
        expires_at: i64,
    ) -> Result<Reserved, String> {
        let key = key.to_owned();
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute("DELETE FROM budgets WHERE expires_at <= ?1", params![super::now()])?;
            let spent: i64 = tx
                .query_row("SELECT spent FROM budgets WHERE key = ?1", params![key], |r| r.get(0))
                .optional()?
                .unwrap_or(0);
            if spent.saturating_add(amount) > limit {
                return Ok(Reserved::Over { spent });
            }
            tx.execute(
                "INSERT INTO budgets (key, spent, expires_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (key) DO UPDATE SET spent = ?2",
                params![key, spent + amount, expires_at],
            )?;
            tx.commit()?;
            Ok(Reserved::Reserved { spent: spent + amount })
        })
        .await
    }

    pub(super) async fn release(&self, key: &str, amount: i64) -> Result<(), String> {
        let key = key.to_owned();
        self.run(move |c| {
            c.execute(
                "UPDATE budgets SET spent = max(spent - ?2, 0) WHERE key = ?1",
                params![key, amount],
            )
            .map(|_| ())
        })
        .await
    }

    pub(super) async fn spent(&self, key: &str) -> Result<i64, String> {
        let key = key.to_owned();
        self.run(move |c| {
            c.query_row("SELECT spent FROM budgets WHERE key = ?1", params![key], |r| r.get(0))
                .optional()
                .map(|s| s.unwrap_or(0))
        })
        .await
    }

    pub(super) async fn grants(&self, now: i64) -> Result<Vec<Grant>, String> {
        self.run(move |c| {
            let mut statement = c.prepare(
                "SELECT id, client, client_name, key_id, scope, generation, created_at, expires_at, revoked
                 FROM grants WHERE expires_at > ?1",
            )?;
            let rows = statement.query_map(params![now], row)?;
            rows.collect()
        })
        .await
    }
}

/// How long a statement waits for another connection's lock before SQLite
/// answers "busy".
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens (creating) the store's file, waiting `busy_timeout` for another
/// connection's lock at each statement ([`BUSY_TIMEOUT`]; shorter in tests).
fn open(path: &Path, busy_timeout: Duration) -> Result<Connection, String> {
    let shown = path.display();
    #[cfg(unix)]
    if !path.exists() {
        // Created 0600 before SQLite opens it: it names grants and keys' fingerprints.
        use std::os::unix::fs::OpenOptionsExt;
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(_) => {}
            // Another replica starting on the same file made it first.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(format!("cannot create {shown}: {e}")),
        }
    }
    let connection = Connection::open(path).map_err(|e| format!("cannot open {shown}: {e}"))?;
    connection
        .busy_timeout(busy_timeout)
        .map_err(|e| format!("{shown}: {e}"))?;
    // Two replicas opening a new file at once: SQLite answers "locked" to
    // one of them at the switch to WAL without waiting (it would deadlock);
    // or another connection holds the file past the busy timeout. Either
    // way SQLite answers "busy", and the switch is tried again, at most
    // WAL_TRIES times (try_again refuses the last try, so the loop ends in
    // the break or the return; the range bounds it all the same). Any
    // other error is final.
    for tries in 0..WAL_TRIES {
        match connection.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;") {
            Ok(()) => break,
            Err(e) if try_again(tries, &e) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(format!("{shown}: {e}")),
        }
    }
    connection
        .execute_batch(SCHEMA)
        .map_err(|e| format!("{shown} is not a tokportal-mcp store: {e}"))?;
    Ok(connection)
}

/// The switch to WAL is tried this many times at most.
const WAL_TRIES: u32 = 100;

/// Whether the switch to WAL is tried again after `error` on try `tries`
/// (from 0): only when SQLite answered "busy", and a bounded number of times.
fn try_again(tries: u32, error: &rusqlite::Error) -> bool {
    tries + 1 < WAL_TRIES && error.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy)
}

fn read(c: &Connection, id: &str) -> rusqlite::Result<Option<Grant>> {
    c.query_row(
        "SELECT id, client, client_name, key_id, scope, generation, created_at, expires_at, revoked
         FROM grants WHERE id = ?1",
        params![id],
        row,
    )
    .optional()
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Grant> {
    Ok(Grant {
        id: r.get(0)?,
        client: r.get(1)?,
        client_name: r.get(2)?,
        key_id: r.get(3)?,
        scope: r.get(4)?,
        generation: r.get::<_, i64>(5)?.max(0) as u64,
        created_at: r.get(6)?,
        expires_at: r.get(7)?,
        revoked: r.get(8)?,
    })
}

#[cfg(test)]
mod tests {
    use super::super::tests::grant;
    use super::super::{Store, StoreUrl};
    use super::*;

    /// The switch to WAL is tried again only on "busy", 100 times in all.
    #[test]
    fn only_a_busy_answer_is_tried_again_and_a_bounded_number_of_times() {
        let sqlite = |code| rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None);
        let busy = sqlite(rusqlite::ffi::SQLITE_BUSY);
        let corrupt = sqlite(rusqlite::ffi::SQLITE_CORRUPT);
        assert!(try_again(0, &busy));
        assert!(try_again(98, &busy), "the 99th try is followed by a 100th");
        assert!(!try_again(99, &busy), "100 tries in all");
        assert!(!try_again(0, &corrupt), "another error is not tried again");
        let tries = (0..).take_while(|n| try_again(*n, &busy)).count();
        assert_eq!(tries + 1, WAL_TRIES as usize);
    }

    /// A file that is not a database is refused at once, by the switch to
    /// WAL: SQLite's "not a database" is no "busy", and is not tried again
    /// (tried again, it would be refused WAL_TRIES times, then by the
    /// schema step, in other words).
    #[test]
    fn a_file_that_is_not_a_database_is_refused_not_tried_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("garbage.db");
        std::fs::write(&path, "not a SQLite database, only text; ".repeat(200)).unwrap();
        let e = open(&path, BUSY_TIMEOUT).unwrap_err();
        assert_eq!(e, format!("{}: file is not a database", path.display()));
    }

    /// Another connection holding the file locked for ten busy timeouts:
    /// SQLite answers "busy" at the switch to WAL, and the switch is tried
    /// again until the lock is let go, then the store opens.
    #[test]
    fn a_lock_held_past_the_busy_timeout_is_waited_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("locked.db");
        let holder = Connection::open(&path).unwrap();
        holder
            .execute_batch("CREATE TABLE kept (x INTEGER); BEGIN EXCLUSIVE; INSERT INTO kept VALUES (1);")
            .unwrap();
        let mode: String = holder.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
        assert_eq!(
            mode, "delete",
            "a rollback journal: an exclusive lock shuts readers out"
        );
        // What `open` meets while the lock is held.
        let probe = Connection::open(&path).unwrap();
        probe.busy_timeout(Duration::ZERO).unwrap();
        let busy = probe.execute_batch("PRAGMA journal_mode = WAL;").unwrap_err();
        assert_eq!(
            busy.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DatabaseBusy),
            "{busy}"
        );
        drop(probe);
        let busy_timeout = Duration::from_millis(50);
        let release = std::thread::spawn(move || {
            std::thread::sleep(busy_timeout * 10);
            holder.execute_batch("COMMIT;").unwrap();
        });
        let opened = open(&path, busy_timeout);
        release.join().unwrap();
        let connection = opened.unwrap();
        let mode: String = connection.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
        assert_eq!(mode, "wal");
        let kept: i64 = connection
            .query_row("SELECT count(*) FROM kept", [], |r| r.get(0))
            .unwrap();
        assert_eq!(kept, 1, "the holder's transaction was committed first");
    }

    /// A restart (a new store on the same file) keeps what was used and
    /// revoked: a used code, a rotated refresh, a revoked grant.
    #[tokio::test]
    async fn a_restart_forgets_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let url = StoreUrl::Sqlite(dir.path().join("s.db"));
        let now = super::super::now();
        {
            let store = Store::open(&url).await.unwrap();
            assert_eq!(store.use_code("c", now + 60).await.unwrap(), Once::First);
            store.create_grant(&grant("rotated", "x", now)).await.unwrap();
            store.rotate("rotated", 0, now + 3600).await.unwrap();
            store.create_grant(&grant("revoked", "x", now)).await.unwrap();
            store.revoke("revoked").await.unwrap();
        }
        let store = Store::open(&url).await.unwrap();
        assert_eq!(store.use_code("c", now + 60).await.unwrap(), Once::Again);
        assert_eq!(
            store.rotate("rotated", 0, now + 3600).await.unwrap(),
            Rotation::Replayed
        );
        assert!(!store.is_live("revoked").await.unwrap());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("s.db")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}

#[cfg(all(test, unix))]
mod open_tests {
    use super::super::{Store, StoreUrl};

    /// A file another replica made between the check and the creation is
    /// opened, not refused (a dangling symlink stands in for that replica:
    /// `exists` does not see the file, `create_new` finds the name taken);
    /// any other failure to create the file is refused, naming it.
    #[tokio::test]
    async fn a_file_made_meanwhile_is_opened_and_other_failures_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("link.db");
        std::os::unix::fs::symlink(dir.path().join("made-by-the-other-replica.db"), &link).unwrap();
        assert!(!link.exists());
        let store = Store::open(&StoreUrl::Sqlite(link)).await.unwrap();
        store.ping().await.unwrap();
        let missing = dir.path().join("no-such-folder").join("s.db");
        let e = Store::open(&StoreUrl::Sqlite(missing.clone())).await.unwrap_err();
        assert!(
            e.message.starts_with(&format!("cannot create {}", missing.display())),
            "{e}"
        );
    }
}

#[cfg(test)]
mod shared_tests {
    use super::super::tests::grant;
    use super::super::{Store, StoreUrl};

    /// Two stores on one file (two replicas): a grant made through one is
    /// live for the other, and revoked for both.
    #[tokio::test]
    async fn two_stores_on_one_file_share_their_grants() {
        let dir = tempfile::tempdir().unwrap();
        let url = StoreUrl::Sqlite(dir.path().join("shared.db"));
        let (a, b) = tokio::join!(Store::open(&url), Store::open(&url));
        let (a, b) = (a.unwrap(), b.unwrap());
        let now = super::super::now();
        a.create_grant(&grant("g", "c", now)).await.unwrap();
        assert!(b.is_live("g").await.unwrap());
        b.revoke("g").await.unwrap();
        assert!(!a.is_live("g").await.unwrap());
    }
}
