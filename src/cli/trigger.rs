//! `tokportal trigger EVENT [--set STEP.FIELD=VALUE ...]`: makes the calls
//! that produce a webhook event in the sandbox (for `bundle.published`:
//! create a bundle, configure its account, publish it) and prints what they
//! made. Each override names a step's request body field; every body is
//! checked against the contract, overrides and all, before the first call
//! is sent, and an override that names nothing is refused, never ignored.

use clap::{Arg, ArgAction, ArgMatches, Command};
use serde_json::{Map, Value, json};

use super::exit::Failure;
use super::flags::CallFlags;
use super::workbench::{self, Sandbox};
use crate::OperationArgs;
use crate::webhooks::EVENT_TYPES;

/// Where a step's path parameter comes from.
#[derive(Clone, Copy)]
enum From {
    /// The id of the bundle the first step made.
    Bundle,
    /// A fixed value (the first video slot).
    Position(u64),
}

/// One call of a recipe.
struct Step {
    /// What `--set` calls it.
    name: &'static str,
    operation: &'static str,
    path: &'static [(&'static str, From)],
    /// Its request body, if it takes one.
    body: Option<fn() -> Value>,
}

const BUNDLE: Step = Step {
    name: "bundle",
    operation: "createBundle",
    path: &[],
    body: Some(|| json!({"bundle_type": "account_and_videos", "country": "USA", "videos_quantity": 1})),
};
const ACCOUNT: Step = Step {
    name: "account",
    operation: "configureBundleAccount",
    path: &[("id", From::Bundle)],
    body: Some(|| json!({"username": "triggered_account", "visible_name": "Triggered Account"})),
};
const VIDEO: Step = Step {
    name: "video",
    operation: "configureBundleVideo",
    path: &[("id", From::Bundle), ("position", From::Position(1))],
    body: Some(|| {
        json!({
            "video_type": "video",
            "description": "Made by tokportal trigger",
            "target_publish_date": chrono::Utc::now().format("%Y-%m-%d").to_string(),
            "video_url": "https://cdn.example.com/tokportal-trigger.mp4",
        })
    }),
};
const PUBLISH: Step = Step {
    name: "publish",
    operation: "publishBundle",
    path: &[("id", From::Bundle)],
    body: None,
};
const PUBLISH_VIDEO: Step = Step {
    name: "publish_video",
    operation: "publishBundleVideo",
    path: &[("id", From::Bundle), ("position", From::Position(1))],
    body: None,
};
const ACCOUNT_CORRECTIONS: Step = Step {
    name: "corrections",
    operation: "requestBundleAccountCorrections",
    path: &[("id", From::Bundle)],
    body: Some(|| json!({"comment": "Please choose another username.", "fields": {"username": true}})),
};
const ACCOUNT_FINALIZE: Step = Step {
    name: "finalize",
    operation: "finalizeBundleAccount",
    path: &[("id", From::Bundle)],
    body: None,
};
const VIDEO_CORRECTIONS: Step = Step {
    name: "corrections",
    operation: "requestBundleVideoCorrections",
    path: &[("id", From::Bundle), ("position", From::Position(1))],
    body: Some(|| json!({"comment": "Please rewrite the description.", "fields": {"description": true}})),
};
const VIDEO_FINALIZE: Step = Step {
    name: "finalize",
    operation: "finalizeBundleVideo",
    path: &[("id", From::Bundle), ("position", From::Position(1))],
    body: None,
};

