//! One request through the sandbox, in the order a real API gateway takes
//! it. [`stages`] reads as this list, one function a stage, each returning
//! `Result<_, Failure>` (the first failure is the answer):
//!
//! 1. [`route`]: method and path to an operation (404, 405 with `Allow`);
//! 2. [`authenticate`]: the key, if the operation needs one (401);
//! 3. [`rate_limit`]: a token from the key's bucket (429);
//! 4. [`fault`]: `X-Sandbox-Fault` or the dice (`faults.rs` has each
//!    fault's status and code; `reset` and `lost` close the connection);
//! 5. [`check_contract`]: path, query and body against the contract (400);
//! 6. the idempotency claim ([`Replays::claim_request`], beside the kept
//!    answers in `replays.rs`): refused, replayed, or claimed;
//! 7. [`run`]: the operation's behaviour (on a scratch copy for a dry run),
//!    then its webhooks;
//! 8. [`finish`]: the documented headers on every answer.

use std::sync::Arc;

use axum::body::Body;
use bytes::Bytes;
use chrono::Utc;
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::headers;
use crate::operations::{Operation, SPEC_VERSION};
use crate::sandbox::contract::routes::{self, Params, Route};
use crate::sandbox::contract::{self, Failure, Problem};
use crate::sandbox::face::faults::{self, Fault};
use crate::sandbox::face::limits::Verdict;
use crate::sandbox::face::shared::{Shared, persist};
use crate::sandbox::live::replay::Book;
use crate::sandbox::logbook::journal::{Arrival, Entry, Event, Message, Noted};
use crate::sandbox::world::behaviour;
use crate::sandbox::world::deliveries;
use crate::sandbox::world::keys::{key_of, tenant_of};
use crate::sandbox::world::replays::{self, Idempotency, Stored};
use crate::sandbox::world::state::{Object, Tenant, fingerprint};
use crate::sandbox::world::vocabulary::{self, Call, Effects, FileSummary, Payload, Reply, Upload};

/// The header of a warning: the contract allows it, but it is likely a mistake.
const SANDBOX_WARNING: &str = "x-sandbox-warning";
/// The largest JSON body taken.
pub(in crate::sandbox) const MAX_JSON_BODY: usize = 1024 * 1024;
/// The largest body a replaying sandbox reads to find its recorded answer.
const MAX_REPLAYED_BODY: usize = 64 * 1024 * 1024;
/// The largest multipart text field taken.
const MAX_FORM_FIELD: usize = 64 * 1024;
/// A file part up to this size is kept as text (a CSV import); larger ones
/// are only counted and hashed.
const MAX_KEPT_FILE: usize = 1024 * 1024;

/// One client connection, as the request flow sees it.
#[derive(Clone)]
pub(in crate::sandbox) struct Connection {
    /// The peer (the rate-limit key of a request without an API key).
    pub(in crate::sandbox) peer: std::net::SocketAddr,
    /// Cancelled to close the connection without an answer.
    pub(in crate::sandbox) close: CancellationToken,
}

/// The headers every answer carries.
struct Stamp {
    request_id: String,
    rate: Option<Verdict>,
    /// What the journal entry and the log line tell besides the HTTP exchange.
    noted: Noted,
}

/// The path as the API knows it: the hosted API lives under `/api/ext`, and
/// the sandbox answers there too.
pub(in crate::sandbox) fn api_path(full_path: &str) -> &str {
    full_path
        .strip_prefix("/api/ext")
        .filter(|p| p.is_empty() || p.starts_with('/'))
        .unwrap_or(full_path)
}

/// A request id of the sandbox's own (`req_` and 32 hex digits), for an
/// answer that has none.
pub(in crate::sandbox) fn new_request_id() -> String {
    format!("req_{}", uuid::Uuid::new_v4().simple())
}

