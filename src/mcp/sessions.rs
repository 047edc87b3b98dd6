//! Bounded MCP sessions, for `--http --sessions` (rmcp's legacy session
//! mode; `--stateless`, the default, keeps none).
//!
//! rmcp's `LocalSessionManager` keeps every session it creates until the
//! client deletes it, with no cap; this module stands in front of it as an
//! axum middleware and a sweeper:
//!
//! - a cap on live sessions (default 1000) and on sessions per key (default
//!   32), counted when an `initialize` arrives, before rmcp creates anything;
//!   past a cap the `initialize` is refused with `503` and `Retry-After` (the
//!   time until the least recently used session in the way expires). Refusing
//!   rather than evicting is deliberate: eviction would let any caller,
//!   with any made-up key, end another caller's live session;
//! - an idle expiry (default 10 minutes): the sweeper closes a session no
//!   request has used for that long, and rmcp's own `keep_alive` is set to
//!   the same time as a second net;
//! - a backlog of new sessions, like a TCP SYN backlog: a session counts as
//!   half-open from its `initialize` until its client's next request (an
//!   MCP client sends `notifications/initialized` at once); at most 64 are
//!   half-open, and one is closed after 10 s without that request. A flood
//!   of bare `initialize`s then holds 64 sessions, not 1000;
//! - a session answers only the key that opened it: another key gets the
//!   same `404` as an unknown session, so a session id is worth nothing
//!   without its key.
//!
//! Hand-rolled because rmcp 3's session manager has no cap, and its
//! `create_session` is not told who is asking (so it cannot count per key).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use rmcp::transport::streamable_http_server::session::SessionManager;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;

use super::caller::KeyId;

/// The header that carries a session's id (MCP streamable HTTP).
pub const SESSION_HEADER: &str = "mcp-session-id";

/// How many sessions the server keeps, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    /// Live sessions in all (`--max-sessions`).
    pub max: usize,
    /// Live sessions one key may hold (`--max-sessions-per-key`).
    pub per_key: usize,
    /// A session unused this long is closed (`--session-idle`).
    pub idle: Duration,
    /// Half-open sessions (answered `initialize`, no request since) at most.
    pub half_open: usize,
    /// A half-open session is closed after this long (or `idle`, if shorter).
    pub half_open_idle: Duration,
}

impl Default for SessionLimits {
    fn default() -> Self {
        Self {
            max: 1000,
            per_key: 32,
            idle: Duration::from_secs(600),
            half_open: 64,
            half_open_idle: Duration::from_secs(10),
        }
    }
}

struct Live {
    owner: KeyId,
    last_used: Instant,
    /// A request came after the `initialize`.
    established: bool,
}

#[derive(Default)]
struct Book {
    live: HashMap<String, Live>,
    /// Sessions per key, counting `initialize`s still being answered.
    per_key: HashMap<KeyId, usize>,
    /// `initialize`s admitted but not yet answered.
    pending: usize,
    /// Answered `initialize`s with no request since (pending ones included).
    half_open: usize,
}

impl Book {
    fn remove(&mut self, id: &str) -> bool {
        let Some(live) = self.live.remove(id) else { return false };
        super::metrics::session_closed();
        if !live.established {
            self.half_open = self.half_open.saturating_sub(1);
        }
        self.release(live.owner);
        true
    }

    fn release(&mut self, owner: KeyId) {
        if let Some(n) = self.per_key.get_mut(&owner) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_key.remove(&owner);
            }
        }
    }
}

/// Why an `initialize` was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The server holds `max` sessions.
    Full {
        /// When the least recently used session expires.
        retry_after: Duration,
    },
    /// `half_open` sessions await their client's first request.
    Backlog {
        /// When the oldest half-open session expires.
        retry_after: Duration,
    },
    /// This key holds `per_key` sessions.
    KeyFull {
        /// When this key's least recently used session expires.
        retry_after: Duration,
    },
}

/// The live sessions and their owners.
pub struct Sessions {
    limits: SessionLimits,
    book: Mutex<Book>,
}

