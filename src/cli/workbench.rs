//! What `listen`, `trigger` and `logs tail` share: they work against a
//! sandbox only, found and checked here before anything is sent, and they
//! follow its live feed (`GET /_sandbox/events`, Server-Sent Events read
//! with `sse-stream`, the parser rmcp's client uses too).
//!
//! A base URL on `tokportal.com` is refused without a request. Any other is
//! asked `GET /_sandbox/health`, without the API key: only a sandbox
//! answers it as one, and nothing that costs is sent before it has.

use std::time::Duration;

use clap::{Arg, ArgMatches};
use futures::{Stream, StreamExt};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::exit::{EXIT_TRANSPORT, EXIT_USAGE, Failure};
use super::flags::CallFlags;

/// The sandbox's address and the HTTP client to reach it.
pub(crate) struct Sandbox {
    /// The base URL as given (`http://127.0.0.1:PORT`, maybe `/api/ext`).
    pub(crate) base: String,
    http: reqwest::Client,
}

/// `--api-key` and `--base-url`, the only call options these commands take.
pub(crate) fn link_args() -> [Arg; 2] {
    [
        Arg::new("api_key")
            .long("api-key")
            .value_name("KEY")
            .help("API key (any sk_ key works with the sandbox); default $TOKPORTAL_API_KEY"),
        Arg::new("base_url")
            .long("base-url")
            .value_name("URL")
            .help("The sandbox's address (`tokportal sandbox` prints it); default $TOKPORTAL_BASE_URL"),
    ]
}

impl Sandbox {
    /// The sandbox the flags point at, checked to be one.
    pub(crate) async fn find(top: &ArgMatches, sub: &ArgMatches, command: &str) -> Result<Self, Failure> {
        let flags = CallFlags::read(top, sub);
        let Some(base) = flags.base_url else {
            return Err(not_a_sandbox(
                command,
                format!(
                    "no base URL is set, and the default ({}) is the TokPortal API; nothing was sent",
                    crate::DEFAULT_BASE_URL
                ),
            ));
        };
        let url =
            url::Url::parse(&base).map_err(|e| Failure::usage(format!("--base-url `{base}` is not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Failure::usage(format!(
                "--base-url `{base}` is not an http or https URL"
            )));
        }
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        if host == "tokportal.com" || host.ends_with(".tokportal.com") {
            return Err(not_a_sandbox(
                command,
                format!("{base} is the TokPortal API; nothing was sent"),
            ));
        }
        let http = crate::client::http_builder()
            .connect_timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(super::IDENTIFIER)
            .build()
            .map_err(|e| Failure::usage(format!("cannot build an HTTP client: {e}")))?;
        let sandbox = Self {
            base: base.trim_end_matches('/').to_owned(),
            http,
        };
        let probe = sandbox
            .http
            .get(sandbox.admin("health"))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .map_err(|e| Failure {
                code: EXIT_TRANSPORT,
                message: format!("error: cannot reach {base}: {}", crate::error::one_line(&e)),
            })?;
        let status = probe.status();
        let answer = small_json(probe).await;
        if !status.is_success() || answer["data"]["sandbox"] != Value::Bool(true) {
            return Err(not_a_sandbox(
                command,
                format!(
                    "{base} did not answer GET /_sandbox/health as a sandbox (HTTP {status}); that was the only request, without your key"
                ),
            ));
        }
        Ok(sandbox)
    }

    /// The address of the sandbox route `route` (`requests`, `events?...`).
    pub(crate) fn admin(&self, route: &str) -> String {
        format!("{}/_sandbox/{route}", self.base)
    }

    /// A client of the sandbox's API with `key`.
    pub(crate) fn client(&self, key: &str) -> Result<crate::Client, Failure> {
        crate::ClientBuilder::new()
            .client_identifier(super::IDENTIFIER)
            .base_url(self.base.as_str())
            .api_key(key)
            .build()
            .map_err(Failure::from)
    }

    /// The live feed (`GET /_sandbox/events?{query}`) as `(event, data)`
    /// pairs, from now on; it ends when the sandbox goes away.
    pub(crate) async fn follow(&self, query: &str) -> Result<impl Stream<Item = (String, Value)> + use<>, Failure> {
        let response = self
            .http
            .get(self.admin(&format!("events?{query}")))
            .header(http::header::ACCEPT, "text/event-stream")
            .send()
            .await
            .map_err(|e| Failure {
                code: EXIT_TRANSPORT,
                message: format!("error: cannot follow {}: {}", self.base, crate::error::one_line(&e)),
            })?;
        if !response.status().is_success() {
            let status = response.status();
            let body = small_json(response).await;
            let why = body["error"]["message"].as_str().unwrap_or_default().to_owned();
            return Err(Failure::usage(format!(
                "the sandbox refused to be followed (HTTP {status}): {why}"
            )));
        }
        let events = sse_stream::SseStream::from_bytes_stream(bounded_events(response.bytes_stream()))
            .take_while(|item| {
                if let Err(e) = item {
                    eprintln!("the feed broke off: {e}");
                }
                std::future::ready(item.is_ok())
            })
            .filter_map(|item| {
                std::future::ready(item.ok().and_then(|sse| {
                    let data = serde_json::from_str(sse.data.as_deref()?).ok()?;
                    Some((sse.event?, data))
                }))
            });
        Ok(events)
    }
}

