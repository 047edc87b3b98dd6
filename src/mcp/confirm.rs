//! Confirm before spending: a paid tool call, when the client can be asked
//! (it declared form elicitation), is first sent as a dry run; the user is
//! then asked through `elicitation/create`, with the credits it would
//! charge and their breakdown. Decline or cancel: nothing is charged and no
//! paid request is sent. Accept: the call is made once, with an idempotency
//! key (the agent's, or one made here) so that a retry never charges twice.
//!
//! Who gets asked, and how, by the protocol version in use:
//! - 2026-07-28 and later, on every transport (stateless HTTP included): an
//!   input-required result (SEP-2322, rmcp's `mrtr`) holding the
//!   `elicitation/create` request; the client answers it and calls the tool
//!   again with the answer and the `requestState` this server gave it (the
//!   idempotency key to charge under, and a digest of the arguments: an
//!   answer is good for the call it was asked about only);
//! - 2025-06-18 to 2025-11-25, over stdio and HTTP sessions (`--sessions`):
//!   a server-initiated `elicitation/create` request, within the call;
//! - those versions over stateless HTTP cannot be asked (no way back to the
//!   client): served as always, the description saying the call is paid
//!   and `dry_run` there.
//!
//! In each case the client must declare form elicitation.
//! The paid operations are the table's [`Hints::spends_credits`], as
//! everywhere else. A destructive one (the table's [`Hints::destructive`]:
//! an unpublish, a reset, a delete), as TokPortal's own agent rules ask, is
//! confirmed the same way, the question naming what will be destroyed
//! (no dry run: it costs nothing).
//!
//! [`Hints::spends_credits`]: crate::operations::Hints::spends_credits
//! [`Hints::destructive`]: crate::operations::Hints::destructive

use rmcp::RoleServer;
use rmcp::model::{
    CallToolResult, ContentBlock, ElicitRequest, ElicitRequestParams, ElicitResult, ElicitationAction,
    ElicitationSchema, InputRequest, InputRequests, InputRequiredResult, InputResponses, JsonObject, ProtocolVersion,
};
use rmcp::service::{ElicitationMode, RequestContext};
use serde_json::{Value, json};

use crate::operations::{IdempotencyKeySupport, Operation, flat_keys};
use crate::{Client, DryRunPreview, ResponseBody};

/// Whether a paid tool call is confirmed with the user before it is charged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConfirmSpending {
    /// Ask through `elicitation/create` when the client declared
    /// elicitation (stdio, sessions); serve as always when it did not.
    #[default]
    Elicit,
    /// Never ask: the tool's description and `dry_run` are the guard.
    Never,
}

/// The property of the question's form: unticked, it is a no.
const CHARGE: &str = "charge";
/// The same, for a destructive call.
const PROCEED: &str = "proceed";

/// What to do with a tool call.
pub(crate) enum Verdict {
    /// Send it, with these arguments; `price` is what the dry run made to
    /// ask the user said it would charge (a daily limit holds that rather
    /// than send a second dry run).
    Send {
        /// The call's arguments (an idempotency key added when asked).
        arguments: JsonObject,
        /// The confirmed price, when a dry run was sent to ask.
        price: Option<f64>,
    },
    /// Answer this instead: nothing paid was sent.
    Answer(CallToolResult),
    /// Ask the client first (2026-07-28): nothing paid was sent. The dry
    /// run's price is handed back with the arguments asked about, so that
    /// the answer's round (which sends no dry run) can be held at it.
    Ask {
        /// The input-required result.
        input: InputRequiredResult,
        /// The arguments asked about.
        arguments: JsonObject,
        /// What their dry run said the call would charge.
        price: Option<f64>,
    },
}

impl Verdict {
    fn send(arguments: JsonObject) -> Self {
        Self::Send { arguments, price: None }
    }
}

/// A call's MRTR round: the client's answers and the state this server gave.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Round<'a> {
    /// `inputResponses`.
    pub(crate) responses: Option<&'a InputResponses>,
    /// `requestState`.
    pub(crate) state: Option<&'a str>,
}

/// The key of the question in `inputRequests`.
const ASKED: &str = "confirm_spending";
/// How this server's `requestState` starts.
const STATE: &str = "tokportal-confirm-v1";

