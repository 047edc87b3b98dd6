//! The sandbox's own routes, outside the contract, under `/_sandbox/`. They
//! are never journalled (the inspector page would fill the journal with its
//! own polling).
//!
//! | Route | What it does |
//! |---|---|
//! | `GET /_sandbox/` | the inspector page ([`crate::sandbox::logbook::inspector`]) |
//! | `GET health` | `{"status": "ok", "sandbox": true, "journal": {...}}` |
//! | `POST credits` | `{"balance": N}`: sets the key's balance |
//! | `POST reset` | with a key, forgets its state; without one and `{"all": true}`, forgets everything (state, kept answers, queued faults, the journal) |
//! | `POST faults` | `{"fault": "503", "times": 1, "operation": "createBundle"}` queues faults |
//! | `PUT uploads/{id}` | the upload URLs it hands out (bytes counted, not kept) |
//! | `GET requests` | the journal, newest first: `operation`, `status` (`404`, `4xx`, `closed`), `key`, `since` (an id or a time), `limit`, `view=summary` |
//! | `DELETE requests` | clears the journal |
//! | `GET requests/{id}` | one entry |
//! | `GET state` | per key (`key` to pick one): credits, bundles, accounts, uploads, transactions, endpoints |
//! | `GET deliveries` | every webhook delivery with each attempt (`key`, `limit`) |
//! | `POST deliveries/{id}/resend` | one more attempt now |
//! | `GET events` | Server-Sent Events: `ready`, then `request`, `delivery`, `webhook`, `cleared` (`kinds`, and the filters of `requests`) |
//! | `GET`, `POST`, `DELETE clock`; `POST clock/advance`; `POST manager` | a key's clock and the manager ([`super::timeline`]) |
//! | `GET snapshot` | the whole sandbox (or the `X-API-Key`'s key) as one JSON document ([`crate::sandbox::world::snapshot`]) |
//! | `POST snapshot` | imports one, bare or as `GET` answered it (`{"data": {…}}`): each key it names is replaced (only the caller's with `X-API-Key`) |
//! | `GET drift` | what the live answers (`--proxy`) had that the contract does not say: `exchanges`, `findings`, `counts` by kind and operation, the first `examples`, and `proxy` (the live API's base URL, or `null`) |
//! | `POST verify` | `{"operation"?, "status"?, "event"?, "times"? \| "at_least"? \| "at_most"?, "dry_run"?, "replayed"?}`: 200 when the count holds, 409 with the count and the closest requests otherwise (the key's with `X-API-Key`) |
//!
//! When the sandbox listens on loopback these routes, like the API's, answer
//! only requests addressed to a loopback name or one allowed with
//! `--allow-host` ([`refuse_host`]: a DNS-rebinding page cannot read the
//! journal), and a change sent from another origin's page is refused.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Body;
use axum::response::IntoResponse;
use axum::response::sse::{Event as Sse, KeepAlive};
use chrono::Utc;
use futures::TryStreamExt;
use http::request::Parts;
use http::{HeaderValue, Response, StatusCode};
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use crate::operations::SPEC_VERSION;
use crate::sandbox::contract::Failure;
use crate::sandbox::face::faults::Fault;
use crate::sandbox::face::flow::MAX_JSON_BODY;
use crate::sandbox::face::shared::{Shared, persist};
use crate::sandbox::face::timeline;
use crate::sandbox::logbook::inspector;
use crate::sandbox::logbook::journal::{Event, Filter, MAX_FOLLOWERS, Since, StatusFilter};
use crate::sandbox::logbook::verify::Query;
use crate::sandbox::world::deliveries;
use crate::sandbox::world::keys::{key_of, tenant_of};
use crate::sandbox::world::snapshot as snapshots;
use crate::sandbox::world::state::{Delivery, Object, Tenant, fingerprint, str_of};

/// `GET /_sandbox/drift`.
fn drift(shared: &Shared) -> Value {
    let mut report = serde_json::to_value(shared.live.drift.report()).unwrap_or_default();
    report["proxy"] = shared
        .live
        .upstream
        .as_ref()
        .map_or(Value::Null, |u| Value::String(u.base().to_string()));
    report["recording"] = Value::Bool(shared.live.recorder.is_some());
    report["replaying"] = shared.live.replay.as_ref().map_or(
        Value::Null,
        |b| json!({"answers": b.len, "strict": shared.live.replay_strict}),
    );
    report
}

