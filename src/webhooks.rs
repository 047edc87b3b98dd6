//! Webhook signature verification, signing for tests, and typed events.
//!
//! TokPortal signs each delivery with `TokPortal-Signature: t={unix},v1={hex}`,
//! where `v1` is the HMAC-SHA256 of `"{t}.{raw body}"` keyed by the endpoint's
//! signing secret. Verify the **raw** body bytes, before any JSON parsing.
//!
//! ```
//! use tokportal::webhooks::{Verifier, WebhookEvent, sign, SIGNATURE_HEADER};
//! let body = br#"{"id":"evt_1","type":"webhook.test","api_version":"2026-05-25","created_at":"2026-06-01T12:00:00Z","data":{"webhook_endpoint_id":"9f3a7b2e-1c4d-4e8f-a5b6-7d9e0f1a2b3c","message":"hi"}}"#;
//! let now = 1_700_000_000;
//! let mut headers = http::HeaderMap::new();
//! headers.insert(SIGNATURE_HEADER, sign("whsec_test", now, body).parse().unwrap());
//!
//! let verifier = Verifier::new("whsec_test");
//! let event = verifier.construct_event_at(&headers, body, now)?;
//! assert!(matches!(event.payload, WebhookEvent::WebhookTest(_)));
//! # Ok::<(), tokportal::webhooks::WebhookError>(())
//! ```

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Sha256;

use crate::secret::Secret;

/// The header that carries the signature.
pub const SIGNATURE_HEADER: &str = crate::headers::SIGNATURE;
/// Default accepted age of a delivery, either way.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

type HmacSha256 = Hmac<Sha256>;

/// Why a delivery was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// The request has no `TokPortal-Signature` header (or it is not text).
    #[error("no TokPortal-Signature header")]
    MissingHeader,
    /// The header is not `t=<unix>,v1=<hex>[,v1=...]`.
    #[error("malformed TokPortal-Signature header: {0}")]
    MalformedHeader(String),
    /// The header has a timestamp but no `v1` signature.
    #[error("the TokPortal-Signature header has no v1 signature")]
    NoSignature,
    /// No `v1` signature matches the body under any of the secrets.
    #[error("no signature matches the body")]
    NoMatchingSignature,
    /// The signature is valid but the timestamp is too old or too far in the future.
    #[error("timestamp {timestamp} is outside the tolerance of {tolerance_seconds} s (now {now})")]
    TimestampOutOfTolerance {
        /// `t` of the header.
        timestamp: i64,
        /// The verifier's clock.
        now: i64,
        /// The tolerance.
        tolerance_seconds: u64,
    },
    /// The body is signed but is not a TokPortal event envelope (`id`,
    /// `type`, `api_version`, `created_at`, `data`). A known event whose
    /// `data` has another shape is not refused: it is
    /// [`WebhookEvent::Drifted`].
    #[error("the delivery is signed but its body is not a TokPortal event: {0}")]
    InvalidPayload(String),
}

/// Builds a valid `TokPortal-Signature` header value, for your own tests.
///
/// ```
/// assert_eq!(
///     tokportal::webhooks::sign("whsec_test", 1700000000, br#"{"id":"evt_1"}"#),
///     "t=1700000000,v1=c89214b5b5da833daed6f0b8c5bb6bd58cea9022bd80ccc78230f3942d632925"
/// );
/// ```
pub fn sign(secret: impl AsRef<str>, timestamp: i64, body: &[u8]) -> String {
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac(secret.as_ref(), timestamp, body).finalize().into_bytes())
    )
}

fn mac(secret: &str, timestamp: i64, body: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail here.
    let mut mac = <HmacSha256 as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// A parsed `TokPortal-Signature` header.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SignatureHeader {
    timestamp: i64,
    signatures: Vec<String>,
}

fn parse_header(header: &str) -> Result<SignatureHeader, WebhookError> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    if header.trim().is_empty() {
        return Err(WebhookError::MalformedHeader("empty".into()));
    }
    for item in header.split(',') {
        let item = item.trim();
        let (key, value) = item
            .split_once('=')
            .ok_or_else(|| WebhookError::MalformedHeader(format!("`{}` is not key=value", truncate(item))))?;
        match key {
            "t" => {
                if timestamp.is_some() {
                    return Err(WebhookError::MalformedHeader("more than one timestamp".into()));
                }
                if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(WebhookError::MalformedHeader(format!(
                        "timestamp `{}` is not a Unix time",
                        truncate(value)
                    )));
                }
                timestamp = Some(
                    value
                        .parse::<i64>()
                        .map_err(|_| WebhookError::MalformedHeader("timestamp out of range".into()))?,
                );
            }
            "v1" => signatures.push(value.to_owned()),
            // Other schemes (v0, future ones) are ignored.
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or_else(|| WebhookError::MalformedHeader("no timestamp `t`".into()))?;
    if signatures.is_empty() {
        return Err(WebhookError::NoSignature);
    }
    Ok(SignatureHeader { timestamp, signatures })
}

