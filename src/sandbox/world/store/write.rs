//! Writing a key's changes: the statements that bring its rows in the
//! file to its state in memory, given what of it is saved already
//! (`Saved`, moved on as they are recorded). One named part per table or
//! kind, each writing only what changed:
//!
//! - [`write_key`]: the `keys` row (the balance always; the profile and the
//!   desk only when they changed);
//! - [`write_bundles`]: new bundles appended, touched ones by their row;
//! - [`write_by_hash`]: `accounts`, `comment_tasks` and
//!   `webhook_endpoints`, by id and content hash, and the rows gone deleted;
//! - [`write_deliveries`]: new deliveries (an attempt updates its own row,
//!   `Store::save_delivery`), and the ones the log dropped;
//! - [`write_log`]: each kind of `records`, what was appended (scanned
//!   from the end) and what was dropped.

use std::collections::HashSet;
use std::hash::{Hash, Hasher};

use rusqlite::params;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{LOGS, Numbers, Ops, Saved};
use crate::sandbox::world::state::{Bundle, Object, Tenant, fingerprint, object, stamp, str_of};

/// A row of a small table: its id, body and (for an endpoint) secret.
type Row<'a> = (&'a str, &'a Object, Option<&'a str>);

/// The statements that bring key `key`'s rows to `tenant`, given `saved`
/// (moved on as they are written; its `key_n` is given).
pub(super) fn write_changes(
    tx: &mut Ops,
    numbers: &Numbers,
    key: &str,
    tenant: &Tenant,
    saved: &mut Saved,
) -> rusqlite::Result<()> {
    write_key(tx, key, tenant, saved)?;
    write_bundles(tx, numbers, tenant, saved)?;
    for (table, rows) in small_tables(tenant) {
        write_by_hash(tx, table, &rows, saved)?;
    }
    write_deliveries(tx, tenant, saved)?;
    for kind in LOGS {
        write_log(tx, numbers, tenant, kind, saved)?;
    }
    saved.written = true;
    Ok(())
}

/// The key's row: made or replaced whole on its first write and when its
/// desk (which may hold thousands of steps) changed; otherwise its balance,
/// and its profile when that changed.
fn write_key(tx: &mut Ops, key: &str, tenant: &Tenant, saved: &mut Saved) -> rusqlite::Result<()> {
    let key_n = saved.key_n;
    let desk = tenant.desk.version();
    if !saved.written || desk != saved.desk {
        tx.execute(
            "INSERT INTO keys (n, key, fingerprint, balance, profile, desk, created_at) VALUES (?7, ?1, ?2, ?3, ?4, ?5, ?6) \
             ON CONFLICT (key) DO UPDATE SET balance = excluded.balance, profile = excluded.profile, desk = excluded.desk",
            params![
                key,
                fingerprint(key),
                tenant.balance,
                serde_json::to_string(&tenant.user).unwrap_or_default(),
                tenant.desk.to_json().to_string(),
                str_of(&tenant.user, "created_at").unwrap_or_default(),
                key_n,
            ],
        )?;
    } else {
        let profile = hash_of(&tenant.user);
        if profile == saved.profile {
            tx.prepare_cached("UPDATE keys SET balance = ?2 WHERE n = ?1")?
                .execute(params![key_n, tenant.balance])?;
        } else {
            tx.prepare_cached("UPDATE keys SET balance = ?2, profile = ?3 WHERE n = ?1")?
                .execute(params![
                    key_n,
                    tenant.balance,
                    serde_json::to_string(&tenant.user).unwrap_or_default()
                ])?;
        }
    }
    saved.desk = desk;
    saved.profile = hash_of(&tenant.user);
    Ok(())
}

