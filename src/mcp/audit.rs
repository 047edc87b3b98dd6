//! An audit line for every paid or destructive tool call: who (the grant,
//! never a token; the client; the key's fingerprint, never the key), what
//! (the tool, its cost), and how it ended (sent, refused by the daily
//! limit, declined, failed), with TokPortal's request id and the
//! idempotency key, so that "who spent 500 credits yesterday, with which
//! tool?" has an answer.
//!
//! One JSON object a line, appended to `--audit-log FILE` (created 0600),
//! or, without it, written to standard output over HTTP (where stdout
//! carries nothing else) and logged under the target `audit` over stdio
//! (where stdout is the protocol's).

use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use serde::Serialize;

/// How a paid or destructive call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Sent, and answered with a success.
    Sent,
    /// Refused unsent: the daily credit limit could not pay it.
    RefusedByLimit,
    /// Refused unsent: the user declined (or unticked, or cancelled).
    Declined,
    /// Sent, and failed (an error answer, or no answer: see the
    /// idempotency key).
    Failed,
}

/// One line.
#[derive(Debug, Clone, Serialize)]
pub struct Line<'a> {
    /// RFC 3339, UTC.
    pub time: String,
    /// The OAuth grant, when the caller came with a token.
    pub grant: Option<&'a str>,
    /// The client's name, when known.
    pub client_name: Option<&'a str>,
    /// The client's id, as a digest.
    pub client_id: Option<&'a str>,
    /// The TokPortal key's fingerprint.
    pub key: &'a str,
    /// The tool (the operation's id).
    pub tool: &'a str,
    /// Credits: charged when known, else the price the dry run gave.
    pub cost: Option<f64>,
    /// How it ended.
    pub outcome: Outcome,
    /// `X-TokPortal-Request-ID`, when an answer came.
    pub request_id: Option<&'a str>,
    /// The idempotency key it was sent under.
    pub idempotency_key: Option<&'a str>,
}

enum Sink {
    File(Mutex<std::fs::File>),
    Stdout,
    Log,
}

/// Where audit lines go.
pub struct Audit {
    sink: Sink,
}

impl std::fmt::Debug for Audit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.sink {
            Sink::File(_) => "Audit(file)",
            Sink::Stdout => "Audit(stdout)",
            Sink::Log => "Audit(log)",
        })
    }
}

impl Audit {
    /// Lines to `path` (appended; created 0600), else to stdout (`http`)
    /// or the log (stdio).
    pub fn open(path: Option<&Path>, http: bool) -> Result<Self, String> {
        let sink = match path {
            Some(path) => {
                let mut options = std::fs::OpenOptions::new();
                options.append(true).create(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    options.mode(0o600);
                }
                let file = options
                    .open(path)
                    .map_err(|e| format!("--audit-log {}: {e}", path.display()))?;
                Sink::File(Mutex::new(file))
            }
            None if http => Sink::Stdout,
            None => Sink::Log,
        };
        Ok(Self { sink })
    }

    /// Writes `line`. A failure to write is logged, never the call's.
    pub fn write(&self, line: &Line<'_>) {
        let Ok(mut text) = serde_json::to_string(line) else {
            return;
        };
        match &self.sink {
            Sink::Log => tracing::info!(target: "audit", "{text}"),
            Sink::Stdout => {
                text.push('\n');
                let _ = std::io::stdout().lock().write_all(text.as_bytes());
            }
            Sink::File(file) => {
                text.push('\n');
                let mut file = file.lock().unwrap_or_else(|p| p.into_inner());
                if let Err(e) = file.write_all(text.as_bytes()) {
                    tracing::error!(error = %e, "an audit line could not be written");
                }
            }
        }
    }
}

/// Now, for a line.
pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_appended_as_json_to_a_0600_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let audit = Audit::open(Some(&path), true).unwrap();
        for outcome in [Outcome::Sent, Outcome::RefusedByLimit] {
            audit.write(&Line {
                time: now(),
                grant: Some("g-1"),
                client_name: Some("Claude"),
                client_id: Some("c0ffee"),
                key: "k1",
                tool: "createBundle",
                cost: Some(10.0),
                outcome,
                request_id: None,
                idempotency_key: Some("idem-1"),
            });
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1]["outcome"], "refused_by_limit");
        assert_eq!(lines[0]["tool"], "createBundle");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }
}
