//! The retry policy and the retry decision.
//!
//! [`RetryPolicy`] is the caller's configuration. [`decide`] is the whole
//! decision, a pure function of the attempt's outcome, the server's hint, the
//! backoff schedule and the time left: the attempt loop in `execute.rs` only
//! carries it out. Its unit tests need no network and no clock.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use http::Method;

/// When and how a failed call is retried.
///
/// On by default: 3 attempts in all, exponential backoff from 500 ms doubling
/// to at most 30 s, plus a random jitter of up to the delay itself (backon's), `Retry-After` (and `X-RateLimit-Reset` on
/// a 429) honoured, everything within a 2-minute deadline.
///
/// What is retried: a connection that could not be made (nothing was sent),
/// and, once the request may have reached the server, 408/429/5xx answers and
/// transport failures only for the methods that are idempotent by definition
/// (`GET`, `HEAD`, `PUT`, `DELETE`, `OPTIONS`), for `POST` and `PATCH` that
/// carry an `Idempotency-Key`, and for dry runs (they change nothing). With retries on, the client gives
/// every mutating call that accepts one a generated key (UUID v4) reused by all
/// its attempts, so a retried create never creates twice. The six operations
/// that refuse a key are thus never retried after the request may have
/// reached the server.
///
/// ```
/// use std::time::Duration;
/// let policy = tokportal::RetryPolicy::default()
///     .max_attempts(5)
///     .initial_backoff(Duration::from_millis(200))
///     .max_backoff(Duration::from_secs(10))
///     .deadline(Duration::from_secs(60));
/// assert_eq!(policy.attempts(), 5);
/// assert!(!tokportal::RetryPolicy::disabled().enabled());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    max_attempts: u32,
    initial_backoff: Duration,
    max_backoff: Duration,
    deadline: Duration,
    jitter: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            deadline: Duration::from_secs(120),
            jitter: true,
        }
    }
}

impl RetryPolicy {
    /// One attempt, no retries.
    pub fn disabled() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// Attempts in all, the first included (at least 1).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// Wait before the first retry (doubled on each further one).
    pub fn initial_backoff(mut self, wait: Duration) -> Self {
        self.initial_backoff = wait;
        self
    }

    /// The longest wait between two attempts, `Retry-After` included: a server
    /// asking for a longer wait ends the retries instead.
    pub fn max_backoff(mut self, wait: Duration) -> Self {
        self.max_backoff = wait;
        self
    }

    /// Time from the first attempt after which no new attempt starts; a running
    /// attempt is cut at the deadline too. A multipart upload's deadline is
    /// never shorter than its upload timeout.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// Randomizes each wait (on by default), so that many clients do not retry in step.
    pub fn jitter(mut self, jitter: bool) -> Self {
        self.jitter = jitter;
        self
    }

    /// Whether more than one attempt may be made.
    pub fn enabled(&self) -> bool {
        self.max_attempts > 1
    }

    /// Attempts in all.
    pub fn attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The overall deadline.
    pub fn overall_deadline(&self) -> Duration {
        self.deadline
    }

    /// The longest wait between attempts.
    pub fn longest_wait(&self) -> Duration {
        self.max_backoff
    }

    /// The backoff schedule (backon's exponential backoff with jitter).
    pub(crate) fn backoff(&self) -> impl Iterator<Item = Duration> + Send + use<> {
        let mut builder = ExponentialBuilder::default()
            .with_min_delay(self.initial_backoff)
            .with_max_delay(self.max_backoff)
            .with_factor(2.0)
            .with_max_times(self.max_attempts.saturating_sub(1) as usize);
        if self.jitter {
            builder = builder.with_jitter();
        }
        builder.build()
    }
}

/// What one attempt came to, as far as the retry decision is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The server answered with this status.
    Status(u16),
    /// The connection could not be made: nothing reached the server.
    NotConnected,
    /// The request may have reached the server, and then failed (a timeout,
    /// a reset, a body cut off).
    Failed,
    /// Any other failure (a redirect refused, a request that could not be
    /// built): trying again would not change it.
    Other,
}

/// Whether a request may be sent again once it may have reached the server:
/// a method that is idempotent by definition, a request with an
/// `Idempotency-Key`, or a dry run (it changes nothing).
pub(crate) fn replay_safe(method: &Method, has_idempotency_key: bool, dry_run: bool) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS
    ) || has_idempotency_key
        || dry_run
}

