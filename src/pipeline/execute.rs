//! Sends one call: the attempts, the waits between them, and the conversion of
//! an error answer into [`Error::Api`].
//!
//! Every call goes through [`send`]: the typed ones (from `client::typed`)
//! and the hand-written ones alike. Whether to try again and how
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
use super::decode::{self, Answer};
use super::retry::{self, Outcome, WaitReason};
use super::trace;
use crate::error::Error;
use crate::operations::Operation;

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How the request of a further attempt is produced.
pub(crate) enum Replay<'a> {
    /// There can be none (a body that is read once, or retries off).
    Never,
    /// A request without a body (every read), kept as its parts: reqwest's
    /// `try_clone` also copies the request's extensions, through a map it
    /// builds twice, which is most of the allocations a call pays for being
    /// retryable. Nothing of ours lives in a request's extensions; a timeout,
    /// which reqwest keeps there, is set again.
    Parts {
        method: http::Method,
        url: url::Url,
        headers: http::HeaderMap,
        version: http::Version,
        timeout: Option<Duration>,
    },
    /// A request whose body is in memory (JSON), copied.
    Copy(reqwest::Request),
    /// Built again by the caller (an upload re-opens its file), or `None`
    /// when it cannot be.
    Build(Box<dyn FnMut() -> BoxFuture<'a, Option<reqwest::Request>> + Send + 'a>),
}

impl Replay<'_> {
    /// A copy of `request` for further attempts, when its body allows one (a
    /// JSON body does, a stream does not).
    pub(crate) fn copy(request: &reqwest::Request) -> Replay<'static> {
        if request.body().is_some() {
            return request.try_clone().map_or(Replay::Never, Replay::Copy);
        }
        Replay::Parts {
            method: request.method().clone(),
            url: request.url().clone(),
            headers: request.headers().clone(),
            version: request.version(),
            timeout: request.timeout().copied(),
        }
    }

    /// The request of the next attempt, or `None` when there can be none.
    async fn next(&mut self) -> Option<reqwest::Request> {
        match self {
            Replay::Never => None,
            Replay::Parts {
                method,
                url,
                headers,
                version,
                timeout,
            } => {
                let mut again = reqwest::Request::new(method.clone(), url.clone());
                *again.headers_mut() = headers.clone();
                *again.version_mut() = *version;
                if timeout.is_some() {
                    *again.timeout_mut() = *timeout;
                }
                Some(again)
            }
            Replay::Copy(request) => request.try_clone(),
            Replay::Build(build) => build().await,
        }
    }
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
    /// A success answer.
    Answer(Answer),
    /// An error answer, read as far as an [`ApiError`](crate::ApiError)
    /// keeps it, with the wait its server asked for.
    Refused {
        status: u16,
        server_wait: Option<(Duration, WaitReason)>,
        error: Box<crate::error::ApiError>,
    },
    /// The attempt's time limit ran out before the whole answer arrived.
    TimedOut { after: Duration },
    /// No answer, or one that broke off.
    Failure {
        error: reqwest::Error,
        status: Option<u16>,
        request_id: Option<String>,
    },
}

impl Attempt {
    /// What the attempt saw: the server's wait, the status and the request
    /// id (a success's id only when `want_id`: a span or the debug event
    /// shows it; no allocation per call otherwise).
    #[inline]
    fn seen(&self, want_id: bool) -> (Option<(Duration, WaitReason)>, Option<u16>, Option<String>) {
        match self {
            Attempt::Answer(answer) => {
                let status = answer.status().as_u16();
                let request_id = if want_id {
                    crate::meta::request_id(answer.headers())
                } else {
                    None
                };
                (None, Some(status), request_id)
            }
            Attempt::Refused {
                status,
                server_wait,
                error,
            } => (*server_wait, Some(*status), error.request_id.clone()),
            Attempt::TimedOut { .. } => (None, None, None),
            Attempt::Failure { status, request_id, .. } => (None, *status, request_id.clone()),
        }
    }

