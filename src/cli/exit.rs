//! Exit codes, and how an [`Error`] becomes one with its message for stderr.
//!
//! 0 success, 1 API error (JSON `{"payload", "diagnostics"}` on stderr),
//! 2 usage error, 3 missing API key, 4 transport failure.

use serde_json::json;

use crate::Error;

/// An API error answer (or an answer that could not be read).
pub const EXIT_API: u8 = 1;
/// A usage error: bad flags, an unreadable file; nothing was sent.
pub const EXIT_USAGE: u8 = 2;
/// The operation needs an API key and none was given.
pub const EXIT_NO_KEY: u8 = 3;
/// The request could not be completed (connect, timeout, reset).
pub const EXIT_TRANSPORT: u8 = 4;

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
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        match &e {
            Error::Api(api) => Failure {
                code: EXIT_API,
                message: serde_json::to_string_pretty(
                    &json!({"payload": api.payload(), "diagnostics": api.diagnostics()}),
                )
                .unwrap_or_else(|_| api.to_string()),
            },
            Error::MissingApiKey => Failure {
                code: EXIT_NO_KEY,
                message: "error: no API key: run `tokportal login`, pass --api-key or set TOKPORTAL_API_KEY".into(),
            },
            // A failed connection says where and why already (its root cause).
            Error::Connect(_) => Failure {
                code: EXIT_TRANSPORT,
                message: format!("error: {e}"),
            },
            Error::Timeout { .. } | Error::Transport(_) | Error::AnswerLost { .. } => Failure {
                code: EXIT_TRANSPORT,
                message: format!("error: {}", crate::error::one_line(&e)),
            },
            Error::InvalidArgument { .. } | Error::Io { .. } | Error::Config(_) => Failure::usage(e.to_string()),
            _ => Failure {
                code: EXIT_API,
                message: format!("error: {e}"),
            },
        }
    }
}
