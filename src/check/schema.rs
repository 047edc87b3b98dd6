//! One value against one schema of the table: compiled validators and parsed
//! schemas, each made once per schema text, and the coercion of text into the
//! schema's type.

use std::sync::{Arc, OnceLock, RwLock};

use jsonschema::Validator;
use jsonschema::error::ValidationErrorKind;
use rustc_hash::FxHashMap;
use serde_json::Value;

use crate::error::Error;
use crate::operations::Operation;

/// Values made once per schema text, keyed by its address (every schema of
/// the table is a distinct `&'static str`). Read-mostly: a read lock per call.
/// Keyed by address, so hashed with FxHash: SipHash's protection against
/// chosen keys buys nothing here and costs most of a lookup.
type Memo<T> = OnceLock<RwLock<FxHashMap<usize, Arc<T>>>>;

/// The value of `schema_json` in `memo`, made by `make` the first time.
fn memoized<T, E>(memo: &Memo<T>, schema_json: &'static str, make: impl FnOnce() -> Result<T, E>) -> Result<Arc<T>, E> {
    let cache = memo.get_or_init(Default::default);
    let key = schema_json.as_ptr() as usize;
    if let Some(v) = cache.read().ok().and_then(|c| c.get(&key).cloned()) {
        return Ok(v);
    }
    let made = Arc::new(make()?);
    if let Ok(mut c) = cache.write() {
        c.insert(key, made.clone());
    }
    Ok(made)
}

fn validator(op: &'static Operation, field: &'static str, schema_json: &'static str) -> Result<Arc<Validator>, Error> {
    static VALIDATORS: Memo<Validator> = OnceLock::new();
    memoized(&VALIDATORS, schema_json, || {
        let schema: Value = serde_json::from_str(schema_json)
            .map_err(|e| Error::Config(format!("{}: the schema of `{field}` is not JSON: {e}", op.id)))?;
        jsonschema::options()
            .should_validate_formats(true)
            .build(&schema)
            .map_err(|e| Error::Config(format!("{}: the schema of `{field}` does not compile: {e}", op.id)))
    })
}

/// A parameter's schema, parsed once per process.
pub(crate) fn parsed(schema_json: &'static str) -> Arc<Value> {
    static PARSED: Memo<Value> = OnceLock::new();
    memoized::<_, std::convert::Infallible>(&PARSED, schema_json, || {
        Ok(serde_json::from_str(schema_json).unwrap_or(Value::Bool(true)))
    })
    .unwrap_or_else(|never| match never {})
}

/// What a query value must be, read once from the simple schemas query
/// parameters have, so that a valid value is told valid without building a
/// JSON value or running the validator (which costs more than the rest of
/// a typed call's checks together). It only ever says yes: any other value,
/// and any other schema, goes to the validator, which words the error.
#[derive(Debug, PartialEq)]
enum TextRule {
    /// `{"type": "integer"}`, with `minimum` and `maximum` when given.
    Integer { min: Option<f64>, max: Option<f64> },
    /// `{"type": "string"}`, with an `enum` when given.
    Text { one_of: Option<Vec<String>> },
    /// `{"type": "string", "format": "uuid"}`.
    Uuid,
    /// `{"type": "boolean"}`.
    Boolean,
    /// `{"type": "array", "items": ...}`: each value against the items' rule.
    Items(Box<TextRule>),
    /// Anything else: the validator decides.
    Validator,
}

impl TextRule {
    fn of(schema: &Value) -> TextRule {
        let Some(object) = schema.as_object() else {
            return TextRule::Validator;
        };
        // Keywords that say nothing about validity; any other one (a
        // pattern, a length, another format) leaves the value to the validator.
        let known = |extra: &[&str]| {
            object.keys().all(|k| {
                ["type", "default", "description", "title", "example", "examples"].contains(&k.as_str())
                    || extra.contains(&k.as_str())
            })
        };
        let bound = |name: &str| object.get(name).and_then(Value::as_f64);
        match object.get("type").and_then(Value::as_str) {
            Some("integer") if known(&["minimum", "maximum"]) => TextRule::Integer {
                min: bound("minimum"),
                max: bound("maximum"),
            },
            Some("string") if known(&["enum"]) => match object.get("enum") {
                None => TextRule::Text { one_of: None },
                Some(Value::Array(values)) => TextRule::Text {
                    one_of: values.iter().map(|v| v.as_str().map(str::to_owned)).collect(),
                },
                Some(_) => TextRule::Validator,
            },
            Some("string") if known(&["format"]) && object.get("format") == Some(&Value::from("uuid")) => {
                TextRule::Uuid
            }
            Some("boolean") if known(&[]) => TextRule::Boolean,
            Some("array") if known(&["items"]) => match object.get("items").map(TextRule::of) {
                Some(TextRule::Validator) | Some(TextRule::Items(_)) | None => TextRule::Validator,
                Some(items) => TextRule::Items(Box::new(items)),
            },
            _ => TextRule::Validator,
        }
    }

