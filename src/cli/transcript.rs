//! What `tokportal -v` prints on stderr: a transcript of the SDK's spans
//! (`pipeline/trace.rs`), one line a finished attempt and one a wait, in
//! the manner of `gh`'s `GH_DEBUG=api` and `kubectl -v=6`:
//!
//! ```text
//! tokportal: createBundle  POST /bundles  503 Service Unavailable  12 ms  request req_1  (attempt 1)
//! tokportal: waiting 1.0 s (Retry-After), then attempt 2 with the same Idempotency-Key 5f0c2d1e-…
//! tokportal: createBundle  POST /bundles  201 Created  31 ms  request req_2  (attempt 2)
//! ```
//!
//! `-vv` adds each exchange's headers (`> ` sent, `< ` received; the key
//! shown as `** redacted (length=N) **`), `-vvv` or `TOKPORTAL_DEBUG=api`
//! the bodies too (cut at 2 KiB; never those of the six secret-bearing
//! operations). `RUST_LOG` overrides all of this with `tracing`'s own
//! format. stdout carries the answer alone, so pipes keep working.

use std::fmt::Write as _;
use std::io::Write as _;
use std::time::Instant;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

/// Installs the CLI's `tracing` subscriber for `verbosity` (the count of
/// `-v`): warnings always, the transcript from 1 on. `RUST_LOG`, when set,
/// decides instead, in `tracing`'s format.
pub(crate) fn install(verbosity: u8) {
    let from_env = std::env::var_os("RUST_LOG").is_some();
    let verbosity = match std::env::var("TOKPORTAL_DEBUG") {
        Ok(v) if v.split(',').any(|part| part.trim() == "api") => verbosity.max(3),
        _ => verbosity,
    };
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .without_time()
        .with_target(false);
    if from_env {
        let filter = tracing_subscriber::EnvFilter::from_default_env();
        let _ = tracing_subscriber::registry().with(fmt.with_filter(filter)).try_init();
        return;
    }
    // `tokportal sandbox` logs a line a request; the library's warnings (a
    // field sent as given, a newer API version) are said in one human line
    // each (`Warnings`), or as tracing formats them from -v on.
    let quiet = if verbosity == 0 {
        Targets::new().with_target("tokportal::sandbox", Level::INFO)
    } else {
        Targets::new()
            .with_default(Level::WARN)
            .with_target("tokportal::sandbox", Level::INFO)
    };
    let warnings = (verbosity == 0).then(|| {
        Warnings.with_filter(
            Targets::new()
                .with_default(Level::WARN)
                .with_target("tokportal::sandbox", LevelFilter::OFF),
        )
    });
    let level = match verbosity {
        0 => None,
        1 => Some(Level::INFO),
        2 => Some(Level::DEBUG),
        _ => Some(Level::TRACE),
    };
    let transcript = level.map(|level| {
        Transcript.with_filter(
            Targets::new()
                .with_target(crate::pipeline::trace::TARGET, level)
                .with_target("tokportal::sandbox", Level::ERROR),
        )
    });
    let _ = tracing_subscriber::registry()
        .with(fmt.with_filter(quiet))
        .with(warnings)
        .with(transcript)
        .try_init();
}

/// A warning as a person reads it: `warning: ` and its message, commands
/// named as the CLI names them, without the tracing decorations; none for
/// a value `cli::values` has already spoken of.
struct Warnings;

impl<S: Subscriber> Layer<S> for Warnings {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        #[derive(Default)]
        struct Text {
            message: Option<String>,
            name: Option<String>,
        }
        impl Visit for Text {
            fn record_str(&mut self, field: &Field, value: &str) {
                match field.name() {
                    "message" => self.message = Some(value.to_owned()),
                    "name" => self.name = Some(value.to_owned()),
                    _ => {}
                }
            }
            fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
                match field.name() {
                    "message" => self.message = Some(format!("{value:?}")),
                    "name" => self.name = Some(format!("{value:?}")),
                    _ => {}
                }
            }
        }
        let mut text = Text::default();
        event.record(&mut text);
        if text.name.as_deref().is_some_and(super::values::already_said) {
            return;
        }
        if let Some(message) = text.message {
            say(&format!("warning: {}", super::words::commands_not_ids(&message)));
        }
    }
}

