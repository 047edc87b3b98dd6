//! The command tree: the global flags, one subcommand per operation of the
//! table (grouped by tag in `--help`), and the local tools.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::{Arg, ArgAction, Command};
use serde_json::Value;

use super::args::param_arg;
use crate::operations::{OPERATIONS, Operation};

/// Flags that are not spec parameters; their ids are prefixed so they never
/// clash with a parameter of the same name.
pub(crate) mod flag {
    pub const BODY: &str = "__body";
    pub const BODY_FILE: &str = "__body_file";
    pub const FILE: &str = "__file";
    pub const ALL_PAGES: &str = "__all_pages";
    pub const CONTENT_TYPE: &str = "__content_type";
    pub const QUERY: &str = "__query";
}

fn operation_command(op: &'static Operation) -> Command {
    let mut cmd = Command::new(op.cli_command)
        .about(op.summary)
        .next_help_heading("Parameters");
    let mut long = format!("{}\n\n{} {}", op.summary, op.method.as_str(), op.path);
    if let Some(d) = op.description.filter(|d| *d != op.summary) {
        long = format!("{}\n\n{d}\n\n{} {}", op.summary, op.method.as_str(), op.path);
    }
    cmd = cmd.long_about(long);
    for p in op.params {
        cmd = cmd.arg(param_arg(p.name, &p.schema(), p.required, p.description, p.repeatable));
    }
    if let Some(body) = op.body {
        if op.is_multipart() {
            cmd = cmd.arg(
                Arg::new(flag::FILE)
                    .long("file")
                    .value_name("PATH")
                    .required(true)
                    .value_parser(clap::value_parser!(PathBuf))
                    .help("The file to upload (streamed from disk)"),
            );
            cmd = cmd.arg(
                Arg::new(flag::CONTENT_TYPE)
                    .long("content-type")
                    .help("Content type of the file (default: from its extension)"),
            );
            for field in body.form_fields() {
                let help = field
                    .schema
                    .get("description")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                cmd = cmd.arg(param_arg(
                    &field.name,
                    &field.schema,
                    field.required,
                    help.as_deref(),
                    false,
                ));
            }
        } else {
            cmd = body_args(cmd, body.required, "JSON request body, or - to read it from stdin");
        }
    } else if !op.method.is_read_only() {
        // The contract gives it no body; a newer API may want one (the 428
        // acceptance preview), so one can be sent as given, with a warning.
        cmd = body_args(
            cmd,
            false,
            "JSON request body the vendored contract does not describe, sent as given (or - for stdin)",
        );
    }
    cmd = cmd.arg(
        Arg::new(flag::QUERY)
            .long("query")
            .value_name("NAME=VALUE")
            .action(ArgAction::Append)
            .value_parser(super::args::name_value)
            .help("A query parameter the vendored contract does not know, sent as given (repeatable)"),
    );
    if op.paginated {
        cmd = cmd.arg(
            Arg::new(flag::ALL_PAGES)
                .long("all-pages")
                .action(ArgAction::SetTrue)
                .help("Fetch every page and print each item as one JSON line"),
        );
    }
    // After the parameters, so that `help <command>` shows those first.
    cmd.next_help_heading("Call options").args(super::flags::call_flags())
}

/// `--body`/`--body-file`, one of them required when `required`.
fn body_args(cmd: Command, required: bool, help: &'static str) -> Command {
    cmd.arg(
        Arg::new(flag::BODY)
            .long("body")
            .value_name("JSON")
            .help(help)
            .conflicts_with(flag::BODY_FILE),
    )
    .arg(
        Arg::new(flag::BODY_FILE)
            .long("body-file")
            .value_name("PATH")
            .value_parser(clap::value_parser!(PathBuf))
            .help("Read the JSON request body from a file"),
    )
    .group(
        clap::ArgGroup::new("request_body")
            .args([flag::BODY, flag::BODY_FILE])
            .required(required),
    )
}