/// Bundles: the new ones appended (each given its row number), the ones
/// a request touched written again by their row.
fn write_bundles(tx: &mut Ops, numbers: &Numbers, tenant: &Tenant, saved: &mut Saved) -> rusqlite::Result<()> {
    let key_n = saved.key_n;
    let known = if saved.written {
        saved.bundles.len().min(tenant.bundles.len())
    } else {
        0
    };
    saved.bundles.truncate(known);
    for b in &tenant.bundles[known..] {
        let n = Numbers::next(&numbers.bundle);
        tx.prepare_cached("INSERT INTO bundles (n, key_n, id, body) VALUES (?1, ?2, ?3, ?4)")?
            .execute(params![
                n,
                key_n,
                str_of(&b.fields, "id").unwrap_or_default(),
                bundle_row(b)
            ])?;
        saved.bundles.push(n);
    }
    for id in &tenant.touched {
        if let Some((at, b)) = tenant.bundles[..known]
            .iter()
            .enumerate()
            .find(|(_, b)| str_of(&b.fields, "id") == Some(id.as_str()))
        {
            tx.prepare_cached("UPDATE bundles SET body = ?2 WHERE n = ?1")?
                .execute(params![saved.bundles[at], bundle_row(b)])?;
        }
    }
    Ok(())
}

/// The small tables' rows, by table: accounts, comment tasks and endpoints.
fn small_tables(tenant: &Tenant) -> [(&'static str, Vec<Row<'_>>); 3] {
    [
        (
            "accounts",
            tenant
                .accounts
                .iter()
                .map(|o| (str_of(o, "id").unwrap_or_default(), o, None))
                .collect(),
        ),
        (
            "comment_tasks",
            tenant
                .comments
                .iter()
                .map(|o| (str_of(o, "id").unwrap_or_default(), o, None))
                .collect(),
        ),
        (
            "webhook_endpoints",
            tenant
                .endpoints
                .iter()
                .map(|e| {
                    (
                        str_of(&e.fields, "id").unwrap_or_default(),
                        &e.fields,
                        Some(e.secret.as_str()),
                    )
                })
                .collect(),
        ),
    ]
}

/// One small table: each row whose content hash changed (or is new)
/// written, each row no longer there deleted.
fn write_by_hash(tx: &mut Ops, table: &'static str, rows: &[Row<'_>], saved: &mut Saved) -> rusqlite::Result<()> {
    let key_n = saved.key_n;
    for (id, body, secret) in rows {
        let hash = hash_of(body);
        if saved.hashes.get(&(table, (*id).to_owned())) == Some(&hash) {
            continue;
        }
        let text = serde_json::to_string(body).unwrap_or_default();
        match secret {
            Some(secret) => tx
                .prepare_cached(
                    "INSERT INTO webhook_endpoints (key_n, id, body, secret) VALUES (?1, ?2, ?3, ?4) \
                     ON CONFLICT (key_n, id) DO UPDATE SET body = excluded.body, secret = excluded.secret",
                )?
                .execute(params![key_n, id, text, secret])?,
            None => tx
                .prepare_cached(&format!(
                    "INSERT INTO {table} (key_n, id, body) VALUES (?1, ?2, ?3) ON CONFLICT (key_n, id) DO UPDATE SET body = excluded.body"
                ))?
                .execute(params![key_n, id, text])?,
        };
        saved.hashes.insert((table, (*id).to_owned()), hash);
    }
    let known = saved.hashes.keys().filter(|(t, _)| *t == table).count();
    if known != rows.len() {
        let present: HashSet<&str> = rows.iter().map(|(id, _, _)| *id).collect();
        let gone: Vec<String> = saved
            .hashes
            .keys()
            .filter(|(t, id)| *t == table && !present.contains(id.as_str()))
            .map(|(_, id)| id.clone())
            .collect();
        for id in gone {
            tx.execute(
                &format!("DELETE FROM {table} WHERE key_n = ?1 AND id = ?2"),
                params![key_n, id],
            )?;
            saved.hashes.remove(&(table, id));
        }
    }
    Ok(())
}

/// Deliveries: new rows when queued (attempts update their own row), and
/// the rows of those the log dropped deleted.
fn write_deliveries(tx: &mut Ops, tenant: &Tenant, saved: &mut Saved) -> rusqlite::Result<()> {
    let key_n = saved.key_n;
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
            "INSERT OR REPLACE INTO deliveries (key_n, id, body, endpoint_id, payload, tries) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                key_n,
                id.to_string(),
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
                "DELETE FROM deliveries WHERE key_n = ?1 AND id = ?2",
                params![key_n, id.to_string()],
            )?;
            saved.deliveries.remove(&id);
        }
    }
    Ok(())
}

