//! What the sandbox learns from the live API (`tokportal sandbox --proxy
//! URL`): each exchange passed through, written down as HAR 1.2 with its
//! secrets redacted, checked against the contract for drift, and played
//! back offline.
//!
//! - `redact`: what of an exchange never reaches a recording (credential
//!   headers, secret-named fields and query parameters, the answers of the
//!   secret-bearing operations);
//! - `har`: the HAR 1.2 document, read and appended to (the file is a
//!   whole HAR document after every exchange);
//! - `drift`: an answer against the contract (an unknown operation, an
//!   undocumented status, a field the schema does not name, a type or enum
//!   mismatch, a missing field or documented header), and the tally of
//!   what was found;
//! - `upstream`: the live origin and the rules of what is sent to it (paid
//!   calls only with `--allow-spend`);
//! - `replay`: the recorded answers by request (`--replay FILE`);
//! - `fixtures_from`: a recording turned into a fixtures file.
//!
//! The room reads the contract below it and nothing else of the sandbox;
//! the face (`face/relay`, `face/flow`) calls it.

pub(in crate::sandbox) mod drift;
pub(in crate::sandbox) mod fixtures_from;
pub(in crate::sandbox) mod har;
pub(in crate::sandbox) mod redact;
pub(in crate::sandbox) mod replay;
pub(in crate::sandbox) mod upstream;

use bytes::Bytes;
use chrono::{DateTime, Utc};

/// One exchange with the live API, as it went: the request as sent
/// upstream (its key included) and the answer as received. Only
/// [`har::Entry::of`] turns it into something kept, redacted.
pub(in crate::sandbox) struct Exchange {
    pub(in crate::sandbox) started: DateTime<Utc>,
    /// From the request sent to the answer's last byte.
    pub(in crate::sandbox) elapsed_ms: f64,
    /// Until the answer's head arrived.
    pub(in crate::sandbox) wait_ms: f64,
    pub(in crate::sandbox) method: String,
    /// The URL the request went to.
    pub(in crate::sandbox) url: url::Url,
    /// The path below the API's base (`/bundles/b_1`).
    pub(in crate::sandbox) path: String,
    pub(in crate::sandbox) request_headers: http::HeaderMap,
    pub(in crate::sandbox) request_body: Bytes,
    pub(in crate::sandbox) status: u16,
    pub(in crate::sandbox) response_headers: http::HeaderMap,
    /// The answer's body, up to [`har::BODY_RECORDED`] bytes.
    pub(in crate::sandbox) response_body: Bytes,
    /// The answer's whole size.
    pub(in crate::sandbox) response_size: u64,
    /// The key's fingerprint (8 hex digits of its SHA-256), as the journal shows it.
    pub(in crate::sandbox) key: Option<String>,
}

/// The drift of every answer a recording holds, as a proxy checks each
/// live answer.
pub(in crate::sandbox) fn check_recording(path: &std::path::Path) -> Result<drift::DriftReport, String> {
    let har = har::read(path)?;
    let tally = drift::Tally::default();
    for entry in &har.log.entries {
        let path = entry.api_path();
        let has_header = |name: &str| entry.response_header(name).is_some();
        let body = entry.response_body();
        tally.add(drift::check(&drift::Answer {
            method: &entry.request.method.to_ascii_uppercase(),
            path: &path,
            status: entry.response.status,
            has_header: &has_header,
            content_type: entry.response_header("content-type"),
            body: body.as_deref(),
        }));
    }
    Ok(tally.report())
}

/// Request bodies a proxying or replaying sandbox holds in memory at once,
/// in KiB (256 MiB): more callers wait their turn rather than exhaust it.
const BODIES_HELD_KIB: usize = 256 * 1024;

/// A request body's room in memory, held while it is: a caller can never
/// take more than its share from the others.
pub(in crate::sandbox) struct BodyRoom {
    /// The most bytes the body may have (its `Content-Length`; the largest
    /// taken when it is chunked; 0 when it has none).
    pub(in crate::sandbox) limit: usize,
    _held: Option<tokio::sync::OwnedSemaphorePermit>,
}