    /// Whether `raw` is surely valid (for an array, as one of its values).
    fn accepts(&self, raw: &str) -> bool {
        match self {
            TextRule::Integer { min, max } => raw.parse::<i64>().is_ok_and(|i| {
                let i = i as f64;
                min.is_none_or(|m| i >= m) && max.is_none_or(|m| i <= m)
            }),
            TextRule::Text { one_of: None } => true,
            TextRule::Text { one_of: Some(values) } => values.iter().any(|v| v == raw),
            TextRule::Uuid => raw.len() == 36 && uuid::Uuid::try_parse(raw).is_ok(),
            TextRule::Boolean => raw == "true" || raw == "false",
            TextRule::Items(items) => items.accepts(raw),
            TextRule::Validator => false,
        }
    }
}

/// Whether `raw`, a query value (one of them, for a repeatable parameter), is
/// surely valid for the schema `schema_json`. `false` means the validator
/// must decide, not that the value is invalid.
pub(crate) fn text_surely_valid(schema_json: &'static str, raw: &str) -> bool {
    static RULES: Memo<TextRule> = OnceLock::new();
    memoized::<_, std::convert::Infallible>(&RULES, schema_json, || {
        Ok(serde_json::from_str(schema_json).map_or(TextRule::Validator, |schema: Value| TextRule::of(&schema)))
    })
    .is_ok_and(|rule| rule.accepts(raw))
}

/// Checks `value` against the schema of parameter or body `field` of `op`.
///
/// Unless `strict`, what a newer contract may have added passes with one
/// warning per name: a property the schema does not know
/// (`additionalProperties: false`) and a value outside a closed `enum`. Every
/// other rule (type, range, format, required) still refuses.
pub(crate) fn check_value(
    op: &'static Operation,
    field: &'static str,
    schema_json: &'static str,
    value: &Value,
    strict: bool,
) -> Result<(), Error> {
    let v = validator(op, field, schema_json)?;
    // Most values are valid: no error iterator to build for them.
    if v.is_valid(value) {
        return Ok(());
    }
    let mut messages = Vec::new();
    for e in v.iter_errors(value) {
        let at = e.instance_path().to_string();
        if !strict {
            match e.kind() {
                ValidationErrorKind::AdditionalProperties { unexpected } => {
                    for name in unexpected {
                        super::sent_as_given(op, &format!("{field}{at}/{name}"));
                    }
                    continue;
                }
                ValidationErrorKind::Enum { .. } => {
                    super::sent_as_given(op, &format!("{field}{at} = {value}", value = e.instance()));
                    continue;
                }
                _ => {}
            }
        }
        if messages.len() < 5 {
            messages.push(if at.is_empty() {
                e.to_string()
            } else {
                format!("{at}: {e}")
            });
        }
    }
    if messages.is_empty() {
        return Ok(());
    }
    Err(Error::invalid(Some(op.id), Some(field), messages.join("; ")))
}

/// One way a value breaks its schema, for a server that names each field.
#[cfg_attr(not(feature = "sandbox"), allow(dead_code))]
pub(crate) struct Violation {
    /// Where, as a path of property names and indexes from the value's root
    /// (empty for the root itself); a missing or unexpected property is named.
    pub(crate) path: Vec<String>,
    /// What rule it breaks, in jsonschema's words.
    pub(crate) message: String,
    /// Something this contract version does not know (a property, an enum
    /// value) rather than a broken rule: a newer client's field.
    pub(crate) unknown: bool,
}