/// The calls that produce `event`, or why none do.
fn recipe(event: &str) -> Result<Vec<&'static Step>, String> {
    let published_video = || vec![&BUNDLE, &ACCOUNT, &VIDEO, &PUBLISH, &PUBLISH_VIDEO];
    Ok(match event {
        "bundle.created" => vec![&BUNDLE],
        "account.configured" => vec![&BUNDLE, &ACCOUNT],
        "video.configured" => vec![&BUNDLE, &VIDEO],
        "bundle.published" | "account.published" | "account.in_review" => vec![&BUNDLE, &ACCOUNT, &PUBLISH],
        "account.pending_corrections" => vec![&BUNDLE, &ACCOUNT, &PUBLISH, &ACCOUNT_CORRECTIONS],
        "account.finalized" => vec![&BUNDLE, &ACCOUNT, &PUBLISH, &ACCOUNT_FINALIZE],
        "video.published" | "video.in_review" => published_video(),
        "video.pending_corrections" => [published_video(), vec![&VIDEO_CORRECTIONS]].concat(),
        "video.finalized" => [published_video(), vec![&VIDEO_FINALIZE]].concat(),
        "webhook.test" => {
            return Err(
                "webhook.test goes to one endpoint: `tokportal test-webhook-endpoint --id ENDPOINT_ID` sends it".into(),
            );
        }
        other => {
            return Err(format!(
                "`{other}` is not an event type; they are {}",
                EVENT_TYPES.join(", ")
            ));
        }
    })
}

/// The `trigger` subcommand.
pub(crate) fn command() -> Command {
    let events: Vec<&str> = EVENT_TYPES.iter().copied().filter(|e| *e != "webhook.test").collect();
    Command::new("trigger")
        .about("Make the sandbox calls that produce a webhook event, and print what they made")
        .long_about(format!(
            "Make the sandbox calls that produce a webhook event (for bundle.published: create a \
             bundle, configure its account, publish it) and print the resources they made.\n\n\
             Events: {}.\n\n\
             --set STEP.FIELD=VALUE changes a field of a step's request body (steps: bundle, \
             account, video, corrections); VALUE is read as JSON when it is JSON, as text \
             otherwise. Every body is checked against the contract before the first call.",
            events.join(", ")
        ))
        .arg(
            Arg::new("event")
                .required(true)
                .value_name("EVENT")
                .help("The event to produce"),
        )
        .arg(
            Arg::new("set")
                .long("set")
                .value_name("STEP.FIELD=VALUE")
                .action(ArgAction::Append)
                .help("Change a field of a step's body (bundle.country=FRA; repeatable)"),
        )
        .args(workbench::link_args())
}

/// One `--set`: the step, the field's path in its body, the value.
struct Override {
    given: String,
    step: String,
    field: Vec<String>,
    value: Value,
}

fn parse_override(raw: &str) -> Result<Override, Failure> {
    let bad = || Failure::usage(format!("--set `{raw}` is not STEP.FIELD=VALUE (bundle.country=FRA)"));
    let (path, value) = raw.split_once('=').ok_or_else(bad)?;
    let mut parts = path.split('.').map(str::trim).map(str::to_owned);
    let step = parts.next().filter(|s| !s.is_empty()).ok_or_else(bad)?;
    let field: Vec<String> = parts.collect();
    if field.is_empty() || field.iter().any(String::is_empty) {
        return Err(bad());
    }
    let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_owned()));
    Ok(Override {
        given: raw.to_owned(),
        step,
        field,
        value,
    })
}