/// Answers one API request through the contract's [`stages`], journalled.
pub(in crate::sandbox) async fn handle(
    shared: &Arc<Shared>,
    conn: &Connection,
    request: http::Request<Incoming>,
) -> Response<Body> {
    let (parts, body) = request.into_parts();
    let path = api_path(parts.uri.path()).to_owned();
    let request_id = parts
        .headers
        .get(headers::REQUEST_ID)
        .filter(|v| crate::idempotency::validate_request_id(v.as_bytes()).is_ok() && v.len() <= 128)
        .and_then(|v| v.to_str().ok())
        .map_or_else(new_request_id, str::to_owned);
    let (arrival, body) = Arrival::new(&parts, body);
    let mut flight = InFlight {
        shared: shared.clone(),
        arrival: Some(arrival),
        stamp: Stamp {
            request_id,
            rate: None,
            noted: Noted::default(),
        },
    };
    let body = match &shared.live.replay {
        None => body,
        Some(book) => match recorded(shared, book, &parts, &path, body, &mut flight.stamp).await {
            Replay::Answer(response) => {
                let (head, body) = response.into_parts();
                let message = Message::new(&head.headers, &body, body.len() as u64);
                flight.write(Some((head.status.as_u16(), message)));
                return Response::from_parts(head, Body::from(body));
            }
            Replay::Refused(failure) => {
                let (response, body) = finish(Answer::Failure(failure), &flight.stamp);
                flight.answered(&response, &body);
                return response;
            }
            Replay::NotRecorded(body) => Body::from(body),
        },
    };
    let answer = answer(shared, conn, parts, &path, body, &mut flight.stamp).await;
    let (response, body) = finish(answer, &flight.stamp);
    flight.answered(&response, &body);
    response
}

/// What `--replay` makes of a request.
enum Replay {
    /// Its recorded answer.
    Answer(Response<Bytes>),
    /// None was recorded, under `--replay-strict`; or its body is too large.
    Refused(Failure),
    /// None was recorded: the body read, for the stages.
    NotRecorded(Bytes),
}

/// The recorded answer to a request (`--replay FILE`).
async fn recorded(
    shared: &Shared,
    book: &Book,
    parts: &http::request::Parts,
    path: &str,
    body: Body,
    stamp: &mut Stamp,
) -> Replay {
    let room = shared
        .live
        .room_for_body(&http_body::Body::size_hint(&body), MAX_REPLAYED_BODY)
        .await;
    let Ok(bytes) = axum::body::to_bytes(body, room.limit).await else {
        return Replay::Refused(Failure::new(
            413,
            "PAYLOAD_TOO_LARGE",
            format!(
                "A replaying sandbox reads bodies up to {MAX_REPLAYED_BODY} bytes, and no longer than their Content-Length."
            ),
        ));
    };
    let Some(answer) = book.answer(parts.method.as_str(), path, parts.uri.query(), &parts.headers, &bytes) else {
        if shared.live.replay_strict {
            return Replay::Refused(Failure::new(
                404,
                "NOT_RECORDED",
                format!(
                    "No recorded answer to {} {path} with this query and body (--replay-strict answers only what the recording holds).",
                    parts.method
                ),
            ));
        }
        return Replay::NotRecorded(bytes);
    };
    stamp.noted.source = Some("recording");
    stamp.noted.caller = key_of(&parts.headers).ok().map(|t| fingerprint(&t).to_owned());
    if let Route::Operation(op, _) = routes::route(parts.method.as_str(), path) {
        stamp.noted.operation = Some(op);
    }
    let mut response = Response::new(Bytes::from(answer.body));
    *response.status_mut() = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
    for (name, value) in answer.headers {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            response.headers_mut().append(name, value);
        }
    }
    // A recording is a file from anywhere: what it holds is never run as a
    // page of the sandbox's origin (where `/_sandbox/` lives).
    let h = response.headers_mut();
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    h.insert(
        "content-security-policy",
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    Replay::Answer(response)
}

/// A request on its way, for the journal: written when it is answered, or,
/// if the connection closes first (a `reset` or `lost` fault, a client
/// gone), when the flow is dropped.
struct InFlight {
    shared: Arc<Shared>,
    /// Taken once the entry is written.
    arrival: Option<Arrival>,
    stamp: Stamp,
}

