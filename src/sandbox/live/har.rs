//! HAR 1.2 (the HTTP Archive format browsers' devtools export and import):
//! the document, an [`Entry`] made from an [`Exchange`] with its secrets
//! redacted, the [`Recorder`] that appends to a file, and [`read`].
//!
//! The recorder keeps the file a whole HAR document after every exchange:
//! it is written as one header, the entries one a line, and a closing
//! trailer, which each new entry is written over (`--record` on a file
//! that exists continues it). A recording is made 0600: it names the
//! caller's resources, even with its secrets redacted.

use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use base64::Engine;
use chrono::SecondsFormat;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Exchange;
use super::redact;
use crate::operations::Operation;

/// An answer's body is recorded up to this many bytes (beyond, the entry
/// says it was cut, and replay does not serve it).
pub(in crate::sandbox) const BODY_RECORDED: usize = 8 * 1024 * 1024;
/// A recording stops growing at this size: later exchanges are still
/// passed through and checked, and the log says once that they are not
/// recorded.
const MAX_RECORDING: u64 = 256 * 1024 * 1024;
/// The largest recording read (`--replay`, `sandbox drift`, `fixtures-from`).
const MAX_READ: u64 = MAX_RECORDING;

/// A HAR document.
#[derive(Debug, Serialize, Deserialize)]
pub(in crate::sandbox) struct Har {
    pub(in crate::sandbox) log: Log,
}

/// Its `log`.
#[derive(Debug, Serialize, Deserialize)]
pub(in crate::sandbox) struct Log {
    pub(in crate::sandbox) version: String,
    pub(in crate::sandbox) creator: Creator,
    #[serde(default)]
    pub(in crate::sandbox) entries: Vec<Entry>,
}

/// The program that wrote it.
#[derive(Debug, Serialize, Deserialize)]
pub(in crate::sandbox) struct Creator {
    pub(in crate::sandbox) name: String,
    pub(in crate::sandbox) version: String,
}

/// One exchange.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(in crate::sandbox) struct Entry {
    pub(in crate::sandbox) started_date_time: String,
    pub(in crate::sandbox) time: f64,
    pub(in crate::sandbox) request: Request,
    pub(in crate::sandbox) response: Response,
    #[serde(default)]
    pub(in crate::sandbox) cache: Value,
    #[serde(default)]
    pub(in crate::sandbox) timings: Timings,
    /// What the sandbox adds (HAR's custom fields start with `_`).
    #[serde(rename = "_tokportal", default, skip_serializing_if = "Option::is_none")]
    pub(in crate::sandbox) tokportal: Option<Note>,
}

/// A name and a value (headers, query parameters).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(in crate::sandbox) struct Pair {
    pub(in crate::sandbox) name: String,
    pub(in crate::sandbox) value: String,
}

/// The request.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(in crate::sandbox) struct Request {
    pub(in crate::sandbox) method: String,
    pub(in crate::sandbox) url: String,
    #[serde(default)]
    pub(in crate::sandbox) http_version: String,
    #[serde(default)]
    pub(in crate::sandbox) cookies: Vec<Value>,
    #[serde(default)]
    pub(in crate::sandbox) headers: Vec<Pair>,
    #[serde(default)]
    pub(in crate::sandbox) query_string: Vec<Pair>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(in crate::sandbox) post_data: Option<PostData>,
    #[serde(default = "unknown")]
    pub(in crate::sandbox) headers_size: i64,
    #[serde(default = "unknown")]
    pub(in crate::sandbox) body_size: i64,
}

/// A request's body.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(in crate::sandbox) struct PostData {
    #[serde(default)]
    pub(in crate::sandbox) mime_type: String,
    #[serde(default)]
    pub(in crate::sandbox) text: String,
    /// `base64` when `text` is the body base64-encoded (HAR has no field
    /// for it in a request; devtools leave such bodies out).
    #[serde(rename = "_encoding", default, skip_serializing_if = "Option::is_none")]
    pub(in crate::sandbox) encoding: Option<String>,
}

