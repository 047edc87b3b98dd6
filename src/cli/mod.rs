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
use std::process::ExitCode;

mod api;
mod args;
mod auth;
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
mod output;
mod render;
mod sandbox;
mod snapshot;
mod transcript;
mod trigger;
mod webhooks;
mod workbench;

pub use commands::cli;
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
    let matches = match cli().try_get_matches_from(args) {
        Ok(m) => m,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { 0 });
        }
    };
    transcript::install(flags::verbosity(&matches));
    let result = match matches.subcommand() {
        Some(("webhooks", sub)) => webhooks::run(sub),
        Some(("sandbox", sub)) => match sub.subcommand() {
            Some(("clock", clock)) => clock::run(&matches, clock).await,
            Some(("snapshot", snapshot)) => snapshot::run(&matches, snapshot).await,
            _ => sandbox::run(sub).await,
        },
        Some(("api", sub)) => api::run(&matches, sub).await,
        Some(("login", sub)) => auth::login(&matches, sub).await,
        Some(("logout", sub)) => auth::logout(&matches, sub),
        Some(("auth", sub)) => auth::auth(&matches, sub).await,
        Some(("listen", sub)) => listen::run(&matches, sub).await,
        Some(("trigger", sub)) => trigger::run(&matches, sub).await,
        Some(("logs", sub)) => logs::run(&matches, sub).await,
        Some(("completions", sub)) => {
            if let Some(shell) = sub.get_one::<clap_complete::Shell>("shell") {
                clap_complete::generate(*shell, &mut cli(), "tokportal", &mut std::io::stdout());
            }
            Ok(())
        }
        Some((name, sub)) => match OPERATIONS.iter().find(|o| o.cli_command == name) {
            Some(op) => call::run_operation(op, &matches, sub).await,
            None => Err(Failure::usage(format!("unknown command {name}"))),
        },
        None => Err(Failure::usage("a command is required")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("{}", f.message);
            ExitCode::from(f.code)
        }
    }
}
