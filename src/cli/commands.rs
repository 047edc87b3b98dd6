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

/// The command of `op`, named `name` (its flat name, or its verb under a
/// noun): its parameters, its body as flags, the call options.
pub(crate) fn operation_command(op: &'static Operation, name: &'static str) -> Command {
    let mut cmd = Command::new(name).about(op.summary).next_help_heading("Parameters");
    let mut long = format!("{}\n\n{} {}", op.summary, op.method.as_str(), op.path);
    if let Some(d) = op.description.filter(|d| *d != op.summary) {
        long = format!("{}\n\n{d}\n\n{} {}", op.summary, op.method.as_str(), op.path);
    }
    cmd = cmd.long_about(long);
    let mut after = format!("Example:\n  {}", super::schema::example_line(op));
    if let Some((nouns, verb)) = super::nouns::place(op) {
        let other = format!("tokportal {} {verb}", nouns.join(" "));
        if name == op.cli_command {
            after.push_str(&format!("\n\nAlso: {other}"));
        } else {
            after.push_str(&format!("\n\nAlso: tokportal {}", op.cli_command));
        }
    }
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
                    .value_name("TYPE")
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
            cmd = body_args(
                cmd,
                "The whole JSON request body, or - to read it from stdin (field flags are merged over it)",
            );
            cmd = cmd.args(super::body::args(op));
            after.push_str(&format!(
                "\n\nThe body's JSON Schema and an example: tokportal schema {}",
                op.cli_command
            ));
        }
    } else if !op.method.is_read_only() {
        // The contract gives it no body; a newer API may want one (the 428
        // acceptance preview), so one can be sent as given, with a warning.
        cmd = body_args(
            cmd,
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
    cmd.next_help_heading("Call options")
        .args(super::flags::call_flags())
        .after_help(after)
}

/// `--body`/`--body-file`: neither is required by clap, since field flags
/// may make the body; `cli::call` says what is missing.
fn body_args(cmd: Command, help: &'static str) -> Command {
    cmd.arg(
        Arg::new(flag::BODY)
            .long("body")
            .value_name("JSON")
            .help(help)
            .help_heading("Body fields")
            .conflicts_with(flag::BODY_FILE),
    )
    .arg(
        Arg::new(flag::BODY_FILE)
            .long("body-file")
            .value_name("PATH")
            .value_parser(clap::value_parser!(PathBuf))
            .help_heading("Body fields")
            .help("Read the JSON request body from a file"),
    )
}

/// A command named but not to be run: its name and line in `--help`, no
/// arguments (built whole only when it is the one run; see [`cli_for`]).
fn stub(name: &'static str, about: &'static str) -> Command {
    Command::new(name).about(about)
}

/// The noun `nouns` (its last word names it) with its nouns and verbs
/// below it, whole, or as stubs below the top unless `whole`.
fn noun_command(nouns: &[&'static str], whole: bool) -> Command {
    let name = nouns.last().copied().unwrap_or_default();
    let mut cmd = Command::new(name)
        .about(super::nouns::about(name))
        .subcommand_required(true)
        .arg_required_else_help(true);
    let (below, verbs) = super::nouns::children(nouns);
    for (verb, op) in verbs {
        cmd = cmd.subcommand(if whole {
            operation_command(op, verb)
        } else {
            stub(verb, op.summary)
        });
    }
    for noun in below {
        let mut path = nouns.to_vec();
        path.push(noun);
        cmd = cmd.subcommand(noun_command(&path, whole));
    }
    cmd
}

/// The first word of `args` (the program name first) that is not a flag
/// or a flag's value: the command to be run, built whole by [`cli_for`].
fn first_word(args: &[String]) -> Option<&str> {
    let takes_value: Vec<String> = super::flags::call_flags()
        .iter()
        .filter(|a| a.get_action().takes_values())
        .filter_map(|a| a.get_long().map(str::to_owned))
        .collect();
    let mut words = args.iter().skip(1);
    while let Some(word) = words.next() {
        if let Some(long) = word.strip_prefix("--") {
            if !long.contains('=') && takes_value.iter().any(|t| t == long) {
                words.next();
            }
            continue;
        }
        if word == "-o" {
            words.next();
            continue;
        }
        if word.starts_with('-') {
            continue;
        }
        return Some(word.as_str());
    }
    None
}

/// The whole `tokportal` command tree (for completions, manuals and help).
pub fn cli() -> Command {
    tree(None)
}

/// The commands a manual page is written for (`cargo xtask regen` renders
/// them into `docs/man/`), built, each with its display name
/// (`tokportal-create-bundle`): the root, every flat command and local
/// tool with their subcommands; a noun (`bundles`) gets a page listing its
/// verbs, its verbs none of their own (each is a flat command's page).
pub fn manual_pages() -> Vec<Command> {
    let mut root = cli().disable_help_subcommand(true);
    root.build();
    let nouns = super::nouns::top_nouns();
    let mut pages = vec![root.clone()];
    fn walk(cmd: &Command, pages: &mut Vec<Command>) {
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            pages.push(sub.clone());
            walk(sub, pages);
        }
    }
    for sub in root.get_subcommands().filter(|s| !s.is_hide_set()) {
        pages.push(sub.clone());
        if sub.get_name() == "webhooks" {
            // Its local tools; its API verbs are the flat commands' pages.
            for local in sub
                .get_subcommands()
                .filter(|s| matches!(s.get_name(), "verify" | "sign"))
            {
                pages.push(local.clone());
            }
        } else if !nouns.contains(&sub.get_name()) {
            walk(sub, &mut pages);
        }
    }
    pages
}

/// The tree for running `args`: the command they name is built whole, the
/// others as names with their line of help (what start-up builds stays
/// small as the contract grows).
pub(crate) fn cli_for(args: &[String]) -> Command {
    match first_word(args) {
        Some("help" | "completions") => tree(None),
        // `--version`, `--help` or nothing: the root alone (its help lists
        // the commands from the table, not from their built arguments).
        None => tree(Some("")),
        Some(word) => tree(Some(word)),
    }
}

fn tree(only: Option<&str>) -> Command {
    let whole = |name: &str| only.is_none_or(|o| o == name);
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
    listing.push_str(
        "\n  The same commands by noun and verb (tokportal bundles create, tokportal bundles videos configure):\n    ",
    );
    listing.push_str(&super::nouns::top_nouns().join(", "));
    listing.push('\n');
    listing.push_str("\n  Your keys:\n    login [--profile NAME] [--base-url URL]    Check a key and keep it (the OS keyring, or a 0600 file)\n    auth status | auth token                   Which profile and account would pay; the key, for scripts\n    logout [--profile NAME]                    Forget a profile and its key\n");
    listing.push_str("\n  Any path:\n    api METHOD PATH [-q N=V] [--body JSON|@FILE] [-H N:V] [-i]   A raw call through the same pipeline\n");
    listing.push_str("\n  Local tools:\n    webhooks verify / webhooks sign            Check or sign a TokPortal-Signature\n    sandbox [--state FILE]                     Serve an offline TokPortal (free; in memory or in a file)\n    sandbox clock | snapshot                   A running sandbox's clock per key, its state to a file and back\n    schema OPERATION                           An operation's body: its JSON Schema and an example\n    completions <shell>                        Shell completions\n");
    listing.push_str("\n  Sandbox workbench (against `tokportal sandbox` only):\n    listen --forward-to URL                    Forward its webhook events to a local app\n    trigger EVENT                              Make the calls that produce an event\n    logs tail                                  Follow its request log\n");
    let mut cmd = Command::new("tokportal")
        .version(env!("CARGO_PKG_VERSION"))
        .about("The TokPortal API from the command line")
        .subcommand_required(true)
        .arg_required_else_help(true)
        .help_template("{about-with-newline}\n{usage-heading} {usage}\n\n{after-help}\n\nOptions:\n{options}\n")
        .after_help(listing)
        .args(super::flags::call_flags());
    for op in OPERATIONS {
        cmd = cmd.subcommand(if whole(op.cli_command) {
            operation_command(op, op.cli_command)
        } else {
            stub(op.cli_command, op.summary)
        });
    }
    for noun in super::nouns::top_nouns().into_iter().filter(|n| *n != "webhooks") {
        cmd = cmd.subcommand(noun_command(&[noun], whole(noun)));
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
            noun_command(&["webhooks"], whole("webhooks"))
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
        .subcommand(super::schema::command())
        .subcommand(
            Command::new("completions").about("Print shell completions").arg(
                Arg::new("shell")
                    .required(true)
                    .value_parser(clap::value_parser!(clap_complete::Shell)),
            ),
        )
}
