//! What the pipeline tells `tracing`: one span a call, one span an attempt
//! inside it (OpenTelemetry's HTTP client conventions), an event for each
//! wait, and, at DEBUG and TRACE, the headers and bodies of each exchange.
//!
//! Every call of every surface (typed, dynamic, upload, paginated) passes
//! through `execute::send`, which is the only caller of this module, so all
//! of them are traced the same way. With no subscriber (or none interested),
//! a span is `Span::none()` and no field is computed: a call pays one
//! cached check per macro.
//!
//! Whole numbers are recorded as `i64`: OpenTelemetry has no unsigned
//! integers, and tracing-opentelemetry writes a `u64` as text.
//!
//! Never recorded: the API key (headers go through [`HeaderLines`], which
//! redacts credentials), a URL's user and password, and any body of the
//! six secret-bearing operations.

use std::time::Duration;

use tracing::Span;
use tracing::field::{Empty, display};

use crate::operations::{IdempotencyKeySupport, Operation};
use crate::secret::HeaderLines;

/// The target of the call and attempt spans and the wait events.
pub(crate) const TARGET: &str = "tokportal";
/// The target of the header (DEBUG) and body (TRACE) events.
pub(crate) const HTTP_TARGET: &str = "tokportal::http";
/// How much of a body a TRACE event shows.
pub(crate) const BODY_SHOWN: usize = 2048;

/// Whether anything could listen: a `tracing` subscriber has been set.
/// Until one is, no span is created at all. (`tracing`'s `log` feature,
/// which a dependency turns on, would otherwise evaluate and record every
/// field of a disabled span, in case a `log` logger wants it: a few hundred
/// instructions a call, for nothing.)
pub(crate) fn listening() -> bool {
    tracing::dispatcher::has_been_set()
}

/// Whether `op`'s bodies may be logged: not those of the six operations
/// whose answers hold a secret or a one-time value.
fn bodies_loggable(op: &Operation) -> bool {
    op.idempotency_key != IdempotencyKeySupport::Refused
}

/// The span of one call: `tokportal.call`, with the operation, whether it is
/// a dry run, and its idempotency key (not a secret).
pub(crate) fn call_span(op: &'static Operation, request: &reqwest::Request) -> Option<Span> {
    if !listening() {
        return None;
    }
    let span = tracing::info_span!(
        target: TARGET,
        "tokportal.call",
        otel.name = Empty,
        tokportal.operation = op.id,
        tokportal.dry_run = Empty,
        tokportal.idempotency_key = Empty,
    );
    if !span.is_disabled() {
        let headers = request.headers();
        span.record("otel.name", display(format_args!("tokportal {}", op.id)));
        span.record("tokportal.dry_run", crate::headers::is_dry_run(headers));
        if let Some(key) = headers
            .get(crate::headers::names::IDEMPOTENCY_KEY)
            .and_then(|v| v.to_str().ok())
        {
            span.record("tokportal.idempotency_key", key);
        }
    }
    Some(span)
}

/// The span of attempt number `attempt` (from 1), a child of `call`, named
/// `{METHOD} {path template}` for OpenTelemetry (`otel.name`), never the
/// filled path.
pub(crate) fn attempt_span(
    call: Option<&Span>,
    op: &'static Operation,
    request: &reqwest::Request,
    attempt: u32,
) -> Option<Span> {
    let call = call?;
    let span = tracing::info_span!(
        target: TARGET,
        parent: call,
        "tokportal.attempt",
        otel.name = Empty,
        otel.kind = "client",
        http.request.method = op.method.as_str(),
        url.template = op.path,
        url.full = Empty,
        server.address = Empty,
        server.port = Empty,
        http.request.resend_count = Empty,
        http.response.status_code = Empty,
        http.response.body.size = Empty,
        error.type = Empty,
        tokportal.operation = op.id,
        tokportal.attempt = i64::from(attempt),
        tokportal.request_id = Empty,
    );
    if span.is_disabled() {
        return None;
    }
    span.record("otel.name", display(format_args!("{} {}", op.method.as_str(), op.path)));
    let url = request.url();
    let shown = without_credentials(url);
    span.record("url.full", shown.as_str());
    if let Some(host) = url.host_str() {
        span.record("server.address", host);
    }
    if let Some(port) = url.port_or_known_default() {
        span.record("server.port", i64::from(port));
    }
    if attempt > 1 {
        span.record("http.request.resend_count", i64::from(attempt - 1));
    }
    if tracing::enabled!(target: HTTP_TARGET, tracing::Level::DEBUG) {
        tracing::debug!(
            target: HTTP_TARGET,
            parent: &span,
            direction = "request",
            "{} {}\n{}",
            request.method(),
            shown,
            HeaderLines(request.headers())
        );
        if bodies_loggable(op)
            && tracing::enabled!(target: HTTP_TARGET, tracing::Level::TRACE)
            && let Some(bytes) = request.body().and_then(reqwest::Body::as_bytes)
        {
            body_event(&span, "request", bytes);
        }
    }
    Some(span)
}