/// The wait before the next attempt, or `None` when there is to be none.
///
/// `backoff` is the schedule's next wait (`None` once the attempts are used
/// up), `server_wait` what the server asked for, `remaining` the time left
/// before the overall deadline.
pub(crate) fn decide(
    outcome: Outcome,
    replay_safe: bool,
    backoff: Option<Duration>,
    server_wait: Option<Duration>,
    policy: &RetryPolicy,
    remaining: Duration,
) -> Option<Duration> {
    let retryable = match outcome {
        Outcome::Status(status) => crate::error::is_retryable_status(status) && replay_safe,
        Outcome::NotConnected => true,
        Outcome::Failed => replay_safe,
        Outcome::Other => false,
    };
    let backoff = backoff.filter(|_| retryable)?;
    if server_wait.is_some_and(|s| s > policy.longest_wait()) {
        // The server asks for a longer pause than the caller allows: give up now.
        return None;
    }
    let wait = server_wait.map_or(backoff, |s| s.max(backoff));
    (wait < remaining).then_some(wait)
}

/// Why the attempt loop waits before the next attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WaitReason {
    /// The server's `Retry-After`.
    RetryAfter,
    /// A 429's `X-RateLimit-Reset`.
    RateLimitReset,
    /// The backoff schedule.
    Backoff,
}

impl WaitReason {
    /// As logs and spans say it.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            WaitReason::RetryAfter => "Retry-After",
            WaitReason::RateLimitReset => "rate-limit reset",
            WaitReason::Backoff => "backoff",
        }
    }

    /// What set a wait that [`decide`] chose: the server's hint when it was
    /// at least the backoff, else the backoff.
    pub(crate) fn of(server: Option<(Duration, WaitReason)>, wait: Duration) -> WaitReason {
        match server {
            Some((asked, reason)) if asked >= wait => reason,
            _ => WaitReason::Backoff,
        }
    }
}

/// The wait a server asks for, and which header asked: see [`server_wait`].
pub(crate) fn server_hint(status: u16, headers: &http::HeaderMap, now: i64) -> Option<(Duration, WaitReason)> {
    let reason = if crate::meta::retry_after_seconds(headers).is_some() {
        WaitReason::RetryAfter
    } else {
        WaitReason::RateLimitReset
    };
    server_wait(status, headers, now).map(|wait| (wait, reason))
}

