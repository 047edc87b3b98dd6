//! Layer 5: the calls a user makes on a [`Client`](crate::Client), beside the
//! typed builders that progenitor generates (`crate::generated`).
//!
//! - [`dynamic`]: any operation by operationId, with JSON arguments;
//! - [`uploads`]: the three multipart operations, streamed from disk;
//! - [`pagination`]: every page of a list operation as a stream.
//!
//! Each goes through the checks and the request pipeline below; none knows
//! the CLI or the MCP server.

mod dry_run;
pub(crate) mod dynamic;
pub mod pagination;
pub mod uploads;
