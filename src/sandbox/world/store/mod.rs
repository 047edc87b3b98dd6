//! The sandbox's state on disk (`tokportal sandbox --state FILE`): one
//! SQLite database that a user can open with `sqlite3`.
//!
//! Memory stays the working copy; the file is what survives. Every change
//! a request makes, and the answer kept under its idempotency key, is
//! written in one transaction, committed before the answer is sent (WAL,
//! `synchronous = NORMAL`: a process killed at any point loses nothing that
//! was answered; power loss is out of scope). Only what changed is written:
//! a key's bundles by the ones a request touched, its other resources by
//! id and a hash of their content, its logs (transactions, uploads,
//! reports) by what was appended or dropped.
//!
//! A file is refused, and left as it was, when it is not SQLite, not this
//! sandbox's (`PRAGMA application_id`), corrupt (`PRAGMA quick_check`),
//! newer than this build (`PRAGMA user_version`), or in use by another
//! sandbox (each holds an advisory lock, `flock`, on the file for its life,
//! released by the kernel even on kill -9; SQLite's own locks are apart, so
//! `sqlite3` can read the file while the sandbox runs), or when its schema
//! holds an object the sandbox never makes (a view, a trigger, a table or
//! an index: a crafted file). It is opened defensively (SQLite's defensive
//! flag, `trusted_schema` off), and it and its `-wal` and `-shm` are made
//! 0600 (they hold webhook secrets). An
//! older schema is migrated in one transaction after a copy of the file is
//! kept beside it (`FILE.v2.bak` for a file of schema 2).
//!
//! The schema (version 3). Every row is a key's: `keys.n` numbers a key,
//! and its rows name it by `key_n`; `key` is the SHA-256 of the API key,
//! never the key, `fingerprint` its first 8 hex digits. Every table's `n`
//! is its rows' write order. `bundles` and `records`, the tables that grow,
//! have no other index: a create appends to them.
//!
//! | table | columns |
//! |---|---|
//! | `keys` | `n`, `key` (unique), `fingerprint`, `balance`, `profile` (JSON), `desk` (JSON: the clock, its pending steps, flags, held steps), `created_at` |
//! | `bundles` | `n`, `key_n`, `id`, `body` (JSON: the bundle with its `account` and `videos`) |
//! | `accounts`, `comment_tasks` | `n`, `key_n`, `id`, `body`; unique (`key_n`, `id`) |
//! | `webhook_endpoints` | `n`, `key_n`, `id`, `body`, `secret`; unique (`key_n`, `id`) |
//! | `deliveries` | `n`, `key_n`, `id`, `body`, `endpoint_id`, `payload` (the envelope as sent), `tries` (JSON); unique (`key_n`, `id`) |
//! | `records` | `n`, `key_n`, `kind` (`transactions`, `uploads`, `reports`, `edit_requests`, `refreshed`), `id`, `body` |
//! | `replays` | `n`, `key_n`, `idempotency_key`, `fingerprint`, `status`, `content_type`, `body`, `kept_at`; unique (`key_n`, `idempotency_key`) |
//! | `meta` | `name`, `value`: `created_by`, `contract_version` |
//!
//! Version 1 had no `replays`; version 2 keyed every row by (`key`, `id`).
//!
//! ```sql
//! SELECT id, json_extract(body, '$.status') FROM bundles WHERE key_n = (SELECT n FROM keys WHERE fingerprint = '849ee8f1');
//! ```
//!
//! Here: opening, checking, migrating and the writer thread; `load` reads
//! the file back at start, one part per table; `write` makes a key's
//! changes into statements, one part per table or kind of log.

mod load;
mod write;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags, params};
use serde_json::Value;

use super::replays::Stored;
use super::state::{Delivery, Tenant, stamp, str_of};

/// `PRAGMA application_id` of this sandbox's files ("TOKP").
pub(in crate::sandbox) const APPLICATION_ID: i32 = 0x544f_4b50;
/// The schema version this build writes.
pub(in crate::sandbox) const SCHEMA_VERSION: i32 = 3;

