//! The routes of time, under `/_sandbox/`: a key's clock, its advance, and
//! the account manager's human outcomes on demand. `admin` reads the
//! request (its body, its query) and hands it here.
//!
//! | Route | What it does |
//! |---|---|
//! | `GET clock` | the key's clock: `now`, `simulated`, `delays`, `pending` (and `held`) |
//! | `POST clock` | `{"frozen_at"?, "delays"?}`: puts the key on a simulated clock, standing still |
//! | `DELETE clock` | back on real time (work still waiting is dropped, and counted) |
//! | `POST clock/advance` | `{"by": "36h"}` or `{"to": RFC 3339}`: every step due on the way, in time order |
//! | `POST manager` | `{"bundle_id", "position", "flag": "download_issue"}`: the manager flags that video at its next step |
//!
//! The key is the caller's `X-API-Key`; the inspector page, which knows
//! keys by their fingerprint only, names one with `?key=FINGERPRINT`.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use http::HeaderMap;
use serde_json::{Map, Value, json};

use crate::sandbox::contract::Failure;
use crate::sandbox::face::shared::{Shared, persist};
use crate::sandbox::logbook::journal::Event;
use crate::sandbox::world::clock::{Clock, Delays, Flag, MAX_FLAGS, parse_span};
use crate::sandbox::world::deliveries;
use crate::sandbox::world::keys::{key_of, tenant_of};
use crate::sandbox::world::manager;
use crate::sandbox::world::state::{Tenant, fingerprint, stamp, str_of};

/// The state name of the key a clock route is for: the `X-API-Key`'s, else
/// the one whose fingerprint `?key=` gives (it must be known already).
fn caller(shared: &Shared, headers: &HeaderMap, query: &HashMap<String, String>) -> Result<String, Failure> {
    match key_of(headers) {
        Ok(key) => Ok(key),
        Err(why) => {
            let Some(wanted) = query.get("key").filter(|k| k.len() >= 8) else {
                return Err(Failure::new(
                    401,
                    "UNAUTHORIZED",
                    format!("{why} (the clock is per key; the inspector names one with ?key=FINGERPRINT)"),
                ));
            };
            let tenants = shared.tenants.lock().unwrap_or_else(|p| p.into_inner());
            tenants
                .keys()
                .find(|hash| hash.starts_with(wanted.as_str()))
                .cloned()
                .ok_or_else(|| {
                    Failure::new(
                        404,
                        "NOT_FOUND",
                        format!("No sandbox key has the fingerprint `{wanted}`."),
                    )
                })
        }
    }
}

/// A key's clock as every clock route answers it.
pub(in crate::sandbox) fn shown(tenant: &Tenant) -> Value {
    let held: Vec<Value> = tenant
        .desk
        .held
        .iter()
        .map(|w| json!({"bundle_id": w.bundle(), "position": w.position(), "step": w.label(), "waits_for": "fixBundleVideoDownload"}))
        .collect();
    match &tenant.desk.clock {
        Some(clock) => json!({
            "now": stamp(clock.now),
            "simulated": true,
            "delays": clock.delays.shown(),
            "pending": clock.pending(),
            "next_at": clock.next_due().map(stamp),
            "held": held,
        }),
        None => json!({
            "now": stamp(Utc::now()),
            "simulated": false,
            "delays": null,
            "pending": [],
            "next_at": null,
            "held": held,
        }),
    }
}

/// `GET clock`.
pub(in crate::sandbox) fn get(
    shared: &Shared,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
) -> Result<Value, Failure> {
    let key = caller(shared, headers, query)?;
    let mut tenants = shared.tenants.lock().unwrap_or_else(|p| p.into_inner());
    Ok(shown(tenant_of(&mut tenants, &key, shared.options.initial_credits)?))
}

/// The fields of a JSON object body (`null` is an empty one); any other
/// field than `known` is refused, naming it.
fn fields(body: &Value, known: &[&str]) -> Result<Map<String, Value>, Failure> {
    let map = match body {
        Value::Null => Map::new(),
        Value::Object(map) => map.clone(),
        _ => return Err(Failure::rule("body", "must be a JSON object")),
    };
    if let Some(unknown) = map.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(Failure::rule(
            unknown,
            format!("is not a field here: use {}", known.join(", ")),
        ));
    }
    Ok(map)
}

