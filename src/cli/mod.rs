//! Layer 6: the `tokportal` command line (feature `cli`), one subcommand per
//! operation of the vendored spec (named by kebab-casing the operationId),
//! built from the operation table at run time.
//!
//! - `commands`: the command tree (global flags, one subcommand per operation);
//! - `args`: flags derived from the parameters' JSON Schemas;
//! - `flags`: the call options every operation takes, read before any work;
//! - `call`: running one operation from its parsed flags;
//! - `output`: where the answer is written (stdout, or an `--output` file);
//! - `render`: how it is shown (a table or coloured JSON at a terminal, as
//!   always in a pipe, `--format`), with `jq` for `--jq`;
//! - `confirm`: the question before a paid call at a terminal;
//! - `api`: `tokportal api METHOD PATH`, a raw call through the pipeline;
//! - [`exit`]: exit codes and error messages;
//! - `auth`: `login`, `logout`, `auth status|token`: keys kept in profiles;
//! - `webhooks`: the local `webhooks verify|sign` tools;
//! - `sandbox`: `tokportal sandbox`, the offline TokPortal;
//! - the sandbox's workbench: `listen` (its webhook events forwarded to a
//!   local app), `trigger` (the calls that produce an event), `logs` (`logs
//!   tail` follows its journal), and `workbench`, what they share (finding
//!   and checking the sandbox, following its live feed).
//!
//! The binary (`src/bin/tokportal.rs`) only calls [`run`].

use std::ffi::OsString;
use std::io::Write as _;
use std::process::ExitCode;

mod api;
mod args;
mod auth;
mod body;
mod call;
mod clock;
mod commands;
mod confirm;
pub mod exit;
mod flags;
mod input;
mod jq;
mod listen;
mod logs;
mod nouns;
mod output;
mod render;
mod sandbox;
mod schema;
mod snapshot;
mod stdout;
mod suggest;
mod transcript;
mod trigger;
mod values;
mod webhooks;
mod words;
mod workbench;

use commands::cli_for;
pub use commands::{cli, manual_pages};
use exit::{EXIT_USAGE, Failure};

use crate::operations::OPERATIONS;

/// `X-TokPortal-Client` of the CLI.
pub const IDENTIFIER: &str = concat!("tokportal-rust-cli/", env!("CARGO_PKG_VERSION"));

/// Parses `args` (the program name first), runs the command and returns its
/// exit code; messages go to stderr, answers to stdout.
pub async fn run<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    stdout::quiet_on_closed_pipe();
    let args: Vec<String> = args
        .into_iter()
        .map(|a| a.into().to_string_lossy().into_owned())
        .collect();
    let tree = cli_for(&args);
    let matches = match tree.clone().try_get_matches_from(&args) {
        Ok(m) => m,
        Err(e) => return usage_error(&tree, &args, &e),
    };
    transcript::install(flags::verbosity(&matches));
    let result = match matches.subcommand() {
        Some(("webhooks", sub)) if matches!(sub.subcommand_name(), Some("verify" | "sign")) => webhooks::run(sub),
        Some(("sandbox", sub)) => match sub.subcommand() {
            Some(("clock", clock)) => clock::run(&matches, clock).await,
            Some(("snapshot", snapshot)) => snapshot::run(&matches, snapshot).await,
            Some(("drift", drift)) => sandbox::drift(drift),
            Some(("fixtures-from", from)) => sandbox::fixtures_from(from),
            _ => sandbox::run(sub).await,
        },
        Some(("api", sub)) => api::run(&matches, sub).await,
        Some(("login", sub)) => auth::login(&matches, sub).await,
        Some(("logout", sub)) => auth::logout(&matches, sub),
        Some(("auth", sub)) => auth::auth(&matches, sub).await,
        Some(("listen", sub)) => listen::run(&matches, sub).await,
        Some(("trigger", sub)) => trigger::run(&matches, sub).await,
        Some(("logs", sub)) => logs::run(&matches, sub).await,
        Some(("schema", sub)) => schema::run(sub),
        Some(("completions", sub)) => match sub.get_one::<clap_complete::Shell>("shell") {
            Some(shell) => {
                // Written whole, then once: a reader that closes early is a quiet end.
                let mut script = Vec::new();
                clap_complete::generate(*shell, &mut cli(), "tokportal", &mut script);
                stdout::write(&script)
            }
            None => Ok(()),
        },
        Some((name, sub)) => match OPERATIONS.iter().find(|o| o.cli_command == name) {
            Some(op) => call::run_operation(op, &matches, sub).await,
            None => match noun_verb(name, sub) {
                Some((op, leaf)) => call::run_operation(op, &matches, leaf).await,
                None => Err(Failure::usage(format!("unknown command {name}"))),
            },
        },
        None => Err(Failure::usage("a command is required")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            if !f.message.is_empty() {
                let message = words::commands_not_ids(&f.message);
                let _ = writeln!(std::io::stderr(), "{message}");
            }
            ExitCode::from(f.code)
        }
    }
}

/// The operation a noun-verb command names (`bundles videos configure`),
/// and the matches of its leaf.
fn noun_verb<'m>(
    noun: &str,
    mut sub: &'m clap::ArgMatches,
) -> Option<(&'static crate::operations::Operation, &'m clap::ArgMatches)> {
    let mut path = vec![noun.to_owned()];
    while let Some((name, next)) = sub.subcommand() {
        let nouns: Vec<&str> = path.iter().map(String::as_str).collect();
        if let Some(op) = nouns::at(&nouns, name) {
            return Some((op, next));
        }
        path.push(name.to_owned());
        sub = next;
    }
    None
}

/// A parse failure: help and version (exit 0), one suggestion for an
/// unknown command, clap's message for the rest (exit 2). A reader that
/// went away (`--help | head -1`) is not a failure.
fn usage_error(tree: &clap::Command, args: &[String], e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if e.kind() == ErrorKind::InvalidSubcommand
        && let Some(text) = suggest::unknown_command(tree, args)
    {
        let _ = writeln!(std::io::stderr(), "{text}");
        return ExitCode::from(EXIT_USAGE);
    }
    if !e.use_stderr() {
        let text = e.render().to_string();
        return match stdout::write(words::squeeze_blank_lines(&text).as_bytes()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(f) => ExitCode::from(f.code),
        };
    }
    // clap's own message, without its runs of blank lines.
    let text = words::squeeze_blank_lines(&e.render().to_string());
    let _ = write!(std::io::stderr(), "{text}");
    ExitCode::from(EXIT_USAGE)
}
