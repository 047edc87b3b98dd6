//! What never reaches a recording. A recording is meant to be committed
//! and shared (a fixture source, a drift report's evidence), so it holds
//! no credential and no secret an answer carried:
//!
//! - headers: `X-API-Key`, `Authorization`, cookies and every header whose
//!   name speaks of a secret, token, signature or password;
//! - query parameters and JSON fields (at any depth, in requests and
//!   answers) whose name speaks of a secret ([`secret_name`]);
//! - the successful answers of the secret-bearing operations (those that
//!   refuse an `Idempotency-Key`: revealed credentials, verification codes,
//!   webhook signing secrets, upload URLs, report tokens): every value but
//!   ids, statuses, types and times.
//!
//! A redacted value is the text [`REDACTED`], whatever its type was; the
//! drift check takes it as matching any schema. Replay redacts an incoming
//! request the same way before comparing it with the recorded one.

use serde_json::Value;

use crate::operations::{IdempotencyKeySupport, Operation};

/// What a redacted value becomes.
pub(in crate::sandbox) const REDACTED: &str = "[redacted]";

/// Words that make a header, query parameter or field name secret (a word
/// starting with one: `tokens`, `secret_key`, `passwordHash`).
const SECRET_WORDS: &[&str] = &[
    "secret",
    "token",
    "password",
    "passwd",
    "apikey",
    "authorization",
    "cookie",
    "credential",
    "signature",
];
/// Pairs of words that do (`api_key`, `X-Api-Key`, `verificationCode`).
const SECRET_PAIRS: &[(&str, &str)] = &[
    ("api", "key"),
    ("verification", "code"),
    ("private", "key"),
    ("access", "key"),
];

/// The lower-case words of a name: split at anything not a letter or
/// digit, and before an upper-case letter that follows a lower-case one.
fn words(name: &str) -> Vec<String> {
    let mut words = vec![String::new()];
    let mut previous_lower = false;
    for c in name.chars() {
        if !c.is_alphanumeric() {
            words.push(String::new());
            previous_lower = false;
            continue;
        }
        if c.is_uppercase() && previous_lower {
            words.push(String::new());
        }
        previous_lower = c.is_lowercase() || c.is_ascii_digit();
        if let Some(word) = words.last_mut() {
            word.extend(c.to_lowercase());
        }
    }
    words.retain(|w| !w.is_empty());
    words
}

/// Fields a secret-bearing answer keeps: what names or dates a thing, never
/// what opens it.
fn kept_in_secret_answer(name: &str) -> bool {
    name == "id"
        || name.ends_with("_id")
        || matches!(
            name,
            "status" | "type" | "object" | "platform" | "country" | "position" | "credits_charged"
        )
        || name.ends_with("_at")
}

/// Whether a header, query parameter or field called `name` holds a secret.
pub(in crate::sandbox) fn secret_name(name: &str) -> bool {
    if crate::secret::is_credential_header(name) {
        return true;
    }
    let words = words(name);
    words
        .iter()
        .any(|w| w == "otp" || SECRET_WORDS.iter().any(|s| w.starts_with(s)))
        || words
            .windows(2)
            .any(|pair| SECRET_PAIRS.iter().any(|(a, b)| pair[0] == *a && pair[1] == *b))
}

/// Whether `op`'s successful answer carries a secret.
pub(in crate::sandbox) fn secret_bearing(op: Option<&Operation>) -> bool {
    op.is_some_and(|op| op.idempotency_key == IdempotencyKeySupport::Refused)
}

/// A header's value as recorded.
pub(in crate::sandbox) fn header(name: &str, value: &[u8]) -> String {
    if secret_name(name) {
        REDACTED.to_owned()
    } else {
        String::from_utf8_lossy(value).into_owned()
    }
}

/// A query string's pairs as recorded (secret-named values redacted).
pub(in crate::sandbox) fn query(raw: Option<&str>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .map(|(name, value)| {
            let value = if secret_name(&name) { REDACTED.into() } else { value };
            (name.into_owned(), value.into_owned())
        })
        .collect()
}

