//! Exit codes, and how an [`Error`] becomes one with its message for stderr.
//!
//! 0 success, 1 API error (JSON `{"payload", "diagnostics"}` on stderr),
//! 2 usage error, 3 missing API key, 4 transport failure, 5 a charge
//! declined at the terminal's question (or refused before it: the balance
//! cannot pay), 6 drift found (`tokportal sandbox drift`, `--fail-on-drift`),
//! 130 interrupted during an upload. A closed stdout (`| head`)
//! is 0.
//!
//! At a terminal, an API error gets one plain line above its JSON that says
//! what happened and what to do; in a pipe, stderr is the JSON alone.

use std::io::IsTerminal;

use serde_json::{Value, json};

use crate::Error;
use crate::error::ApiError;

/// An API error answer (or an answer that could not be read).
pub const EXIT_API: u8 = 1;
/// A usage error: bad flags, an unreadable file; nothing was sent.
pub const EXIT_USAGE: u8 = 2;
/// The operation needs an API key and none was given.
pub const EXIT_NO_KEY: u8 = 3;
/// The request could not be completed (connect, timeout, reset).
pub const EXIT_TRANSPORT: u8 = 4;

/// A paid call was declined at the terminal's question, or refused before
/// it because the balance cannot pay: nothing was charged.
pub const EXIT_DECLINED: u8 = 5;

/// The live API's answers drifted from the vendored contract (`tokportal
/// sandbox drift FILE`, or a proxying sandbox stopped with `--fail-on-drift`).
pub const EXIT_DRIFT: u8 = 6;

/// Interrupted (Ctrl-C) during an upload, as a shell reports SIGINT (128 + 2).
pub const EXIT_INTERRUPTED: u8 = 130;

/// A failure with its exit code; the message is already formatted for stderr.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) code: u8,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self {
            code: EXIT_USAGE,
            message: format!("error: {}", message.into()),
        }
    }

    /// stdout's reader went away (`| head -1`): the end the reader asked
    /// for, so exit 0 with nothing said (see `cli::stdout`).
    pub(crate) fn closed_pipe() -> Self {
        Self {
            code: 0,
            message: String::new(),
        }
    }

    /// Whether this is [`Failure::closed_pipe`].
    pub(crate) fn is_closed_pipe(&self) -> bool {
        self.code == 0 && self.message.is_empty()
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        match &e {
            Error::Api(api) => {
                let json =
                    serde_json::to_string_pretty(&json!({"payload": api.payload(), "diagnostics": api.diagnostics()}))
                        .unwrap_or_else(|_| api.to_string());
                Failure {
                    code: EXIT_API,
                    message: if std::io::stderr().is_terminal() {
                        let resend = if api.is_retryable() {
                            resend_line(&e)
                        } else {
                            String::new()
                        };
                        format!("{}{resend}\n{json}", super::words::commands_not_ids(&what_to_do(api)))
                    } else {
                        json
                    },
                }
            }
            Error::MissingApiKey => Failure {
                code: EXIT_NO_KEY,
                message: "error: no API key: run `tokportal login`, pass --api-key or set TOKPORTAL_API_KEY".into(),
            },
            // A failed connection says where and why already (its root cause).
            Error::Connect { .. } => Failure {
                code: EXIT_TRANSPORT,
                message: format!("error: {e}"),
            },
            Error::Timeout { .. } | Error::Transport { .. } | Error::AnswerLost { .. } => Failure {
                code: EXIT_TRANSPORT,
                message: format!("error: {}{}", crate::error::one_line(&e), resend_line(&e)),
            },
            Error::InvalidArgument { .. } | Error::Io { .. } | Error::Config(_) => Failure::usage(e.to_string()),
            _ => Failure {
                code: EXIT_API,
                message: format!("error: {e}{}", resend_line(&e)),
            },
        }
    }
}

/// The line that tells how to send a failed paid call again without a
/// second charge: its idempotency key, as a flag (nothing when the call had
/// none).
fn resend_line(e: &Error) -> String {
    e.idempotency_key()
        .map(|key| {
            format!("\nto send it again, charged at most once, run the same command with --idempotency-key {key}")
        })
        .unwrap_or_default()
}

/// One plain line for a person: the code, what it means here, what to do.
fn what_to_do(api: &ApiError) -> String {
    let detail = |k: &str| api.details.as_ref().and_then(|d| d.get(k)).and_then(Value::as_f64);
    let code = api.code.as_deref().unwrap_or("HTTP");
    let todo = match (api.code.as_deref(), api.status) {
        (Some("INSUFFICIENT_CREDITS"), _) => match (detail("available"), detail("required")) {
            (Some(have), Some(need)) => format!("{have} available, {need} needed: add credits, then run it again"),
            _ => "add credits, then run it again".into(),
        },
        (_, 401) => format!(
            "{}: check the key with `tokportal auth status`, or `tokportal login`",
            api.message
        ),
        (_, 403) => format!("{}: this key may not do this", api.message),
        (_, 404) => format!("{}: check the id", api.message),
        (_, 422 | 400) => format!("{}: fix the fields named below, then run it again", api.message),
        (_, 428) => format!(
            "{}: read the details below, then send the acceptance as --body",
            api.message
        ),
        (_, 429) => match api.retry_after_seconds {
            Some(s) => format!("{}: wait {s} s, then run it again", api.message),
            None => format!("{}: wait, then run it again", api.message),
        },
        (_, s) if s >= 500 => format!("{}: TokPortal failed; run it again later", api.message),
        _ => api.message.clone(),
    };
    match api.code {
        Some(_) => format!("{code}: {todo}"),
        None => format!("{code} {}: {todo}", api.status),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plain_line_says_what_to_do() {
        let headers = http::HeaderMap::new();
        let body = br#"{"error": {"code": "INSUFFICIENT_CREDITS", "message": "Not enough credits.", "details": {"required": 14, "available": 12}}}"#;
        let api = ApiError::from_parts(http::StatusCode::PAYMENT_REQUIRED, &headers, body);
        assert_eq!(
            what_to_do(&api),
            "INSUFFICIENT_CREDITS: 12 available, 14 needed: add credits, then run it again"
        );
        let api = ApiError::from_parts(http::StatusCode::BAD_GATEWAY, &headers, b"<html>");
        assert_eq!(
            what_to_do(&api),
            "HTTP 502: Bad Gateway: TokPortal failed; run it again later"
        );
    }
}