/// Entries `GET requests` answers unless told (`limit`, at most the journal's size).
const DEFAULT_LIMIT: usize = 100;

/// The route of a sandbox path (`/_sandbox/requests` is `requests`, and
/// `/_sandbox` the page's ``), `None` for an API path.
pub(in crate::sandbox) fn route(path: &str) -> Option<&str> {
    path.strip_prefix("/_sandbox")
        .filter(|r| r.is_empty() || r.starts_with('/'))
        .map(|r| r.trim_start_matches('/'))
}

/// Answers a request for `/_sandbox/{route}`.
pub(in crate::sandbox) async fn handle(shared: &Arc<Shared>, route: &str, parts: Parts, body: Body) -> Response<Body> {
    if let Err(refused) = guard(&parts) {
        return failure(refused);
    }
    let segments: Vec<&str> = route.trim_end_matches('/').split('/').collect();
    let query = parts.uri.query().unwrap_or_default();
    let answered = match (parts.method.as_str(), segments.as_slice()) {
        ("GET", [""]) => return inspector::page(),
        ("GET", ["health"]) => Ok(json!({
            "status": "ok",
            "sandbox": true,
            "api_version": SPEC_VERSION,
            "journal": shared.journal.stats(),
        })),
        ("POST", ["faults"]) => faults(shared, &parts, body).await,
        ("PUT", ["uploads", ..]) => upload(body).await,
        ("POST", ["credits"]) => credits(shared, &parts, body).await,
        ("POST", ["reset"]) => reset(shared, &parts, body).await,
        ("GET", ["requests"]) => requests(shared, query),
        ("DELETE", ["requests"]) => Ok(json!({"cleared": shared.journal.clear()})),
        ("GET", ["requests", id]) => request(shared, id),
        ("GET", ["state"]) => state(shared, query),
        ("GET", ["deliveries"]) => list_deliveries(shared, query),
        ("POST", ["deliveries", id, "resend"]) => resend(shared, id).await,
        ("GET", ["events"]) => return events(shared, query),
        ("GET", ["clock"]) => query_of(query, &["key"]).and_then(|q| timeline::get(shared, &parts.headers, &q)),
        ("DELETE", ["clock"]) => match query_of(query, &["key"]) {
            Ok(q) => timeline::real(shared, &parts.headers, &q).await,
            Err(f) => Err(f),
        },
        ("POST", ["clock"]) => match (query_of(query, &["key"]), json_body(body).await) {
            (Ok(q), Ok(asked)) => timeline::set(shared, &parts.headers, &q, &asked).await,
            (Err(f), _) | (_, Err(f)) => Err(f),
        },
        ("POST", ["clock", "advance"]) => match (query_of(query, &["key"]), json_body(body).await) {
            (Ok(q), Ok(asked)) => timeline::advance(shared, &parts.headers, &q, &asked).await,
            (Err(f), _) | (_, Err(f)) => Err(f),
        },
        ("POST", ["manager"]) => match (query_of(query, &["key"]), json_body(body).await) {
            (Ok(q), Ok(asked)) => timeline::flag(shared, &parts.headers, &q, &asked).await,
            (Err(f), _) | (_, Err(f)) => Err(f),
        },
        ("POST", ["verify"]) => verify(shared, &parts, body).await,
        ("GET", ["drift"]) => Ok(drift(shared)),
        ("GET", ["snapshot"]) => Ok(snapshot(shared, &parts)),
        ("POST", ["snapshot"]) => restore(shared, &parts, body).await,
        _ => Err(Failure::new(
            404,
            "NOT_FOUND",
            format!("No sandbox route {} /_sandbox/{route}.", parts.method),
        )),
    };
    match answered {
        Ok(data) => json_response(StatusCode::OK, &json!({ "data": data })),
        Err(f) => failure(f),
    }
}