fn truncate(s: &str) -> String {
    s.chars().take(32).collect()
}

/// Verifies deliveries against one or more signing secrets.
///
/// Several secrets are tried in turn during a secret rotation, and every `v1`
/// value of the header is tried against each; hex is decoded strictly (either
/// case) and compared in constant time.
#[derive(Debug, Clone)]
pub struct Verifier {
    secrets: Vec<Secret>,
    tolerance: Option<Duration>,
}

/// A delivery whose signature checked out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    /// `t` of the header.
    pub timestamp: i64,
}

impl Verifier {
    /// A verifier for one secret, with the default 300 s tolerance.
    pub fn new(secret: impl Into<Secret>) -> Self {
        Self {
            secrets: vec![secret.into()],
            tolerance: Some(DEFAULT_TOLERANCE),
        }
    }

    /// Also accepts deliveries signed with `secret` (during a rotation).
    pub fn with_secret(mut self, secret: impl Into<Secret>) -> Self {
        self.secrets.push(secret.into());
        self
    }

    /// Accepted age of a delivery, either way (default 300 s).
    pub fn tolerance(mut self, tolerance: Duration) -> Self {
        self.tolerance = Some(tolerance);
        self
    }

    /// Turns the age check off: replayed deliveries are then accepted. Only for
    /// re-processing stored deliveries.
    pub fn without_age_check(mut self) -> Self {
        self.tolerance = None;
        self
    }

    /// Verifies `body` against a header value, at the current time.
    pub fn verify(&self, body: &[u8], header: &str) -> Result<Verified, WebhookError> {
        self.verify_at(body, header, now())
    }

    /// Verifies `body` against a header value, at `now` (Unix seconds).
    pub fn verify_at(&self, body: &[u8], header: &str, now: i64) -> Result<Verified, WebhookError> {
        let parsed = parse_header(header)?;
        let decoded: Vec<Vec<u8>> = parsed.signatures.iter().filter_map(|s| hex::decode(s).ok()).collect();
        let matches = self.secrets.iter().any(|secret| {
            let expected = mac(secret.expose(), parsed.timestamp, body);
            // `verify_slice` compares in constant time.
            decoded.iter().any(|sig| expected.clone().verify_slice(sig).is_ok())
        });
        if !matches {
            return Err(WebhookError::NoMatchingSignature);
        }
        if let Some(tolerance) = self.tolerance {
            let secs = tolerance.as_secs();
            if parsed.timestamp.abs_diff(now) > secs {
                return Err(WebhookError::TimestampOutOfTolerance {
                    timestamp: parsed.timestamp,
                    now,
                    tolerance_seconds: secs,
                });
            }
        }
        Ok(Verified {
            timestamp: parsed.timestamp,
        })
    }

    /// Verifies a delivery from its headers (axum, actix, hyper) and raw body.
    pub fn verify_headers(&self, headers: &http::HeaderMap, body: &[u8]) -> Result<Verified, WebhookError> {
        self.verify_headers_at(headers, body, now())
    }

    fn verify_headers_at(&self, headers: &http::HeaderMap, body: &[u8], now: i64) -> Result<Verified, WebhookError> {
        let header = headers
            .get(SIGNATURE_HEADER)
            .and_then(|v| v.to_str().ok())
            .ok_or(WebhookError::MissingHeader)?;
        self.verify_at(body, header, now)
    }

    /// Verifies a delivery and parses its event. Parsing is offered only
    /// together with verification, so an unsigned body is never trusted.
    pub fn construct_event(&self, headers: &http::HeaderMap, body: &[u8]) -> Result<Event, WebhookError> {
        self.construct_event_at(headers, body, now())
    }