/// The answer.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(in crate::sandbox) struct Response {
    pub(in crate::sandbox) status: u16,
    #[serde(default)]
    pub(in crate::sandbox) status_text: String,
    #[serde(default)]
    pub(in crate::sandbox) http_version: String,
    #[serde(default)]
    pub(in crate::sandbox) cookies: Vec<Value>,
    #[serde(default)]
    pub(in crate::sandbox) headers: Vec<Pair>,
    pub(in crate::sandbox) content: Content,
    #[serde(rename = "redirectURL", default)]
    pub(in crate::sandbox) redirect_url: String,
    #[serde(default = "unknown")]
    pub(in crate::sandbox) headers_size: i64,
    #[serde(default = "unknown")]
    pub(in crate::sandbox) body_size: i64,
}

/// The answer's body.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(in crate::sandbox) struct Content {
    pub(in crate::sandbox) size: i64,
    #[serde(default)]
    pub(in crate::sandbox) mime_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(in crate::sandbox) text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(in crate::sandbox) encoding: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(in crate::sandbox) comment: Option<String>,
}

/// Times in milliseconds.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(in crate::sandbox) struct Timings {
    #[serde(default)]
    pub(in crate::sandbox) send: f64,
    #[serde(default)]
    pub(in crate::sandbox) wait: f64,
    #[serde(default)]
    pub(in crate::sandbox) receive: f64,
}

/// The sandbox's own note on an entry (`_tokportal`).
#[derive(Debug, Default, Serialize, Deserialize)]
pub(in crate::sandbox) struct Note {
    /// The contract's operationId, when the contract knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(in crate::sandbox) operation: Option<String>,
    /// The path below the API's base.
    #[serde(default)]
    pub(in crate::sandbox) path: String,
    /// The key's fingerprint (8 hex digits of its SHA-256), never the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(in crate::sandbox) key: Option<String>,
    /// What was redacted: `request.body`, `response.body`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(in crate::sandbox) redacted: Vec<String>,
    /// The answer's body was longer than what was recorded.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(in crate::sandbox) truncated: bool,
}

fn unknown() -> i64 {
    -1
}

/// A request's body as a recording keeps it: redacted, and withheld past
/// [`BODY_RECORDED`].
pub(in crate::sandbox) fn recorded_request(body: &[u8]) -> redact::Body {
    if body.len() > BODY_RECORDED {
        redact::Body::Withheld
    } else {
        redact::body(body, false)
    }
}

/// An answer's body as a recording keeps it: redacted, whole for a
/// secret-bearing or unknown operation's success ([`redact::whole`]).
pub(in crate::sandbox) fn recorded_response(body: &[u8], op: Option<&Operation>, status: u16) -> redact::Body {
    redact::body(body, redact::whole(op, status))
}

/// HAR's `headers` of `map`, secrets redacted.
fn pairs(map: &http::HeaderMap) -> Vec<Pair> {
    map.iter()
        .map(|(name, value)| Pair {
            name: name.as_str().to_owned(),
            value: redact::header(name.as_str(), value.as_bytes()),
        })
        .collect()
}

