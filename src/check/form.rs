//! A multipart upload's fields: path parameters apart, form fields checked
//! against the spec's form schema (the file part standing in as a string).

use serde_json::{Map, Value};

use super::OperationArgs;
use super::schema::{check_value, coerce_value};
use crate::error::Error;
use crate::operations::Operation;

/// The checked fields of a multipart call.
pub(crate) struct Form {
    /// The path parameters, as a dynamic call's arguments.
    pub(crate) args: OperationArgs,
    /// The name of the binary part (`file`).
    pub(crate) file_field: String,
    /// The text fields, coerced to their schemas' types.
    pub(crate) fields: Map<String, Value>,
}

/// Splits `fields` into path parameters and form fields and checks the form.
/// Unless `strict`, a form field the vendored contract does not know is sent
/// as given, with one warning.
pub(crate) fn check_form(op: &'static Operation, fields: Map<String, Value>, strict: bool) -> Result<Form, Error> {
    let body = op
        .body
        .filter(|_| op.is_multipart())
        .ok_or_else(|| Error::invalid(Some(op.id), None, "not a multipart operation; use request_operation"))?;
    let mut args = OperationArgs::new();
    let mut form_fields = Map::new();
    for (name, value) in fields {
        if op.param(&name).is_some() {
            args.path.insert(name, value);
        } else {
            form_fields.insert(name, value);
        }
    }
    let known = body.form_fields();
    let file_field = body.file_field().unwrap_or_else(|| "file".into());
    let mut checked = Map::new();
    let mut extra = Map::new();
    for (name, value) in &form_fields {
        match known.iter().find(|f| &f.name == name) {
            Some(field) => {
                checked.insert(name.clone(), coerce_value(&field.schema, value.clone()));
            }
            None if !strict => {
                super::sent_as_given(op, name);
                extra.insert(name.clone(), value.clone());
            }
            None => {
                return Err(Error::invalid(
                    Some(op.id),
                    Some(name),
                    format!("not a form field or path parameter of {}", op.id),
                ));
            }
        }
    }
    let mut for_check = checked.clone();
    for_check.insert(file_field.clone(), Value::String(String::new()));
    check_value(op, "body", body.schema_json, &Value::Object(for_check), strict)?;
    checked.extend(extra);
    Ok(Form {
        args,
        file_field,
        fields: checked,
    })
}