    /// The size of the body the attempt read, when it read one.
    fn body_size(&self) -> Option<u64> {
        match self {
            Attempt::Answer(Answer::Read(read)) => Some(read.body.len() as u64),
            Attempt::Refused { error, .. } => error.raw_body.as_ref().map(|b| b.len() as u64),
            _ => None,
        }
    }
}

/// The one classification of an attempt's outcome, read by both the retry
/// decision ([`Class::retry_outcome`]) and the error a last attempt ends
/// the call with ([`finish`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// A success answer.
    Answer(u16),
    /// An error answer.
    Refused(u16),
    /// Our time limit for the attempt ran out.
    TimedOut,
    /// The connection could not be made: nothing reached the server.
    NotConnected,
    /// The transport's own timer ran out.
    TransportTimeout,
    /// The request may have reached the server and the answer broke off or
    /// never came (a reset, a body cut short, one that does not decode).
    Broken,
    /// Any other transport failure (a redirect refused, a request that
    /// could not be built): another attempt would not change it.
    Other,
}

impl Class {
    fn of(attempt: &Attempt) -> Class {
        match attempt {
            Attempt::Answer(answer) => Class::Answer(answer.status().as_u16()),
            Attempt::Refused { status, .. } => Class::Refused(*status),
            Attempt::TimedOut { .. } => Class::TimedOut,
            Attempt::Failure { error, .. } if error.is_connect() => Class::NotConnected,
            Attempt::Failure { error, .. } if error.is_timeout() => Class::TransportTimeout,
            Attempt::Failure { error, .. } if error.is_request() || error.is_body() || error.is_decode() => {
                Class::Broken
            }
            Attempt::Failure { .. } => Class::Other,
        }
    }

    /// OpenTelemetry's `error.type` of a failed attempt: its status, or what
    /// broke (`None` for a success).
    fn error_type(self, safe: bool) -> Option<ErrorType> {
        Some(match self {
            Class::Answer(_) => return None,
            Class::Refused(status) => ErrorType::Status(status),
            Class::TimedOut | Class::TransportTimeout => ErrorType::Named("timeout"),
            Class::NotConnected => ErrorType::Named("connect_error"),
            Class::Broken if safe => ErrorType::Named("connection_reset"),
            Class::Broken | Class::Other if !safe => ErrorType::Named("answer_lost"),
            Class::Broken | Class::Other => ErrorType::Named("transport_error"),
        })
    }

    /// The class as the retry decision weighs it.
    fn retry_outcome(self) -> Outcome {
        match self {
            Class::Answer(status) | Class::Refused(status) => Outcome::Status(status),
            Class::NotConnected => Outcome::NotConnected,
            Class::TimedOut | Class::TransportTimeout | Class::Broken => Outcome::Failed,
            Class::Other => Outcome::Other,
        }
    }
}

/// An attempt's `error.type`, written without allocating.
enum ErrorType {
    Status(u16),
    Named(&'static str),
}

impl std::fmt::Display for ErrorType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ErrorType::Status(status) => write!(f, "{status}"),
            ErrorType::Named(name) => f.write_str(name),
        }
    }
}

/// How a built request is sent again: a copy kept when the policy allows a
/// further attempt, nothing otherwise (the copy costs allocations per call).
pub(crate) fn replay_for(settings: &Settings, request: &reqwest::Request) -> Replay<'static> {
    if settings.retry.enabled() {
        Replay::copy(request)
    } else {
        Replay::Never
    }
}