/// Refuses, on every route (the API's and these), a request a DNS-rebinding
/// page could send: a sandbox listening on loopback answers only loopback
/// names and those allowed with `--allow-host`. The answer is the sandbox's
/// error envelope (403 `FORBIDDEN`).
pub(in crate::sandbox) fn refuse_host(shared: &Shared, headers: &http::HeaderMap) -> Option<Response<Body>> {
    let host = headers.get(http::header::HOST)?;
    if !shared.options.host.is_loopback() {
        return None;
    }
    let text = host.to_str().unwrap_or_default();
    if !text.is_empty() && (loopback_name(text) || allowed_name(text, &shared.options.allow_hosts)) {
        return None;
    }
    Some(failure(Failure::new(
        403,
        "FORBIDDEN",
        format!(
            "This sandbox listens on loopback and answers only loopback names, not `{}`; \
             start it with `--allow-host NAME` to answer another.",
            text.escape_debug()
        ),
    )))
}

/// A `Host` (with or without a port) that `--allow-host` names.
fn allowed_name(host: &str, allowed: &[String]) -> bool {
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    allowed
        .iter()
        .any(|a| a.eq_ignore_ascii_case(name) || a.eq_ignore_ascii_case(host))
}

/// Refuses a change a hostile web page could send: it must come from the
/// sandbox's own origin or from outside a browser (no `Origin`). (The
/// `Host` is checked for every route first, by [`refuse_host`].)
fn guard(parts: &Parts) -> Result<(), Failure> {
    let host = parts.headers.get(http::header::HOST).and_then(|h| h.to_str().ok());
    let changes = !matches!(parts.method, http::Method::GET | http::Method::HEAD);
    if changes && let Some(origin) = parts.headers.get(http::header::ORIGIN) {
        let origin = origin.to_str().unwrap_or_default();
        let same = host.is_some_and(|h| origin == format!("http://{h}"));
        if !same {
            return Err(Failure::new(
                403,
                "FORBIDDEN",
                format!("A change from the page at `{origin}` is refused: only the inspector's own page may send one."),
            ));
        }
    }
    Ok(())
}

/// `localhost`, `127.0.0.1`, `[::1]`, with or without a port.
fn loopback_name(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn json_response(status: StatusCode, body: &Value) -> Response<Body> {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
        .headers_mut()
        .insert(http::header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn failure(f: Failure) -> Response<Body> {
    let status = StatusCode::from_u16(f.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = json_response(status, &f.body());
    for (name, value) in f.headers {
        if let Ok(v) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, v);
        }
    }
    response
}

/// The query as names and values; a name this route does not take is refused.
fn query_of(query: &str, known: &[&str]) -> Result<HashMap<String, String>, Failure> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(query).map_err(|e| Failure::rule("query", format!("is not readable: {e}")))?;
    let mut map = HashMap::new();
    for (name, value) in pairs {
        if !known.contains(&name.as_str()) {
            return Err(Failure::rule(
                &name,
                format!("is not a parameter of this route (it takes {})", known.join(", ")),
            ));
        }
        map.insert(name, value);
    }
    Ok(map)
}

/// The journal filter from a query.
fn filter_of(q: &HashMap<String, String>) -> Result<Filter, Failure> {
    let operation = q.get("operation").filter(|o| !o.is_empty()).cloned();
    if let Some(id) = &operation
        && crate::operations::find(id).is_none()
    {
        return Err(Failure::rule(
            "operation",
            format!("`{id}` is not an operation of the contract"),
        ));
    }
    Ok(Filter {
        operation,
        status: match q.get("status").filter(|s| !s.is_empty()) {
            Some(s) => Some(StatusFilter::parse(s).map_err(|why| Failure::rule("status", why))?),
            None => None,
        },
        key: q.get("key").filter(|k| !k.is_empty()).cloned(),
        since: match q.get("since").filter(|s| !s.is_empty()) {
            Some(s) => Some(Since::parse(s).map_err(|why| Failure::rule("since", why))?),
            None => None,
        },
    })
}

/// `GET requests`.
fn requests(shared: &Shared, query: &str) -> Result<Value, Failure> {
    let q = query_of(query, &["operation", "status", "key", "since", "limit", "view"])?;
    let filter = filter_of(&q)?;
    let limit = match q.get("limit") {
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|l| (1..=100_000).contains(l))
            .ok_or_else(|| Failure::rule("limit", "must be a whole number from 1 to 100000"))?,
        None => DEFAULT_LIMIT,
    };
    let summary = match q.get("view").map(String::as_str) {
        None | Some("full") => false,
        Some("summary") => true,
        Some(other) => return Err(Failure::rule("view", format!("`{other}` is not `full` or `summary`"))),
    };
    let entries = shared.journal.list(&filter, limit);
    Ok(Value::Array(
        entries
            .iter()
            .map(|e| {
                if summary {
                    serde_json::to_value(&e.summary).unwrap_or(Value::Null)
                } else {
                    serde_json::to_value(&**e).unwrap_or(Value::Null)
                }
            })
            .collect(),
    ))
}

