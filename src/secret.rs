//! A string that must never be printed: API keys and webhook signing
//! secrets; and the scrubbing of such secrets out of text someone else wrote
//! (an error message that echoes a key).

use std::fmt;

/// What a scrubbed secret becomes.
const REDACTED: &str = "[redacted]";
/// Prefixes of TokPortal's secrets, found in any text (an error message, a
/// field of any name): API keys and webhook signing secrets.
const SECRET_PREFIXES: &[&str] = &["sk_", "whsec_"];

/// `text` with every word that starts like one of TokPortal's secrets
/// (`sk_…`, `whsec_…`) replaced by `[redacted]`, whatever holds it.
#[cfg_attr(not(any(feature = "sandbox", feature = "mcp")), allow(dead_code))]
pub(crate) fn scrub(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some((at, prefix)) = SECRET_PREFIXES
        .iter()
        .filter_map(|p| find_word(rest, p).map(|at| (at, p.len())))
        .min()
    {
        out.push_str(&rest[..at]);
        // The word goes on past its prefix (always consumed: the loop ends).
        let tail = &rest[at + prefix..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
            .unwrap_or(tail.len());
        out.push_str(REDACTED);
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// Whether `text` holds something [`scrub`] would change (a cheap test first).
#[cfg_attr(not(feature = "sandbox"), allow(dead_code))]
pub(crate) fn may_hold_secret(text: &str) -> bool {
    SECRET_PREFIXES.iter().any(|p| text.contains(p))
}

/// Every string in `value` (keys and values, at any depth) [`scrub`]bed.
#[cfg_attr(not(feature = "mcp"), allow(dead_code))]
pub(crate) fn scrub_json(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::String(s) => *s = scrub(s),
        Value::Array(items) => items.iter_mut().for_each(scrub_json),
        Value::Object(map) => {
            let fields = std::mem::take(map);
            for (k, mut v) in fields {
                scrub_json(&mut v);
                map.insert(scrub(&k), v);
            }
        }
        _ => {}
    }
}

/// Where `prefix` starts a word of `text` (not inside another word).
#[cfg_attr(not(any(feature = "sandbox", feature = "mcp")), allow(dead_code))]
fn find_word(text: &str, prefix: &str) -> Option<usize> {
    text.match_indices(prefix).map(|(at, _)| at).find(|&at| {
        text[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_'))
    })
}

/// A secret string (an API key, a webhook signing secret).
///
/// `Debug` and `Display` print `** redacted (length=N) **`; the value is
/// reachable only through [`Secret::expose`], so it cannot end up in a log
/// line by accident.
///
/// ```
/// let key = tokportal::Secret::new("sk_live_123");
/// assert_eq!(format!("{key:?}"), "Secret(** redacted (length=11) **)");
/// assert_eq!(key.to_string(), "** redacted (length=11) **");
/// assert_eq!(key.expose(), "sk_live_123");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value. Use it only where it must be sent or computed with.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({})", Redacted(self.0.len()))
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Redacted(self.0.len()).fmt(f)
    }
}

/// How a secret of `N` bytes is shown: `** redacted (length=N) **` (the
/// length tells a truncated key from a whole one, and nothing else).
#[derive(Debug, Clone, Copy)]
pub struct Redacted(pub usize);

impl fmt::Display for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "** redacted (length={}) **", self.0)
    }
}

/// Whether a header's value is a credential, shown only as [`Redacted`]:
/// `X-API-Key`, `Authorization`, `Proxy-Authorization`, `Cookie` and
/// `Set-Cookie`.
pub fn is_credential_header(name: &str) -> bool {
    [
        "x-api-key",
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
    ]
    .iter()
    .any(|c| name.eq_ignore_ascii_case(c))
}

/// Headers as log lines (`name: value`, one a line), credentials redacted
/// and values that are not text shown by their length.
pub struct HeaderLines<'a>(pub &'a http::HeaderMap);

