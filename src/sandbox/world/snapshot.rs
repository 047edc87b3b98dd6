//! Snapshots: the whole sandbox, or one key's part, as one JSON document
//! (`GET /_sandbox/snapshot`), and back (`POST /_sandbox/snapshot`).
//!
//! ```json
//! {"version": 1, "kind": "tokportal-sandbox-snapshot", "contract_version": "…", "taken_at": "…",
//!  "keys": [{"key": "<SHA-256 of the API key>", "fingerprint": "849ee8f1", "balance": 990.0,
//!            "profile": {…}, "desk": {"clock": …, "flags": […], "held": […]},
//!            "bundles": […], "accounts": […], "webhook_endpoints": [{…, "secret": "whsec_…"}],
//!            "deliveries": [{…, "endpoint_id", "payload", "tries"}], "comment_tasks": […],
//!            "transactions": […], "uploads": […], "reports": […], "edit_requests": […],
//!            "refreshed": [{"id", "at"}], "replays": [{"idempotency_key", "fingerprint", "status",
//!            "content_type", "body", "kept_at"}]}]}
//! ```
//!
//! Keys are named by the SHA-256 the sandbox keeps, never by the API key.
//! A snapshot holds what a key owns, webhook secrets included: keep it as
//! you would keep the state file. A document of a newer `version` is
//! refused, naming both versions.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use super::clock::Desk;
use super::replays::Stored;
use super::state::{Bundle, Delivery, Endpoint, Object, Tenant, fingerprint, object, stamp, str_of};
use super::store::KeptAnswer;

/// The snapshot format this build writes and reads.
pub(in crate::sandbox) const SNAPSHOT_VERSION: u64 = 1;
/// What a snapshot says it is.
const KIND: &str = "tokportal-sandbox-snapshot";

/// A list of JSON objects.
fn objects(list: &[Object]) -> Value {
    Value::Array(list.iter().cloned().map(Value::Object).collect())
}

/// One key's part of a snapshot.
pub(in crate::sandbox) fn key_part(
    key: &str,
    tenant: &Tenant,
    kept: Vec<(String, [u8; 32], Stored, DateTime<Utc>)>,
) -> Value {
    let bundles: Vec<Value> = tenant
        .bundles
        .iter()
        .map(|b| {
            let mut out = b.fields.clone();
            out.insert("account".into(), b.account.clone().map_or(Value::Null, Value::Object));
            out.insert("videos".into(), objects(&b.videos));
            Value::Object(out)
        })
        .collect();
    let endpoints: Vec<Value> = tenant
        .endpoints
        .iter()
        .map(|e| {
            let mut out = e.fields.clone();
            out.insert("secret".into(), json!(e.secret));
            Value::Object(out)
        })
        .collect();
    let deliveries: Vec<Value> = tenant
        .deliveries
        .iter()
        .map(|d| {
            json!({
                "fields": d.fields,
                "endpoint_id": d.endpoint,
                "payload": String::from_utf8_lossy(&d.payload),
                "tries": objects(&d.tries),
            })
        })
        .collect();
    let replays: Vec<Value> = kept
        .into_iter()
        .map(|(idempotency_key, fp, stored, at)| {
            json!({
                "idempotency_key": idempotency_key,
                "fingerprint": hex::encode(fp),
                "status": stored.status,
                "content_type": stored.content_type,
                "body": String::from_utf8_lossy(&stored.body),
                "kept_at": stamp(at),
            })
        })
        .collect();
    json!({
        "key": key,
        "fingerprint": fingerprint(key),
        "balance": tenant.balance,
        "profile": tenant.user,
        "desk": tenant.desk.to_json(),
        "bundles": bundles,
        "accounts": objects(&tenant.accounts),
        "webhook_endpoints": endpoints,
        "deliveries": deliveries,
        "comment_tasks": objects(&tenant.comments),
        "transactions": objects(&tenant.transactions),
        "uploads": objects(&tenant.uploads),
        "reports": objects(&tenant.reports),
        "edit_requests": objects(&tenant.edit_requests),
        "refreshed": tenant.refreshed.iter().map(|(id, at)| json!({"id": id, "at": stamp(*at)})).collect::<Vec<_>>(),
        "replays": replays,
    })
}

/// The document around the keys' parts.
pub(in crate::sandbox) fn document(keys: Vec<Value>) -> Value {
    json!({
        "version": SNAPSHOT_VERSION,
        "kind": KIND,
        "contract_version": crate::operations::SPEC_VERSION,
        "taken_at": stamp(Utc::now()),
        "keys": keys,
    })
}

/// One key read back from a snapshot: its state name, its state and its
/// kept answers.
pub(in crate::sandbox) struct Restored {
    pub(in crate::sandbox) key: String,
    pub(in crate::sandbox) tenant: Tenant,
    pub(in crate::sandbox) kept: Vec<KeptAnswer>,
}

