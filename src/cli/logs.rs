//! `tokportal logs tail`: follows the sandbox's request journal, a line a
//! request (or a JSON object a line with `--format json`).

use clap::{Arg, ArgMatches, Command};
use serde_json::Value;

use super::exit::Failure;
use super::workbench::{self, Sandbox, snippet};

/// The `logs` subcommand.
pub(crate) fn command() -> Command {
    Command::new("logs")
        .about("Follow the sandbox's request log")
        .subcommand_required(true)
        .subcommand(
            Command::new("tail")
                .about("Print each request the sandbox answers, as it happens (Ctrl-C stops)")
                .arg(
                    Arg::new("operation")
                        .long("operation")
                        .value_name("ID")
                        .help("Only this operation (its operationId, e.g. createBundle)"),
                )
                .arg(
                    Arg::new("status")
                        .long("status")
                        .value_name("STATUS")
                        .help("Only this status (404), class (4xx) or `closed` (no answer)"),
                )
                .arg(
                    Arg::new("format")
                        .long("format")
                        .value_parser(["text", "json"])
                        .default_value("text")
                        .help("A line of text, or a JSON object, a request"),
                )
                .args(workbench::link_args()),
        )
}

/// Follows the journal until interrupted.
pub(crate) async fn run(top: &ArgMatches, m: &ArgMatches) -> Result<(), Failure> {
    let Some(("tail", sub)) = m.subcommand() else {
        return Err(Failure::usage("`logs` takes `tail`"));
    };
    let mut query = vec![("kinds", "request".to_owned())];
    if let Some(op) = sub.get_one::<String>("operation") {
        if crate::operations::find(op).is_none() {
            return Err(Failure::usage(format!(
                "--operation `{op}` is not an operation of the contract"
            )));
        }
        query.push(("operation", op.clone()));
    }
    if let Some(status) = sub.get_one::<String>("status") {
        if !status_filter(status) {
            return Err(Failure::usage(format!(
                "--status `{status}` is not a status (404), a class (4xx) or `closed`"
            )));
        }
        query.push(("status", status.clone()));
    }
    let json = sub.get_one::<String>("format").is_some_and(|f| f == "json");
    let sandbox = Sandbox::find(top, sub, "logs tail").await?;
    let query = serde_urlencoded::to_string(&query).unwrap_or_default();
    let ready = format!("following the requests of {} (Ctrl-C stops)", sandbox.base);
    workbench::follow_forever(&sandbox, &query, &ready, |_, entry| {
        if json {
            super::stdout::line_or_exit(&entry.to_string());
        } else {
            super::stdout::line_or_exit(&line(&entry));
        }
        std::future::ready(())
    })
    .await
}

/// `404`, `4xx`, `closed`.
fn status_filter(raw: &str) -> bool {
    let raw = raw.to_ascii_lowercase();
    raw == "closed"
        || raw
            .strip_suffix("xx")
            .is_some_and(|d| matches!(d, "1" | "2" | "3" | "4" | "5"))
        || raw.parse::<u16>().is_ok_and(|s| (100..=599).contains(&s))
}

/// One request as a line: time, request, status, operation, duration, ids,
/// and what went wrong.
fn line(e: &Value) -> String {
    let text = |v: &Value| v.as_str().unwrap_or("-").to_owned();
    let time = e["time"].as_str().and_then(|t| t.get(11..23)).unwrap_or("-");
    let status = e["status"]
        .as_u64()
        .map_or_else(|| "closed".to_owned(), |s| s.to_string());
    let mut out = format!(
        "{time}  {status:<6} {} {}  {}  {} ms  {}  key {}",
        text(&e["method"]),
        text(&e["path"]),
        text(&e["operation"]),
        e["duration_ms"],
        text(&e["request_id"]),
        text(&e["key"]),
    );
    for (flag, shown) in [("replayed", "replayed"), ("dry_run", "dry run")] {
        if e[flag] == Value::Bool(true) {
            out.push_str(&format!("  [{shown}]"));
        }
    }
    if let Some(fault) = e["fault"].as_str() {
        out.push_str(&format!("  [fault {fault}]"));
    }
    if let Some(violations) = e["violations"].as_array().filter(|v| !v.is_empty()) {
        let named: Vec<String> = violations
            .iter()
            .map(|v| {
                format!(
                    "{}: {}",
                    text(&v["field"]),
                    snippet(v["message"].as_str().unwrap_or_default(), 80)
                )
            })
            .collect();
        out.push_str(&format!("  violations: {}", named.join("; ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_line_names_what_went_wrong() {
        let entry = json!({"time": "2026-12-01T17:20:01.123Z", "method": "POST", "path": "/bundles", "status": 400,
            "operation": "createBundle", "duration_ms": 5.6, "request_id": "req_1", "key": "1a2b3c4d",
            "replayed": false, "dry_run": true, "fault": null,
            "violations": [{"field": "country", "in": "body", "message": "is too long"}]});
        let shown = line(&entry);
        assert_eq!(
            shown,
            "17:20:01.123  400    POST /bundles  createBundle  5.6 ms  req_1  key 1a2b3c4d  [dry run]  violations: country: is too long"
        );
        assert!(status_filter("4XX") && status_filter("closed") && status_filter("404"));
        assert!(!status_filter("4x") && !status_filter("6xx") && !status_filter("99"));
    }
}
