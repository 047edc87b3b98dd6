//! Metadata that every TokPortal response carries in its headers.

use http::HeaderMap;
use serde::Serialize;

use progenitor_client::ResponseValue;

/// Rate-limit state reported by `X-RateLimit-*` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct RateLimit {
    /// `X-RateLimit-Limit`: token bucket capacity of the API key.
    pub limit: Option<u64>,
    /// `X-RateLimit-Remaining`: requests left after this one.
    pub remaining: Option<u64>,
    /// `X-RateLimit-Reset`: Unix time at which the bucket is full again.
    pub reset: Option<u64>,
}

impl RateLimit {
    /// Reads the `X-RateLimit-*` headers; `None` when none is present.
    pub fn from_headers(headers: &HeaderMap) -> Option<Self> {
        let rl = Self {
            limit: header_u64(headers, crate::headers::RATE_LIMIT_LIMIT),
            remaining: header_u64(headers, crate::headers::RATE_LIMIT_REMAINING),
            reset: header_u64(headers, crate::headers::RATE_LIMIT_RESET),
        };
        (rl != Self::default()).then_some(rl)
    }
}

/// What a response says about itself, success or failure.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct ResponseMeta {
    /// HTTP status code.
    pub status: u16,
    /// `X-TokPortal-Request-ID`, else `X-Request-ID`.
    pub request_id: Option<String>,
    /// `X-RateLimit-*`.
    pub rate_limit: Option<RateLimit>,
    /// `Retry-After`, in seconds.
    pub retry_after_seconds: Option<u64>,
    /// `Idempotent-Replayed: true`: the server replayed a stored response for this idempotency key.
    pub idempotent_replayed: bool,
    /// `X-TokPortal-API-Version`: the contract version the server speaks.
    pub api_version: Option<String>,
    /// The `Idempotency-Key` the call was sent with (the caller's, or the
    /// one the SDK generated for a mutating call): the server's echo when it
    /// sends one, else the SDK's own record of it (the pipeline adds it to
    /// the answer's headers). Send the call again with it to get this same
    /// answer back, uncharged.
    pub idempotency_key: Option<String>,
}

impl ResponseMeta {
    /// Reads the metadata from a status and its headers.
    pub fn from_parts(status: u16, headers: &HeaderMap) -> Self {
        Self {
            status,
            request_id: request_id(headers),
            rate_limit: RateLimit::from_headers(headers),
            retry_after_seconds: retry_after_seconds(headers),
            idempotent_replayed: header_str(headers, crate::headers::IDEMPOTENT_REPLAYED)
                .is_some_and(|v| v.eq_ignore_ascii_case("true")),
            api_version: header_str(headers, crate::headers::API_VERSION).map(str::to_owned),
            idempotency_key: header_str(headers, crate::headers::IDEMPOTENCY_KEY).map(str::to_owned),
        }
    }
}

/// Access to [`ResponseMeta`] on the typed responses of the generated client.
///
/// ```no_run
/// # async fn run(client: tokportal::Client) -> Result<(), tokportal::Error> {
/// use tokportal::ResponseExt;
/// let me = client.get_current_user().send().await?;
/// println!("request {:?}, remaining {:?}", me.meta().request_id, me.meta().rate_limit);
/// # Ok(()) }
/// ```
pub trait ResponseExt {
    /// The response's metadata.
    fn meta(&self) -> ResponseMeta;
}

impl<T> ResponseExt for ResponseValue<T> {
    fn meta(&self) -> ResponseMeta {
        ResponseMeta::from_parts(self.status().as_u16(), self.headers())
    }
}

pub(crate) fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim)
}

fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    header_str(headers, name).and_then(|v| v.parse().ok())
}

/// `X-TokPortal-Request-ID`, then `X-Request-ID`.
pub(crate) fn request_id(headers: &HeaderMap) -> Option<String> {
    header_str(headers, crate::headers::TOKPORTAL_REQUEST_ID)
        .or_else(|| header_str(headers, crate::headers::REQUEST_ID))
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// `Retry-After` as seconds: either delta-seconds or an HTTP date.
pub(crate) fn retry_after_seconds(headers: &HeaderMap) -> Option<u64> {
    let value = header_str(headers, crate::headers::RETRY_AFTER)?;
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(seconds);
    }
    let date = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let delta = date.timestamp() - chrono::Utc::now().timestamp();
    Some(u64::try_from(delta).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn reads_all_fields() {
        let h = headers(&[
            ("x-request-id", "fallback"),
            ("x-tokportal-request-id", "req_1"),
            ("x-ratelimit-limit", "120"),
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", "1779724800"),
            ("retry-after", "3"),
            ("idempotent-replayed", "true"),
            ("x-tokportal-api-version", "2026-05-25"),
        ]);
        let m = ResponseMeta::from_parts(429, &h);
        assert_eq!(m.request_id.as_deref(), Some("req_1"));
        assert_eq!(
            m.rate_limit,
            Some(RateLimit {
                limit: Some(120),
                remaining: Some(0),
                reset: Some(1779724800)
            })
        );
        assert_eq!(m.retry_after_seconds, Some(3));
        assert!(m.idempotent_replayed);
        assert_eq!(m.api_version.as_deref(), Some("2026-05-25"));
    }

    #[test]
    fn request_id_falls_back_and_absent_fields_are_none() {
        let m = ResponseMeta::from_parts(200, &headers(&[("x-request-id", "abc")]));
        assert_eq!(m.request_id.as_deref(), Some("abc"));
        assert_eq!(m.rate_limit, None);
        assert_eq!(m.retry_after_seconds, None);
        assert!(!m.idempotent_replayed);
    }

    #[test]
    fn retry_after_http_date_in_the_past_is_zero() {
        let m = ResponseMeta::from_parts(503, &headers(&[("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT")]));
        assert_eq!(m.retry_after_seconds, Some(0));
    }
}
