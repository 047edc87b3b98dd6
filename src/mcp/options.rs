//! `tokportal-mcp`'s command line: parsed and checked before anything
//! starts, so that `--help` and `--version` answer at once and a bad option
//! never leaves a half-started server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::BoolishValueParser;
use clap::{Arg, ArgAction, ArgMatches, Command};

pub use super::confirm::ConfirmSpending;
use super::http::Mode;
use super::limits::CallLimits;
use super::sessions::SessionLimits;
use super::tools::Naming;
use super::toolsets::Selection;

/// A whole number of at least 1, for counts and seconds.
fn positive() -> clap::builder::RangedU64ValueParser<u64> {
    clap::value_parser!(u64).range(1..)
}

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
            Arg::new("confirm_spending")
                .long("confirm-spending")
                .value_name("WHEN")
                .value_parser(["elicit", "never"])
                .default_value("elicit")
                .help("elicit: a paid call is first sent as a dry run and the user asked (elicitation/create) when the client can be asked; never: call at once"),
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
            Arg::new("metrics")
                .long("metrics")
                .value_name("ADDR")
                .value_parser(clap::value_parser!(SocketAddr))
                .help("Serve Prometheus metrics at http://ADDR/metrics, on a listener of their own (e.g. 127.0.0.1:9464); off by default"),
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
        .arg(
            Arg::new("stateless")
                .requires("http")
                .long("stateless")
                .action(ArgAction::SetTrue)
                .conflicts_with("sessions")
                .help_heading("HTTP serving")
                .help("Serve every request on its own, with no session store (the default with --http): any replica behind a load balancer can answer"),
        )
        .arg(
            Arg::new("sessions")
                .requires("http")
                .long("sessions")
                .action(ArgAction::SetTrue)
                .help_heading("HTTP serving")
                .help("Keep MCP sessions (Mcp-Session-Id), bounded by the three options below; one replica must serve each session"),
        )
        .arg(
            Arg::new("max_sessions")
                .requires("sessions")
                .long("max-sessions")
                .value_name("N")
                .default_value("1000")
                .value_parser(positive())
                .help_heading("HTTP serving")
                .help("With --sessions: live sessions at most; past that, initialize gets 503 with Retry-After"),
        )
        .arg(
            Arg::new("max_sessions_per_key")
                .requires("sessions")
                .long("max-sessions-per-key")
                .value_name("N")
                .default_value("32")
                .value_parser(positive())
                .help_heading("HTTP serving")
                .help("With --sessions: live sessions one API key may hold"),
        )
        .arg(
            Arg::new("session_idle")
                .requires("sessions")
                .long("session-idle")
                .value_name("SECONDS")
                .default_value("600")
                .value_parser(positive())
                .help_heading("HTTP serving")
                .help("With --sessions: a session unused this long is closed"),
        )
        .arg(
            Arg::new("max_calls_per_key")
                .long("max-calls-per-key")
                .value_name("N")
                .default_value("16")
                .value_parser(positive())
                .help_heading("Limits")
                .help("Tool calls one API key may have running at once; past that, a JSON-RPC error (-32029)"),
        )
        .arg(
            Arg::new("call_timeout")
                .long("call-timeout")
                .value_name("SECONDS")
                .default_value("300")
                .value_parser(positive())
                .help_heading("Limits")
                .help("How long one tool call may take, retries included"),
        )
        .arg(
            Arg::new("shutdown_grace")
                .requires("http")
                .long("shutdown-grace")
                .value_name("SECONDS")
                .default_value("30")
                .value_parser(clap::value_parser!(u64))
                .help_heading("HTTP serving")
                .help("On SIGTERM or SIGINT: how long requests in flight may take to finish before the server exits"),
        )
        .arg(
            Arg::new("oauth")
                .requires("http")
                .requires("public_url")
                .long("oauth")
                .action(ArgAction::SetTrue)
                .help_heading("OAuth (Claude and ChatGPT connectors)")
                .help("Be an OAuth 2.1 authorization server too: tokens that wrap the user's key; API keys as Bearer keep working"),
        )
        .arg(
            Arg::new("public_url")
                .requires("oauth")
                .long("public-url")
                .value_name("URL")
                .value_parser(clap::value_parser!(url::Url))
                .help_heading("OAuth (Claude and ChatGPT connectors)")
                .help("The address clients use (the same for every replica behind a load balancer): the issuer, and the tokens' audience URL/mcp"),
        )
        .arg(
            Arg::new("oauth_secret_file")
                .requires("oauth")
                .long("oauth-secret-file")
                .value_name("FILE")
                .value_parser(clap::value_parser!(PathBuf))
                .help_heading("OAuth (Claude and ChatGPT connectors)")
                .help("A file holding the sealing secret (else $TOKPORTAL_MCP_OAUTH_SECRET); at least 32 bytes, the same on every replica"),
        )
        .arg(
            Arg::new("oauth_access_ttl")
                .requires("oauth")
                .long("oauth-access-ttl")
                .value_name("SECONDS")
                .default_value("3600")
                .value_parser(clap::value_parser!(u64).range(1..=86_400))
                .help_heading("OAuth (Claude and ChatGPT connectors)")
                .help("How long an access token lasts (refresh tokens: 30 days; codes: 60 s)"),
        )
        .arg(
            Arg::new("store")
                .long("store")
                .value_name("URL")
                .env("TOKPORTAL_MCP_STORE")
                .default_value("memory")
                .value_parser(|s: &str| s.parse::<super::store::StoreUrl>())
                .help_heading("OAuth (Claude and ChatGPT connectors)")
                .help("Where what must be used once, and grants, are kept: memory (one replica; a restart forgets), sqlite:PATH (one replica that restarts), redis://HOST:PORT[/DB] (any number of replicas)"),
        )
        .arg(
            Arg::new("daily_credit_limit")
                .long("daily-credit-limit")
                .value_name("CREDITS")
                .env("TOKPORTAL_MCP_DAILY_CREDIT_LIMIT")
                .value_parser(clap::value_parser!(u64))
                .help_heading("Spending")
                .help("At most this many credits a UTC day for each connection (an OAuth grant, or an API key); a limit chosen on the consent page may only be lower. Kept in --store, so replicas sharing it share the limit"),
        )
        .arg(
            Arg::new("audit_log")
                .long("audit-log")
                .value_name("FILE")
                .value_parser(clap::value_parser!(PathBuf))
                .help_heading("Spending")
                .help("Append one JSON line per paid or destructive call to FILE (created 0600); without it, over HTTP, to standard output, and over stdio, to the log under the target `audit`"),
        )
        .arg(
            Arg::new("allow_redirect_scheme")
                .requires("oauth")
                .long("allow-redirect-scheme")
                .value_name("SCHEME")
                .action(ArgAction::Append)
                .help_heading("OAuth (Claude and ChatGPT connectors)")
                .help("An app's own redirect scheme to accept although it is not a reverse domain name (cursor); repeatable"),
        )
        .subcommand(
            Command::new("grants")
                .about("See and end the OAuth grants (connections) a store holds, while the servers run; never shows a token or a key")
                .subcommand_required(true)
                .arg(
                    Arg::new("store")
                        .long("store")
                        .value_name("URL")
                        .env("TOKPORTAL_MCP_STORE")
                        .global(true)
                        .value_parser(|s: &str| s.parse::<super::store::StoreUrl>())
                        .help("The servers' store: sqlite:PATH or redis://HOST:PORT[/DB]"),
                )
                .subcommand(
                    Command::new("list")
                        .about("Every grant not yet expired: id, client, key fingerprint, scope, refreshes, state")
                        .arg(
                            Arg::new("json")
                                .long("json")
                                .action(ArgAction::SetTrue)
                                .help("One JSON document instead of a table"),
                        ),
                )
                .subcommand(
                    Command::new("revoke")
                        .about("End grants: their refresh and access tokens are refused at their next use, on every replica")
                        .arg(
                            Arg::new("ids")
                                .value_name("GRANT_ID")
                                .required(true)
                                .num_args(1..)
                                .help("The grants' ids (from `grants list`)"),
                        ),
                ),
        )
        .arg(
            Arg::new("drain_delay")
                .requires("http")
                .long("drain-delay")
                .value_name("SECONDS")
                .default_value("0")
                .value_parser(clap::value_parser!(u64))
                .help_heading("HTTP serving")
                .help("On SIGTERM or SIGINT: how long /readyz answers 503 while connections are still taken, before the listener closes"),
        )
        .after_help(
            "Environment:\n  TOKPORTAL_API_KEY          the API key (stdio; over HTTP each caller sends its own)\n  \
             TOKPORTAL_PROFILE          stdio without TOKPORTAL_API_KEY: the profile whose key to use (tokportal login)\n  \
             TOKPORTAL_BASE_URL         the API's address (default https://app.tokportal.com/api/ext)\n  \
             TOKPORTAL_STRICT_CONTRACT  1: refuse what the vendored contract does not know\n  \
             TOKPORTAL_MCP_OAUTH_SECRET --oauth: the sealing secret shared by the replicas (or --oauth-secret-file)\n  \
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

/// The environment variable holding `--oauth`'s sealing secret.
pub const OAUTH_SECRET_ENV: &str = "TOKPORTAL_MCP_OAUTH_SECRET";

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
    /// `--metrics`: serve Prometheus metrics on this address.
    pub metrics: Option<SocketAddr>,
    /// Browser origins allowed besides loopback ones.
    pub allowed_origins: Vec<String>,
    /// Folders uploads may read from (`None`: the default for the transport).
    pub allow_dirs: Option<Vec<PathBuf>>,
    /// Over HTTP: stateless (the default) or bounded sessions.
    pub mode: Mode,
    /// Limits on each caller's tool calls.
    pub calls: CallLimits,
    /// Over HTTP: how long `/readyz` says 503 before the listener closes.
    pub drain_delay: Duration,
    /// Over HTTP: how long requests in flight may take after that.
    pub shutdown_grace: Duration,
    /// Whether a paid call is confirmed with the user first.
    pub confirm_spending: ConfirmSpending,
    /// `--oauth`: the authorization server's settings.
    pub oauth: Option<super::oauth::OAuthSettings>,
    /// `--store`: where what must be used once is kept.
    pub store: super::store::StoreUrl,
    /// `--daily-credit-limit`: credits a UTC day for each connection.
    pub daily_credit_limit: Option<u64>,
    /// `--audit-log`: where audit lines are appended.
    pub audit_log: Option<PathBuf>,
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
        let metrics = m.get_one::<SocketAddr>("metrics").copied();
        if let Some(addr) = metrics
            && !addr.ip().is_loopback()
            && !allow_remote
        {
            return Err(format!(
                "--metrics {addr} is not a loopback address: other machines could read the metrics; \
                 add --allow-remote if that is what you want"
            ));
        }
        if let Some(addr) = http
            && !addr.ip().is_loopback()
            && !allow_remote
        {
            return Err(format!(
                "--http {addr} is not a loopback address: other machines could reach this server; \
                 add --allow-remote if that is what you want"
            ));
        }
        let number = |id: &str| m.get_one::<u64>(id).copied().unwrap_or(0);
        let seconds = |id: &str| Duration::from_secs(number(id));
        let count = |id: &str| usize::try_from(number(id)).unwrap_or(usize::MAX);
        let mode = if m.get_flag("sessions") {
            Mode::Sessions(SessionLimits {
                max: count("max_sessions"),
                per_key: count("max_sessions_per_key"),
                idle: seconds("session_idle"),
                ..SessionLimits::default()
            })
        } else {
            Mode::Stateless
        };
        let oauth = if m.get_flag("oauth") {
            let public_url = m
                .get_one::<url::Url>("public_url")
                .cloned()
                .ok_or("--oauth needs --public-url URL")?;
            let secret = match m.get_one::<PathBuf>("oauth_secret_file") {
                Some(path) => {
                    std::fs::read_to_string(path).map_err(|e| format!("--oauth-secret-file {}: {e}", path.display()))?
                }
                None => std::env::var(OAUTH_SECRET_ENV).map_err(|_| {
                    format!("--oauth needs a secret: set {OAUTH_SECRET_ENV} or --oauth-secret-file FILE")
                })?,
            };
            let secret = secret.trim().to_owned();
            if secret.len() < super::oauth::seal::MIN_SECRET {
                return Err(format!(
                    "the OAuth secret has {} bytes; it needs at least {} (openssl rand -hex 32)",
                    secret.len(),
                    super::oauth::seal::MIN_SECRET
                ));
            }
            Some(super::oauth::OAuthSettings {
                public_url,
                secret: crate::Secret::new(secret),
                access_ttl: Duration::from_secs(number("oauth_access_ttl").max(1)),
                refresh_ttl: super::oauth::REFRESH_TTL,
                code_ttl: super::oauth::CODE_TTL,
                redirect_schemes: list("allow_redirect_scheme"),
                daily_credit_limit: m.get_one::<u64>("daily_credit_limit").copied(),
            })
        } else {
            None
        };
        Ok(Self {
            oauth,
            store: m
                .get_one::<super::store::StoreUrl>("store")
                .cloned()
                .unwrap_or(super::store::StoreUrl::Memory),
            daily_credit_limit: m.get_one::<u64>("daily_credit_limit").copied(),
            audit_log: m.get_one::<PathBuf>("audit_log").cloned(),
            mode,
            calls: CallLimits {
                per_key: count("max_calls_per_key"),
                timeout: seconds("call_timeout"),
            },
            drain_delay: seconds("drain_delay"),
            shutdown_grace: seconds("shutdown_grace"),
            selection,
            naming: match m.get_one::<String>("tool_names").map(String::as_str) {
                Some("official") => Naming::Official,
                _ => Naming::OperationId,
            },
            dynamic: m.get_flag("dynamic"),
            confirm_spending: match m.get_one::<String>("confirm_spending").map(String::as_str) {
                Some("never") => ConfirmSpending::Never,
                _ => ConfirmSpending::Elicit,
            },
            http,
            allow_remote,
            metrics,
            allowed_origins: list("allow_origin"),
            allow_dirs: m
                .get_many::<PathBuf>("allow_dir")
                .map(|dirs| dirs.filter(|d| !d.as_os_str().is_empty()).cloned().collect()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_well_formed_and_the_store_parsed() {
        command().debug_assert();
        let m = parse(["tokportal-mcp", "--store", "sqlite:/tmp/s.db"]).unwrap();
        let options = Options::from_matches(&m).unwrap();
        assert_eq!(options.store, super::super::store::StoreUrl::Sqlite("/tmp/s.db".into()));
        assert!(parse(["tokportal-mcp", "--store", "postgres://x"]).is_err());
        let m = parse(["tokportal-mcp", "grants", "list", "--store", "redis://127.0.0.1:6379/1"]).unwrap();
        let (_, grants) = m.subcommand().unwrap();
        assert!(grants.get_one::<super::super::store::StoreUrl>("store").is_some());
    }
}
