//! Lowering of an OpenAPI 3.1 document to OpenAPI 3.0.3, in memory.
//!
//! progenitor 0.15 parses with `openapiv3`, which only understands 3.0. The
//! TokPortal contract is 3.1, and the only 3.1 constructs that matter for
//! generation are rewritten here, in one place:
//!
//! | 3.1                                   | 3.0.3                                          |
//! |---------------------------------------|------------------------------------------------|
//! | `openapi: 3.1.x`                      | `openapi: 3.0.3`                               |
//! | `type: [X, "null"]`                   | `type: X`, `nullable: true`                    |
//! | `type: [X]`                           | `type: X`                                      |
//! | `const: v`                            | `enum: [v]`                                    |
//! | `exclusiveMinimum: n` (a number)      | `minimum: n`, `exclusiveMinimum: true`         |
//! | `exclusiveMaximum: n` (a number)      | `maximum: n`, `exclusiveMaximum: true`         |
//! | `examples: [a, ...]` inside a schema  | `example: a`                                   |
//! | top-level `webhooks`, `jsonSchemaDialect` | removed                                    |
//!
//! A schema whose `type` names two or more non-null types cannot be expressed
//! in 3.0 and is reported with its JSON pointer.

use serde_json::{Map, Value};

use super::SpecError;

/// Lowers `doc` (an OpenAPI 3.1 document as JSON) to OpenAPI 3.0.3 in place.
///
/// Documents that already declare 3.0.x are left as they are.
pub fn lower_to_30(doc: &mut Value) -> Result<(), SpecError> {
    let version = doc
        .get("openapi")
        .and_then(Value::as_str)
        .ok_or_else(|| SpecError::new("/openapi", "missing the `openapi` version string"))?
        .to_owned();
    if version.starts_with("3.0") {
        return Ok(());
    }
    if !version.starts_with("3.1") {
        return Err(SpecError::new(
            "/openapi",
            format!("unsupported OpenAPI version `{version}` (expected 3.1.x or 3.0.x)"),
        ));
    }
    let root = doc
        .as_object_mut()
        .ok_or_else(|| SpecError::new("", "the document is not a mapping"))?;
    root.insert("openapi".into(), Value::String("3.0.3".into()));
    root.remove("webhooks");
    root.remove("jsonSchemaDialect");
    for (key, value) in root.iter_mut() {
        if key == "paths" || key == "components" {
            walk(value, &mut format!("/{key}"))?;
        }
    }
    Ok(())
}

