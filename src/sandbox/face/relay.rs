//! A request passed to the live API (`--proxy URL`) and its answer passed
//! back unchanged (status, headers and body, streamed as it arrives), then
//! recorded, checked for drift and journalled once its last byte is in.
//!
//! The answer is read to its end even when the caller has gone, so a paid
//! answer is always recorded. A paid call is refused here, unsent, unless
//! the sandbox was started with `--allow-spend`
//! ([`upstream::spend_refusal`]); its refusal is the sandbox's own
//! `403 PROXY_SPEND_NOT_ALLOWED` (TokPortal names no such code).

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use http::{HeaderValue, Response, StatusCode};
use hyper::body::Incoming;
use sha2::{Digest, Sha256};

use crate::headers;
use crate::sandbox::contract::Failure;
use crate::sandbox::contract::routes::{self, Route};
use crate::sandbox::face::flow::{api_path, new_request_id};
use crate::sandbox::face::shared::Shared;
use crate::sandbox::live::drift;
use crate::sandbox::live::har::{self, Entry as HarEntry};
use crate::sandbox::live::upstream::{Upstream, hop_header, spend_refusal};
use crate::sandbox::live::{BodyRoom, Exchange, redact};
use crate::sandbox::logbook::journal::{Arrival, Entry, Message, Noted};

/// The largest request body passed on.
const MAX_REQUEST: usize = 64 * 1024 * 1024;
/// Chunks of an answer waiting for a slow caller.
const CHUNKS_AHEAD: usize = 16;

/// `path` when it is plain: a dot segment (`/./`, `/%2e%2e/`) would be read
/// one way here and another by the origin, so it is refused, as no client
/// of the API sends one.
fn plain(path: &str) -> Option<String> {
    let dotted = path.split('/').any(|segment| {
        let decoded = percent_encoding::percent_decode_str(segment).decode_utf8_lossy();
        decoded == "." || decoded == ".."
    });
    (!dotted).then(|| path.to_owned())
}

/// A refusal of the proxy's own, journalled (nothing was sent).
fn refused(shared: &Shared, failure: &Failure, arrival: Arrival, noted: Noted) -> Response<Body> {
    let body = Bytes::from(failure.body().to_string());
    let mut response = Response::new(Body::from(body.clone()));
    *response.status_mut() = StatusCode::from_u16(failure.status).unwrap_or(StatusCode::BAD_GATEWAY);
    response
        .headers_mut()
        .insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let request_id = new_request_id();
    let message = Message::new(response.headers(), &body, body.len() as u64);
    let entry = Entry::new(arrival, request_id, noted, Some((failure.status, message)));
    shared.tally.request(&entry.summary);
    shared.journal.record(entry);
    response
}

/// Passes one request to the live API.
pub(in crate::sandbox) async fn handle(
    shared: &Arc<Shared>,
    upstream: &Upstream,
    request: http::Request<Incoming>,
) -> Response<Body> {
    let (parts, body) = request.into_parts();
    let (mut arrival, body) = Arrival::new(&parts, body);
    let api = api_path(parts.uri.path());
    let url = upstream.url(api, parts.uri.query());
    let path = plain(api);
    arrival.keep_instead(
        redact::target(parts.uri.path(), parts.uri.query()),
        redact::headers(&parts.headers),
    );
    let op = match path.as_deref().map(|p| routes::route(parts.method.as_str(), p)) {
        Some(Route::Operation(op, _)) => Some(op),
        _ => None,
    };
    let noted = Noted {
        operation: op,
        caller: parts.headers.get(headers::API_KEY).map(|key| {
            let mut hash = hex::encode(Sha256::digest(key.as_bytes()));
            hash.truncate(8);
            hash
        }),
        source: Some("live"),
        ..Noted::default()
    };
    let refuse = |failure: Failure, arrival: Arrival, noted: Noted| refused(shared, &failure, arrival, noted);
    let Some(path) = path else {
        let failure = Failure::new(
            400,
            "PROXY_PATH_NOT_CANONICAL",
            format!(
                "The path has a `.` or `..` segment; the proxy sends only plain paths below the live API's base ({}).",
                upstream.base()
            ),
        );
        return refuse(failure, arrival, noted);
    };
    if let Some(why) = spend_refusal(op, &parts.method, &parts.headers).filter(|_| !shared.live.allow_spend) {
        return refuse(Failure::new(403, "PROXY_SPEND_NOT_ALLOWED", why), arrival, noted);
    }
    let room = shared
        .live
        .room_for_body(&http_body::Body::size_hint(&body), MAX_REQUEST)
        .await;
    let sent = match axum::body::to_bytes(body, room.limit).await {
        Ok(bytes) => bytes,
        Err(_) => {
            let failure = Failure::new(
                413,
                "PAYLOAD_TOO_LARGE",
                format!("The proxy passes bodies up to {MAX_REQUEST} bytes, and no longer than their Content-Length."),
            );
            return refuse(failure, arrival, noted);
        }
    };
    // Redacted once: the journal now, the recording when the answer is in.
    let request_recorded = har::recorded_request(&sent);
    arrival.keep_body_instead(request_recorded.recorded().0.as_bytes());
    let started = chrono::Utc::now();
    let clock = Instant::now();
    let answer = match upstream
        .send(parts.method.clone(), url.clone(), &parts.headers, sent.clone())
        .await
    {
        Ok(answer) => answer,
        Err(e) => {
            // The cause without the URL's query (reqwest's Display names the URL).
            let why = e.without_url().to_string();
            let failure = Failure::new(
                502,
                "PROXY_UPSTREAM_UNREACHABLE",
                format!("The live API at {} did not answer: {why}", upstream.base()),
            );
            return refuse(failure, arrival, noted);
        }
    };
    let wait_ms = clock.elapsed().as_secs_f64() * 1000.0;
    let status = answer.status();
    let mut response_headers = http::HeaderMap::with_capacity(answer.headers().len());
    for (name, value) in answer.headers() {
        if !hop_header(name) || name == http::header::CONTENT_LENGTH {
            response_headers.append(name.clone(), value.clone());
        }
    }
    let (tx, rx) = futures::channel::mpsc::channel::<Result<Bytes, std::io::Error>>(CHUNKS_AHEAD);
    let mut response = Response::new(Body::from_stream(rx));
    *response.status_mut() = status;
    *response.headers_mut() = response_headers.clone();
    let exchange = Exchange {
        started,
        elapsed_ms: 0.0,
        wait_ms,
        method: parts.method.to_string(),
        url,
        path,
        request_headers: parts.headers,
        request_body: sent,
        status: status.as_u16(),
        response_headers,
        response_body: Bytes::new(),
        response_size: 0,
        key: noted.caller.clone(),
    };
    let passing = Passing {
        exchange,
        _room: room,
        request_recorded,
        clock,
        arrival,
        noted,
    };
    shared
        .live
        .relays
        .spawn(read_through(shared.clone(), answer, tx, passing));
    response
}