/// Reads a snapshot; what is wrong is named by its place (`keys[2].desk`).
pub(in crate::sandbox) fn read(doc: &Value) -> Result<Vec<Restored>, String> {
    if doc.get("kind").and_then(Value::as_str) != Some(KIND) {
        return Err(format!("not a sandbox snapshot: `kind` must be \"{KIND}\""));
    }
    let version = doc
        .get("version")
        .and_then(Value::as_u64)
        .ok_or("`version` is missing")?;
    if version > SNAPSHOT_VERSION {
        return Err(format!(
            "the snapshot is of version {version}, newer than this build's {SNAPSHOT_VERSION}: use a newer tokportal"
        ));
    }
    let keys = doc
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("`keys` must be a list")?;
    if keys.len() > 1000 {
        return Err(format!(
            "`keys` holds {} keys; a sandbox keeps at most 1000",
            keys.len()
        ));
    }
    let mut out = Vec::with_capacity(keys.len());
    for (n, part) in keys.iter().enumerate() {
        out.push(read_key(part).map_err(|why| format!("keys[{n}]: {why}"))?);
    }
    Ok(out)
}

fn read_key(part: &Value) -> Result<Restored, String> {
    let key = part
        .get("key")
        .and_then(Value::as_str)
        .filter(|k| k.len() == 64 && k.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or("`key` must be the key's SHA-256, 64 hex digits")?
        .to_ascii_lowercase();
    let list = |name: &str| -> Result<Vec<Object>, String> {
        match part.get(name) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    v.as_object()
                        .cloned()
                        .ok_or_else(|| format!("{name}[{i}] must be an object"))
                })
                .collect(),
            Some(_) => Err(format!("`{name}` must be a list")),
        }
    };
    let balance = part
        .get("balance")
        .and_then(Value::as_f64)
        .filter(|b| b.is_finite())
        .ok_or("`balance` must be a number")?;
    let profile = part
        .get("profile")
        .and_then(Value::as_object)
        .cloned()
        .ok_or("`profile` must be an object")?;
    let desk = Desk::from_json(part.get("desk").unwrap_or(&Value::Null)).map_err(|why| format!("desk.{why}"))?;
    let mut tenant = Tenant::empty(profile, balance, desk);
    for mut b in list("bundles")? {
        let account = b.remove("account").and_then(|a| a.as_object().cloned());
        let videos = match b.remove("videos") {
            Some(Value::Array(v)) => v.into_iter().map(object).collect(),
            _ => Vec::new(),
        };
        tenant.bundles.push(Bundle {
            fields: b,
            account,
            videos,
        });
    }
    tenant.accounts = list("accounts")?;
    for (i, mut e) in list("webhook_endpoints")?.into_iter().enumerate() {
        let secret = match e.remove("secret") {
            Some(Value::String(s)) => s,
            _ => return Err(format!("webhook_endpoints[{i}].secret must be a string")),
        };
        tenant.endpoints.push(Endpoint { fields: e, secret });
    }
    for (i, d) in list("deliveries")?.into_iter().enumerate() {
        let endpoint = str_of(&d, "endpoint_id")
            .and_then(|e| Uuid::parse_str(e).ok())
            .ok_or_else(|| format!("deliveries[{i}].endpoint_id must be a uuid"))?;
        tenant.deliveries.push(Delivery {
            fields: d.get("fields").and_then(Value::as_object).cloned().unwrap_or_default(),
            endpoint,
            payload: bytes::Bytes::from(str_of(&d, "payload").unwrap_or_default().to_owned()),
            tries: d
                .get("tries")
                .and_then(Value::as_array)
                .map(|t| t.iter().filter_map(|x| x.as_object().cloned()).collect())
                .unwrap_or_default(),
        });
    }
    tenant.comments = list("comment_tasks")?;
    tenant.transactions = list("transactions")?;
    tenant.uploads = list("uploads")?;
    tenant.reports = list("reports")?;
    tenant.edit_requests = list("edit_requests")?;
    for r in list("refreshed")? {
        let id = str_of(&r, "id").and_then(|i| Uuid::parse_str(i).ok());
        let at = str_of(&r, "at").and_then(|t| DateTime::parse_from_rfc3339(t).ok());
        if let (Some(id), Some(at)) = (id, at) {
            tenant.refreshed.push((id, at.with_timezone(&Utc)));
        }
    }
    let mut kept = Vec::new();
    for (i, r) in list("replays")?.into_iter().enumerate() {
        let bad = || format!("replays[{i}] is not a kept answer");
        let fp: [u8; 32] = str_of(&r, "fingerprint")
            .and_then(|h| hex::decode(h).ok())
            .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
            .ok_or_else(bad)?;
        let kept_at = str_of(&r, "kept_at")
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .ok_or_else(bad)?
            .with_timezone(&Utc);
        kept.push(KeptAnswer {
            tenant: key.clone(),
            key: str_of(&r, "idempotency_key").ok_or_else(bad)?.to_owned(),
            fingerprint: fp,
            stored: Stored {
                status: r
                    .get("status")
                    .and_then(Value::as_u64)
                    .and_then(|s| u16::try_from(s).ok())
                    .ok_or_else(bad)?,
                content_type: str_of(&r, "content_type").and_then(super::store::known_content_type),
                body: bytes::Bytes::from(str_of(&r, "body").unwrap_or_default().to_owned()),
            },
            kept_at,
        });
    }
    Ok(Restored { key, tenant, kept })
}
