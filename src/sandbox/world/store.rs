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
//! `sqlite3` can read the file while the sandbox runs). An
//! older schema is migrated in one transaction after a copy of the file is
//! kept beside it (`FILE.v1.bak`).
//!
//! The schema (version 2), every row a key's (`key` is the SHA-256 of the
//! API key, never the key; `fingerprint` its first 8 hex digits):
//!
//! | table | columns |
//! |---|---|
//! | `keys` | `key`, `fingerprint`, `balance`, `profile` (JSON), `desk` (JSON: the clock, its pending steps, flags, held steps), `created_at` |
//! | `bundles` | `key`, `id`, `seq`, `body` (JSON: the bundle with its `account` and `videos`) |
//! | `accounts`, `comment_tasks` | `key`, `id`, `seq`, `body` |
//! | `webhook_endpoints` | `key`, `id`, `seq`, `body`, `secret` |
//! | `deliveries` | `key`, `id`, `seq`, `body`, `endpoint_id`, `payload` (the envelope as sent), `tries` (JSON) |
//! | `records` | `key`, `kind` (`transactions`, `uploads`, `reports`, `edit_requests`, `refreshed`), `id`, `seq`, `body` |
//! | `replays` | `key`, `idempotency_key`, `fingerprint`, `status`, `content_type`, `body`, `kept_at` (version 2) |
//! | `meta` | `name`, `value`: `created_by`, `contract_version` |
//!
//! ```sql
//! SELECT id, json_extract(body, '$.status') FROM bundles WHERE key = (SELECT key FROM keys WHERE fingerprint = '849ee8f1');
//! ```

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use serde_json::{Value, json};
use uuid::Uuid;

use super::clock::Desk;
use super::replays::Stored;
use super::state::{Bundle, Delivery, Endpoint, Object, Tenant, fingerprint, object, stamp, str_of};

/// `PRAGMA application_id` of this sandbox's files ("TOKP").
pub(in crate::sandbox) const APPLICATION_ID: i32 = 0x544f_4b50;
/// The schema version this build writes.
pub(in crate::sandbox) const SCHEMA_VERSION: i32 = 2;

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
];

/// The kinds of `records`: a key's bounded logs.
const LOGS: &[&str] = &["transactions", "uploads", "reports", "edit_requests", "refreshed"];

/// What of a key is in the file already: how it finds what changed.
#[derive(Clone, Debug, Default)]
pub(in crate::sandbox) struct Saved {
    /// Written at least once.
    written: bool,
    /// `bundles[..n]` have rows (bundles are only ever added).
    bundles: usize,
    /// The content hash of each account, endpoint and comment task row, by
    /// table and id.
    hashes: HashMap<(&'static str, String), u64>,
    /// The delivery rows, by id.
    deliveries: HashSet<Uuid>,
    /// The log rows, by kind and id.
    logs: HashMap<&'static str, HashSet<String>>,
    /// The desk as last written.
    desk: u64,
    /// Rows are numbered per key in the order they were written.
    seq: i64,
}

/// A kept idempotent answer as the file holds it.
pub(in crate::sandbox) struct KeptAnswer {
    pub(in crate::sandbox) tenant: String,
    pub(in crate::sandbox) key: String,
    pub(in crate::sandbox) fingerprint: [u8; 32],
    pub(in crate::sandbox) stored: Stored,
    pub(in crate::sandbox) kept_at: DateTime<Utc>,
}

/// The state file, open and locked.
pub(in crate::sandbox) struct Store {
    conn: Mutex<Connection>,
    path: PathBuf,
    /// The file, held open with its advisory lock for the store's life.
    _lock: std::fs::File,
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

impl Saved {
    /// Whether the key has been written to the file at least once.
    pub(in crate::sandbox) fn written(&self) -> bool {
        self.written
    }
}

impl Store {
    /// Opens (or makes) the state file at `path`, checked, locked and at
    /// this build's schema.
    pub(in crate::sandbox) fn open(path: &Path) -> Result<Store, String> {
        let existing = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        if existing > 0 {
            check_header(path)?;
        }
        let lock = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
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
        }
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;")
            .map_err(|e| refused(path, format!("cannot be set up: {e}")))?;
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
            tracing::info!(target: "tokportal::sandbox", "state file {} migrated from schema {version}; its copy is {}", path.display(), backup.display());
        }
        let store = Store {
            conn: Mutex::new(conn),
            path: path.to_owned(),
            _lock: lock,
        };
        store.migrate(version)?;
        Ok(store)
    }

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