    /// [`Verifier::construct_event`] at `now` (Unix seconds).
    pub fn construct_event_at(&self, headers: &http::HeaderMap, body: &[u8], now: i64) -> Result<Event, WebhookError> {
        self.verify_headers_at(headers, body, now)?;
        Event::parse(body)
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A verified webhook event: the envelope and its typed payload.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// `evt_...`.
    pub id: String,
    /// The event type, e.g. `bundle.published`.
    pub event_type: String,
    /// Contract version the event was produced under.
    pub api_version: String,
    /// RFC 3339 creation time.
    pub created_at: String,
    /// The typed payload (`data`).
    pub payload: WebhookEvent,
}

#[derive(Deserialize)]
struct Envelope {
    id: String,
    #[serde(rename = "type")]
    event_type: String,
    api_version: String,
    created_at: String,
    data: Value,
}

impl Event {
    fn parse(body: &[u8]) -> Result<Event, WebhookError> {
        let envelope: Envelope =
            serde_json::from_slice(body).map_err(|e| WebhookError::InvalidPayload(e.to_string()))?;
        let payload = WebhookEvent::from_parts(&envelope.event_type, envelope.data);
        Ok(Event {
            id: envelope.id,
            event_type: envelope.event_type,
            api_version: envelope.api_version,
            created_at: envelope.created_at,
            payload,
        })
    }
}

/// Payload of `webhook.test`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookTestPayload {
    /// The endpoint that was tested.
    pub webhook_endpoint_id: String,
    /// A human-readable message.
    pub message: String,
}

/// Payload of the `bundle.*` events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundlePayload {
    /// The bundle.
    pub bundle_id: String,
    /// Your reference for the bundle.
    #[serde(default)]
    pub external_ref: Option<String>,
    /// Bundle status.
    #[serde(default)]
    pub status: Option<String>,
    /// `tiktok`, `instagram`...
    #[serde(default)]
    pub platform: Option<String>,
    /// `account_only`, `account_and_videos`, `videos_only`.
    #[serde(default)]
    pub bundle_type: Option<String>,
}

/// Payload of the `account.*` events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountPayload {
    /// The account.
    pub account_id: String,
    /// Its bundle.
    pub bundle_id: String,
    /// Username on the platform.
    #[serde(default)]
    pub username: Option<String>,
    /// Platform.
    #[serde(default)]
    pub platform: Option<String>,
    /// New status.
    pub status: String,
    /// Status before the change.
    #[serde(default)]
    pub previous_status: Option<String>,
}

/// Payload of the `video.*` events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VideoPayload {
    /// The video.
    pub video_id: String,
    /// Its bundle.
    pub bundle_id: String,
    /// Position in the bundle (from 1).
    pub position: u64,
    /// New status.
    pub status: String,
    /// Status before the change.
    #[serde(default)]
    pub previous_status: Option<String>,
    /// URL on the platform once published.
    #[serde(default)]
    pub platform_url: Option<String>,
}

/// The typed payload of each event type that `listWebhookEvents` documents,
/// and [`WebhookEvent::Unknown`] for any other, so a new type never breaks a receiver.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum WebhookEvent {
    /// `webhook.test`
    WebhookTest(WebhookTestPayload),
    /// `bundle.created`
    BundleCreated(BundlePayload),
    /// `bundle.published`
    BundlePublished(BundlePayload),
    /// `account.configured`
    AccountConfigured(AccountPayload),
    /// `account.published`
    AccountPublished(AccountPayload),
    /// `account.in_review`
    AccountInReview(AccountPayload),
    /// `account.pending_corrections`
    AccountPendingCorrections(AccountPayload),
    /// `account.finalized`
    AccountFinalized(AccountPayload),
    /// `video.configured`
    VideoConfigured(VideoPayload),
    /// `video.in_review`
    VideoInReview(VideoPayload),
    /// `video.published`
    VideoPublished(VideoPayload),
    /// `video.pending_corrections`
    VideoPendingCorrections(VideoPayload),
    /// `video.finalized`
    VideoFinalized(VideoPayload),
    /// A type this SDK does not know yet, with its raw `data`.
    Unknown {
        /// The event type.
        event_type: String,
        /// The raw payload.
        data: Value,
    },
    /// A known type whose `data` has a shape this SDK does not read (the
    /// live API is newer than it, or older): genuine, since its signature
    /// was verified, and delivered with its raw `data` rather than refused,
    /// so that a receiver answers 2xx and the sender does not retry it
    /// until it gives up.
    Drifted {
        /// The event type.
        event_type: String,
        /// The raw payload.
        data: Value,
        /// Why the typed payload could not be read from it.
        reason: String,
    },
}

