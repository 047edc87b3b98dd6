//! Writing answers: JSON (pretty on a terminal), text, or a file.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use serde_json::Value;

use super::exit::{EXIT_API, Failure};
use crate::ResponseBody;

pub(crate) fn print_json(value: &Value, compact: bool) -> Result<(), Failure> {
    let pretty = !compact && std::io::stdout().is_terminal();
    let text = if pretty {
        serde_json::to_string_pretty(value)
    } else {
        serde_json::to_string(value)
    }
    .map_err(|e| Failure {
        code: EXIT_API,
        message: format!("error: {e}"),
    })?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}").map_err(|e| Failure {
        code: EXIT_API,
        message: format!("error: stdout: {e}"),
    })
}

pub(crate) fn write_body(body: ResponseBody, output: Option<&PathBuf>, compact: bool) -> Result<(), Failure> {
    let bytes = match (&body, output) {
        (ResponseBody::Json(v), None) => return print_json(v, compact),
        (ResponseBody::Empty, None) => return Ok(()),
        (ResponseBody::Json(v), Some(_)) => serde_json::to_vec_pretty(v).unwrap_or_default(),
        (ResponseBody::Text(t), _) => t.clone().into_bytes(),
        (ResponseBody::Empty, Some(_)) => Vec::new(),
    };
    match output {
        Some(path) => {
            std::fs::write(path, bytes).map_err(|e| Failure::usage(format!("cannot write {}: {e}", path.display())))
        }
        None => std::io::stdout().lock().write_all(&bytes).map_err(|e| Failure {
            code: EXIT_API,
            message: format!("error: stdout: {e}"),
        }),
    }
}
