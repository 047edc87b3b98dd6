//! The request journal: every API request the sandbox answered, newest
//! last, in a ring bounded by entry count ([`SandboxOptions::journal`]) and
//! by bytes ([`MAX_JOURNAL_BYTES`]), and the live feed the inspector page,
//! `tokportal logs tail` and `tokportal listen` follow (one broadcast
//! channel: requests, delivery attempts, webhook events, clears).
//!
//! What is kept is what a developer needs to see and nothing a secret
//! could leak through: the API key only as its fingerprint, bodies cut at
//! [`BODY_KEPT`], and the answers of the six secret-bearing operations
//! (revealed credentials, a webhook signing secret, upload URLs) replaced by
//! a note.
//!
//! [`SandboxOptions::journal`]: crate::sandbox::SandboxOptions::journal

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use http::HeaderMap;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::broadcast;

use crate::headers;
use crate::operations::{IdempotencyKeySupport, Operation};

/// Each body is kept up to this many bytes.
pub(in crate::sandbox) const BODY_KEPT: usize = 64 * 1024;
/// The journal's bodies and headers together stay under this many bytes;
/// the oldest entries go first (1000 entries of two full bodies each would
/// be 128 MiB otherwise).
pub(in crate::sandbox) const MAX_JOURNAL_BYTES: usize = 32 * 1024 * 1024;
/// Followers of the feed (`GET /_sandbox/events`) at once; the next is
/// answered 503.
pub(in crate::sandbox) const MAX_FOLLOWERS: usize = 32;
/// Events a slow follower may fall behind by before it is told it lagged.
const FEED_BACKLOG: usize = 1024;
/// Headers whose value is never kept.
const SECRET_HEADERS: [&str; 4] = ["x-api-key", "authorization", "cookie", "proxy-authorization"];

/// What the flow learns of a request on its way, for its journal entry and
/// log line.
#[derive(Default)]
pub(in crate::sandbox) struct Noted {
    /// The operation, once routed.
    pub(in crate::sandbox) operation: Option<&'static Operation>,
    /// The key's fingerprint (8 hex digits of its SHA-256).
    pub(in crate::sandbox) caller: Option<String>,
    /// `X-Sandbox-Warning`s: what the contract allows but is likely a mistake.
    pub(in crate::sandbox) warnings: Vec<String>,
    /// The fault injected, as asked (`503`, `reset`, `slow=2`).
    pub(in crate::sandbox) fault: Option<String>,
    /// The contract's complaints: `details.fields` of a 400 or a 404.
    pub(in crate::sandbox) violations: Vec<Value>,
    /// Answered from the idempotency store.
    pub(in crate::sandbox) replayed: bool,
    /// Answered by the live API (`live`, `--proxy`) or a recording
    /// (`recording`, `--replay`) rather than by the sandbox.
    pub(in crate::sandbox) source: Option<&'static str>,
}

/// A request or an answer as kept: its headers (secrets redacted) and its
/// body (cut, or withheld).
#[derive(Debug, Clone, Serialize)]
pub(in crate::sandbox) struct Message {
    pub(in crate::sandbox) headers: Vec<(String, String)>,
    /// The body as text (lossy UTF-8), up to [`BODY_KEPT`] bytes; `None`
    /// when empty or withheld.
    pub(in crate::sandbox) body: Option<String>,
    /// The body's whole size.
    pub(in crate::sandbox) body_bytes: u64,
    /// The body was longer than what is kept.
    pub(in crate::sandbox) truncated: bool,
    /// Why the body is not shown, when it is withheld.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(in crate::sandbox) withheld: Option<&'static str>,
}

impl Message {
    /// `headers` (secrets redacted) and the start of `body`, out of `total` bytes.
    pub(in crate::sandbox) fn new(headers: &HeaderMap, body: &[u8], total: u64) -> Self {
        let kept = &body[..body.len().min(BODY_KEPT)];
        Self {
            headers: redacted(headers),
            body: (!kept.is_empty()).then(|| String::from_utf8_lossy(kept).into_owned()),
            body_bytes: total,
            truncated: total > kept.len() as u64,
            withheld: None,
        }
    }