impl InFlight {
    fn answered(&mut self, response: &Response<Body>, body: &Bytes) {
        let message = Message::new(response.headers(), body, body.len() as u64);
        self.write(Some((response.status().as_u16(), message)));
    }

    fn write(&mut self, response: Option<(u16, Message)>) {
        let Some(arrival) = self.arrival.take() else {
            return;
        };
        let stamp = &mut self.stamp;
        // One line a request (`tokportal sandbox` shows them); never a key
        // or a body: the key by its fingerprint only.
        tracing::info!(
            target: "tokportal::sandbox",
            "{} {} -> {} in {} ms ({}) {} key {}",
            arrival.method,
            arrival.target,
            response.as_ref().map_or_else(|| "closed".to_owned(), |(s, _)| s.to_string()),
            arrival.clock.elapsed().as_millis(),
            stamp.request_id,
            stamp.noted.operation.map_or("-", |op| op.id),
            stamp.noted.caller.as_deref().unwrap_or("-"),
        );
        for warning in &stamp.noted.warnings {
            tracing::info!(target: "tokportal::sandbox", "  warning ({}): {warning}", stamp.request_id);
        }
        let entry = Entry::new(
            arrival,
            stamp.request_id.clone(),
            std::mem::take(&mut stamp.noted),
            response,
        );
        self.shared.tally.request(&entry.summary);
        self.shared.journal.record(entry);
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.write(None);
    }
}

/// What the flow answers, before the common headers.
enum Answer {
    Reply(Reply),
    Failure(Failure),
    Replayed(Stored),
}

async fn answer(
    shared: &Arc<Shared>,
    conn: &Connection,
    parts: http::request::Parts,
    path: &str,
    body: Body,
    stamp: &mut Stamp,
) -> Answer {
    match stages(shared, conn, &parts, path, body, stamp).await {
        Ok(answer) => answer,
        Err(failure) => {
            // The contract's complaints, by field, for the journal.
            if let Some(fields) = failure
                .details
                .as_ref()
                .and_then(|d| d.get("fields"))
                .and_then(Value::as_array)
            {
                stamp.noted.violations = fields.clone();
            }
            Answer::Failure(failure)
        }
    }
}

/// The stages of the module doc, in order; the first `Err` is the answer.
async fn stages(
    shared: &Arc<Shared>,
    conn: &Connection,
    parts: &http::request::Parts,
    path: &str,
    body: Body,
    stamp: &mut Stamp,
) -> Result<Answer, Failure> {
    // The key is named before the route is known, so that a path the
    // contract does not know (404, 405) is journaled as the key's too.
    stamp.noted.caller = key_of(&parts.headers).ok().map(|t| fingerprint(&t).to_owned());
    let (op, params) = route(&parts.method, path)?;
    stamp.noted.operation = Some(op);
    let tenant = authenticate(op, &parts.headers)?;
    stamp.noted.caller = tenant.as_deref().map(|t| fingerprint(t).to_owned());
    rate_limit(shared, conn, tenant.as_deref(), stamp)?;
    let fault = fault(shared, op, &parts.headers, &mut stamp.noted).await?;
    if fault == Some(Fault::Reset) {
        return Ok(close(conn).await);
    }
    let checked = check_contract(
        op,
        params,
        parts,
        body,
        shared.options.lenient,
        &mut stamp.noted.warnings,
    )
    .await?;
    let dry_run = dry_run(op, &parts.headers);
    let claimed = match shared
        .replays
        .claim_request(op, &parts.headers, tenant.as_deref(), dry_run, || {
            checked.fingerprint(op)
        })? {
        Idempotency::Replay(stored) => {
            stamp.noted.replayed = true;
            // `lost` loses a replayed answer too, so every attempt of a
            // retried call can be cut off.
            if fault == Some(Fault::Lost) {
                return Ok(close(conn).await);
            }
            return Ok(Answer::Replayed(stored));
        }
        Idempotency::Claimed(claimed) => Some(claimed),
        Idempotency::Untracked => None,
    };
    let mut call = checked.into_call(op, dry_run, &shared.url);
    let mut answer = run(shared, tenant.as_deref(), &mut call, &mut stamp.noted.warnings).await;
    let kept = claimed.as_ref().and_then(|_| kept(&answer));
    // Committed before the answer is sent: the change and the answer kept
    // under its idempotency key, in one transaction.
    // A read or a dry run writes a key only when it is new (its profile and
    // starting account keep their ids across a restart).
    if let Some(key) = tenant.as_deref() {
        let replay = claimed
            .as_ref()
            .zip(kept.as_ref())
            .map(|(c, stored)| (c.kept_as().0, c.kept_as().1, stored));
        let changed = !op.method.is_read_only() && !dry_run;
        if let Err(failure) = persist(shared, key, changed, replay).await {
            answer = Answer::Failure(failure);
        }
    }
    if let Some(claimed) = claimed {
        shared.replays.settle(claimed, kept);
    }
    if fault == Some(Fault::Lost) {
        return Ok(close(conn).await);
    }
    Ok(answer)
}