/// Each schema version's statements, from an empty file up.
const MIGRATIONS: &[(i32, &str)] = &[
    (
        1,
        "CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
         CREATE TABLE keys (key TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, balance REAL NOT NULL,
             profile TEXT NOT NULL, desk TEXT NOT NULL, created_at TEXT NOT NULL);
         CREATE INDEX keys_by_fingerprint ON keys (fingerprint);
         CREATE TABLE bundles (key TEXT NOT NULL, id TEXT NOT NULL, seq INTEGER NOT NULL, body TEXT NOT NULL,
             PRIMARY KEY (key, id)) WITHOUT ROWID;
         CREATE TABLE accounts (key TEXT NOT NULL, id TEXT NOT NULL, seq INTEGER NOT NULL, body TEXT NOT NULL,
             PRIMARY KEY (key, id)) WITHOUT ROWID;
         CREATE TABLE comment_tasks (key TEXT NOT NULL, id TEXT NOT NULL, seq INTEGER NOT NULL, body TEXT NOT NULL,
             PRIMARY KEY (key, id)) WITHOUT ROWID;
         CREATE TABLE webhook_endpoints (key TEXT NOT NULL, id TEXT NOT NULL, seq INTEGER NOT NULL,
             body TEXT NOT NULL, secret TEXT NOT NULL, PRIMARY KEY (key, id)) WITHOUT ROWID;
         CREATE TABLE deliveries (key TEXT NOT NULL, id TEXT NOT NULL, seq INTEGER NOT NULL, body TEXT NOT NULL,
             endpoint_id TEXT NOT NULL, payload BLOB NOT NULL, tries TEXT NOT NULL, PRIMARY KEY (key, id)) WITHOUT ROWID;
         CREATE TABLE records (key TEXT NOT NULL, kind TEXT NOT NULL, id TEXT NOT NULL, seq INTEGER NOT NULL,
             body TEXT NOT NULL, PRIMARY KEY (key, kind, id)) WITHOUT ROWID;",
    ),
    (
        2,
        "CREATE TABLE replays (key TEXT NOT NULL, idempotency_key TEXT NOT NULL, fingerprint BLOB NOT NULL,
             status INTEGER NOT NULL, content_type TEXT, body BLOB NOT NULL, kept_at TEXT NOT NULL,
             PRIMARY KEY (key, idempotency_key)) WITHOUT ROWID;",
    ),
    (
        // Keys numbered, rows in write order: version 2's rows were keyed
        // by (64-hex key, random id) in WITHOUT ROWID trees, so each create
        // dirtied a page anywhere in three trees; here a create appends to
        // the end of `bundles` and `records`, and updates one `keys` row.
        3,
        "CREATE TABLE keys3 (n INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, fingerprint TEXT NOT NULL,
             balance REAL NOT NULL, profile TEXT NOT NULL, desk TEXT NOT NULL, created_at TEXT NOT NULL);
         INSERT INTO keys3 (key, fingerprint, balance, profile, desk, created_at)
             SELECT key, fingerprint, balance, profile, desk, created_at FROM keys ORDER BY created_at, key;
         CREATE TABLE bundles3 (n INTEGER PRIMARY KEY, key_n INTEGER NOT NULL, id TEXT NOT NULL, body TEXT NOT NULL);
         INSERT INTO bundles3 (key_n, id, body)
             SELECT k.n, t.id, t.body FROM bundles t JOIN keys3 k ON k.key = t.key ORDER BY k.n, t.seq;
         CREATE TABLE records3 (n INTEGER PRIMARY KEY, key_n INTEGER NOT NULL, kind TEXT NOT NULL, id TEXT NOT NULL,
             body TEXT NOT NULL);
         INSERT INTO records3 (key_n, kind, id, body)
             SELECT k.n, t.kind, t.id, t.body FROM records t JOIN keys3 k ON k.key = t.key ORDER BY k.n, t.seq;
         CREATE TABLE accounts3 (n INTEGER PRIMARY KEY, key_n INTEGER NOT NULL, id TEXT NOT NULL, body TEXT NOT NULL,
             UNIQUE (key_n, id));
         INSERT INTO accounts3 (key_n, id, body)
             SELECT k.n, t.id, t.body FROM accounts t JOIN keys3 k ON k.key = t.key ORDER BY k.n, t.seq;
         CREATE TABLE comment_tasks3 (n INTEGER PRIMARY KEY, key_n INTEGER NOT NULL, id TEXT NOT NULL, body TEXT NOT NULL,
             UNIQUE (key_n, id));
         INSERT INTO comment_tasks3 (key_n, id, body)
             SELECT k.n, t.id, t.body FROM comment_tasks t JOIN keys3 k ON k.key = t.key ORDER BY k.n, t.seq;
         CREATE TABLE webhook_endpoints3 (n INTEGER PRIMARY KEY, key_n INTEGER NOT NULL, id TEXT NOT NULL,
             body TEXT NOT NULL, secret TEXT NOT NULL, UNIQUE (key_n, id));
         INSERT INTO webhook_endpoints3 (key_n, id, body, secret)
             SELECT k.n, t.id, t.body, t.secret FROM webhook_endpoints t JOIN keys3 k ON k.key = t.key ORDER BY k.n, t.seq;
         CREATE TABLE deliveries3 (n INTEGER PRIMARY KEY, key_n INTEGER NOT NULL, id TEXT NOT NULL, body TEXT NOT NULL,
             endpoint_id TEXT NOT NULL, payload BLOB NOT NULL, tries TEXT NOT NULL, UNIQUE (key_n, id));
         INSERT INTO deliveries3 (key_n, id, body, endpoint_id, payload, tries)
             SELECT k.n, t.id, t.body, t.endpoint_id, t.payload, t.tries FROM deliveries t JOIN keys3 k ON k.key = t.key
             ORDER BY k.n, t.seq;
         CREATE TABLE replays3 (n INTEGER PRIMARY KEY, key_n INTEGER NOT NULL, idempotency_key TEXT NOT NULL,
             fingerprint BLOB NOT NULL, status INTEGER NOT NULL, content_type TEXT, body BLOB NOT NULL,
             kept_at TEXT NOT NULL, UNIQUE (key_n, idempotency_key));
         INSERT INTO replays3 (key_n, idempotency_key, fingerprint, status, content_type, body, kept_at)
             SELECT k.n, t.idempotency_key, t.fingerprint, t.status, t.content_type, t.body, t.kept_at
             FROM replays t JOIN keys3 k ON k.key = t.key ORDER BY t.kept_at;
         DROP TABLE keys; DROP TABLE bundles; DROP TABLE records; DROP TABLE accounts; DROP TABLE comment_tasks;
         DROP TABLE webhook_endpoints; DROP TABLE deliveries; DROP TABLE replays;
         ALTER TABLE keys3 RENAME TO keys; ALTER TABLE bundles3 RENAME TO bundles; ALTER TABLE records3 RENAME TO records;
         ALTER TABLE accounts3 RENAME TO accounts; ALTER TABLE comment_tasks3 RENAME TO comment_tasks;
         ALTER TABLE webhook_endpoints3 RENAME TO webhook_endpoints; ALTER TABLE deliveries3 RENAME TO deliveries;
         ALTER TABLE replays3 RENAME TO replays;
         CREATE INDEX keys_by_fingerprint ON keys (fingerprint);",
    ),
];

