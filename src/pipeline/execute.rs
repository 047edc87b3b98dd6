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

/// Replays a built request when its body allows it (a JSON body does, a
/// stream does not).
///
/// A request without a body (every read) is kept as its parts: reqwest's
/// `try_clone` also copies the request's extensions, through a map it builds
/// twice, which is most of the allocations a call pays for being retryable.
/// Nothing of ours lives in a request's extensions; the timeout, which
/// reqwest keeps there, is set again.
pub(crate) fn replay_clone(request: &reqwest::Request) -> Replay<'static> {
    if request.body().is_some() {
        let kept = request.try_clone();
        return Box::new(move || Box::pin(std::future::ready(kept.as_ref().and_then(reqwest::Request::try_clone))));
    }
    let (method, url, headers) = (
        request.method().clone(),
        request.url().clone(),
        request.headers().clone(),
    );
    let (version, timeout) = (request.version(), request.timeout().copied());
    Box::new(move || {
        let mut again = reqwest::Request::new(method.clone(), url.clone());
        *again.headers_mut() = headers.clone();
        *again.version_mut() = version;
        *again.timeout_mut() = timeout;
        Box::pin(std::future::ready(Some(again)))
    })
}

/// How much of a success answer the attempt reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Body {
    /// Read it whole within the attempt, up to this many bytes: a body that
    /// breaks off is a failed attempt (retried when that is safe), a larger
    /// one is [`Error::ResponseTooLarge`].
    Buffer(u64),
    /// Hand it over unread, for the caller to stream.
    Stream,
}

/// What one attempt came to.
enum Attempt {
    Answer(reqwest::Response),
    Failure {
        error: reqwest::Error,
        status: Option<u16>,
        request_id: Option<String>,
    },
}

/// No further attempt can be built (a body read once, or retries off).
pub(crate) fn no_replay() -> Replay<'static> {
    Box::new(|| Box::pin(std::future::ready(None)))
}

/// How a built request is sent again: a copy kept when the policy allows a
/// further attempt, nothing otherwise (the copy costs allocations per call).
pub(crate) fn replay_for(settings: &Settings, request: &reqwest::Request) -> Replay<'static> {
    if settings.retry.enabled() {
        replay_clone(request)
    } else {
        no_replay()
    }
}