/// The whole `tokportal` command tree.
pub fn cli() -> Command {
    let mut groups: BTreeMap<&str, Vec<&Operation>> = BTreeMap::new();
    for op in OPERATIONS {
        groups.entry(op.tag).or_default().push(op);
    }
    let mut listing = String::from("Commands (one per API operation, by tag):\n");
    for (tag, ops) in &groups {
        listing.push_str(&format!("\n  {tag}:\n"));
        for op in ops {
            listing.push_str(&format!("    {:<42} {}\n", op.cli_command, op.summary));
        }
    }
    listing.push_str("\n  Your keys:\n    login [--profile NAME] [--base-url URL]    Check a key and keep it (the OS keyring, or a 0600 file)\n    auth status | auth token                   Which profile and account would pay; the key, for scripts\n    logout [--profile NAME]                    Forget a profile and its key\n");
    listing.push_str("\n  Any path:\n    api METHOD PATH [-q N=V] [--body JSON|@FILE] [-H N:V] [-i]   A raw call through the same pipeline\n");
    listing.push_str("\n  Local tools:\n    webhooks verify / webhooks sign            Check or sign a TokPortal-Signature\n    sandbox [--state FILE]                     Serve an offline TokPortal (free; in memory or in a file)\n    sandbox clock | snapshot                   A running sandbox's clock per key, its state to a file and back\n    completions <shell>                        Shell completions\n");
    listing.push_str("\n  Sandbox workbench (against `tokportal sandbox` only):\n    listen --forward-to URL                    Forward its webhook events to a local app\n    trigger EVENT                              Make the calls that produce an event\n    logs tail                                  Follow its request log\n");
    let mut cmd = Command::new("tokportal")
        .version(env!("CARGO_PKG_VERSION"))
        .about("The TokPortal API from the command line")
        .subcommand_required(true)
        .arg_required_else_help(true)
        .help_template("{about-with-newline}\n{usage-heading} {usage}\n\n{after-help}\nOptions:\n{options}\n")
        .after_help(listing)
        .args(super::flags::call_flags());
    for op in OPERATIONS {
        cmd = cmd.subcommand(operation_command(op));
    }
    cmd = cmd.subcommand(super::api::command());
    for auth in super::auth::commands() {
        cmd = cmd.subcommand(auth);
    }
    cmd.subcommand(super::sandbox::command())
        .subcommand(super::listen::command())
        .subcommand(super::trigger::command())
        .subcommand(super::logs::command())
        .subcommand(
            Command::new("webhooks")
                .about("Verify or sign webhook deliveries locally")
                .subcommand_required(true)
                .subcommand(
                    Command::new("verify")
                        .about("Verify a delivery: prints the event type and id, or why it failed (exit 1)")
                        .arg(
                            Arg::new("secret")
                                .long("secret")
                                .required(true)
                                .action(ArgAction::Append)
                                .help("Signing secret (repeat during a rotation)"),
                        )
                        .arg(
                            Arg::new("header")
                                .long("header")
                                .required(true)
                                .help("The TokPortal-Signature header value"),
                        )
                        .arg(
                            Arg::new("body_file")
                                .long("body-file")
                                .value_parser(clap::value_parser!(PathBuf))
                                .help("The raw body (default: stdin)"),
                        )
                        .arg(
                            Arg::new("tolerance")
                                .long("tolerance")
                                .value_parser(clap::value_parser!(u64))
                                .help("Accepted age in seconds (default 300)"),
                        )
                        .arg(
                            Arg::new("no_age_check")
                                .long("no-age-check")
                                .action(ArgAction::SetTrue)
                                .help("Skip the age check"),
                        ),
                )
                .subcommand(
                    Command::new("sign")
                        .about("Print a valid TokPortal-Signature for a body, for local testing")
                        .arg(Arg::new("secret").long("secret").required(true))
                        .arg(
                            Arg::new("timestamp")
                                .long("timestamp")
                                .value_parser(clap::value_parser!(i64))
                                .help("Unix time (default: now)"),
                        )
                        .arg(
                            Arg::new("body_file")
                                .long("body-file")
                                .value_parser(clap::value_parser!(PathBuf))
                                .help("The raw body (default: stdin)"),
                        ),
                ),
        )
        .subcommand(
            Command::new("completions").about("Print shell completions").arg(
                Arg::new("shell")
                    .required(true)
                    .value_parser(clap::value_parser!(clap_complete::Shell)),
            ),
        )
}