/// Method and path to an operation: 405 with `Allow` for a method the path
/// does not have, 404 for a path no operation has.
fn route(method: &http::Method, path: &str) -> Result<(&'static Operation, Params), Failure> {
    match routes::route(method.as_str(), path) {
        Route::Operation(op, params) => Ok((op, params)),
        Route::WrongMethod(methods) => {
            Err(
                Failure::new(405, "METHOD_NOT_ALLOWED", format!("{method} is not allowed on {path}."))
                    .details(json!({"allowed": methods}))
                    .header("allow", methods.join(", ")),
            )
        }
        Route::NotFound => Err(Failure::new(
            404,
            "NOT_FOUND",
            format!("No operation at {method} {path}."),
        )),
    }
}

/// The key's state name (the SHA-256 of its key); `None` for a public
/// operation called without one.
fn authenticate(op: &Operation, headers: &HeaderMap) -> Result<Option<String>, Failure> {
    match key_of(headers) {
        Ok(key) => Ok(Some(key)),
        Err(_) if !op.requires_auth => Ok(None),
        Err(why) => Err(Failure::new(401, "UNAUTHORIZED", why)),
    }
}

/// One token from the key's bucket (the peer's, without a key); the
/// verdict goes on the answer's headers either way.
fn rate_limit(shared: &Shared, conn: &Connection, tenant: Option<&str>, stamp: &mut Stamp) -> Result<(), Failure> {
    let bucket = tenant.map_or_else(|| format!("ip:{}", conn.peer.ip()), str::to_owned);
    let verdict = shared.buckets.take(&bucket);
    let (allowed, retry_after) = (verdict.allowed, verdict.retry_after);
    stamp.rate = Some(verdict);
    if allowed {
        return Ok(());
    }
    Err(Failure::new(429, "RATE_LIMIT_EXCEEDED", "Rate limit exceeded.")
        .details(json!({"retry_after_seconds": retry_after}))
        .header("retry-after", retry_after.to_string()))
}

/// The fault asked for (`X-Sandbox-Fault`) or drawn (`--fault-rate`): a
/// status fault is the answer, `slow` waits here, `reset` and `lost` are
/// the caller's to carry out.
async fn fault(
    shared: &Shared,
    op: &Operation,
    headers: &HeaderMap,
    noted: &mut Noted,
) -> Result<Option<Fault>, Failure> {
    let fault = faults::asked(headers, op.id, &shared.queued_faults, &shared.dice)?;
    noted.fault = fault.map(Fault::label);
    if let Some(failure) = fault.and_then(Fault::failure) {
        return Err(failure);
    }
    if let Some(Fault::Slow(wait)) = fault {
        tokio::time::sleep(wait).await;
    }
    Ok(fault)
}

