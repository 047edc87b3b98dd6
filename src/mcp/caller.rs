//! Who is calling over HTTP: the key a request carries. Read by the HTTP
//! guard (no key, no entry) and by the server (each call made with it).

use axum::http::{HeaderMap, header};

/// The caller's key: `Authorization: Bearer <key>`, else `X-API-Key`.
pub fn caller_key(headers: &HeaderMap) -> Option<String> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, key)| key.trim());
    let api_key = || {
        headers
            .get(crate::headers::API_KEY)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    bearer.or_else(api_key).filter(|k| !k.is_empty()).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn keys_come_from_bearer_or_x_api_key() {
        let mut h = HeaderMap::new();
        assert_eq!(caller_key(&h), None);
        h.insert("x-api-key", HeaderValue::from_static("sk_b"));
        assert_eq!(caller_key(&h).as_deref(), Some("sk_b"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer sk_a"));
        assert_eq!(caller_key(&h).as_deref(), Some("sk_a"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(caller_key(&h).as_deref(), Some("sk_b"));
    }
}