/// `GET requests/{id}`.
fn request(shared: &Shared, id: &str) -> Result<Value, Failure> {
    id.parse::<u64>()
        .ok()
        .and_then(|id| shared.journal.get(id))
        .map(|e| serde_json::to_value(&*e).unwrap_or(Value::Null))
        .ok_or_else(|| {
            Failure::new(
                404,
                "NOT_FOUND",
                format!("No journal entry `{id}` (it may have been dropped from the ring)."),
            )
        })
}

/// `GET state`: what each key owns.
fn state(shared: &Shared, query: &str) -> Result<Value, Failure> {
    let q = query_of(query, &["key"])?;
    let tenants = shared.tenants.lock().unwrap_or_else(|p| p.into_inner());
    let mut keys: Vec<Value> = tenants
        .iter()
        .filter(|(hash, _)| q.get("key").is_none_or(|k| hash.starts_with(k.as_str())))
        .map(|(hash, t)| {
            let bundles: Vec<Value> = t
                .bundles
                .iter()
                .map(|b| {
                    let mut bundle = b.fields.clone();
                    bundle.insert("account".into(), b.account.clone().map_or(Value::Null, Value::Object));
                    bundle.insert(
                        "videos".into(),
                        Value::Array(b.videos.iter().cloned().map(Value::Object).collect()),
                    );
                    Value::Object(bundle)
                })
                .collect();
            let objects = |list: &[Object]| Value::Array(list.iter().cloned().map(Value::Object).collect());
            json!({
                "key": fingerprint(hash),
                "credits": {"balance": t.balance},
                "bundles": bundles,
                "accounts": objects(&t.accounts),
                "uploads": objects(&t.uploads),
                "transactions": objects(&t.transactions),
                // The fields only: an endpoint's secret is kept apart.
                "webhook_endpoints": t.endpoints.iter().map(|e| Value::Object(e.fields.clone())).collect::<Vec<_>>(),
                "comment_tasks": objects(&t.comments),
                "deliveries": t.deliveries.len(),
                "clock": timeline::shown(t),
            })
        })
        .collect();
    keys.sort_by(|a, b| a["key"].as_str().cmp(&b["key"].as_str()));
    Ok(Value::Array(keys))
}

/// `GET deliveries`: every key's deliveries, newest first, with each attempt.
fn list_deliveries(shared: &Shared, query: &str) -> Result<Value, Failure> {
    let q = query_of(query, &["key", "limit"])?;
    let limit = match q.get("limit") {
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|l| *l >= 1)
            .ok_or_else(|| Failure::rule("limit", "must be a whole number of at least 1"))?,
        None => DEFAULT_LIMIT,
    };
    let tenants = shared.tenants.lock().unwrap_or_else(|p| p.into_inner());
    let mut all: Vec<Value> = Vec::new();
    for (hash, t) in tenants.iter() {
        if q.get("key").is_some_and(|k| !hash.starts_with(k.as_str())) {
            continue;
        }
        all.extend(t.deliveries.iter().map(|d| delivery_shown(hash, t, d)));
    }
    all.sort_by(|a, b| b["created_at"].as_str().cmp(&a["created_at"].as_str()));
    all.truncate(limit);
    Ok(Value::Array(all))
}