/// `url` as spans and logs show it: without a user or password.
fn without_credentials(url: &url::Url) -> std::borrow::Cow<'_, url::Url> {
    if url.username().is_empty() && url.password().is_none() {
        return std::borrow::Cow::Borrowed(url);
    }
    let mut bare = url.clone();
    let _ = bare.set_username("");
    let _ = bare.set_password(None);
    std::borrow::Cow::Owned(bare)
}

/// The head of an answer, at DEBUG, an event of its attempt's `span`.
pub(crate) fn answer_head(span: &Span, status: http::StatusCode, headers: &http::HeaderMap) {
    if span.is_disabled() {
        return;
    }
    tracing::debug!(
        target: HTTP_TARGET,
        parent: span,
        direction = "response",
        "{} {}\n{}",
        status.as_u16(),
        status.canonical_reason().unwrap_or_default(),
        HeaderLines(headers)
    );
}

/// An answer's body, at TRACE, an event of its attempt's `span`, cut at
/// [`BODY_SHOWN`] (never a secret-bearing operation's).
pub(crate) fn answer_body(span: &Span, op: &Operation, bytes: &[u8]) {
    if !span.is_disabled() && bodies_loggable(op) && tracing::enabled!(target: HTTP_TARGET, tracing::Level::TRACE) {
        body_event(span, "response", bytes);
    }
}

fn body_event(span: &Span, direction: &'static str, bytes: &[u8]) {
    let shown = &bytes[..bytes.len().min(BODY_SHOWN)];
    let text = String::from_utf8_lossy(shown);
    if shown.len() < bytes.len() {
        tracing::trace!(target: HTTP_TARGET, parent: span, direction, size = bytes.len(), "{text}… ({} of {} bytes shown)", shown.len(), bytes.len());
    } else {
        tracing::trace!(target: HTTP_TARGET, parent: span, direction, size = bytes.len(), "{text}");
    }
}

/// What an attempt came to, on its span: the status, the request id, the
/// body's size, and `error.type` when it failed.
pub(crate) fn attempt_ended(
    span: &Span,
    status: Option<u16>,
    request_id: Option<&str>,
    body_size: Option<u64>,
    error_type: Option<&dyn std::fmt::Display>,
) {
    if span.is_disabled() {
        return;
    }
    if let Some(status) = status {
        span.record("http.response.status_code", i64::from(status));
    }
    if let Some(id) = request_id {
        span.record("tokportal.request_id", id);
    }
    if let Some(size) = body_size {
        span.record("http.response.body.size", i64::try_from(size).unwrap_or(i64::MAX));
    }
    if let Some(error) = error_type {
        span.record("error.type", display(error));
    }
}

/// The wait before attempt `next`, as an event of `call` (the call's span): how long
/// and why (`Retry-After`, the rate-limit reset, or the backoff schedule).
pub(crate) fn waiting(call: Option<&Span>, wait: Duration, reason: &'static str, next: u32, status: Option<u16>) {
    let Some(call) = call else {
        // No subscriber: nothing to tell.
        return;
    };
    tracing::info!(
        target: TARGET,
        parent: call,
        wait_ms = i64::try_from(wait.as_millis()).unwrap_or(i64::MAX),
        reason,
        next_attempt = i64::from(next),
        status = status.map(i64::from),
        "tokportal.retry"
    );
}
