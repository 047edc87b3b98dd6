//! What a call needs, before it is tried: the example in each command's
//! help, and `tokportal schema OPERATION` (the body's JSON Schema and an
//! example body).
//!
//! The contract carries no request example, so the example is made from
//! the schema: the required fields (or the first one, when none is), each
//! with its first enum value, its default, an example, or a value of its
//! type and format within its bounds. It is the same value the help's
//! example line sends as flags.

use clap::{Arg, ArgMatches, Command};
use serde_json::{Map, Value, json};

use super::body::{self, type_of};
use super::exit::Failure;
use crate::operations::{OPERATIONS, Operation};

/// A value of `schema`: an example, its first enum value, its default, or
/// one of its type and format (`name` picks a readable text).
pub(crate) fn example_value(name: &str, schema: &Value) -> Value {
    if let Some(v) = schema
        .get("example")
        .or_else(|| schema.get("examples").and_then(|e| e.get(0)))
    {
        return v.clone();
    }
    if let Some(v) = schema.get("enum").and_then(|e| e.get(0)) {
        return v.clone();
    }
    if let Some(v) = schema.get("default").filter(|v| !v.is_null()) {
        return v.clone();
    }
    let number = |key: &str| schema.get(key).and_then(Value::as_i64);
    match type_of(schema) {
        "integer" => {
            let low = number("minimum").unwrap_or(1).max(1);
            json!(number("maximum").map_or(low, |high| low.min(high)))
        }
        "number" => json!(1),
        "boolean" => json!(true),
        "array" => {
            let item = schema.get("items").cloned().unwrap_or(Value::Null);
            json!([example_value(name, &item)])
        }
        "object" => example_object(schema, true),
        _ if schema.get("pattern").is_some() => {
            // The contract's patterns are few; the first of these plain
            // values that one accepts (regress: the engine the checks use).
            let pattern = schema.get("pattern").and_then(Value::as_str).unwrap_or_default();
            let accepts = |c: &str| regress::Regex::new(pattern).is_ok_and(|r| r.find(c).is_some());
            let found = ["2026-06-01", "image/png", "video/mp4", "my_account", "evt_0001", "text"]
                .into_iter()
                .find(|c| accepts(c));
            Value::String(found.unwrap_or("text").to_owned())
        }
        _ => Value::String(
            match schema.get("format").and_then(Value::as_str) {
                Some("uuid") => "0b9a58d3-6f61-431d-bfd8-69e9496298b7",
                Some("date") => "2026-06-01",
                Some("date-time") => "2026-06-01T12:00:00Z",
                Some("email") => "you@example.com",
                Some("uri" | "url") => "https://example.com/video.mp4",
                _ if name.contains("date") => "2026-06-01",
                _ if name.contains("url") => "https://example.com/video.mp4",
                _ if name.contains("country") => "USA",
                _ => "text",
            }
            .to_owned(),
        ),
    }
}

/// An object of `schema`'s required properties (or its first, when
/// `at_least_one` and none is required).
fn example_object(schema: &Value, at_least_one: bool) -> Value {
    let mut out = Map::new();
    let props = schema.get("properties").and_then(Value::as_object);
    let required = crate::operations::required_names(schema);
    for (name, prop) in props.into_iter().flatten() {
        if required.contains(&name.as_str()) {
            out.insert(name.clone(), example_value(name, prop));
        }
    }
    if out.is_empty()
        && at_least_one
        && let Some((name, prop)) = props.and_then(|p| p.iter().next())
    {
        out.insert(name.clone(), example_value(name, prop));
    }
    Value::Object(out)
}

/// An example body of `op` (of its schema's first `oneOf`/`anyOf`
/// branch, where it has some).
pub(crate) fn example_body(op: &Operation) -> Option<Value> {
    let mut schema = op.body?.schema();
    match schema
        .get("oneOf")
        .or_else(|| schema.get("anyOf"))
        .and_then(|b| b.get(0))
        .cloned()
    {
        // A branch with its own fields is a body of its own.
        Some(first) if first.get("properties").is_some() => schema = first,
        // A branch that only says which of the fields are required.
        Some(first) => {
            if let (Some(required), Value::Object(map)) = (first.get("required").cloned(), &mut schema) {
                map.insert("required".into(), required);
            }
        }
        None => {}
    }
    Some(example_object(&schema, true))
}

