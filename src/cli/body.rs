//! Bodies as flags: every top-level field of an operation's JSON body is a
//! flag of its own (`--bundle-type account_only --videos-quantity 5`),
//! typed from its schema (enums listed and completed, integers ranged,
//! arrays repeated), and nested values are set as `gh api` sets them:
//! `-F/--field key=value` typed (`true`, `false`, `null`, numbers, JSON
//! arrays and objects, `@file` read as JSON or as text, `@-` for stdin)
//! and `-f/--raw-field key=value` as a string, with dotted paths
//! (`videos.0.position=1`) and `key[]=value` appending to an array.
//!
//! The flags are merged over `--body`/`--body-file` in the order they were
//! typed, so `--country USA --videos-quantity 5` sends exactly the bytes of
//! `--body '{"country":"USA","videos_quantity":5}'`. A field set twice by
//! flags is refused; every body is then checked against the contract by the
//! library before anything is sent, as a `--body` is.
//!
//! A field whose flag name is taken (by a parameter, a call option or one
//! of the command's own flags) is prefixed `--body-`, and its help says so.

use std::collections::HashSet;

use clap::{Arg, ArgAction, ArgMatches};
use serde_json::{Map, Value};

use super::args::kebab;
use super::exit::Failure;
use crate::operations::Operation;

/// The arg id prefix of a body field's flag (never a spec name).
const ID: &str = "__field:";
/// `-F/--field`.
pub(crate) const TYPED: &str = "__typed_field";
/// `-f/--raw-field`.
pub(crate) const RAW: &str = "__raw_field";

/// One top-level field of a JSON body, as a flag.
pub(crate) struct BodyField {
    /// Its name in the body.
    pub(crate) name: String,
    /// Its long flag, kebab-case (prefixed `body-` when taken).
    pub(crate) flag: String,
    pub(crate) schema: Value,
    pub(crate) required: bool,
    /// Why it is prefixed, when it is.
    pub(crate) prefixed_because: Option<String>,
}

impl BodyField {
    fn id(&self) -> String {
        format!("{ID}{}", self.name)
    }
}

