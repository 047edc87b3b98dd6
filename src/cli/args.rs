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
            let min = schema.get("minimum").and_then(Value::as_i64).unwrap_or(i64::MIN);
            let max = schema.get("maximum").and_then(Value::as_i64).unwrap_or(i64::MAX);
            clap::value_parser!(i64).range(min..=max).map(|v| v.to_string()).into()
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
    let dashed = name.replace('_', "-");
    let mut arg = Arg::new(name.to_owned())
        .long(name.to_owned())
        .value_name(name.to_uppercase())
        .required(required)
        .value_parser(parser_for(schema));
    if dashed != name {
        arg = arg.visible_alias(dashed);
    }
    if let Some(help) = help {
        arg = arg.help(help.to_owned());
    }
    if repeatable {
        arg = arg
            .action(ArgAction::Append)
            .help(format!("{} (repeatable)", help.unwrap_or("")).trim().to_owned());
    }
    arg
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
