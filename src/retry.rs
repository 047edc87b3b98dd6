//! The retry policy: which failures are retried, how often and how long to wait.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

/// When and how a failed call is retried.
///
/// On by default: 3 attempts in all, exponential backoff from 500 ms doubling
/// to at most 30 s, plus a random jitter of up to the delay itself (backon's), `Retry-After` (and `X-RateLimit-Reset` on
/// a 429) honoured, everything within a 2-minute deadline.
///
/// What is retried: a connection that could not be made (nothing was sent),
/// and, once the request may have reached the server, 408/429/5xx answers and
/// transport failures only for `GET`, `PUT` and `DELETE`, or for `POST` and
/// `PATCH` that carry an `Idempotency-Key`. With retries on, the client gives
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
}