/// Puts `value` at `path` in `body`, making the objects on the way.
fn put(body: &mut Value, path: &[String], value: Value) -> Result<(), String> {
    let (last, on_the_way) = path.split_last().ok_or("an empty field")?;
    let mut at = body;
    for name in on_the_way {
        if !at.is_object() {
            return Err(format!("`{name}` is inside a value that is not an object"));
        }
        at = at
            .as_object_mut()
            .ok_or("not an object")?
            .entry(name.clone())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    at.as_object_mut()
        .ok_or_else(|| format!("`{last}` is inside a value that is not an object"))?
        .insert(last.clone(), value);
    Ok(())
}

/// The top-level fields of `operation`'s request body schema.
fn body_fields(operation: &str) -> Vec<String> {
    crate::operations::find(operation)
        .and_then(|op| op.body)
        .and_then(|b| {
            b.schema()
                .get("properties")
                .and_then(Value::as_object)
                .map(|p| p.keys().cloned().collect())
        })
        .unwrap_or_default()
}

/// Makes the calls, checked first, and prints what they made.
pub(crate) async fn run(top: &ArgMatches, m: &ArgMatches) -> Result<(), Failure> {
    let event = m.get_one::<String>("event").cloned().unwrap_or_default();
    let steps = recipe(&event).map_err(Failure::usage)?;
    let overrides = m
        .get_many::<String>("set")
        .into_iter()
        .flatten()
        .map(|s| parse_override(s))
        .collect::<Result<Vec<_>, _>>()?;
    // Each step's body, overrides in, every one checked against the
    // contract (strictly: an unknown field is an error) before any call.
    let mut bodies: Vec<Option<Value>> = steps.iter().map(|s| s.body.map(|b| b())).collect();
    for o in &overrides {
        let Some(at) = steps.iter().position(|s| s.name == o.step) else {
            let names: Vec<&str> = steps.iter().filter(|s| s.body.is_some()).map(|s| s.name).collect();
            return Err(Failure::usage(format!(
                "--set `{}`: {event} has no step `{}`; its steps with a body are {}",
                o.given,
                o.step,
                names.join(", ")
            )));
        };
        let step = steps[at];
        let Some(body) = bodies[at].as_mut() else {
            return Err(Failure::usage(format!(
                "--set `{}`: {} takes no body",
                o.given, step.operation
            )));
        };
        let fields = body_fields(step.operation);
        if !fields.contains(&o.field[0]) {
            return Err(Failure::usage(format!(
                "--set `{}`: {}'s body has no field `{}`; it has {}",
                o.given,
                step.operation,
                o.field[0],
                fields.join(", ")
            )));
        }
        put(body, &o.field, o.value.clone()).map_err(|why| Failure::usage(format!("--set `{}`: {why}", o.given)))?;
    }
    for (step, body) in steps.iter().zip(&bodies) {
        let op = crate::operations::find(step.operation)
            .ok_or_else(|| Failure::usage(format!("{} is not in the vendored contract", step.operation)))?;
        let args = arguments(step, body.clone(), uuid::Uuid::nil().to_string());
        crate::check::args::check(op, &args, true).map_err(|e| {
            Failure::usage(format!(
                "the {} step ({}) would be refused: {e}",
                step.name, step.operation
            ))
        })?;
    }
    let key = CallFlags::read(top, m)
        .api_key
        .ok_or_else(|| Failure::from(crate::Error::MissingApiKey))?;
    let sandbox = Sandbox::find(top, m, "trigger").await?;
    let client = sandbox.client(&key)?;
    let mut bundle_id = String::new();
    let mut calls = Vec::new();
    let mut resources = Map::new();
    for (step, body) in steps.iter().zip(bodies) {
        let answer = client
            .request_operation(step.operation, arguments(step, body, bundle_id.clone()))
            .await
            .map_err(|e| {
                let mut f = Failure::from(e);
                f.message = format!("the {} step ({}) failed:\n{}", step.name, step.operation, f.message);
                f
            })?;
        let data = match &answer.body {
            crate::ResponseBody::Json(body) => body.get("data").cloned().unwrap_or(Value::Null),
            _ => Value::Null,
        };
        if step.name == "bundle" {
            bundle_id = data["id"].as_str().unwrap_or_default().to_owned();
        }
        let status = answer.meta.status;
        let command = crate::operations::find(step.operation).map_or(step.operation, |op| op.cli_command);
        eprintln!("{command:<36} -> {status}");
        calls.push(json!({"step": step.name, "operation": step.operation, "status": status}));
        resources.insert(step.name.to_owned(), data);
    }
    // On a simulated clock the event may wait for it: say when, and how
    // to get there, rather than leave a listener waiting for nothing.
    let waits = sandbox
        .control(reqwest::Method::GET, "clock", &key, None)
        .await
        .ok()
        .and_then(|clock| waiting(&clock, &event, &bundle_id));
    if let Some((at, now)) = &waits {
        eprintln!(
            "{event} waits on this key's simulated clock (now {now}): it comes at {at}.\nTo get there: tokportal sandbox clock advance --to {at} (or --next)"
        );
    }
    let made = json!({
        "event": event,
        "bundle_id": bundle_id,
        "calls": calls,
        "resources": resources,
        "waits_until": waits.map(|(at, _)| at),
    });
    super::stdout::line(&serde_json::to_string_pretty(&made).unwrap_or_default())
}

/// When `event` of `bundle_id` falls due on a simulated clock (a key's
/// `GET /_sandbox/clock`), and the clock's now; `None` on real time or when
/// nothing of it waits.
fn waiting(clock: &Value, event: &str, bundle_id: &str) -> Option<(String, String)> {
    if clock.get("simulated").and_then(Value::as_bool) != Some(true) {
        return None;
    }
    let pending = clock["pending"].as_array()?;
    // The event's own step, else the bundle's next one (the event comes after it).
    let step = pending
        .iter()
        .find(|p| p["step"] == event && p["bundle_id"] == bundle_id)
        .or_else(|| pending.iter().find(|p| p["bundle_id"] == bundle_id))?;
    Some((
        step["at"].as_str()?.to_owned(),
        clock["now"].as_str().unwrap_or("?").to_owned(),
    ))
}

/// A step's arguments, with the bundle's id where its path wants one.
fn arguments(step: &Step, body: Option<Value>, bundle_id: String) -> OperationArgs {
    let mut args = OperationArgs::new();
    for (name, from) in step.path {
        args = match from {
            From::Bundle => args.path(*name, bundle_id.clone()),
            From::Position(p) => args.path(*name, *p),
        };
    }
    if let Some(body) = body {
        args = args.body(body);
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_but_the_test_has_a_recipe_whose_defaults_pass_the_contract() {
        for event in EVENT_TYPES.iter().filter(|e| **e != "webhook.test") {
            for step in recipe(event).unwrap() {
                let op = crate::operations::find(step.operation).unwrap();
                let args = arguments(step, step.body.map(|b| b()), uuid::Uuid::nil().to_string());
                crate::check::args::check(op, &args, true)
                    .unwrap_or_else(|e| panic!("{event} {}: {e}", step.operation));
            }
        }
        assert!(recipe("webhook.test").is_err() && recipe("bundle.nope").is_err());
    }

    #[test]
    fn an_event_waiting_on_a_simulated_clock_says_when() {
        let clock = json!({"now": "2026-06-01T00:00:00Z", "simulated": true, "pending": [
            {"at": "2026-06-03T00:00:00Z", "step": "account.in_review", "bundle_id": "b1", "resource": "account"}]});
        assert_eq!(
            waiting(&clock, "account.in_review", "b1"),
            Some(("2026-06-03T00:00:00Z".into(), "2026-06-01T00:00:00Z".into()))
        );
        assert_eq!(waiting(&clock, "account.in_review", "b2"), None, "another bundle's");
        let real = json!({"now": "2026-06-01T00:00:00Z", "simulated": false, "pending": []});
        assert_eq!(waiting(&real, "account.in_review", "b1"), None);
    }

    #[test]
    fn overrides_are_read_and_put_in_place() {
        let o = parse_override("bundle.country=FRA").unwrap();
        assert_eq!(
            (o.step.as_str(), o.field.as_slice(), &o.value),
            ("bundle", &["country".to_owned()][..], &json!("FRA"))
        );
        let o = parse_override("bundle.videos_quantity=3").unwrap();
        assert_eq!(o.value, json!(3));
        assert!(parse_override("country=FRA").is_err() && parse_override("bundle.=x").is_err());
        let mut body = json!({"a": 1});
        put(&mut body, &["b".into(), "c".into()], json!(true)).unwrap();
        assert_eq!(body, json!({"a": 1, "b": {"c": true}}));
        assert!(put(&mut body, &["a".into(), "x".into()], json!(1)).is_err());
    }
}
