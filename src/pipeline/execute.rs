//! Sends one call: the attempts, the waits between them, and the conversion of
//! an error answer into [`Error::Api`].
//!
//! Every call goes through [`execute`]: the generated client's (through its
//! `exec` hook) and the hand-written ones alike. Whether to try again and how
//! long to wait is [`retry::decide`](super::retry::decide)'s call; this loop
//! only carries it out. It is written here rather than with backon's
//! `Retryable` because each attempt needs a freshly built request (a
//! re-opened upload file), and the decision depends on the HTTP answer,
//! `Retry-After` and the overall deadline together.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::time::Instant;

use super::Settings;
use super::decode;
use super::retry::{self, Outcome};
use crate::error::Error;
use crate::operations::Operation;

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

/// Sends `request`, retrying as the settings' policy allows, within `deadline`
/// (no attempt starts, no wait ends and no attempt runs past it).
///
/// Returns the last response whatever its status; an error answer carries its
/// decoded [`ApiError`](crate::ApiError) in the response extensions.
pub(crate) async fn execute(
    http: &reqwest::Client,
    settings: &Settings,
    operation: &str,
    mut request: reqwest::Request,
    mut replay: Replay<'_>,
    deadline: Duration,
) -> reqwest::Result<reqwest::Response> {
    let policy = &settings.retry;
    let deadline = Instant::now() + deadline;
    let mut waits = policy.backoff();
    let mut attempt: u32 = 0;
    loop {
        attempt += 1;
        let safe = retry::replay_safe(
            request.method(),
            request.headers().contains_key(crate::headers::IDEMPOTENCY_KEY),
            request.headers().contains_key(crate::headers::DRY_RUN),
        );
        if policy.enabled() {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let limit = request.timeout().copied().map_or(remaining, |t| t.min(remaining));
            *request.timeout_mut() = Some(limit);
        }
        let method = request.method().clone();
        let outcome = http.execute(request).await;
        let (kind, server_wait, status, request_id) = match &outcome {
            Ok(response) => {
                settings.note_api_version(response.headers());
                let status = response.status().as_u16();
                (
                    Outcome::Status(status),
                    retry::server_wait(status, response.headers(), chrono::Utc::now().timestamp()),
                    Some(status),
                    crate::meta::request_id(response.headers()),
                )
            }
            Err(e) if e.is_connect() => (Outcome::NotConnected, None, None, None),
            Err(e) if e.is_timeout() || e.is_request() || e.is_body() => (Outcome::Failed, None, None, None),
            Err(_) => (Outcome::Other, None, None, None),
        };
        let remaining = deadline.saturating_duration_since(Instant::now());
        let wait = retry::decide(kind, safe, waits.next(), server_wait, policy, remaining);
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

async fn finish(outcome: reqwest::Result<reqwest::Response>) -> reqwest::Result<reqwest::Response> {
    match outcome {
        Ok(response) if response.status().is_success() => Ok(response),
        Ok(response) => Ok(decode::attach_error(response).await),
        Err(e) => Err(e),
    }
}

/// Sends a prepared request of a hand-written call and turns an error answer
/// into [`Error::Api`].
pub(crate) async fn send(
    http: &reqwest::Client,
    settings: &Settings,
    op: &'static Operation,
    request: reqwest::Request,
    replay: Replay<'_>,
) -> Result<reqwest::Response, Error> {
    // An upload's own timeout (30 min by default) outlasts the ordinary
    // deadline: its deadline is never shorter than one attempt may take.
    let policy_deadline = settings.retry.overall_deadline();
    let deadline = match request.timeout() {
        Some(t) if op.is_multipart() => (*t).max(policy_deadline),
        _ => policy_deadline,
    };
    let response = execute(http, settings, op.id, request, replay, deadline)
        .await
        .map_err(Error::from_reqwest)?;
    if response.status().is_success() {
        return Ok(response);
    }
    Err(decode::api_error(response).await)
}
