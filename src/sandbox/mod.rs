//! Layer 6: an offline TokPortal (feature `sandbox`) that enforces the
//! vendored contract, keeps state per API key, delivers signed webhooks and
//! injects faults on demand. `tokportal sandbox` serves it; tests and the
//! quickstart start it in process.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let sandbox = tokportal::sandbox::Sandbox::start().await?;
//! let client = sandbox.client("sk_test_example")?;
//! let me = client.get_current_user().send().await?;
//! assert_eq!(me.data.credits.balance, 1000.0);
//! # Ok(()) }
//! ```
//!
//! Everything the server checks comes from the operation table, so a newer
//! vendored spec is enforced without hand edits. The sandbox is three rooms
//! and the contract they share, each room reading only those below it:
//! - `contract` (shared): paths, queries, JSON and multipart bodies against
//!   the spec's schemas (`VALIDATION_ERROR` naming each field), the error
//!   envelope, the spec's defaults and examples;
//! - `logbook` (bottom): the `journal` of every request and its live feed,
//!   and the `inspector` page at `/_sandbox/`;
//! - `world`: `state` per key and its API `keys`, the `vocabulary` of a
//!   call, `behaviour` per operation, webhook `deliveries`, the idempotency
//!   `replays` and the state file (`store`);
//! - `face` (top): the `server`, `routes`, what every request `shared`s,
//!   the request `flow`, `limits`, `faults` and the `admin` routes under
//!   `/_sandbox/`.

mod contract;
mod controls;
mod face;
mod fixtures;
mod live;
mod logbook;
mod world;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

pub use controls::{Advanced, ClockState, PendingStep, SandboxClock, Transition, Verify};
pub use live::drift::{DriftCount, DriftKind, DriftReport, Finding};

use crate::generated::Client;
use crate::secret::Secret;

/// Header that asks the sandbox for a fault: `503`, `500`, `502`, `429`,
/// `reset` (the connection is closed before anything is done), `lost` (the
/// request is carried out, then the connection is closed: the answer is
/// lost, and kept under its idempotency key), `slow` or `slow=SECONDS`
/// (the answer waits, 2 s by default, at most 120 s).
pub const FAULT_HEADER: &str = "x-sandbox-fault";

/// How long `Sandbox::shutdown` waits for proxied answers still being read
/// and recorded.
const RELAYS_AT_STOP: Duration = Duration::from_secs(30);

/// How a sandbox runs. The defaults suit a developer's machine and tests.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SandboxOptions {
    /// Address to bind (127.0.0.1 unless told otherwise).
    pub host: IpAddr,
    /// Port to bind; 0 picks a free one.
    pub port: u16,
    /// Share of requests, from 0 to 1, answered with a random fault (503,
    /// 429 or a closed connection) to exercise retry code.
    pub fault_rate: f64,
    /// Seed of the fault draw, for a repeatable run.
    pub seed: Option<u64>,
    /// Credits each new API key starts with.
    pub initial_credits: f64,
    /// Token-bucket size per API key (`X-RateLimit-Limit`).
    pub rate_limit: u32,
    /// Tokens added back per second.
    pub refill_per_second: f64,
    /// Waits before each new attempt of a failed webhook delivery; one
    /// attempt more than there are waits.
    pub webhook_retry_delays: Vec<Duration>,
    /// How long a webhook receiver has to answer.
    pub webhook_timeout: Duration,
    /// Share of webhook deliveries, from 0 to 1, sent twice with the same
    /// `TokPortal-Event-Id` (`--webhook-duplicates`): a receiver that does
    /// not deduplicate fails as it would in production.
    pub webhook_duplicates: f64,
    /// Accept what this contract version does not know (body properties,
    /// query parameters, enum values) as a newer TokPortal would: kept,
    /// echoed, and named in `X-Sandbox-Warning` and the log. Off by default:
    /// strict is what this contract version promises.
    pub lenient: bool,
    /// Requests the journal keeps (`GET /_sandbox/requests`, the inspector
    /// page); the oldest go first, and bodies are bounded in bytes too.
    /// 0 keeps none (the live feed still runs).
    pub journal: usize,
    /// The SQLite file the state lives in (`--state`); `None` keeps it in
    /// memory, lost when the sandbox stops.
    pub state: Option<std::path::PathBuf>,
    /// Fixture files (`--fixtures`, YAML or JSON): named steps that seed a
    /// key at start-up, through the same checks as any request; with a
    /// state file, only for keys it does not hold yet. A failing step stops
    /// start-up ([`SandboxError::Fixtures`]) and nothing of them is kept.
    pub fixtures: Vec<std::path::PathBuf>,
    /// Environment variables a fixture's `${env:NAME}` may read besides
    /// those named `TOKPORTAL_FIXTURE_*` (`--fixture-env NAME`); a fixture
    /// naming any other is refused at start-up, its value never shown.
    pub fixture_env: Vec<String>,
    /// Names a sandbox listening on loopback answers besides the loopback
    /// ones (`--allow-host NAME`: a container's or a remote machine's name).
    /// Any other `Host` is refused on every route (403), so that a
    /// DNS-rebinding page cannot reach the sandbox.
    pub allow_hosts: Vec<String>,
    /// The live API's base URL (`--proxy URL`, e.g.
    /// `https://app.tokportal.com/api/ext`): every API request goes there
    /// with the caller's own key, and its answer comes back unchanged,
    /// checked for drift against the contract (`GET /_sandbox/drift`).
    /// `https`, or `http` to loopback only.
    pub proxy: Option<String>,
    /// Appends each proxied exchange to this file as HAR 1.2 (`--record
    /// FILE`), its credentials and secrets redacted; made 0600.
    pub record: Option<std::path::PathBuf>,
    /// Lets a proxied paid call through (`--allow-spend`); without it, one
    /// is refused unsent with `403 PROXY_SPEND_NOT_ALLOWED` (dry runs pass).
    pub allow_spend: bool,
    /// Answers the requests a recording holds with its answers (`--replay
    /// FILE`); others are served as usual.
    pub replay: Option<std::path::PathBuf>,
    /// With `replay`, answers what the recording does not hold with `404
    /// NOT_RECORDED` (`--replay-strict`).
    pub replay_strict: bool,
}

