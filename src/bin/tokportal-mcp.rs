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
//! (`RUST_LOG`, default `warn`) and, during a tool call, to its client as
//! MCP `notifications/message`; stdout carries protocol messages only.

use std::process::ExitCode;

use tokportal::mcp::ServeError;

#[tokio::main]
async fn main() -> ExitCode {
    let matches = match tokportal::mcp::options::parse(std::env::args_os()) {
        Ok(matches) => matches,
        Err(answer) => {
            // --help, --version, or a usage error: answered at once.
            let _ = answer.print();
            return ExitCode::from(if answer.use_stderr() { 2 } else { 0 });
        }
    };
    if let Some(("grants", grants)) = matches.subcommand() {
        return match tokportal::mcp::grants::run(grants).await {
            Ok(text) => {
                println!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("tokportal-mcp grants: {e}");
                ExitCode::from(1)
            }
        };
    }
    let options = match tokportal::mcp::Options::from_matches(&matches) {
        Ok(options) => options,
        Err(e) => {
            eprintln!("tokportal-mcp: {e}");
            return ExitCode::from(2);
        }
    };
    tokportal::mcp::logging::install();
    match tokportal::mcp::run(options).await {
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