/// An RFC 3339 time field.
fn time_field(map: &Map<String, Value>, name: &str) -> Result<Option<DateTime<Utc>>, Failure> {
    match map.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => DateTime::parse_from_rfc3339(s)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|_| Failure::rule(name, format!("`{s}` is not an RFC 3339 time (2026-06-01T00:00:00Z)"))),
        Some(_) => Err(Failure::rule(name, "must be an RFC 3339 time as a string")),
    }
}

/// `POST clock`: a simulated clock, standing still at `frozen_at` (now by
/// default), with the delays given (the rest the defaults). A key already
/// on a simulated clock may change its delays; its time only moves forward,
/// by `clock/advance`.
pub(in crate::sandbox) async fn set(
    shared: &Shared,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
    body: &Value,
) -> Result<Value, Failure> {
    let (answer, key) = set_locked(shared, headers, query, body)?;
    persist(shared, &key, true, None).await?;
    Ok(answer)
}

/// The locked part of [`set`]: the change, and the key it is of.
fn set_locked(
    shared: &Shared,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
    body: &Value,
) -> Result<(Value, String), Failure> {
    let asked = fields(body, &["frozen_at", "delays"])?;
    let frozen_at = time_field(&asked, "frozen_at")?;
    let given = match asked.get("delays") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(d)) => d.clone(),
        Some(_) => {
            return Err(Failure::rule(
                "delays",
                "must be an object such as {\"account\": \"48h\"}",
            ));
        }
    };
    let key = caller(shared, headers, query)?;
    let mut tenants = shared.tenants.lock().unwrap_or_else(|p| p.into_inner());
    let tenant = tenant_of(&mut tenants, &key, shared.options.initial_credits)?;
    match tenant.desk.clock.as_mut() {
        Some(clock) => {
            if frozen_at.is_some_and(|t| t != clock.now) {
                return Err(Failure::new(
                    409,
                    "CLOCK_SET",
                    "This key is on a simulated clock already: move it with POST /_sandbox/clock/advance, or DELETE /_sandbox/clock first.",
                ));
            }
            clock.delays = clock.delays.with(&given).map_err(|why| Failure::rule("delays", why))?;
        }
        None => {
            let delays = Delays::default()
                .with(&given)
                .map_err(|why| Failure::rule("delays", why))?;
            tenant.desk.clock = Some(Clock::new(frozen_at.unwrap_or_else(Utc::now), delays));
        }
    }
    let answer = shown(tenant);
    Ok((answer, key))
}

/// `DELETE clock`: back on real time. What waited on the clock is dropped:
/// on real time the manager does its work at once, and a resource stays
/// where the simulated time left it.
pub(in crate::sandbox) async fn real(
    shared: &Shared,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
) -> Result<Value, Failure> {
    let (answer, key) = real_locked(shared, headers, query)?;
    persist(shared, &key, true, None).await?;
    Ok(answer)
}

/// The locked part of [`real`]: the change, and the key it is of.
fn real_locked(
    shared: &Shared,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
) -> Result<(Value, String), Failure> {
    let key = caller(shared, headers, query)?;
    let mut tenants = shared.tenants.lock().unwrap_or_else(|p| p.into_inner());
    let tenant = tenant_of(&mut tenants, &key, shared.options.initial_credits)?;
    let dropped = tenant.desk.clock.take().map_or(0, |c| c.waiting());
    let mut answer = shown(tenant);
    answer["dropped"] = json!(dropped);
    Ok((answer, key))
}