impl Default for SandboxOptions {
    fn default() -> Self {
        Self {
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            fault_rate: 0.0,
            seed: None,
            initial_credits: 1000.0,
            rate_limit: 120,
            refill_per_second: 2.0,
            webhook_retry_delays: [1, 5, 30, 120].map(Duration::from_secs).to_vec(),
            webhook_timeout: Duration::from_secs(8),
            webhook_duplicates: 0.0,
            lenient: false,
            journal: 1000,
            state: None,
            fixtures: Vec::new(),
            fixture_env: Vec::new(),
            allow_hosts: Vec::new(),
            proxy: None,
            record: None,
            allow_spend: false,
            replay: None,
            replay_strict: false,
        }
    }
}

impl SandboxOptions {
    /// Checks the options before anything is bound.
    fn check(&self) -> Result<(), SandboxError> {
        if !(0.0..=1.0).contains(&self.fault_rate) {
            return Err(SandboxError::InvalidOption(format!(
                "fault rate {} is not between 0 and 1",
                self.fault_rate
            )));
        }
        if !(0.0..=1.0).contains(&self.webhook_duplicates) {
            return Err(SandboxError::InvalidOption(format!(
                "webhook duplicate rate {} is not between 0 and 1",
                self.webhook_duplicates
            )));
        }
        if self.rate_limit == 0 || !(self.refill_per_second > 0.0 && self.refill_per_second.is_finite()) {
            return Err(SandboxError::InvalidOption(
                "the rate limit and its refill must be positive".into(),
            ));
        }
        if self.journal > 1_000_000 {
            return Err(SandboxError::InvalidOption(format!(
                "a journal of {} requests is more than the 1000000 kept at most",
                self.journal
            )));
        }
        let refused = |why: &str| Err(SandboxError::InvalidOption(why.to_owned()));
        if self.proxy.is_none() && (self.record.is_some() || self.allow_spend) {
            return refused("--record and --allow-spend go with --proxy URL");
        }
        if self.proxy.is_some() && self.replay.is_some() {
            return refused("--proxy and --replay do not go together: record once, then replay offline");
        }
        if self.proxy.is_some() && !self.fixtures.is_empty() {
            return refused(
                "--fixtures would be sent to the live API through --proxy; start them on a sandbox of its own",
            );
        }
        if self.replay_strict && self.replay.is_none() {
            return refused("--replay-strict goes with --replay FILE");
        }
        if !(self.initial_credits >= 0.0 && self.initial_credits.is_finite()) {
            return Err(SandboxError::InvalidOption(
                "initial credits must be a non-negative number".into(),
            ));
        }
        Ok(())
    }
}

/// Why a sandbox could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SandboxError {
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// An option is out of range.
    #[error("invalid sandbox option: {0}")]
    InvalidOption(String),
    /// The state file (`--state`) was refused: it names the file and what
    /// is wrong, and the file was left as it was.
    #[error("cannot use the state file {0}")]
    State(String),
    /// A fixture file could not be read, or one of its steps failed: it
    /// names the file and the step; nothing of the fixtures was kept.
    #[error("{0}")]
    Fixtures(String),
    /// A recording (`--replay`, `sandbox drift`, `fixtures-from`) could not
    /// be read: it names the file and what is wrong.
    #[error("{0}")]
    Recording(String),
    /// A control route (`/_sandbox/clock`, `/_sandbox/verify`) refused, or
    /// the sandbox did not answer (status 0).
    #[error("sandbox control refused ({status} {code}): {message}")]
    Control {
        /// The HTTP status (0: no answer).
        status: u16,
        /// The error code (`CLOCK_BACKWARDS`, `NO_CLOCK`, `VALIDATION_ERROR`).
        code: String,
        /// What is wrong.
        message: String,
    },
    /// A verification's count did not hold.
    #[error("not verified: {message}")]
    NotVerified {
        /// What was counted.
        found: u64,
        /// Expected and found, in words.
        message: String,
        /// The journal's requests closest to what was asked (newest first).
        closest: Vec<serde_json::Value>,
    },
}