    fn withhold(mut self, why: &'static str) -> Self {
        self.body = None;
        self.truncated = false;
        self.withheld = Some(why);
        self
    }

    fn size(&self) -> usize {
        self.body.as_ref().map_or(0, String::len)
            + self.headers.iter().map(|(n, v)| n.len() + v.len() + 8).sum::<usize>()
    }
}

/// One request without its headers and bodies: what the live feed carries
/// and what filters read.
#[derive(Debug, Clone, Serialize)]
pub(in crate::sandbox) struct Summary {
    /// The journal's own number, rising from 1 (a request id may repeat:
    /// a client sends the same one on each retry).
    pub(in crate::sandbox) id: u64,
    pub(in crate::sandbox) time: String,
    pub(in crate::sandbox) operation: Option<&'static str>,
    pub(in crate::sandbox) method: String,
    /// Path and query, as sent.
    pub(in crate::sandbox) path: String,
    /// `None`: the connection was closed without an answer (a `reset` or
    /// `lost` fault, or the client went away).
    pub(in crate::sandbox) status: Option<u16>,
    pub(in crate::sandbox) duration_ms: f64,
    pub(in crate::sandbox) request_id: String,
    /// The key's fingerprint: the first 8 hex digits of its SHA-256.
    pub(in crate::sandbox) key: Option<String>,
    pub(in crate::sandbox) idempotency_key: Option<String>,
    pub(in crate::sandbox) replayed: bool,
    /// `live` (passed to the live API) or `recording` (a recorded answer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(in crate::sandbox) source: Option<&'static str>,
    pub(in crate::sandbox) dry_run: bool,
    pub(in crate::sandbox) fault: Option<String>,
    /// The first [`MAX_NAMED`] (the answer's body names them all).
    pub(in crate::sandbox) violations: Vec<Value>,
    /// The first [`MAX_NAMED`].
    pub(in crate::sandbox) warnings: Vec<String>,
}

/// Violations and warnings an entry names at most.
const MAX_NAMED: usize = 50;

/// One request as the journal keeps it.
#[derive(Debug, Clone, Serialize)]
pub(in crate::sandbox) struct Entry {
    #[serde(flatten)]
    pub(in crate::sandbox) summary: Summary,
    pub(in crate::sandbox) request: Message,
    pub(in crate::sandbox) response: Option<Message>,
    /// What it holds, as the byte bound counts it (set when recorded).
    #[serde(skip)]
    bytes: usize,
}

impl Entry {
    /// What a request came to: `response` is `None` when the connection was
    /// closed unanswered.
    pub(in crate::sandbox) fn new(
        arrival: Arrival,
        request_id: String,
        mut noted: Noted,
        response: Option<(u16, Message)>,
    ) -> Self {
        let header = |name: &str| {
            arrival
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let dry_run = header(headers::DRY_RUN).is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1");
        let secret_answer = noted
            .operation
            .is_some_and(|op| op.idempotency_key == IdempotencyKeySupport::Refused);
        let (status, response) = match response {
            Some((status, message)) if secret_answer && (200..300).contains(&status) => (
                Some(status),
                Some(message.withhold("this operation's answer carries a secret; the journal never keeps it")),
            ),
            Some((status, message)) => (Some(status), Some(message)),
            None => (None, None),
        };
        let (kept, total) = arrival.body.taken();
        let elapsed = arrival.clock.elapsed();
        noted.violations.truncate(MAX_NAMED);
        noted.warnings.truncate(MAX_NAMED);
        let summary = Summary {
            id: 0,
            time: arrival.at.to_rfc3339_opts(SecondsFormat::Millis, true),
            operation: noted.operation.map(|op| op.id),
            method: arrival.method.to_string(),
            path: arrival.target,
            status,
            duration_ms: (elapsed.as_secs_f64() * 1000.0 * 10.0).round() / 10.0,
            request_id,
            key: noted.caller,
            idempotency_key: header("idempotency-key").map(|k| k.chars().take(256).collect()),
            replayed: noted.replayed,
            source: noted.source,
            dry_run,
            fault: noted.fault,
            violations: noted.violations,
            warnings: noted.warnings,
        };
        Self {
            summary,
            request: Message::new(&arrival.headers, &kept, total),
            response,
            bytes: 0,
        }
    }

    /// Roughly what it holds, for the byte bound.
    fn size(&self) -> usize {
        let s = &self.summary;
        let named: usize = s.violations.iter().map(|v| v.to_string().len() + 64).sum::<usize>()
            + s.warnings.iter().map(|w| w.len() + 32).sum::<usize>();
        512 + s.path.len() + named + self.request.size() + self.response.as_ref().map_or(0, Message::size)
    }
}

/// The headers as kept: secrets redacted (the key by its fingerprint).
fn redacted(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(name, value)| {
            let shown = if SECRET_HEADERS.contains(&name.as_str()) {
                "[redacted]".to_owned()
            } else {
                String::from_utf8_lossy(value.as_bytes()).chars().take(1024).collect()
            };
            (name.as_str().to_owned(), shown)
        })
        .collect()
}

