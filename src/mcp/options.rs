//! `tokportal-mcp`'s command line: parsed before anything starts, so that
//! `--help` and `--version` answer at once instead of waiting on stdin.

use clap::{ArgMatches, Command};

/// The command line of `tokportal-mcp`.
pub fn command() -> Command {
    Command::new("tokportal-mcp")
        .version(env!("CARGO_PKG_VERSION"))
        .about("The TokPortal API as an MCP server (stdio)")
        .long_about(
            "The TokPortal API as an MCP server: one tool per operation of the public API, \
             named by its operationId, over stdio (JSON-RPC on stdin/stdout, logs on stderr).",
        )
        .after_help(
            "Environment:\n  TOKPORTAL_API_KEY          the API key every call is made with\n  \
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