/// `value` with its secret-named fields redacted; with `whole`, every
/// value but those [`kept_in_secret_answer`] (a secret-bearing answer).
pub(in crate::sandbox) fn json(value: &mut Value, whole: bool) {
    match value {
        Value::Object(map) => {
            for (name, field) in map.iter_mut() {
                if secret_name(name) {
                    // `api_key: {id, name}` describes a key without holding
                    // it: an object's own fields decide; anything else under
                    // a secret name is hidden.
                    match field {
                        Value::Object(_) => json(field, whole),
                        _ => hide(field),
                    }
                } else if whole && !kept_in_secret_answer(name) {
                    match field {
                        Value::Object(_) | Value::Array(_) => json(field, whole),
                        Value::Null => {}
                        _ => *field = Value::String(REDACTED.into()),
                    }
                } else {
                    json(field, whole);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| json(item, whole)),
        _ => {}
    }
}

/// Every value below `value` redacted (its shape kept).
fn hide(value: &mut Value) {
    match value {
        Value::Object(map) => map.values_mut().for_each(hide),
        Value::Array(items) => items.iter_mut().for_each(hide),
        Value::Null => {}
        _ => *value = Value::String(REDACTED.into()),
    }
}

/// A body as recorded: JSON with its secrets redacted (`whole` for a
/// secret-bearing answer); text that is not JSON kept unless `whole`;
/// anything else `None` (recorded base64-encoded by the caller, or withheld
/// when `whole`). The second value says whether something was redacted.
pub(in crate::sandbox) fn body(bytes: &[u8], whole: bool) -> Body {
    if bytes.is_empty() {
        return Body::Text(String::new(), false);
    }
    if let Ok(mut value) = serde_json::from_slice::<Value>(bytes) {
        let before = value.clone();
        json(&mut value, whole);
        let changed = value != before;
        return Body::Text(value.to_string(), changed);
    }
    if whole {
        return Body::Withheld;
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => Body::Text(text.to_owned(), false),
        Err(_) => Body::Binary,
    }
}

/// A body as [`body`] makes it recordable.
#[derive(Debug, PartialEq)]
pub(in crate::sandbox) enum Body {
    /// Text (JSON re-serialized when it was JSON), and whether something of
    /// it was redacted.
    Text(String, bool),
    /// Bytes that are not text: recorded as base64.
    Binary,
    /// A secret-bearing answer that is not JSON: not recorded at all.
    Withheld,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secret_names_are_found_at_any_depth() {
        let mut v = json!({"data": {"id": "w_1", "secret": "whsec_x", "nested": [{"api_key": 5, "name": "n"}],
                                     "tokens": ["t1", "t2"], "api_key": {"id": "k_1", "name": "ci", "secret": "s"},
                                     "error": {"code": "NOT_FOUND"}}});
        json(&mut v, false);
        assert_eq!(
            v,
            json!({"data": {"id": "w_1", "secret": "[redacted]", "nested": [{"api_key": "[redacted]", "name": "n"}],
                            "tokens": ["[redacted]", "[redacted]"], "api_key": {"id": "k_1", "name": "ci", "secret": "[redacted]"},
                            "error": {"code": "NOT_FOUND"}}})
        );
    }

    #[test]
    fn a_secret_answer_keeps_only_what_names_a_thing() {
        let mut v = json!({"data": {"id": "a_1", "account_id": "a_2", "username": "u", "password": "p",
                                     "code": 123456, "expires_at": "2026-01-01T00:00:00Z", "status": "ok",
                                     "upload_url": "https://x/?sig=1", "nothing": null}});
        json(&mut v, true);
        assert_eq!(
            v,
            json!({"data": {"id": "a_1", "account_id": "a_2", "username": "[redacted]", "password": "[redacted]",
                            "code": "[redacted]", "expires_at": "2026-01-01T00:00:00Z", "status": "ok",
                            "upload_url": "[redacted]", "nothing": null}})
        );
    }

    #[test]
    fn names_are_read_as_words() {
        for secret in [
            "secret",
            "webhookSecret",
            "X-Api-Key",
            "apiKey",
            "access_token",
            "verificationCode",
            "otp",
            "Passwords",
        ] {
            assert!(secret_name(secret), "{secret}");
        }
        for plain in [
            "footprint",
            "key",
            "code",
            "id",
            "keyword",
            "api_version",
            "content-type",
            "X-TokPortal-Request-ID",
        ] {
            assert!(!secret_name(plain), "{plain}");
        }
    }

    #[test]
    fn headers_and_queries() {
        assert_eq!(header("X-API-Key", b"sk_live_1"), REDACTED);
        assert_eq!(header("TokPortal-Signature", b"t=1,v1=x"), REDACTED);
        assert_eq!(header("X-Webhook-Secret", b"x"), REDACTED);
        assert_eq!(header("content-type", b"application/json"), "application/json");
        assert_eq!(
            query(Some("page=2&report_token=abc")),
            vec![("page".into(), "2".into()), ("report_token".into(), REDACTED.into())]
        );
    }

    #[test]
    fn bodies() {
        assert_eq!(
            body(b"{\"token\":\"t\"}", false),
            Body::Text("{\"token\":\"[redacted]\"}".into(), true)
        );
        assert_eq!(body(b"plain", false), Body::Text("plain".into(), false));
        assert_eq!(body(b"plain", true), Body::Withheld);
        assert_eq!(body(&[0xff, 0xfe], false), Body::Binary);
    }
}
