//! `.dry_run()` on the typed builder of every mutating operation, generated
//! by build.rs from the operation table. Each sends `X-TokPortal-Dry-Run:
//! true`; the pipeline then sends no idempotency key, and a dry run may be
//! retried like any request that changes nothing.

use crate::generated::builder;

include!(concat!(env!("OUT_DIR"), "/dry_run.rs"));