/// The tables that hold a key's rows, by its number (`key_n`); `keys`
/// and `replays` (its kept answers) apart.
const ROW_TABLES: &[&str] = &[
    "bundles",
    "accounts",
    "comment_tasks",
    "webhook_endpoints",
    "deliveries",
    "records",
];

/// The kinds of `records`: a key's bounded logs.
const LOGS: &[&str] = &["transactions", "uploads", "reports", "edit_requests", "refreshed"];

pub(in crate::sandbox) use super::saved::Saved;

/// A kept idempotent answer as the file holds it.
pub(in crate::sandbox) struct KeptAnswer {
    pub(in crate::sandbox) tenant: String,
    pub(in crate::sandbox) key: String,
    pub(in crate::sandbox) fingerprint: [u8; 32],
    pub(in crate::sandbox) stored: Stored,
    pub(in crate::sandbox) kept_at: DateTime<Utc>,
}

/// The state file, open and locked, and its writer.
///
/// One thread owns the SQLite connection once the file is read: requests
/// hand it their rows ([`Ops`]) and wait for the commit; it commits all
/// that is queued in one transaction (group commit), so SQLite's work is
/// neither under the state's lock nor on the async runtime's threads, and
/// a commit is shared by the requests that arrived meanwhile.
pub(in crate::sandbox) struct Store {
    writer: std::sync::mpsc::Sender<Batch>,
    /// Dropped with the store, which ends the checkpointer.
    _checkpoints: std::sync::mpsc::Sender<()>,
    path: PathBuf,
    /// The keys the file held when it was opened (fixtures skip them).
    held: HashSet<String>,
    /// The next free key and row numbers.
    numbers: Numbers,
    /// The file, held open with its advisory lock for the store's life.
    _lock: std::fs::File,
}

/// The file as read before its writer starts.
struct Opened {
    conn: Mutex<Connection>,
    path: PathBuf,
}

