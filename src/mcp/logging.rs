//! MCP logging: the server declares the `logging` capability, honours
//! `logging/setLevel` (per caller: the level is kept by key fingerprint, so
//! it holds across stateless requests), and sends what the SDK tells
//! `tracing` during a tool call (a retry and its wait, a field sent beyond
//! the vendored contract, a newer API version) to that call's client as
//! `notifications/message`, before the call's answer.
//!
//! How an event finds its client: `server.rs` runs each tool call inside
//! [`CALL_LOG`], a task-local [`Sink`]; the [`Forward`] layer, installed in
//! the binary's subscriber, hands each `tokportal` event it sees inside such
//! a call to that sink, and the server sends what the sink collects. Events
//! outside a call (start-up, the HTTP transport) go to stderr only.
//!
//! What is sent is what the SDK's spans and events carry, which never holds
//! a key (headers are redacted) nor a secret-bearing answer; bodies (TRACE)
//! are never sent: MCP's lowest level is `debug`.
//!
//! MCP logging is deprecated by the protocol's 2026 revision (SEP-2577);
//! clients on the versions before it still use it, and rmcp still serves it.
// rmcp marks the logging types deprecated (SEP-2577); they are what serves
// those clients.
#![allow(deprecated)]

use std::collections::HashMap;
use std::sync::Mutex;

use rmcp::model::{LoggingLevel, LoggingMessageNotificationParam};
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{Filtered, Targets};
use tracing_subscriber::layer::Context;

use super::caller::KeyId;

/// Messages one call may queue before the oldest wait is over; more are
/// dropped (a call makes a few).
const SINK_CAPACITY: usize = 64;
/// Callers whose level is kept; past that, the oldest choice is forgotten
/// (that caller gets the default again).
const MAX_LEVELS: usize = 10_000;
/// The level a caller gets before it sets one: retries and warnings reach it.
pub const DEFAULT_LEVEL: LoggingLevel = LoggingLevel::Info;

tokio::task_local! {
    /// The running tool call's sink.
    pub static CALL_LOG: Sink;
}

/// Where one call's messages go, and from which level.
#[derive(Clone)]
pub struct Sink {
    tx: mpsc::Sender<LoggingMessageNotificationParam>,
    level: LoggingLevel,
}

impl Sink {
    /// A sink for messages at `level` and above, and its receiving end.
    pub fn new(level: LoggingLevel) -> (Self, mpsc::Receiver<LoggingMessageNotificationParam>) {
        let (tx, rx) = mpsc::channel(SINK_CAPACITY);
        (Self { tx, level }, rx)
    }
}

/// Each caller's `logging/setLevel`.
#[derive(Default)]
pub struct Levels {
    by_caller: Mutex<(HashMap<KeyId, LoggingLevel>, std::collections::VecDeque<KeyId>)>,
}

impl Levels {
    /// `caller`'s level ([`DEFAULT_LEVEL`] until it sets one).
    pub fn of(&self, caller: KeyId) -> LoggingLevel {
        let book = self.by_caller.lock().unwrap_or_else(|p| p.into_inner());
        book.0.get(&caller).copied().unwrap_or(DEFAULT_LEVEL)
    }

    /// Keeps `caller`'s level.
    pub fn set(&self, caller: KeyId, level: LoggingLevel) {
        let mut book = self.by_caller.lock().unwrap_or_else(|p| p.into_inner());
        let (levels, order) = &mut *book;
        if levels.insert(caller, level).is_none() {
            order.push_back(caller);
            while levels.len() > MAX_LEVELS {
                match order.pop_front() {
                    Some(oldest) => {
                        levels.remove(&oldest);
                    }
                    None => break,
                }
            }
        }
    }
}

/// How severe a level is, for comparison (rmcp's enum is not `Ord`).
fn rank(level: LoggingLevel) -> u8 {
    match level {
        LoggingLevel::Debug => 0,
        LoggingLevel::Info => 1,
        LoggingLevel::Notice => 2,
        LoggingLevel::Warning => 3,
        LoggingLevel::Error => 4,
        LoggingLevel::Critical => 5,
        LoggingLevel::Alert => 6,
        LoggingLevel::Emergency => 7,
    }
}

