//! The sandbox's controls from Rust: a key's clock ([`SandboxClock`]) and
//! verification ([`Verify`]). They speak the sandbox's own HTTP routes
//! (`/_sandbox/clock`, `/_sandbox/verify`), as the Python fixture, the Node
//! handle and the CLI do, so every surface drives the same thing.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{Sandbox, SandboxError};
use crate::secret::Secret;

/// The largest control answer read (an advance of many bundles names each
/// transition).
const MAX_ANSWER: usize = 64 * 1024 * 1024;

/// One step the manager will take, as a clock lists it.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[non_exhaustive]
pub struct PendingStep {
    /// When it falls due.
    pub at: DateTime<Utc>,
    /// `account` or `video`.
    pub resource: String,
    /// The bundle it is on.
    pub bundle_id: String,
    /// The video's position, for a video.
    pub position: Option<u32>,
    /// The step, by the event it will send (`account.in_review`).
    pub step: String,
}

/// A key's clock.
#[derive(Debug, Clone, Deserialize)]
#[non_exhaustive]
pub struct ClockState {
    /// The key's now.
    pub now: DateTime<Utc>,
    /// Whether the key is on a simulated clock (else real time).
    pub simulated: bool,
    /// The manager's delays (`{"account": "48h", ...}`), on a simulated clock.
    pub delays: Option<Value>,
    /// The manager's steps waiting on the clock, in time order.
    pub pending: Vec<PendingStep>,
    /// When the next step falls due.
    pub next_at: Option<DateTime<Utc>>,
}

/// One transition an advance made.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[non_exhaustive]
pub struct Transition {
    /// When it happened, on the key's clock.
    pub at: DateTime<Utc>,
    /// `account` or `video`.
    pub resource: String,
    /// The account's or video's id.
    pub id: Option<String>,
    /// The status before.
    pub from: Option<String>,
    /// The status after (the same as `from` when a download issue held it).
    pub to: String,
    /// The webhook event it sent (none when a download issue held it).
    pub event: Option<String>,
}

/// What an advance did.
#[derive(Debug, Clone, Deserialize)]
#[non_exhaustive]
pub struct Advanced {
    /// The key's now after it.
    pub now: DateTime<Utc>,
    /// Every transition, in time order.
    pub transitions: Vec<Transition>,
    /// Steps still waiting.
    pub pending: usize,
}

/// A key's clock in a running sandbox ([`Sandbox::clock`]).
pub struct SandboxClock<'a> {
    sandbox: &'a Sandbox,
    key: Secret,
}

impl std::fmt::Debug for SandboxClock<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxClock")
            .field("sandbox", &self.sandbox.url())
            .finish_non_exhaustive()
    }
}

impl Sandbox {
    /// The clock of `api_key`: freeze it, advance it, put it back on real time.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let sandbox = tokportal::sandbox::Sandbox::start().await?;
    /// let clock = sandbox.clock("sk_test_clock");
    /// clock.freeze_at("2026-06-01T00:00:00Z".parse()?).await?;
    /// // ... publish a bundle with sandbox.client("sk_test_clock") ...
    /// let advanced = clock.advance("48h").await?;
    /// for t in &advanced.transitions {
    ///     println!("{} {} {:?} -> {}", t.at, t.resource, t.from, t.to);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn clock(&self, api_key: impl Into<Secret>) -> SandboxClock<'_> {
        SandboxClock {
            sandbox: self,
            key: api_key.into(),
        }
    }

    /// Checks that what `verify` describes happened as often as it says
    /// (since start or the last reset): `Ok` with the count found, or
    /// [`SandboxError::NotVerified`] with the count and the closest requests.
    ///
    /// ```no_run
    /// # async fn run(sandbox: &tokportal::sandbox::Sandbox) -> Result<(), tokportal::sandbox::SandboxError> {
    /// use tokportal::sandbox::Verify;
    /// sandbox.verify(Verify::operation("createBundle").key("sk_test_a").times(1)).await?;
    /// sandbox.verify(Verify::event("account.in_review").at_least(1)).await?;
    /// # Ok(()) }
    /// ```
    pub async fn verify(&self, verify: Verify) -> Result<u64, SandboxError> {
        let key = verify.key.clone();
        let answer = control(
            self,
            key.as_ref(),
            reqwest::Method::POST,
            "verify",
            Some(Value::Object(verify.body)),
        )
        .await?;
        Ok(answer["found"].as_u64().unwrap_or_default())
    }
}