/// The next free numbers of keys (`keys.n`), bundles and records: given
/// when a request's rows are recorded, before the writer commits them, so
/// that a bundle's or a record's row is found again by its number, without
/// an index (rows are appended in write order; a gap is harmless).
struct Numbers {
    key: std::sync::atomic::AtomicI64,
    bundle: std::sync::atomic::AtomicI64,
    record: std::sync::atomic::AtomicI64,
}

impl Numbers {
    fn next(counter: &std::sync::atomic::AtomicI64) -> i64 {
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }
}

/// What the file held: every key's state, and the kept idempotent answers.
pub(in crate::sandbox) type Loaded = (HashMap<String, Tenant>, Vec<KeptAnswer>);

/// Statements to run, with their values, recorded in order.
#[derive(Default)]
pub(in crate::sandbox) struct Ops(Vec<(String, Vec<rusqlite::types::Value>)>);

impl Ops {
    fn execute(&mut self, sql: &str, values: &[&dyn rusqlite::ToSql]) -> rusqlite::Result<usize> {
        let mut owned = Vec::with_capacity(values.len());
        for v in values {
            owned.push(match v.to_sql()? {
                rusqlite::types::ToSqlOutput::Borrowed(r) => match r {
                    rusqlite::types::ValueRef::Null => rusqlite::types::Value::Null,
                    rusqlite::types::ValueRef::Integer(i) => rusqlite::types::Value::Integer(i),
                    rusqlite::types::ValueRef::Real(f) => rusqlite::types::Value::Real(f),
                    rusqlite::types::ValueRef::Text(s) => {
                        rusqlite::types::Value::Text(String::from_utf8_lossy(s).into_owned())
                    }
                    rusqlite::types::ValueRef::Blob(b) => rusqlite::types::Value::Blob(b.to_vec()),
                },
                rusqlite::types::ToSqlOutput::Owned(v) => v,
                _ => rusqlite::types::Value::Null,
            });
        }
        self.0.push((sql.to_owned(), owned));
        Ok(1)
    }

    /// A statement to record several times (as a prepared one is run).
    fn prepare_cached(&mut self, sql: &str) -> rusqlite::Result<Recorder<'_>> {
        Ok(Recorder {
            ops: self,
            sql: sql.to_owned(),
        })
    }

    /// Nothing to write.
    pub(in crate::sandbox) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// One statement of [`Ops`], recorded with each set of values.
struct Recorder<'a> {
    ops: &'a mut Ops,
    sql: String,
}

impl Recorder<'_> {
    fn execute(&mut self, values: &[&dyn rusqlite::ToSql]) -> rusqlite::Result<usize> {
        let sql = self.sql.clone();
        self.ops.execute(&sql, values)
    }
}

/// One request's rows, and who waits for their commit.
struct Batch {
    ops: Ops,
    done: Option<tokio::sync::oneshot::Sender<Result<(), String>>>,
}

/// How often the WAL is copied back into the database.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(200);

/// The checkpointer: a PASSIVE checkpoint every [`CHECKPOINT_EVERY`], on
/// its own connection, so the writer never waits for one; once a
/// checkpoint has copied every frame, the writer starts the WAL over, so
/// the WAL stays the size of what is written between two checkpoints. It
/// ends when the store is dropped.
///
/// Under writes that never pause, a passive checkpoint never sees the WAL
/// whole, and the WAL would grow without end: past [`MAX_WAL_FRAMES`] the
/// checkpointer asks the writer to truncate it between two commits.
fn checkpoint_loop(conn: &Connection, stop: &std::sync::mpsc::Receiver<()>, truncate: &std::sync::atomic::AtomicBool) {
    while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(CHECKPOINT_EVERY) {
        match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(1)) {
            Ok(frames) if frames > MAX_WAL_FRAMES => truncate.store(true, std::sync::atomic::Ordering::Relaxed),
            Ok(_) => {}
            Err(e) => tracing::warn!(target: "tokportal::sandbox", "state file checkpoint: {e}"),
        }
    }
}

/// The most frames (pages) the WAL holds before the writer truncates it:
/// 64 MiB of 4 KiB pages.
const MAX_WAL_FRAMES: i64 = 16_384;

/// Batches one commit takes at most.
const GROUP: usize = 512;

