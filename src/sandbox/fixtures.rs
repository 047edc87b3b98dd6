//! Fixtures (`tokportal sandbox --fixtures FILE`): named steps that seed a
//! key at start-up, as Stripe CLI's `fixtures` and MockServer's
//! initialization files do.
//!
//! ```yaml
//! key: sk_test_fixture
//! steps:
//!   - name: launch
//!     operation: createBundle
//!     body: {bundle_type: account_and_videos, country: USA, videos_quantity: 1}
//!   - name: profile
//!     operation: configureBundleAccount
//!     path: {id: "${launch.data.id}"}
//!     body: {username: fixture_brand, visible_name: "${env:TOKPORTAL_FIXTURE_BRAND|Fixture Brand}"}
//!   - name: too_poor
//!     operation: createBundle
//!     body: {bundle_type: account_only, country: Atlantis}
//!     expect: {status: 400, code: VALIDATION_ERROR}
//!   - clock: {frozen_at: "2026-06-01T00:00:00Z"}
//!   - advance: 2d
//! ```
//!
//! A file is one such set (`key`, `steps`) or a list of them, in YAML or
//! JSON. Each step is sent to the sandbox's own API, so it goes through the
//! same contract checks and behaviour as any request: `operation` (an
//! operationId), `path` and `query` parameters, `body`, and `expect` (the
//! status and error code it must answer, when it is meant to fail).
//! `${step.json.path}` takes a value from an earlier step's answer
//! (`${launch.data.id}`, `${list.data.0.id}`), `${env:NAME|default}` one
//! from the environment (only `TOKPORTAL_FIXTURE_*` variables and those
//! named with `--fixture-env NAME`: any other is refused before anything
//! starts, its value never read); a whole-string reference keeps the value's JSON
//! type. `clock` sets the key's clock (`frozen_at`, `delays`), `advance`
//! moves it (`2d`, or `{to: TIME}`).
//!
//! Everything is checked before the first step is sent (the operations,
//! their parameters, the references to earlier steps). A step that fails
//! stops start-up, naming the file, the step and the field or rule; what
//! the fixtures had done is then taken back (their keys are reset), so
//! nothing is half applied. With a state file, a set is applied only to a
//! key the file does not hold yet: a restart does not apply it twice.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::operations::{OPERATIONS, Operation};

/// Steps a fixture file holds at most.
const MAX_STEPS: usize = 10_000;
/// The largest fixture file read.
const MAX_FILE: u64 = 16 * 1024 * 1024;

/// One step of a set.
#[derive(Debug)]
enum Step {
    Call(Box<Call>),
    Clock(Value),
    Advance(Value),
}

/// A step that calls an operation.
#[derive(Debug)]
struct Call {
    name: Option<String>,
    op: &'static Operation,
    path: Map<String, Value>,
    query: Map<String, Value>,
    body: Option<Value>,
    expect: Option<(Option<u16>, Option<String>)>,
}

/// The steps for one key.
#[derive(Debug)]
pub(crate) struct Set {
    file: PathBuf,
    key: String,
    steps: Vec<Step>,
}

impl Set {
    /// The sandbox's state name of the set's key (its SHA-256).
    pub(crate) fn state_name(&self) -> String {
        hex::encode(Sha256::digest(self.key.as_bytes()))
    }
}

/// The prefix of the environment variables every fixture may read.
const ENV_PREFIX: &str = "TOKPORTAL_FIXTURE_";

/// Refuses a set whose `${env:NAME}` names a variable neither under
/// [`ENV_PREFIX`] nor in `allowed` (`--fixture-env`): a fixture from
/// someone else's pull request must not read the machine's secrets. The
/// error names the variable, never its value.
fn check_env(item: &Value, allowed: &[String]) -> Result<(), String> {
    for reference in references(item) {
        let Some(env) = reference.strip_prefix("env:") else {
            continue;
        };
        let name = env.split_once('|').map_or(env, |(n, _)| n);
        if !name.starts_with(ENV_PREFIX) && !allowed.iter().any(|a| a == name) {
            return Err(format!(
                "`${{env:{name}}}` is refused: a fixture reads only variables named {ENV_PREFIX}*, \
                 or those given with `--fixture-env {name}`"
            ));
        }
    }
    Ok(())
}

