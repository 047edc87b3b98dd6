//! Sends one call: attempts, waits and the decoding of error answers.
//!
//! Every call goes through [`execute`], the generated client's (through its
//! `exec` hook) and the hand-written ones alike. The wait schedule comes from
//! backon ([`RetryPolicy::backoff`]); the loop itself is written here because
//! each attempt needs a freshly built request (a re-opened upload file), and
//! the decision to retry depends on the HTTP answer, `Retry-After` and the
//! overall deadline together.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use http::Method;
use tokio::time::Instant;

use crate::client::{ClientState, IDEMPOTENCY_HEADER};
use crate::error::{ApiError, DecodedApiError, is_retryable_status};
use crate::generated::Client;

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Builds the request of a further attempt, or `None` when there can be none
/// (a body that cannot be produced again).
pub(crate) type Replay<'a> = Box<dyn FnMut() -> BoxFuture<'a, Option<reqwest::Request>> + Send + 'a>;

/// Replays a built request with `try_clone` when its body allows it (a JSON
/// body does, a stream does not).
pub(crate) fn replay_clone(request: &reqwest::Request) -> Replay<'static> {
    let kept = request.try_clone();
    Box::new(move || Box::pin(std::future::ready(kept.as_ref().and_then(reqwest::Request::try_clone))))
}

/// Whether a request may be sent again once it may have reached the server.
fn replay_safe(request: &reqwest::Request) -> bool {
    matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS
    ) || request.headers().contains_key(IDEMPOTENCY_HEADER)
}

/// Sends `request`, retrying as the client's policy allows, within `deadline`
/// (no attempt starts, no wait ends and no attempt runs past it).
///
/// Returns the last response whatever its status; an error answer carries its
/// decoded [`ApiError`] in the response extensions ([`DecodedApiError`]).
pub(crate) async fn execute(
    client: &Client,
    operation: &str,
    mut request: reqwest::Request,
    mut replay: Replay<'_>,
    deadline: Duration,
) -> reqwest::Result<reqwest::Response> {
    let state: &ClientState = &client.inner;
    let policy = &state.0.retry;
    let deadline = Instant::now() + deadline;
    let mut waits = policy.backoff();
    let mut attempt: u32 = 0;
    loop {
        attempt += 1;
        let safe = replay_safe(&request);
        if policy.enabled() {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let limit = request.timeout().copied().map_or(remaining, |t| t.min(remaining));
            *request.timeout_mut() = Some(limit);
        }
        let method = request.method().clone();
        let outcome = client.client.execute(request).await;
        let (retryable, server_wait, status, request_id) = match &outcome {
            Ok(response) => {
                state.note_api_version(response.headers());
                let status = response.status().as_u16();
                let retryable = !response.status().is_success() && is_retryable_status(status) && safe;
                (
                    retryable,
                    server_wait(status, response.headers()),
                    Some(status),
                    crate::meta::request_id(response.headers()),
                )
            }
            // A connection that was never made carried nothing: always safe to try again.
            Err(e) => (
                e.is_connect() || (safe && (e.is_timeout() || e.is_request() || e.is_body())),
                None,
                None,
                None,
            ),
        };
        let wait = next_wait(retryable, waits.next(), server_wait, policy, deadline);
        tracing::debug!(
            operation,
            %method,
            attempt,
            status,
            request_id = request_id.as_deref(),
            error = outcome.as_ref().err().map(|e| e.to_string()),
            wait_ms = wait.map(|w| w.as_millis() as u64),
            "tokportal attempt"
        );
        let Some(wait) = wait else {
            return finish(outcome).await;
        };
        let Some(next) = replay().await else {
            // The body cannot be produced again: the last outcome stands.
            return finish(outcome).await;
        };
        tracing::info!(
            operation,
            attempt,
            wait_ms = wait.as_millis() as u64,
            status,
            "tokportal: retrying"
        );
        tokio::time::sleep(wait).await;
        request = next;
    }
}

/// The wait before the next attempt, or `None` when there is to be none.
fn next_wait(
    retryable: bool,
    backoff: Option<Duration>,
    server_wait: Option<Duration>,
    policy: &crate::retry::RetryPolicy,
    deadline: Instant,
) -> Option<Duration> {
    let backoff = backoff.filter(|_| retryable)?;
    if server_wait.is_some_and(|s| s > policy.longest_wait()) {
        // The server asks for a longer pause than the caller allows: give up now.
        return None;
    }
    let wait = server_wait.map_or(backoff, |s| s.max(backoff));
    (Instant::now() + wait < deadline).then_some(wait)
}

/// The wait a server asks for: `Retry-After`, or on a 429 without it, until `X-RateLimit-Reset`.
fn server_wait(status: u16, headers: &http::HeaderMap) -> Option<Duration> {
    if let Some(seconds) = crate::meta::retry_after_seconds(headers) {
        return Some(Duration::from_secs(seconds));
    }
    if status == 429 {
        let reset = crate::meta::RateLimit::from_headers(headers)?.reset?;
        let now = chrono::Utc::now().timestamp();
        let delta = u64::try_from(i64::try_from(reset).ok()? - now).unwrap_or(0);
        return Some(Duration::from_secs(delta));
    }
    None
}

async fn finish(outcome: reqwest::Result<reqwest::Response>) -> reqwest::Result<reqwest::Response> {
    match outcome {
        Ok(response) if response.status().is_success() => Ok(response),
        Ok(response) => Ok(attach_error(response).await),
        Err(e) => Err(e),
    }
}

/// Reads an error answer whole and returns it with its [`ApiError`] attached.
async fn attach_error(response: reqwest::Response) -> reqwest::Response {
    let status = response.status();
    let version = response.version();
    let headers = response.headers().clone();
    // A body that breaks off is kept as far as it came.
    let body = response.bytes().await.unwrap_or_default();
    let error = ApiError::from_parts(status, &headers, &body);
    let mut rebuilt = rebuild(status, version, headers, body);
    rebuilt.extensions_mut().insert(DecodedApiError(Arc::new(error)));
    rebuilt
}

/// Passes a JSON-object body through; replaces any other body with a marker,
/// so that a decode error cannot carry a secret-bearing answer.
pub(crate) async fn withhold_unless_json_object(response: reqwest::Response) -> reqwest::Response {
    let status = response.status();
    let version = response.version();
    let headers = response.headers().clone();
    let body = match response.bytes().await {
        Ok(bytes) if serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&bytes).is_ok() => bytes,
        _ => bytes::Bytes::from_static(b"[withheld: not the JSON object the spec describes; it may hold secrets]"),
    };
    rebuild(status, version, headers, body)
}

/// A response with the given parts and a body already read.
fn rebuild(
    status: http::StatusCode,
    version: http::Version,
    headers: http::HeaderMap,
    body: bytes::Bytes,
) -> reqwest::Response {
    let mut rebuilt = http::Response::new(body);
    *rebuilt.status_mut() = status;
    *rebuilt.version_mut() = version;
    *rebuilt.headers_mut() = headers;
    reqwest::Response::from(rebuilt)
}
