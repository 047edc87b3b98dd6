//! `tokportal sandbox`: serves the offline TokPortal until interrupted.

use std::io::Write;
use std::net::IpAddr;

use clap::{Arg, ArgMatches, Command};

use super::exit::{EXIT_DRIFT, EXIT_USAGE, Failure};
use crate::sandbox::{Sandbox, SandboxOptions};

/// The port `tokportal sandbox` listens on unless told: fixed, so that a
/// profile saved against it (`tokportal login --base-url
/// http://127.0.0.1:8787`) still works after a restart, as stripe-mock keeps
/// 12111 and LocalStack 4566. `--port 0` takes a free one. (The library's
/// `SandboxOptions` keeps 0, which tests running side by side need.)
pub(crate) const DEFAULT_PORT: u16 = 8787;

/// The `sandbox` subcommand.
pub(crate) fn command() -> Command {
    Command::new("sandbox")
        .about("Serve an offline TokPortal that enforces the API contract (free; in memory, or in a file with --state)")
        .long_about(
            "Serve an offline TokPortal on this machine: every request is checked against the \
             vendored contract, state lives per API key (any `sk_...` key works) in memory, or in a \
             SQLite file with --state (kept across restarts and kill -9), \
             webhooks are delivered signed, and faults can be asked for with the \
             `X-Sandbox-Fault` header (503, 500, 502, 429, reset, lost, slow, slow=SECONDS).\n\n\
             Prints `listening on http://HOST:PORT`; point TOKPORTAL_BASE_URL at it. The next \
             line is the inspector page's address: the requests live, each one's headers, \
             bodies and contract violations, the state per key and the webhook deliveries.",
        )
        .args_conflicts_with_subcommands(true)
        .subcommand(super::clock::command())
        .subcommand(super::snapshot::command())
        .subcommand(
            Command::new("drift")
                .about("Check a recording (HAR: --record's, or a browser's) against the contract; exit 6 on drift with --fail-on-drift")
                .arg(Arg::new("file").value_name("FILE").required(true).value_parser(clap::value_parser!(std::path::PathBuf)).help("The HAR file"))
                .arg(
                    Arg::new("format")
                        .long("format")
                        .value_parser(["table", "json"])
                        .default_value("table")
                        .help("A table, or the report as JSON (what GET /_sandbox/drift answers)"),
                )
                .arg(
                    Arg::new("fail_on_drift")
                        .long("fail-on-drift")
                        .action(clap::ArgAction::SetTrue)
                        .help("Exit 6 when anything drifted (for a scheduled CI job)"),
                ),
        )
        .subcommand(
            Command::new("fixtures-from")
                .about("Write a fixtures file that makes again, through the contract, what a recording's changes made")
                .arg(Arg::new("file").value_name("FILE").required(true).value_parser(clap::value_parser!(std::path::PathBuf)).help("The HAR file"))
                .arg(
                    Arg::new("output")
                        .long("output")
                        .short('o')
                        .value_name("OUT")
                        .value_parser(clap::value_parser!(std::path::PathBuf))
                        .help("Write to OUT instead of standard output"),
                ),
        )
        .arg(
            Arg::new("port")
                .long("port")
                .default_value(DEFAULT_PORT.to_string())
                .value_parser(clap::value_parser!(u16))
                .help("Port to listen on (0: a free one, printed on the first line)"),
        )
        .arg(
            Arg::new("host")
                .long("host")
                .default_value("127.0.0.1")
                .value_parser(clap::value_parser!(IpAddr))
                .help("Address to bind; anything but loopback lets other machines in"),
        )
        .arg(
            Arg::new("fault_rate")
                .long("fault-rate")
                .default_value("0")
                .value_parser(clap::value_parser!(f64))
                .help("Share of requests (0 to 1) answered with a random 503, 429 or closed connection"),
        )
        .arg(
            Arg::new("seed")
                .long("seed")
                .value_parser(clap::value_parser!(u64))
                .help("Seed of the random faults, for a repeatable run"),
        )
        .arg(
            Arg::new("credits")
                .long("credits")
                .default_value("1000")
                .value_parser(clap::value_parser!(f64))
                .help("Credits each new API key starts with"),
        )
        .arg(
            Arg::new("lenient")
                .long("lenient")
                .action(clap::ArgAction::SetTrue)
                .help("Accept body properties, query parameters and enum values this contract does not know (kept, echoed, named in X-Sandbox-Warning): for clients newer than the vendored contract"),
        )
        .arg(
            Arg::new("journal")
                .long("journal")
                .value_name("N")
                .default_value("1000")
                .value_parser(clap::value_parser!(u64).range(0..=1_000_000))
                .help("Requests the journal keeps for the inspector and `logs tail` (0: none)"),
        )
        .arg(
            Arg::new("state")
                .long("state")
                .value_name("FILE")
                .value_parser(clap::value_parser!(std::path::PathBuf))
                .help("Keep the state in this SQLite file: it survives restarts and kill -9 (made 0600 if missing, with its -wal and -shm; one sandbox a file; one with a schema not the sandbox's own is refused)"),
        )
        .arg(
            Arg::new("fixtures")
                .long("fixtures")
                .value_name("FILE")
                .action(clap::ArgAction::Append)
                .value_parser(clap::value_parser!(std::path::PathBuf))
                .help("Seed keys at start-up with these named steps (YAML or JSON; repeatable); a failing step stops start-up"),
        )
        .arg(
            Arg::new("fixture_env")
                .long("fixture-env")
                .value_name("NAME")
                .action(clap::ArgAction::Append)
                .help("Let fixtures' ${env:NAME} read this variable too (repeatable); by default they read only TOKPORTAL_FIXTURE_* variables, and a fixture naming another is refused"),
        )
        .arg(
            Arg::new("allow_host")
                .long("allow-host")
                .value_name("NAME")
                .action(clap::ArgAction::Append)
                .help("Answer this Host name too (repeatable; for a container or remote use): on loopback, every route refuses any other non-loopback Host (403), against DNS rebinding"),
        )
        .arg(
            Arg::new("proxy")
                .long("proxy")
                .value_name("URL")
                .help_heading("Live API")
                .help("Pass every API request to the live API at URL (e.g. https://app.tokportal.com/api/ext) with the caller's key, answers unchanged, each checked for drift (GET /_sandbox/drift)"),
        )
        .arg(
            Arg::new("record")
                .long("record")
                .value_name("FILE")
                .requires("proxy")
                .help_heading("Live API")
                .value_parser(clap::value_parser!(std::path::PathBuf))
                .help("Append each proxied exchange to FILE as HAR 1.2 (keys and secrets redacted; 0600)"),
        )
        .arg(
            Arg::new("allow_spend")
                .long("allow-spend")
                .requires("proxy")
                .help_heading("Live API")
                .action(clap::ArgAction::SetTrue)
                .help("Let paid calls through the proxy (without it they are refused unsent; dry runs always pass)"),
        )
        .arg(
            Arg::new("fail_on_drift")
                .long("fail-on-drift")
                .requires("proxy")
                .help_heading("Live API")
                .action(clap::ArgAction::SetTrue)
                .help("On stop, exit 6 if any live answer drifted from the contract"),
        )
        .arg(
            Arg::new("replay")
                .long("replay")
                .value_name("FILE")
                .conflicts_with("proxy")
                .help_heading("Live API")
                .value_parser(clap::value_parser!(std::path::PathBuf))
                .help("Answer requests a recording holds (same method, path, query and body) with its answers; others as usual"),
        )
        .arg(
            Arg::new("replay_strict")
                .long("replay-strict")
                .requires("replay")
                .help_heading("Live API")
                .action(clap::ArgAction::SetTrue)
                .help("With --replay, answer what the recording does not hold with 404 NOT_RECORDED"),
        )
        .arg(
            Arg::new("webhook_duplicates")
                .long("webhook-duplicates")
                .value_name("RATE")
                .default_value("0")
                .value_parser(clap::value_parser!(f64))
                .help("Share of webhook deliveries (0 to 1) sent twice with the same TokPortal-Event-Id, as production may"),
        )
        .arg(
            Arg::new("rate_limit")
                .long("rate-limit")
                .default_value("120")
                .value_parser(clap::value_parser!(u32))
                .help("Token-bucket size per API key"),
        )
}