/// Sends a prepared request of `op`, retrying as the settings' policy
/// allows, each attempt within its time limit (the call's own, or the
/// client's), all of them within the policy's overall deadline (no attempt
/// starts, no wait ends and no attempt runs past it). `body` says whether the
/// success body is read within the attempt (bounded) or handed over unread.
///
/// Returns the last answer when it is a success; an error answer as
/// [`Error::Api`], or the failure of the last attempt as an [`Error`].
///
/// The loop is its phases, as smithy's orchestrator names them: the call is
/// [`Plan`]ned once; then each attempt is prepared ([`Plan::prepare`]), run
/// ([`run`]), classified ([`classify`]), and the next step decided
/// ([`Plan::decide`]) and waited for ([`wait`]), or the last outcome
/// stands ([`finish`]).
///
/// Traced by `trace`: a call span, and an attempt span per try created as
/// its child, both `None` until a subscriber is set. Neither wraps a future
/// (a wrapper would move the attempt loop once more per call): the call
/// span lives as long as the call, and each event names its span.
pub(crate) async fn send(
    http: &reqwest::Client,
    settings: &Settings,
    op: &'static Operation,
    mut request: reqwest::Request,
    mut replay: Replay<'_>,
    body: Body,
) -> Result<Answer, Error> {
    let call = trace::call_span(op, &request);
    let mut plan = Plan::new(settings, op, &request);
    // The key every attempt carries: handed back with the answer or the
    // error, so a caller can always send the call again under it.
    let key = request.headers().get(crate::headers::names::IDEMPOTENCY_KEY).cloned();
    let mut attempt: u32 = 0;
    loop {
        attempt += 1;
        let prepared = plan.prepare(op, &request, call.as_ref(), attempt);
        let outcome = match run(http, settings, op, request, body, &prepared).await {
            Ok(outcome) => outcome,
            Err(e) => return Err(e.with_idempotency_key(key.as_ref())),
        };
        let seen = classify(&outcome, prepared.span.as_ref(), prepared.safe);
        let next = match plan.decide(op, &outcome, &seen, prepared, attempt) {
            Some(wait) => self::wait(wait, &mut replay, call.as_ref(), &seen, attempt).await,
            None => None,
        };
        match next {
            Some(next) => request = next,
            // No further attempt (or the body cannot be produced again): the last outcome stands.
            None => {
                return match finish(outcome, seen.class, seen.safe) {
                    Ok(answer) => Ok(answer.with_idempotency_key(key)),
                    Err(e) => Err(e.with_idempotency_key(key.as_ref())),
                };
            }
        }
    }
}

/// What holds for every attempt of a call: its time limits and the
/// backoff schedule.
struct Plan<'s, W> {
    policy: &'s retry::RetryPolicy,
    /// One attempt's time limit.
    timeout: Duration,
    /// No attempt starts, no wait ends and no attempt runs past it.
    deadline: Instant,
    /// The backoff schedule's waits still to come.
    waits: W,
}

/// One attempt, ready to run.
struct Prepared {
    /// Whether the request may be sent again once it may have reached the
    /// server.
    safe: bool,
    /// This attempt's time limit (the call's, cut at the deadline).
    limit: Duration,
    method: http::Method,
    span: Option<tracing::Span>,
}

/// What an attempt came to, as the rest of the call reads it.
struct Seen {
    class: Class,
    safe: bool,
    server_hint: Option<(Duration, WaitReason)>,
    status: Option<u16>,
    request_id: Option<String>,
}

impl<'s> Plan<'s, ()> {
    /// The call's limits: an upload's own timeout (30 min by default)
    /// outlasts the ordinary deadline, so its deadline is never shorter
    /// than one attempt may take.
    #[inline]
    fn new(
        settings: &'s Settings,
        op: &'static Operation,
        request: &reqwest::Request,
    ) -> Plan<'s, impl Iterator<Item = Duration> + Send + use<'s>> {
        let timeout = request.timeout().copied().unwrap_or(if op.is_multipart() {
            settings.upload_timeout
        } else {
            settings.timeout
        });
        let policy = &settings.retry;
        let deadline = Instant::now()
            + if op.is_multipart() {
                timeout.max(policy.overall_deadline())
            } else {
                policy.overall_deadline()
            };
        Plan {
            policy,
            timeout,
            deadline,
            waits: policy.backoff(),
        }
    }
}

