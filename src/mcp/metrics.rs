//! Prometheus metrics (`--metrics ADDR`): served at `http://ADDR/metrics` in
//! Prometheus' text format, on a listener of their own, so that `/mcp`'s
//! public address exposes none of them.
//!
//! - `mcp_server_operation_duration_seconds{method, tool, outcome}`: how
//!   long each `tools/call` took, named after OpenTelemetry's MCP semantic
//!   convention (`mcp.server.operation.duration`, in seconds, with its
//!   recommended buckets); `tool` is the operation's id (whatever the
//!   naming, `call_operation`'s target in dynamic mode), `outcome` `ok`,
//!   `error` or `refused` (nothing sent);
//! - `tokportal_mcp_credits_spent_total{tool}`: credits charged, by
//!   operation (`credits_spent`);
//! - `tokportal_mcp_calls_refused_total{reason}`: calls refused before
//!   anything was sent (`refused`);
//! - `tokportal_mcp_oauth_grants_total{event}`: OAuth grants `issued`,
//!   `refreshed`, `revoked` (`grant`);
//! - `tokportal_mcp_store_errors_total`: the store could not answer
//!   (`store_error`);
//! - `tokportal_mcp_sessions_live`: HTTP sessions open now
//!   (`session_opened`, `session_closed`).
//!
//! One registry for the process, in a `OnceLock`: the events counted happen
//! deep in code that holds no handle to the server (the OAuth endpoints,
//! the session book, the call gate, the store's failures), and a process
//! serves one `/metrics`. Passing a registry through every one of them
//! would change a dozen signatures for no reader; a global counter is what
//! Prometheus' own clients do. Tests that run many servers in one process
//! read sums, never absolute values.

use std::cell::Cell;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use rmcp::ErrorData as McpError;
use rmcp::model::CallToolResponse;
use serde_json::Value;

/// OpenTelemetry's recommended buckets for `mcp.server.operation.duration`.
const BUCKETS: [f64; 14] = [
    0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

type Labels<const N: usize> = [(&'static str, String); N];

struct Metrics {
    registry: Registry,
    duration: Family<Labels<3>, Histogram, fn() -> Histogram>,
    credits: Family<Labels<1>, Counter<f64, AtomicU64>>,
    refused: Family<Labels<1>, Counter>,
    grants: Family<Labels<1>, Counter>,
    store_errors: Counter,
    sessions: Gauge,
}

fn histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::default();
        let duration = Family::<Labels<3>, Histogram, fn() -> Histogram>::new_with_constructor(histogram);
        registry.register_with_unit(
            "mcp_server_operation_duration",
            "How long an MCP operation took (OpenTelemetry's mcp.server.operation.duration), by method, tool and outcome",
            Unit::Seconds,
            duration.clone(),
        );
        let credits = Family::<Labels<1>, Counter<f64, AtomicU64>>::default();
        registry.register(
            "tokportal_mcp_credits_spent",
            "Credits charged by the paid calls made through this server, by tool",
            credits.clone(),
        );
        let refused = Family::<Labels<1>, Counter>::default();
        registry.register(
            "tokportal_mcp_calls_refused",
            "Calls refused before anything was sent, by reason",
            refused.clone(),
        );
        let grants = Family::<Labels<1>, Counter>::default();
        registry.register(
            "tokportal_mcp_oauth_grants",
            "OAuth grants issued, refreshed and revoked",
            grants.clone(),
        );
        let store_errors = Counter::default();
        registry.register(
            "tokportal_mcp_store_errors",
            "Requests refused because the store (memory, SQLite, Redis) could not answer",
            store_errors.clone(),
        );
        let sessions = Gauge::default();
        registry.register(
            "tokportal_mcp_sessions_live",
            "MCP sessions open now (--sessions)",
            sessions.clone(),
        );
        Self {
            registry,
            duration,
            credits,
            refused,
            grants,
            store_errors,
            sessions,
        }
    }
}

static METRICS: OnceLock<Metrics> = OnceLock::new();

fn metrics() -> &'static Metrics {
    METRICS.get_or_init(Metrics::new)
}

/// What happened during one timed tool call, for its outcome.
#[derive(Default)]
struct Marks {
    refused: Cell<bool>,
    credits: Cell<bool>,
}

tokio::task_local! {
    static MARKS: Marks;
}

/// Counts `credits` charged by a call of `tool` (the operation's id).
/// Call it once the paid request was sent and answered with its charge.
pub(crate) fn credits_spent(tool: &str, credits: f64) {
    // Counted by the call itself, nothing included: the answer's own
    // figures are not read again.
    let _ = MARKS.try_with(|m| m.credits.set(true));
    if !(credits.is_finite() && credits > 0.0) {
        return;
    }
    metrics()
        .credits
        .get_or_create(&[("tool", tool.to_owned())])
        .inc_by(credits);
}