/// The flags a body field may not take: the parameters', the call
/// options', and the command's own.
fn taken(op: &Operation) -> HashSet<String> {
    let mut names: HashSet<String> = [
        "help",
        "version",
        "body",
        "body-file",
        "query",
        "all-pages",
        "file",
        "content-type",
        "field",
        "raw-field",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    for p in op.params {
        names.insert(kebab(p.name));
        names.insert(p.name.to_owned());
    }
    for arg in super::flags::call_flags() {
        if let Some(long) = arg.get_long() {
            names.insert(long.to_owned());
        }
    }
    names
}

/// The top-level fields of `op`'s JSON body (none for a multipart one, or
/// a body the contract gives no properties).
pub(crate) fn fields(op: &Operation) -> Vec<BodyField> {
    let Some(body) = op.body.filter(|_| !op.is_multipart()) else {
        return Vec::new();
    };
    let schema = body.schema();
    let Some(props) = schema.get("properties").and_then(Value::as_object) else {
        return Vec::new();
    };
    let required = crate::operations::required_names(&schema);
    let taken = taken(op);
    props
        .iter()
        .map(|(name, field)| {
            let dashed = kebab(name);
            let (flag, prefixed_because) = if taken.contains(&dashed) {
                let why = if op.params.iter().any(|p| kebab(p.name) == dashed) {
                    format!("--{dashed} is the parameter")
                } else {
                    format!("--{dashed} is a flag of every call")
                };
                (format!("body-{dashed}"), Some(why))
            } else {
                (dashed, None)
            };
            BodyField {
                name: name.clone(),
                flag,
                schema: field.clone(),
                required: required.contains(&name.as_str()),
                prefixed_because,
            }
        })
        .collect()
}

/// The first type of a schema that is not `null`.
pub(crate) fn type_of(schema: &Value) -> &str {
    match schema.get("type") {
        Some(Value::String(t)) => t,
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("string"),
        _ if schema.get("properties").is_some() => "object",
        _ => "",
    }
}

/// The flags of `op`'s body: one a field, then `-F` and `-f`.
pub(crate) fn args(op: &Operation) -> Vec<Arg> {
    let mut args = Vec::new();
    for field in fields(op) {
        let ty = type_of(&field.schema);
        let item = if ty == "array" {
            field.schema.get("items").cloned().unwrap_or(Value::Null)
        } else {
            field.schema.clone()
        };
        let item_ty = type_of(&item).to_owned();
        let mut help = field
            .schema
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .trim()
            .trim_end_matches('.')
            .to_owned();
        let mut notes: Vec<String> = Vec::new();
        if field.required {
            notes.push("required".into());
        }
        if let Some(values) = item.get("enum").and_then(Value::as_array) {
            let values: Vec<&str> = values.iter().filter_map(Value::as_str).collect();
            notes.push(format!("one of: {}", values.join(", ")));
        }
        if let Some(c) = super::args::constraints(&field.schema) {
            notes.push(c);
        }
        match item.get("format").and_then(Value::as_str) {
            Some("uuid") => notes.push("a UUID".into()),
            Some("date") => notes.push("a date, YYYY-MM-DD".into()),
            Some("date-time") => notes.push("a time, RFC 3339".into()),
            Some("uri" | "url") => notes.push("a URL".into()),
            _ => {}
        }
        if let Some(n) = item.get("maxLength").and_then(Value::as_u64) {
            notes.push(format!("up to {n} characters"));
        }
        match (ty, item_ty.as_str()) {
            ("array", "object" | "") => notes.push("repeat the flag: one JSON object, or @FILE, each".into()),
            ("array", _) => notes.push("repeat the flag for each value".into()),
            ("object" | "", _) => notes.push("JSON, or @FILE".into()),
            ("boolean", _) => notes.push("alone: true".into()),
            _ => {}
        }
        if let Some(why) = &field.prefixed_because {
            notes.push(format!("the body's `{}`: {why}", field.name));
        }
        if !notes.is_empty() {
            let notes = notes.join("; ");
            help = if help.is_empty() {
                format!("[{notes}]")
            } else {
                format!("{help} [{notes}]")
            };
        }
        let value_name = if item_ty == "object" || item_ty.is_empty() {
            "JSON".to_owned()
        } else {
            kebab(&field.name).to_uppercase().replace('-', "_")
        };
        let mut arg = Arg::new(field.id())
            .long(field.flag.clone())
            .value_name(value_name)
            .help(help)
            .hide_possible_values(true)
            .help_heading("Body fields");
        if item_ty == "object" || item_ty.is_empty() {
            arg = arg.value_parser(clap::builder::NonEmptyStringValueParser::new());
        } else {
            arg = arg.value_parser(super::args::parser_for(&item));
        }
        // The spec's spelling stays accepted, hidden, where it is free.
        if field.prefixed_because.is_none() && field.name != field.flag {
            arg = arg.alias(field.name.clone());
        }
        if ty == "array" {
            arg = arg.action(ArgAction::Append);
        } else if ty == "boolean" {
            // `--wants-moderation` alone is true; `--auto-finalize-videos false` too.
            arg = arg.num_args(0..=1).default_missing_value("true").require_equals(false);
        }
        args.push(arg);
    }
    if op.body.is_some() && !op.is_multipart() {
        args.push(
            Arg::new(TYPED)
                .short('F')
                .long("field")
                .value_name("KEY=VALUE")
                .action(ArgAction::Append)
                .help_heading("Body fields")
                .help("A body field, typed: true, false, null, numbers, JSON; @FILE reads it (as JSON if it parses); KEY may be a dotted path (videos.0.position) or end in [] to add to a list (repeatable)"),
        );
        args.push(
            Arg::new(RAW)
                .short('f')
                .long("raw-field")
                .value_name("KEY=VALUE")
                .action(ArgAction::Append)
                .help_heading("Body fields")
                .help("A body field as a string, never converted (repeatable; KEY as for -F)"),
        );
    }
    args
}

/// Whether any body flag was given.
pub(crate) fn any_given(op: &Operation, sub: &ArgMatches) -> bool {
    let given = |id: &str| sub.try_get_raw(id).ok().flatten().is_some();
    given(TYPED) || given(RAW) || fields(op).iter().any(|f| given(&f.id()))
}

/// One segment of a `-F` key.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
}