/// The digest of a call's arguments (without the idempotency key), so that
/// an answer is used for the call it was asked about only.
fn digest(op: &Operation, arguments: &JsonObject) -> String {
    use sha2::{Digest, Sha256};
    let mut rest = arguments.clone();
    rest.remove(flat_keys::IDEMPOTENCY_KEY);
    let text = serde_json::to_string(&rest).unwrap_or_default();
    let hash = Sha256::new()
        .chain_update(op.id)
        .chain_update([0])
        .chain_update(text)
        .finalize();
    hash.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// The idempotency key a `requestState` carries, when it is this server's
/// and was made for these arguments.
fn state_key(state: Option<&str>, op: &Operation, arguments: &JsonObject) -> Option<String> {
    let mut parts = state?.splitn(3, ':');
    (parts.next() == Some(STATE)).then_some(())?;
    (parts.next() == Some(digest(op, arguments).as_str())).then_some(())?;
    parts.next().map(str::to_owned)
}

fn declares_form(capabilities: Option<rmcp::model::ClientCapabilities>) -> bool {
    capabilities
        .and_then(|c| c.elicitation)
        .is_some_and(|e| e.form.is_some() || e.url.is_none())
}

/// Asks the user before `op` is charged, where it is paid, the setting asks,
/// the agent did not ask for a dry run itself, and the client can be asked.
pub(crate) async fn before_spending(
    op: &'static Operation,
    mut arguments: JsonObject,
    client: &Client,
    context: &RequestContext<RoleServer>,
    setting: ConfirmSpending,
    round: Round<'_>,
) -> Verdict {
    let hints = op.hints();
    if hints.spends_credits.is_none() && !hints.destructive {
        return Verdict::send(arguments);
    }
    let dry_run = arguments.get(flat_keys::DRY_RUN) == Some(&Value::Bool(true));
    if setting == ConfirmSpending::Never || dry_run {
        return Verdict::send(arguments);
    }
    let modern = context
        .protocol_version()
        .is_some_and(|v| v.as_str() >= ProtocolVersion::V_2026_07_28.as_str());
    if modern {
        if !declares_form(context.client_capabilities()) {
            return Verdict::send(arguments);
        }
        // The second round: the answer to the question this server asked.
        if let Some(key) = state_key(round.state, op, &arguments)
            && let Some(answer) = round.responses.and_then(|r| r.get(ASKED))
        {
            let answer: Option<ElicitResult> = serde_json::from_value(answer.clone()).ok();
            return match answer {
                Some(answer) => decided(op, arguments, answer, None, Some(key)),
                None => Verdict::Answer(stopped(op, "the answer could not be read", None)),
            };
        }
    } else if !context
        .peer
        .supported_elicitation_modes()
        .contains(&ElicitationMode::Form)
    {
        return Verdict::send(arguments);
    }
    let (message, preview, schema) = match hints.spends_credits {
        Some(what) => {
            let mut preview_args = arguments.clone();
            preview_args.insert(flat_keys::DRY_RUN.into(), Value::Bool(true));
            preview_args.remove(flat_keys::IDEMPOTENCY_KEY);
            let preview = match client.call_operation(op.id, preview_args).await {
                Ok(response) => match response.body {
                    ResponseBody::Json(v) => DryRunPreview::from_body(&v),
                    _ => None,
                },
                // The dry run's own refusal (a 402, a bad field) is the answer: nothing was charged.
                Err(e) => return Verdict::Answer(super::tools::error_result(&e)),
            };
            let schema = ElicitationSchema::builder()
                .optional_bool(CHARGE, true)
                .description("Untick, or decline, to charge nothing.")
                .build();
            (question(op, what, preview.as_ref()), preview, schema)
        }
        None => {
            let schema = ElicitationSchema::builder()
                .optional_bool(PROCEED, true)
                .description("Untick, or decline, to destroy nothing.")
                .build();
            (destruction(op, &arguments), None, schema)
        }
    };
    let Ok(requested_schema) = schema else {
        return Verdict::Answer(stopped(op, "the question could not be made", preview.as_ref()));
    };
    let params = ElicitRequestParams::FormElicitationParams {
        meta: None,
        message,
        requested_schema,
    };
    if modern {
        // The key the call will be charged under, chosen now, so that the
        // client's retries of the second round never charge twice.
        let key = match arguments.get(flat_keys::IDEMPOTENCY_KEY).and_then(Value::as_str) {
            Some(k) => k.to_owned(),
            None => crate::idempotency::generate_key(),
        };
        let mut requests = InputRequests::new();
        requests.insert(ASKED.into(), InputRequest::Elicitation(ElicitRequest::new(params)));
        let state = format!("{STATE}:{}:{key}", digest(op, &arguments));
        return Verdict::Ask {
            input: InputRequiredResult::new(Some(requests), Some(state)),
            arguments,
            price: preview.and_then(|p| p.credits_would_charge),
        };
    }
    let asked = context.peer.create_elicitation(params).await;
    match asked {
        Ok(answer) => decided(op, std::mem::take(&mut arguments), answer, preview.as_ref(), None),
        Err(e) => {
            tracing::warn!(tool = op.id, error = %e, "the confirmation could not be asked; nothing was charged");
            Verdict::Answer(stopped(op, "the user could not be asked", preview.as_ref()))
        }
    }
}

/// What the user's answer decides: the call sent once (under `key`, or one
/// made here, where the operation takes one), or nothing paid sent.
fn decided(
    op: &Operation,
    mut arguments: JsonObject,
    answer: ElicitResult,
    preview: Option<&DryRunPreview>,
    key: Option<String>,
) -> Verdict {
    // Left out, the box stays ticked (its default); given, only `true` is a
    // yes: `"false"`, `0` or anything else a client sends is not.
    let ticked = answer
        .content
        .as_ref()
        .and_then(|c| c.get(CHARGE).or_else(|| c.get(PROCEED)))
        .is_none_or(|v| v.as_bool() == Some(true));
    match answer.action {
        ElicitationAction::Accept if ticked => {
            if op.idempotency_key == IdempotencyKeySupport::Accepted
                && !arguments.contains_key(flat_keys::IDEMPOTENCY_KEY)
            {
                let key = key.unwrap_or_else(crate::idempotency::generate_key);
                arguments.insert(flat_keys::IDEMPOTENCY_KEY.into(), Value::String(key));
            }
            Verdict::Send {
                arguments,
                price: preview.and_then(|p| p.credits_would_charge),
            }
        }
        ElicitationAction::Accept => Verdict::Answer(stopped(op, "the user unticked the charge", preview)),
        ElicitationAction::Decline => Verdict::Answer(stopped(op, "the user declined", preview)),
        _ => Verdict::Answer(stopped(op, "the user cancelled", preview)),
    }
}

/// The question: what the call would charge, its breakdown, and what for.
fn question(op: &Operation, what: &str, preview: Option<&DryRunPreview>) -> String {
    match preview.and_then(|p| p.credits_would_charge) {
        Some(total) => {
            let mut text = format!("{} would charge {} credits ({what})", op.id, total);
            if let Some(Value::Object(parts)) = preview.and_then(|p| p.cost_breakdown.as_ref()) {
                let parts: Vec<String> = parts
                    .iter()
                    .map(|(k, v)| format!("{k} {}", v.as_f64().map_or_else(|| v.to_string(), |n| n.to_string())))
                    .collect();
                if !parts.is_empty() {
                    text.push_str(&format!(": {}", parts.join(", ")));
                }
            }
            text.push_str(&format!(". Charge {} credits?", total));
            text
        }
        None => format!("{} spends credits ({what}); its dry run gave no price. Send it?", op.id),
    }
}

/// The question before a destructive call: what it destroys, and which one.
fn destruction(op: &Operation, arguments: &JsonObject) -> String {
    let mut target: Vec<String> = ["id", "position", "endpoint_id", "task_id"]
        .iter()
        .filter_map(|k| {
            arguments
                .get(*k)
                .map(|v| format!("{k} {}", v.as_str().map_or_else(|| v.to_string(), str::to_owned)))
        })
        .collect();
    if target.is_empty() {
        target.push("as given".into());
    }
    let summary = op.summary.trim_end_matches('.');
    format!(
        "{} ({summary}, {}) cannot be undone. Go ahead?",
        op.id,
        target.join(", ")
    )
}

/// The answer when nothing was charged, with the preview the user saw.
fn stopped(op: &Operation, why: &str, preview: Option<&DryRunPreview>) -> CallToolResult {
    let value = json!({
        "charged": false,
        "error": {"code": "NOT_CONFIRMED", "message": format!("{} was not sent: {why}; nothing was charged", op.id)},
        "preview": preview,
    });
    let mut result = CallToolResult::error(vec![ContentBlock::text(value.to_string())]);
    result.structured_content = Some(value);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only a ticked box (`true`) or none at all is a yes: a string, a
    /// number or null sent in its place charges nothing.
    #[test]
    fn only_true_or_nothing_is_a_yes() {
        let op = crate::operations::find("createBundle").unwrap();
        let answer = |content: Option<Value>| {
            let mut answer = ElicitResult::new(ElicitationAction::Accept);
            answer.content = content;
            answer
        };
        for (content, yes) in [
            (None, true),
            (Some(json!({})), true),
            (Some(json!({"charge": true})), true),
            (Some(json!({"charge": false})), false),
            (Some(json!({"charge": "false"})), false),
            (Some(json!({"charge": "true"})), false),
            (Some(json!({"charge": 0})), false),
            (Some(json!({"charge": 1})), false),
            (Some(json!({"charge": null})), false),
            (Some(json!({"proceed": "no"})), false),
        ] {
            let verdict = decided(op, JsonObject::new(), answer(content.clone()), None, None);
            assert_eq!(matches!(verdict, Verdict::Send { .. }), yes, "{content:?}");
        }
    }

    #[test]
    fn the_question_names_the_credits_and_the_breakdown() {
        let op = crate::operations::find("createBundle").unwrap();
        let body = json!({"data": {"dry_run": true, "credits_would_charge": 14.0,
                                    "cost_breakdown": {"account": 10.0, "video_slot": 4.0}}});
        let preview = DryRunPreview::from_body(&body);
        assert_eq!(
            question(op, "the bundle", preview.as_ref()),
            "createBundle would charge 14 credits (the bundle): account 10, video_slot 4. Charge 14 credits?"
        );
        let result = stopped(op, "the user declined", preview.as_ref());
        assert_eq!(result.is_error, Some(true));
        let structured = result.structured_content.unwrap();
        assert_eq!(structured["charged"], false);
        assert_eq!(structured["preview"]["credits_would_charge"], 14.0);
    }
}