/// The wait a server asks for: `Retry-After`, or on a 429 without it, until
/// `X-RateLimit-Reset` (a Unix time, compared with `now`).
pub(crate) fn server_wait(status: u16, headers: &http::HeaderMap, now: i64) -> Option<Duration> {
    if let Some(seconds) = crate::meta::retry_after_seconds(headers) {
        return Some(Duration::from_secs(seconds));
    }
    if status == 429 {
        let reset = crate::meta::RateLimit::from_headers(headers)?.reset?;
        let delta = u64::try_from(i64::try_from(reset).ok()? - now).unwrap_or(0);
        return Some(Duration::from_secs(delta));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_is_bounded_and_capped() {
        let p = RetryPolicy::default()
            .max_attempts(6)
            .initial_backoff(Duration::from_millis(100))
            .max_backoff(Duration::from_millis(300))
            .jitter(false);
        let waits: Vec<_> = p.backoff().collect();
        assert_eq!(waits.len(), 5);
        let near = |a: Duration, b: u64| a.abs_diff(Duration::from_millis(b)) < Duration::from_millis(1);
        assert!(near(waits[0], 100) && near(waits[1], 200), "{waits:?}");
        assert!(waits.iter().all(|w| *w <= Duration::from_millis(301)), "{waits:?}");
    }

    #[test]
    fn disabled_has_no_retries() {
        assert_eq!(RetryPolicy::disabled().backoff().count(), 0);
        assert_eq!(RetryPolicy::default().max_attempts(0).attempts(), 1);
    }

    fn ms(n: u64) -> Option<Duration> {
        Some(Duration::from_millis(n))
    }

    #[test]
    fn the_decision_one_case_a_line() {
        let p = RetryPolicy::default().max_backoff(Duration::from_secs(30));
        let long = Duration::from_secs(60);
        use Outcome::*;
        assert_eq!(decide(Status(503), true, ms(500), None, &p, long), ms(500));
        assert_eq!(
            decide(Status(503), false, ms(500), None, &p, long),
            None,
            "POST without a key"
        );
        assert_eq!(
            decide(Status(400), true, ms(500), None, &p, long),
            None,
            "not retryable"
        );
        assert_eq!(decide(Status(200), true, ms(500), None, &p, long), None, "a success");
        assert_eq!(
            decide(Status(429), true, ms(500), ms(2000), &p, long),
            ms(2000),
            "Retry-After wins"
        );
        assert_eq!(
            decide(Status(429), true, ms(500), ms(100), &p, long),
            ms(500),
            "backoff wins"
        );
        assert_eq!(
            decide(Status(429), true, ms(500), ms(31_000), &p, long),
            None,
            "too long a wait"
        );
        assert_eq!(
            decide(NotConnected, false, ms(500), None, &p, long),
            ms(500),
            "nothing was sent"
        );
        assert_eq!(
            decide(Failed, false, ms(500), None, &p, long),
            None,
            "may have been applied"
        );
        assert_eq!(decide(Failed, true, ms(500), None, &p, long), ms(500));
        assert_eq!(
            decide(Other, true, ms(500), None, &p, long),
            None,
            "would fail the same way"
        );
        assert_eq!(
            decide(Status(503), true, None, None, &p, long),
            None,
            "attempts used up"
        );
        assert_eq!(
            decide(Status(503), true, ms(500), None, &p, ms(400).unwrap()),
            None,
            "past the deadline"
        );
    }

    /// The boundaries users configure: a `Retry-After` of exactly the
    /// longest wait is honoured, one second more ends the retries; a wait
    /// that ends exactly at the deadline starts no attempt.
    #[test]
    fn the_decision_at_its_boundaries() {
        let p = RetryPolicy::default().max_backoff(Duration::from_secs(30));
        let long = Duration::from_secs(60);
        let s = |n| Some(Duration::from_secs(n));
        use Outcome::*;
        assert_eq!(
            decide(Status(429), true, ms(500), s(30), &p, long),
            s(30),
            "exactly the longest wait"
        );
        assert_eq!(
            decide(Status(429), true, ms(500), s(31), &p, long),
            None,
            "one second over it"
        );
        assert_eq!(
            decide(Status(503), true, ms(500), None, &p, Duration::from_millis(500)),
            None,
            "the wait would end at the deadline"
        );
        assert_eq!(
            decide(Status(503), true, ms(500), None, &p, Duration::from_millis(501)),
            ms(500),
            "the wait ends just before it"
        );
    }

    #[test]
    fn attempts_are_what_was_configured() {
        assert_eq!(RetryPolicy::default().attempts(), 3);
        assert_eq!(RetryPolicy::default().max_attempts(5).attempts(), 5);
        assert_eq!(RetryPolicy::disabled().attempts(), 1);
        assert!(RetryPolicy::default().enabled());
        assert!(!RetryPolicy::default().max_attempts(1).enabled());
    }

    #[test]
    fn replay_safety_by_method_and_key() {
        assert!(replay_safe(&Method::GET, false, false));
        assert!(replay_safe(&Method::PUT, false, false));
        assert!(replay_safe(&Method::DELETE, false, false));
        assert!(!replay_safe(&Method::POST, false, false));
        assert!(!replay_safe(&Method::PATCH, false, false));
        assert!(replay_safe(&Method::POST, true, false));
        assert!(replay_safe(&Method::POST, false, true), "a dry run changes nothing");
    }

    #[test]
    fn a_wait_says_what_set_it() {
        let s = Duration::from_secs;
        let mut h = http::HeaderMap::new();
        h.insert("retry-after", "3".parse().unwrap());
        let hint = server_hint(503, &h, 0);
        assert_eq!(hint, Some((s(3), WaitReason::RetryAfter)));
        assert_eq!(WaitReason::of(hint, s(3)), WaitReason::RetryAfter);
        assert_eq!(
            WaitReason::of(hint, s(5)),
            WaitReason::Backoff,
            "the backoff was longer"
        );
        let mut h = http::HeaderMap::new();
        h.insert("x-ratelimit-reset", "10".parse().unwrap());
        assert_eq!(server_hint(429, &h, 0), Some((s(10), WaitReason::RateLimitReset)));
        assert_eq!(WaitReason::of(None, s(1)).as_str(), "backoff");
    }

    #[test]
    fn server_wait_from_retry_after_or_reset() {
        let mut h = http::HeaderMap::new();
        assert_eq!(server_wait(429, &h, 1_000), None);
        h.insert("x-ratelimit-reset", "1010".parse().unwrap());
        assert_eq!(server_wait(429, &h, 1_000), Some(Duration::from_secs(10)));
        assert_eq!(server_wait(503, &h, 1_000), None, "the reset counts only on a 429");
        assert_eq!(server_wait(429, &h, 2_000), Some(Duration::ZERO), "a reset in the past");
        h.insert("retry-after", "3".parse().unwrap());
        assert_eq!(server_wait(503, &h, 1_000), Some(Duration::from_secs(3)));
    }
}
