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

use crate::secret::scrub;
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
    "passphrase",
    "apikey",
    "authorization",
    "cookie",
    "credential",
    "signature",
    "session",
    "bearer",
];
/// Words that do when they are a whole word (`pin`, not `pinned`).
const SECRET_WHOLE_WORDS: &[&str] = &["otp", "totp", "mfa", "pass", "pin", "jwt", "auth", "sig", "cvv"];
/// Pairs of words that do (`api_key`, `X-Api-Key`, `verificationCode`).
const SECRET_PAIRS: &[(&str, &str)] = &[
    ("api", "key"),
    ("verification", "code"),
    ("private", "key"),
    ("access", "key"),
    ("signing", "key"),
    ("backup", "codes"),
    ("recovery", "codes"),
    ("two", "fa"),
];
/// Query parameters that are secret by their bare name (`?key=…`, `?sig=…`).
const SECRET_QUERY_NAMES: &[&str] = &["key", "code", "sig"];

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
        .any(|w| SECRET_WHOLE_WORDS.contains(&w.as_str()) || SECRET_WORDS.iter().any(|s| w.starts_with(s)))
        || words
            .windows(2)
            .any(|pair| SECRET_PAIRS.iter().any(|(a, b)| pair[0] == *a && pair[1] == *b))
}

/// Whether `op`'s successful answer carries a secret.
pub(in crate::sandbox) fn secret_bearing(op: Option<&Operation>) -> bool {
    op.is_some_and(|op| op.idempotency_key == IdempotencyKeySupport::Refused)
}

/// Whether an answer of `status` to `op` is redacted whole (all but ids,
/// statuses, types and times): the success of a secret-bearing operation,
/// and that of an operation the contract does not know (`None`), which may
/// be one.
pub(in crate::sandbox) fn whole(op: Option<&Operation>, status: u16) -> bool {
    (op.is_none() || secret_bearing(op)) && (200..300).contains(&status)
}

/// A header's value as recorded: secret-named headers redacted, secrets
/// found in any other's value too, and a URL's secret query parameters
/// (`Location: …?token=…`).
pub(in crate::sandbox) fn header(name: &str, value: &[u8]) -> String {
    if secret_name(name) {
        return REDACTED.to_owned();
    }
    let text = String::from_utf8_lossy(value);
    if let Ok(mut url) = url::Url::parse(&text)
        && url.query().is_some()
    {
        let pairs = query(url.query());
        url.query_pairs_mut().clear().extend_pairs(&pairs);
        return scrub(url.as_str());
    }
    scrub(&text)
}

/// Whether a query parameter called `name` holds a secret.
fn secret_query_name(name: &str) -> bool {
    secret_name(name) || SECRET_QUERY_NAMES.iter().any(|n| name.eq_ignore_ascii_case(n))
}

/// A query string's pairs as recorded (secret-named values redacted).
pub(in crate::sandbox) fn query(raw: Option<&str>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .map(|(name, value)| {
            let value = if secret_query_name(&name) {
                REDACTED.to_owned()
            } else {
                scrub(&value)
            };
            (name.into_owned(), value)
        })
        .collect()
}

/// A request target (`/path?query`) with its query redacted.
pub(in crate::sandbox) fn target(path: &str, raw_query: Option<&str>) -> String {
    match raw_query {
        Some(q) if !q.is_empty() => {
            let pairs = query(Some(q));
            let text = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&pairs)
                .finish();
            format!("{path}?{text}")
        }
        _ => path.to_owned(),
    }
}

/// Headers as a journal or a recording keeps them.
pub(in crate::sandbox) fn headers(map: &http::HeaderMap) -> http::HeaderMap {
    let mut kept = http::HeaderMap::with_capacity(map.len());
    for (name, value) in map {
        let shown = header(name.as_str(), value.as_bytes());
        if let Ok(v) = http::HeaderValue::from_str(&shown) {
            kept.append(name.clone(), v);
        }
    }
    kept
}

/// `value` with its secret-named fields redacted; with `whole`, every
/// value but those [`kept_in_secret_answer`] (a secret-bearing answer).
/// Whether anything was.
pub(in crate::sandbox) fn json(value: &mut Value, whole: bool) -> bool {
    match value {
        Value::Object(map) => {
            let mut changed = false;
            for (name, field) in map.iter_mut() {
                changed |= if secret_name(name) {
                    // `api_key: {id, name}` describes a key without holding
                    // it: its own fields decide. Anything else under a
                    // secret name (`credentials: {…}`) is hidden whole.
                    match field {
                        Value::Object(_) if describes_a_key(name) => json(field, whole),
                        _ => hide(field),
                    }
                } else if whole && !kept_in_secret_answer(name) {
                    match field {
                        Value::Object(_) | Value::Array(_) => json(field, whole),
                        _ => hide(field),
                    }
                } else {
                    json(field, whole)
                };
            }
            changed
        }
        Value::Array(items) => items
            .iter_mut()
            .fold(false, |changed, item| json(item, whole) | changed),
        Value::String(text) if crate::secret::may_hold_secret(text) => {
            let scrubbed = scrub(text);
            let changed = scrubbed != *text;
            *text = scrubbed;
            changed
        }
        _ => false,
    }
}

/// Whether an object under this secret name describes a key or a scheme
/// rather than holding a secret (`api_key: {id, name}`, `signature:
/// {header, scheme}`): its own fields then decide. Objects under the other
/// secret names (`credentials`, `secrets`, `tokens`) are hidden whole.
fn describes_a_key(name: &str) -> bool {
    let words = words(name);
    words
        .windows(2)
        .any(|pair| pair[1] == "key" && matches!(pair[0].as_str(), "api" | "access" | "signing"))
        || words.iter().any(|w| {
            matches!(
                w.as_str(),
                "apikey" | "signature" | "signing" | "auth" | "authorization" | "session"
            )
        })
}

