//! Reading the state file back at start: one named part per table, each
//! reading its rows once, in write order (`n`), onto the key they name
//! (`key_n`); a row whose key is gone is no one's and is skipped. Then the
//! record of what each key has saved (`Saved`), so that the first request
//! writes only its own rows, and the answers kept under idempotency keys.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use rusqlite::Connection;
use serde_json::Value;
use uuid::Uuid;

use super::write::hash_of;
use super::{KeptAnswer, LOGS, Loaded, Numbers, Opened, Saved, known_content_type, refused};
use crate::sandbox::world::clock::Desk;
use crate::sandbox::world::replays::Stored;
use crate::sandbox::world::state::{Bundle, Delivery, Endpoint, Object, Tenant, fingerprint, object, str_of};

/// A key as it is read: its name, state and the rows it has.
struct Reading {
    key: String,
    tenant: Tenant,
    /// Its bundles' rows (`bundles.n`), in order.
    bundles: Vec<i64>,
    /// Its log rows (`records.n`), by kind and id.
    logs: HashMap<&'static str, HashMap<String, i64>>,
}

/// The keys being read, by number (`keys.n`).
type Readings = HashMap<i64, Reading>;

/// The file being read: its connection, and its path for the errors.
struct Reader<'c> {
    conn: &'c Connection,
    path: &'c std::path::Path,
}

impl Opened {
    /// Every key the file holds, and the answers kept under idempotency
    /// keys; and the next free numbers of keys, bundles and records. Each
    /// table is read once, in write order.
    pub(super) fn load(&self) -> Result<(Loaded, Numbers), String> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let file = Reader {
            conn: &conn,
            path: &self.path,
        };
        let mut keys = file.keys()?;
        file.bundles(&mut keys)?;
        file.accounts(&mut keys)?;
        file.comment_tasks(&mut keys)?;
        file.webhook_endpoints(&mut keys)?;
        file.deliveries(&mut keys)?;
        file.records(&mut keys)?;
        let numbers = file.numbers()?;
        let (tenants, names) = tenants_of(keys);
        let kept = file.replays(&names)?;
        Ok(((tenants, kept), numbers))
    }
}