impl fmt::Display for HeaderLines<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (name, value)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            match value.to_str() {
                Ok(_) if is_credential_header(name.as_str()) || value.is_sensitive() => {
                    write!(f, "{name}: {}", Redacted(value.len()))?
                }
                Ok(text) => write!(f, "{name}: {text}")?,
                Err(_) => write!(f, "{name}: ({} bytes, not text)", value.len())?,
            }
        }
        Ok(())
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_lines_redact_credentials() {
        let mut h = http::HeaderMap::new();
        h.insert("x-api-key", "sk_live_secret".parse().unwrap());
        h.insert("authorization", "Bearer sk_live_other".parse().unwrap());
        h.insert("accept", "application/json".parse().unwrap());
        let shown = HeaderLines(&h).to_string();
        assert!(shown.contains("x-api-key: ** redacted (length=14) **"), "{shown}");
        assert!(shown.contains("authorization: ** redacted (length=20) **"), "{shown}");
        assert!(shown.contains("accept: application/json"), "{shown}");
        assert!(!shown.contains("sk_live"), "{shown}");
    }

    #[test]
    fn a_secret_shows_only_its_length() {
        for secret in [
            Secret::new("sk_live_123"),
            Secret::from("sk_live_123"),
            Secret::from(String::from("sk_live_123")),
        ] {
            assert_eq!(secret.expose(), "sk_live_123");
            assert_eq!(format!("{secret:?}"), "Secret(** redacted (length=11) **)");
            assert_eq!(format!("{secret}"), "** redacted (length=11) **");
            assert_eq!(
                format!("{:?}", Some(&secret)),
                "Some(Secret(** redacted (length=11) **))"
            );
        }
        assert_ne!(Secret::new("a"), Secret::new("b"));
    }

    #[test]
    fn credential_headers_in_any_case() {
        for name in [
            "X-API-Key",
            "authorization",
            "Proxy-Authorization",
            "COOKIE",
            "set-cookie",
        ] {
            assert!(is_credential_header(name), "{name}");
        }
        for name in ["accept", "x-api-key-hint", "content-type", "x-request-id"] {
            assert!(!is_credential_header(name), "{name}");
        }
    }

    /// Each header its own line; a value marked sensitive is redacted
    /// whatever its name; one that is not text is shown by its length.
    #[test]
    fn header_lines_one_a_line() {
        let mut h = http::HeaderMap::new();
        h.insert("accept", "application/json".parse().unwrap());
        let mut marked: http::HeaderValue = "tok_123".parse().unwrap();
        marked.set_sensitive(true);
        h.insert("x-custom", marked);
        h.insert("x-bytes", http::HeaderValue::from_bytes(b"caf\xe9").unwrap());
        assert_eq!(
            HeaderLines(&h).to_string(),
            "accept: application/json\nx-custom: ** redacted (length=7) **\nx-bytes: (4 bytes, not text)"
        );
        assert_eq!(HeaderLines(&http::HeaderMap::new()).to_string(), "");
    }
}

#[cfg(test)]
mod scrub_tests {
    use super::*;

    #[test]
    fn secrets_are_scrubbed_from_text_and_json() {
        assert_eq!(
            scrub("key sk_live_x1, whsec_y; task_sk_z"),
            "key [redacted], [redacted]; task_sk_z"
        );
        assert_eq!(scrub("sk_live_a-b.c"), "[redacted].c", "a word runs through - and _");
        assert_eq!(scrub("(whsec_1)sk_"), "([redacted])[redacted]");
        assert_eq!(scrub("xsk_1 2sk_2 _sk_3 -sk_4"), "xsk_1 2sk_2 _sk_3 -[redacted]");
        assert_eq!(scrub("plain"), "plain");
        assert!(may_hold_secret("a whsec_") && may_hold_secret("sk_") && !may_hold_secret("s k_"));
        let mut v = serde_json::json!({"error": {"message": "sk_live_ab is revoked",
            "details": {"sk_test_k": ["whsec_1", 5, "plain"]}}});
        scrub_json(&mut v);
        assert_eq!(
            v,
            serde_json::json!({"error": {"message": "[redacted] is revoked",
                "details": {"[redacted]": ["[redacted]", 5, "plain"]}}})
        );
    }
}