/// Reads the answer to its end (even when the caller has gone), passing
/// each chunk on, then [`finish`]es the exchange.
async fn read_through(
    shared: Arc<Shared>,
    answer: reqwest::Response,
    mut tx: futures::channel::mpsc::Sender<Result<Bytes, std::io::Error>>,
    mut passing: Passing,
) {
    let mut kept = BytesMut::new();
    let mut size: u64 = 0;
    let mut caller_here = true;
    let mut stream = answer.bytes_stream();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(chunk) => {
                size += chunk.len() as u64;
                let room = har::BODY_RECORDED.saturating_sub(kept.len());
                kept.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if caller_here && tx.send(Ok(chunk)).await.is_err() {
                    caller_here = false;
                }
            }
            Err(e) => {
                let _ = tx.send(Err(std::io::Error::other(e.without_url()))).await;
                break;
            }
        }
    }
    drop(tx);
    let exchange = &mut passing.exchange;
    exchange.elapsed_ms = passing.clock.elapsed().as_secs_f64() * 1000.0;
    exchange.response_body = kept.freeze();
    exchange.response_size = size;
    if let Some(entry) = finish(&shared, passing) {
        // A file write (up to two 8 MiB bodies): off the runtime's workers,
        // and awaited, so that `Sandbox::shutdown` waits for it.
        let recording = shared.clone();
        let _ = tokio::task::spawn_blocking(move || {
            if let Some(recorder) = &recording.live.recorder {
                recorder.append(&entry);
            }
        })
        .await;
    }
}

/// An exchange on its way back: what it sent, and what the journal keeps of
/// its request.
struct Passing {
    exchange: Exchange,
    /// The request body's room in memory, held until the exchange ends.
    _room: BodyRoom,
    /// The request's body as recorded (redacted once, in [`handle`]).
    request_recorded: redact::Body,
    clock: Instant,
    arrival: Arrival,
    noted: Noted,
}

/// An exchange ended: checked for drift, journalled, and its HAR entry made
/// when there is a recording; what is checked, logged and journalled is what
/// the recording keeps, secrets redacted.
fn finish(shared: &Arc<Shared>, passing: Passing) -> Option<HarEntry> {
    let Passing {
        exchange,
        request_recorded,
        arrival,
        noted,
        ..
    } = passing;
    let whole_body = exchange.response_size == exchange.response_body.len() as u64;
    // Redacted once, for the drift check, the journal and the recording.
    let response_recorded = har::recorded_response(&exchange.response_body, noted.operation, exchange.status);
    let kept = response_recorded.recorded().0.as_bytes();
    let has_header = |name: &str| exchange.response_headers.contains_key(name);
    let content_type = exchange
        .response_headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let findings = drift::check(&drift::Answer {
        method: &exchange.method,
        path: &exchange.path,
        status: exchange.status,
        has_header: &has_header,
        content_type,
        body: whole_body.then_some(kept),
    });
    for f in &findings {
        tracing::info!(
            target: "tokportal::sandbox",
            "drift: {} {} {}: {}",
            f.kind.as_str(),
            f.operation,
            f.at,
            f.detail
        );
    }
    shared.live.drift.add(findings);
    let request_id = exchange
        .response_headers
        .get(headers::TOKPORTAL_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .map_or_else(new_request_id, str::to_owned);
    let message = Message::new(
        &redact::headers(&exchange.response_headers),
        kept,
        exchange.response_size,
    );
    let recorded = shared
        .live
        .recorder
        .is_some()
        .then(|| HarEntry::of_redacted(&exchange, noted.operation, &request_recorded, &response_recorded));
    let entry = Entry::new(arrival, request_id, noted, Some((exchange.status, message)));
    shared.tally.request(&entry.summary);
    shared.journal.record(entry);
    recorded
}