impl Reader<'_> {
    fn bad(&self, e: rusqlite::Error) -> String {
        refused(self.path, format!("could not be read: {e}"))
    }

    /// A JSON column of key `key`'s row (`what` names it in the error).
    fn json(&self, text: &str, key: &str, what: &str) -> Result<Value, String> {
        serde_json::from_str(text)
            .map_err(|e| refused(self.path, format!("key {}: {what} is not JSON: {e}", fingerprint(key))))
    }

    /// Every row of `sql` (`n`, `key_n`, `body`, then the table's other
    /// columns), in order, handed to `take` with the key it names.
    fn rows(
        &self,
        sql: &str,
        keys: &mut Readings,
        mut take: impl FnMut(&mut Reading, i64, String, &rusqlite::Row<'_>) -> Result<(), String>,
    ) -> Result<(), String> {
        let mut statement = self.conn.prepare(sql).map_err(|e| self.bad(e))?;
        let mut rows = statement.query([]).map_err(|e| self.bad(e))?;
        while let Some(row) = rows.next().map_err(|e| self.bad(e))? {
            let n: i64 = row.get(0).map_err(|e| self.bad(e))?;
            let key_n: i64 = row.get(1).map_err(|e| self.bad(e))?;
            let body: String = row.get(2).map_err(|e| self.bad(e))?;
            // A row whose key is gone is no one's: skipped.
            if let Some(reading) = keys.get_mut(&key_n) {
                take(reading, n, body, row)?;
            }
        }
        Ok(())
    }

    /// `keys`: each key's balance, profile and desk.
    fn keys(&self) -> Result<Readings, String> {
        let mut keys = Readings::new();
        let mut statement = self
            .conn
            .prepare("SELECT n, key, balance, profile, desk FROM keys ORDER BY n")
            .map_err(|e| self.bad(e))?;
        let rows = statement
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, f64>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                ))
            })
            .map_err(|e| self.bad(e))?;
        for row in rows {
            let (n, key, balance, profile, desk) = row.map_err(|e| self.bad(e))?;
            let desk = Desk::from_json(&self.json(&desk, &key, "desk")?)
                .map_err(|e| refused(self.path, format!("key {}: desk: {e}", fingerprint(&key))))?;
            let tenant = Tenant::empty(object(self.json(&profile, &key, "profile")?), balance, desk);
            keys.insert(
                n,
                Reading {
                    key,
                    tenant,
                    bundles: Vec::new(),
                    logs: HashMap::new(),
                },
            );
        }
        Ok(keys)
    }

    /// `bundles`: each with its `account` and `videos`, and its row.
    fn bundles(&self, keys: &mut Readings) -> Result<(), String> {
        self.rows(
            "SELECT n, key_n, body FROM bundles ORDER BY n",
            keys,
            |reading, n, body, _| {
                let mut fields = object(self.json(&body, &reading.key, "bundles")?);
                let account = fields.remove("account").and_then(|a| a.as_object().cloned());
                let videos = match fields.remove("videos") {
                    Some(Value::Array(v)) => v.into_iter().map(object).collect(),
                    _ => Vec::new(),
                };
                reading.tenant.bundles.push(Bundle {
                    fields,
                    account,
                    videos,
                });
                reading.bundles.push(n);
                Ok(())
            },
        )
    }

    /// `accounts`.
    fn accounts(&self, keys: &mut Readings) -> Result<(), String> {
        self.bodies("accounts", keys, |tenant| &mut tenant.accounts)
    }

    /// `comment_tasks`.
    fn comment_tasks(&self, keys: &mut Readings) -> Result<(), String> {
        self.bodies("comment_tasks", keys, |tenant| &mut tenant.comments)
    }

    /// A table of bodies alone (`n`, `key_n`, `body`), each onto its key's `list`.
    fn bodies(
        &self,
        table: &str,
        keys: &mut Readings,
        list: fn(&mut Tenant) -> &mut Vec<Object>,
    ) -> Result<(), String> {
        self.rows(
            &format!("SELECT n, key_n, body FROM {table} ORDER BY n"),
            keys,
            |reading, _, body, _| {
                let body = object(self.json(&body, &reading.key, table)?);
                list(&mut reading.tenant).push(body);
                Ok(())
            },
        )
    }

    /// `webhook_endpoints`, each with its signing secret.
    fn webhook_endpoints(&self, keys: &mut Readings) -> Result<(), String> {
        self.rows(
            "SELECT n, key_n, body, secret FROM webhook_endpoints ORDER BY n",
            keys,
            |reading, _, body, row| {
                let secret: String = row.get(3).map_err(|e| self.bad(e))?;
                reading.tenant.endpoints.push(Endpoint {
                    fields: object(self.json(&body, &reading.key, "webhook_endpoints")?),
                    secret,
                });
                Ok(())
            },
        )
    }

    /// `deliveries`: the log entry, its endpoint, the envelope as sent and
    /// its attempts.
    fn deliveries(&self, keys: &mut Readings) -> Result<(), String> {
        self.rows(
            "SELECT n, key_n, body, endpoint_id, payload, tries FROM deliveries ORDER BY n",
            keys,
            |reading, _, body, row| {
                let endpoint: String = row.get(3).map_err(|e| self.bad(e))?;
                let payload: Vec<u8> = row.get(4).map_err(|e| self.bad(e))?;
                let tries: String = row.get(5).map_err(|e| self.bad(e))?;
                let tries = match self.json(&tries, &reading.key, "deliveries.tries")? {
                    Value::Array(t) => t.into_iter().map(object).collect(),
                    _ => Vec::new(),
                };
                reading.tenant.deliveries.push(Delivery {
                    fields: object(self.json(&body, &reading.key, "deliveries")?),
                    endpoint: Uuid::parse_str(&endpoint).unwrap_or_default(),
                    payload: bytes::Bytes::from(payload),
                    tries,
                });
                Ok(())
            },
        )
    }

    /// `records`: each kind of log (`LOGS`) onto its list; a kind this
    /// build does not know, or a `refreshed` row it cannot read, is skipped.
    fn records(&self, keys: &mut Readings) -> Result<(), String> {
        self.rows(
            "SELECT n, key_n, body, kind, id FROM records ORDER BY n",
            keys,
            |reading, n, body, row| {
                let kind: String = row.get(3).map_err(|e| self.bad(e))?;
                let id: String = row.get(4).map_err(|e| self.bad(e))?;
                let Some(kind) = LOGS.iter().copied().find(|k| *k == kind) else {
                    return Ok(());
                };
                let body = object(self.json(&body, &reading.key, kind)?);
                let tenant = &mut reading.tenant;
                match kind {
                    "transactions" => tenant.transactions.push(body),
                    "uploads" => tenant.uploads.push(body),
                    "reports" => tenant.reports.push(body),
                    "edit_requests" => tenant.edit_requests.push(body),
                    _ => {
                        let account = str_of(&body, "id").and_then(|a| Uuid::parse_str(a).ok());
                        let at = str_of(&body, "at")
                            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                            .map(|t| t.with_timezone(&Utc));
                        match (account, at) {
                            (Some(account), Some(at)) => tenant.refreshed.push((account, at)),
                            _ => return Ok(()),
                        }
                    }
                }
                reading.logs.entry(kind).or_default().insert(id, n);
                Ok(())
            },
        )
    }

    /// The next free numbers of keys, bundles and records.
    fn numbers(&self) -> Result<Numbers, String> {
        let most = |sql: &str| -> Result<i64, String> {
            self.conn
                .query_row(sql, [], |r| r.get::<_, Option<i64>>(0))
                .map_err(|e| self.bad(e))
                .map(|n| n.unwrap_or(0))
        };
        Ok(Numbers {
            key: std::sync::atomic::AtomicI64::new(most("SELECT max(n) FROM keys")? + 1),
            bundle: std::sync::atomic::AtomicI64::new(most("SELECT max(n) FROM bundles")? + 1),
            record: std::sync::atomic::AtomicI64::new(most("SELECT max(n) FROM records")? + 1),
        })
    }

    /// `replays`: the answers kept under idempotency keys, of the keys in
    /// `names`; a row of another key, or one this build cannot read, is
    /// skipped.
    fn replays(&self, names: &HashMap<i64, String>) -> Result<Vec<KeptAnswer>, String> {
        let mut kept = Vec::new();
        let mut statement = self
            .conn
            .prepare("SELECT key_n, idempotency_key, fingerprint, status, content_type, body, kept_at FROM replays ORDER BY n")
            .map_err(|e| self.bad(e))?;
        let rows = statement
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Vec<u8>>(2)?,
                    r.get::<_, u16>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, Vec<u8>>(5)?,
                    r.get::<_, String>(6)?,
                ))
            })
            .map_err(|e| self.bad(e))?;
        for row in rows {
            let (key_n, key, fp, status, content_type, body, kept_at) = row.map_err(|e| self.bad(e))?;
            let (Some(tenant), Ok(fingerprint), Ok(kept_at)) = (
                names.get(&key_n),
                <[u8; 32]>::try_from(fp.as_slice()),
                DateTime::parse_from_rfc3339(&kept_at),
            ) else {
                continue;
            };
            kept.push(KeptAnswer {
                tenant: tenant.clone(),
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
        Ok(kept)
    }
}

/// The keys read, by name, each with its record of what is saved; and
/// their names by number (for the kept answers).
fn tenants_of(keys: Readings) -> (HashMap<String, Tenant>, HashMap<i64, String>) {
    let mut tenants = HashMap::with_capacity(keys.len());
    let mut names = HashMap::with_capacity(keys.len());
    for (n, reading) in keys {
        let mut tenant = reading.tenant;
        tenant.saved = saved_as_loaded(&tenant, n, reading.bundles, reading.logs);
        names.insert(n, reading.key.clone());
        tenants.insert(reading.key, tenant);
    }
    (tenants, names)
}

/// What a tenant read back from the file has saved: all of it, with the
/// rows of its bundles and logs.
fn saved_as_loaded(
    tenant: &Tenant,
    key_n: i64,
    bundles: Vec<i64>,
    logs: HashMap<&'static str, HashMap<String, i64>>,
) -> Saved {
    let mut saved = Saved {
        written: true,
        key_n,
        bundles,
        desk: tenant.desk.version(),
        profile: hash_of(&tenant.user),
        logs,
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
    saved
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use serde_json::json;

    use super::super::testing::{apply, in_memory, numbers, statements};
    use super::super::{Ops, write};
    use super::*;

    /// A file holding `tenant` under the key `"k"`, written as a request would.
    fn file_with(tenant: &Tenant) -> Opened {
        let opened = in_memory();
        let mut ops = Ops::default();
        let mut saved = Saved {
            key_n: 1,
            ..Saved::default()
        };
        write::write_changes(&mut ops, &numbers(), "k", tenant, &mut saved).unwrap();
        apply(&opened, &ops);
        opened
    }

    /// Runs `then` with a reader of the file.
    fn reader<T>(opened: &Opened, then: impl FnOnce(&Reader<'_>) -> T) -> T {
        let conn = opened.conn.lock().unwrap();
        then(&Reader {
            conn: &conn,
            path: &opened.path,
        })
    }

    /// Reads the file's keys, then runs `part` over them.
    fn read(opened: &Opened, part: impl Fn(&Reader<'_>, &mut Readings) -> Result<(), String>) -> Readings {
        reader(opened, |file| {
            let mut keys = file.keys().unwrap();
            part(file, &mut keys).unwrap();
            keys
        })
    }

    /// Runs one statement of a test's own on the file.
    fn run(opened: &Opened, sql: &str, values: &[&dyn rusqlite::ToSql]) {
        opened.conn.lock().unwrap().execute(sql, values).unwrap();
    }

    fn tenant() -> Tenant {
        Tenant::new(42.5, "k", Utc::now())
    }

    #[test]
    fn a_key_is_read_with_its_balance_and_profile() {
        let tenant = tenant();
        let keys = read(&file_with(&tenant), |_, _| Ok(()));
        let reading = &keys[&1];
        assert_eq!(reading.key, "k");
        assert_eq!(reading.tenant.balance, 42.5);
        assert_eq!(reading.tenant.user, tenant.user);
    }

    #[test]
    fn a_bundle_is_read_with_its_account_videos_and_row() {
        let mut tenant = tenant();
        tenant.bundles.push(Bundle {
            fields: object(json!({"id": "b1"})),
            account: Some(object(json!({"id": "a"}))),
            videos: vec![object(json!({"position": 1})), object(json!({"position": 2}))],
        });
        let keys = read(&file_with(&tenant), |f, k| f.bundles(k));
        let reading = &keys[&1];
        let bundle = &reading.tenant.bundles[0];
        assert_eq!(str_of(&bundle.fields, "id"), Some("b1"));
        assert!(
            bundle.fields.get("account").is_none(),
            "the slots are apart from the fields"
        );
        assert_eq!(bundle.account.as_ref().and_then(|a| str_of(a, "id")), Some("a"));
        assert_eq!(bundle.videos.len(), 2);
        assert_eq!(reading.bundles, [1]);
    }

    #[test]
    fn accounts_comment_tasks_and_endpoints_are_read_back() {
        let mut tenant = tenant();
        tenant.comments.push(object(json!({"id": "c"})));
        tenant.endpoints.push(Endpoint {
            fields: object(json!({"id": "e"})),
            secret: "whsec_x".into(),
        });
        let opened = file_with(&tenant);
        let keys = read(&opened, |f, k| f.accounts(k));
        assert_eq!(keys[&1].tenant.accounts, tenant.accounts);
        let keys = read(&opened, |f, k| f.comment_tasks(k));
        assert_eq!(keys[&1].tenant.comments, tenant.comments);
        let keys = read(&opened, |f, k| f.webhook_endpoints(k));
        assert_eq!(keys[&1].tenant.endpoints[0].secret, "whsec_x");
        assert_eq!(keys[&1].tenant.endpoints[0].fields, tenant.endpoints[0].fields);
    }

    #[test]
    fn a_delivery_is_read_with_its_endpoint_payload_and_tries() {
        let mut tenant = tenant();
        let endpoint = Uuid::new_v4();
        tenant.deliveries.push(Delivery {
            fields: object(json!({"id": Uuid::new_v4(), "status": "pending"})),
            endpoint,
            payload: bytes::Bytes::from_static(b"{\"type\":\"bundle.created\"}"),
            tries: vec![object(json!({"status": 500}))],
        });
        let keys = read(&file_with(&tenant), |f, k| f.deliveries(k));
        let delivery = &keys[&1].tenant.deliveries[0];
        assert_eq!(delivery.endpoint, endpoint);
        assert_eq!(delivery.payload, tenant.deliveries[0].payload);
        assert_eq!(delivery.tries, tenant.deliveries[0].tries);
    }

    #[test]
    fn records_are_read_by_kind_and_unknown_kinds_skipped() {
        let mut tenant = tenant();
        tenant.transactions.push(object(json!({"id": "t1"})));
        tenant.reports.push(object(json!({"id": "r1"})));
        let account = Uuid::new_v4();
        tenant.refreshed.push((account, Utc::now()));
        let opened = file_with(&tenant);
        run(
            &opened,
            "INSERT INTO records (key_n, kind, id, body) VALUES (1, 'newer_kind', 'x', '{}'), \
             (1, 'refreshed', 'y', '{\"id\": \"not a uuid\"}')",
            &[],
        );
        let keys = read(&opened, |f, k| f.records(k));
        let reading = &keys[&1];
        // By content: rows appended in one write are numbered from the
        // newest (`write_log` scans from the end), so they read back in
        // the other order.
        let ids = |list: &[Object]| {
            let mut ids: Vec<String> = list.iter().filter_map(|o| str_of(o, "id").map(str::to_owned)).collect();
            ids.sort();
            ids
        };
        assert_eq!(ids(&reading.tenant.transactions), ids(&tenant.transactions));
        assert_eq!(reading.tenant.reports, tenant.reports);
        assert_eq!(reading.tenant.refreshed.len(), 1, "the unreadable refresh is skipped");
        assert_eq!(reading.tenant.refreshed[0].0, account);
        assert!(!reading.logs.contains_key("newer_kind"));
        assert_eq!(reading.logs["transactions"].len(), 2, "the starting grant and t1");
    }

    #[test]
    fn a_row_whose_key_is_gone_is_skipped() {
        let opened = file_with(&tenant());
        run(
            &opened,
            "INSERT INTO accounts (key_n, id, body) VALUES (99, 'orphan', '{}')",
            &[],
        );
        let keys = read(&opened, |f, k| f.accounts(k));
        assert_eq!(keys.len(), 1);
        assert!(
            keys[&1]
                .tenant
                .accounts
                .iter()
                .all(|a| str_of(a, "id") != Some("orphan"))
        );
    }

    #[test]
    fn a_column_that_is_not_json_refuses_the_file_naming_the_key() {
        let opened = file_with(&tenant());
        run(
            &opened,
            "INSERT INTO comment_tasks (key_n, id, body) VALUES (1, 'c', 'not json')",
            &[],
        );
        let refused = reader(&opened, |file| {
            let mut keys = file.keys().unwrap();
            file.comment_tasks(&mut keys).unwrap_err()
        });
        assert!(
            refused.contains(fingerprint("k")) && refused.contains("comment_tasks"),
            "{refused}"
        );
    }

    #[test]
    fn the_next_numbers_follow_the_highest_rows() {
        let mut tenant = tenant();
        tenant.transactions.push(object(json!({"id": "t1"})));
        let opened = file_with(&tenant);
        let numbers = reader(&opened, |file| file.numbers().unwrap());
        assert_eq!(Numbers::next(&numbers.key), 2);
        assert_eq!(Numbers::next(&numbers.bundle), 1, "no bundle yet");
        // The starting grant and t1.
        assert_eq!(Numbers::next(&numbers.record), 3);
    }

    #[test]
    fn kept_answers_of_known_keys_are_read_and_unreadable_ones_skipped() {
        let opened = file_with(&tenant());
        let good = [7u8; 32];
        run(
            &opened,
            "INSERT INTO replays (key_n, idempotency_key, fingerprint, status, content_type, body, kept_at) \
             VALUES (1, 'good', ?1, 201, 'application/json', x'7b7d', '2026-05-25T00:00:00Z'), \
             (2, 'other key', ?1, 201, NULL, x'', '2026-05-25T00:00:00Z'), \
             (1, 'short fingerprint', x'00', 201, NULL, x'', '2026-05-25T00:00:00Z')",
            &[&&good[..]],
        );
        let names = HashMap::from([(1, "k".to_owned())]);
        let kept = reader(&opened, |file| file.replays(&names).unwrap());
        assert_eq!(kept.len(), 1, "the other key's and the short fingerprint's are skipped");
        assert_eq!((kept[0].tenant.as_str(), kept[0].key.as_str()), ("k", "good"));
        assert_eq!(kept[0].stored.content_type, Some("application/json"));
        assert_eq!(kept[0].fingerprint, [7u8; 32]);
    }

    #[test]
    fn a_key_read_back_writes_nothing_but_its_balance_next() {
        let mut tenant = tenant();
        tenant.bundles.push(Bundle {
            fields: object(json!({"id": "b1"})),
            account: None,
            videos: Vec::new(),
        });
        tenant.comments.push(object(json!({"id": "c"})));
        tenant.transactions.push(object(json!({"id": "t1"})));
        let opened = file_with(&tenant);
        let ((mut tenants, _), numbers) = opened.load().unwrap();
        let loaded = tenants.get_mut("k").unwrap();
        let mut saved = std::mem::take(&mut loaded.saved);
        assert!(saved.written && saved.key_n == 1);
        let mut ops = Ops::default();
        write::write_changes(&mut ops, &numbers, "k", loaded, &mut saved).unwrap();
        assert_eq!(statements(&ops), ["UPDATE keys SET balance = ?2 WHERE n = ?1"]);
    }
}
