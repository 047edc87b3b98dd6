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

/// What a request's `X-TokPortal-Dry-Run` header asks for. The value
/// decides, not the header's presence: `true` is a preview, `false` (what a
/// typed builder's `.x_tok_portal_dry_run(false)` sends) a real call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DryRun {
    /// No header: a real call.
    Absent,
    /// `true` (any case, spaces around it ignored): a preview.
    Preview,
    /// `false` (likewise): a real call, sent without the header.
    Real,
    /// Any other value, or values that disagree: refused before sending,
    /// since the client and the server could read it differently, and a
    /// call the client took for a preview would then be charged without an
    /// idempotency key.
    Unreadable,
}

/// Reads `X-TokPortal-Dry-Run` from a request's headers (every value of it).
pub(crate) fn dry_run(headers: &http::HeaderMap) -> DryRun {
    let mut seen = DryRun::Absent;
    for value in headers.get_all(names::DRY_RUN) {
        let this = match value.as_bytes().trim_ascii() {
            v if v.eq_ignore_ascii_case(b"true") => DryRun::Preview,
            v if v.eq_ignore_ascii_case(b"false") => DryRun::Real,
            _ => return DryRun::Unreadable,
        };
        if seen != DryRun::Absent && seen != this {
            return DryRun::Unreadable;
        }
        seen = this;
    }
    seen
}

/// Whether a request's headers ask for a preview (`X-TokPortal-Dry-Run: true`).
pub(crate) fn is_dry_run(headers: &http::HeaderMap) -> bool {
    dry_run(headers) == DryRun::Preview
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn with(values: &[&str]) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        for v in values {
            headers.append(names::DRY_RUN, http::HeaderValue::from_str(v).unwrap());
        }
        headers
    }

    #[test]
    fn the_value_decides_not_the_presence() {
        assert_eq!(dry_run(&with(&[])), DryRun::Absent);
        assert_eq!(dry_run(&with(&["true"])), DryRun::Preview);
        assert_eq!(dry_run(&with(&[" TRUE "])), DryRun::Preview);
        assert_eq!(dry_run(&with(&["false"])), DryRun::Real);
        assert_eq!(dry_run(&with(&["False"])), DryRun::Real);
        for odd in ["1", "0", "yes", "", "truee"] {
            assert_eq!(dry_run(&with(&[odd])), DryRun::Unreadable, "{odd:?}");
        }
        assert_eq!(dry_run(&with(&["true", "false"])), DryRun::Unreadable);
        assert_eq!(dry_run(&with(&["true", "true"])), DryRun::Preview);
        assert!(is_dry_run(&with(&["true"])) && !is_dry_run(&with(&["false"])) && !is_dry_run(&with(&[])));
    }
}
