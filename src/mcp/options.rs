//! `tokportal-mcp`'s command line: parsed and checked before anything
//! starts, so that `--help` and `--version` answer at once and a bad option
//! never leaves a half-started server.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::builder::BoolishValueParser;
use clap::{Arg, ArgAction, ArgMatches, Command};

use super::tools::Naming;
use super::toolsets::Selection;

/// The command line of `tokportal-mcp`.
pub fn command() -> Command {
    Command::new("tokportal-mcp")
        .version(env!("CARGO_PKG_VERSION"))
        .about("The TokPortal API as an MCP server (stdio, or streamable HTTP with --http)")
        .long_about(
            "The TokPortal API as an MCP server: one tool per operation of the public API over stdio \
             (JSON-RPC on stdin/stdout, logs on stderr), or over streamable HTTP at /mcp with --http, \
             where each caller sends its own key.",
        )
        .arg(
            Arg::new("toolsets")
                .long("toolsets")
                .value_name("NAMES")
                .env("TOKPORTAL_MCP_TOOLSETS")
                .value_delimiter(',')
                .help("Expose these toolsets only (the kebab-cased tags: bundles, analytics, ..., or all)"),
        )
        .arg(
            Arg::new("tools")
                .long("tools")
                .value_name("IDS")
                .value_delimiter(',')
                .help("Expose these operations (by operationId), besides any toolsets"),
        )
        .arg(
            Arg::new("read_only")
                .long("read-only")
                .env("TOKPORTAL_MCP_READ_ONLY")
                .num_args(0..=1)
                .default_missing_value("true")
                .value_parser(BoolishValueParser::new())
                .help("Expose only operations that change nothing"),
        )
        .arg(
            Arg::new("dynamic")
                .long("dynamic")
                .action(ArgAction::SetTrue)
                .help("List three meta-tools (search, describe, call) instead of one tool per operation"),
        )
        .arg(
            Arg::new("tool_names")
                .long("tool-names")
                .value_name("STYLE")
                .value_parser(["operation-id", "official"])
                .default_value("operation-id")
                .help("operation-id (getCreditBalance) or official (tokportal_get_credit_balance, as TokPortal's hosted server)"),
        )
        .arg(
            Arg::new("http")
                .long("http")
                .value_name("ADDR")
                .value_parser(clap::value_parser!(SocketAddr))
                .help("Serve streamable HTTP at http://ADDR/mcp instead of stdio (e.g. 127.0.0.1:8080)"),
        )
        .arg(
            Arg::new("allow_remote")
                .long("allow-remote")
                .action(ArgAction::SetTrue)
                .help("Allow --http on an address other than loopback (reachable from other machines)"),
        )
        .arg(
            Arg::new("allow_origin")
                .long("allow-origin")
                .value_name("ORIGIN")
                .action(ArgAction::Append)
                .help("A browser origin allowed to call the HTTP server besides loopback ones (repeatable)"),
        )
        .arg(
            Arg::new("allow_dir")
                .long("allow-dir")
                .value_name("DIR")
                .env("TOKPORTAL_MCP_ALLOW_DIRS")
                .value_delimiter(':')
                .action(ArgAction::Append)
                .value_parser(clap::value_parser!(PathBuf))
                .help("A folder uploads may read files from (repeatable). Default: the working folder over stdio, none over HTTP"),
        )
        .after_help(
            "Environment:\n  TOKPORTAL_API_KEY          the API key (stdio; over HTTP each caller sends its own)\n  \
             TOKPORTAL_BASE_URL         the API's address (default https://app.tokportal.com/api/ext)\n  \
             TOKPORTAL_STRICT_CONTRACT  1: refuse what the vendored contract does not know\n  \
             RUST_LOG                   log filter for stderr (default warn)",
        )
}

/// Parses `args` (the program name first). `Err` holds clap's answer: help,
/// the version, or a usage error, to print and exit with.
pub fn parse<I, T>(args: I) -> Result<ArgMatches, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    command().try_get_matches_from(args)
}

/// The server's configuration, checked.
#[derive(Debug, Clone)]
pub struct Options {
    /// The exposed operations.
    pub selection: Selection,
    /// How tools are named.
    pub naming: Naming,
    /// Meta-tools instead of one tool per operation.
    pub dynamic: bool,
    /// Serve HTTP on this address instead of stdio.
    pub http: Option<SocketAddr>,
    /// `--http` may bind beyond loopback.
    pub allow_remote: bool,
    /// Browser origins allowed besides loopback ones.
    pub allowed_origins: Vec<String>,
    /// Folders uploads may read from (`None`: the default for the transport).
    pub allow_dirs: Option<Vec<PathBuf>>,
}

impl Options {
    /// Reads and checks parsed arguments.
    pub fn from_matches(m: &ArgMatches) -> Result<Self, String> {
        let list = |id: &str| -> Vec<String> {
            m.get_many::<String>(id)
                .into_iter()
                .flatten()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect()
        };
        let read_only = m.get_one::<bool>("read_only").copied().unwrap_or(false);
        let selection = Selection::new(&list("toolsets"), &list("tools"), read_only)?;
        let http = m.get_one::<SocketAddr>("http").copied();
        let allow_remote = m.get_flag("allow_remote");
        if let Some(addr) = http
            && !addr.ip().is_loopback()
            && !allow_remote
        {
            return Err(format!(
                "--http {addr} is not a loopback address: other machines could reach this server; \
                 add --allow-remote if that is what you want"
            ));
        }
        Ok(Self {
            selection,
            naming: match m.get_one::<String>("tool_names").map(String::as_str) {
                Some("official") => Naming::Official,
                _ => Naming::OperationId,
            },
            dynamic: m.get_flag("dynamic"),
            http,
            allow_remote,
            allowed_origins: list("allow_origin"),
            allow_dirs: m
                .get_many::<PathBuf>("allow_dir")
                .map(|dirs| dirs.filter(|d| !d.as_os_str().is_empty()).cloned().collect()),
        })
    }
}