/// Which entries a reader wants (`GET /_sandbox/requests`, the feed).
#[derive(Debug, Default, Clone)]
pub(in crate::sandbox) struct Filter {
    pub(in crate::sandbox) operation: Option<String>,
    /// `404`, or a class: `4xx`; `closed` for the unanswered.
    pub(in crate::sandbox) status: Option<StatusFilter>,
    /// A key fingerprint (or its start).
    pub(in crate::sandbox) key: Option<String>,
    /// Entries after this journal id, or at or after this time.
    pub(in crate::sandbox) since: Option<Since>,
}

/// A status, or a class of them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(in crate::sandbox) enum StatusFilter {
    Exact(u16),
    Class(u16),
    Closed,
}

/// Where a reader starts.
#[derive(Debug, Clone, Copy)]
pub(in crate::sandbox) enum Since {
    Id(u64),
    Time(DateTime<Utc>),
}

impl StatusFilter {
    /// `404`, `4xx` (or `4XX`), or `closed`.
    pub(in crate::sandbox) fn parse(raw: &str) -> Result<Self, String> {
        let lower = raw.trim().to_ascii_lowercase();
        if lower == "closed" {
            return Ok(Self::Closed);
        }
        if let Some(class) = lower.strip_suffix("xx")
            && let Ok(digit @ 1..=5) = class.parse::<u16>()
        {
            return Ok(Self::Class(digit));
        }
        match lower.parse::<u16>() {
            Ok(status @ 100..=599) => Ok(Self::Exact(status)),
            _ => Err(format!("`{raw}` is not a status (404), a class (4xx) or `closed`")),
        }
    }

    pub(in crate::sandbox) fn matches(self, status: Option<u16>) -> bool {
        match (self, status) {
            (Self::Closed, None) => true,
            (Self::Exact(want), Some(s)) => s == want,
            (Self::Class(class), Some(s)) => s / 100 == class,
            _ => false,
        }
    }
}

impl Since {
    /// A journal id (`42`) or an RFC 3339 time.
    pub(in crate::sandbox) fn parse(raw: &str) -> Result<Self, String> {
        if let Ok(id) = raw.parse::<u64>() {
            return Ok(Self::Id(id));
        }
        DateTime::parse_from_rfc3339(raw)
            .map(|t| Self::Time(t.with_timezone(&Utc)))
            .map_err(|_| format!("`{raw}` is neither a journal id nor an RFC 3339 time"))
    }
}

impl Filter {
    pub(in crate::sandbox) fn matches(&self, entry: &Summary) -> bool {
        self.operation.as_deref().is_none_or(|op| entry.operation == Some(op))
            && self.status.is_none_or(|s| s.matches(entry.status))
            && self
                .key
                .as_deref()
                .is_none_or(|k| entry.key.as_deref().is_some_and(|e| e.starts_with(k)))
            && match self.since {
                None => true,
                Some(Since::Id(id)) => entry.id > id,
                Some(Since::Time(t)) => DateTime::parse_from_rfc3339(&entry.time).is_ok_and(|at| at >= t),
            }
    }
}

