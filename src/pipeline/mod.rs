//! Layer 3: the request pipeline, one module per step, shared by the typed,
//! dynamic and upload calls.
//!
//! - [`prepare`]: checked arguments into a request; the headers, the API key,
//!   the idempotency-key rules and the timeout every request carries;
//! - [`execute`]: the attempts, carrying out [`retry`]'s decision;
//! - [`decode`]: success bodies by content type, error bodies into `ApiError`;
//! - [`trace`]: the call and attempt spans, the wait events, and (DEBUG,
//!   TRACE) headers and bodies, secrets redacted.
//!
//! It takes what it needs from the client as `Settings` (behind
//! [`ClientState`], the generated client's `inner` value), and knows nothing
//! of the `Client` type, the generated code or the front-ends.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use http::HeaderValue;

pub(crate) mod decode;
pub(crate) mod execute;
pub(crate) mod prepare;
pub(crate) mod retry;
pub(crate) mod trace;

pub use decode::{OperationResponse, ResponseBody};
pub use retry::RetryPolicy;

/// What the pipeline needs from a client's configuration. Built once by
/// `ClientBuilder::build`, shared by every call of that client.
pub(crate) struct Settings {
    /// The `X-API-Key` value, marked sensitive (its `Debug` prints `Sensitive`).
    pub(crate) api_key: Option<HeaderValue>,
    /// The `X-TokPortal-Client` value.
    pub(crate) identifier: HeaderValue,
    /// The only origin the API key is ever sent to.
    pub(crate) origin: url::Origin,
    /// Timeout of one attempt of an ordinary call.
    pub(crate) timeout: Duration,
    /// Timeout of one attempt of a multipart upload.
    pub(crate) upload_timeout: Duration,
    /// When and how calls are retried.
    pub(crate) retry: RetryPolicy,
    /// The largest success body read into memory, in bytes.
    pub(crate) max_body: u64,
    /// Refuse, before sending, what the vendored contract does not know
    /// (unknown properties, enum values, query parameters) instead of
    /// sending it as given.
    pub(crate) strict: bool,
    /// Whether a differing contract version was already reported.
    pub(crate) version_warned: AtomicBool,
}

impl Settings {
    /// Whether `url` is on the configured API origin (scheme, host, port),
    /// compared without allocating.
    pub(crate) fn same_origin(&self, url: &url::Url) -> bool {
        match &self.origin {
            url::Origin::Tuple(scheme, host, port) => {
                url.scheme() == scheme
                    && url.port_or_known_default() == Some(*port)
                    && match (url.host(), host) {
                        (Some(url::Host::Domain(a)), url::Host::Domain(b)) => a == b,
                        (Some(url::Host::Ipv4(a)), url::Host::Ipv4(b)) => a == *b,
                        (Some(url::Host::Ipv6(a)), url::Host::Ipv6(b)) => a == *b,
                        _ => false,
                    }
            }
            url::Origin::Opaque(_) => false,
        }
    }

    /// Says once, through `tracing`, that the server speaks another contract version.
    pub(crate) fn note_api_version(&self, headers: &http::HeaderMap) {
        let Some(version) = headers
            .get(crate::headers::names::API_VERSION)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
        else {
            return;
        };
        let sdk = crate::operations::SPEC_VERSION;
        if version != sdk && !self.version_warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                server = version,
                sdk,
                "the TokPortal API reports contract version {version}, this SDK was generated from {sdk}; \
                 update the SDK if calls start failing",
            );
        }
    }
}

/// Configuration shared by every call of a [`Client`](crate::Client) (its
/// `inner` state): what the request pipeline reads on every call.
///
/// Cheap to clone. Its `Debug` never shows the API key.
#[derive(Clone)]
pub struct ClientState(pub(crate) Arc<Settings>);

impl fmt::Debug for ClientState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientState")
            .field(
                "api_key",
                &self
                    .0
                    .api_key
                    .as_ref()
                    .map(|k| crate::secret::Redacted(k.len()).to_string()),
            )
            .field("identifier", &self.0.identifier)
            .field("timeout", &self.0.timeout)
            .field("upload_timeout", &self.0.upload_timeout)
            .field("retry", &self.0.retry)
            .field("max_response_body", &self.0.max_body)
            .field("strict_contract", &self.0.strict)
            .finish()
    }
}

impl ClientState {
    /// The retry policy.
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.0.retry
    }

    /// Whether an API key is configured.
    pub fn has_api_key(&self) -> bool {
        self.0.api_key.is_some()
    }

    /// The settings every step of the pipeline reads.
    pub(crate) fn settings(&self) -> &Settings {
        &self.0
    }
}