/// Visits every mapping below `value`, lowering each one that looks like a schema.
fn walk(value: &mut Value, pointer: &mut String) -> Result<(), SpecError> {
    match value {
        Value::Object(map) => {
            lower_schema_keywords(map, pointer)?;
            for (key, child) in map.iter_mut() {
                let len = pointer.len();
                pointer.push('/');
                pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
                walk(child, pointer)?;
                pointer.truncate(len);
            }
            Ok(())
        }
        Value::Array(items) => {
            for (index, child) in items.iter_mut().enumerate() {
                let len = pointer.len();
                pointer.push_str(&format!("/{index}"));
                walk(child, pointer)?;
                pointer.truncate(len);
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Rewrites the 3.1 keywords of one mapping. Mappings that are not schemas
/// (a parameter, a response) never carry these keywords with these value
/// types, except `examples` on media types, which is an object and is kept.
fn lower_schema_keywords(map: &mut Map<String, Value>, pointer: &str) -> Result<(), SpecError> {
    if let Some(Value::Array(types)) = map.get("type") {
        let mut non_null = Vec::new();
        let mut nullable = false;
        for t in types {
            match t.as_str() {
                Some("null") => nullable = true,
                Some(other) => non_null.push(other.to_owned()),
                None => {
                    return Err(SpecError::new(
                        format!("{pointer}/type"),
                        "a `type` list must hold strings",
                    ));
                }
            }
        }
        match non_null.as_slice() {
            [single] => {
                map.insert("type".into(), Value::String(single.clone()));
                if nullable {
                    map.insert("nullable".into(), Value::Bool(true));
                }
            }
            [] => {
                return Err(SpecError::new(
                    format!("{pointer}/type"),
                    "a schema whose only type is `null` has no OpenAPI 3.0 equivalent",
                ));
            }
            several => {
                return Err(SpecError::new(
                    format!("{pointer}/type"),
                    format!(
                        "a schema of several types ({}) has no OpenAPI 3.0 equivalent",
                        several.join(", ")
                    ),
                ));
            }
        }
    }
    if let Some(value) = map.remove("const") {
        map.insert("enum".into(), Value::Array(vec![value]));
    }
    for (exclusive, bound) in [("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")] {
        if let Some(n) = map.get(exclusive).filter(|v| v.is_number()).cloned() {
            map.insert(bound.into(), n);
            map.insert(exclusive.into(), Value::Bool(true));
        }
    }
    if let Some(Value::Array(examples)) = map.get("examples") {
        let first = examples.first().cloned();
        map.remove("examples");
        if let Some(first) = first {
            map.entry("example").or_insert(first);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(schema: Value) -> Value {
        json!({
            "openapi": "3.1.0",
            "info": {"title": "t", "version": "1"},
            "paths": {},
            "components": {"schemas": {"S": schema}}
        })
    }

    fn lowered(schema: Value) -> Value {
        let mut d = doc(schema);
        lower_to_30(&mut d).expect("lowering succeeds");
        d["components"]["schemas"]["S"].clone()
    }

    #[test]
    fn version_becomes_303() {
        let mut d = doc(json!({"type": "string"}));
        lower_to_30(&mut d).unwrap();
        assert_eq!(d["openapi"], "3.0.3");
    }

    #[test]
    fn nullable_type_list_becomes_nullable() {
        assert_eq!(
            lowered(json!({"type": ["string", "null"], "maxLength": 3})),
            json!({"type": "string", "nullable": true, "maxLength": 3})
        );
        // Order within the list does not matter.
        assert_eq!(
            lowered(json!({"type": ["null", "integer"]})),
            json!({"type": "integer", "nullable": true})
        );
    }

    #[test]
    fn single_type_list_becomes_plain_type() {
        assert_eq!(lowered(json!({"type": ["object"]})), json!({"type": "object"}));
    }

    #[test]
    fn nested_schemas_are_lowered() {
        let out = lowered(json!({
            "type": "object",
            "properties": {"a": {"type": ["object", "null"], "properties": {"b": {"type": ["integer", "null"]}}}},
            "items": {"allOf": [{"type": ["string", "null"]}]}
        }));
        assert_eq!(out["properties"]["a"]["nullable"], true);
        assert_eq!(out["properties"]["a"]["properties"]["b"]["type"], "integer");
        assert_eq!(out["items"]["allOf"][0]["type"], "string");
    }

    #[test]
    fn const_becomes_single_enum() {
        assert_eq!(lowered(json!({"const": "x"})), json!({"enum": ["x"]}));
    }

    #[test]
    fn numeric_exclusive_bounds_become_boolean() {
        assert_eq!(
            lowered(json!({"type": "integer", "exclusiveMinimum": 0, "exclusiveMaximum": 10})),
            json!({"type": "integer", "minimum": 0, "exclusiveMinimum": true, "maximum": 10, "exclusiveMaximum": true})
        );
    }

    #[test]
    fn schema_examples_list_becomes_example() {
        assert_eq!(
            lowered(json!({"type": "string", "examples": ["a", "b"]})),
            json!({"type": "string", "example": "a"})
        );
    }

    #[test]
    fn webhooks_and_dialect_are_removed() {
        let mut d = doc(json!({}));
        d["webhooks"] = json!({});
        d["jsonSchemaDialect"] = json!("x");
        lower_to_30(&mut d).unwrap();
        assert!(d.get("webhooks").is_none());
        assert!(d.get("jsonSchemaDialect").is_none());
    }

    #[test]
    fn several_types_are_an_error_with_pointer() {
        let mut d = doc(json!({"properties": {"a": {"type": ["string", "integer"]}}}));
        let err = lower_to_30(&mut d).unwrap_err();
        assert_eq!(err.pointer, "/components/schemas/S/properties/a/type");
        assert!(err.message.contains("string, integer"), "{}", err.message);
    }

    #[test]
    fn null_only_type_is_an_error() {
        let mut d = doc(json!({"type": ["null"]}));
        assert!(lower_to_30(&mut d).is_err());
    }

    #[test]
    fn unsupported_version_is_an_error() {
        let mut d = json!({"openapi": "2.0"});
        let err = lower_to_30(&mut d).unwrap_err();
        assert!(err.message.contains("2.0"));
    }

    #[test]
    fn openapi_30_is_left_alone() {
        let mut d = json!({"openapi": "3.0.1", "components": {"schemas": {"S": {"type": ["string", "null"]}}}});
        let before = d.clone();
        lower_to_30(&mut d).unwrap();
        assert_eq!(d, before);
    }
}
