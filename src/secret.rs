//! A string that must never be printed: API keys and webhook signing secrets.

use std::fmt;

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