    /// Every key the file holds, and the answers kept under idempotency keys.
    pub(in crate::sandbox) fn load(&self) -> Result<(HashMap<String, Tenant>, Vec<KeptAnswer>), String> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let bad = |e: rusqlite::Error| refused(&self.path, format!("could not be read: {e}"));
        let mut tenants = HashMap::new();
        let mut keys = conn
            .prepare("SELECT key, balance, profile, desk FROM keys")
            .map_err(bad)?;
        let rows = keys
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, f64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })
            .map_err(bad)?;
        for row in rows {
            let (key, balance, profile, desk) = row.map_err(bad)?;
            let json = |text: &str, what: &str| -> Result<Value, String> {
                serde_json::from_str(text).map_err(|e| {
                    refused(
                        &self.path,
                        format!("key {}: {what} is not JSON: {e}", fingerprint(&key)),
                    )
                })
            };
            let desk = Desk::from_json(&json(&desk, "desk")?)
                .map_err(|e| refused(&self.path, format!("key {}: desk: {e}", fingerprint(&key))))?;
            let mut tenant = Tenant::empty(object(json(&profile, "profile")?), balance, desk);
            let bodies = |table: &str| -> Result<Vec<(String, Value)>, String> {
                let mut statement = conn
                    .prepare(&format!("SELECT id, body FROM {table} WHERE key = ?1 ORDER BY seq"))
                    .map_err(bad)?;
                let rows = statement
                    .query_map([&key], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
                    .map_err(bad)?;
                let mut out = Vec::new();
                for row in rows {
                    let (id, body) = row.map_err(bad)?;
                    out.push((id, json(&body, table)?));
                }
                Ok(out)
            };
            for (_, body) in bodies("bundles")? {
                let mut fields = object(body);
                let account = fields.remove("account").and_then(|a| a.as_object().cloned());
                let videos = match fields.remove("videos") {
                    Some(Value::Array(v)) => v.into_iter().map(object).collect(),
                    _ => Vec::new(),
                };
                tenant.bundles.push(Bundle {
                    fields,
                    account,
                    videos,
                });
            }
            tenant.accounts = bodies("accounts")?.into_iter().map(|(_, b)| object(b)).collect();
            tenant.comments = bodies("comment_tasks")?.into_iter().map(|(_, b)| object(b)).collect();
            {
                let mut statement = conn
                    .prepare("SELECT body, secret FROM webhook_endpoints WHERE key = ?1 ORDER BY seq")
                    .map_err(bad)?;
                let rows = statement
                    .query_map([&key], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
                    .map_err(bad)?;
                for row in rows {
                    let (body, secret) = row.map_err(bad)?;
                    tenant.endpoints.push(Endpoint {
                        fields: object(json(&body, "webhook_endpoints")?),
                        secret,
                    });
                }
                let mut statement = conn
                    .prepare("SELECT body, endpoint_id, payload, tries FROM deliveries WHERE key = ?1 ORDER BY seq")
                    .map_err(bad)?;
                let rows = statement
                    .query_map([&key], |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, Vec<u8>>(2)?,
                            r.get::<_, String>(3)?,
                        ))
                    })
                    .map_err(bad)?;
                for row in rows {
                    let (body, endpoint, payload, tries) = row.map_err(bad)?;
                    let tries = match json(&tries, "deliveries.tries")? {
                        Value::Array(t) => t.into_iter().map(object).collect(),
                        _ => Vec::new(),
                    };
                    tenant.deliveries.push(Delivery {
                        fields: object(json(&body, "deliveries")?),
                        endpoint: Uuid::parse_str(&endpoint).unwrap_or_default(),
                        payload: bytes::Bytes::from(payload),
                        tries,
                    });
                }
            }
            for kind in LOGS {
                let mut statement = conn
                    .prepare("SELECT body FROM records WHERE key = ?1 AND kind = ?2 ORDER BY seq")
                    .map_err(bad)?;
                let rows = statement
                    .query_map(params![&key, kind], |r| r.get::<_, String>(0))
                    .map_err(bad)?;
                for row in rows {
                    let body = object(json(&row.map_err(bad)?, kind)?);
                    match *kind {
                        "transactions" => tenant.transactions.push(body),
                        "uploads" => tenant.uploads.push(body),
                        "reports" => tenant.reports.push(body),
                        "edit_requests" => tenant.edit_requests.push(body),
                        _ => {
                            let account = str_of(&body, "id").and_then(|a| Uuid::parse_str(a).ok());
                            let at = str_of(&body, "at")
                                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                                .map(|t| t.with_timezone(&Utc));
                            if let (Some(account), Some(at)) = (account, at) {
                                tenant.refreshed.push((account, at));
                            }
                        }
                    }
                }
            }
            let seq: i64 = conn
                .query_row(
                    "SELECT max(m) FROM (SELECT max(seq) m FROM bundles WHERE key = ?1 UNION ALL SELECT max(seq) FROM records WHERE key = ?1 \
                     UNION ALL SELECT max(seq) FROM accounts WHERE key = ?1 UNION ALL SELECT max(seq) FROM deliveries WHERE key = ?1 \
                     UNION ALL SELECT max(seq) FROM webhook_endpoints WHERE key = ?1 UNION ALL SELECT max(seq) FROM comment_tasks WHERE key = ?1)",
                    [&key],
                    |r| r.get::<_, Option<i64>>(0),
                )
                .map_err(bad)?
                .unwrap_or(0);
            tenant.saved = saved_as_loaded(&tenant, seq);
            tenants.insert(key, tenant);
        }
        let mut kept = Vec::new();
        let mut statement = conn
            .prepare("SELECT key, idempotency_key, fingerprint, status, content_type, body, kept_at FROM replays")
            .map_err(bad)?;
        let rows = statement
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Vec<u8>>(2)?,
                    r.get::<_, u16>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, Vec<u8>>(5)?,
                    r.get::<_, String>(6)?,
                ))
            })
            .map_err(bad)?;
        for row in rows {
            let (tenant, key, fp, status, content_type, body, kept_at) = row.map_err(bad)?;
            let (Ok(fingerprint), Ok(kept_at)) = (
                <[u8; 32]>::try_from(fp.as_slice()),
                DateTime::parse_from_rfc3339(&kept_at),
            ) else {
                continue;
            };
            kept.push(KeptAnswer {
                tenant,
                key,
                fingerprint,
                stored: Stored {
                    status,
                    content_type: content_type.as_deref().and_then(known_content_type),
                    body: bytes::Bytes::from(body),
                },
                kept_at: kept_at.with_timezone(&Utc),
            });
        }
        Ok((tenants, kept))
    }

    /// Writes what `tenant` (state name `key`) changed since it was last
    /// written, and `replay` (an idempotency key's first answer), in one
    /// transaction; the tenant's record of what is saved moves on only once
    /// it is committed.
    pub(in crate::sandbox) fn save(
        &self,
        key: &str,
        tenant: &mut Tenant,
        replay: Option<(&str, [u8; 32], &Stored)>,
    ) -> Result<(), String> {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let failed = |e: rusqlite::Error| format!("the state file {} could not be written: {e}", self.path.display());
        let tx = conn.transaction().map_err(failed)?;
        let mut saved = tenant.saved.clone();
        write_changes(&tx, key, tenant, &mut saved).map_err(failed)?;
        if let Some((idempotency_key, fp, stored)) = replay {
            tx.execute(
                "INSERT OR REPLACE INTO replays (key, idempotency_key, fingerprint, status, content_type, body, kept_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![key, idempotency_key, &fp[..], stored.status, stored.content_type, &stored.body[..], stamp(Utc::now())],
            )
            .map_err(failed)?;
        }
        tx.commit().map_err(failed)?;
        tenant.saved = saved;
        tenant.touched.clear();
        Ok(())
    }

    /// Writes one delivery's log entry and attempts (after an attempt).
    pub(in crate::sandbox) fn save_delivery(&self, key: &str, delivery: &Delivery) -> Result<(), String> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let id = str_of(&delivery.fields, "id").unwrap_or_default();
        conn.execute(
            "UPDATE deliveries SET body = ?3, tries = ?4 WHERE key = ?1 AND id = ?2",
            params![
                key,
                id,
                Value::Object(delivery.fields.clone()).to_string(),
                Value::Array(delivery.tries.iter().cloned().map(Value::Object).collect()).to_string()
            ],
        )
        .map(|_| ())
        .map_err(|e| format!("the state file {} could not be written: {e}", self.path.display()))
    }

    /// Forgets one key (its reset), or every key.
    pub(in crate::sandbox) fn forget(&self, key: Option<&str>) -> Result<(), String> {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let failed = |e: rusqlite::Error| format!("the state file {} could not be written: {e}", self.path.display());
        let tx = conn.transaction().map_err(failed)?;
        for table in [
            "keys",
            "bundles",
            "accounts",
            "comment_tasks",
            "webhook_endpoints",
            "deliveries",
            "records",
            "replays",
        ] {
            match key {
                Some(key) => tx.execute(&format!("DELETE FROM {table} WHERE key = ?1"), [key]),
                None => tx.execute(&format!("DELETE FROM {table}"), []),
            }
            .map_err(failed)?;
        }
        tx.commit().map_err(failed)
    }

    /// Whether the file holds `key` already (fixtures are applied to new keys only).
    pub(in crate::sandbox) fn holds(&self, key: &str) -> bool {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        conn.query_row("SELECT 1 FROM keys WHERE key = ?1", [key], |_| Ok(()))
            .optional()
            .ok()
            .flatten()
            .is_some()
    }
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

