//! Layer 6: the TokPortal API as an MCP server (feature `mcp`).
//!
//! - [`options`]: the command line, parsed and checked before anything starts;
//! - [`toolsets`]: the tags as toolsets, and the selection of exposed tools;
//! - [`tools`]: one tool per operation, described and typed from the spec,
//!   annotated from the reviewed hints table (`operations::Hints`);
//! - [`dynamic`]: the three meta-tools of `--dynamic`;
//! - [`files`]: the folders uploads may read from;
//! - [`server`]: the rmcp `ServerHandler`;
//! - [`confirm`]: a paid call sent as a dry run first and confirmed with the
//!   user through elicitation;
//! - `prompts`: the workflows a user runs (launch accounts, schedule
//!   videos, monitor), with a dry run before each paid step;
//! - `resources`: the contract, the operation table and the webhook event
//!   catalog, and bundles and accounts read through the API;
//! - [`http`]: streamable HTTP at `/mcp`, with its Origin and key guard,
//!   stateless or with [`sessions`] (bounded);
//! - [`caller`]: the key an HTTP caller sends, and its fingerprint;
//! - [`limits`]: each caller's concurrent tool calls and their time limit;
//! - [`logging`]: `logging/setLevel`, and what the SDK logs during a call
//!   sent to its client as `notifications/message`;
//! - [`oauth`]: `--oauth`, the server as its own OAuth 2.1 authorization
//!   server for Claude's and ChatGPT's connectors;
//! - [`lifecycle`]: `/healthz`, `/readyz`, and the graceful stop;
//! - [`refusal`]: the HTTP refusals' JSON body;
//! - [`metrics`]: Prometheus metrics at `--metrics ADDR`;
//! - `completion`: `completion/complete` for the prompts' arguments and
//!   the resource templates.
//!
//! The binary (`src/bin/tokportal-mcp.rs`) sets up logging and calls [`run`].

use rmcp::ServiceExt;

pub mod audit;
pub mod budget;
pub mod caller;
mod completion;
pub mod confirm;
pub mod dynamic;
pub mod files;
pub mod grants;
pub mod http;
pub mod lifecycle;
pub mod limits;
pub mod logging;
pub mod metrics;
pub mod oauth;
pub mod options;
mod prompts;
pub mod refusal;
mod resources;
pub mod server;
pub mod sessions;
pub mod store;
pub mod tools;
pub mod toolsets;

pub use options::Options;
pub use server::TokPortalMcp;

use crate::{ClientBuilder, redirect_policy};
use files::FileSandbox;
use server::{Keys, Settings};

/// `X-TokPortal-Client` of the MCP server.
pub const IDENTIFIER: &str = concat!("tokportal-rust-mcp/", env!("CARGO_PKG_VERSION"));

/// Why the server stopped or could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The options or the environment do not make a server.
    #[error("{0}")]
    Config(String),
    /// The transport failed to start or ended with an error.
    #[error("{0}")]
    Transport(String),
}

impl From<crate::Error> for ServeError {
    fn from(e: crate::Error) -> Self {
        ServeError::Config(e.to_string())
    }
}

/// Over stdio, where the environment gives no key (or no base URL), the
/// profile's (`$TOKPORTAL_PROFILE`, else `default`; `tokportal login`), so
/// that an MCP client's config needs no key in plain text.
fn with_profile(mut builder: ClientBuilder) -> ClientBuilder {
    let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
    let (has_key, has_url) = (set(crate::API_KEY_ENV), set(crate::BASE_URL_ENV));
    if has_key && has_url {
        return builder;
    }
    let name = crate::profiles::selected(None);
    let mut keyed = has_key;
    match crate::profiles::Profiles::open().and_then(|store| store.read(&name, !has_key)) {
        Ok(Some(profile)) => {
            if let (false, Some(key)) = (has_key, &profile.key) {
                builder = builder.api_key(key.expose());
                keyed = true;
            }
            if let (false, Some(url)) = (has_url, &profile.base_url) {
                builder = builder.base_url(url.as_str());
            }
        }
        Ok(None) => {}
        Err(e) => tracing::warn!("profile `{name}` not read: {e}"),
    }
    if !keyed {
        tracing::warn!(
            "TOKPORTAL_API_KEY is not set and profile `{name}` holds no key (tokportal login): only the public operations will work"
        );
    }
    builder
}