/// A delivery as `GET deliveries` shows it: its log entry, the key, the
/// endpoint's URL (null once deleted) and each attempt.
fn delivery_shown(hash: &str, t: &Tenant, d: &Delivery) -> Value {
    let endpoint = d.endpoint.to_string();
    let url = t
        .endpoints
        .iter()
        .find(|e| str_of(&e.fields, "id") == Some(endpoint.as_str()))
        .and_then(|e| str_of(&e.fields, "url"));
    let mut shown = d.fields.clone();
    shown.insert("key".into(), json!(fingerprint(hash)));
    shown.insert("endpoint_url".into(), json!(url));
    shown.insert(
        "tries".into(),
        Value::Array(d.tries.iter().cloned().map(Value::Object).collect()),
    );
    Value::Object(shown)
}

/// `POST deliveries/{id}/resend`: one attempt now, signed afresh.
async fn resend(shared: &Shared, id: &str) -> Result<Value, Failure> {
    let Ok(uuid) = uuid::Uuid::parse_str(id) else {
        return Err(Failure::new(404, "NOT_FOUND", format!("No delivery `{id}`.")));
    };
    let tenant = {
        let tenants = shared.tenants.lock().unwrap_or_else(|p| p.into_inner());
        tenants
            .iter()
            .find(|(_, t)| t.delivery_at(uuid).is_some())
            .map(|(hash, _)| hash.clone())
    };
    let Some(tenant) = tenant else {
        return Err(Failure::new(404, "NOT_FOUND", format!("No delivery `{id}`.")));
    };
    if deliveries::attempt(&shared.courier, &tenant, uuid).await.is_none() {
        return Err(Failure::new(
            409,
            "CONFLICT",
            "The delivery's endpoint was deleted; there is nowhere to send it.",
        ));
    }
    let tenants = shared.tenants.lock().unwrap_or_else(|p| p.into_inner());
    tenants
        .get(&tenant)
        .and_then(|t| Some(delivery_shown(&tenant, t, &t.deliveries[t.delivery_at(uuid)?])))
        .ok_or_else(|| Failure::new(404, "NOT_FOUND", format!("No delivery `{id}`.")))
}

