//! Flags derived from the spec: one clap argument per parameter or form
//! field, with a value parser built from its JSON Schema.

use clap::builder::{PossibleValue, TypedValueParser, ValueParser};
use clap::{Arg, ArgAction};
use serde_json::Value;

/// A clap value parser from a parameter's JSON Schema: enums list their
/// values, integers their range, UUIDs and booleans their form.
pub(crate) fn parser_for(schema: &Value) -> ValueParser {
    let schema = match schema.get("type").and_then(Value::as_str) {
        Some("array") => schema.get("items").cloned().unwrap_or(Value::Null),
        _ => schema.clone(),
    };
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        let names: Vec<String> = values.iter().filter_map(Value::as_str).map(str::to_owned).collect();
        return OpenEnumParser(names).into();
    }
    let ty = match schema.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("string")
            .to_owned(),
        _ => "string".into(),
    };
    match ty.as_str() {
        "integer" => {
            let min = schema.get("minimum").and_then(Value::as_i64);
            let max = schema.get("maximum").and_then(Value::as_i64);
            ValueParser::new(move |s: &str| whole_number(s, min, max).map(|v| v.to_string()))
        }
        "number" => ValueParser::new(|s: &str| {
            s.parse::<f64>()
                .map(|_| s.to_owned())
                .map_err(|e| format!("not a number: {e}"))
        }),
        "boolean" => clap::builder::BoolishValueParser::new().map(|v| v.to_string()).into(),
        _ if schema.get("format").and_then(Value::as_str) == Some("uuid") => ValueParser::new(|s: &str| {
            uuid::Uuid::parse_str(s)
                .map(|_| s.to_owned())
                .map_err(|e| format!("not a UUID: {e}"))
        }),
        _ => ValueParser::string(),
    }
}

pub(crate) fn param_arg(name: &str, schema: &Value, required: bool, help: Option<&str>, repeatable: bool) -> Arg {
    // Kebab-case first, as every flag of the CLI; the spec's spelling
    // (`per_page`, `postLimit`) stays accepted, hidden.
    let dashed = kebab(name);
    let mut arg = Arg::new(name.to_owned())
        .long(dashed.clone())
        .value_name(dashed.to_uppercase().replace('-', "_"))
        .required(required)
        .value_parser(parser_for(schema));
    if dashed != name {
        arg = arg.alias(name.to_owned());
    }
    // The contract says "undefined" where it has no description.
    let help = help.filter(|h| !h.trim().is_empty() && h.trim() != "undefined");
    let mut text = help.unwrap_or_default().trim().trim_end_matches('.').to_owned();
    for note in [constraints(schema), repeatable.then(|| "repeatable".to_owned())]
        .into_iter()
        .flatten()
    {
        text = if text.is_empty() {
            note
        } else {
            format!("{text} ({note})")
        };
    }
    if !text.is_empty() {
        arg = arg.help(text);
    }
    if repeatable {
        arg = arg.action(ArgAction::Append);
    }
    arg
}

/// The range and the server's default of a value, for `--help`
/// (`1 to 100; server default 25`). The default is shown, never sent.
pub(crate) fn constraints(schema: &Value) -> Option<String> {
    let schema = match schema.get("type").and_then(Value::as_str) {
        Some("array") => schema.get("items")?,
        _ => schema,
    };
    let min = schema.get("minimum").and_then(Value::as_i64);
    let max = schema.get("maximum").and_then(Value::as_i64);
    let mut parts = Vec::new();
    match (min, max) {
        (Some(a), Some(b)) => parts.push(format!("{a} to {b}")),
        (Some(a), None) => parts.push(format!("at least {a}")),
        (None, Some(b)) => parts.push(format!("at most {b}")),
        (None, None) => {}
    }
    if let Some(default) = schema.get("default").filter(|d| !d.is_null()) {
        let shown = match default {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        parts.push(format!("server default {shown}"));
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// Reads a whole number (`2`, or `2.0` as Python and LLM clients write it)
/// within `min..=max`, as the text sent; `2.5` and out-of-range values are refused.
pub(crate) fn whole_number(raw: &str, min: Option<i64>, max: Option<i64>) -> Result<i64, String> {
    let value = match raw.trim().parse::<i64>() {
        Ok(v) => v,
        Err(_) => match raw.trim().parse::<f64>().map(crate::check::schema::whole) {
            Ok(Some(whole)) => whole,
            Ok(None) => return Err(format!("`{raw}` is not a whole number")),
            Err(_) => return Err(format!("`{raw}` is not a number")),
        },
    };
    match (min, max) {
        (Some(a), Some(b)) if !(a..=b).contains(&value) => Err(format!("{value} is not between {a} and {b}")),
        (Some(a), _) if value < a => Err(format!("{value} is less than the minimum of {a}")),
        (_, Some(b)) if value > b => Err(format!("{value} is greater than the maximum of {b}")),
        _ => Ok(value),
    }
}

/// An enum flag that lists the contract's values in `--help` and completions
/// but takes any value: a newer API may accept more, and the library decides
/// (it warns, or refuses under `--strict`).
#[derive(Clone)]
struct OpenEnumParser(Vec<String>);

impl TypedValueParser for OpenEnumParser {
    type Value = String;

    fn parse_ref(
        &self,
        _cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<String, clap::Error> {
        value
            .to_str()
            .map(str::to_owned)
            .ok_or_else(|| clap::Error::new(clap::error::ErrorKind::InvalidUtf8))
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        Some(Box::new(self.0.iter().map(|v| PossibleValue::new(v.clone()))))
    }
}

/// `bundle_type` and `includePosts` as `bundle-type` and `include-posts`.
pub(crate) fn kebab(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c == '_' {
            out.push('-');
        } else if c.is_ascii_uppercase() {
            if i > 0 && !out.ends_with('-') {
                out.push('-');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// `NAME=VALUE` (`--query`, `tokportal api -q`): the name and the value.
pub(crate) fn name_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_owned(), value.to_owned())),
        _ => Err(format!("`{s}` is not NAME=VALUE")),
    }
}