impl Sessions {
    /// An empty book under `limits`.
    pub fn new(limits: SessionLimits) -> Self {
        Self {
            limits,
            book: Mutex::new(Book::default()),
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> SessionLimits {
        self.limits
    }

    fn book(&self) -> MutexGuard<'_, Book> {
        // A panic while the lock was held leaves counts that are still whole
        // numbers; go on with them rather than refuse every caller.
        self.book.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Live sessions (answered `initialize`s not yet closed or expired).
    pub fn len(&self) -> usize {
        self.book().live.len()
    }

    /// Whether no session is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Room for one more session of `owner`, held until the ticket is
    /// confirmed with the session's id or dropped.
    pub fn admit(self: &Arc<Self>, owner: KeyId, now: Instant) -> Result<Ticket, Refusal> {
        let mut book = self.book();
        let retry_after = |book: &Book, only: Option<KeyId>, half_open: bool| {
            let left = book
                .live
                .values()
                .filter(|l| only.is_none_or(|o| l.owner == o) && (!half_open || !l.established))
                .map(|l| {
                    self.lifetime(l)
                        .saturating_sub(now.saturating_duration_since(l.last_used))
                })
                .min()
                .unwrap_or(Duration::ZERO);
            left.max(Duration::from_secs(1))
        };
        if book.per_key.get(&owner).copied().unwrap_or(0) >= self.limits.per_key {
            return Err(Refusal::KeyFull {
                retry_after: retry_after(&book, Some(owner), false),
            });
        }
        if book.live.len() + book.pending >= self.limits.max {
            return Err(Refusal::Full {
                retry_after: retry_after(&book, None, false),
            });
        }
        if book.half_open >= self.limits.half_open {
            return Err(Refusal::Backlog {
                retry_after: retry_after(&book, None, true),
            });
        }
        book.pending += 1;
        book.half_open += 1;
        *book.per_key.entry(owner).or_default() += 1;
        Ok(Ticket {
            sessions: Arc::clone(self),
            owner,
            open: true,
        })
    }

    /// How long `live` may stay unused.
    fn lifetime(&self, live: &Live) -> Duration {
        if live.established {
            self.limits.idle
        } else {
            self.limits.half_open_idle.min(self.limits.idle)
        }
    }

    /// Marks session `id` used by `owner` now (and established). `false`:
    /// no such live session, or it belongs to another key.
    pub fn touch(&self, id: &str, owner: KeyId, now: Instant) -> bool {
        let mut book = self.book();
        let established = match book.live.get_mut(id) {
            Some(live) if live.owner == owner => {
                live.last_used = now;
                std::mem::replace(&mut live.established, true)
            }
            _ => return false,
        };
        if !established {
            book.half_open = book.half_open.saturating_sub(1);
        }
        true
    }

    /// Forgets session `id` (closed by its client, or by rmcp).
    pub fn forget(&self, id: &str) {
        self.book().remove(id);
    }

    /// Forgets and returns the sessions unused for their lifetime at `now`
    /// (`idle`; `half_open_idle` for a half-open one).
    pub fn expire(&self, now: Instant) -> Vec<String> {
        let mut book = self.book();
        let expired: Vec<String> = book
            .live
            .iter()
            .filter(|(_, l)| now.saturating_duration_since(l.last_used) >= self.lifetime(l))
            .map(|(id, _)| id.clone())
            .collect();
        for id in &expired {
            book.remove(id);
        }
        expired
    }
}

/// An admitted `initialize`: room held for its session until
/// [`confirm`](Ticket::confirm)ed or dropped (an `initialize` that failed).
pub struct Ticket {
    sessions: Arc<Sessions>,
    owner: KeyId,
    open: bool,
}

impl Ticket {
    /// The `initialize` was answered with session `id`.
    pub fn confirm(mut self, id: String, now: Instant) {
        let mut book = self.sessions.book();
        book.pending = book.pending.saturating_sub(1);
        // rmcp's ids are random UUIDs; a repeat would replace, not add.
        book.remove(&id);
        let live = Live {
            owner: self.owner,
            last_used: now,
            established: false,
        };
        book.live.insert(id, live);
        super::metrics::session_opened();
        self.open = false;
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if self.open {
            let mut book = self.sessions.book();
            book.pending = book.pending.saturating_sub(1);
            book.half_open = book.half_open.saturating_sub(1);
            book.release(self.owner);
        }
    }
}

/// The middleware: admits `initialize`s, binds each session to its key,
/// keeps the book of live sessions. Runs after the key guard.
pub async fn gate(State(sessions): State<Arc<Sessions>>, request: Request, next: Next) -> Response {
    let Some(owner) = KeyId::from_headers(request.headers()) else {
        // The key guard in front refuses these; nothing to count.
        return next.run(request).await;
    };
    let now = Instant::now();
    let session = request
        .headers()
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Some(id) = session {
        if !sessions.touch(&id, owner, now) {
            return super::refusal::refuse(
                StatusCode::NOT_FOUND,
                "SESSION_NOT_FOUND",
                "no such session for this key (expired, closed, or opened with another key): initialize again",
            );
        }
        let closing = request.method() == Method::DELETE;
        let response = next.run(request).await;
        if (closing && response.status().is_success()) || response.status() == StatusCode::NOT_FOUND {
            sessions.forget(&id);
        }
        return response;
    }
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    // A POST without a session is an `initialize` (rmcp refuses anything else).
    let ticket = match sessions.admit(owner, now) {
        Ok(ticket) => ticket,
        Err(refusal) => {
            // Read what the client is still sending (an initialize is small;
            // at most 64 KiB is read) so that closing the connection after
            // the answer does not reset it under the client's feet.
            let _ = axum::body::to_bytes(request.into_body(), 64 * 1024).await;
            let (code, message, retry_after) = match refusal {
                Refusal::Full { retry_after } => (
                    "TOO_MANY_SESSIONS",
                    format!(
                        "this server holds its limit of {} sessions; retry later, or use a server started with --stateless",
                        sessions.limits.max
                    ),
                    retry_after,
                ),
                Refusal::Backlog { retry_after } => (
                    "TOO_MANY_NEW_SESSIONS",
                    format!(
                        "{} new sessions await their client's first request; retry shortly",
                        sessions.limits.half_open
                    ),
                    retry_after,
                ),
                Refusal::KeyFull { retry_after } => (
                    "TOO_MANY_SESSIONS_FOR_KEY",
                    format!(
                        "this key holds its limit of {} sessions; close one (DELETE with its Mcp-Session-Id) or retry later",
                        sessions.limits.per_key
                    ),
                    retry_after,
                ),
            };
            tracing::warn!(caller = %owner, code, "initialize refused");
            let mut response = super::refusal::refuse(StatusCode::SERVICE_UNAVAILABLE, code, &message);
            let headers = response.headers_mut();
            headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after.as_secs().max(1)));
            // The body was not read: tell the client not to reuse this
            // connection (hyper closes it), rather than let its pool race.
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
            return response;
        }
    };
    let response = next.run(request).await;
    if let Some(id) = response.headers().get(SESSION_HEADER).and_then(|v| v.to_str().ok()) {
        ticket.confirm(id.to_owned(), Instant::now());
    }
    response
}

