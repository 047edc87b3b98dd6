//! Layer 2: arguments checked against the spec's schemas before anything is sent.
//!
//! Every surface comes through here: the dynamic calls ([`args`]), the typed
//! builders (their built request, [`request`]), the uploads' form fields and,
//! above them, the CLI and the MCP server. It reads the operation table and
//! knows nothing of HTTP clients.

pub(crate) mod args;
pub(crate) mod form;
pub(crate) mod request;
pub(crate) mod schema;

pub use args::OperationArgs;