fn content_type(map: &http::HeaderMap) -> String {
    map.get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

impl Entry {
    /// `exchange` as recorded: credentials, secret-named fields and the
    /// answer of a secret-bearing operation redacted.
    #[cfg(test)]
    pub(in crate::sandbox) fn of(exchange: &Exchange, op: Option<&Operation>) -> Self {
        let request = recorded_request(&exchange.request_body);
        let response = recorded_response(&exchange.response_body, op, exchange.status);
        Self::of_redacted(exchange, op, &request, &response)
    }

    /// `exchange` as recorded, its bodies already redacted by
    /// [`recorded_request`] and [`recorded_response`] (a proxy redacts them
    /// once for the recording, the journal and the drift check).
    pub(in crate::sandbox) fn of_redacted(
        exchange: &Exchange,
        op: Option<&Operation>,
        request: &redact::Body,
        response: &redact::Body,
    ) -> Self {
        let mut redacted = Vec::new();
        let query = redact::query(exchange.url.query());
        let mut url = exchange.url.clone();
        if url.query().is_some() {
            url.query_pairs_mut().clear().extend_pairs(&query);
        }
        let post_data = (!exchange.request_body.is_empty()).then(|| {
            let (text, changed) = request.recorded();
            if changed {
                redacted.push("request.body".to_owned());
            }
            PostData {
                mime_type: content_type(&exchange.request_headers),
                text: text.to_owned(),
                encoding: None,
            }
        });
        let truncated = exchange.response_size > exchange.response_body.len() as u64;
        let (text, changed) = response.recorded();
        if changed {
            redacted.push("response.body".to_owned());
        }
        let comment = match response {
            redact::Body::Withheld => Some("not recorded: not text, or a secret-bearing answer".to_owned()),
            redact::Body::Text(..) => truncated.then(|| format!("cut at {} bytes", exchange.response_body.len())),
        };
        let content = Content {
            size: i64::try_from(exchange.response_size).unwrap_or(i64::MAX),
            mime_type: content_type(&exchange.response_headers),
            text: Some(text.to_owned()),
            encoding: None,
            comment,
        };
        let status_text = http::StatusCode::from_u16(exchange.status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or_default()
            .to_owned();
        Entry {
            started_date_time: exchange.started.to_rfc3339_opts(SecondsFormat::Millis, true),
            time: exchange.elapsed_ms,
            request: Request {
                method: exchange.method.clone(),
                url: url.to_string(),
                http_version: "HTTP/1.1".into(),
                cookies: Vec::new(),
                headers: pairs(&exchange.request_headers),
                query_string: query.into_iter().map(|(name, value)| Pair { name, value }).collect(),
                body_size: i64::try_from(exchange.request_body.len()).unwrap_or(i64::MAX),
                post_data,
                headers_size: -1,
            },
            response: Response {
                status: exchange.status,
                status_text,
                http_version: "HTTP/1.1".into(),
                cookies: Vec::new(),
                headers: pairs(&exchange.response_headers),
                content,
                redirect_url: String::new(),
                headers_size: -1,
                body_size: i64::try_from(exchange.response_size).unwrap_or(i64::MAX),
            },
            cache: Value::Object(Default::default()),
            timings: Timings {
                send: 0.0,
                wait: exchange.wait_ms,
                receive: (exchange.elapsed_ms - exchange.wait_ms).max(0.0),
            },
            tokportal: Some(Note {
                operation: op.map(|op| op.id.to_owned()),
                path: exchange.path.clone(),
                key: exchange.key.clone(),
                redacted,
                truncated,
            }),
        }
    }

    /// The path below the API's base: the sandbox's note, or the URL's
    /// path after `/api/ext` (a recording from a browser's devtools).
    pub(in crate::sandbox) fn api_path(&self) -> String {
        if let Some(note) = self.tokportal.as_ref().filter(|n| !n.path.is_empty()) {
            return note.path.clone();
        }
        let path =
            url::Url::parse(&self.request.url).map_or_else(|_| self.request.url.clone(), |u| u.path().to_owned());
        match path.find("/api/ext") {
            Some(at) if path[at + 8..].is_empty() || path[at + 8..].starts_with('/') => path[at + 8..].to_owned(),
            _ => path,
        }
    }

    /// The raw query of the request's URL.
    pub(in crate::sandbox) fn query(&self) -> Option<String> {
        url::Url::parse(&self.request.url)
            .ok()
            .and_then(|u| u.query().map(str::to_owned))
    }

    /// The answer's body as bytes, when it was recorded whole.
    pub(in crate::sandbox) fn response_body(&self) -> Option<Vec<u8>> {
        if self.tokportal.as_ref().is_some_and(|n| n.truncated) {
            return None;
        }
        let text = self.response.content.text.as_deref().unwrap_or_default();
        match self.response.content.encoding.as_deref() {
            Some("base64") => base64::engine::general_purpose::STANDARD.decode(text).ok(),
            _ => Some(text.as_bytes().to_vec()),
        }
    }

    /// The request's body as recorded (redacted), as bytes.
    pub(in crate::sandbox) fn request_body(&self) -> Vec<u8> {
        let Some(post) = &self.request.post_data else {
            return Vec::new();
        };
        match post.encoding.as_deref() {
            Some("base64") => base64::engine::general_purpose::STANDARD
                .decode(&post.text)
                .unwrap_or_default(),
            _ => post.text.as_bytes().to_vec(),
        }
    }

    /// Whether the request was a dry run, by the one rule of
    /// `X-TokPortal-Dry-Run` ([`crate::headers::is_dry_run`]).
    pub(in crate::sandbox) fn dry_run(&self) -> bool {
        let mut asked = http::HeaderMap::new();
        for h in self
            .request
            .headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(crate::headers::DRY_RUN))
        {
            if let Ok(value) = http::HeaderValue::from_str(&h.value) {
                asked.append(crate::headers::DRY_RUN, value);
            }
        }
        crate::headers::is_dry_run(&asked)
    }

    /// A header of the answer.
    pub(in crate::sandbox) fn response_header(&self, name: &str) -> Option<&str> {
        self.response
            .headers
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
            .map(|p| p.value.as_str())
    }
}

/// Reads a HAR file (any HAR 1.1 or 1.2 document, ours or a browser's).
pub(in crate::sandbox) fn read(path: &Path) -> Result<Har, String> {
    let shown = path.display();
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read the recording {shown}: {e}"))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    if size > MAX_READ {
        return Err(format!(
            "the recording {shown} is {size} bytes, more than the {MAX_READ} read"
        ));
    }
    serde_json::from_reader(std::io::BufReader::new(file)).map_err(|e| format!("{shown} is not a HAR document: {e}"))
}