/// A word for a shell: quoted when it needs to be.
fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:@=,+".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// One command line that calls `op` with its required parameters and an
/// example body as flags.
pub(crate) fn example_line(op: &Operation) -> String {
    let mut line = format!("tokportal {}", op.cli_command);
    for p in op.params.iter().filter(|p| p.required) {
        let value = example_value(p.name, &p.schema());
        line.push_str(&format!(
            " --{} {}",
            super::args::kebab(p.name),
            shell_word(&text(&value))
        ));
    }
    if op.is_multipart() {
        line.push_str(" --file ./video.mp4");
        if let Some(b) = op.body {
            for f in b.form_fields().into_iter().filter(|f| f.required) {
                let value = example_value(&f.name, &f.schema);
                line.push_str(&format!(
                    " --{} {}",
                    super::args::kebab(&f.name),
                    shell_word(&text(&value))
                ));
            }
        }
        return line;
    }
    let Some(Value::Object(example)) = example_body(op) else {
        return line;
    };
    let fields = body::fields(op);
    for (name, value) in &example {
        match fields.iter().find(|f| &f.name == name) {
            Some(f) => match value {
                Value::Array(items) => {
                    for item in items {
                        line.push_str(&format!(" --{} {}", f.flag, shell_word(&text(item))));
                    }
                }
                Value::Bool(true) => line.push_str(&format!(" --{}", f.flag)),
                other => line.push_str(&format!(" --{} {}", f.flag, shell_word(&text(other)))),
            },
            None => line.push_str(&format!(" -F {}", shell_word(&format!("{name}={}", text(value))))),
        }
    }
    line
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The operation a person names: its CLI command, its operationId, or its
/// noun-verb form (`bundles create`).
pub(crate) fn named(words: &[String]) -> Option<&'static Operation> {
    let joined = words.join(" ");
    OPERATIONS.iter().find(|op| {
        op.cli_command == joined
            || op.id == joined
            || super::nouns::place(op).is_some_and(|(nouns, verb)| format!("{} {verb}", nouns.join(" ")) == joined)
    })
}

/// `tokportal schema`.
pub(crate) fn command() -> Command {
    Command::new("schema")
        .about("Print an operation's request body: its JSON Schema and an example")
        .long_about(
            "Print an operation's request body as JSON: `schema` (the contract's JSON Schema \
             of the body), `example` (a body made from it: the required fields), and \
             `command` (the same call as flags).",
        )
        .arg(
            Arg::new("operation")
                .required(true)
                .num_args(1..)
                .value_name("OPERATION")
                .help("The command (create-bundle, or bundles create) or its operationId (createBundle)"),
        )
}

/// Runs `tokportal schema OPERATION`.
pub(crate) fn run(m: &ArgMatches) -> Result<(), Failure> {
    let words: Vec<String> = m
        .get_many::<String>("operation")
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    let Some(op) = named(&words) else {
        let joined = words.join(" ");
        let hint = super::suggest::closest_command(&joined)
            .map(|c| format!(": did you mean `{c}`?"))
            .unwrap_or_default();
        return Err(Failure::usage(format!("no operation `{joined}`{hint}")));
    };
    let Some(body) = op.body else {
        return Err(Failure::usage(format!(
            "{} takes no request body; `tokportal {} --help` lists its flags",
            op.cli_command, op.cli_command
        )));
    };
    let doc = json!({
        "operation": op.id,
        "command": op.cli_command,
        "content_type": body.content_type,
        "required": body.required,
        "schema": body.schema(),
        "example": example_body(op),
        "example_command": example_line(op),
    });
    let text = if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        serde_json::to_string_pretty(&doc)
    } else {
        serde_json::to_string(&doc)
    }
    .unwrap_or_default();
    super::stdout::line(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_example_body_passes_the_contract() {
        for op in OPERATIONS.iter().filter(|op| op.body.is_some() && !op.is_multipart()) {
            let body = example_body(op).unwrap();
            let schema = op.body.unwrap().schema();
            let validator = jsonschema::validator_for(&schema).unwrap();
            let errors: Vec<String> = validator.iter_errors(&body).map(|e| e.to_string()).collect();
            assert!(errors.is_empty(), "{}: {body} fails: {errors:?}", op.id);
        }
    }

    #[test]
    fn the_example_line_uses_the_field_flags() {
        let op = crate::operations::find("createBundle").unwrap();
        assert_eq!(example_line(op), "tokportal create-bundle --bundle-type account_only");
        let op = crate::operations::find("configureBundleAccount").unwrap();
        let line = example_line(op);
        assert!(
            line.contains("--username my_account") && line.contains("--visible-name text"),
            "{line}"
        );
        assert!(line.contains("--id 0b9a58d3-"), "{line}");
    }
}