impl<W: Iterator<Item = Duration>> Plan<'_, W> {
    /// Prepares attempt number `attempt`: whether it is safe to repeat,
    /// its time limit and its span.
    #[inline]
    fn prepare(
        &self,
        op: &'static Operation,
        request: &reqwest::Request,
        call: Option<&tracing::Span>,
        attempt: u32,
    ) -> Prepared {
        let safe = retry::replay_safe(
            request.method(),
            request.headers().contains_key(crate::headers::names::IDEMPOTENCY_KEY),
            crate::headers::is_dry_run(request.headers()),
        );
        let limit = if self.policy.enabled() {
            self.timeout
                .min(self.deadline.saturating_duration_since(Instant::now()))
        } else {
            self.timeout
        };
        Prepared {
            safe,
            limit,
            method: request.method().clone(),
            span: trace::attempt_span(call, op, request, attempt),
        }
    }

    /// The wait before the next attempt, or `None`: [`retry::decide`]'s
    /// call, with the time left; logged at DEBUG. Ends the attempt's span.
    #[inline]
    fn decide(
        &mut self,
        op: &'static Operation,
        outcome: &Attempt,
        seen: &Seen,
        prepared: Prepared,
        attempt: u32,
    ) -> Option<Duration> {
        drop(prepared.span);
        let remaining = self.deadline.saturating_duration_since(Instant::now());
        let wait = retry::decide(
            seen.class.retry_outcome(),
            seen.safe,
            self.waits.next(),
            seen.server_hint.map(|(wait, _)| wait),
            self.policy,
            remaining,
        );
        tracing::debug!(
            operation = op.id,
            method = %prepared.method,
            attempt,
            status = seen.status,
            request_id = seen.request_id.as_deref(),
            error = match outcome {
                Attempt::Failure { error, .. } => Some(error.to_string()),
                Attempt::TimedOut { after } => Some(format!("timed out after {after:?}")),
                Attempt::Answer(_) | Attempt::Refused { .. } => None,
            },
            wait_ms = wait.map(|w| w.as_millis() as u64),
            "tokportal attempt"
        );
        wait
    }
}

/// Runs one attempt within its limit. The span is handed down rather than
/// entered: a wrapper around the exchange would move its future once more
/// per attempt.
#[inline]
async fn run(
    http: &reqwest::Client,
    settings: &Settings,
    op: &'static Operation,
    mut request: reqwest::Request,
    body: Body,
    prepared: &Prepared,
) -> Result<Attempt, Error> {
    let span = prepared.span.as_ref();
    Ok(match body {
        // The body is read after the call returns: reqwest's own timer
        // goes on running while the caller streams it.
        Body::Stream => {
            *request.timeout_mut() = Some(prepared.limit);
            send_once(http, settings, op, request, body, span).await?
        }
        // Read within the attempt: one timer, ours, covers the whole
        // exchange. reqwest's would cost a boxed timer, a map in the
        // request's extensions and a wrapper polled on every body frame.
        Body::Buffer(_) => {
            if request.timeout().is_some() {
                *request.timeout_mut() = None;
            }
            match tokio::time::timeout(prepared.limit, send_once(http, settings, op, request, body, span)).await {
                Ok(outcome) => outcome?,
                Err(_) => Attempt::TimedOut { after: prepared.limit },
            }
        }
    })
}

/// Classifies an attempt once, for the decision and for the error a last
/// attempt ends with; closes its span with what it saw.
#[inline]
fn classify(outcome: &Attempt, span: Option<&tracing::Span>, safe: bool) -> Seen {
    let class = Class::of(outcome);
    let want_id = span.is_some() || tracing::enabled!(tracing::Level::DEBUG);
    let (server_hint, status, request_id) = outcome.seen(want_id);
    if let Some(span) = span {
        trace::attempt_ended(
            span,
            status,
            request_id.as_deref(),
            outcome.body_size(),
            class.error_type(safe).as_ref().map(|e| e as &dyn std::fmt::Display),
        );
    }
    Seen {
        class,
        safe,
        server_hint,
        status,
        request_id,
    }
}