/// One item of the live feed.
#[derive(Debug, Clone)]
pub(in crate::sandbox) enum Event {
    /// A request was answered (or its connection closed). The summary only:
    /// the channel keeps its last events, and bodies there would escape the
    /// journal's byte bound.
    Request(Arc<Summary>),
    /// A webhook delivery attempt ended (or a delivery was made).
    Delivery(Arc<Value>),
    /// An operation produced a webhook event, for key `key`: what `listen`
    /// forwards, whether or not an endpoint is subscribed.
    Webhook {
        key: String,
        event_type: &'static str,
        payload: Bytes,
    },
    /// The journal was cleared, or the whole sandbox reset.
    Cleared,
}

struct Ring {
    entries: VecDeque<Arc<Entry>>,
    bytes: usize,
    next_id: u64,
}

/// The journal and its live feed.
pub(in crate::sandbox) struct Journal {
    capacity: usize,
    ring: Mutex<Ring>,
    feed: broadcast::Sender<Event>,
}

impl Journal {
    /// A journal of at most `capacity` entries (0: none kept, the feed still runs).
    pub(in crate::sandbox) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            ring: Mutex::new(Ring {
                entries: VecDeque::with_capacity(capacity.min(1024)),
                bytes: 0,
                next_id: 1,
            }),
            feed: broadcast::channel(FEED_BACKLOG).0,
        }
    }

    /// Keeps `entry` (numbered here), dropping the oldest past either
    /// bound, and tells the followers.
    pub(in crate::sandbox) fn record(&self, mut entry: Entry) {
        entry.bytes = entry.size();
        let summary = {
            let mut ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
            entry.summary.id = ring.next_id;
            ring.next_id += 1;
            let summary = Arc::new(entry.summary.clone());
            if self.capacity > 0 {
                ring.bytes += entry.bytes;
                ring.entries.push_back(Arc::new(entry));
                while ring.entries.len() > self.capacity || (ring.bytes > MAX_JOURNAL_BYTES && ring.entries.len() > 1) {
                    if let Some(old) = ring.entries.pop_front() {
                        ring.bytes -= old.bytes;
                    }
                }
            }
            summary
        };
        self.publish(Event::Request(summary));
    }

    /// Sends `event` to whoever follows (nobody is fine).
    pub(in crate::sandbox) fn publish(&self, event: Event) {
        let _ = self.feed.send(event);
    }

    /// A new follower of the feed, from now on.
    pub(in crate::sandbox) fn follow(&self) -> broadcast::Receiver<Event> {
        self.feed.subscribe()
    }

    /// The entries `filter` wants, newest first, at most `limit`.
    pub(in crate::sandbox) fn list(&self, filter: &Filter, limit: usize) -> Vec<Arc<Entry>> {
        let ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        ring.entries
            .iter()
            .rev()
            .filter(|e| filter.matches(&e.summary))
            .take(limit)
            .cloned()
            .collect()
    }

    /// Entry `id`, if still kept.
    pub(in crate::sandbox) fn get(&self, id: u64) -> Option<Arc<Entry>> {
        let ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        let first = ring.entries.front()?.summary.id;
        let at = usize::try_from(id.checked_sub(first)?).ok()?;
        ring.entries.get(at).filter(|e| e.summary.id == id).cloned()
    }

    /// Forgets every entry (the numbering goes on) and tells the followers.
    pub(in crate::sandbox) fn clear(&self) -> usize {
        let cleared = {
            let mut ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
            ring.bytes = 0;
            std::mem::take(&mut ring.entries).len()
        };
        self.publish(Event::Cleared);
        cleared
    }

    /// How many entries and bytes are kept, and the bounds.
    pub(in crate::sandbox) fn stats(&self) -> Value {
        let ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        serde_json::json!({
            "entries": ring.entries.len(),
            "bytes": ring.bytes,
            "capacity": self.capacity,
            "max_bytes": MAX_JOURNAL_BYTES,
            "recorded": ring.next_id - 1,
        })
    }
}

/// A request as it arrived: what its journal entry is made from, with its
/// body read through a [`Captured`].
pub(in crate::sandbox) struct Arrival {
    pub(in crate::sandbox) at: DateTime<Utc>,
    pub(in crate::sandbox) clock: std::time::Instant,
    pub(in crate::sandbox) method: http::Method,
    /// Path and query, as sent.
    pub(in crate::sandbox) target: String,
    pub(in crate::sandbox) headers: HeaderMap,
    body: Captured,
}