/// Builds the server for `options` and serves it over stdio or HTTP until
/// the client disconnects (stdio) or the process gets SIGTERM or SIGINT
/// (HTTP: then it drains, see [`lifecycle`]).
/// The API's address and, over stdio, the key come from the environment.
pub async fn run(options: Options) -> Result<(), ServeError> {
    let from_env = ClientBuilder::from_env().client_identifier(IDENTIFIER);
    let files = match (&options.allow_dirs, options.http) {
        (Some(dirs), _) => FileSandbox::new(dirs).map_err(ServeError::Config)?,
        // Over stdio the server runs as its user, for that user: their working folder.
        (None, None) => FileSandbox::new(&[std::env::current_dir().map_err(|e| ServeError::Config(e.to_string()))?])
            .map_err(ServeError::Config)?,
        // Over HTTP, callers are not the server's user: no uploads unless allowed.
        (None, Some(_)) => FileSandbox::off(),
    };
    // The store: what must be used once (OAuth) and the daily budgets.
    // Over stdio, only when a limit asks for one.
    let store = if options.http.is_some() || options.daily_credit_limit.is_some() {
        let store = store::Store::open(&options.store)
            .await
            .map_err(|e| ServeError::Config(e.to_string()))?;
        Some(std::sync::Arc::new(store))
    } else {
        None
    };
    let audit = audit::Audit::open(options.audit_log.as_deref(), options.http.is_some()).map_err(ServeError::Config)?;
    let settings = Settings {
        selection: options.selection.clone(),
        naming: options.naming,
        dynamic: options.dynamic,
        files,
        calls: options.calls,
        confirm_spending: options.confirm_spending,
        budgets: store
            .as_ref()
            .map(|s| budget::Budgets::new(std::sync::Arc::clone(s), options.daily_credit_limit)),
        audit: Some(std::sync::Arc::new(audit)),
    };
    if let Some(addr) = options.metrics {
        metrics::serve(addr).await.map_err(ServeError::Transport)?;
    }
    let Some(addr) = options.http else {
        let from_env = with_profile(from_env);
        let server = TokPortalMcp::with_settings(Keys::Fixed(from_env.build()?), settings);
        let running = server
            .serve(rmcp::transport::stdio())
            .await
            .map_err(|e| ServeError::Transport(format!("cannot start: {e}")))?;
        return running
            .waiting()
            .await
            .map(|_| ())
            .map_err(|e| ServeError::Transport(e.to_string()));
    };
    let http = crate::client::http_builder()
        .redirect(redirect_policy())
        .connect_timeout(std::time::Duration::from_secs(10))
        .build()
        .map_err(|e| ServeError::Config(e.to_string()))?;
    // Checks the base URL once, before serving.
    let base_url = std::env::var(crate::BASE_URL_ENV).ok().filter(|u| !u.trim().is_empty());
    let strict = std::env::var(crate::STRICT_CONTRACT_ENV).is_ok_and(|v| matches!(v.trim(), "1" | "true"));
    from_env.http_client(http.clone()).build()?;
    let server = TokPortalMcp::with_settings(
        Keys::PerRequest {
            http: http.clone(),
            base_url: base_url.clone(),
            strict,
        },
        settings,
    );
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| ServeError::Transport(format!("cannot listen on {addr}: {e}")))?;
    let local = listener
        .local_addr()
        .map_err(|e| ServeError::Transport(e.to_string()))?;
    if !local.ip().is_loopback() {
        say(format_args!(
            "tokportal-mcp: warning: serving on {local}, beyond loopback: anyone who can reach it can use it with their key"
        ));
    }
    let mode = match options.mode {
        http::Mode::Stateless => "stateless".to_owned(),
        http::Mode::Sessions(l) => format!(
            "sessions (at most {}, {} per key, closed after {} s idle)",
            l.max,
            l.per_key,
            l.idle.as_secs()
        ),
    };
    say(format_args!("tokportal-mcp: listening on http://{local}/mcp"));
    say(format_args!(
        "tokportal-mcp: {mode}; probes at http://{local}/healthz and /readyz"
    ));
    if options.daily_credit_limit.is_some() && store.as_ref().is_some_and(|s| s.forgets_on_restart()) {
        say(format_args!(
            "tokportal-mcp: warning: --daily-credit-limit with --store memory: this replica counts only its own \
             spending, and a restart forgets it; replicas behind one address need --store redis://HOST:PORT \
             (or sqlite:PATH on one host) to hold the limit together"
        ));
    }
    let oauth = match options.oauth.clone() {
        Some(o) => {
            let public = o.public_url.to_string();
            let Some(store) = store.clone() else {
                return Err(ServeError::Config("--oauth needs a store".into()));
            };
            if store.forgets_on_restart() {
                say(format_args!(
                    "tokportal-mcp: warning: --store memory: a restart forgets which codes and refresh tokens were used \
                     and which grants were revoked, and replicas do not share them; use --store sqlite:PATH \
                     (one replica) or --store redis://HOST:PORT (many)"
                ));
            } else {
                say(format_args!("tokportal-mcp: store {}", store.url()));
            }
            let built = oauth::OAuth::new(o, http.clone(), base_url.clone(), store).map_err(ServeError::Config)?;
            say(format_args!(
                "tokportal-mcp: OAuth on: issuer {}, metadata at {}",
                public.trim_end_matches('/'),
                built.resource_metadata()
            ));
            Some(std::sync::Arc::new(built))
        }
        None => None,
    };
    let settings = http::HttpSettings {
        oauth,
        origins: http::Origins::new(&options.allowed_origins),
        remote: options.allow_remote,
        mode: options.mode,
        drain_delay: options.drain_delay,
        shutdown_grace: options.shutdown_grace,
    };
    http::serve(listener, server, settings, lifecycle::termination())
        .await
        .map_err(|e| ServeError::Transport(e.to_string()))?;
    say(format_args!("tokportal-mcp: stopped"));
    Ok(())
}

/// A line on stderr for the operator. Unlike `eprintln!`, a closed stderr
/// (a supervisor that stopped reading) does not panic a running server.
pub(crate) fn say(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}
