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

pub use args::{IntoValues, OperationArgs};

/// Says once per operation and name, through `tracing`, that something the
/// vendored contract does not know is sent as given (a newer API accepts it;
/// the server has the last word).
pub(crate) fn sent_as_given(op: &crate::operations::Operation, name: &str) {
    use std::collections::HashSet;
    use std::sync::{Mutex, OnceLock};
    static SEEN: OnceLock<Mutex<HashSet<(&'static str, String)>>> = OnceLock::new();
    let first = SEEN
        .get_or_init(Default::default)
        .lock()
        .map(|mut seen| seen.insert((op.id, name.to_owned())))
        .unwrap_or(true);
    if first {
        tracing::warn!(
            operation = op.id,
            name,
            "{}: `{name}` is not in the vendored contract {}; sent as given",
            op.id,
            crate::operations::SPEC_VERSION
        );
    }
}