/// The writer: commits what is queued, group by group, until the store is
/// dropped (the queue closes).
fn write_loop(
    mut conn: Connection,
    path: PathBuf,
    queue: std::sync::mpsc::Receiver<Batch>,
    truncate: std::sync::Arc<std::sync::atomic::AtomicBool>,
) {
    while let Ok(first) = queue.recv() {
        if truncate.swap(false, std::sync::atomic::Ordering::Relaxed)
            && let Err(e) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        {
            tracing::warn!(target: "tokportal::sandbox", "state file checkpoint: {e}");
        }
        let mut group = vec![first];
        while group.len() < GROUP {
            match queue.try_recv() {
                Ok(more) => group.push(more),
                Err(_) => break,
            }
        }
        let committed = (|| -> rusqlite::Result<()> {
            let tx = conn.transaction()?;
            for batch in &group {
                for (sql, values) in &batch.ops.0 {
                    tx.prepare_cached(sql)?
                        .execute(rusqlite::params_from_iter(values.iter()))?;
                }
            }
            tx.commit()
        })()
        .map_err(|e| format!("the state file {} could not be written: {e}", path.display()));
        if let Err(why) = &committed {
            tracing::error!(target: "tokportal::sandbox", "{why}");
        }
        for batch in group {
            if let Some(done) = batch.done {
                let _ = done.send(committed.clone());
            }
        }
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Why a file was refused, naming it.
fn refused(path: &Path, why: impl std::fmt::Display) -> String {
    format!("{}: {why}; the file was left as it was", path.display())
}

impl Store {
    /// Opens (or makes) the state file at `path`, checked, locked and at
    /// this build's schema; what it holds; and its writer started.
    pub(in crate::sandbox) fn open(path: &Path) -> Result<(Store, Loaded), String> {
        let existing = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        if existing > 0 {
            check_header(path)?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        // It holds webhook secrets: made the user's alone, whatever the umask.
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let lock = options
            .open(path)
            .map_err(|e| refused(path, format!("cannot be opened: {e}")))?;
        match fs4::FileExt::try_lock(&lock) {
            Ok(()) => {}
            Err(fs4::TryLockError::WouldBlock) => {
                return Err(refused(path, "is in use by another sandbox (one process a file)"));
            }
            Err(fs4::TryLockError::Error(e)) => return Err(refused(path, format!("cannot be locked: {e}"))),
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| refused(path, format!("cannot be opened: {e}")))?;
        harden(&conn).map_err(|e| refused(path, format!("cannot be opened defensively: {e}")))?;
        let read_i32 = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i32>(0));
        let application =
            read_i32("PRAGMA application_id").map_err(|e| refused(path, format!("is not readable as SQLite: {e}")))?;
        let version = read_i32("PRAGMA user_version").map_err(|e| refused(path, format!("is not readable: {e}")))?;
        let tables: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .map_err(|e| refused(path, format!("is corrupt: {e}")))?;
        if tables > 0 && application != APPLICATION_ID {
            return Err(refused(
                path,
                "is an SQLite database, but not a TokPortal sandbox's state",
            ));
        }
        if version > SCHEMA_VERSION {
            return Err(refused(
                path,
                format!(
                    "holds schema version {version}, newer than this build's {SCHEMA_VERSION}: use a newer tokportal"
                ),
            ));
        }
        if tables > 0 {
            let check: String = conn
                .query_row("PRAGMA quick_check", [], |r| r.get(0))
                .map_err(|e| refused(path, format!("is corrupt: {e}")))?;
            if check != "ok" {
                return Err(refused(path, format!("is corrupt: {check}")));
            }
            foreign_objects(&conn, version).map_err(|why| refused(path, why))?;
        }
        // WAL with NORMAL: a commit is durable across a killed process (not
        // a power cut) without an fsync each. An 8 MiB page cache: a larger
        // one cost more than it saved (SQLite walks the cache's hash at the
        // end of each transaction: 10 % of a create with 64 MiB, under perf).
        // Checkpoints are the checkpointer's (below), not the writer's.
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000; \
             PRAGMA cache_size = -8192; PRAGMA wal_autocheckpoint = 0;",
        )
        .map_err(|e| refused(path, format!("cannot be set up: {e}")))?;
        owner_only(path).map_err(|e| refused(path, format!("cannot be made the user's alone: {e}")))?;
        if tables > 0 && version < SCHEMA_VERSION {
            let backup = PathBuf::from(format!("{}.v{version}.bak", path.display()));
            // The copy is of the whole database, WAL included, and written
            // before anything changes.
            let copy = conn
                .execute("VACUUM INTO ?1", params![backup.to_string_lossy()])
                .map_err(|e| {
                    refused(
                        path,
                        format!("could not be copied to {} before its migration: {e}", backup.display()),
                    )
                });
            copy?;
            owner_only(&backup).map_err(|e| refused(path, format!("its copy cannot be made the user's alone: {e}")))?;
            tracing::info!(target: "tokportal::sandbox", "state file {} migrated from schema {version}; its copy is {}", path.display(), backup.display());
        }
        let opened = Opened {
            conn: Mutex::new(conn),
            path: path.to_owned(),
        };
        opened.migrate(version)?;
        let (loaded, numbers) = opened.load()?;
        let (writer, queue) = std::sync::mpsc::channel();
        let conn = opened.conn.into_inner().unwrap_or_else(|p| p.into_inner());
        let checkpoints = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| refused(path, format!("cannot be opened twice: {e}")))?;
        harden(&checkpoints).map_err(|e| refused(path, format!("cannot be opened defensively: {e}")))?;
        let (stop_checkpoints, stopped) = std::sync::mpsc::channel::<()>();
        let truncate = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let asked = truncate.clone();
        std::thread::Builder::new()
            .name("tokportal-checkpoints".into())
            .spawn(move || checkpoint_loop(&checkpoints, &stopped, &asked))
            .map_err(|e| refused(path, format!("its checkpointer could not start: {e}")))?;
        let thread_path = path.to_owned();
        std::thread::Builder::new()
            .name("tokportal-state".into())
            .spawn(move || write_loop(conn, thread_path, queue, truncate))
            .map_err(|e| refused(path, format!("its writer could not start: {e}")))?;
        let store = Store {
            writer,
            _checkpoints: stop_checkpoints,
            path: path.to_owned(),
            held: loaded.0.keys().cloned().collect(),
            numbers,
            _lock: lock,
        };
        Ok((store, loaded))
    }

    /// Hands `ops` to the writer, which commits batches in the order they
    /// were handed over: a caller that makes its rows under the state's lock
    /// hands them over under it too, so that a key's later rows (its
    /// balance after two debits) never reach the file before its earlier
    /// ones. Never blocks (the queue is unbounded; the writer drains it).
    pub(in crate::sandbox) fn enqueue(&self, ops: Ops) -> Result<Pending, String> {
        let (done, committed) = tokio::sync::oneshot::channel();
        let stopped = format!("the state file {}'s writer has stopped", self.path.display());
        self.writer
            .send(Batch { ops, done: Some(done) })
            .map_err(|_| stopped.clone())?;
        Ok(Pending { committed, stopped })
    }

    /// Hands `ops` to the writer without waiting (a delivery's attempt).
    fn send(&self, ops: Ops) {
        if self.writer.send(Batch { ops, done: None }).is_err() {
            tracing::error!(target: "tokportal::sandbox", "the state file {}'s writer has stopped", self.path.display());
        }
    }
}