/// One kind of log (`records`): what was appended, scanned from the end
/// up to the first row already saved, and what was dropped.
fn write_log(
    tx: &mut Ops,
    numbers: &Numbers,
    tenant: &Tenant,
    kind: &'static str,
    saved: &mut Saved,
) -> rusqlite::Result<()> {
    let key_n = saved.key_n;
    let rows = log_rows(tenant, kind);
    let mut added = Vec::new();
    for (id, body) in rows.rev() {
        if saved.logs.get(kind).is_some_and(|k| k.contains_key(id.as_ref())) {
            break;
        }
        let n = Numbers::next(&numbers.record);
        tx.prepare_cached("INSERT INTO records (n, key_n, kind, id, body) VALUES (?1, ?2, ?3, ?4, ?5)")?
            .execute(params![
                n,
                key_n,
                kind,
                id.as_ref(),
                serde_json::to_string(body.as_ref()).unwrap_or_default()
            ])?;
        added.push((id.into_owned(), n));
    }
    let known = saved.logs.entry(kind).or_default();
    known.extend(added);
    let len = log_len(tenant, kind);
    if known.len() != len {
        let present: HashSet<String> = log_rows(tenant, kind).map(|(id, _)| id.into_owned()).collect();
        let gone: Vec<String> = known.keys().filter(|id| !present.contains(*id)).cloned().collect();
        for id in gone {
            if let Some(n) = known.remove(&id) {
                tx.prepare_cached("DELETE FROM records WHERE n = ?1")?
                    .execute(params![n])?;
            }
        }
    }
    Ok(())
}

/// A fast hash of a JSON value's content (object keys in their order).
pub(super) fn hash_of(value: &Object) -> u64 {
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

/// A bundle as its row holds it: its fields, `account` and `videos`
/// (written out without copying them into one object).
fn bundle_row(bundle: &Bundle) -> String {
    let mut out = serde_json::to_string(&bundle.fields).unwrap_or_else(|_| "{}".into());
    out.pop();
    if !bundle.fields.is_empty() {
        out.push(',');
    }
    out.push_str("\"account\":");
    out.push_str(&serde_json::to_string(&bundle.account).unwrap_or_else(|_| "null".into()));
    out.push_str(",\"videos\":");
    out.push_str(&serde_json::to_string(&bundle.videos).unwrap_or_else(|_| "[]".into()));
    out.push('}');
    out
}

/// A log's rows: `(id, body)`, borrowed (the `refreshed` pairs are made),
/// oldest first; walked from the end to find what was appended.
fn log_rows<'a>(
    tenant: &'a Tenant,
    kind: &str,
) -> Box<dyn DoubleEndedIterator<Item = (std::borrow::Cow<'a, str>, std::borrow::Cow<'a, Object>)> + 'a> {
    use std::borrow::Cow;
    let with_ids = |list: &'a [Object]| -> Box<dyn DoubleEndedIterator<Item = (Cow<'a, str>, Cow<'a, Object>)> + 'a> {
        Box::new(
            list.iter()
                .map(|o| (Cow::Borrowed(str_of(o, "id").unwrap_or_default()), Cow::Borrowed(o))),
        )
    };
    match kind {
        "transactions" => with_ids(&tenant.transactions),
        "uploads" => with_ids(&tenant.uploads),
        "reports" => with_ids(&tenant.reports),
        "edit_requests" => with_ids(&tenant.edit_requests),
        _ => Box::new(tenant.refreshed.iter().map(|(account, at)| {
            (
                Cow::Owned(format!("{account}@{}", stamp(*at))),
                Cow::Owned(object(json!({"id": account, "at": stamp(*at)}))),
            )
        })),
    }
}