/// Reads and checks fixture files (nothing is sent); `allowed_env` are the
/// variables besides `TOKPORTAL_FIXTURE_*` their `${env:NAME}` may read.
pub(crate) fn read(files: &[PathBuf], allowed_env: &[String]) -> Result<Vec<Set>, String> {
    let mut sets = Vec::new();
    for file in files {
        let at = |why: String| format!("fixtures {}: {why}", file.display());
        let size = std::fs::metadata(file)
            .map_err(|e| at(format!("cannot be read: {e}")))?
            .len();
        if size > MAX_FILE {
            return Err(at(format!("is larger than {MAX_FILE} bytes")));
        }
        let text = std::fs::read_to_string(file).map_err(|e| at(format!("cannot be read: {e}")))?;
        let doc: Value = serde_norway::from_str(&text).map_err(|e| at(format!("is neither YAML nor JSON: {e}")))?;
        let items = match doc {
            Value::Array(items) => items,
            one => vec![one],
        };
        for (n, item) in items.into_iter().enumerate() {
            sets.push(
                check_env(&item, allowed_env)
                    .and_then(|()| read_set(file, &item))
                    .map_err(|why| at(if n > 0 { format!("set {}: {why}", n + 1) } else { why }))?,
            );
        }
    }
    Ok(sets)
}

fn read_set(file: &Path, item: &Value) -> Result<Set, String> {
    let key = item
        .get("key")
        .and_then(Value::as_str)
        .ok_or("`key` is required: the API key the steps are made with")?;
    if !crate::sandbox::world::keys::well_formed_key(key.as_bytes()) {
        return Err("`key` must be an `sk_` key of letters, digits, `_` or `-`".into());
    }
    let raw = item
        .get("steps")
        .and_then(Value::as_array)
        .ok_or("`steps` must be a list")?;
    if raw.len() > MAX_STEPS {
        return Err(format!("more than {MAX_STEPS} steps"));
    }
    let mut names: Vec<String> = Vec::new();
    let mut steps = Vec::new();
    for (n, s) in raw.iter().enumerate() {
        let label = s
            .get("name")
            .and_then(Value::as_str)
            .map_or_else(|| format!("step {}", n + 1), |name| format!("step `{name}`"));
        let step = read_step(s, &names).map_err(|why| format!("{label}: {why}"))?;
        if let Some(name) = s.get("name").and_then(Value::as_str) {
            if names.iter().any(|x| x == name) {
                return Err(format!("{label}: the name is used twice"));
            }
            names.push(name.to_owned());
        }
        steps.push(step);
    }
    Ok(Set {
        file: file.to_owned(),
        key: key.to_owned(),
        steps,
    })
}