/// Serves until Ctrl-C.
pub(crate) async fn run(m: &ArgMatches) -> Result<(), Failure> {
    let mut options = SandboxOptions::default();
    options.host = m.get_one::<IpAddr>("host").copied().unwrap_or(options.host);
    options.port = m.get_one::<u16>("port").copied().unwrap_or_default();
    options.fault_rate = m.get_one::<f64>("fault_rate").copied().unwrap_or_default();
    options.seed = m.get_one::<u64>("seed").copied();
    options.initial_credits = m.get_one::<f64>("credits").copied().unwrap_or(options.initial_credits);
    options.rate_limit = m.get_one::<u32>("rate_limit").copied().unwrap_or(options.rate_limit);
    options.lenient = m.get_flag("lenient");
    options.state = m.get_one::<std::path::PathBuf>("state").cloned();
    options.fixtures = m
        .get_many::<std::path::PathBuf>("fixtures")
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    options.fixture_env = m
        .get_many::<String>("fixture_env")
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    options.allow_hosts = m
        .get_many::<String>("allow_host")
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    options.webhook_duplicates = m.get_one::<f64>("webhook_duplicates").copied().unwrap_or_default();
    options.journal = m.get_one::<u64>("journal").map_or(options.journal, |n| *n as usize);
    options.proxy = m.get_one::<String>("proxy").cloned();
    options.record = m.get_one::<std::path::PathBuf>("record").cloned();
    options.allow_spend = m.get_flag("allow_spend");
    options.replay = m.get_one::<std::path::PathBuf>("replay").cloned();
    options.replay_strict = m.get_flag("replay_strict");
    let fail_on_drift = m.get_flag("fail_on_drift");
    if !options.host.is_loopback() {
        eprintln!(
            "warning: the sandbox listens on {}, beyond this machine; it has no real data, but anyone who reaches it can read its journal (request bodies, webhook URLs; never keys) at /_sandbox/ and reset it",
            options.host
        );
    }
    let port = options.port;
    let sandbox = Sandbox::start_with(options).await.map_err(|e| Failure {
        code: EXIT_USAGE,
        message: match &e {
            crate::sandbox::SandboxError::Bind { addr, source } if source.kind() == std::io::ErrorKind::AddrInUse => {
                format!(
                    "error: port {port} is taken ({addr}: another sandbox, or another program): `tokportal sandbox --port 0` takes a free one, or give --port N"
                )
            }
            _ => format!("error: {e}"),
        },
    })?;
    // One write, errors ignored: a script that reads the first line and
    // closes the pipe must not stop the sandbox.
    let started = format!(
        "listening on {url}\ninspector at {url}/_sandbox/\n",
        url = sandbox.url()
    );
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(started.as_bytes()).and_then(|()| stdout.flush());
    drop(stdout);
    let proxying = m.get_one::<String>("proxy");
    match proxying {
        Some(live) => eprintln!(
            "passing requests to {live} with each caller's own key{}; drift at {}/_sandbox/drift",
            if m.get_flag("allow_spend") {
                ", paid calls included"
            } else {
                " (paid calls refused: --allow-spend lets them through)"
            },
            sandbox.url()
        ),
        None => eprintln!(
            "try: TOKPORTAL_BASE_URL={} TOKPORTAL_API_KEY=sk_test_sandbox tokportal get-current-user",
            sandbox.url()
        ),
    }
    stopped().await;
    let report = sandbox.drift();
    sandbox.shutdown().await;
    if proxying.is_some() {
        eprint!("{}", report.table());
        if fail_on_drift && !report.is_clean() {
            return Err(Failure {
                code: EXIT_DRIFT,
                message: format!(
                    "error: the live API drifted from the vendored contract ({} findings)",
                    report.findings
                ),
            });
        }
    }
    Ok(())
}