/// A batch handed to the writer, whose commit is still to come.
pub(in crate::sandbox) struct Pending {
    committed: tokio::sync::oneshot::Receiver<Result<(), String>>,
    stopped: String,
}

impl Pending {
    /// Waits for the batch's commit.
    pub(in crate::sandbox) async fn committed(self) -> Result<(), String> {
        self.committed.await.unwrap_or(Err(self.stopped))
    }
}

impl Opened {
    /// Brings the schema from `from` to this build's, in one transaction.
    fn migrate(&self, from: i32) -> Result<(), String> {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let tx = conn.transaction().map_err(|e| refused(&self.path, e))?;
        for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > from) {
            tx.execute_batch(sql)
                .map_err(|e| refused(&self.path, format!("could not be migrated to schema {version}: {e}")))?;
        }
        if from == 0 {
            tx.execute(
                "INSERT INTO meta (name, value) VALUES ('created_by', ?1), ('contract_version', ?2)",
                params![
                    concat!("tokportal ", env!("CARGO_PKG_VERSION")),
                    crate::operations::SPEC_VERSION
                ],
            )
            .map_err(|e| refused(&self.path, e))?;
        }
        tx.execute_batch(&format!(
            "PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {SCHEMA_VERSION};"
        ))
        .map_err(|e| refused(&self.path, e))?;
        tx.commit().map_err(|e| refused(&self.path, e))
    }
}