fn read_step(s: &Value, earlier: &[String]) -> Result<Step, String> {
    let object = s.as_object().ok_or("must be a mapping")?;
    if let Some(clock) = object.get("clock") {
        return Ok(Step::Clock(clock.clone()));
    }
    if let Some(advance) = object.get("advance") {
        let body = match advance {
            Value::String(by) => json!({ "by": by }),
            Value::Object(_) => advance.clone(),
            _ => return Err("`advance` is a duration (`2d`) or `{to: TIME}`".into()),
        };
        return Ok(Step::Advance(body));
    }
    for field in object.keys() {
        if !["name", "operation", "path", "query", "body", "expect"].contains(&field.as_str()) {
            return Err(format!(
                "`{field}` is not a step field: use name, operation, path, query, body, expect, or clock, advance"
            ));
        }
    }
    let id = object
        .get("operation")
        .and_then(Value::as_str)
        .ok_or("`operation` is required (an operationId such as createBundle), or `clock`, or `advance`")?;
    let op = OPERATIONS
        .iter()
        .find(|o| o.id == id)
        .ok_or_else(|| format!("`{id}` is not an operation of the contract"))?;
    if op.is_multipart() {
        return Err(format!("`{id}` takes a file: fixtures send JSON bodies only"));
    }
    let map = |name: &str| -> Result<Map<String, Value>, String> {
        match object.get(name) {
            None | Some(Value::Null) => Ok(Map::new()),
            Some(Value::Object(m)) => Ok(m.clone()),
            Some(_) => Err(format!("`{name}` must be a mapping")),
        }
    };
    let path = map("path")?;
    for param in op
        .path
        .split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
    {
        if !path.contains_key(param) {
            return Err(format!("`path.{param}` is required by {id} ({})", op.path));
        }
    }
    let query = map("query")?;
    let body = object.get("body").cloned();
    for reference in references(&Value::Object(object.clone())) {
        if let Some(step) = reference.strip_prefix("env:") {
            if step.is_empty() {
                return Err("`${env:}` names no variable".into());
            }
            continue;
        }
        let step = reference.split('.').next().unwrap_or_default();
        if !earlier.iter().any(|e| e == step) {
            return Err(format!("`${{{reference}}}` names no earlier step `{step}`"));
        }
    }
    let expect = match object.get("expect") {
        None | Some(Value::Null) => None,
        Some(Value::Object(e)) => Some((
            e.get("status")
                .and_then(Value::as_u64)
                .and_then(|s| u16::try_from(s).ok()),
            e.get("code").and_then(Value::as_str).map(str::to_owned),
        )),
        Some(_) => return Err("`expect` is a mapping: {status, code}".into()),
    };
    Ok(Step::Call(Box::new(Call {
        name: object.get("name").and_then(Value::as_str).map(str::to_owned),
        op,
        path,
        query,
        body,
        expect,
    })))
}

/// The `${...}` references in a value's strings.
fn references(value: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut walk = vec![value];
    while let Some(v) = walk.pop() {
        match v {
            Value::String(s) => {
                let mut rest = s.as_str();
                while let Some(start) = rest.find("${") {
                    let Some(end) = rest[start..].find('}') else { break };
                    out.push(rest[start + 2..start + end].to_owned());
                    rest = &rest[start + end + 1..];
                }
            }
            Value::Array(a) => walk.extend(a),
            Value::Object(o) => walk.extend(o.values()),
            _ => {}
        }
    }
    out
}

/// The value a reference names: an earlier answer's, or the environment's.
fn lookup(reference: &str, answers: &HashMap<String, Value>) -> Result<Value, String> {
    if let Some(env) = reference.strip_prefix("env:") {
        let (name, default) = env.split_once('|').map_or((env, None), |(n, d)| (n, Some(d)));
        return match std::env::var(name) {
            Ok(v) => Ok(Value::String(v)),
            Err(_) => default
                .map(|d| Value::String(d.to_owned()))
                .ok_or_else(|| format!("`${{{reference}}}`: ${name} is not set and there is no default")),
        };
    }
    let mut parts = reference.split('.');
    let step = parts.next().unwrap_or_default();
    let mut at = answers
        .get(step)
        .ok_or_else(|| format!("`${{{reference}}}`: step `{step}` has no answer"))?;
    for part in parts {
        at = match at {
            Value::Array(a) => part.parse::<usize>().ok().and_then(|i| a.get(i)),
            Value::Object(o) => o.get(part),
            _ => None,
        }
        .ok_or_else(|| format!("`${{{reference}}}`: its answer has nothing at `{part}`"))?;
    }
    Ok(at.clone())
}