/// How many rows a log has.
fn log_len(tenant: &Tenant, kind: &str) -> usize {
    match kind {
        "transactions" => tenant.transactions.len(),
        "uploads" => tenant.uploads.len(),
        "reports" => tenant.reports.len(),
        "edit_requests" => tenant.edit_requests.len(),
        _ => tenant.refreshed.len(),
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::super::testing::{numbers, statements};
    use super::*;
    use crate::sandbox::world::state::{Delivery, Endpoint};

    fn tenant() -> Tenant {
        Tenant::new(100.0, "k", Utc::now())
    }

    fn bundle(id: &str) -> Bundle {
        Bundle {
            fields: object(json!({"id": id, "status": "draft"})),
            account: Some(object(json!({"id": "a"}))),
            videos: vec![object(json!({"position": 1}))],
        }
    }

    fn written() -> Saved {
        Saved {
            written: true,
            key_n: 7,
            ..Saved::default()
        }
    }

    #[test]
    fn a_key_is_written_whole_once_then_only_its_balance_or_profile() {
        let mut tenant = tenant();
        let mut saved = Saved {
            key_n: 7,
            ..Saved::default()
        };
        let mut ops = Ops::default();
        write_key(&mut ops, "k", &tenant, &mut saved).unwrap();
        assert!(
            statements(&ops)[0].starts_with("INSERT INTO keys"),
            "{:?}",
            statements(&ops)
        );
        saved.written = true;
        let mut ops = Ops::default();
        write_key(&mut ops, "k", &tenant, &mut saved).unwrap();
        assert_eq!(statements(&ops), ["UPDATE keys SET balance = ?2 WHERE n = ?1"]);
        tenant.user.insert("name".into(), json!("renamed"));
        let mut ops = Ops::default();
        write_key(&mut ops, "k", &tenant, &mut saved).unwrap();
        assert_eq!(
            statements(&ops),
            ["UPDATE keys SET balance = ?2, profile = ?3 WHERE n = ?1"]
        );
        assert_eq!(saved.profile, hash_of(&tenant.user), "the new profile is saved");
    }

    #[test]
    fn new_bundles_are_appended_and_touched_ones_rewritten_by_their_row() {
        let mut tenant = tenant();
        tenant.bundles = vec![bundle("b1"), bundle("b2")];
        let (numbers, mut saved) = (numbers(), written());
        let mut ops = Ops::default();
        write_bundles(&mut ops, &numbers, &tenant, &mut saved).unwrap();
        assert_eq!(statements(&ops).len(), 2);
        assert!(statements(&ops).iter().all(|s| s.starts_with("INSERT INTO bundles")));
        assert_eq!(saved.bundles, [1, 2], "each bundle's row number is saved");
        let mut ops = Ops::default();
        write_bundles(&mut ops, &numbers, &tenant, &mut saved).unwrap();
        assert!(ops.is_empty(), "nothing new, nothing touched: nothing written");
        tenant.touched.insert("b2".into());
        let mut ops = Ops::default();
        write_bundles(&mut ops, &numbers, &tenant, &mut saved).unwrap();
        assert_eq!(statements(&ops), ["UPDATE bundles SET body = ?2 WHERE n = ?1"]);
        assert_eq!(ops.0[0].1[0], rusqlite::types::Value::Integer(2), "by its row");
    }

    #[test]
    fn a_small_table_writes_what_changed_and_deletes_what_is_gone() {
        let a = object(json!({"id": "a", "n": 1}));
        let b = object(json!({"id": "b", "n": 1}));
        let mut saved = written();
        let mut ops = Ops::default();
        write_by_hash(&mut ops, "accounts", &[("a", &a, None), ("b", &b, None)], &mut saved).unwrap();
        assert_eq!(statements(&ops).len(), 2);
        let mut ops = Ops::default();
        write_by_hash(&mut ops, "accounts", &[("a", &a, None), ("b", &b, None)], &mut saved).unwrap();
        assert!(ops.is_empty(), "unchanged content is not written again");
        let changed = object(json!({"id": "a", "n": 2}));
        let mut ops = Ops::default();
        write_by_hash(&mut ops, "accounts", &[("a", &changed, None)], &mut saved).unwrap();
        let sql = statements(&ops);
        assert!(sql[0].starts_with("INSERT INTO accounts"), "{sql:?}");
        assert_eq!(sql[1], "DELETE FROM accounts WHERE key_n = ?1 AND id = ?2");
        assert_eq!(sql.len(), 2);
        let mut ops = Ops::default();
        write_by_hash(&mut ops, "webhook_endpoints", &[("e", &a, Some("whsec"))], &mut saved).unwrap();
        assert!(statements(&ops)[0].contains("secret"), "an endpoint keeps its secret");
    }

    #[test]
    fn deliveries_are_written_once_and_deleted_when_the_log_drops_them() {
        let mut tenant = tenant();
        let id = Uuid::new_v4();
        tenant.deliveries.push(Delivery {
            fields: object(json!({"id": id, "status": "pending"})),
            endpoint: Uuid::new_v4(),
            payload: bytes::Bytes::from_static(b"{}"),
            tries: Vec::new(),
        });
        let mut saved = written();
        let mut ops = Ops::default();
        write_deliveries(&mut ops, &tenant, &mut saved).unwrap();
        assert!(statements(&ops)[0].starts_with("INSERT OR REPLACE INTO deliveries"));
        tenant.deliveries[0].fields.insert("status".into(), json!("succeeded"));
        let mut ops = Ops::default();
        write_deliveries(&mut ops, &tenant, &mut saved).unwrap();
        assert!(ops.is_empty(), "an attempt writes its own row (save_delivery)");
        tenant.deliveries.clear();
        let mut ops = Ops::default();
        write_deliveries(&mut ops, &tenant, &mut saved).unwrap();
        assert_eq!(
            statements(&ops),
            ["DELETE FROM deliveries WHERE key_n = ?1 AND id = ?2"]
        );
        assert!(saved.deliveries.is_empty());
    }

    #[test]
    fn a_log_writes_what_was_appended_and_deletes_what_was_dropped() {
        let mut tenant = tenant();
        tenant.transactions = (0..3).map(|n| object(json!({"id": format!("t{n}")}))).collect();
        let (numbers, mut saved) = (numbers(), written());
        let mut ops = Ops::default();
        write_log(&mut ops, &numbers, &tenant, "transactions", &mut saved).unwrap();
        assert_eq!(statements(&ops).len(), 3);
        tenant.transactions.remove(0);
        tenant.transactions.push(object(json!({"id": "t3"})));
        let mut ops = Ops::default();
        write_log(&mut ops, &numbers, &tenant, "transactions", &mut saved).unwrap();
        assert_eq!(
            statements(&ops),
            [
                "INSERT INTO records (n, key_n, kind, id, body) VALUES (?1, ?2, ?3, ?4, ?5)",
                "DELETE FROM records WHERE n = ?1"
            ]
        );
        // Appended rows are scanned from the end: t2, t1, t0 had rows 1, 2, 3.
        assert_eq!(ops.0[1].1[0], rusqlite::types::Value::Integer(3), "t0's row");
        let now = Utc::now();
        tenant.refreshed.push((Uuid::new_v4(), now));
        let mut ops = Ops::default();
        write_log(&mut ops, &numbers, &tenant, "refreshed", &mut saved).unwrap();
        assert_eq!(statements(&ops).len(), 1, "a refresh is a row too");
    }

    #[test]
    fn every_part_runs_and_the_key_is_then_written() {
        let mut tenant = tenant();
        tenant.bundles.push(bundle("b1"));
        tenant.endpoints.push(Endpoint {
            fields: object(json!({"id": "e"})),
            secret: "whsec".into(),
        });
        let mut saved = Saved {
            key_n: 1,
            ..Saved::default()
        };
        let mut ops = Ops::default();
        write_changes(&mut ops, &numbers(), "k", &tenant, &mut saved).unwrap();
        let sql = statements(&ops);
        for table in ["keys", "bundles", "accounts", "webhook_endpoints"] {
            assert!(
                sql.iter().any(|s| s.starts_with(&format!("INSERT INTO {table} "))),
                "{table}: {sql:?}"
            );
        }
        assert!(saved.written);
    }

    #[test]
    fn a_bundle_row_holds_its_account_and_videos() {
        let row: Value = serde_json::from_str(&bundle_row(&bundle("b1"))).unwrap();
        assert_eq!(row["id"], "b1");
        assert_eq!(row["account"]["id"], "a");
        assert_eq!(row["videos"][0]["position"], 1);
        let empty = Bundle {
            fields: Object::new(),
            account: None,
            videos: Vec::new(),
        };
        let row: Value = serde_json::from_str(&bundle_row(&empty)).unwrap();
        assert_eq!(row, json!({"account": null, "videos": []}));
    }

    #[test]
    fn the_content_hash_follows_content() {
        let a = object(json!({"id": "a", "list": [1, 2]}));
        assert_eq!(hash_of(&a), hash_of(&a.clone()));
        assert_ne!(hash_of(&a), hash_of(&object(json!({"id": "a", "list": [2, 1]}))));
        assert_ne!(hash_of(&a), hash_of(&object(json!({"id": "b", "list": [1, 2]}))));
    }
}