/// A fast hash of a JSON value's content (object keys in their order).
fn hash_of(value: &Object) -> u64 {
    fn walk(v: &Value, h: &mut rustc_hash::FxHasher) {
        match v {
            Value::Null => 0u8.hash(h),
            Value::Bool(b) => b.hash(h),
            Value::Number(n) => n.to_string().hash(h),
            Value::String(s) => s.hash(h),
            Value::Array(a) => {
                a.len().hash(h);
                a.iter().for_each(|v| walk(v, h));
            }
            Value::Object(o) => {
                o.len().hash(h);
                for (k, v) in o {
                    k.hash(h);
                    walk(v, h);
                }
            }
        }
    }
    let mut h = rustc_hash::FxHasher::default();
    for (k, v) in value {
        k.hash(&mut h);
        walk(v, &mut h);
    }
    h.finish()
}

/// A bundle as its row holds it.
fn bundle_row(bundle: &Bundle) -> String {
    let mut out = bundle.fields.clone();
    out.insert(
        "account".into(),
        bundle.account.clone().map_or(Value::Null, Value::Object),
    );
    out.insert(
        "videos".into(),
        Value::Array(bundle.videos.iter().cloned().map(Value::Object).collect()),
    );
    Value::Object(out).to_string()
}

/// A log's rows: `(id, body)`.
fn log_rows(tenant: &Tenant, kind: &str) -> Vec<(String, Object)> {
    let with_ids = |list: &[Object]| {
        list.iter()
            .map(|o| (str_of(o, "id").unwrap_or_default().to_owned(), o.clone()))
            .collect()
    };
    match kind {
        "transactions" => with_ids(&tenant.transactions),
        "uploads" => with_ids(&tenant.uploads),
        "reports" => with_ids(&tenant.reports),
        "edit_requests" => with_ids(&tenant.edit_requests),
        _ => tenant
            .refreshed
            .iter()
            .map(|(account, at)| {
                (
                    format!("{account}@{}", stamp(*at)),
                    object(json!({"id": account, "at": stamp(*at)})),
                )
            })
            .collect(),
    }
}