impl SandboxClock<'_> {
    /// The clock as it stands.
    pub async fn get(&self) -> Result<ClockState, SandboxError> {
        self.call(reqwest::Method::GET, "clock", None).await
    }

    /// Puts the key on a simulated clock standing still at `at`, with the
    /// default delays.
    pub async fn freeze_at(&self, at: DateTime<Utc>) -> Result<ClockState, SandboxError> {
        self.freeze(Some(at), &[]).await
    }

    /// Puts the key on a simulated clock at `at` (now by default) with
    /// `delays` (`[("account", "72h")]`; the others the defaults). A key on
    /// a simulated clock already only changes its delays.
    pub async fn freeze(&self, at: Option<DateTime<Utc>>, delays: &[(&str, &str)]) -> Result<ClockState, SandboxError> {
        let mut body = Map::new();
        if let Some(at) = at {
            body.insert("frozen_at".into(), json!(at.to_rfc3339()));
        }
        let delays: Map<String, Value> = delays.iter().map(|(k, v)| ((*k).to_owned(), json!(v))).collect();
        body.insert("delays".into(), Value::Object(delays));
        self.call(reqwest::Method::POST, "clock", Some(Value::Object(body)))
            .await
    }

    /// Moves the clock forward `by` (`"36h"`, `"3d"`, `"1d12h"`), doing
    /// every step that falls due on the way; it returns once each of their
    /// webhooks has had its first delivery attempt.
    pub async fn advance(&self, by: &str) -> Result<Advanced, SandboxError> {
        self.call(reqwest::Method::POST, "clock/advance", Some(json!({ "by": by })))
            .await
    }

    /// Moves the clock forward to `to`, as [`SandboxClock::advance`].
    pub async fn advance_to(&self, to: DateTime<Utc>) -> Result<Advanced, SandboxError> {
        self.call(
            reqwest::Method::POST,
            "clock/advance",
            Some(json!({ "to": to.to_rfc3339() })),
        )
        .await
    }

    /// Puts the key back on real time (steps still waiting are dropped).
    pub async fn real_time(&self) -> Result<ClockState, SandboxError> {
        self.call(reqwest::Method::DELETE, "clock", None).await
    }

    /// Makes the account manager flag video `position` of `bundle_id` with a
    /// download issue at its next step.
    pub async fn flag_download_issue(&self, bundle_id: &str, position: u32) -> Result<(), SandboxError> {
        let body = json!({"bundle_id": bundle_id, "position": position, "flag": "download_issue"});
        control(
            self.sandbox,
            Some(&self.key),
            reqwest::Method::POST,
            "manager",
            Some(body),
        )
        .await?;
        Ok(())
    }

    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        method: reqwest::Method,
        route: &str,
        body: Option<Value>,
    ) -> Result<T, SandboxError> {
        let answer = control(self.sandbox, Some(&self.key), method, route, body).await?;
        serde_json::from_value(answer).map_err(|e| SandboxError::Control {
            status: 200,
            code: "UNEXPECTED_ANSWER".into(),
            message: format!("the sandbox's answer to {route} is not what this build reads: {e}"),
        })
    }
}

/// A verification: what to count, and how often it should have happened
/// (at least once unless told).
#[derive(Debug, Clone, Default)]
pub struct Verify {
    body: Map<String, Value>,
    key: Option<Secret>,
}

impl Verify {
    /// Requests of `operation` (an operation id: `createBundle`).
    pub fn operation(operation: &str) -> Self {
        Self::default().with("operation", json!(operation))
    }

    /// Webhook deliveries of `event` (`account.in_review`).
    pub fn event(event: &str) -> Self {
        Self::default().with("event", json!(event))
    }

    /// Requests of any operation.
    pub fn requests() -> Self {
        Self::default()
    }

    /// Only `api_key`'s.
    pub fn key(mut self, api_key: impl Into<Secret>) -> Self {
        self.key = Some(api_key.into());
        self
    }

    /// Only answers of `status`: `201`, a class `"4xx"`, or `"closed"`.
    pub fn status(self, status: impl std::fmt::Display) -> Self {
        self.with("status", json!(status.to_string()))
    }

    /// Only dry runs (`true`) or only real calls (`false`).
    pub fn dry_run(self, dry_run: bool) -> Self {
        self.with("dry_run", json!(dry_run))
    }

    /// Only replays of a kept idempotency key (`true`) or only first answers.
    pub fn replayed(self, replayed: bool) -> Self {
        self.with("replayed", json!(replayed))
    }

    /// Exactly `n` times.
    pub fn times(self, n: u64) -> Self {
        self.count("times", n)
    }

    /// At least `n` times.
    pub fn at_least(self, n: u64) -> Self {
        self.count("at_least", n)
    }

    /// At most `n` times.
    pub fn at_most(self, n: u64) -> Self {
        self.count("at_most", n)
    }

    fn count(mut self, name: &str, n: u64) -> Self {
        for other in ["times", "at_least", "at_most"] {
            self.body.remove(other);
        }
        self.with(name, json!(n))
    }

    fn with(mut self, name: &str, value: Value) -> Self {
        self.body.insert(name.into(), value);
        self
    }
}

/// One request to a control route; the answer's `data`, or the refusal.
async fn control(
    sandbox: &Sandbox,
    key: Option<&Secret>,
    method: reqwest::Method,
    route: &str,
    body: Option<Value>,
) -> Result<Value, SandboxError> {
    let unreachable = |e: reqwest::Error| SandboxError::Control {
        status: 0,
        code: "UNREACHABLE".into(),
        message: format!(
            "the sandbox did not answer /_sandbox/{route}: {}",
            crate::error::one_line(&e)
        ),
    };
    let mut request = sandbox
        .http
        .request(method, format!("{}/_sandbox/{route}", sandbox.url()));
    if let Some(key) = key {
        request = request.header(crate::headers::API_KEY, key.expose());
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let mut answer = request.send().await.map_err(unreachable)?;
    let status = answer.status().as_u16();
    let mut bytes = Vec::new();
    while let Some(chunk) = answer.chunk().await.map_err(unreachable)? {
        if bytes.len() + chunk.len() > MAX_ANSWER {
            return Err(SandboxError::Control {
                status,
                code: "ANSWER_TOO_LARGE".into(),
                message: format!("the answer to /_sandbox/{route} is larger than {MAX_ANSWER} bytes"),
            });
        }
        bytes.extend_from_slice(&chunk);
    }
    let mut value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if (200..300).contains(&status) {
        return Ok(value["data"].take());
    }
    let error = value["error"].take();
    let code = error["code"].as_str().unwrap_or("UNKNOWN").to_owned();
    let message = error["message"].as_str().unwrap_or("the sandbox refused").to_owned();
    if code == "VERIFICATION_FAILED" {
        let details = &error["details"];
        return Err(SandboxError::NotVerified {
            found: details["found"].as_u64().unwrap_or_default(),
            message,
            closest: details["closest"].as_array().cloned().unwrap_or_default(),
        });
    }
    Err(SandboxError::Control { status, code, message })
}
