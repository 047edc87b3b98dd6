//! Layer 5: the calls a user makes on a [`Client`](crate::Client), beside the
//! typed builders that progenitor generates (`crate::generated`).
//!
//! - [`dynamic`]: any operation by operationId, with JSON arguments;
//! - [`uploads`]: the three multipart operations, streamed from disk;
//! - [`pagination`]: every page of a list operation as a stream;
//! - [`raw`]: a call by method and path, checked as its operation where it
//!   matches one (`tokportal api`).
//!
//! Each goes through the checks and the request pipeline below; none knows
//! the CLI or the MCP server.

mod dry_run;
pub(crate) mod dynamic;
pub mod pagination;
pub mod raw;
pub mod uploads;