fn mcp_level(level: &Level) -> Option<LoggingLevel> {
    Some(match *level {
        Level::ERROR => LoggingLevel::Error,
        Level::WARN => LoggingLevel::Warning,
        Level::INFO => LoggingLevel::Info,
        Level::DEBUG => LoggingLevel::Debug,
        Level::TRACE => return None,
    })
}

/// The `tracing` layer that forwards a call's events to its client.
pub struct Forward;

/// [`Forward`] with its filter: `tokportal` events down to DEBUG (never
/// TRACE, where bodies are).
pub fn layer<S>() -> Filtered<Forward, Targets, S>
where
    S: Subscriber,
{
    Forward.with_filter(Targets::new().with_target("tokportal", Level::DEBUG))
}

/// Installs `tokportal-mcp`'s subscriber: stderr as `RUST_LOG` says
/// (default `warn`), and [`Forward`] for the clients. Nothing goes to stdout,
/// which carries the protocol over stdio.
pub fn install() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        // rmcp logs whole protocol messages at DEBUG and TRACE: tool results
        // (a revealed password, a webhook secret) and callers' requests. Never
        // printed, whatever RUST_LOG says.
        .with_filter(
            Targets::new()
                .with_default(Level::TRACE)
                .with_target("rmcp", Level::INFO),
        );
    let _ = tracing_subscriber::registry().with(stderr).with(layer()).try_init();
}

/// An event's fields as JSON.
#[derive(Default)]
struct Fields(Map<String, Value>);

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), json!(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), json!(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), json!(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), json!(value));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), json!(format!("{value:?}")));
    }
}

impl<S: Subscriber> Layer<S> for Forward {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let Some(level) = mcp_level(event.metadata().level()) else {
            return;
        };
        let _ = CALL_LOG.try_with(|sink| {
            if rank(level) < rank(sink.level) {
                return;
            }
            let mut fields = Fields::default();
            event.record(&mut fields);
            let mut data = fields.0;
            if data.get("message").and_then(Value::as_str) == Some("tokportal.retry") {
                let wait = data.get("wait_ms").and_then(Value::as_i64).unwrap_or(0) as f64 / 1000.0;
                let reason = data.get("reason").and_then(Value::as_str).unwrap_or("backoff");
                let next = data.get("next_attempt").and_then(Value::as_i64).unwrap_or(0);
                data.insert(
                    "message".into(),
                    json!(format!(
                        "retrying: waiting {wait:.1} s ({reason}) before attempt {next}"
                    )),
                );
                data.insert("event".into(), json!("tokportal.retry"));
            }
            let message =
                LoggingMessageNotificationParam::new(level, Value::Object(data)).with_logger(event.metadata().target());
            // A full sink drops the message rather than block the call.
            let _ = sink.tx.try_send(message);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_per_caller_and_bounded() {
        let levels = Levels::default();
        let (a, b) = (KeyId::of("sk_a"), KeyId::of("sk_b"));
        assert_eq!(levels.of(a), DEFAULT_LEVEL);
        levels.set(a, LoggingLevel::Debug);
        assert_eq!(levels.of(a), LoggingLevel::Debug);
        assert_eq!(levels.of(b), DEFAULT_LEVEL);
        for i in 0..MAX_LEVELS + 5 {
            levels.set(KeyId::of(&format!("sk_{i}")), LoggingLevel::Error);
        }
        let book = levels.by_caller.lock().unwrap();
        assert!(book.0.len() <= MAX_LEVELS);
    }

    #[test]
    fn a_caller_gets_its_level_and_above() {
        assert!(rank(LoggingLevel::Warning) > rank(LoggingLevel::Info));
        assert_eq!(mcp_level(&Level::TRACE), None, "bodies never leave as MCP messages");
        assert_eq!(mcp_level(&Level::WARN), Some(LoggingLevel::Warning));
    }
}
