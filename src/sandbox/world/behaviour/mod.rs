//! What each operation does to a key's state. Every call here has passed
//! the contract checks; these functions apply the business rules (404s,
//! 409s on status, 402s on credits) and shape the answers.
//!
//! Each module declares the operations it answers as data (`HANDLERS`: an
//! operation id and its named function); [`run`] looks the id up. An
//! operation without behaviour here (one a newer vendored spec adds)
//! answers its documented success status with a body built from its
//! success schema, so that it is served, checked and rate limited at once.
//!
//! What a handler is given and gives back (`Call`, `Reply`, `Effects`) is
//! the world's vocabulary (`world::vocabulary`), which the account manager
//! and the status moves read too; this module only dispatches, and holds
//! the handlers' helpers for reading a call and paging an answer.

mod accounts;
mod bundles;
mod content;
mod profile;
mod webhooks;

use std::collections::HashMap;
use std::sync::OnceLock;

use serde_json::{Value, json};

use crate::sandbox::contract::{Failure, example};
use crate::sandbox::world::state::{Object, Tenant};
use crate::sandbox::world::vocabulary::{Call, Effects, Payload, Reply};

/// How one operation acts on a key's state: one named function per
/// operation, listed in its module's `HANDLERS`.
pub(in crate::sandbox) type Handler = fn(&mut Tenant, &Call, &mut Effects) -> Result<Reply, Failure>;

/// Every module's table. `tests::dispatch_tables_match_the_operation_table`
/// holds them against the operation table.
const TABLES: &[&[(&str, Handler)]] = &[
    profile::HANDLERS,
    bundles::HANDLERS,
    accounts::HANDLERS,
    webhooks::HANDLERS,
    content::HANDLERS,
];

/// The handler of operation `id`, if any module has one.
fn handler(id: &str) -> Option<Handler> {
    static BY_ID: OnceLock<HashMap<&'static str, Handler>> = OnceLock::new();
    BY_ID
        .get_or_init(|| TABLES.iter().flat_map(|t| t.iter().copied()).collect())
        .get(id)
        .copied()
}

/// Runs `call` against `tenant`: its operation's handler, or, for an
/// operation none has (a newer vendored contract), its success example.
pub(in crate::sandbox) fn run(tenant: &mut Tenant, call: &Call, fx: &mut Effects) -> Result<Reply, Failure> {
    match handler(call.op.id) {
        Some(handle) => handle(tenant, call, fx),
        None => Ok(generic(call)),
    }
}

/// The answer of an operation without behaviour: its success schema's example.
fn generic(call: &Call) -> Reply {
    let body = match call
        .op
        .success_schema_json
        .and_then(|s| serde_json::from_str::<Value>(s).ok())
    {
        Some(schema) => example(&schema),
        None if call.op.success_content_type.is_none() => {
            return Reply {
                status: call.op.success_status,
                payload: Payload::Empty,
            };
        }
        None => json!({ "data": {} }),
    };
    Reply::ok(call, body)
}

/// A path parameter as text.
fn path<'a>(call: &'a Call, name: &str) -> &'a str {
    call.path.get(name).and_then(Value::as_str).unwrap_or_default()
}

/// The JSON body as an object (checks have made sure it is one when required).
fn body(call: &Call) -> Object {
    match &call.body {
        Some(Value::Object(map)) => map.clone(),
        _ => Object::new(),
    }
}

/// A query parameter as an integer.
fn query_int(call: &Call, name: &str, default: i64) -> i64 {
    call.query.get(name).and_then(Value::as_i64).unwrap_or(default)
}

/// A list answer: `{"data": [...], "pagination": {page, per_page, total, total_pages}}`.
fn page(call: &Call, items: Vec<Value>) -> Reply {
    let page = query_int(call, "page", 1).max(1) as usize;
    let per_page = query_int(call, "per_page", 25).clamp(1, 100) as usize;
    let total = items.len();
    let data: Vec<Value> = items.into_iter().skip((page - 1) * per_page).take(per_page).collect();
    Reply::ok(
        call,
        json!({
            "data": data,
            "pagination": {
                "page": page,
                "per_page": per_page,
                "total": total,
                "total_pages": total.div_ceil(per_page),
            }
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::world::state::{Bundle, MAX_OWNED, MAX_RECORDS, keep};
    use chrono::Utc;

    /// Every id in a dispatch table is an operation of the contract, claimed
    /// once, and `run` reaches its handler rather than the generic example:
    /// a mistyped or renamed id fails here instead of falling silently to
    /// the generic answer.
    #[test]
    fn dispatch_tables_match_the_operation_table() {
        let mut claimed = HashMap::new();
        let mut problems = Vec::new();
        for (id, handle) in TABLES.iter().flat_map(|t| t.iter()) {
            if crate::operations::find(id).is_none() {
                problems.push(format!("`{id}` is not an operation of the vendored contract"));
            }
            if claimed.insert(*id, ()).is_some() {
                problems.push(format!("`{id}` is claimed by two handlers"));
            }
            if !handler(id).is_some_and(|found| std::ptr::fn_addr_eq(found, *handle)) {
                problems.push(format!("`{id}` is not dispatched to its handler"));
            }
        }
        assert!(problems.is_empty(), "{problems:#?}");
    }

    fn call(op: &str, body: Value) -> Call {
        Call {
            op: crate::operations::find(op).unwrap(),
            path: Object::new(),
            query: Object::new(),
            body: Some(body),
            upload: None,
            now: Utc::now(),
            base_url: "http://127.0.0.1:1".into(),
            dry_run: false,
        }
    }

    #[test]
    fn what_a_key_holds_is_bounded() {
        let mut tenant = Tenant::new(1.0e9, "test", Utc::now());
        let create = call("createBundle", json!({"bundle_type": "account_only", "country": "USA"}));
        for _ in 0..MAX_OWNED {
            tenant.bundles.push(Bundle {
                fields: Object::new(),
                account: None,
                videos: Vec::new(),
            });
        }
        let refused = run(&mut tenant, &create, &mut Effects::default()).err().unwrap();
        assert_eq!((refused.status, refused.code), (409, "SANDBOX_LIMIT"));
        let bulk = call(
            "createBundlesBulk",
            json!({"platforms": ["tiktok"], "country": "USA", "accounts_count": 1}),
        );
        let refused = run(&mut tenant, &bulk, &mut Effects::default()).err().unwrap();
        assert_eq!(
            (refused.status, refused.code),
            (400, "SANDBOX_LIMIT"),
            "createBundlesBulk documents no 409"
        );
        let balance = tenant.balance;
        assert_eq!(balance, 1.0e9, "nothing was debited");
        let mut records = Vec::new();
        for n in 0..MAX_RECORDS + 5 {
            keep(&mut records, crate::sandbox::world::state::object(json!({"n": n})));
        }
        assert_eq!(records.len(), MAX_RECORDS);
        assert_eq!(records[0]["n"], 5, "the oldest went first");
    }
}