/// `POST clock/advance`: to `to`, or by `by`; every step that falls due on
/// the way is done in time order, and the answer waits until each of their
/// webhooks has had its first delivery attempt.
pub(in crate::sandbox) async fn advance(
    shared: &Arc<Shared>,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
    body: &Value,
) -> Result<Value, Failure> {
    let asked = fields(body, &["by", "to"])?;
    let to = time_field(&asked, "to")?;
    let by = match asked.get("by") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(parse_span(s).map_err(|why| Failure::rule("by", why))?),
        Some(_) => return Err(Failure::rule("by", "must be a duration such as \"36h\"")),
    };
    let key = caller(shared, headers, query)?;
    let (done, now, pending) = {
        let mut tenants = shared.tenants.lock().unwrap_or_else(|p| p.into_inner());
        let tenant = tenant_of(&mut tenants, &key, shared.options.initial_credits)?;
        let Some(clock) = tenant.desk.clock.as_ref() else {
            return Err(Failure::new(
                409,
                "NO_CLOCK",
                "This key is on real time: POST /_sandbox/clock first to give it a simulated clock.",
            ));
        };
        let until = match (by, to) {
            (Some(by), None) => clock.now + by,
            (None, Some(to)) => to,
            _ => return Err(Failure::rule("by", "give one of `by` (a duration) or `to` (a time)")),
        };
        if until < clock.now {
            return Err(Failure::new(
                409,
                "CLOCK_BACKWARDS",
                format!(
                    "A clock never goes back: it is {} and {} is earlier.",
                    stamp(clock.now),
                    stamp(until)
                ),
            )
            .details(json!({"now": stamp(clock.now), "to": stamp(until)})));
        }
        let done = manager::advance(tenant, until);
        let pending = tenant.desk.clock.as_ref().map_or(0, Clock::waiting);
        (done, until, pending)
    };
    // The steps done are committed before their webhooks go out.
    persist(shared, &key, true, None).await?;
    let mut ids = Vec::new();
    for event in done.queued {
        shared.journal.publish(Event::Webhook {
            key: fingerprint(&key).to_owned(),
            event_type: event.event_type,
            payload: event.payload,
        });
        ids.extend(event.deliveries);
    }
    deliveries::send_in_order(&shared.courier, &key, ids).await;
    Ok(json!({
        "now": stamp(now),
        "transitions": done.transitions,
        "pending": pending,
    }))
}

/// `POST manager`: a human outcome on demand. `download_issue` makes the
/// manager flag video `position` of `bundle_id` at its next step: it then
/// shows `download_issue: true` and goes no further until
/// `fixBundleVideoDownload`.
pub(in crate::sandbox) async fn flag(
    shared: &Shared,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
    body: &Value,
) -> Result<Value, Failure> {
    let (answer, key) = flag_locked(shared, headers, query, body)?;
    persist(shared, &key, true, None).await?;
    Ok(answer)
}

/// The locked part of [`flag`]: the change, and the key it is of.
fn flag_locked(
    shared: &Shared,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
    body: &Value,
) -> Result<(Value, String), Failure> {
    let asked = fields(body, &["bundle_id", "position", "flag"])?;
    let bundle_id = asked
        .get("bundle_id")
        .and_then(Value::as_str)
        .ok_or_else(|| Failure::rule("bundle_id", "is required: the bundle's id"))?
        .to_owned();
    let position = asked
        .get("position")
        .and_then(Value::as_u64)
        .and_then(|p| usize::try_from(p).ok())
        .filter(|p| *p >= 1)
        .ok_or_else(|| Failure::rule("position", "is required: the video's position, from 1"))?;
    match asked.get("flag").and_then(Value::as_str) {
        Some("download_issue") => {}
        _ => {
            return Err(Failure::rule(
                "flag",
                "must be `download_issue`, the outcome the manager can flag",
            ));
        }
    }
    let key = caller(shared, headers, query)?;
    let mut tenants = shared.tenants.lock().unwrap_or_else(|p| p.into_inner());
    let tenant = tenant_of(&mut tenants, &key, shared.options.initial_credits)?;
    let (bundle, desk) = tenant.bundle_and_desk(&bundle_id)?;
    let status = position
        .checked_sub(1)
        .and_then(|i| bundle.videos.get(i))
        .map(|v| str_of(v, "status").unwrap_or_default().to_owned())
        .ok_or_else(|| Failure::not_found("Video slot"))?;
    if desk.flags.len() >= MAX_FLAGS {
        return Err(Failure::new(
            409,
            "SANDBOX_LIMIT",
            format!("At most {MAX_FLAGS} flags may wait per key."),
        ));
    }
    let flag = Flag {
        bundle: bundle_id.clone(),
        position,
    };
    if !desk.flags.contains(&flag) {
        desk.flags.push(flag);
    }
    Ok((
        json!({"bundle_id": bundle_id, "position": position, "flag": "download_issue", "status": status, "flagged_at": "next_step"}),
        key,
    ))
}