/// Counts a call refused before anything was sent, for `reason`
/// (`read_only_scope`, `file_sandbox`, `concurrency`, `unconfirmed`,
/// `daily_credit_limit`); within a tool call, its outcome is `refused`.
pub(crate) fn refused(reason: &str) {
    let _ = MARKS.try_with(|m| m.refused.set(true));
    metrics().refused.get_or_create(&[("reason", reason.to_owned())]).inc();
}

/// What became of an OAuth grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GrantEvent {
    /// A code was exchanged for a new grant.
    Issued,
    /// A refresh token was rotated.
    Refreshed,
    /// The grant was revoked (`/revoke`, or a replayed refresh token).
    Revoked,
}

/// Counts an OAuth grant event.
pub(crate) fn grant(event: GrantEvent) {
    let name = match event {
        GrantEvent::Issued => "issued",
        GrantEvent::Refreshed => "refreshed",
        GrantEvent::Revoked => "revoked",
    };
    metrics().grants.get_or_create(&[("event", name.to_owned())]).inc();
}

/// Counts a request refused because the store could not answer.
pub(crate) fn store_error() {
    metrics().store_errors.inc();
}

/// A session was opened.
pub(crate) fn session_opened() {
    metrics().sessions.inc();
}

/// A session was closed or expired.
pub(crate) fn session_closed() {
    metrics().sessions.dec();
}

/// The label a `tools/call` is counted under: the operation's id, when the
/// call names one (the tool, or `call_operation`'s `name`); the meta-tool's
/// name; otherwise `unknown`, so that what an agent sends never makes a
/// series of its own.
pub(crate) fn tool_label(
    name: &str,
    arguments: Option<&rmcp::model::JsonObject>,
    listed: bool,
    exposed: impl Fn(&str) -> Option<&'static crate::operations::Operation>,
) -> String {
    if name == super::dynamic::CALL
        && let Some(op) = arguments
            .and_then(|a| a.get("name"))
            .and_then(Value::as_str)
            .and_then(&exposed)
    {
        return op.id.to_owned();
    }
    match exposed(name) {
        Some(op) => op.id.to_owned(),
        None if listed => name.to_owned(),
        None => "unknown".to_owned(),
    }
}

/// Runs one `tools/call` and records its duration and outcome under
/// `tool`; a successful answer's `credits_charged` is counted unless the
/// call counted its credits itself ([`credits_spent`]).
pub(crate) async fn timed_call<F>(tool: String, call: F) -> Result<CallToolResponse, McpError>
where
    F: Future<Output = Result<CallToolResponse, McpError>>,
{
    let started = Instant::now();
    let (answer, refused_inside, credits_inside) = MARKS
        .scope(Marks::default(), async {
            let answer = call.await;
            let (r, c) = MARKS.with(|m| (m.refused.get(), m.credits.get()));
            (answer, r, c)
        })
        .await;
    let outcome = if refused_inside {
        "refused"
    } else {
        outcome(&answer, &tool, credits_inside)
    };
    metrics()
        .duration
        .get_or_create(&[
            ("method", "tools/call".to_owned()),
            ("tool", tool),
            ("outcome", outcome.to_owned()),
        ])
        .observe(started.elapsed().as_secs_f64());
    answer
}

/// The outcome of an answer nobody marked refused: refusals recognised by
/// their code are counted here; a success's charge too, if not yet.
fn outcome(answer: &Result<CallToolResponse, McpError>, tool: &str, credits_counted: bool) -> &'static str {
    let result = match answer {
        // The call gate's refusal (-32029) marked itself (`limits.rs`).
        Err(_) => return "error",
        Ok(CallToolResponse::Complete(result)) => result,
        Ok(_) => return "ok",
    };
    let structured = result.structured_content.as_ref();
    if result.is_error == Some(true) {
        let code = structured
            .and_then(|v| v.pointer("/error/code"))
            .and_then(Value::as_str);
        let reason = match code {
            // Written by `TokPortalMcp::call`, `confirm.rs` and `budget.rs`.
            Some("insufficient_scope") => "read_only_scope",
            Some("NOT_CONFIRMED") => "unconfirmed",
            Some("DAILY_CREDIT_LIMIT") => "daily_credit_limit",
            Some("PRICE_UNKNOWN") => "price_unknown",
            _ => return "error",
        };
        refused(reason);
        return "refused";
    }
    // The contract's top-level figure: a bundle's `data.credits_charged`
    // is what it has cost so far, not this call.
    let charged = structured.and_then(|v| v.get("credits_charged").and_then(Value::as_f64));
    if !credits_counted && let Some(charged) = charged {
        credits_spent(tool, charged);
    }
    "ok"
}

/// The registry in Prometheus' text format (version 0.0.4).
pub fn render() -> String {
    let mut text = String::new();
    if let Err(e) = prometheus_text::encode(&mut text, &metrics().registry) {
        tracing::warn!(error = %e, "the metrics could not be written");
    }
    text
}