/// The most of a control answer that is read (an advance over many
/// bundles names each transition).
const MAX_CONTROL_ANSWER: u64 = 64 * 1024 * 1024;

impl Sandbox {
    /// One request to a sandbox route that acts for `key` (the clock's):
    /// its `data`, or the refusal as a failure naming its code and message.
    pub(crate) async fn control(
        &self,
        method: reqwest::Method,
        route: &str,
        key: &str,
        body: Option<Value>,
    ) -> Result<Value, Failure> {
        let mut request = self
            .http
            .request(method, self.admin(route))
            .header(crate::headers::API_KEY, key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer = request.send().await.map_err(|e| Failure {
            code: EXIT_TRANSPORT,
            message: format!("error: cannot reach {}: {}", self.base, crate::error::one_line(&e)),
        })?;
        let status = answer.status();
        let body = match crate::pipeline::decode::buffer(answer, MAX_CONTROL_ANSWER).await {
            Ok(read) => serde_json::from_slice(&read.body).unwrap_or(Value::Null),
            Err(_) => Value::Null,
        };
        if status.is_success() {
            return Ok(body["data"].clone());
        }
        let error = &body["error"];
        Err(Failure {
            code: super::exit::EXIT_API,
            message: format!(
                "error: the sandbox refused (HTTP {status} {}): {}",
                error["code"].as_str().unwrap_or("?"),
                error["message"].as_str().unwrap_or("no message")
            ),
        })
    }
}

impl Sandbox {
    /// `GET /_sandbox/snapshot`: the whole document (one key's with `key`).
    pub(crate) async fn snapshot(&self, key: Option<&str>) -> Result<Value, Failure> {
        let mut request = self.http.get(self.admin("snapshot"));
        if let Some(key) = key {
            request = request.header(crate::headers::API_KEY, key);
        }
        self.answer(request, "snapshot", false).await
    }

    /// `POST /_sandbox/snapshot` with `doc`.
    pub(crate) async fn restore(&self, key: Option<&str>, doc: Value) -> Result<Value, Failure> {
        let mut request = self.http.post(self.admin("snapshot")).json(&doc);
        if let Some(key) = key {
            request = request.header(crate::headers::API_KEY, key);
        }
        self.answer(request, "snapshot", false).await
    }