/// A request that passed the contract: its path, query and body as checked.
struct Checked {
    path: Object,
    query: Object,
    body: Option<Value>,
    upload: Option<Upload>,
}

impl Checked {
    /// What an idempotency key is bound to: the operation, path, query and
    /// body (a form by its fields and its file's hash).
    fn fingerprint(&self, op: &Operation) -> [u8; 32] {
        let form = self
            .upload
            .as_ref()
            .map(|u| json!({"fields": u.fields, "file": u.file.as_ref().map(|f| f.sha256.as_str())}));
        let sent = form.as_ref().or(self.body.as_ref()).unwrap_or(&Value::Null);
        replays::fingerprint(
            op.id,
            &Value::Object(self.path.clone()),
            &Value::Object(self.query.clone()),
            sent,
        )
    }

    fn into_call(self, op: &'static Operation, dry_run: bool, base_url: &str) -> Call {
        Call {
            op,
            path: self.path,
            query: self.query,
            body: self.body,
            upload: self.upload,
            now: Utc::now(),
            base_url: base_url.to_owned(),
            dry_run,
        }
    }
}

/// The contract's checks of path, query and body, every problem at once.
async fn check_contract(
    op: &'static Operation,
    params: Params,
    parts: &http::request::Parts,
    body: Body,
    lenient: bool,
    warnings: &mut Vec<String>,
) -> Result<Checked, Failure> {
    let mut problems = Vec::new();
    let path = contract::check_path(op, params, &mut problems);
    let query = contract::check_query(op, parts.uri.query().unwrap_or_default(), &mut problems);
    let (body, upload) = if op.is_multipart() {
        (None, Some(read_form(op, &parts.headers, body, &mut problems).await?))
    } else {
        let bytes = axum::body::to_bytes(body, MAX_JSON_BODY).await.map_err(|_| {
            Failure::new(
                413,
                "PAYLOAD_TOO_LARGE",
                format!("The body is larger than {MAX_JSON_BODY} bytes."),
            )
        })?;
        let content_type = parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        (contract::check_json_body(op, content_type, &bytes, &mut problems), None)
    };
    if lenient {
        // What this contract does not know is a newer client's: accepted, named.
        problems.retain(|p| {
            if p.unknown {
                warnings.push(format!(
                    "{} `{}` {} (accepted: --lenient)",
                    p.location.as_str(),
                    p.field,
                    p.message
                ));
            }
            !p.unknown
        });
    }
    if let Some(not_found) = contract::path_not_found(op, &problems) {
        return Err(not_found);
    }
    if !problems.is_empty() {
        return Err(contract::validation(problems));
    }
    Ok(Checked {
        path,
        query,
        body,
        upload,
    })
}

