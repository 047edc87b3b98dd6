//! Who is calling over HTTP: the key a request carries, and the fingerprint
//! the server keeps of it. Read by the HTTP guard (no key, no entry), by the
//! session bounds and the per-caller limits (counted per fingerprint), and by
//! the server (each call made with the request's own key).

use std::fmt;

use axum::http::{HeaderMap, header};
use sha2::{Digest, Sha256};

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

/// A caller as the server remembers it: the first 16 bytes of the SHA-256 of
/// its key, never the key. Sessions and concurrent calls are counted per
/// `KeyId`, and a session answers only the key that opened it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId([u8; 16]);

impl KeyId {
    /// The fingerprint of `key`.
    pub fn of(key: &str) -> Self {
        let digest = Sha256::digest(key.as_bytes());
        let mut id = [0; 16];
        id.copy_from_slice(&digest[..16]);
        Self(id)
    }

    /// The fingerprint of the key in `headers`, if there is one.
    pub fn from_headers(headers: &HeaderMap) -> Option<Self> {
        caller_key(headers).map(|key| Self::of(&key))
    }

    /// All 128 bits in hex: what tells keys apart where they must never be
    /// confused (a daily budget). The eight digits shown in logs collide
    /// by chance among tens of thousands of keys; these do not.
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }
}

/// Eight hex digits: enough to tell callers apart in a log, useless to
/// anyone who wants the key.
impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", hex::encode(&self.0[..4]))
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(&self.0[..4]))
    }
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

    #[test]
    fn a_key_id_tells_keys_apart_and_never_shows_the_key() {
        let a = KeyId::of("sk_live_secret_a");
        assert_eq!(a, KeyId::of("sk_live_secret_a"));
        assert_ne!(a, KeyId::of("sk_live_secret_b"));
        let shown = format!("{a:?} {a}");
        assert!(!shown.contains("secret"), "{shown}");
        assert_eq!(a.to_string().len(), 8);
    }
}