/// Sends `request`, retrying as the settings' policy allows, within `deadline`
/// (no attempt starts, no wait ends and no attempt runs past it).
///
/// Returns the last answer whatever its status (an error answer carries its
/// decoded [`ApiError`](crate::ApiError) in the response extensions), or the
/// failure of the last attempt as an [`Error`].
pub(crate) async fn execute(
    http: &reqwest::Client,
    settings: &Settings,
    operation: &str,
    mut request: reqwest::Request,
    mut replay: Replay<'_>,
    deadline: Duration,
    body: Body,
) -> Result<reqwest::Response, Error> {
    let policy = &settings.retry;
    let deadline = Instant::now() + deadline;
    let mut waits = policy.backoff();
    let mut attempt: u32 = 0;
    loop {
        attempt += 1;
        let safe = retry::replay_safe(
            request.method(),
            request.headers().contains_key(crate::headers::names::IDEMPOTENCY_KEY),
            request.headers().contains_key(crate::headers::names::DRY_RUN),
        );
        if policy.enabled() {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let limit = request.timeout().copied().map_or(remaining, |t| t.min(remaining));
            *request.timeout_mut() = Some(limit);
        }
        let method = request.method().clone();
        let outcome = match http.execute(request).await {
            Ok(response) => {
                settings.note_api_version(response.headers());
                read_answer(response, body).await?
            }
            Err(error) => Attempt::Failure {
                error,
                status: None,
                request_id: None,
            },
        };
        let (kind, server_wait, status, request_id) = match &outcome {
            Attempt::Answer(response) => {
                let status = response.status().as_u16();
                let server_wait = if response.status().is_success() {
                    None
                } else {
                    retry::server_wait(status, response.headers(), chrono::Utc::now().timestamp())
                };
                // Only read for the debug event below: no allocation per call otherwise.
                let request_id = if tracing::enabled!(tracing::Level::DEBUG) {
                    crate::meta::request_id(response.headers())
                } else {
                    None
                };
                (Outcome::Status(status), server_wait, Some(status), request_id)
            }
            Attempt::Failure {
                error,
                status,
                request_id,
            } => {
                let kind = if error.is_connect() {
                    Outcome::NotConnected
                } else if error.is_timeout() || error.is_request() || error.is_body() || error.is_decode() {
                    Outcome::Failed
                } else {
                    Outcome::Other
                };
                (kind, None, *status, request_id.clone())
            }
        };
        let remaining = deadline.saturating_duration_since(Instant::now());
        let wait = retry::decide(kind, safe, waits.next(), server_wait, policy, remaining);
        tracing::debug!(
            operation,
            %method,
            attempt,
            status,
            request_id = request_id.as_deref(),
            error = match &outcome {
                Attempt::Failure { error, .. } => Some(error.to_string()),
                Attempt::Answer(_) => None,
            },
            wait_ms = wait.map(|w| w.as_millis() as u64),
            "tokportal attempt"
        );
        let next = match wait {
            Some(_) => replay().await,
            None => None,
        };
        let (Some(wait), Some(next)) = (wait, next) else {
            // No further attempt (or the body cannot be produced again): the last outcome stands.
            return finish(outcome, safe);
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

/// Reads what the attempt must read: a success body whole (bounded) when
/// asked to, an error body up to what an [`ApiError`](crate::ApiError) keeps.
async fn read_answer(response: reqwest::Response, body: Body) -> Result<Attempt, Error> {
    let status = response.status().as_u16();
    if !response.status().is_success() {
        return Ok(Attempt::Answer(decode::attach_error(response).await));
    }
    let Body::Buffer(limit) = body else {
        return Ok(Attempt::Answer(response));
    };
    match decode::buffer(response, limit).await {
        Ok(response) => Ok(Attempt::Answer(response)),
        Err(decode::BufferError::TooLarge { request_id }) => Err(Error::ResponseTooLarge {
            status,
            limit,
            request_id,
        }),
        Err(decode::BufferError::Broken { error, request_id }) => Ok(Attempt::Failure {
            error,
            status: Some(status),
            request_id,
        }),
    }
}

fn finish(outcome: Attempt, safe: bool) -> Result<reqwest::Response, Error> {
    match outcome {
        Attempt::Answer(response) => Ok(response),
        Attempt::Failure { error, .. } if error.is_connect() => Err(Error::Connect(error)),
        Attempt::Failure { error, .. } if error.is_timeout() => Err(Error::Timeout(error)),
        Attempt::Failure {
            error,
            status,
            request_id,
        } if !safe => Err(Error::AnswerLost {
            status,
            request_id,
            message: crate::error::one_line(&error),
        }),
        Attempt::Failure { error, .. } => Err(Error::Transport(error)),
    }
}

/// Sends a prepared request of a hand-written call and turns an error answer
/// into [`Error::Api`]. `body` says whether the success body is read within
/// the attempt (bounded) or handed over unread.
pub(crate) async fn send(
    http: &reqwest::Client,
    settings: &Settings,
    op: &'static Operation,
    request: reqwest::Request,
    replay: Replay<'_>,
    body: Body,
) -> Result<reqwest::Response, Error> {
    // An upload's own timeout (30 min by default) outlasts the ordinary
    // deadline: its deadline is never shorter than one attempt may take.
    let policy_deadline = settings.retry.overall_deadline();
    let deadline = match request.timeout() {
        Some(t) if op.is_multipart() => (*t).max(policy_deadline),
        _ => policy_deadline,
    };
    let response = execute(http, settings, op.id, request, replay, deadline, body).await?;
    if response.status().is_success() {
        return Ok(response);
    }
    Err(decode::api_error(response).await)
}