/// A running sandbox. It stops when dropped or on [`Sandbox::shutdown`].
pub struct Sandbox {
    addr: SocketAddr,
    shared: Arc<face::shared::Shared>,
    url: String,
    /// The controls' client (`clock`, `verify`).
    http: reqwest::Client,
    stop: CancellationToken,
    served: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl Sandbox {
    /// Starts a sandbox on 127.0.0.1 and a free port, with the default options.
    pub async fn start() -> Result<Sandbox, SandboxError> {
        Self::start_with(SandboxOptions::default()).await
    }

    /// Starts a sandbox with `options` on the current Tokio runtime.
    pub async fn start_with(options: SandboxOptions) -> Result<Sandbox, SandboxError> {
        options.check()?;
        // Everything is read and checked before anything is bound or sent.
        let mut sets = fixtures::read(&options.fixtures, &options.fixture_env).map_err(SandboxError::Fixtures)?;
        let store = match &options.state {
            Some(path) => Some(world::store::Store::open(path).map_err(SandboxError::State)?),
            None => None,
        };
        if let Some((store, _)) = &store {
            // A restart on the same file does not apply them twice.
            sets.retain(|set| !store.holds(&set.state_name()));
        }
        let live = live::Live::open(&options).map_err(SandboxError::InvalidOption)?;
        let addr = SocketAddr::new(options.host, options.port);
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| SandboxError::Bind { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| SandboxError::Bind { addr, source })?;
        let url = match addr.ip() {
            IpAddr::V6(ip) => format!("http://[{ip}]:{}", addr.port()),
            IpAddr::V4(ip) => format!("http://{ip}:{}", addr.port()),
        };
        let stop = CancellationToken::new();
        let shared =
            face::shared::Shared::new(options, url.clone(), stop.clone(), store, live).map_err(SandboxError::State)?;
        let shared = Arc::new(shared);
        face::shared::resume_deliveries(&shared);
        let served = tokio::spawn(face::server::serve(listener, shared.clone(), stop.clone()));
        if let Err(why) = fixtures::apply(&url, &sets).await {
            fixtures::undo(&url, &sets).await;
            stop.cancel();
            let _ = served.await;
            return Err(SandboxError::Fixtures(why));
        }
        Ok(Sandbox {
            addr,
            shared,
            http: crate::client::http_builder().build().unwrap_or_default(),
            url,
            stop,
            served: Some(served),
        })
    }

    /// Its base URL (`http://127.0.0.1:PORT`): what `TOKPORTAL_BASE_URL` takes.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A client of this sandbox with `api_key` (any `sk_` key works; each key
    /// has its own state, credits and rate limit).
    pub fn client(&self, api_key: impl Into<Secret>) -> Result<Client, crate::Error> {
        Client::builder().base_url(self.url.clone()).api_key(api_key).build()
    }

    /// What the live answers passed through it (`proxy`) had that the
    /// contract does not say, so far ([`check_recording`] reads a recording
    /// the same way).
    pub fn drift(&self) -> DriftReport {
        self.shared.live.drift.report()
    }

    /// Stops accepting, closes open connections and waits for the listener to
    /// end, and (with `proxy`) for the exchanges in flight to be recorded:
    /// 30 seconds at most, since a live answer may never end.
    pub async fn shutdown(mut self) {
        self.stop.cancel();
        if let Some(served) = self.served.take() {
            let _ = served.await;
        }
        self.shared.live.relays.close();
        let _ = tokio::time::timeout(RELAYS_AT_STOP, self.shared.live.relays.wait()).await;
    }

    /// Serves until `signal` completes, then shuts down.
    pub async fn run_until(self, signal: impl std::future::Future<Output = ()>) {
        signal.await;
        self.shutdown().await;
    }
}

/// Checks a recording (HAR, ours or a browser's) against the contract, as
/// a proxying sandbox checks each live answer (`tokportal sandbox drift
/// FILE`).
///
/// ```no_run
/// let report = tokportal::sandbox::check_recording(std::path::Path::new("live.har"))?;
/// print!("{}", report.table());
/// # Ok::<(), tokportal::sandbox::SandboxError>(())
/// ```
pub fn check_recording(path: &std::path::Path) -> Result<DriftReport, SandboxError> {
    live::check_recording(path).map_err(SandboxError::Recording)
}

/// A fixtures file (YAML) that makes again, through the contract, what the
/// recorded changes made (`tokportal sandbox fixtures-from FILE`), and the
/// number of its steps.
///
/// ```no_run
/// let (yaml, steps) = tokportal::sandbox::fixtures_from_recording(std::path::Path::new("live.har"))?;
/// std::fs::write("fixtures.yaml", yaml).expect("written");
/// # Ok::<(), tokportal::sandbox::SandboxError>(())
/// ```
pub fn fixtures_from_recording(path: &std::path::Path) -> Result<(String, usize), SandboxError> {
    live::fixtures_from::from_recording(path).map_err(SandboxError::Recording)
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