/// `X-TokPortal-Dry-Run: true` on an operation that changes something.
fn dry_run(op: &Operation, headers: &HeaderMap) -> bool {
    !op.method.is_read_only()
        && headers
            .get(headers::DRY_RUN)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// What a claimed idempotency key keeps of an answer: a success, or a
/// failure that is the request's own; `None` frees the key for a retry.
fn kept(answer: &Answer) -> Option<Stored> {
    match answer {
        Answer::Reply(reply) => Some(stored(reply)),
        Answer::Failure(f) if f.status < 500 && f.status != 429 => Some(stored_failure(f)),
        _ => None,
    }
}

/// Runs the operation's behaviour and what follows it.
async fn run(shared: &Arc<Shared>, tenant: Option<&str>, call: &mut Call, warnings: &mut Vec<String>) -> Answer {
    let mut fx = Effects::default();
    let (result, queued) = {
        let mut tenants = shared.tenants.lock().unwrap_or_else(|p| p.into_inner());
        // The public operations read no key's state: they get a throwaway one.
        let mut public = None;
        let state = match tenant {
            Some(key) => match tenant_of(&mut tenants, key, shared.options.initial_credits) {
                Ok(state) => state,
                Err(f) => return Answer::Failure(f),
            },
            None => public.get_or_insert_with(|| Tenant::new(shared.options.initial_credits, "public", call.now)),
        };
        // The key's now: every timestamp of the call follows its clock.
        call.now = state.now();
        let call = &*call;
        if call.dry_run {
            let mut scratch = state.clone();
            (behaviour::run(&mut scratch, call, &mut fx), Vec::new())
        } else {
            let result = behaviour::run(state, call, &mut fx);
            let mut queued = Vec::new();
            if result.is_ok() {
                for event in &fx.events {
                    queued.push(vocabulary::queue(state, event, call.now));
                }
            }
            (result, queued)
        }
    };
    warnings.append(&mut fx.warnings);
    let mut reply = match result {
        Ok(reply) => reply,
        Err(f) => return Answer::Failure(f),
    };
    let Some(tenant) = tenant else {
        return Answer::Reply(reply);
    };
    for event in queued {
        shared.journal.publish(Event::Webhook {
            key: fingerprint(tenant).to_owned(),
            event_type: event.event_type,
            payload: event.payload,
        });
        for id in event.deliveries {
            deliveries::start(&shared.courier, tenant, id);
        }
    }
    let once = fx.await_delivery.or(fx.retry_delivery);
    if let Some(id) = once.filter(|_| !call.dry_run) {
        let delivered = deliveries::attempt(&shared.courier, tenant, id).await;
        if delivered == Some(false) && fx.await_delivery.is_some() {
            let (courier, tenant) = (shared.courier.clone(), tenant.to_owned());
            tokio::spawn(async move { deliveries::retries(&courier, &tenant, id, 1).await });
        }
        if let Some(entry) = deliveries::entry(&shared.courier, tenant, id) {
            reply.payload = Payload::Json(json!({ "data": entry }));
        }
    }
    if call.dry_run {
        preview(&mut reply, &fx);
    }
    Answer::Reply(reply)
}

/// Marks a dry run's answer: `dry_run`, the notice, what it would charge.
fn preview(reply: &mut Reply, fx: &Effects) {
    let Payload::Json(body) = &mut reply.payload else {
        return;
    };
    let would = fx.charge.as_ref().map_or(0.0, |c| c.total);
    let mut marks = Map::new();
    marks.insert("dry_run".into(), json!(true));
    marks.insert(
        "dry_run_notice".into(),
        json!("Dry run: nothing was created, changed or charged; ids are synthetic."),
    );
    marks.insert("credits_would_charge".into(), json!(would));
    marks.insert("credits_charged".into(), json!(0));
    marks.insert(
        "cost_breakdown".into(),
        fx.charge.as_ref().map_or(json!({}), |c| c.breakdown.clone()),
    );
    marks.insert(
        "sufficient_credits".into(),
        json!(fx.charge.as_ref().is_none_or(|c| c.sufficient)),
    );
    if body.get("credits_charged").is_some() {
        body["credits_charged"] = json!(0);
    }
    match body.get_mut("data") {
        Some(Value::Object(data)) => data.extend(marks),
        _ => {
            if let Value::Object(top) = body {
                top.extend(marks);
            }
        }
    }
}

/// Closes the connection without an answer.
async fn close(conn: &Connection) -> Answer {
    conn.close.cancel();
    std::future::pending::<Answer>().await
}

/// Streams a multipart body: text fields kept (bounded), the file part
/// counted and hashed, and kept as text only when small.
async fn read_form(
    op: &'static Operation,
    headers: &HeaderMap,
    body: Body,
    problems: &mut Vec<Problem>,
) -> Result<Upload, Failure> {
    let boundary = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|c| multer::parse_boundary(c).ok())
        .ok_or_else(|| Failure::rule("body", "must be sent as multipart/form-data with a boundary"))?;
    let file_field = op.body.and_then(|b| b.file_field()).unwrap_or_else(|| "file".into());
    let stream = body.into_data_stream();
    let mut form = multer::Multipart::new(stream, boundary);
    let mut fields = Map::new();
    let mut file = None;
    let broken = |e: multer::Error| Failure::rule("body", format!("is not a readable multipart body: {e}"));
    while let Some(mut field) = form.next_field().await.map_err(broken)? {
        let name = field.name().unwrap_or_default().to_owned();
        if name == file_field {
            let filename = field.file_name().map(str::to_owned);
            let content_type = field.content_type().map(ToString::to_string);
            let mut hash = Sha256::new();
            let mut size: u64 = 0;
            let mut kept = Vec::new();
            while let Some(chunk) = field.chunk().await.map_err(broken)? {
                hash.update(&chunk);
                size += chunk.len() as u64;
                if kept.len() + chunk.len() <= MAX_KEPT_FILE {
                    kept.extend_from_slice(&chunk);
                } else {
                    kept = Vec::new();
                }
            }
            let text = (size as usize <= MAX_KEPT_FILE)
                .then(|| String::from_utf8(kept).ok())
                .flatten();
            file = Some(FileSummary {
                filename,
                content_type,
                size,
                sha256: hex::encode(hash.finalize()),
                text,
            });
            continue;
        }
        let mut text = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(broken)? {
            if text.len() + chunk.len() > MAX_FORM_FIELD {
                return Err(Failure::rule(&name, format!("is longer than {MAX_FORM_FIELD} bytes")));
            }
            text.extend_from_slice(&chunk);
        }
        fields.insert(name, Value::String(String::from_utf8_lossy(&text).into_owned()));
    }
    let fields = contract::check_form(op, fields, file.as_ref().map(|_| file_field.as_str()), problems);
    Ok(Upload { fields, file })
}