/// What a tenant read back from the file has saved: all of it.
fn saved_as_loaded(tenant: &Tenant, seq: i64) -> Saved {
    let mut saved = Saved {
        written: true,
        bundles: tenant.bundles.len(),
        desk: hash_of(&object(tenant.desk.to_json())),
        seq,
        ..Saved::default()
    };
    for (table, list) in [("accounts", &tenant.accounts), ("comment_tasks", &tenant.comments)] {
        for o in list {
            saved
                .hashes
                .insert((table, str_of(o, "id").unwrap_or_default().to_owned()), hash_of(o));
        }
    }
    for e in &tenant.endpoints {
        let id = str_of(&e.fields, "id").unwrap_or_default().to_owned();
        saved.hashes.insert(("webhook_endpoints", id), hash_of(&e.fields));
    }
    saved.deliveries = tenant
        .deliveries
        .iter()
        .filter_map(|d| str_of(&d.fields, "id").and_then(|id| Uuid::parse_str(id).ok()))
        .collect();
    for kind in LOGS {
        saved
            .logs
            .insert(kind, log_rows(tenant, kind).into_iter().map(|(id, _)| id).collect());
    }
    saved
}

/// The statements that bring key `key`'s rows to `tenant`, given `saved`
/// (moved on as they are written).
fn write_changes(
    tx: &rusqlite::Transaction<'_>,
    key: &str,
    tenant: &Tenant,
    saved: &mut Saved,
) -> rusqlite::Result<()> {
    let desk = object(tenant.desk.to_json());
    let desk_hash = hash_of(&desk);
    tx.execute(
        "INSERT INTO keys (key, fingerprint, balance, profile, desk, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
         ON CONFLICT (key) DO UPDATE SET balance = excluded.balance, profile = excluded.profile, desk = excluded.desk",
        params![
            key,
            fingerprint(key),
            tenant.balance,
            Value::Object(tenant.user.clone()).to_string(),
            Value::Object(desk).to_string(),
            str_of(&tenant.user, "created_at").unwrap_or_default(),
        ],
    )?;
    saved.desk = desk_hash;
    fn next(saved: &mut Saved) -> i64 {
        saved.seq += 1;
        saved.seq
    }
    // Bundles: the new ones and the ones touched.
    let mut bundle = tx.prepare_cached(
        "INSERT INTO bundles (key, id, seq, body) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (key, id) DO UPDATE SET body = excluded.body",
    )?;
    for (n, b) in tenant.bundles.iter().enumerate() {
        let id = str_of(&b.fields, "id").unwrap_or_default();
        if n >= saved.bundles || !saved.written || tenant.touched.contains(id) {
            bundle.execute(params![key, id, next(saved), bundle_row(b)])?;
        }
    }
    saved.bundles = tenant.bundles.len();
    // Accounts, comment tasks and endpoints: by id and content hash.
    let endpoints: Vec<(String, &Object, Option<&str>)> = tenant
        .endpoints
        .iter()
        .map(|e| {
            (
                str_of(&e.fields, "id").unwrap_or_default().to_owned(),
                &e.fields,
                Some(e.secret.as_str()),
            )
        })
        .collect();
    let plain = |list: &'_ [Object]| -> Vec<(String, Object)> {
        list.iter()
            .map(|o| (str_of(o, "id").unwrap_or_default().to_owned(), o.clone()))
            .collect()
    };
    for (table, rows) in [
        (
            "accounts",
            plain(&tenant.accounts)
                .into_iter()
                .map(|(id, o)| (id, o, None))
                .collect::<Vec<_>>(),
        ),
        (
            "comment_tasks",
            plain(&tenant.comments)
                .into_iter()
                .map(|(id, o)| (id, o, None))
                .collect(),
        ),
        (
            "webhook_endpoints",
            endpoints
                .iter()
                .map(|(id, o, s)| (id.clone(), (*o).clone(), s.map(str::to_owned)))
                .collect(),
        ),
    ] {
        let mut present = HashSet::with_capacity(rows.len());
        for (id, body, secret) in &rows {
            present.insert(id.clone());
            let hash = hash_of(body);
            if saved.hashes.get(&(table, id.clone())) == Some(&hash) {
                continue;
            }
            let text = Value::Object(body.clone()).to_string();
            match secret {
                Some(secret) => tx.execute(
                    "INSERT INTO webhook_endpoints (key, id, seq, body, secret) VALUES (?1, ?2, ?3, ?4, ?5) \
                     ON CONFLICT (key, id) DO UPDATE SET body = excluded.body, secret = excluded.secret",
                    params![key, id, next(saved), text, secret],
                )?,
                None => tx.execute(
                    &format!(
                        "INSERT INTO {table} (key, id, seq, body) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (key, id) DO UPDATE SET body = excluded.body"
                    ),
                    params![key, id, next(saved), text],
                )?,
            };
            saved.hashes.insert((table, id.clone()), hash);
        }
        let gone: Vec<String> = saved
            .hashes
            .keys()
            .filter(|(t, id)| *t == table && !present.contains(id))
            .map(|(_, id)| id.clone())
            .collect();
        for id in gone {
            tx.execute(
                &format!("DELETE FROM {table} WHERE key = ?1 AND id = ?2"),
                params![key, id],
            )?;
            saved.hashes.remove(&(table, id));
        }
    }
    // Deliveries: new rows when queued (attempts update their own row).
    let mut present = HashSet::with_capacity(tenant.deliveries.len());
    for d in &tenant.deliveries {
        let Some(id) = str_of(&d.fields, "id").and_then(|id| Uuid::parse_str(id).ok()) else {
            continue;
        };
        present.insert(id);
        if saved.deliveries.contains(&id) {
            continue;
        }
        tx.execute(
            "INSERT OR REPLACE INTO deliveries (key, id, seq, body, endpoint_id, payload, tries) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                key,
                id.to_string(),
                next(saved),
                Value::Object(d.fields.clone()).to_string(),
                d.endpoint.to_string(),
                &d.payload[..],
                Value::Array(d.tries.iter().cloned().map(Value::Object).collect()).to_string()
            ],
        )?;
        saved.deliveries.insert(id);
    }
    if present.len() != saved.deliveries.len() {
        let gone: Vec<Uuid> = saved
            .deliveries
            .iter()
            .filter(|id| !present.contains(id))
            .copied()
            .collect();
        for id in gone {
            tx.execute(
                "DELETE FROM deliveries WHERE key = ?1 AND id = ?2",
                params![key, id.to_string()],
            )?;
            saved.deliveries.remove(&id);
        }
    }
    // Logs: what was appended (scanned from the end) and what was dropped.
    for kind in LOGS {
        let rows = log_rows(tenant, kind);
        let mut added = 0;
        for (id, body) in rows.iter().rev() {
            if saved.logs.get(kind).is_some_and(|k| k.contains(id)) {
                break;
            }
            let seq = next(saved);
            tx.execute(
                "INSERT OR REPLACE INTO records (key, kind, id, seq, body) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![key, kind, id, seq, Value::Object(body.clone()).to_string()],
            )?;
            added += 1;
        }
        let known = saved.logs.entry(kind).or_default();
        for (id, _) in rows.iter().rev().take(added) {
            known.insert(id.clone());
        }
        if known.len() != rows.len() {
            let present: HashSet<&String> = rows.iter().map(|(id, _)| id).collect();
            let gone: Vec<String> = known.iter().filter(|id| !present.contains(id)).cloned().collect();
            for id in gone {
                tx.execute(
                    "DELETE FROM records WHERE key = ?1 AND kind = ?2 AND id = ?3",
                    params![key, kind, id],
                )?;
                known.remove(&id);
            }
        }
    }
    saved.written = true;
    Ok(())
}