/// Every value below `value` redacted (its shape kept); whether one was
/// not already.
fn hide(value: &mut Value) -> bool {
    match value {
        Value::Object(map) => map.values_mut().fold(false, |changed, v| hide(v) | changed),
        Value::Array(items) => items.iter_mut().fold(false, |changed, v| hide(v) | changed),
        Value::Null => false,
        Value::String(text) if text == REDACTED => false,
        _ => {
            *value = Value::String(REDACTED.into());
            true
        }
    }
}

/// A body as recorded: JSON with its secrets redacted (`whole` for a
/// secret-bearing answer); a form (`a=1&b=2`) with its secret-named fields
/// redacted; other text scrubbed of secrets unless `whole`; anything that
/// is not text (a compressed answer, bytes that are not UTF-8) withheld,
/// since nothing in it can be redacted. The flag says whether something
/// was redacted.
pub(in crate::sandbox) fn body(bytes: &[u8], whole: bool) -> Body {
    if bytes.is_empty() {
        return Body::Text(String::new(), false);
    }
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Body::Withheld;
    };
    if let Ok(mut value) = serde_json::from_str::<Value>(text) {
        let changed = json(&mut value, whole);
        return Body::Text(value.to_string(), changed);
    }
    if whole {
        return Body::Withheld;
    }
    let form = !text.contains(char::is_whitespace) && text.contains('=');
    let kept = if form {
        let pairs = query(Some(text));
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&pairs)
            .finish()
    } else {
        scrub(text)
    };
    let changed = kept != text;
    Body::Text(if changed { kept } else { text.to_owned() }, changed)
}

/// A body as [`body`] makes it recordable.
#[derive(Debug, PartialEq)]
pub(in crate::sandbox) enum Body {
    /// Text (JSON re-serialized when it was JSON), and whether something of
    /// it was redacted.
    Text(String, bool),
    /// A body not recorded at all: not text, or a secret-bearing answer
    /// that is not JSON.
    Withheld,
}

impl Body {
    /// What is kept of it (`[redacted]` for a withheld body), and whether
    /// something was redacted.
    pub(in crate::sandbox) fn recorded(&self) -> (&str, bool) {
        match self {
            Body::Text(text, changed) => (text, *changed),
            Body::Withheld => (REDACTED, true),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secret_names_are_found_at_any_depth() {
        let mut v = json!({"data": {"id": "w_1", "secret": "whsec_x", "nested": [{"api_key": 5, "name": "n"}],
                                     "tokens": ["t1", "t2"], "api_key": {"id": "k_1", "name": "ci", "secret": "s"},
                                     "credentials": {"user": "u", "pass": "p"},
                                     "error": {"code": "NOT_FOUND"}}});
        assert!(json(&mut v, false), "something was redacted");
        assert_eq!(
            v,
            json!({"data": {"id": "w_1", "secret": "[redacted]", "nested": [{"api_key": "[redacted]", "name": "n"}],
                            "tokens": ["[redacted]", "[redacted]"], "api_key": {"id": "k_1", "name": "ci", "secret": "[redacted]"},
                            "credentials": {"user": "[redacted]", "pass": "[redacted]"},
                            "error": {"code": "NOT_FOUND"}}})
        );
    }

    #[test]
    fn a_secret_answer_keeps_only_what_names_a_thing() {
        let mut v = json!({"data": {"id": "a_1", "account_id": "a_2", "username": "u", "password": "p",
                                     "code": 123456, "expires_at": "2026-01-01T00:00:00Z", "status": "ok",
                                     "upload_url": "https://x/?sig=1", "nothing": null}});
        assert!(json(&mut v, true), "something was redacted");
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
    fn a_value_with_nothing_secret_is_left_as_it_was() {
        let mut v = json!({"data": {"id": "b_1", "tags": ["a"], "secret": "[redacted]"}});
        let before = v.clone();
        assert!(!json(&mut v, false), "nothing new was redacted");
        assert_eq!(v, before);
    }

    #[test]
    fn bodies() {
        assert_eq!(
            body(b"{\"token\":\"t\"}", false),
            Body::Text("{\"token\":\"[redacted]\"}".into(), true)
        );
        assert_eq!(body(b"plain", false), Body::Text("plain".into(), false));
        assert_eq!(body(b"plain", true), Body::Withheld);
        assert_eq!(
            body(&[0xff, 0xfe], false),
            Body::Withheld,
            "not text: nothing in it can be redacted"
        );
        assert_eq!(
            body(b"user=a&password=p", false),
            Body::Text(format!("user=a&password={}", "%5Bredacted%5D"), true)
        );
        assert_eq!(
            body(b"bad key sk_live_abc-1 here", false),
            Body::Text("bad key [redacted] here".into(), true)
        );
    }

    #[test]
    fn secrets_are_found_by_their_prefix_in_any_text() {
        assert_eq!(
            scrub("key sk_live_x1, whsec_y; task_sk_z"),
            "key [redacted], [redacted]; task_sk_z"
        );
        let mut v = json!({"error": {"code": "X", "message": "sk_live_ab is revoked"}, "key": "whsec_1"});
        assert!(json(&mut v, false), "something was redacted");
        assert_eq!(
            v,
            json!({"error": {"code": "X", "message": "[redacted] is revoked"}, "key": "[redacted]"})
        );
        assert_eq!(
            header("location", b"https://x.example/a?token=t&page=2"),
            "https://x.example/a?token=%5Bredacted%5D&page=2"
        );
        assert_eq!(target("/me", Some("key=abc&page=1")), "/me?key=%5Bredacted%5D&page=1");
    }
}
