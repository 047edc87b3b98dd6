//! The sandbox's API keys: which it takes ([`well_formed_key`]), the name a
//! key's state is kept under (the SHA-256 of the key, [`key_of`]: keys are
//! never kept as given), and a key's state, made on first use and bounded
//! ([`tenant_of`]). The request flow, the admin and clock routes, and the
//! fixtures (which check their keys before anything starts) all read them.

use std::collections::HashMap;

use chrono::Utc;
use http::HeaderMap;
use sha2::{Digest, Sha256};

use crate::headers;
use crate::sandbox::contract::Failure;
use crate::sandbox::world::state::{Tenant, fingerprint};

/// Keys the sandbox keeps state for; a new key past this is refused.
const MAX_TENANTS: usize = 1000;
/// The state of `key`, made on first use; a new key past [`MAX_TENANTS`] is refused.
pub(in crate::sandbox) fn tenant_of<'a>(
    tenants: &'a mut HashMap<String, Tenant>,
    key: &str,
    credits: f64,
) -> Result<&'a mut Tenant, Failure> {
    if !tenants.contains_key(key) && tenants.len() >= MAX_TENANTS {
        return Err(Failure::new(
            401,
            "UNAUTHORIZED",
            format!("The sandbox keeps at most {MAX_TENANTS} API keys; reuse one or restart it."),
        ));
    }
    Ok(tenants
        .entry(key.to_owned())
        .or_insert_with(|| Tenant::new(credits, fingerprint(key), Utc::now())))
}

/// An API key the sandbox takes: `sk_` then letters, digits, `_` or `-`,
/// at most 256 bytes in all.
pub(in crate::sandbox) fn well_formed_key(key: &[u8]) -> bool {
    key.starts_with(b"sk_")
        && (4..=256).contains(&key.len())
        && key
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
}

/// The sandbox's key of a request: the SHA-256 of a well-formed `X-API-Key`
/// (keys are never kept as given).
pub(in crate::sandbox) fn key_of(headers: &HeaderMap) -> Result<String, String> {
    let Some(key) = headers.get(headers::API_KEY) else {
        return Err("Missing API key: send it in the X-API-Key header.".into());
    };
    let key = key.as_bytes();
    if !well_formed_key(key) {
        return Err("Malformed API key: expected `sk_` followed by letters, digits, `_` or `-`.".into());
    }
    Ok(hex::encode(Sha256::digest(key)))
}