fn stored(reply: &Reply) -> Stored {
    let (content_type, body) = encode(&reply.payload);
    Stored {
        status: reply.status,
        content_type,
        body,
    }
}

fn stored_failure(f: &Failure) -> Stored {
    Stored {
        status: f.status,
        content_type: Some("application/json"),
        body: Bytes::from(f.body().to_string()),
    }
}

fn encode(payload: &Payload) -> (Option<&'static str>, Bytes) {
    match payload {
        Payload::Json(v) => (Some("application/json"), Bytes::from(v.to_string())),
        Payload::Text(ct, text) => (Some(*ct), Bytes::from(text.clone())),
        Payload::Empty => (None, Bytes::new()),
    }
}

/// The answer with the documented headers, and its body for the journal.
fn finish(answer: Answer, stamp: &Stamp) -> (Response<Body>, Bytes) {
    let (status, content_type, body, extra, replayed) = match answer {
        Answer::Reply(reply) => {
            let (ct, body) = encode(&reply.payload);
            (reply.status, ct, body, Vec::new(), false)
        }
        Answer::Failure(f) => {
            let body = Bytes::from(f.body().to_string());
            (f.status, Some("application/json"), body, f.headers, false)
        }
        Answer::Replayed(s) => (s.status, s.content_type, s.body, Vec::new(), true),
    };
    let mut response = Response::new(Body::from(body.clone()));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = response.headers_mut();
    let mut put = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    };
    if let Some(ct) = content_type {
        put("content-type", ct.to_owned());
    }
    put(headers::TOKPORTAL_REQUEST_ID, stamp.request_id.clone());
    put(headers::API_VERSION, SPEC_VERSION.to_owned());
    put("x-tokportal-api-stability", "stable".to_owned());
    if let Some(rate) = &stamp.rate {
        put(headers::RATE_LIMIT_LIMIT, rate.limit.to_string());
        put(headers::RATE_LIMIT_REMAINING, rate.remaining.to_string());
        put(headers::RATE_LIMIT_RESET, rate.reset.to_string());
    }
    if replayed {
        put(headers::IDEMPOTENT_REPLAYED, "true".to_owned());
    }
    for (name, value) in extra {
        put(name, value);
    }
    for warning in &stamp.noted.warnings {
        if let Ok(v) = HeaderValue::from_str(warning) {
            h.append(SANDBOX_WARNING, v);
        }
    }
    (response, body)
}