/// What a sandbox holds of the live API: the origin it passes requests to,
/// the recording, the drift found, and the answers it replays.
pub(in crate::sandbox) struct Live {
    /// `--proxy URL`.
    pub(in crate::sandbox) upstream: Option<upstream::Upstream>,
    /// `--record FILE`.
    pub(in crate::sandbox) recorder: Option<har::Recorder>,
    /// `--allow-spend`: paid calls pass.
    pub(in crate::sandbox) allow_spend: bool,
    /// What the live answers had that the contract does not say.
    pub(in crate::sandbox) drift: drift::Tally,
    /// `--replay FILE`.
    pub(in crate::sandbox) replay: Option<replay::Book>,
    /// `--replay-strict`: what the recording does not hold is 404.
    pub(in crate::sandbox) replay_strict: bool,
    /// The exchanges still being read, recorded and journalled after their
    /// answer began: `Sandbox::shutdown` waits for them, so that no
    /// answer, a paid one least of all, is left out of the recording.
    pub(in crate::sandbox) relays: tokio_util::task::TaskTracker,
    /// Room for the request bodies held at once ([`BODIES_HELD_KIB`]).
    bodies: std::sync::Arc<tokio::sync::Semaphore>,
}

impl Live {
    /// Opens what `options` name (the recording is created, the replayed
    /// one read) before anything is bound.
    pub(in crate::sandbox) fn open(options: &crate::sandbox::SandboxOptions) -> Result<Self, String> {
        let upstream = options.proxy.as_deref().map(upstream::Upstream::new).transpose()?;
        let replay = options.replay.as_deref().map(replay::Book::open).transpose()?;
        let recorder = options.record.as_deref().map(har::Recorder::open).transpose()?;
        Ok(Self {
            upstream,
            recorder,
            allow_spend: options.allow_spend,
            drift: drift::Tally::default(),
            replay,
            replay_strict: options.replay_strict,
            relays: tokio_util::task::TaskTracker::new(),
            bodies: std::sync::Arc::new(tokio::sync::Semaphore::new(BODIES_HELD_KIB)),
        })
    }

    /// Room for a request body of at most `largest` bytes: as much as
    /// hyper knows it holds (its `Content-Length`; the body may not be
    /// longer), or `largest` when it is chunked; waits while the sandbox
    /// holds its [`BODIES_HELD_KIB`] already. A request with no body (a GET
    /// names neither length nor chunks, RFC 9112 §6.3) takes no room, so it
    /// never waits.
    pub(in crate::sandbox) async fn room_for_body(&self, size: &http_body::SizeHint, largest: usize) -> BodyRoom {
        let limit = size
            .upper()
            .and_then(|n| usize::try_from(n).ok())
            .map_or(largest, |n| n.min(largest));
        if limit == 0 {
            return BodyRoom { limit, _held: None };
        }
        let kib = u32::try_from(limit.div_ceil(1024).clamp(1, BODIES_HELD_KIB)).unwrap_or(u32::MAX);
        let held = self.bodies.clone().acquire_many_owned(kib).await.ok();
        BodyRoom { limit, _held: held }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    #[tokio::test]
    async fn a_body_s_room_is_its_length_and_the_sandbox_s_is_bounded() {
        let live = Live::open(&crate::sandbox::SandboxOptions::default()).expect("no live API");
        let sized = http_body::SizeHint::with_exact(2048);
        assert_eq!(live.room_for_body(&sized, 1 << 20).await.limit, 2048);
        let chunked = http_body::SizeHint::new();
        assert_eq!(live.room_for_body(&chunked, 1 << 20).await.limit, 1 << 20);
        let empty = http_body::SizeHint::with_exact(0);
        assert_eq!(live.room_for_body(&empty, 1 << 20).await.limit, 0, "no body");
        let huge = http_body::SizeHint::with_exact(999_999_999_999);
        assert_eq!(
            live.room_for_body(&huge, 1 << 20).await.limit,
            1 << 20,
            "never more than the largest"
        );
        // All of it held: the next caller waits, and goes once it is given back.
        let all = live.room_for_body(&chunked, BODIES_HELD_KIB * 1024).await;
        assert!(
            live.room_for_body(&sized, 1 << 20).now_or_never().is_none(),
            "waits its turn"
        );
        assert!(
            live.room_for_body(&empty, 1 << 20).now_or_never().is_some(),
            "a request with no body never waits for room"
        );
        drop(all);
        assert!(live.room_for_body(&sized, 1 << 20).now_or_never().is_some());
    }
}
