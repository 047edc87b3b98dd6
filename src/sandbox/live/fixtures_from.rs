//! A recording turned into fixtures (`tokportal sandbox fixtures-from
//! FILE`): the recorded changes that succeeded, in order, as steps that
//! make the same things again through the contract.
//!
//! - Each successful change (not a read, not a dry run) of an operation the
//!   contract knows becomes a step, one set per recorded key (by its
//!   fingerprint: `sk_test_recorded_<fingerprint>`).
//! - An id a step's answer gave (`id`, `*_id`, at any depth) is written in
//!   later steps as a reference to that answer (`${s1_create_bundle.data.id}`),
//!   since the sandbox makes ids of its own.
//! - What cannot be replayed so is left out and named in the file's
//!   opening comment: uploads (fixtures send JSON only), and values holding
//!   `${` (they would read as references).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde_json::{Map, Value, json};

use super::har::{self, Entry};
use crate::operations::Operation;
use crate::sandbox::contract::routes::{self, Route};

/// Ids a step's answer gives at most, as references.
const MAX_IDS_A_STEP: usize = 1000;

/// The fixtures file (YAML) for the recording at `path`, and how many
/// steps it holds.
pub(in crate::sandbox) fn from_recording(path: &Path) -> Result<(String, usize), String> {
    let har = har::read(path)?;
    let (sets, left_out, steps) = sets(&har.log.entries);
    let mut text = format!(
        "# Fixtures made by `tokportal sandbox fixtures-from {}`: the {steps} successful change{} of the recording,\n\
         # replayed through the contract (`tokportal sandbox --fixtures FILE`). Ids are references to earlier answers.\n",
        path.display(),
        if steps == 1 { "" } else { "s" }
    );
    for why in &left_out {
        text.push_str(&format!("# left out: {why}\n"));
    }
    let yaml = serde_norway::to_string(&Value::Array(sets)).map_err(|e| e.to_string())?;
    text.push_str(&yaml);
    if !text.ends_with('\n') {
        text.push('\n');
    }
    Ok((text, steps))
}

/// The sets of `entries`, what was left out and why, and the steps made.
fn sets(entries: &[Entry]) -> (Vec<Value>, Vec<String>, usize) {
    let mut by_key: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let mut ids: HashMap<String, HashMap<String, String>> = HashMap::new();
    let mut left_out = Vec::new();
    let mut made = 0;
    for (n, entry) in entries.iter().enumerate() {
        let method = entry.request.method.to_ascii_uppercase();
        let path = entry.api_path();
        let Route::Operation(op, params) = routes::route(&method, &path) else {
            continue;
        };
        if op.method.is_read_only() || entry.dry_run() || !(200..300).contains(&entry.response.status) {
            continue;
        }
        if op.is_multipart() {
            left_out.push(format!("entry {} ({}): it sends a file", n + 1, op.id));
            continue;
        }
        let key = entry
            .tokportal
            .as_ref()
            .and_then(|t| t.key.clone())
            .filter(|k| k.bytes().all(|b| b.is_ascii_alphanumeric()))
            .unwrap_or_else(|| "unknown".to_owned());
        let known = ids.entry(key.clone()).or_default();
        let steps = by_key.entry(key).or_default();
        let name = format!("s{}_{}", steps.len() + 1, op.rust_method);
        let Some(step) = step(entry, op, &params, &name, known) else {
            left_out.push(format!("entry {} ({}): a value holds `${{`", n + 1, op.id));
            continue;
        };
        if let Some(answer) = entry
            .response_body()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        {
            let mut found = Vec::new();
            collect_ids(&answer, &name, &mut found);
            for (value, reference) in found.into_iter().take(MAX_IDS_A_STEP) {
                known.entry(value).or_insert(reference);
            }
        }
        steps.push(step);
        made += 1;
    }
    let sets = by_key
        .into_iter()
        .map(|(key, steps)| json!({"key": format!("sk_test_recorded_{key}"), "steps": steps}))
        .collect();
    (sets, left_out, made)
}

/// The step of one recorded change; `None` when a value holds `${`.
fn step(
    entry: &Entry,
    op: &Operation,
    params: &routes::Params,
    name: &str,
    known: &HashMap<String, String>,
) -> Option<Value> {
    let mut step = Map::new();
    step.insert("name".into(), json!(name));
    step.insert("operation".into(), json!(op.id));
    if !params.is_empty() {
        let path: Map<String, Value> = params
            .iter()
            .map(|(n, v)| ((*n).to_owned(), Value::String(v.clone())))
            .collect();
        step.insert("path".into(), Value::Object(path));
    }
    let query: Map<String, Value> = entry
        .request
        .query_string
        .iter()
        .map(|p| (p.name.clone(), Value::String(p.value.clone())))
        .collect();
    if !query.is_empty() {
        step.insert("query".into(), Value::Object(query));
    }
    let body = entry.request_body();
    if !body.is_empty() {
        step.insert("body".into(), serde_json::from_slice(&body).ok()?);
    }
    let mut step = Value::Object(step);
    if holds_reference(&step) {
        return None;
    }
    for field in ["path", "query", "body"] {
        if let Some(v) = step.get_mut(field) {
            refer(v, known);
        }
    }
    Some(step)
}

fn holds_reference(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains("${"),
        Value::Array(a) => a.iter().any(holds_reference),
        Value::Object(o) => o.values().any(holds_reference),
        _ => false,
    }
}

/// The ids of an answer (`id` and `*_id` fields holding text), with the
/// reference that reads each back.
fn collect_ids(value: &Value, at: &str, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            for (name, field) in map {
                let here = format!("{at}.{name}");
                match field {
                    Value::String(s)
                        if (name == "id" || name.ends_with("_id")) && !s.is_empty() && s != super::redact::REDACTED =>
                    {
                        out.push((s.clone(), format!("${{{here}}}")));
                    }
                    _ => collect_ids(field, &here, out),
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                collect_ids(item, &format!("{at}.{i}"), out);
            }
        }
        _ => {}
    }
}

/// Every string of `value` that is a known id, written as its reference.
fn refer(value: &mut Value, known: &HashMap<String, String>) {
    match value {
        Value::String(s) => {
            if let Some(reference) = known.get(s.as_str()) {
                *s = reference.clone();
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| refer(v, known)),
        Value::Object(map) => map.values_mut().for_each(|v| refer(v, known)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_become_references() {
        let answer = json!({"data": {"id": "b_1", "accounts": [{"account_id": "a_1"}], "name": "x"}});
        let mut found = Vec::new();
        collect_ids(&answer, "s1", &mut found);
        assert_eq!(
            found,
            vec![
                ("b_1".to_owned(), "${s1.data.id}".to_owned()),
                ("a_1".to_owned(), "${s1.data.accounts.0.account_id}".to_owned())
            ]
        );
        let known: HashMap<_, _> = found.into_iter().collect();
        let mut later = json!({"id": "b_1", "other": ["a_1", "c"]});
        refer(&mut later, &known);
        assert_eq!(
            later,
            json!({"id": "${s1.data.id}", "other": ["${s1.data.accounts.0.account_id}", "c"]})
        );
    }
}
