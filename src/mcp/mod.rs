//! Layer 6: the TokPortal API as an MCP server (feature `mcp`).
//!
//! - [`tools`]: one tool per operation (78), named by its operationId,
//!   described and typed from the vendored spec;
//! - [`server`]: the rmcp `ServerHandler` that lists and calls them;
//! - [`options`]: the command line, parsed before anything starts.
//!
//! The binary (`src/bin/tokportal-mcp.rs`) sets up logging and calls
//! [`serve_stdio`].

use rmcp::ServiceExt;

pub mod options;
pub mod server;
pub mod tools;

pub use server::TokPortalMcp;

use crate::{API_KEY_ENV, ClientBuilder};

/// `X-TokPortal-Client` of the MCP server.
pub const IDENTIFIER: &str = concat!("tokportal-rust-mcp/", env!("CARGO_PKG_VERSION"));

/// Why the server stopped or could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The client could not be configured from the environment.
    #[error("{0}")]
    Config(#[from] crate::Error),
    /// The transport failed to start or ended with an error.
    #[error("{0}")]
    Transport(String),
}

/// Serves the MCP protocol over stdin/stdout until the client disconnects,
/// with a client configured from `TOKPORTAL_API_KEY` and `TOKPORTAL_BASE_URL`.
pub async fn serve_stdio() -> Result<(), ServeError> {
    let client = ClientBuilder::from_env().client_identifier(IDENTIFIER).build()?;
    if std::env::var(API_KEY_ENV).is_err() {
        tracing::warn!("TOKPORTAL_API_KEY is not set: only the public operations will work");
    }
    let running = TokPortalMcp::new(client)
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| ServeError::Transport(format!("cannot start: {e}")))?;
    running
        .waiting()
        .await
        .map(|_| ())
        .map_err(|e| ServeError::Transport(e.to_string()))
}