impl Store {
    /// The rows that bring `tenant` (state name `key`) in the file to what
    /// it is now, and `replay` (an idempotency key's first answer), for one
    /// commit; the tenant's record of what is saved moves on with them (a
    /// failed commit calls [`Saved::resync`]).
    pub(in crate::sandbox) fn changes(
        &self,
        key: &str,
        tenant: &mut Tenant,
        replay: Option<(&str, [u8; 32], &Stored)>,
    ) -> Ops {
        let mut ops = Ops::default();
        let mut saved = std::mem::take(&mut tenant.saved);
        if saved.resync {
            // The key keeps its number (its kept answers name it); its
            // other rows are written again, whole.
            let key_n = saved.key_n;
            for table in ROW_TABLES {
                let _ = ops.execute(&format!("DELETE FROM {table} WHERE key_n = ?1"), params![key_n]);
            }
            saved = Saved {
                key_n,
                ..Saved::default()
            };
        }
        if saved.key_n == 0 {
            saved.key_n = Numbers::next(&self.numbers.key);
        }
        let _ = write::write_changes(&mut ops, &self.numbers, key, tenant, &mut saved);
        let key_n = saved.key_n;
        tenant.saved = saved;
        tenant.touched.clear();
        if let Some((idempotency_key, fp, stored)) = replay {
            let _ = ops.execute(
                "INSERT INTO replays (key_n, idempotency_key, fingerprint, status, content_type, body, kept_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (key_n, idempotency_key) DO UPDATE SET \
                 fingerprint = excluded.fingerprint, status = excluded.status, content_type = excluded.content_type, \
                 body = excluded.body, kept_at = excluded.kept_at",
                params![
                    key_n,
                    idempotency_key,
                    &fp[..],
                    stored.status,
                    stored.content_type,
                    &stored.body[..],
                    stamp(Utc::now())
                ],
            );
        }
        ops
    }

    /// Writes one delivery's log entry and attempts (after an attempt).
    pub(in crate::sandbox) fn save_delivery(&self, key: &str, delivery: &Delivery) {
        let mut ops = Ops::default();
        let id = str_of(&delivery.fields, "id").unwrap_or_default();
        let _ = ops.execute(
            "UPDATE deliveries SET body = ?3, tries = ?4 WHERE key_n = (SELECT n FROM keys WHERE key = ?1) AND id = ?2",
            params![
                key,
                id,
                serde_json::to_string(&delivery.fields).unwrap_or_default(),
                Value::Array(delivery.tries.iter().cloned().map(Value::Object).collect()).to_string()
            ],
        );
        self.send(ops);
    }

    /// Forgets one key (its reset), or every key: handed to the writer now
    /// (under the state's lock, where the caller holds it), committed when
    /// the returned batch is awaited.
    pub(in crate::sandbox) fn forget(&self, key: Option<&str>) -> Result<Pending, String> {
        let mut ops = Ops::default();
        // The key's rows first: they find it by its number in `keys`.
        for table in ROW_TABLES.iter().chain(&["replays", "keys"]) {
            let _ = match (key, *table) {
                (Some(key), "keys") => ops.execute("DELETE FROM keys WHERE key = ?1", params![key]),
                (Some(key), _) => ops.execute(
                    &format!("DELETE FROM {table} WHERE key_n = (SELECT n FROM keys WHERE key = ?1)"),
                    params![key],
                ),
                (None, _) => ops.execute(&format!("DELETE FROM {table}"), params![]),
            };
        }
        self.enqueue(ops)
    }

    /// Whether the file held `key` when it was opened (fixtures are
    /// applied to new keys only).
    pub(in crate::sandbox) fn holds(&self, key: &str) -> bool {
        self.held.contains(key)
    }
}

/// Opens `conn` as for a file someone else may have made: SQLite's
/// defensive mode (no writes to the schema or shadow tables, whatever a
/// statement asks) and an untrusted schema (a view or trigger of the file
/// cannot call functions with side effects).
fn harden(conn: &Connection) -> rusqlite::Result<()> {
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)?;
    conn.execute_batch("PRAGMA trusted_schema = OFF;")
}

/// The schema objects (`type`, `name`, `tbl_name`) of a database, the
/// internal ones included.
fn objects(conn: &Connection) -> rusqlite::Result<std::collections::BTreeSet<(String, String, String)>> {
    let mut statement = conn.prepare("SELECT type, name, tbl_name FROM sqlite_schema")?;
    let rows = statement.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    rows.collect()
}

/// Refuses a file whose schema holds an object the sandbox's own schema of
/// `version` does not (a view, a trigger, a table or an index), before
/// anything of it is run or written: a crafted file is refused untouched.
fn foreign_objects(conn: &Connection, version: i32) -> Result<(), String> {
    let own = Connection::open_in_memory().map_err(|e| format!("cannot be checked: {e}"))?;
    for (v, sql) in MIGRATIONS.iter().filter(|(v, _)| *v <= version) {
        own.execute_batch(sql)
            .map_err(|e| format!("cannot be checked against schema {v}: {e}"))?;
    }
    let own = objects(&own).map_err(|e| format!("cannot be checked: {e}"))?;
    let found = objects(conn).map_err(|e| format!("is corrupt: {e}"))?;
    let foreign: Vec<String> = found
        .difference(&own)
        .map(|(kind, name, _)| format!("{kind} `{}`", name.escape_debug()))
        .collect();
    if foreign.is_empty() {
        return Ok(());
    }
    Err(format!(
        "holds schema objects that are not the sandbox's own ({}): a state file is never opened with another's",
        foreign.join(", ")
    ))
}

