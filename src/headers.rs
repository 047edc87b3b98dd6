//! The HTTP header names of the TokPortal contract, in lower case.
//!
//! The request headers are set by the request pipeline; the response headers
//! are read by [`ResponseMeta`](crate::ResponseMeta) and [`ApiError`](crate::ApiError).
//! They live here, at the bottom, because the contract owns them.

/// `X-API-Key`: the caller's API key (marked sensitive when sent).
pub const API_KEY: &str = "x-api-key";
/// `X-TokPortal-Client`: which client sent the request.
pub const CLIENT: &str = "x-tokportal-client";
/// `Idempotency-Key`: a retry with the same key returns the first answer.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// `X-Request-ID`: the caller's id for a request, echoed by the server.
pub const REQUEST_ID: &str = "x-request-id";
/// `X-TokPortal-Dry-Run: true`: preview the call; nothing changes, nothing is charged.
pub const DRY_RUN: &str = "x-tokportal-dry-run";
/// `X-TokPortal-Request-ID`: the server's id for a request.
pub const TOKPORTAL_REQUEST_ID: &str = "x-tokportal-request-id";
/// `X-TokPortal-API-Version`: the contract version the server speaks.
pub const API_VERSION: &str = "x-tokportal-api-version";
/// `Idempotent-Replayed: true`: the answer was replayed for an idempotency key.
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";
/// `X-RateLimit-Limit`: the token bucket's capacity.
pub const RATE_LIMIT_LIMIT: &str = "x-ratelimit-limit";
/// `X-RateLimit-Remaining`: requests left in the bucket.
pub const RATE_LIMIT_REMAINING: &str = "x-ratelimit-remaining";
/// `X-RateLimit-Reset`: Unix time at which the bucket is full again.
pub const RATE_LIMIT_RESET: &str = "x-ratelimit-reset";
/// `Retry-After`: seconds or an HTTP date.
pub const RETRY_AFTER: &str = "retry-after";
/// `TokPortal-Signature`: `t=<unix>,v1=<hex hmac>` on webhook deliveries.
pub const SIGNATURE: &str = "tokportal-signature";

/// The names the request pipeline looks up or sets on every call, made once:
/// a name given as text is parsed and, when inserted, copied each time.
pub(crate) mod names {
    use http::HeaderName;

    pub(crate) const API_KEY: HeaderName = HeaderName::from_static(super::API_KEY);
    pub(crate) const CLIENT: HeaderName = HeaderName::from_static(super::CLIENT);
    pub(crate) const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static(super::IDEMPOTENCY_KEY);
    pub(crate) const DRY_RUN: HeaderName = HeaderName::from_static(super::DRY_RUN);
    pub(crate) const REQUEST_ID: HeaderName = HeaderName::from_static(super::REQUEST_ID);
    pub(crate) const API_VERSION: HeaderName = HeaderName::from_static(super::API_VERSION);
}
