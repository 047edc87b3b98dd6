//! Confirm before spending: a paid tool call, when the client can be asked
//! (it declared form elicitation), is first sent as a dry run; the user is
//! then asked through `elicitation/create`, with the credits it would
//! charge and their breakdown. Decline or cancel: nothing is charged and no
//! paid request is sent. Accept: the call is made once, with an idempotency
//! key (the agent's, or one made here) so that a retry never charges twice.
//!
//! Who gets asked: over stdio and in HTTP sessions (`--sessions`), a client
//! of protocol 2025-06-18 and later that declares elicitation. Over
//! stateless HTTP the server cannot send a request back, so the call is
//! served as always: its description says it is paid and `dry_run` is
//! there. (Protocol 2026-07-28's input-required results, rmcp's `mrtr`,
//! would reach stateless clients too; this server does not use them yet.)
//! The paid operations are the table's [`Hints::spends_credits`], as
//! everywhere else.
//!
//! [`Hints::spends_credits`]: crate::operations::Hints::spends_credits

use rmcp::RoleServer;
use rmcp::model::{
    CallToolResult, ContentBlock, ElicitRequestParams, ElicitationAction, ElicitationSchema, JsonObject,
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

/// What to do with a tool call.
pub(crate) enum Verdict {
    /// Send it, with these arguments.
    Send(JsonObject),
    /// Answer this instead: nothing paid was sent.
    Answer(CallToolResult),
}

/// Asks the user before `op` is charged, where it is paid, the setting asks,
/// the agent did not ask for a dry run itself, and the client can be asked.
pub(crate) async fn before_spending(
    op: &'static Operation,
    mut arguments: JsonObject,
    client: &Client,
    context: &RequestContext<RoleServer>,
    setting: ConfirmSpending,
) -> Verdict {
    let Some(what) = op.hints().spends_credits else {
        return Verdict::Send(arguments);
    };
    let dry_run = arguments.get(flat_keys::DRY_RUN) == Some(&Value::Bool(true));
    if setting == ConfirmSpending::Never
        || dry_run
        || !context
            .peer
            .supported_elicitation_modes()
            .contains(&ElicitationMode::Form)
    {
        return Verdict::Send(arguments);
    }
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
    let message = question(op, what, preview.as_ref());
    let schema = ElicitationSchema::builder()
        .optional_bool(CHARGE, true)
        .description("Untick, or decline, to charge nothing.")
        .build();
    let Ok(requested_schema) = schema else {
        return Verdict::Answer(stopped(op, "the question could not be made", preview.as_ref()));
    };
    let asked = context
        .peer
        .create_elicitation(ElicitRequestParams::FormElicitationParams {
            meta: None,
            message,
            requested_schema,
        })
        .await;
    let answer = match asked {
        Ok(answer) => answer,
        Err(e) => {
            tracing::warn!(tool = op.id, error = %e, "the confirmation could not be asked; nothing was charged");
            return Verdict::Answer(stopped(op, "the user could not be asked", preview.as_ref()));
        }
    };
    let ticked = answer
        .content
        .as_ref()
        .and_then(|c| c.get(CHARGE))
        .and_then(Value::as_bool)
        .unwrap_or(true);
    match answer.action {
        ElicitationAction::Accept if ticked => {
            if op.idempotency_key == IdempotencyKeySupport::Accepted
                && !arguments.contains_key(flat_keys::IDEMPOTENCY_KEY)
            {
                arguments.insert(
                    flat_keys::IDEMPOTENCY_KEY.into(),
                    Value::String(crate::idempotency::generate_key()),
                );
            }
            Verdict::Send(arguments)
        }
        ElicitationAction::Accept => Verdict::Answer(stopped(op, "the user unticked the charge", preview.as_ref())),
        ElicitationAction::Decline => Verdict::Answer(stopped(op, "the user declined", preview.as_ref())),
        _ => Verdict::Answer(stopped(op, "the user cancelled", preview.as_ref())),
    }
}

/// The question: what the call would charge, its breakdown, and what for.
fn question(op: &Operation, what: &str, preview: Option<&DryRunPreview>) -> String {
    match preview.and_then(|p| p.credits_would_charge) {
        Some(total) => {
            let mut text = format!("{} would charge {} credits ({what})", op.id, number(total));
            if let Some(Value::Object(parts)) = preview.and_then(|p| p.cost_breakdown.as_ref()) {
                let parts: Vec<String> = parts
                    .iter()
                    .map(|(k, v)| format!("{k} {}", v.as_f64().map_or_else(|| v.to_string(), number)))
                    .collect();
                if !parts.is_empty() {
                    text.push_str(&format!(": {}", parts.join(", ")));
                }
            }
            text.push_str(&format!(". Charge {} credits?", number(total)));
            text
        }
        None => format!("{} spends credits ({what}); its dry run gave no price. Send it?", op.id),
    }
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

/// `14` for 14.0, `2.5` for 2.5.
fn number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