impl Arrival {
    /// The arrival of `parts`, and `body` teed into it.
    pub(in crate::sandbox) fn new<B>(parts: &http::request::Parts, body: B) -> (Self, axum::body::Body)
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<axum::BoxError>,
    {
        let (body, captured) = Captured::tee(body);
        let arrival = Self {
            at: Utc::now(),
            clock: std::time::Instant::now(),
            method: parts.method.clone(),
            target: parts
                .uri
                .path_and_query()
                .map_or_else(|| parts.uri.path().to_owned(), ToString::to_string),
            headers: parts.headers.clone(),
            body: captured,
        };
        (arrival, body)
    }
}

impl Arrival {
    /// Keeps `target` and `headers` instead of what arrived: a proxy's
    /// request carries real secrets, and the journal keeps only what its
    /// recording keeps (already redacted by the caller).
    pub(in crate::sandbox) fn keep_instead(&mut self, target: String, headers: HeaderMap) {
        self.target = target;
        self.headers = headers;
    }

    /// Keeps `body` instead of the body read (redacted by the caller); the
    /// whole size read stays as counted.
    pub(in crate::sandbox) fn keep_body_instead(&mut self, body: &[u8]) {
        let mut kept = self.body.0.lock().unwrap_or_else(|p| p.into_inner());
        kept.0 = body[..body.len().min(BODY_KEPT)].to_vec();
    }
}

/// A request body read through: the first [`BODY_KEPT`] bytes kept for the
/// journal, the whole size counted, the bytes passed on untouched.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<(Vec<u8>, u64)>>);

impl Captured {
    /// `body`, with what passes through it copied into the returned capture.
    /// The body keeps its size hint (its `Content-Length`, or none when it is
    /// chunked), which the room a body is given is taken from; `map_frame`
    /// would forget it.
    fn tee<B>(body: B) -> (axum::body::Body, Captured)
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<axum::BoxError>,
    {
        use http_body_util::BodyExt;
        let captured = Captured::default();
        let tee = Tee {
            inner: body.map_err(Into::into).boxed_unsync(),
            sink: captured.clone(),
        };
        (axum::body::Body::new(tee), captured)
    }

    /// Counts `data` and keeps its first bytes, up to [`BODY_KEPT`].
    fn copy(&self, data: &[u8]) {
        let mut kept = self.0.lock().unwrap_or_else(|p| p.into_inner());
        kept.1 += data.len() as u64;
        let room = BODY_KEPT.saturating_sub(kept.0.len());
        kept.0.extend_from_slice(&data[..data.len().min(room)]);
    }

    /// What was kept, and the whole size read.
    fn taken(&self) -> (Vec<u8>, u64) {
        let mut kept = self.0.lock().unwrap_or_else(|p| p.into_inner());
        (std::mem::take(&mut kept.0), kept.1)
    }
}

/// A request body passed through untouched, each data frame copied into
/// its [`Captured`]; its end and its size hint are the body's own.
struct Tee {
    inner: http_body_util::combinators::UnsyncBoxBody<Bytes, axum::BoxError>,
    sink: Captured,
}

impl http_body::Body for Tee {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_frame(cx);
        if let std::task::Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            self.sink.copy(data);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(status: Option<u16>, operation: &'static str, body: usize) -> Entry {
        let noted = Noted {
            operation: crate::operations::find(operation),
            caller: Some("abcd1234".into()),
            ..Noted::default()
        };
        let request = http::Request::post("/x")
            .header("x-api-key", "sk_test_secret")
            .body(())
            .unwrap();
        let (parts, ()) = request.into_parts();
        let sent = http_body_util::Full::new(Bytes::from(vec![b'a'; body]));
        let (arrival, reader) = Arrival::new(&parts, sent);
        // Read the body through, as the flow's stages do.
        let read = futures::executor::block_on(axum::body::to_bytes(reader, usize::MAX)).unwrap();
        assert_eq!(read.len(), body);
        let response = status.map(|s| (s, Message::new(&HeaderMap::new(), b"{\"secret\":\"whsec_x\"}", 20)));
        Entry::new(arrival, "req_1".into(), noted, response)
    }

