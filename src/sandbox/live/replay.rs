//! Recorded answers, played back (`--replay FILE`): a request matches a
//! recorded one when its method, path (below the API's base), query
//! (parameters in any order), body (JSON compared as values) and whether
//! it is a dry run (`X-TokPortal-Dry-Run: true`) are the same, once
//! redacted as the recording was. The same request recorded
//! several times is answered in the recorded order, then with the last
//! answer again. A recorded answer cut short is not played.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use serde_json::Value;

use super::har::{self, Entry};
use super::redact;

/// A recorded answer.
#[derive(Debug, Clone)]
pub(in crate::sandbox) struct Recorded {
    pub(in crate::sandbox) status: u16,
    /// Its headers, but those of the hop and `Content-Length`.
    pub(in crate::sandbox) headers: Vec<(String, String)>,
    pub(in crate::sandbox) body: Vec<u8>,
}

/// What a request is matched by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Asked {
    method: String,
    path: String,
    query: Vec<(String, String)>,
    body: String,
    dry_run: bool,
}

fn asked(method: &str, path: &str, query: Option<&str>, dry_run: bool, body: &[u8]) -> Asked {
    let mut query = redact::query(query);
    query.sort();
    let body = match redact::body(body, false) {
        redact::Body::Text(text, _) => match serde_json::from_str::<Value>(&text) {
            Ok(value) => canonical(value).to_string(),
            Err(_) => text,
        },
        redact::Body::Withheld => {
            use sha2::Digest;
            format!("sha256:{:x}", sha2::Sha256::digest(body))
        }
    };
    Asked {
        method: method.to_ascii_uppercase(),
        path: path.trim_end_matches('/').to_owned(),
        query,
        body,
        dry_run,
    }
}

/// `value` with every object's fields in name order, so that two bodies
/// equal as values are equal as text.
fn canonical(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut fields: Vec<(String, Value)> = map.into_iter().collect();
            fields.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(fields.into_iter().map(|(k, v)| (k, canonical(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(canonical).collect()),
        other => other,
    }
}

/// The answers of a recording, by request.
pub(in crate::sandbox) struct Book {
    answers: Mutex<HashMap<Asked, (Vec<Recorded>, usize)>>,
    /// How many answers it holds.
    pub(in crate::sandbox) len: usize,
}

impl Book {
    /// Reads the recording at `path`.
    pub(in crate::sandbox) fn open(path: &Path) -> Result<Self, String> {
        Ok(Self::of(&har::read(path)?.log.entries))
    }

    /// The answers of `entries`.
    pub(in crate::sandbox) fn of(entries: &[Entry]) -> Self {
        let mut answers: HashMap<Asked, (Vec<Recorded>, usize)> = HashMap::new();
        let mut len = 0;
        for entry in entries {
            let Some(body) = entry.response_body() else {
                continue;
            };
            let key = asked(
                &entry.request.method,
                &entry.api_path(),
                entry.query().as_deref(),
                entry.dry_run(),
                &entry.request_body(),
            );
            let headers = entry
                .response
                .headers
                .iter()
                .filter(|p| {
                    http::HeaderName::from_bytes(p.name.as_bytes())
                        .is_ok_and(|n| !super::upstream::hop_header(&n) && n != http::header::CONTENT_ENCODING)
                })
                .map(|p| (p.name.clone(), p.value.clone()))
                .collect();
            answers.entry(key).or_default().0.push(Recorded {
                status: entry.response.status,
                headers,
                body,
            });
            len += 1;
        }
        Self {
            answers: Mutex::new(answers),
            len,
        }
    }

    /// The next recorded answer to this request, if one was recorded.
    pub(in crate::sandbox) fn answer(
        &self,
        method: &str,
        path: &str,
        query: Option<&str>,
        headers: &http::HeaderMap,
        body: &[u8],
    ) -> Option<Recorded> {
        let key = asked(method, path, query, crate::headers::is_dry_run(headers), body);
        let mut answers = self.answers.lock().unwrap_or_else(|p| p.into_inner());
        let (recorded, next) = answers.get_mut(&key)?;
        let at = (*next).min(recorded.len().checked_sub(1)?);
        *next = next.saturating_add(1);
        recorded.get(at).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::live::Exchange;
    use bytes::Bytes;

    fn entry(url: &str, body: &str, answer: &str) -> Entry {
        Entry::of(
            &Exchange {
                started: chrono::Utc::now(),
                elapsed_ms: 1.0,
                wait_ms: 1.0,
                method: "POST".into(),
                url: url::Url::parse(url).expect("a URL"),
                path: url::Url::parse(url)
                    .expect("a URL")
                    .path()
                    .trim_start_matches("/api/ext")
                    .to_owned(),
                request_headers: http::HeaderMap::new(),
                request_body: Bytes::from(body.to_owned()),
                status: 200,
                response_headers: http::HeaderMap::new(),
                response_body: Bytes::from(answer.to_owned()),
                response_size: answer.len() as u64,
                key: None,
            },
            None,
        )
    }

    #[test]
    fn requests_match_by_value_and_answers_come_in_order() {
        let book = Book::of(&[
            // Answers of an operation the contract does not know keep their ids only.
            entry(
                "https://x/api/ext/b?a=1&b=2",
                r#"{"x": 1, "y": [1]}"#,
                r#"{"id":"first"}"#,
            ),
            entry(
                "https://x/api/ext/b?a=1&b=2",
                r#"{"x": 1, "y": [1]}"#,
                r#"{"id":"second"}"#,
            ),
        ]);
        let none = http::HeaderMap::new();
        let ask = |q, b: &str| {
            book.answer("post", "/b", Some(q), &none, b.as_bytes())
                .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        };
        assert_eq!(
            ask("b=2&a=1", r#"{"y":[1],"x":1}"#).as_deref(),
            Some(r#"{"id":"first"}"#)
        );
        assert_eq!(
            ask("a=1&b=2", r#"{"x":1,"y":[1]}"#).as_deref(),
            Some(r#"{"id":"second"}"#)
        );
        assert_eq!(
            ask("a=1&b=2", r#"{"x":1,"y":[1]}"#).as_deref(),
            Some(r#"{"id":"second"}"#)
        );
        assert_eq!(ask("a=1&b=2", r#"{"x":2,"y":[1]}"#), None);
        assert_eq!(ask("a=1", r#"{"x":1,"y":[1]}"#), None);
    }

    #[test]
    fn a_secret_in_the_request_matches_its_redacted_recording() {
        let book = Book::of(&[entry("https://x/api/ext/w", r#"{"secret": "s1", "url": "u"}"#, "ok")]);
        let none = http::HeaderMap::new();
        assert!(
            book.answer("POST", "/w", None, &none, br#"{"secret": "another", "url": "u"}"#)
                .is_some()
        );
        assert!(
            book.answer("POST", "/w", None, &none, br#"{"secret": "s1", "url": "v"}"#)
                .is_none()
        );
        let mut preview = http::HeaderMap::new();
        preview.insert("x-tokportal-dry-run", http::HeaderValue::from_static("true"));
        assert!(
            book.answer("POST", "/w", None, &preview, br#"{"secret": "s1", "url": "u"}"#)
                .is_none(),
            "a dry run is not the real call"
        );
    }
}