/// `GET events`: the live feed as Server-Sent Events.
fn events(shared: &Shared, query: &str) -> Response<Body> {
    let q = match query_of(query, &["kinds", "operation", "status", "key"]) {
        Ok(q) => q,
        Err(f) => return failure(f),
    };
    let filter = match filter_of(&q) {
        Ok(f) => f,
        Err(f) => return failure(f),
    };
    const KINDS: [&str; 4] = ["request", "delivery", "webhook", "cleared"];
    let kinds: Vec<String> = match q.get("kinds") {
        Some(k) => k
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(str::to_owned)
            .collect(),
        None => KINDS.iter().map(|k| (*k).to_owned()).collect(),
    };
    if let Some(bad) = kinds.iter().find(|k| !KINDS.contains(&k.as_str())) {
        return failure(Failure::rule(
            "kinds",
            format!("`{bad}` is not one of {}", KINDS.join(", ")),
        ));
    }
    let Ok(permit) = shared.followers.clone().try_acquire_owned() else {
        return failure(
            Failure::new(
                503,
                "TOO_MANY_FOLLOWERS",
                format!("At most {MAX_FOLLOWERS} followers of the feed at once."),
            )
            .header("retry-after", "5"),
        );
    };
    let ready = Sse::default()
        .event("ready")
        .data(json!({"journal": shared.journal.stats(), "at": Utc::now().to_rfc3339()}).to_string());
    let feed = shared.journal.follow();
    let stream = futures::stream::unfold(
        (feed, permit, filter, kinds),
        |(mut feed, permit, filter, kinds)| async move {
            loop {
                match feed.recv().await {
                    Ok(event) => {
                        if let Some(sse) = render(&event, &filter, &kinds) {
                            return Some((Ok::<_, Infallible>(sse), (feed, permit, filter, kinds)));
                        }
                    }
                    Err(RecvError::Lagged(missed)) => {
                        let sse = Sse::default()
                            .event("lagged")
                            .data(json!({"missed": missed}).to_string());
                        return Some((Ok(sse), (feed, permit, filter, kinds)));
                    }
                    Err(RecvError::Closed) => return None,
                }
            }
        },
    );
    let stream = futures::stream::once(async move { Ok(ready) }).chain(stream);
    let mut response = axum::response::Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response();
    response
        .headers_mut()
        .insert(http::header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

use futures::StreamExt as _;

/// `event` as an SSE event, if the follower wants it.
fn render(event: &Event, filter: &Filter, kinds: &[String]) -> Option<Sse> {
    let wants = |kind: &str| kinds.iter().any(|k| k == kind);
    let key_ok = |key: &str| filter.key.as_deref().is_none_or(|k| key.starts_with(k));
    match event {
        Event::Request(summary) if wants("request") && filter.matches(summary) => Some(
            Sse::default()
                .event("request")
                .id(summary.id.to_string())
                .data(serde_json::to_string(&**summary).unwrap_or_default()),
        ),
        Event::Delivery(attempt) if wants("delivery") && key_ok(attempt["key"].as_str().unwrap_or_default()) => {
            Some(Sse::default().event("delivery").data(attempt.to_string()))
        }
        Event::Webhook {
            key,
            event_type,
            payload,
        } if wants("webhook") && key_ok(key) => Some(Sse::default().event("webhook").data(
            json!({"key": key, "event_type": event_type, "payload": String::from_utf8_lossy(payload)}).to_string(),
        )),
        Event::Cleared if wants("cleared") => Some(Sse::default().event("cleared").data("{}")),
        _ => None,
    }
}

/// `POST faults`.
async fn faults(shared: &Shared, parts: &Parts, body: Body) -> Result<Value, Failure> {
    let asked = json_body(body).await?;
    if asked.get("fault").and_then(Value::as_str) == Some("hold") {
        // A delivery fault: the key's next webhook delivery (any key's
        // without `X-API-Key`) arrives after the one that follows it.
        let times = asked.get("times").and_then(Value::as_u64).unwrap_or(1).clamp(1, 100) as usize;
        let key = key_of(&parts.headers).ok();
        return match shared.courier.hold(times, key) {
            Ok(queued) => Ok(json!({"queued": queued, "fault": "hold"})),
            Err(why) => Err(Failure::rule("times", why)),
        };
    }
    let fault = match asked.get("fault").and_then(Value::as_str).map(Fault::parse) {
        Some(Ok(fault)) => fault,
        Some(Err(why)) => return Err(Failure::rule("fault", why)),
        None => {
            return Err(Failure::rule(
                "fault",
                "is required: 500, 502, 503, 429, reset, lost, slow or slow=SECONDS (requests), or hold (a webhook delivery)",
            ));
        }
    };
    let times = asked.get("times").and_then(Value::as_u64).unwrap_or(1).clamp(1, 100) as usize;
    let operation = match asked.get("operation").and_then(Value::as_str) {
        Some(id) if crate::operations::find(id).is_none() => {
            return Err(Failure::rule(
                "operation",
                format!("`{id}` is not an operation of the contract"),
            ));
        }
        other => other.map(str::to_owned),
    };
    match shared.queued_faults.push(fault, times, operation) {
        Ok(queued) => Ok(json!({"queued": queued})),
        Err(why) => Err(Failure::rule("times", why)),
    }
}

/// `PUT uploads/{id}`: counts the bytes.
async fn upload(body: Body) -> Result<Value, Failure> {
    let mut received: u64 = 0;
    let mut stream = body.into_data_stream();
    while let Ok(Some(chunk)) = stream.try_next().await {
        received += chunk.len() as u64;
    }
    Ok(json!({"received_bytes": received}))
}

/// `POST credits`: sets the key's balance.
async fn credits(shared: &Shared, parts: &Parts, body: Body) -> Result<Value, Failure> {
    let key = key_of(&parts.headers).map_err(|why| Failure::new(401, "UNAUTHORIZED", why))?;
    let balance = json_body(body)
        .await?
        .get("balance")
        .and_then(Value::as_f64)
        .filter(|b| (0.0..=1.0e9).contains(b))
        .ok_or_else(|| Failure::rule("balance", "must be a number from 0 to 1e9"))?;
    {
        let mut tenants = shared.tenants.lock().unwrap_or_else(|p| p.into_inner());
        tenant_of(&mut tenants, &key, shared.options.initial_credits)?.set_balance(balance, Utc::now());
    }
    persist(shared, &key, true, None).await?;
    Ok(json!({"balance": balance}))
}

/// `POST reset`: one key's state and the answers kept under its idempotency
/// keys, or, without a key and with `{"all": true}`, everything the sandbox
/// holds.
async fn reset(shared: &Shared, parts: &Parts, body: Body) -> Result<Value, Failure> {
    let asked = json_body(body).await?;
    match key_of(&parts.headers) {
        Ok(key) => {
            let pending = {
                let mut tenants = shared.tenants.lock().unwrap_or_else(|p| p.into_inner());
                tenants.remove(&key);
                forget_in_file(shared, Some(&key))
            };
            forgotten(pending).await?;
            shared.replays.forget(&key);
            shared.tally.forget(Some(fingerprint(&key)));
            Ok(json!({"reset": true}))
        }
        Err(_) if asked.get("all").and_then(Value::as_bool) == Some(true) => {
            let (keys, pending) = {
                let mut tenants = shared.tenants.lock().unwrap_or_else(|p| p.into_inner());
                (std::mem::take(&mut *tenants).len(), forget_in_file(shared, None))
            };
            forgotten(pending).await?;
            shared.replays.clear();
            shared.queued_faults.clear();
            shared.courier.clear_holds();
            shared.tally.forget(None);
            let requests = shared.journal.clear();
            Ok(json!({"reset": true, "keys": keys, "requests": requests}))
        }
        Err(why) => Err(Failure::new(
            401,
            "UNAUTHORIZED",
            format!("{why} (or send {{\"all\": true}} without a key to reset the whole sandbox)"),
        )),
    }
}

/// `POST verify`: the tally's count of what the body asks (the key's with
/// `X-API-Key`); 409 `VERIFICATION_FAILED` with the count found and the
/// closest requests of the journal when it does not hold.
async fn verify(shared: &Shared, parts: &Parts, body: Body) -> Result<Value, Failure> {
    let asked = json_body(body).await?;
    let key = key_of(&parts.headers).ok().map(|k| fingerprint(&k).to_owned());
    let query = Query::parse(&asked, key).map_err(|(field, why)| Failure::rule(&field, why))?;
    let verdict = shared.tally.verify(&query);
    if verdict.holds {
        return Ok(verdict.answer);
    }
    let closest: Vec<Value> = shared
        .journal
        .list(&Filter::default(), usize::MAX)
        .iter()
        .filter(|e| query.near(&e.summary))
        .take(5)
        .map(|e| json!(e.summary))
        .collect();
    let mut details = verdict.answer;
    details["closest"] = json!(closest);
    Err(Failure::new(
        409,
        "VERIFICATION_FAILED",
        format!(
            "Expected {} but found {}.",
            describe(&details["expected"]),
            verdict.found
        ),
    )
    .details(details))
}

/// `{"times": 2}` as "exactly 2".
fn describe(expected: &Value) -> String {
    let n = |k: &str| expected.get(k).and_then(Value::as_u64);
    match (n("times"), n("at_least"), n("at_most")) {
        (Some(t), _, _) => format!("exactly {t}"),
        (_, Some(l), _) => format!("at least {l}"),
        (_, _, Some(m)) => format!("at most {m}"),
        _ => "a count".into(),
    }
}

/// The most a snapshot imported may weigh.
const MAX_SNAPSHOT: usize = 256 * 1024 * 1024;

/// `GET snapshot`: every key, or the caller's.
fn snapshot(shared: &Shared, parts: &Parts) -> Value {
    let only = key_of(&parts.headers).ok();
    let tenants = shared.tenants.lock().unwrap_or_else(|p| p.into_inner());
    let mut keys: Vec<Value> = tenants
        .iter()
        .filter(|(hash, _)| only.as_ref().is_none_or(|k| k == *hash))
        .map(|(hash, t)| snapshots::key_part(hash, t, shared.replays.kept_of(hash)))
        .collect();
    keys.sort_by(|a, b| a["key"].as_str().cmp(&b["key"].as_str()));
    snapshots::document(keys)
}

/// `POST snapshot`: replaces each key the document names (the caller's
/// only, with `X-API-Key`), in memory and in the state file.
async fn restore(shared: &Arc<Shared>, parts: &Parts, body: Body) -> Result<Value, Failure> {
    let bytes = axum::body::to_bytes(body, MAX_SNAPSHOT)
        .await
        .map_err(|_| Failure::rule("body", format!("is larger than {MAX_SNAPSHOT} bytes")))?;
    let doc: Value = serde_json::from_slice(&bytes).map_err(|e| Failure::rule("body", format!("is not JSON: {e}")))?;
    // What `GET snapshot` answers (`{"data": {…}}`) restores as the bare
    // document does: saved with curl, restored with curl.
    let doc = match doc {
        Value::Object(mut outer) if outer.len() == 1 && outer.get("data").is_some_and(Value::is_object) => {
            outer.remove("data").unwrap_or_default()
        }
        doc => doc,
    };
    let mut restored = snapshots::read(&doc).map_err(|why| Failure::rule("snapshot", why))?;
    if let Ok(only) = key_of(&parts.headers) {
        restored.retain(|r| r.key == only);
        if restored.is_empty() {
            return Err(Failure::rule("snapshot", "holds no part for the X-API-Key's key"));
        }
    }
    let names: Vec<String> = restored.iter().map(|r| r.key.clone()).collect();
    {
        let mut tenants = shared.tenants.lock().unwrap_or_else(|p| p.into_inner());
        let new = names.iter().filter(|k| !tenants.contains_key(*k)).count();
        if tenants.len() + new > 1000 {
            return Err(Failure::rule(
                "snapshot",
                "would make more than the 1000 keys a sandbox keeps",
            ));
        }
        for r in restored {
            shared.replays.forget(&r.key);
            for kept in r.kept {
                shared
                    .replays
                    .restore(&kept.tenant, &kept.key, kept.fingerprint, kept.stored, kept.kept_at);
            }
            tenants.insert(r.key, r.tenant);
        }
    }
    for key in &names {
        forget_file(shared, Some(key)).await?;
        persist(shared, key, true, None).await?;
        shared.tally.forget(Some(fingerprint(key)));
    }
    crate::sandbox::face::shared::resume_deliveries_of(shared, &names);
    Ok(json!({"restored": names.iter().map(|k| fingerprint(k)).collect::<Vec<_>>()}))
}

/// Forgets one key, or all, in the state file too.
async fn forget_file(shared: &Shared, key: Option<&str>) -> Result<(), Failure> {
    let pending = forget_in_file(shared, key);
    forgotten(pending).await
}

/// Hands the forgetting to the state file's writer (called under the
/// tenants lock by a reset, so that no later request's rows of the key
/// reach the file before the DELETE that would wipe them).
fn forget_in_file(shared: &Shared, key: Option<&str>) -> Option<Result<crate::sandbox::world::store::Pending, String>> {
    shared.store.as_ref().map(|store| store.forget(key))
}

/// Waits for a forgetting handed over by [`forget_in_file`].
async fn forgotten(pending: Option<Result<crate::sandbox::world::store::Pending, String>>) -> Result<(), Failure> {
    let committed = match pending {
        None => return Ok(()),
        Some(Ok(pending)) => pending.committed().await,
        Some(Err(why)) => Err(why),
    };
    committed.map_err(|why| Failure::new(500, "INTERNAL_ERROR", format!("The reset could not be written: {why}")))
}

/// A JSON body (an empty one is `null`).
async fn json_body(body: Body) -> Result<Value, Failure> {
    let bytes = axum::body::to_bytes(body, MAX_JSON_BODY)
        .await
        .map_err(|_| Failure::rule("body", format!("is larger than {MAX_JSON_BODY} bytes")))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&bytes).map_err(|e| Failure::rule("body", format!("is not JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use super::loopback_name;

    #[test]
    fn loopback_names() {
        for ok in ["localhost", "localhost:80", "127.0.0.1:9", "[::1]:8080", "127.1.2.3"] {
            assert!(loopback_name(ok), "{ok}");
        }
        for bad in [
            "evil.example:8080",
            "10.0.0.1",
            "[2001:db8::1]:80",
            "localhost.evil.example",
        ] {
            assert!(!loopback_name(bad), "{bad}");
        }
    }
}