/// `videos.0.position` or `platforms[]`: its steps, and whether it appends.
fn parse_key(key: &str) -> Result<(Vec<Step>, bool), String> {
    let (path, append) = match key.strip_suffix("[]") {
        Some(p) => (p, true),
        None => (key, false),
    };
    if path.is_empty() || path.contains("[]") {
        return Err(format!(
            "`{key}` is not a field path (a.b.0.c, or a[] to add to a list)"
        ));
    }
    let mut steps = Vec::new();
    for (i, part) in path.split('.').enumerate() {
        if part.is_empty() {
            return Err(format!("`{key}` has an empty step"));
        }
        match part.parse::<usize>() {
            Ok(n) if i > 0 => steps.push(Step::Index(n)),
            _ => steps.push(Step::Key(part.to_owned())),
        }
    }
    Ok((steps, append))
}

/// A `-F` value: `@FILE` (JSON if it parses, else the text), `true`,
/// `false`, `null`, a number, a JSON array or object, else the string.
fn typed_value(raw: &str) -> Result<Value, String> {
    if let Some(path) = raw.strip_prefix('@') {
        let path = std::path::PathBuf::from(path);
        let bytes = super::input::read_input(Some(&path)).map_err(|f| f.message)?;
        return Ok(serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).trim_end_matches('\n').to_owned())));
    }
    Ok(match raw {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        "null" => Value::Null,
        _ => {
            let json_like = raw.starts_with(['[', '{', '-']) || raw.starts_with(|c: char| c.is_ascii_digit());
            match serde_json::from_str::<Value>(raw) {
                Ok(v) if json_like && !v.is_string() => v,
                _ => Value::String(raw.to_owned()),
            }
        }
    })
}

/// A field flag's value as JSON, by its schema's type.
fn field_value(schema: &Value, raw: &str) -> Result<Value, String> {
    match type_of(schema) {
        "integer" => raw
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| format!("`{raw}` is not a whole number")),
        "number" => match raw.parse::<i64>() {
            Ok(n) => Ok(Value::from(n)),
            Err(_) => raw
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number)
                .ok_or_else(|| format!("`{raw}` is not a number")),
        },
        "boolean" => Ok(Value::Bool(raw == "true")),
        "object" | "" => {
            if raw.starts_with('@') {
                typed_value(raw)
            } else {
                serde_json::from_str(raw).map_err(|e| format!("`{raw}` is not JSON: {e}"))
            }
        }
        _ => Ok(Value::String(raw.to_owned())),
    }
}

/// Sets `value` at `steps` in `root` (objects made on the way; an index
/// may name an element or the next one).
fn set(root: &mut Value, steps: &[Step], value: Value, append: bool, key: &str) -> Result<(), String> {
    let Some((first, rest)) = steps.split_first() else {
        if append {
            match root {
                Value::Array(items) => items.push(value),
                Value::Null => *root = Value::Array(vec![value]),
                _ => return Err(format!("`{key}`: not a list")),
            }
        } else {
            *root = value;
        }
        return Ok(());
    };
    let slot = match first {
        Step::Key(name) => {
            if root.is_null() {
                *root = Value::Object(Map::new());
            }
            let Value::Object(map) = root else {
                return Err(format!("`{key}`: `{name}` is inside a value that is not an object"));
            };
            map.entry(name.clone()).or_insert(Value::Null)
        }
        Step::Index(n) => {
            if root.is_null() {
                *root = Value::Array(Vec::new());
            }
            let Value::Array(items) = root else {
                return Err(format!("`{key}`: {n} is inside a value that is not a list"));
            };
            let len = items.len();
            if *n == len {
                items.push(Value::Null);
            }
            items
                .get_mut(*n)
                .ok_or_else(|| format!("`{key}`: index {n} skips elements (the list has {len})"))?
        }
    };
    set(slot, rest, value, append, key)
}