/// `value` with its references replaced.
fn resolve(value: &Value, answers: &HashMap<String, Value>) -> Result<Value, String> {
    Ok(match value {
        Value::String(s) => {
            let refs = references(value);
            if refs.len() == 1 && s.starts_with("${") && s.ends_with('}') && s.len() == refs[0].len() + 3 {
                return lookup(&refs[0], answers);
            }
            let mut out = s.clone();
            for r in refs {
                let v = lookup(&r, answers)?;
                let text = match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                out = out.replace(&format!("${{{r}}}"), &text);
            }
            Value::String(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(|v| resolve(v, answers)).collect::<Result<_, _>>()?),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| Ok((k.clone(), resolve(v, answers)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

/// What a step expects of its answer: a status, an error code, or both.
type Expect = Option<(Option<u16>, Option<String>)>;

/// Applies `sets` against the sandbox at `base`; the first failure, named
/// (file, key's fingerprint, step, what it answered).
pub(crate) async fn apply(base: &str, sets: &[Set]) -> Result<(), String> {
    let http = crate::client::http_builder().build().unwrap_or_default();
    for set in sets {
        let mut answers: HashMap<String, Value> = HashMap::new();
        for (n, step) in set.steps.iter().enumerate() {
            let label = match step {
                Step::Call(call) if call.name.is_some() => {
                    format!("step `{}`", call.name.as_deref().unwrap_or_default())
                }
                _ => format!("step {}", n + 1),
            };
            let failed = |why: String| format!("fixtures {}: {label}: {why}", set.file.display());
            let (method, url, body, expect) = request_of(step, base, &answers).map_err(&failed)?;
            let mut request = http.request(method, url).header(crate::headers::API_KEY, &set.key);
            if let Some(body) = &body {
                request = request.json(body);
            }
            let answer = request
                .send()
                .await
                .map_err(|e| failed(format!("was not answered: {e}")))?;
            let status = answer.status().as_u16();
            let body: Value = answer.json().await.unwrap_or(Value::Null);
            as_expected(status, &body, &expect).map_err(&failed)?;
            if let Step::Call(call) = step
                && let Some(name) = &call.name
            {
                answers.insert(name.clone(), body);
            }
        }
    }
    Ok(())
}

/// A step's request: its method, URL (path parameters and query resolved
/// against the earlier answers) and body, and what it expects.
fn request_of(
    step: &Step,
    base: &str,
    answers: &HashMap<String, Value>,
) -> Result<(reqwest::Method, String, Option<Value>, Expect), String> {
    Ok(match step {
        Step::Clock(asked) => (
            reqwest::Method::POST,
            format!("{base}/_sandbox/clock"),
            Some(asked.clone()),
            None,
        ),
        Step::Advance(asked) => (
            reqwest::Method::POST,
            format!("{base}/_sandbox/clock/advance"),
            Some(asked.clone()),
            None,
        ),
        Step::Call(call) => {
            let Call {
                op,
                path,
                query,
                body,
                expect,
                ..
            } = call.as_ref();
            let mut url = op.path.to_owned();
            for (name, value) in path {
                let value = match resolve(value, answers)? {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                let encoded =
                    percent_encoding::utf8_percent_encode(&value, percent_encoding::NON_ALPHANUMERIC).to_string();
                url = url.replace(&format!("{{{name}}}"), &encoded);
            }
            let mut url = format!("{base}{url}");
            if !query.is_empty() {
                let pairs: Vec<(String, String)> = query
                    .iter()
                    .map(|(k, v)| {
                        resolve(v, answers).map(|v| {
                            (
                                k.clone(),
                                match v {
                                    Value::String(s) => s,
                                    other => other.to_string(),
                                },
                            )
                        })
                    })
                    .collect::<Result<_, _>>()?;
                url = format!("{url}?{}", serde_urlencoded::to_string(pairs).unwrap_or_default());
            }
            let body = body.as_ref().map(|b| resolve(b, answers)).transpose()?;
            let method = reqwest::Method::from_bytes(op.method.as_str().as_bytes()).unwrap_or(reqwest::Method::POST);
            (method, url, body, expect.clone())
        }
    })
}

/// Whether an answer is what its step expects (by default, a success);
/// otherwise what it answered, with the fields the contract named.
fn as_expected(status: u16, body: &Value, expect: &Expect) -> Result<(), String> {
    let code = body["error"]["code"].as_str().map(str::to_owned);
    match expect {
        Some((want_status, want_code)) => {
            let status_ok = want_status.is_none_or(|s| s == status);
            let code_ok = want_code.as_ref().is_none_or(|c| code.as_deref() == Some(c.as_str()));
            if !(status_ok && code_ok) {
                return Err(format!(
                    "expected {} {} but it answered {status} {}",
                    want_status.map_or("any status".into(), |s| s.to_string()),
                    want_code.as_deref().unwrap_or(""),
                    code.as_deref().unwrap_or("")
                ));
            }
        }
        None if !(200..300).contains(&status) => {
            let fields: Vec<String> = body["error"]["details"]["fields"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|f| {
                    format!(
                        "{} `{}` {}",
                        f["in"].as_str().unwrap_or("?"),
                        f["field"].as_str().unwrap_or("?"),
                        f["message"].as_str().unwrap_or("")
                    )
                })
                .collect();
            return Err(format!(
                "answered {status} {}: {}{}",
                code.as_deref().unwrap_or(""),
                body["error"]["message"].as_str().unwrap_or(""),
                if fields.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", fields.join("; "))
                }
            ));
        }
        None => {}
    }
    Ok(())
}

/// Takes back what fixtures did: the sets' keys are reset.
pub(crate) async fn undo(base: &str, sets: &[Set]) {
    let http = crate::client::http_builder().build().unwrap_or_default();
    for set in sets {
        let _ = http
            .post(format!("{base}/_sandbox/reset"))
            .header(crate::headers::API_KEY, &set.key)
            .json(&json!({}))
            .send()
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_becomes_its_request_with_earlier_answers_resolved() {
        let base = "http://127.0.0.1:1";
        let answers = HashMap::from([("bundle".to_owned(), json!({"data": {"id": "a b"}}))]);
        let (method, url, body, expect) = request_of(&Step::Advance(json!({"by": "1h"})), base, &answers).unwrap();
        assert_eq!(
            (method, url.as_str(), body, expect),
            (
                reqwest::Method::POST,
                "http://127.0.0.1:1/_sandbox/clock/advance",
                Some(json!({"by": "1h"})),
                None
            )
        );
        // `getBundle` with its `id` from an earlier answer.
        let get_bundle = |id: &str, expect: Expect| {
            Step::Call(Box::new(Call {
                name: None,
                op: crate::operations::find("getBundle").unwrap(),
                path: json!({ "id": id }).as_object().cloned().unwrap(),
                query: Map::new(),
                body: None,
                expect,
            }))
        };
        let step = get_bundle("${bundle.data.id}", Some((Some(200), None)));
        let (method, url, _, expect) = request_of(&step, base, &answers).unwrap();
        assert_eq!(method, reqwest::Method::GET);
        assert!(url.ends_with("/a%20b"), "{url}");
        assert_eq!(expect, Some((Some(200), None)));
        let unknown = get_bundle("${nothing.id}", None);
        let why = request_of(&unknown, base, &answers).unwrap_err();
        assert!(why.contains("step `nothing` has no answer"), "{why}");
    }

    #[test]
    fn an_answer_is_held_against_what_its_step_expects() {
        assert!(as_expected(201, &json!({}), &None).is_ok());
        let refused = json!({"error": {"code": "VALIDATION_ERROR", "message": "Invalid.",
            "details": {"fields": [{"in": "body", "field": "country", "message": "is required"}]}}});
        let why = as_expected(400, &refused, &None).unwrap_err();
        assert_eq!(
            why,
            "answered 400 VALIDATION_ERROR: Invalid. (body `country` is required)"
        );
        assert!(as_expected(400, &refused, &Some((Some(400), Some("VALIDATION_ERROR".into())))).is_ok());
        let why = as_expected(200, &json!({}), &Some((Some(404), None))).unwrap_err();
        assert_eq!(why, "expected 404  but it answered 200 ");
    }
}
