//! Layer 6: the `tokportal` command line (feature `cli`), one subcommand per
//! operation of the vendored spec (named by kebab-casing the operationId),
//! built from the operation table at run time.
//!
//! - `commands`: the command tree (global flags, one subcommand per operation);
//! - `args`: flags derived from the parameters' JSON Schemas;
//! - `flags`: the call options every operation takes, read before any work;
//! - `call`: running one operation from its parsed flags;
//! - `output`: where and how the answer is written;
//! - [`exit`]: exit codes and error messages;
//! - `webhooks`: the local `webhooks verify|sign` tools;
//! - `sandbox`: `tokportal sandbox`, the offline TokPortal.
//!
//! The binary (`src/bin/tokportal.rs`) only calls [`run`].

use std::ffi::OsString;
use std::process::ExitCode;

mod args;
mod call;
mod commands;
pub mod exit;
mod flags;
mod input;
mod output;
mod sandbox;
mod transcript;
mod webhooks;

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
        Some(("sandbox", sub)) => sandbox::run(sub).await,
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