    /// Sends `request`; the whole body (`whole`) or its `data`, or the
    /// refusal as a failure.
    async fn answer(&self, request: reqwest::RequestBuilder, route: &str, whole: bool) -> Result<Value, Failure> {
        let answer = request.send().await.map_err(|e| Failure {
            code: EXIT_TRANSPORT,
            message: format!("error: cannot reach {}: {}", self.base, crate::error::one_line(&e)),
        })?;
        let status = answer.status();
        let body = match crate::pipeline::decode::buffer(answer, MAX_CONTROL_ANSWER * 4).await {
            Ok(read) => serde_json::from_slice(&read.body).unwrap_or(Value::Null),
            Err(_) => Value::Null,
        };
        if status.is_success() {
            return Ok(if whole { body } else { body["data"].clone() });
        }
        let error = &body["error"];
        Err(Failure {
            code: super::exit::EXIT_API,
            message: format!(
                "error: the sandbox refused /_sandbox/{route} (HTTP {status} {}): {}",
                error["code"].as_str().unwrap_or("?"),
                error["message"].as_str().unwrap_or("no message")
            ),
        })
    }
}

/// The most of a health answer or a refusal that is read: a sandbox's are
/// a few hundred bytes, and whatever else answers may send without end.
const MAX_SMALL_ANSWER: u64 = 64 * 1024;

/// `response`'s body as JSON, read through the pipeline's bounded reader;
/// `null` when it is not JSON or is larger than [`MAX_SMALL_ANSWER`].
async fn small_json(response: reqwest::Response) -> Value {
    match crate::pipeline::decode::buffer(response, MAX_SMALL_ANSWER).await {
        Ok(read) => serde_json::from_slice(&read.body).unwrap_or(Value::Null),
        Err(_) => Value::Null,
    }
}

/// The most one event of the feed may hold. A sandbox's are a few KiB;
/// `sse-stream` keeps an event's lines whole, with no bound of its own.
const MAX_EVENT: usize = 1 << 20;

/// The feed's bytes, ended with an error once one event (what lies between
/// two blank lines, line ends as `\n` or `\r\n`) passes [`MAX_EVENT`].
fn bounded_events(
    bytes: impl Stream<Item = reqwest::Result<bytes::Bytes>>,
) -> impl Stream<Item = std::io::Result<bytes::Bytes>> {
    let (mut in_event, mut line_start) = (0usize, true);
    bytes.map(move |chunk| {
        let chunk = chunk.map_err(std::io::Error::other)?;
        for &byte in chunk.iter().filter(|b| **b != b'\r') {
            in_event = if byte == b'\n' && line_start { 0 } else { in_event + 1 };
            line_start = byte == b'\n';
        }
        if in_event > MAX_EVENT {
            return Err(std::io::Error::other(format!(
                "an event of more than {MAX_EVENT} bytes, which no sandbox sends"
            )));
        }
        Ok(chunk)
    })
}

fn not_a_sandbox(command: &str, why: String) -> Failure {
    Failure {
        code: EXIT_USAGE,
        message: format!(
            "error: `tokportal {command}` works only against a sandbox, and {why}. \
             Start one with `tokportal sandbox` and set TOKPORTAL_BASE_URL (or --base-url) to the address it prints."
        ),
    }
}

/// The fingerprint the sandbox gives `key`: the first 8 hex digits of its SHA-256.
pub(crate) fn fingerprint(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))[..8].to_owned()
}

/// The start of an answer, on one line: at most `max` characters.
pub(crate) fn snippet(text: &str, max: usize) -> String {
    let line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() <= max {
        return line;
    }
    let cut: String = line.chars().take(max).collect();
    format!("{cut}…")
}

/// Follows the feed through restarts of the sandbox: says `ready` on stderr
/// once it follows, and when the feed ends, says so and connects again
/// every second until it can.
pub(crate) async fn follow_forever<F, Fut>(
    sandbox: &Sandbox,
    query: &str,
    ready: &str,
    mut each: F,
) -> Result<(), Failure>
where
    F: FnMut(String, Value) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut first = true;
    loop {
        match sandbox.follow(query).await {
            Ok(events) => {
                let mut events = std::pin::pin!(events);
                while let Some((event, data)) = events.next().await {
                    if event == "ready" {
                        if first {
                            eprintln!("{ready}");
                        } else {
                            eprintln!("reconnected to {}", sandbox.base);
                        }
                        first = false;
                        continue;
                    }
                    each(event, data).await;
                }
                eprintln!("lost the sandbox at {}; reconnecting…", sandbox.base);
            }
            // Refused (bad filter): no use trying again.
            Err(f) if f.code == EXIT_USAGE => return Err(f),
            Err(_) if !first => {}
            Err(f) => return Err(f),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `bounded_events` lets through of `chunks`: the bytes, and whether it ended in an error.
    fn through(chunks: Vec<Vec<u8>>) -> (usize, bool) {
        let stream = futures::stream::iter(chunks.into_iter().map(|c| Ok(bytes::Bytes::from(c))));
        let items: Vec<_> = futures::executor::block_on(bounded_events(stream).collect());
        let passed = items
            .iter()
            .filter_map(|i| i.as_ref().ok())
            .map(bytes::Bytes::len)
            .sum();
        (passed, items.iter().any(Result::is_err))
    }

    #[test]
    fn many_small_events_pass_and_one_endless_event_ends_the_feed() {
        let event = |end: &str| format!("event: request\ndata: {}{end}{end}", "x".repeat(1000)).into_bytes();
        // 4 MiB of events, with either line end: all through.
        let small: Vec<_> = (0..4096)
            .map(|i| event(if i % 2 == 0 { "\n" } else { "\r\n" }))
            .collect();
        let total = small.iter().map(Vec::len).sum();
        assert_eq!(through(small), (total, false));
        // One event with no blank line: cut just past the bound.
        let endless: Vec<_> = std::iter::once(b"event: request\ndata: ".to_vec())
            .chain((0..64).map(|_| vec![b'x'; 64 * 1024]))
            .collect();
        let (passed, broke) = through(endless);
        assert!(broke, "the feed ends in an error");
        assert!(passed <= MAX_EVENT, "{passed} bytes passed");
    }
}
