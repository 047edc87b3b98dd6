//! `tokportal sandbox clock`: a key's clock in a running sandbox. Shows it,
//! puts the key on a simulated clock (`set`), moves it forward (`advance
//! 3d`, `advance --to TIME`), or puts it back on real time (`real`).

use clap::{Arg, ArgMatches, Command};
use serde_json::{Map, Value, json};

use super::exit::{EXIT_NO_KEY, Failure};
use super::flags::CallFlags;
use super::workbench::{self, Sandbox};

/// The `clock` subcommand of `sandbox`.
pub(crate) fn command() -> Command {
    let format = || {
        Arg::new("format")
            .long("format")
            .value_parser(["text", "json"])
            .default_value("text")
            .help("Lines for a person, or the sandbox's JSON answer")
    };
    let leaf = |c: Command| c.arg(format()).args(workbench::link_args());
    Command::new("clock")
        .about("Show, set or advance a key's clock in a running sandbox")
        .long_about(
            "A key is on real time until its clock is set: then it stands still until advanced, \
             and the account manager's work (review, posting on the date, corrections) happens \
             as the clock passes it, with its webhooks, in order. Without a subcommand, shows \
             the clock and the steps waiting on it.",
        )
        .subcommand(leaf(Command::new("show").about("The key's clock and the steps waiting on it")))
        .subcommand(leaf(
            Command::new("set")
                .about("Put the key on a simulated clock, standing still")
                .arg(
                    Arg::new("at")
                        .long("at")
                        .value_name("TIME")
                        .help("Where it stands (RFC 3339, e.g. 2026-06-01T00:00:00Z); default now"),
                )
                .arg(
                    Arg::new("delay")
                        .long("delay")
                        .value_name("NAME=DURATION")
                        .action(clap::ArgAction::Append)
                        .help("A manager's delay: account=48h, corrections=24h, video=12h, auto_finalize=48h (repeatable)"),
                ),
        ))
        .subcommand(leaf(
            Command::new("advance")
                .about("Move the clock forward, doing every step that falls due on the way")
                .arg(
                    Arg::new("by")
                        .value_name("DURATION")
                        .conflicts_with("to")
                        .help("How far: 36h, 3d, 1d12h, 90m"),
                )
                .arg(
                    Arg::new("to")
                        .long("to")
                        .value_name("TIME")
                        .help("To this time (RFC 3339)"),
                )
                .arg(
                    Arg::new("next")
                        .long("next")
                        .action(clap::ArgAction::SetTrue)
                        .conflicts_with_all(["by", "to"])
                        .help("To the next step waiting"),
                ),
        ))
        .subcommand(leaf(
            Command::new("real").about("Put the key back on real time (steps still waiting are dropped)"),
        ))
        .arg(format())
        .args(workbench::link_args())
}

/// Runs `sandbox clock ...`.
pub(crate) async fn run(top: &ArgMatches, m: &ArgMatches) -> Result<(), Failure> {
    let (name, sub) = m.subcommand().unwrap_or(("show", m));
    let key = CallFlags::read(top, sub).api_key.ok_or_else(|| Failure {
        code: EXIT_NO_KEY,
        message: "error: a clock is per API key: pass --api-key or set TOKPORTAL_API_KEY".into(),
    })?;
    let json_out = sub.get_one::<String>("format").is_some_and(|f| f == "json");
    // Everything is checked before the sandbox is asked anything.
    let request = match name {
        "set" => {
            let mut body = Map::new();
            if let Some(at) = sub.get_one::<String>("at") {
                chrono::DateTime::parse_from_rfc3339(at)
                    .map_err(|_| Failure::usage(format!("--at `{at}` is not an RFC 3339 time")))?;
                body.insert("frozen_at".into(), json!(at));
            }
            let mut delays = Map::new();
            for pair in sub.get_many::<String>("delay").into_iter().flatten() {
                let (name, value) = pair
                    .split_once('=')
                    .ok_or_else(|| Failure::usage(format!("--delay `{pair}` is not NAME=DURATION")))?;
                delays.insert(name.to_owned(), json!(value));
            }
            body.insert("delays".into(), Value::Object(delays));
            Some((reqwest::Method::POST, "clock", Some(Value::Object(body))))
        }
        "advance" => match (sub.get_one::<String>("by"), sub.get_one::<String>("to")) {
            (Some(by), _) => Some((reqwest::Method::POST, "clock/advance", Some(json!({ "by": by })))),
            (_, Some(to)) => Some((reqwest::Method::POST, "clock/advance", Some(json!({ "to": to })))),
            _ if sub.get_flag("next") => None,
            _ => {
                return Err(Failure::usage(
                    "`clock advance` takes a DURATION (3d), --to TIME or --next",
                ));
            }
        },
        "real" => Some((reqwest::Method::DELETE, "clock", None)),
        _ => Some((reqwest::Method::GET, "clock", None)),
    };
    let sandbox = Sandbox::find(top, sub, "sandbox clock").await?;
    let answer = match request {
        Some((method, route, body)) => sandbox.control(method, route, &key, body).await?,
        None => {
            let clock = sandbox.control(reqwest::Method::GET, "clock", &key, None).await?;
            let Some(next) = clock["next_at"].as_str() else {
                return Err(Failure::usage("no step waits on this key's clock"));
            };
            let body = json!({ "to": next });
            sandbox
                .control(reqwest::Method::POST, "clock/advance", &key, Some(body))
                .await?
        }
    };
    if json_out {
        super::stdout::line(&answer.to_string())
    } else {
        super::stdout::write(text(&answer).as_bytes())
    }
}

/// A clock or an advance, as lines.
fn text(answer: &Value) -> String {
    let mut out = String::new();
    let now = answer["now"].as_str().unwrap_or("?");
    match answer.get("simulated").and_then(Value::as_bool) {
        Some(true) => out.push_str(&format!("now {now} (simulated)\n")),
        Some(false) => out.push_str(&format!("now {now} (real time)\n")),
        None => out.push_str(&format!("now {now}\n")),
    }
    for t in answer["transitions"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "  {}  {} {}  {} -> {}  {}\n",
            t["at"].as_str().unwrap_or("?"),
            t["resource"].as_str().unwrap_or("?"),
            t["id"].as_str().unwrap_or("?"),
            t["from"].as_str().unwrap_or("-"),
            t["to"].as_str().unwrap_or("?"),
            t["event"].as_str().unwrap_or("(held: download issue)"),
        ));
    }
    if let Some(pending) = answer["pending"].as_array() {
        if pending.is_empty() {
            out.push_str("nothing waits\n");
        }
        for p in pending {
            let position = p["position"]
                .as_u64()
                .map(|n| format!(" video {n}"))
                .unwrap_or_default();
            out.push_str(&format!(
                "  waits {}  {}  bundle {}{position}\n",
                p["at"].as_str().unwrap_or("?"),
                p["step"].as_str().unwrap_or("?"),
                p["bundle_id"].as_str().unwrap_or("?"),
            ));
        }
    } else if let Some(n) = answer["pending"].as_u64() {
        out.push_str(&format!("{n} steps still wait\n"));
    }
    out
}