/// Makes `path` and its `-wal` and `-shm` (when there) readable and
/// writable by the user alone (0600): they hold webhook secrets.
fn owner_only(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let name = path.as_os_str();
        for suffix in ["", "-wal", "-shm"] {
            let mut file = name.to_owned();
            file.push(suffix);
            match std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && !suffix.is_empty() => {}
                other => other?,
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Refuses a file whose first bytes are not SQLite's, before SQLite sees it.
fn check_header(path: &Path) -> Result<(), String> {
    use std::io::Read;
    let mut head = [0u8; 16];
    let mut file = std::fs::File::open(path).map_err(|e| refused(path, format!("cannot be read: {e}")))?;
    let read = file
        .read(&mut head)
        .map_err(|e| refused(path, format!("cannot be read: {e}")))?;
    if read < head.len() || &head != b"SQLite format 3\0" {
        return Err(refused(
            path,
            "is not an SQLite database (nor a TokPortal sandbox's state)",
        ));
    }
    Ok(())
}

/// The content types an answer is kept with.
pub(in crate::sandbox) fn known_content_type(ct: &str) -> Option<&'static str> {
    ["application/json", "text/csv", "text/plain", "text/html"]
        .into_iter()
        .find(|known| *known == ct)
}

/// What the tests of `load` and `write` share: a schema in memory, numbers
/// from 1, and a way to run recorded statements.
#[cfg(test)]
mod testing {
    use super::*;

    /// An empty file of this build's schema, in memory.
    pub(super) fn in_memory() -> Opened {
        let opened = Opened {
            conn: Mutex::new(Connection::open_in_memory().unwrap()),
            path: PathBuf::from(":memory:"),
        };
        opened.migrate(0).unwrap();
        opened
    }

    /// The numbers of an empty file.
    pub(super) fn numbers() -> Numbers {
        Numbers {
            key: std::sync::atomic::AtomicI64::new(1),
            bundle: std::sync::atomic::AtomicI64::new(1),
            record: std::sync::atomic::AtomicI64::new(1),
        }
    }

    /// Runs `ops` on the file, as the writer does.
    pub(super) fn apply(opened: &Opened, ops: &Ops) {
        let conn = opened.conn.lock().unwrap();
        for (sql, values) in &ops.0 {
            conn.execute(sql, rusqlite::params_from_iter(values.iter())).unwrap();
        }
    }

    /// The statements recorded, without their values.
    pub(super) fn statements(ops: &Ops) -> Vec<&str> {
        ops.0.iter().map(|(sql, _)| sql.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connection opened as a state file is: no write to the schema even
    /// with `writable_schema` asked for, and no trust in the file's schema.
    #[test]
    fn a_state_file_is_opened_defensively() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);")
            .unwrap();
        harden(&conn).unwrap();
        let trusted: i64 = conn.query_row("PRAGMA trusted_schema", [], |r| r.get(0)).unwrap();
        assert_eq!(trusted, 0);
        assert!(
            conn.db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_DEFENSIVE)
                .unwrap()
        );
        let rewritten = conn.execute_batch(
            "PRAGMA writable_schema = ON; \
             UPDATE sqlite_schema SET sql = 'CREATE TABLE meta (name TEXT)' WHERE name = 'meta';",
        );
        assert!(rewritten.is_err(), "the schema was written");
    }

    /// The sandbox's own schema of each version holds nothing foreign; one
    /// view more is named.
    #[test]
    fn only_the_sandboxs_own_objects_pass() {
        for version in 1..=SCHEMA_VERSION {
            let conn = Connection::open_in_memory().unwrap();
            for (_, sql) in MIGRATIONS.iter().filter(|(v, _)| *v <= version) {
                conn.execute_batch(sql).unwrap();
            }
            foreign_objects(&conn, version).unwrap();
            conn.execute_batch("CREATE VIEW peek AS SELECT 1;").unwrap();
            let why = foreign_objects(&conn, version).unwrap_err();
            assert!(why.contains("view `peek`"), "{why}");
        }
    }
}