    #[test]
    fn a_teed_body_keeps_its_size_hint() {
        use http_body::Body as _;
        let (parts, ()) = http::Request::get("/x").body(()).unwrap().into_parts();
        let sized = http_body_util::Full::new(Bytes::from_static(b"0123456789"));
        let (_, body) = Arrival::new(&parts, sized);
        assert_eq!(body.size_hint().exact(), Some(10), "its length");
        let (_, body) = Arrival::new(&parts, http_body_util::Empty::<Bytes>::new());
        assert_eq!(body.size_hint().exact(), Some(0), "no body");
        assert!(body.is_end_stream());
    }

    #[test]
    fn the_ring_keeps_the_newest_within_both_bounds() {
        let journal = Journal::new(3);
        for _ in 0..5 {
            journal.record(entry(Some(200), "getCurrentUser", 10));
        }
        let ids: Vec<u64> = journal
            .list(&Filter::default(), 10)
            .iter()
            .map(|e| e.summary.id)
            .collect();
        assert_eq!(ids, [5, 4, 3]);
        assert!(journal.get(2).is_none());
        assert_eq!(journal.get(4).map(|e| e.summary.id), Some(4));

        // Full bodies: the byte bound drops entries long before the count does.
        let journal = Journal::new(10_000);
        for _ in 0..2000 {
            journal.record(entry(Some(200), "getCurrentUser", 100_000));
        }
        let kept = journal.list(&Filter::default(), usize::MAX).len();
        assert!(kept < 2000 && kept > 100, "{kept}");
        assert!(journal.ring.lock().unwrap().bytes <= MAX_JOURNAL_BYTES);
    }

    #[test]
    fn the_feed_carries_no_bodies() {
        let journal = Journal::new(0);
        let mut feed = journal.follow();
        journal.record(entry(Some(400), "createBundle", 60_000));
        let Ok(Event::Request(summary)) = feed.try_recv() else {
            panic!("no request on the feed");
        };
        let text = serde_json::to_string(&*summary).unwrap();
        assert!(text.len() < 1000 && text.contains("createBundle"), "{text}");
        assert!(
            journal.list(&Filter::default(), 10).is_empty(),
            "--journal 0 kept an entry"
        );
    }

    #[test]
    fn secrets_are_not_kept() {
        let e = entry(Some(201), "createWebhookEndpoint", 10);
        let text = serde_json::to_string(&e).unwrap();
        assert!(!text.contains("sk_test_secret") && !text.contains("whsec_x"), "{text}");
        assert!(
            text.contains("[redacted]") && text.contains("carries a secret"),
            "{text}"
        );
        // An ordinary answer is kept, cut at 64 KiB.
        let e = entry(Some(200), "getCurrentUser", 100_000);
        assert!(e.response.unwrap().body.unwrap().contains("whsec_x"));
        assert!(e.request.truncated && e.request.body.unwrap().len() == BODY_KEPT);
    }

    #[test]
    fn filters_read_as_documented() {
        assert_eq!(StatusFilter::parse("4xx"), Ok(StatusFilter::Class(4)));
        assert_eq!(StatusFilter::parse("404"), Ok(StatusFilter::Exact(404)));
        assert!(StatusFilter::parse("4x").is_err() && StatusFilter::parse("700").is_err());
        let journal = Journal::new(10);
        journal.record(entry(Some(200), "getCurrentUser", 1));
        journal.record(entry(Some(400), "createBundle", 1));
        journal.record(entry(None, "createBundle", 1));
        let f = |status: &str| Filter {
            status: Some(StatusFilter::parse(status).unwrap()),
            ..Filter::default()
        };
        assert_eq!(journal.list(&f("4xx"), 10).len(), 1);
        assert_eq!(journal.list(&f("closed"), 10)[0].summary.id, 3);
        let by_op = Filter {
            operation: Some("createBundle".into()),
            since: Some(Since::Id(2)),
            ..Filter::default()
        };
        assert_eq!(
            journal
                .list(&by_op, 10)
                .iter()
                .map(|e| e.summary.id)
                .collect::<Vec<_>>(),
            [3]
        );
    }
}