/// Ctrl-C, or (on Unix) SIGTERM, as `docker stop`, `kill` and CI runners
/// send: either stops the sandbox the same way.
async fn stopped() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// `tokportal sandbox drift FILE`.
pub(crate) fn drift(m: &ArgMatches) -> Result<(), Failure> {
    let file = m
        .get_one::<std::path::PathBuf>("file")
        .ok_or_else(|| Failure::usage("error: a recording (FILE) is required"))?;
    let report = crate::sandbox::check_recording(file).map_err(|e| Failure::usage(e.to_string()))?;
    let text = match m.get_one::<String>("format").map(String::as_str) {
        Some("json") => format!(
            "{}\n",
            serde_json::to_string_pretty(&report).map_err(|e| Failure::usage(e.to_string()))?
        ),
        _ => report.table(),
    };
    super::stdout::write(text.as_bytes())?;
    if m.get_flag("fail_on_drift") && !report.is_clean() {
        return Err(Failure {
            code: EXIT_DRIFT,
            message: format!(
                "error: {} finding{} of drift from the vendored contract",
                report.findings,
                if report.findings == 1 { "" } else { "s" }
            ),
        });
    }
    Ok(())
}

/// `tokportal sandbox fixtures-from FILE`.
pub(crate) fn fixtures_from(m: &ArgMatches) -> Result<(), Failure> {
    let file = m
        .get_one::<std::path::PathBuf>("file")
        .ok_or_else(|| Failure::usage("error: a recording (FILE) is required"))?;
    let (yaml, steps) = crate::sandbox::fixtures_from_recording(file).map_err(|e| Failure::usage(e.to_string()))?;
    match m.get_one::<std::path::PathBuf>("output") {
        Some(out) => {
            std::fs::write(out, yaml).map_err(|e| Failure::usage(format!("cannot write {}: {e}", out.display())))?;
            eprintln!(
                "wrote {steps} step{} to {}",
                if steps == 1 { "" } else { "s" },
                out.display()
            );
            Ok(())
        }
        None => super::stdout::write(yaml.as_bytes()),
    }
}