/// Waits `wait` for the next attempt: its request produced again, the wait
/// traced and slept. `None` when the request cannot be produced again.
#[inline]
async fn wait(
    wait: Duration,
    replay: &mut Replay<'_>,
    call: Option<&tracing::Span>,
    seen: &Seen,
    attempt: u32,
) -> Option<reqwest::Request> {
    let next = replay.next().await?;
    trace::waiting(
        call,
        wait,
        WaitReason::of(seen.server_hint, wait).as_str(),
        attempt + 1,
        seen.status,
    );
    tokio::time::sleep(wait).await;
    Some(next)
}

/// One attempt: sends `request` and reads what the attempt must read.
async fn send_once(
    http: &reqwest::Client,
    settings: &Settings,
    op: &'static Operation,
    request: reqwest::Request,
    body: Body,
    span: Option<&tracing::Span>,
) -> Result<Attempt, Error> {
    match http.execute(request).await {
        Ok(response) => {
            settings.note_api_version(response.headers());
            if let Some(span) = span {
                trace::answer_head(span, response.status(), response.headers());
            }
            read_answer(op, response, body, span).await
        }
        Err(error) => Ok(Attempt::Failure {
            error,
            status: None,
            request_id: None,
        }),
    }
}

/// Reads what the attempt must read: a success body whole (bounded) when
/// asked to, an error body up to what an [`ApiError`](crate::ApiError) keeps.
async fn read_answer(
    op: &'static Operation,
    response: reqwest::Response,
    body: Body,
    span: Option<&tracing::Span>,
) -> Result<Attempt, Error> {
    let status = response.status().as_u16();
    if !response.status().is_success() {
        let server_wait = retry::server_hint(status, response.headers(), chrono::Utc::now().timestamp());
        let error = Box::new(decode::read_error(response).await);
        if let (Some(span), Some(raw)) = (span, &error.raw_body) {
            trace::answer_body(span, op, raw.as_bytes());
        }
        return Ok(Attempt::Refused {
            status,
            server_wait,
            error,
        });
    }
    let Body::Buffer(limit) = body else {
        return Ok(Attempt::Answer(Answer::Unread(response)));
    };
    match decode::buffer(response, limit).await {
        Ok(read) => {
            if let Some(span) = span {
                trace::answer_body(span, op, &read.body);
            }
            Ok(Attempt::Answer(Answer::Read(read)))
        }
        Err(decode::BufferError::Broken { error, request_id }) => Ok(Attempt::Failure {
            error,
            status: Some(status),
            request_id,
        }),
        Err(too_large) => Err(too_large.into_error(status, limit)),
    }
}

/// The call's result from its last attempt and that attempt's class: a
/// failure after the request may have reached the server is
/// [`Error::AnswerLost`] unless the request was safe to send again.
fn finish(outcome: Attempt, class: Class, safe: bool) -> Result<Answer, Error> {
    match (outcome, class) {
        (Attempt::Answer(answer), _) => Ok(answer),
        (Attempt::Refused { error, .. }, _) => Err(Error::Api(error)),
        (Attempt::TimedOut { after }, _) => Err(Error::Timeout {
            after: Some(after),
            source: None,
            idempotency_key: None,
        }),
        (Attempt::Failure { error, .. }, Class::NotConnected) => Err(Error::Connect {
            source: error,
            idempotency_key: None,
        }),
        (Attempt::Failure { error, .. }, Class::TransportTimeout) => Err(Error::Timeout {
            after: None,
            source: Some(error),
            idempotency_key: None,
        }),
        (
            Attempt::Failure {
                error,
                status,
                request_id,
            },
            _,
        ) if !safe => Err(Error::AnswerLost {
            status,
            request_id,
            message: crate::error::one_line(&error),
            idempotency_key: None,
        }),
        (Attempt::Failure { error, .. }, _) => Err(Error::Transport {
            source: error,
            idempotency_key: None,
        }),
    }
}