/// Every way `value` breaks the schema `schema_json` of `op`, with no
/// leniency: what a server enforcing this contract version refuses.
#[cfg_attr(not(feature = "sandbox"), allow(dead_code))]
pub(crate) fn violations(
    op: &'static Operation,
    field: &'static str,
    schema_json: &'static str,
    value: &Value,
) -> Result<Vec<Violation>, Error> {
    let v = validator(op, field, schema_json)?;
    if v.is_valid(value) {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for e in v.iter_errors(value) {
        let at: Vec<String> = e.instance_path().iter().map(|segment| segment.to_string()).collect();
        let named = |name: &str| {
            let mut path = at.clone();
            path.push(name.to_owned());
            path
        };
        match e.kind() {
            ValidationErrorKind::Required { property } => {
                let name = property.as_str().map_or_else(|| property.to_string(), str::to_owned);
                out.push(Violation {
                    path: named(&name),
                    message: "is required".into(),
                    unknown: false,
                });
            }
            ValidationErrorKind::AdditionalProperties { unexpected } => {
                for name in unexpected {
                    out.push(Violation {
                        path: named(name),
                        message: "is not a property this contract version knows".into(),
                        unknown: true,
                    });
                }
            }
            kind => out.push(Violation {
                path: at,
                message: e.to_string(),
                unknown: matches!(kind, ValidationErrorKind::Enum { .. }),
            }),
        }
    }
    Ok(out)
}

/// Turns a textual value (a query string, a command-line flag) into the JSON
/// type its schema asks for; leaves it a string when it does not parse, so the
/// schema check reports it.
pub(crate) fn coerce(schema: &Value, raw: &str) -> Value {
    // Read in place (no list of types built): this runs for every query value of every call.
    let declared = schema.get("type");
    let is = |ty: &str| match declared {
        Some(Value::String(t)) => t == ty,
        Some(Value::Array(ts)) => ts.iter().any(|t| t.as_str() == Some(ty)),
        _ => false,
    };
    if is("null") && raw == "null" {
        return Value::Null;
    }
    if is("integer") {
        if let Ok(i) = raw.parse::<i64>() {
            return Value::from(i);
        }
        if let Some(i) = raw.parse::<f64>().ok().and_then(whole) {
            return Value::from(i);
        }
    }
    if is("number")
        && let Some(n) = raw.parse::<f64>().ok().and_then(serde_json::Number::from_f64)
    {
        return Value::Number(n);
    }
    if is("boolean") {
        match raw {
            "true" => return Value::Bool(true),
            "false" => return Value::Bool(false),
            _ => {}
        }
    }
    if (is("object") || is("array"))
        && let Ok(v) = serde_json::from_str::<Value>(raw)
    {
        return v;
    }
    Value::String(raw.to_owned())
}

/// [`coerce`] for a JSON value that may be a string standing for another type.
pub(crate) fn coerce_value(schema: &Value, value: Value) -> Value {
    match (&value, schema.get("type").and_then(Value::as_str)) {
        (Value::Array(items), Some("array")) => {
            let item_schema = schema.get("items").cloned().unwrap_or(Value::Null);
            Value::Array(items.iter().cloned().map(|i| coerce_value(&item_schema, i)).collect())
        }
        (_, Some("array")) => coerce_value(schema, Value::Array(vec![value])),
        (Value::String(s), _) => coerce(schema, s),
        // `2.0` for an integer, as Python and LLM clients send it: sent as `2`.
        (Value::Number(n), Some("integer")) => match n.as_f64().and_then(whole) {
            Some(i) if !n.is_i64() && !n.is_u64() => Value::from(i),
            _ => value,
        },
        _ => value,
    }
}

/// A float that is a whole number, as an integer (within f64's exact range).
pub(crate) fn whole(f: f64) -> Option<i64> {
    (f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e15).then_some(f as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn coercion_follows_schema() {
        assert_eq!(coerce(&json!({"type": "integer"}), "5"), json!(5));
        assert_eq!(coerce(&json!({"type": "integer"}), "x"), json!("x"));
        assert_eq!(coerce(&json!({"type": "integer"}), "2.0"), json!(2));
        assert_eq!(coerce(&json!({"type": "integer"}), "2.5"), json!("2.5"));
        assert_eq!(coerce_value(&json!({"type": "integer"}), json!(2.0)), json!(2));
        assert_eq!(coerce_value(&json!({"type": "integer"}), json!(2.5)), json!(2.5));
        assert_eq!(coerce(&json!({"type": "boolean"}), "true"), json!(true));
        assert_eq!(coerce(&json!({"type": "string"}), "5"), json!("5"));
        assert_eq!(coerce(&json!({"type": ["integer", "null"]}), "null"), Value::Null);
        assert_eq!(
            coerce_value(&json!({"type": "array", "items": {"type": "integer"}}), json!("3")),
            json!([3])
        );
    }

    proptest::proptest! {
        /// Any integer, as text or JSON, comes out as that integer; a whole
        /// float as the integer; anything else is left for the schema check.
        #[test]
        fn integer_coercion(i in proptest::num::i64::ANY, f in -1.0e12f64..1.0e12, text in ".{0,20}") {
            let schema = json!({"type": "integer"});
            proptest::prop_assert_eq!(coerce(&schema, &i.to_string()), json!(i));
            proptest::prop_assert_eq!(coerce_value(&schema, json!(i)), json!(i));
            let expected = if f.fract() == 0.0 { json!(f as i64) } else { json!(f) };
            proptest::prop_assert_eq!(coerce_value(&schema, json!(f)), expected);
            let coerced = coerce(&schema, &text);
            proptest::prop_assert!(coerced.is_i64() || coerced == json!(text), "{coerced}");
        }

        /// Text for any schema type: never a panic, and a string schema keeps it as it is.
        #[test]
        fn text_coercion(text in ".{0,20}", ty in proptest::sample::select(vec!["string", "number", "boolean", "array", "object", "null"])) {
            let _ = coerce(&json!({"type": ty}), &text);
            let _ = coerce_value(&json!({"type": ty, "items": {"type": "integer"}}), json!(text));
            proptest::prop_assert_eq!(coerce(&json!({"type": "string"}), &text), json!(text));
        }
    }

    #[test]
    fn simple_query_schemas_are_read_once_into_rules() {
        let rule = |schema: Value| TextRule::of(&schema);
        assert_eq!(
            rule(json!({"type": "integer", "minimum": 1, "maximum": 100, "default": 25})),
            TextRule::Integer {
                min: Some(1.0),
                max: Some(100.0)
            }
        );
        assert_eq!(rule(json!({"type": "string", "pattern": "^a"})), TextRule::Validator);
        assert_eq!(rule(json!({"type": "string", "format": "date"})), TextRule::Validator);
        assert_eq!(
            rule(json!({"type": "integer", "exclusiveMinimum": 0})),
            TextRule::Validator
        );
        assert_eq!(rule(json!({"type": ["integer", "null"]})), TextRule::Validator);
        let per_page = rule(json!({"type": "integer", "minimum": 1, "maximum": 100}));
        assert!(per_page.accepts("1") && per_page.accepts("100"));
        for no in ["0", "101", "2.0", "", "x", " 5"] {
            assert!(!per_page.accepts(no), "{no}");
        }
        let sort = rule(json!({"type": "string", "enum": ["asc", "desc"]}));
        assert!(sort.accepts("asc") && !sort.accepts("ASC"));
        let uuid = rule(json!({"type": "string", "format": "uuid"}));
        assert!(uuid.accepts("9f3a7b2e-1c4d-4e8f-a5b6-7d9e0f1a2b3c"));
        assert!(!uuid.accepts("9f3a7b2e1c4d4e8fa5b67d9e0f1a2b3c") && !uuid.accepts("nope"));
        let many = rule(json!({"type": "array", "items": {"type": "string", "enum": ["tiktok"]}}));
        assert!(many.accepts("tiktok") && !many.accepts("youtube"));
    }

    proptest::proptest! {
        /// The rules never say yes where the validator says no: for every
        /// query parameter of the table and any text, a value the rule
        /// accepts passes the full check.
        #[test]
        fn a_rule_never_accepts_what_the_validator_refuses(index in 0usize..1000, raw in "[-0-9a-z.]{0,12}|[0-9]{1,4}") {
            let params: Vec<_> = crate::operations::OPERATIONS
                .iter()
                .flat_map(|op| op.params.iter().map(move |p| (op, p)))
                .filter(|(_, p)| p.location == crate::operations::ParamLocation::Query)
                .collect();
            let (op, param) = params[index % params.len()];
            if text_surely_valid(param.schema_json, &raw) {
                let schema = parsed(param.schema_json);
                let value = if param.repeatable {
                    Value::Array(vec![coerce(schema.get("items").unwrap_or(&Value::Null), &raw)])
                } else {
                    coerce(&schema, &raw)
                };
                proptest::prop_assert!(check_value(op, param.name, param.schema_json, &value, true).is_ok(), "{} {raw}", param.name);
            }
        }
    }

    #[test]
    fn body_errors_name_the_field() {
        let op = crate::operations::find("createBundle").unwrap();
        let schema = op.body.as_ref().unwrap().schema_json;
        let err = check_value(
            op,
            "body",
            schema,
            &json!({"bundle_type": "account_only", "title": "x".repeat(201)}),
            true,
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("/title"), "{text}");
        assert!(check_value(op, "body", schema, &json!({"bundle_type": "nope"}), true).is_err());
        assert!(
            check_value(
                op,
                "body",
                schema,
                &json!({"bundle_type": "account_only", "country": "USA"}),
                true
            )
            .is_ok()
        );
    }
}
