//! `tokportal-mcp`: the TokPortal API as an MCP server over stdio. The server
//! lives in the library's `mcp` module; this is its thin `main`.
//!
//! Configure it as the product docs show:
//!
//! ```json
//! {"mcpServers": {"tokportal": {"command": "tokportal-mcp", "env": {"TOKPORTAL_API_KEY": "sk_..."}}}}
//! ```
//!
//! `TOKPORTAL_BASE_URL` overrides the API's address. Logs go to stderr
//! (`RUST_LOG`, default `warn`); stdout carries protocol messages only.

use std::process::ExitCode;

use tokportal::mcp::ServeError;

#[tokio::main]
async fn main() -> ExitCode {
    if let Err(answer) = tokportal::mcp::options::parse(std::env::args_os()) {
        // --help, --version, or a usage error: answered at once.
        let _ = answer.print();
        return ExitCode::from(if answer.use_stderr() { 2 } else { 0 });
    }
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    match tokportal::mcp::serve_stdio().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tokportal-mcp: {e}");
            ExitCode::from(match e {
                ServeError::Config(_) => 2,
                _ => 1,
            })
        }
    }
}