/// Binds `addr` and serves `GET /metrics` there until the process ends;
/// says where on stderr (`tokportal-mcp: metrics on http://ADDR/metrics`).
/// The address actually bound (port 0 picks one).
pub async fn serve(addr: SocketAddr) -> Result<SocketAddr, String> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr} for --metrics: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(|| async {
            (
                [(axum::http::header::CONTENT_TYPE, prometheus_text::CONTENT_TYPE)],
                render(),
            )
        }),
    );
    super::say(format_args!("tokportal-mcp: metrics on http://{local}/metrics"));
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "the metrics listener stopped");
        }
    });
    Ok(local)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmcp::model::{CallToolResult, ContentBlock};
    use serde_json::json;

    fn result(value: Value, error: bool) -> Result<CallToolResponse, McpError> {
        let mut r = if error {
            CallToolResult::error(vec![ContentBlock::text(value.to_string())])
        } else {
            CallToolResult::success(vec![ContentBlock::text(value.to_string())])
        };
        r.structured_content = Some(value);
        Ok(r.into())
    }

    fn line(text: &str, starts: &str) -> Option<f64> {
        text.lines()
            .find(|l| l.starts_with(starts))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    #[tokio::test]
    async fn outcomes_refusals_and_credits_are_counted_once() {
        // A tool name of its own: other tests in this process count too.
        let tool = "unitTestMetricsTool".to_owned();
        let paid = result(json!({"data": {}, "credits_charged": 7.5}), false);
        timed_call(tool.clone(), async { paid }).await.unwrap();
        // Counted by the call itself: not again from the answer.
        let paid_counted = result(json!({"credits_charged": 2.0}), false);
        timed_call(tool.clone(), async {
            credits_spent("unitTestMetricsTool", 1.0);
            paid_counted
        })
        .await
        .unwrap();
        let read_only = result(json!({"error": {"code": "insufficient_scope"}}), true);
        timed_call(tool.clone(), async { read_only }).await.unwrap();
        let over = result(json!({"error": {"code": "DAILY_CREDIT_LIMIT"}}), true);
        timed_call(tool.clone(), async { over }).await.unwrap();
        // A bundle's own running total is not this call's charge.
        let nested = result(json!({"data": {"credits_charged": 0.5}}), false);
        timed_call(tool.clone(), async { nested }).await.unwrap();
        // Counted by the call as nothing (a replayed answer): not read again.
        let replayed = result(json!({"credits_charged": 4.0}), false);
        timed_call(tool.clone(), async {
            credits_spent("unitTestMetricsTool", 0.0);
            replayed
        })
        .await
        .unwrap();
        let failed = result(json!({"error": {"code": "REQUEST_FAILED"}}), true);
        timed_call(tool.clone(), async { failed }).await.unwrap();
        let marked = result(json!({"error": {"code": "ANYTHING"}}), true);
        timed_call(tool.clone(), async {
            refused("unit_test_reason");
            marked
        })
        .await
        .unwrap();

        let text = render();
        assert_eq!(
            line(&text, "tokportal_mcp_credits_spent_total{tool=\"unitTestMetricsTool\"}"),
            Some(8.5),
            "{text}"
        );
        let count = |outcome: &str| {
            line(
                &text,
                &format!(
                    "mcp_server_operation_duration_seconds_count{{method=\"tools/call\",tool=\"unitTestMetricsTool\",outcome=\"{outcome}\"}}"
                ),
            )
        };
        assert_eq!(
            (count("ok"), count("refused"), count("error")),
            (Some(4.0), Some(3.0), Some(1.0)),
            "{text}"
        );
        assert_eq!(
            line(&text, "tokportal_mcp_calls_refused_total{reason=\"unit_test_reason\"}"),
            Some(1.0)
        );
        for reason in ["read_only_scope", "daily_credit_limit"] {
            let counted = line(
                &text,
                &format!("tokportal_mcp_calls_refused_total{{reason=\"{reason}\"}}"),
            );
            assert!(counted.is_some_and(|n| n >= 1.0), "{reason}: {text}");
        }
        assert!(
            text.contains("# TYPE mcp_server_operation_duration_seconds histogram"),
            "{text}"
        );
    }

    #[test]
    fn labels_come_from_the_table_not_from_the_agent() {
        let exposed = |name: &str| crate::operations::find(name);
        assert_eq!(tool_label("createBundle", None, false, exposed), "createBundle");
        assert_eq!(
            tool_label("no such tool, of any length", None, false, exposed),
            "unknown"
        );
        let args = json!({"name": "getBundle"});
        assert_eq!(
            tool_label("call_operation", args.as_object(), true, exposed),
            "getBundle"
        );
        assert_eq!(
            tool_label("search_operations", None, true, exposed),
            "search_operations"
        );
    }
}