/// What was set, to refuse a field set twice.
#[derive(Default)]
struct Seen(Vec<(String, bool, String)>);

impl Seen {
    fn claim(&mut self, path: &str, append: bool, how: String) -> Result<(), Failure> {
        for (p, a, before) in &self.0 {
            let same = p == path && !(*a && append);
            // A list added to (`videos[]`) may also be set by index.
            let nested = !(*a || append) && (p.starts_with(&format!("{path}.")) || path.starts_with(&format!("{p}.")));
            if same || nested {
                return Err(Failure::usage(format!(
                    "the body's `{path}` is given twice ({before} and {how}): give it once"
                )));
            }
        }
        self.0.push((path.to_owned(), append, how));
        Ok(())
    }
}

/// The body: `base` (from `--body`/`--body-file`) with every body flag
/// merged over it, in the order they were typed. `None` when neither was given.
pub(crate) fn merge(op: &Operation, sub: &ArgMatches, base: Option<Value>) -> Result<Option<Value>, Failure> {
    if !any_given(op, sub) {
        return Ok(base);
    }
    let mut body = match base {
        None => Value::Object(Map::new()),
        Some(Value::Object(map)) => Value::Object(map),
        Some(_) => {
            return Err(Failure::usage(
                "--body is not a JSON object, so body field flags cannot be merged into it",
            ));
        }
    };
    // (position on the command line, path, value, appends, how it was given)
    let mut sets: Vec<(usize, String, Vec<Step>, Value, bool, String)> = Vec::new();
    for field in fields(op) {
        let id = field.id();
        let (Some(values), Some(indices)) = (sub.try_get_many::<String>(&id).ok().flatten(), sub.indices_of(&id))
        else {
            continue;
        };
        let values: Vec<&String> = values.collect();
        let first = indices.min().unwrap_or(usize::MAX);
        let bad = |e: String| Failure::usage(format!("--{}: {e}", field.flag));
        let value = if type_of(&field.schema) == "array" {
            let item = field.schema.get("items").cloned().unwrap_or(Value::Null);
            Value::Array(
                values
                    .iter()
                    .map(|v| field_value(&item, v))
                    .collect::<Result<_, _>>()
                    .map_err(bad)?,
            )
        } else {
            let raw = values.first().map(|s| s.as_str()).unwrap_or_default();
            field_value(&field.schema, raw).map_err(bad)?
        };
        sets.push((
            first,
            field.name.clone(),
            vec![Step::Key(field.name.clone())],
            value,
            false,
            format!("--{}", field.flag),
        ));
    }
    for (id, flag, typed) in [(TYPED, "-F", true), (RAW, "-f", false)] {
        let (Some(values), Some(indices)) = (sub.try_get_many::<String>(id).ok().flatten(), sub.indices_of(id)) else {
            continue;
        };
        for (raw, at) in values.zip(indices) {
            let Some((key, value)) = raw.split_once('=') else {
                return Err(Failure::usage(format!("{flag} `{raw}` is not KEY=VALUE")));
            };
            let (steps, append) = parse_key(key).map_err(|e| Failure::usage(format!("{flag}: {e}")))?;
            let value = if typed {
                typed_value(value).map_err(|e| Failure::usage(format!("{flag} {key}: {e}")))?
            } else {
                Value::String(value.to_owned())
            };
            let path = key.trim_end_matches("[]").to_owned();
            sets.push((at, path, steps, value, append, format!("{flag} {key}")));
        }
    }
    sets.sort_by_key(|s| s.0);
    let mut seen = Seen::default();
    for (_, path, steps, value, append, how) in sets {
        seen.claim(&path, append, how)?;
        // A flag replaces what --body said of the same top-level field.
        if let (Some(Step::Key(top)), Value::Object(map)) = (steps.first(), &mut body)
            && steps.len() == 1
            && !append
        {
            map.shift_remove(top);
        }
        set(&mut body, &steps, value, append, &path).map_err(Failure::usage)?;
    }
    Ok(Some(body))
}