/// The fields of a span or event, as the transcript reads them.
#[derive(Default)]
struct Fields {
    operation: Option<String>,
    method: Option<String>,
    template: Option<String>,
    status: Option<i64>,
    error_type: Option<String>,
    request_id: Option<String>,
    attempt: Option<i64>,
    idempotency_key: Option<String>,
    wait_ms: Option<i64>,
    reason: Option<String>,
    next_attempt: Option<i64>,
    direction: Option<String>,
    message: Option<String>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        let slot = match field.name() {
            "tokportal.operation" => &mut self.operation,
            "http.request.method" => &mut self.method,
            "url.template" => &mut self.template,
            "error.type" => &mut self.error_type,
            "tokportal.request_id" => &mut self.request_id,
            "tokportal.idempotency_key" => &mut self.idempotency_key,
            "reason" => &mut self.reason,
            "direction" => &mut self.direction,
            "message" => &mut self.message,
            _ => return,
        };
        *slot = Some(value.to_owned());
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        let slot = match field.name() {
            "http.response.status_code" | "status" => &mut self.status,
            "tokportal.attempt" => &mut self.attempt,
            "wait_ms" => &mut self.wait_ms,
            "next_attempt" => &mut self.next_attempt,
            _ => return,
        };
        *slot = Some(value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        // `error.type` and the message arrive as `Display` values.
        let text = format!("{value:?}");
        match field.name() {
            "message" => self.message = Some(text),
            "error.type" => self.error_type = Some(text),
            _ => {}
        }
    }
}

/// An attempt span's fields and when it began.
struct Open {
    fields: Fields,
    started: Instant,
}

/// The transcript layer.
struct Transcript;

fn say(line: &str) {
    // A closed stderr must not fail the call.
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

impl<S> Layer<S> for Transcript
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let name = attrs.metadata().name();
        if name != "tokportal.attempt" && name != "tokportal.call" {
            return;
        }
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(Open {
                fields,
                started: Instant::now(),
            });
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id)
            && let Some(open) = span.extensions_mut().get_mut::<Open>()
        {
            values.record(&mut open.fields);
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        if span.name() != "tokportal.attempt" {
            return;
        }
        let extensions = span.extensions();
        let Some(open) = extensions.get::<Open>() else { return };
        say(&attempt_line(&open.fields, open.started.elapsed().as_millis()));
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        if fields.message.as_deref() == Some("tokportal.retry") {
            let key = ctx.event_span(event).and_then(|span| {
                span.scope().find_map(|s| {
                    s.extensions()
                        .get::<Open>()
                        .and_then(|o| o.fields.idempotency_key.clone())
                })
            });
            say(&wait_line(&fields, key.as_deref()));
            return;
        }
        if let (Some(direction), Some(message)) = (&fields.direction, &fields.message) {
            let mark = if direction == "request" { "> " } else { "< " };
            for line in message.lines() {
                say(&format!("tokportal: {mark}{line}"));
            }
        }
    }
}

/// `createBundle  POST /bundles  201 Created  31 ms  request req_2  (attempt 2)`.
fn attempt_line(f: &Fields, millis: u128) -> String {
    let mut line = format!(
        "tokportal: {}  {} {}  ",
        f.operation.as_deref().unwrap_or("?"),
        f.method.as_deref().unwrap_or("?"),
        f.template.as_deref().unwrap_or("?"),
    );
    match (f.status, &f.error_type) {
        (Some(status), _) => {
            let reason = u16::try_from(status)
                .ok()
                .and_then(|s| http::StatusCode::from_u16(s).ok())
                .and_then(|s| s.canonical_reason())
                .unwrap_or("");
            let _ = write!(line, "{status} {reason}");
        }
        (None, Some(error)) => line.push_str(error),
        (None, None) => line.push_str("no answer"),
    }
    let _ = write!(line, "  {millis} ms");
    if let Some(id) = &f.request_id {
        let _ = write!(line, "  request {id}");
    }
    if let Some(attempt) = f.attempt {
        let _ = write!(line, "  (attempt {attempt})");
    }
    line
}

/// `waiting 1.0 s (Retry-After), then attempt 2 with the same Idempotency-Key …`.
fn wait_line(f: &Fields, key: Option<&str>) -> String {
    let seconds = f.wait_ms.unwrap_or(0) as f64 / 1000.0;
    let mut line = format!(
        "tokportal: waiting {seconds:.1} s ({}), then attempt {}",
        f.reason.as_deref().unwrap_or("backoff"),
        f.next_attempt.unwrap_or(0)
    );
    match key {
        Some(key) => {
            let _ = write!(line, " with the same Idempotency-Key {key}");
        }
        None => line.push_str(" (a request that is safe to send again)"),
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_read_like_the_docs_say() {
        let f = Fields {
            operation: Some("createBundle".into()),
            method: Some("POST".into()),
            template: Some("/bundles".into()),
            status: Some(503),
            request_id: Some("req_1".into()),
            attempt: Some(1),
            ..Fields::default()
        };
        assert_eq!(
            attempt_line(&f, 12),
            "tokportal: createBundle  POST /bundles  503 Service Unavailable  12 ms  request req_1  (attempt 1)"
        );
        let timeout = Fields {
            error_type: Some("timeout".into()),
            ..Fields::default()
        };
        assert!(attempt_line(&timeout, 5000).contains("timeout  5000 ms"));
        let wait = Fields {
            wait_ms: Some(1200),
            reason: Some("Retry-After".into()),
            next_attempt: Some(2),
            ..Fields::default()
        };
        assert_eq!(
            wait_line(&wait, Some("k-1")),
            "tokportal: waiting 1.2 s (Retry-After), then attempt 2 with the same Idempotency-Key k-1"
        );
    }
}