/// Closes expired sessions every `period` until `stop` is cancelled.
pub async fn sweep(
    sessions: Arc<Sessions>,
    manager: Arc<LocalSessionManager>,
    stop: tokio_util::sync::CancellationToken,
) {
    let period = (sessions.limits.idle / 4).clamp(Duration::from_millis(250), Duration::from_secs(30));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        for id in sessions.expire(Instant::now()) {
            let id: rmcp::transport::streamable_http_server::session::SessionId = id.into();
            if let Err(e) = manager.close_session(&id).await {
                tracing::debug!(error = %e, "closing an expired session");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max: usize, per_key: usize) -> Arc<Sessions> {
        Arc::new(Sessions::new(SessionLimits {
            max,
            per_key,
            idle: Duration::from_secs(60),
            half_open: max,
            half_open_idle: Duration::from_secs(60),
        }))
    }

    #[test]
    fn the_cap_counts_pending_and_live_sessions_and_frees_on_drop() {
        let s = limits(2, 10);
        let now = Instant::now();
        let (a, b) = (KeyId::of("sk_a"), KeyId::of("sk_b"));
        let first = s.admit(a, now).unwrap();
        let _second = s.admit(b, now).unwrap();
        assert!(matches!(s.admit(a, now), Err(Refusal::Full { .. })));
        drop(first); // that initialize failed: its room is free again
        let third = s.admit(a, now).unwrap();
        third.confirm("s1".into(), now);
        assert_eq!(s.len(), 1);
        assert!(matches!(s.admit(b, now), Err(Refusal::Full { .. })));
    }

    #[test]
    fn the_per_key_cap_leaves_other_keys_alone() {
        let s = limits(100, 2);
        let now = Instant::now();
        let (a, b) = (KeyId::of("sk_a"), KeyId::of("sk_b"));
        s.admit(a, now).unwrap().confirm("a1".into(), now);
        s.admit(a, now).unwrap().confirm("a2".into(), now);
        assert!(matches!(s.admit(a, now), Err(Refusal::KeyFull { .. })));
        s.admit(b, now).unwrap().confirm("b1".into(), now);
        s.forget("a1");
        s.admit(a, now).unwrap().confirm("a3".into(), now);
        assert_eq!(s.len(), 3);
    }

    #[test]
    fn a_session_answers_only_its_own_key() {
        let s = limits(10, 10);
        let now = Instant::now();
        s.admit(KeyId::of("sk_a"), now).unwrap().confirm("s".into(), now);
        assert!(s.touch("s", KeyId::of("sk_a"), now));
        assert!(!s.touch("s", KeyId::of("sk_b"), now));
        assert!(!s.touch("unknown", KeyId::of("sk_a"), now));
    }

    #[test]
    fn idle_sessions_expire_and_retry_after_says_when() {
        let s = limits(2, 10);
        let t0 = Instant::now();
        let a = KeyId::of("sk_a");
        s.admit(a, t0).unwrap().confirm("old".into(), t0);
        s.admit(a, t0 + Duration::from_secs(30))
            .unwrap()
            .confirm("new".into(), t0 + Duration::from_secs(30));
        match s.admit(a, t0 + Duration::from_secs(40)) {
            Err(Refusal::Full { retry_after }) => assert_eq!(retry_after, Duration::from_secs(20)),
            other => panic!("{:?}", other.map(|_| ())),
        }
        // Used since: it lives on.
        assert!(s.touch("old", a, t0 + Duration::from_secs(50)));
        assert!(s.expire(t0 + Duration::from_secs(85)).is_empty());
        let mut gone = s.expire(t0 + Duration::from_secs(111));
        gone.sort();
        assert_eq!(gone, ["new", "old"]);
        assert!(s.is_empty());
        assert!(s.admit(a, t0 + Duration::from_secs(111)).is_ok());
    }

    #[test]
    fn half_open_sessions_have_a_small_backlog_and_a_short_life() {
        let s = Arc::new(Sessions::new(SessionLimits {
            max: 100,
            per_key: 100,
            idle: Duration::from_secs(600),
            half_open: 2,
            half_open_idle: Duration::from_secs(10),
        }));
        let t0 = Instant::now();
        let k = |i: usize| KeyId::of(&format!("sk_{i}"));
        s.admit(k(1), t0).unwrap().confirm("one".into(), t0);
        s.admit(k(2), t0).unwrap().confirm("two".into(), t0);
        match s.admit(k(3), t0 + Duration::from_secs(4)) {
            Err(Refusal::Backlog { retry_after }) => assert_eq!(retry_after, Duration::from_secs(6)),
            other => panic!("{:?}", other.map(|_| ())),
        }
        // Its client's next request establishes "one": room in the backlog.
        assert!(s.touch("one", k(1), t0 + Duration::from_secs(5)));
        s.admit(k(3), t0 + Duration::from_secs(5))
            .unwrap()
            .confirm("three".into(), t0 + Duration::from_secs(5));
        // Half-open ones go after 10 s; the established one stays.
        let mut gone = s.expire(t0 + Duration::from_secs(15));
        gone.sort();
        assert_eq!(gone, ["three", "two"]);
        assert_eq!(s.len(), 1);
        assert!(s.admit(k(4), t0 + Duration::from_secs(15)).is_ok());
    }
}