/// The required top-level fields `body` lacks, as the flags that set them.
pub(crate) fn missing(op: &Operation, body: Option<&Value>) -> Vec<String> {
    fields(op)
        .into_iter()
        .filter(|f| f.required && body.and_then(|b| b.get(&f.name)).is_none())
        .map(|f| format!("--{}", f.flag))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kebab_case_of_snake_and_camel_names() {
        assert_eq!(kebab("bundle_type"), "bundle-type");
        assert_eq!(kebab("includePosts"), "include-posts");
        assert_eq!(kebab("id"), "id");
    }

    #[test]
    fn dotted_paths_and_appends() {
        let mut root = json!({});
        let (steps, append) = parse_key("videos.0.position").unwrap();
        set(&mut root, &steps, json!(1), append, "k").unwrap();
        let (steps, append) = parse_key("videos.1.position").unwrap();
        set(&mut root, &steps, json!(2), append, "k").unwrap();
        let (steps, append) = parse_key("platforms[]").unwrap();
        set(&mut root, &steps, json!("tiktok"), append, "k").unwrap();
        set(&mut root, &steps, json!("instagram"), append, "k").unwrap();
        assert_eq!(
            root,
            json!({"videos": [{"position": 1}, {"position": 2}], "platforms": ["tiktok", "instagram"]})
        );
        let (steps, _) = parse_key("videos.5.position").unwrap();
        assert!(
            set(&mut root, &steps, json!(1), false, "k").is_err(),
            "no gap in a list"
        );
        assert!(parse_key("a[].b").is_err());
        assert!(parse_key("a..b").is_err());
    }

    #[test]
    fn typed_values_as_gh_reads_them() {
        assert_eq!(typed_value("true").unwrap(), json!(true));
        assert_eq!(typed_value("null").unwrap(), json!(null));
        assert_eq!(typed_value("12").unwrap(), json!(12));
        assert_eq!(typed_value("-1.5").unwrap(), json!(-1.5));
        assert_eq!(typed_value("[1,2]").unwrap(), json!([1, 2]));
        assert_eq!(typed_value("USA").unwrap(), json!("USA"));
        assert_eq!(
            typed_value("2026-06-01").unwrap(),
            json!("2026-06-01"),
            "a date stays text"
        );
        assert!(typed_value("@/nonexistent/file").is_err());
    }

    #[test]
    fn a_field_set_twice_is_refused_and_nested_paths_are_not_twice() {
        let mut seen = Seen::default();
        seen.claim("country", false, "--country".into()).unwrap();
        assert!(seen.claim("country", false, "-F country".into()).is_err());
        seen.claim("fields.a", false, "-F fields.a".into()).unwrap();
        seen.claim("fields.b", false, "-F fields.b".into()).unwrap();
        assert!(seen.claim("fields", false, "-F fields".into()).is_err());
        seen.claim("platforms", true, "-F platforms[]".into()).unwrap();
        seen.claim("platforms", true, "-F platforms[]".into()).unwrap();
    }

    #[test]
    fn a_clashing_field_is_prefixed_and_says_why() {
        let op = crate::operations::find("createAnalyticsReport").unwrap();
        let query = fields(op).into_iter().find(|f| f.name == "query").unwrap();
        assert_eq!(query.flag, "body-query");
        assert!(query.prefixed_because.is_some());
        let op = crate::operations::find("createBundle").unwrap();
        let flags: Vec<String> = fields(op).into_iter().map(|f| f.flag).collect();
        assert!(flags.contains(&"bundle-type".to_owned()) && flags.contains(&"videos-quantity".to_owned()));
    }
}