/// Appends entries to a recording, keeping it a whole HAR document.
pub(in crate::sandbox) struct Recorder {
    path: PathBuf,
    file: Mutex<Open>,
}

struct Open {
    file: std::fs::File,
    entries: usize,
    size: u64,
    /// Said once: the recording reached [`MAX_RECORDING`].
    full: bool,
}

const TRAILER: &[u8] = b"\n]}}\n";

impl Recorder {
    /// Opens `path` for recording (made 0600): an existing recording's
    /// entries are kept, and new ones follow them.
    pub(in crate::sandbox) fn open(path: &Path) -> Result<Self, String> {
        let shown = path.display();
        let earlier = match std::fs::metadata(path) {
            Ok(m) if m.len() > 0 => read(path)?.log.entries,
            _ => Vec::new(),
        };
        let mut options = std::fs::OpenOptions::new();
        options.read(true).write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options
            .open(path)
            .map_err(|e| format!("cannot write the recording {shown}: {e}"))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = file.set_permissions(std::fs::Permissions::from_mode(0o600));
        }
        let creator = serde_json::json!({"name": "tokportal", "version": env!("CARGO_PKG_VERSION")});
        // `{"log":{"version":"1.2","creator":{…},"entries":[` then the entries, one a line.
        let mut text = format!("{{\"log\":{{\"version\":\"1.2\",\"creator\":{creator},\"entries\":[\n");
        for (i, entry) in earlier.iter().enumerate() {
            if i > 0 {
                text.push_str(",\n");
            }
            text.push_str(&serde_json::to_string(entry).map_err(|e| e.to_string())?);
        }
        let write = |file: &mut std::fs::File| -> std::io::Result<()> {
            file.write_all(text.as_bytes())?;
            file.write_all(TRAILER)?;
            file.flush()
        };
        write(&mut file).map_err(|e| format!("cannot write the recording {shown}: {e}"))?;
        let size = (text.len() + TRAILER.len()) as u64;
        Ok(Self {
            path: path.to_owned(),
            file: Mutex::new(Open {
                file,
                entries: earlier.len(),
                size,
                full: false,
            }),
        })
    }

    /// Writes `entry` over the trailer, then the trailer again.
    pub(in crate::sandbox) fn append(&self, entry: &Entry) {
        let Ok(line) = serde_json::to_string(entry) else {
            return;
        };
        let mut open = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if open.size + line.len() as u64 > MAX_RECORDING {
            if !open.full {
                open.full = true;
                tracing::warn!(
                    target: "tokportal::sandbox",
                    "the recording {} reached {MAX_RECORDING} bytes: later exchanges are not recorded",
                    self.path.display()
                );
            }
            return;
        }
        let separator: &[u8] = if open.entries > 0 { b",\n" } else { b"" };
        let at = open.size - TRAILER.len() as u64;
        let written = (|| -> std::io::Result<()> {
            open.file.seek(SeekFrom::Start(at))?;
            open.file.write_all(separator)?;
            open.file.write_all(line.as_bytes())?;
            open.file.write_all(TRAILER)?;
            open.file.flush()
        })();
        match written {
            Ok(()) => {
                open.entries += 1;
                open.size = at + (separator.len() + line.len() + TRAILER.len()) as u64;
            }
            Err(e) => tracing::warn!(
                target: "tokportal::sandbox",
                "cannot write the recording {}: {e}",
                self.path.display()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn exchange(status: u16, body: &str) -> Exchange {
        let mut request_headers = http::HeaderMap::new();
        request_headers.insert("x-api-key", http::HeaderValue::from_static("sk_live_secret"));
        request_headers.insert("content-type", http::HeaderValue::from_static("application/json"));
        Exchange {
            started: chrono::Utc::now(),
            elapsed_ms: 3.0,
            wait_ms: 2.0,
            method: "POST".into(),
            url: url::Url::parse("https://api.example/api/ext/webhooks?token=t1&page=1").expect("a URL"),
            path: "/webhooks".into(),
            request_headers,
            request_body: Bytes::from_static(b"{\"url\":\"https://h.example\"}"),
            status,
            response_headers: http::HeaderMap::new(),
            response_body: Bytes::from(body.to_owned()),
            response_size: body.len() as u64,
            key: Some("abcd1234".into()),
        }
    }

    #[test]
    fn a_recording_is_a_whole_document_after_each_entry_and_keeps_no_secret() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("r.har");
        let op = crate::operations::find("createWebhookEndpoint");
        let recorder = Recorder::open(&path).expect("opened");
        assert_eq!(read(&path).expect("empty HAR").log.entries.len(), 0);
        recorder.append(&Entry::of(
            &exchange(201, "{\"data\":{\"id\":\"w_1\",\"secret\":\"whsec_1\",\"url\":\"u\"}}"),
            op,
        ));
        recorder.append(&Entry::of(
            &exchange(400, "{\"error\":{\"code\":\"X\",\"message\":\"m\"}}"),
            op,
        ));
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(
            !text.contains("sk_live_secret") && !text.contains("whsec_1") && !text.contains("t1"),
            "{text}"
        );
        let har = read(&path).expect("a HAR document");
        assert_eq!(har.log.version, "1.2");
        assert_eq!(har.log.entries.len(), 2);
        assert_eq!(
            har.log.entries[0].response_body().as_deref(),
            Some(&b"{\"data\":{\"id\":\"w_1\",\"secret\":\"[redacted]\",\"url\":\"[redacted]\"}}"[..])
        );
        // The error answer of a secret-bearing operation holds no secret: kept.
        assert!(
            String::from_utf8_lossy(&har.log.entries[1].response_body().unwrap_or_default()).contains("\"code\":\"X\"")
        );
        // Opening it again continues it.
        drop(recorder);
        let again = Recorder::open(&path).expect("reopened");
        again.append(&Entry::of(&exchange(201, "{}"), op));
        assert_eq!(read(&path).expect("a HAR document").log.entries.len(), 3);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("metadata").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn a_dry_run_is_read_by_the_one_rule() {
        let mut entry = Entry::of(&exchange(200, "{}"), None);
        let with = |entry: &mut Entry, values: &[&str]| {
            entry.request.headers = values
                .iter()
                .map(|v| Pair {
                    name: "X-TokPortal-Dry-Run".into(),
                    value: (*v).into(),
                })
                .collect();
            entry.dry_run()
        };
        assert!(with(&mut entry, &["true"]) && with(&mut entry, &[" TRUE "]));
        assert!(!with(&mut entry, &["false"]) && !with(&mut entry, &["1"]) && !with(&mut entry, &[]));
        assert!(
            !with(&mut entry, &["true", "false"]),
            "two that disagree are no preview"
        );
    }

    #[test]
    fn paths_of_a_browsers_recording() {
        let mut entry = Entry::of(&exchange(200, "{}"), None);
        entry.tokportal = None;
        assert_eq!(entry.api_path(), "/webhooks");
        entry.request.url = "https://app.tokportal.com/me".into();
        assert_eq!(entry.api_path(), "/me");
    }
}