/// The 13 event types this SDK types, as documented by `listWebhookEvents`.
pub const EVENT_TYPES: [&str; 13] = [
    "webhook.test",
    "bundle.created",
    "bundle.published",
    "account.configured",
    "account.published",
    "account.in_review",
    "account.pending_corrections",
    "account.finalized",
    "video.configured",
    "video.in_review",
    "video.published",
    "video.pending_corrections",
    "video.finalized",
];

impl WebhookEvent {
    /// The typed payload of `event_type`: [`WebhookEvent::Unknown`] for a
    /// type this SDK does not know, [`WebhookEvent::Drifted`] for a known one
    /// whose `data` does not read as its payload.
    fn from_parts(event_type: &str, data: Value) -> Self {
        fn typed<T: serde::de::DeserializeOwned>(
            event_type: &str,
            data: Value,
            variant: fn(T) -> WebhookEvent,
        ) -> WebhookEvent {
            match T::deserialize(&data) {
                Ok(payload) => variant(payload),
                Err(e) => WebhookEvent::Drifted {
                    event_type: event_type.to_owned(),
                    data,
                    reason: e.to_string(),
                },
            }
        }
        match event_type {
            "webhook.test" => typed(event_type, data, Self::WebhookTest),
            "bundle.created" => typed(event_type, data, Self::BundleCreated),
            "bundle.published" => typed(event_type, data, Self::BundlePublished),
            "account.configured" => typed(event_type, data, Self::AccountConfigured),
            "account.published" => typed(event_type, data, Self::AccountPublished),
            "account.in_review" => typed(event_type, data, Self::AccountInReview),
            "account.pending_corrections" => typed(event_type, data, Self::AccountPendingCorrections),
            "account.finalized" => typed(event_type, data, Self::AccountFinalized),
            "video.configured" => typed(event_type, data, Self::VideoConfigured),
            "video.in_review" => typed(event_type, data, Self::VideoInReview),
            "video.published" => typed(event_type, data, Self::VideoPublished),
            "video.pending_corrections" => typed(event_type, data, Self::VideoPendingCorrections),
            "video.finalized" => typed(event_type, data, Self::VideoFinalized),
            other => Self::Unknown {
                event_type: other.to_owned(),
                data,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_distinct() {
        let v = Verifier::new("s");
        let body = b"{}";
        let good = sign("s", 100, body);
        assert_eq!(
            v.verify_at(body, "", 100),
            Err(WebhookError::MalformedHeader("empty".into()))
        );
        assert_eq!(v.verify_at(body, "t=100", 100), Err(WebhookError::NoSignature));
        assert_eq!(
            v.verify_at(body, "t=100,v1=00", 100),
            Err(WebhookError::NoMatchingSignature)
        );
        assert!(matches!(
            v.verify_at(body, &good, 1000),
            Err(WebhookError::TimestampOutOfTolerance { .. })
        ));
        assert_eq!(v.verify_at(body, &good, 100), Ok(Verified { timestamp: 100 }));
        assert!(v.clone().without_age_check().verify_at(body, &good, 100_000).is_ok());
    }

    /// `verify` checks the age against the real clock: a delivery signed
    /// now is accepted, one signed ten minutes ago is refused as too old.
    #[test]
    fn verify_uses_the_real_clock() {
        let body = br#"{"id":"evt_1"}"#;
        let verifier = Verifier::new("whsec_test");
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
        let fresh = verifier.verify(body, &sign("whsec_test", now, body)).unwrap();
        assert_eq!(fresh.timestamp, now);
        let old = verifier.verify(body, &sign("whsec_test", now - 600, body)).unwrap_err();
        match old {
            WebhookError::TimestampOutOfTolerance { now: seen, .. } => assert!(seen >= now && seen < now + 60),
            other => panic!("{other:?}"),
        }
        let mut headers = http::HeaderMap::new();
        headers.insert(SIGNATURE_HEADER, sign("whsec_test", now, body).parse().unwrap());
        assert!(verifier.verify_headers(&headers, body).is_ok());
    }

    /// A malformed header's message names the value at fault, cut at 32
    /// characters; an empty timestamp is not a Unix time.
    #[test]
    fn malformed_headers_name_the_value() {
        let verifier = Verifier::new("whsec_test");
        let message = |header: &str| match verifier.verify_at(b"{}", header, 0) {
            Err(WebhookError::MalformedHeader(m)) => m,
            other => panic!("{header}: {other:?}"),
        };
        assert_eq!(message("t=12a,v1=ab"), "timestamp `12a` is not a Unix time");
        assert_eq!(message("t=,v1=ab"), "timestamp `` is not a Unix time");
        let long = "x".repeat(40);
        assert_eq!(
            message(&format!("t=1,{long}")),
            format!("`{}` is not key=value", &long[..32])
        );
        assert_eq!(
            message(&format!("t={long}")),
            format!("timestamp `{}` is not a Unix time", &long[..32])
        );
    }

    #[test]
    fn rotation_accepts_either_secret() {
        let body = b"x";
        let header = sign("new", 5, body);
        assert!(Verifier::new("old").verify_at(body, &header, 5).is_err());
        assert!(
            Verifier::new("old")
                .with_secret("new")
                .verify_at(body, &header, 5)
                .is_ok()
        );
    }

    #[test]
    fn unknown_event_type_keeps_raw_data() {
        let e = Event::parse(
            br#"{"id":"evt_1","type":"comment.created","api_version":"x","created_at":"y","data":{"a":1}}"#,
        )
        .unwrap();
        assert_eq!(
            e.payload,
            WebhookEvent::Unknown {
                event_type: "comment.created".into(),
                data: serde_json::json!({"a": 1})
            }
        );
    }

    #[test]
    fn every_documented_type_is_typed() {
        for t in EVENT_TYPES {
            let data = serde_json::json!({"webhook_endpoint_id": "w", "message": "m", "bundle_id": "b", "account_id": "a", "video_id": "v", "position": 1, "status": "s"});
            let e = WebhookEvent::from_parts(t, data);
            assert!(
                !matches!(e, WebhookEvent::Unknown { .. } | WebhookEvent::Drifted { .. }),
                "{t}: {e:?}"
            );
        }
    }

    #[test]
    fn a_known_type_in_another_shape_is_drifted_with_its_data() {
        for t in EVENT_TYPES {
            let data = serde_json::json!({"unexpected": [1, 2]});
            match WebhookEvent::from_parts(t, data.clone()) {
                WebhookEvent::Drifted {
                    event_type,
                    data: kept,
                    reason,
                } => {
                    assert_eq!((event_type.as_str(), &kept), (t, &data));
                    assert!(reason.contains("missing field"), "{t}: {reason}");
                }
                other => panic!("{t}: {other:?}"),
            }
        }
    }

    #[test]
    fn arbitrary_headers_never_panic() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let alphabet: Vec<char> = "tv01=,  9afAFé\u{0}-+x".chars().collect();
        let v = Verifier::new("s");
        let good = sign("s", 100, b"{}");
        for _ in 0..20_000 {
            let len = rng.random_range(0..48);
            let mut header: String = (0..len)
                .map(|_| alphabet[rng.random_range(0..alphabet.len())])
                .collect();
            if rng.random_bool(0.3) {
                header = format!("{good},{header}");
            }
            // Any answer will do; a panic fails the test.
            let _ = v.verify_at(b"{}", &header, 100);
        }
    }

    proptest::proptest! {
        /// Any header: an answer, never a panic; and only a header carrying the
        /// right signature is accepted.
        #[test]
        fn the_header_parser_takes_anything(header in "[tv01=, 9afAF\\-+x\u{e9}\u{0}]{0,64}|.{0,64}") {
            let v = Verifier::new("s");
            let verified = v.verify_at(b"{}", &header, 100);
            let good = sign("s", 100, b"{}");
            let accepted_rightly = verified.is_err() || header.contains(good.as_str());
            proptest::prop_assert!(accepted_rightly);
        }

        /// Whatever the secret, body and time, what `sign` makes `verify` accepts,
        /// and one flipped body byte is refused.
        #[test]
        fn signing_round_trips(secret in "[ -~]{1,40}", body in proptest::collection::vec(proptest::num::u8::ANY, 0..256), t in 0i64..4_000_000_000) {
            let header = sign(&secret, t, &body);
            let v = Verifier::new(secret.as_str());
            proptest::prop_assert!(v.verify_at(&body, &header, t).is_ok());
            if let Some(first) = body.first() {
                let mut tampered = body.clone();
                tampered[0] = first ^ 1;
                proptest::prop_assert!(v.verify_at(&tampered, &header, t).is_err());
            }
        }
    }

    #[test]
    fn secret_debug_is_redacted() {
        assert!(!format!("{:?}", Verifier::new("whsec_supersecret")).contains("supersecret"));
    }
}
