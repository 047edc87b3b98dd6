//! Values the contract does not list, said in one human line before the
//! call: "`acount_only` is not a --bundle-type value this contract knows:
//! did you mean `account_only`?". It is still sent as given (a newer API
//! may accept it; the server has the last word), unless `--strict`, which
//! refuses it here, before anything is sent.
//!
//! The library says the same through `tracing` (`check::sent_as_given`);
//! the CLI's warning layer (`transcript`) leaves out the names said here,
//! so each is said once.

use std::sync::Mutex;

use serde_json::Value;

use super::exit::Failure;
use crate::OperationArgs;
use crate::operations::Operation;

/// The names already said here, as the library names them (`body/bundle_type`, `status`).
static SAID: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Whether a library warning about `name` was already said in a human line.
pub(crate) fn already_said(name: &str) -> bool {
    SAID.lock()
        .map(|said| {
            said.iter().any(|s| {
                name.strip_prefix(s.as_str())
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '/']))
            })
        })
        .unwrap_or(false)
}

/// The enum values of a schema (of its items, for a list).
fn allowed(schema: &Value) -> Option<Vec<&str>> {
    let schema = if schema.get("type").and_then(Value::as_str) == Some("array") {
        schema.get("items")?
    } else {
        schema
    };
    let values = schema.get("enum")?.as_array()?;
    Some(values.iter().filter_map(Value::as_str).collect())
}

/// One line per value outside its enum; under `strict`, the first refuses the call.
pub(crate) fn check(op: &Operation, args: &OperationArgs, strict: bool) -> Result<(), Failure> {
    let mut lines = Vec::new();
    let mut look = |flag: String, key: String, schema: &Value, given: &Value| {
        let Some(allowed) = allowed(schema) else { return };
        let given: Vec<&str> = match given {
            Value::String(s) => vec![s.as_str()],
            Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        for value in given.into_iter().filter(|v| !allowed.contains(v)) {
            let hint = super::suggest::closest(value, allowed.iter().copied())
                .map(|c| format!(" (did you mean `{c}`?)"))
                .unwrap_or_else(|| format!(" (it knows {})", allowed.join(", ")));
            lines.push(format!("`{value}` is not a {flag} value this contract knows{hint}"));
            if let Ok(mut said) = SAID.lock() {
                said.push(key.clone());
            }
        }
    };
    for p in op.params {
        if let Some(given) = args.query.get(p.name).or_else(|| args.path.get(p.name)) {
            look(
                format!("--{}", super::args::kebab(p.name)),
                p.name.to_owned(),
                &p.schema(),
                given,
            );
        }
    }
    if let Some(Value::Object(body)) = &args.body {
        for field in super::body::fields(op) {
            if let Some(given) = body.get(&field.name) {
                look(
                    format!("--{}", field.flag),
                    format!("body/{}", field.name),
                    &field.schema,
                    given,
                );
            }
        }
    }
    if strict && let Some(first) = lines.first() {
        return Err(Failure::usage(format!(
            "{first}; --strict refuses it, nothing was sent"
        )));
    }
    for line in lines {
        eprintln!("warning: {line}; sent as given");
    }
    Ok(())
}
