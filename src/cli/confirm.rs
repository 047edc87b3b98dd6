//! Confirm before spending, at a terminal only.
//!
//! When stdin and stderr are both a terminal, outside CI, a call that
//! spends credits (the operation table's [`Hints::spends_credits`], the
//! same place the MCP server's paid hint comes from) is first sent as a dry
//! run; its price is shown and the person is asked. "n" or an empty answer
//! sends nothing more. `--yes` or `TOKPORTAL_YES=1` skips the question; a
//! pipe or CI is never asked and the call is made as always.
//!
//! A destructive call (the table's [`Hints::destructive`]) is asked about
//! too, without a dry run: "… cannot be undone. Go ahead? [y/N]".
//!
//! A call whose dry run costs 0 is not asked about. A call the balance
//! cannot pay (`getCurrentUser`'s, a free call) is refused before the
//! question, naming the balance and the cost: nothing more is sent. An empty
//! breakdown is not shown.
//!
//! [`Hints::spends_credits`]: crate::operations::Hints::spends_credits
//! [`Hints::destructive`]: crate::operations::Hints::destructive

use std::io::{BufRead, IsTerminal, Write};

use serde_json::Value;

use super::exit::{EXIT_DECLINED, Failure};
use crate::operations::Operation;
use crate::{DryRunPreview, Error};

/// Whether this process may ask: stdin and stderr are a terminal, and no
/// `CI` variable says it runs unattended.
fn may_ask() -> bool {
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
    !ci && std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// Asks, where a person must be asked, before `op` is sent for real:
/// `preview` sends its dry run. `Err` with [`EXIT_DECLINED`] when they said
/// no; the dry run's own failure (a 402 for too few credits) is returned as
/// it is. Nothing was charged in either case.
pub(crate) async fn before_spending<F, Fut, B, BFut>(
    op: &Operation,
    dry_run: bool,
    yes: bool,
    preview: F,
    balance: B,
) -> Result<(), Failure>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<Option<DryRunPreview>, Error>>,
    B: FnOnce() -> BFut,
    BFut: Future<Output = Option<f64>>,
{
    if yes || dry_run || !may_ask() {
        return Ok(());
    }
    let Some(what) = op.hints().spends_credits else {
        // A destructive call (the table's hint: an unpublish, a reset, a
        // delete), as TokPortal's agent rules ask, is confirmed too.
        return if op.hints().destructive {
            ask(
                &format!("{} cannot be undone. Go ahead? [y/N] ", op.cli_command),
                "Nothing was sent.",
            )
        } else {
            Ok(())
        };
    };
    let preview = preview().await?.map(without_empty_breakdown);
    let cost = preview.as_ref().and_then(|p| p.credits_would_charge);
    if cost == Some(0.0) {
        return Ok(());
    }
    if let Some(cost) = cost
        && let Some(have) = balance().await
        && have < cost
    {
        return Err(Failure {
            code: EXIT_DECLINED,
            message: format!(
                "error: {} costs {cost} credits and the balance is {have}: add credits, then run it again. Nothing was sent or charged.",
                op.cli_command
            ),
        });
    }
    let question = describe(op, what, preview.as_ref());
    ask(&question, "Nothing was charged.")
}

/// Asks `question` at the terminal: `Ok` on "y" or "yes", else
/// [`EXIT_DECLINED`] with `declined` (nothing was sent, or charged).
fn ask(question: &str, declined: &str) -> Result<(), Failure> {
    let mut stderr = std::io::stderr().lock();
    // A terminal that cannot be written to cannot be asked: nothing is sent.
    let _ = write!(stderr, "{question}");
    let _ = stderr.flush();
    drop(stderr);
    let mut answer = String::new();
    if std::io::stdin().lock().read_line(&mut answer).is_err() {
        answer.clear();
    }
    if matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
        Ok(())
    } else {
        Err(Failure {
            code: EXIT_DECLINED,
            message: declined.into(),
        })
    }
}

/// The key's balance (`getCurrentUser`, which is free), or `None` when
/// it cannot be read: then the person is asked as before.
pub(crate) async fn balance(client: &crate::Client) -> Option<f64> {
    let me = client
        .request_operation("getCurrentUser", crate::OperationArgs::new())
        .await
        .ok()?;
    match me.body {
        crate::ResponseBody::Json(v) => v.pointer("/data/credits/balance").and_then(Value::as_f64),
        _ => None,
    }
}

/// `preview` without a breakdown that says nothing (`{}`, `[]`).
pub(crate) fn without_empty_breakdown(mut preview: DryRunPreview) -> DryRunPreview {
    let empty = match &preview.cost_breakdown {
        Some(Value::Object(parts)) => parts.is_empty(),
        Some(Value::Array(parts)) => parts.is_empty(),
        Some(Value::Null) => true,
        _ => false,
    };
    if empty {
        preview.cost_breakdown = None;
    }
    preview
}

/// The price and the question, from the dry run's preview.
fn describe(op: &Operation, what: &str, preview: Option<&DryRunPreview>) -> String {
    let mut text = String::new();
    match preview.and_then(|p| p.credits_would_charge) {
        Some(total) => {
            text.push_str(&format!("{} would charge {} credits ({what})", op.cli_command, total));
            match preview.and_then(|p| p.cost_breakdown.as_ref()) {
                Some(Value::Object(parts)) if !parts.is_empty() => {
                    text.push_str(":\n");
                    let wide = parts.keys().map(String::len).max().unwrap_or(0);
                    for (name, credits) in parts {
                        let credits = credits.as_f64().map_or_else(|| credits.to_string(), |n| n.to_string());
                        text.push_str(&format!("  {name:<wide$}  {credits:>6}\n"));
                    }
                }
                Some(Value::Object(_) | Value::Null) | None => text.push('\n'),
                Some(Value::Array(parts)) if parts.is_empty() => text.push('\n'),
                Some(other) => text.push_str(&format!(" ({other})\n")),
            }
            text.push_str(&format!("Charge {} credits? [y/N] ", total));
        }
        None => {
            text.push_str(&format!(
                "{} spends credits ({what}); its dry run gave no price.\nSend it? [y/N] ",
                op.cli_command
            ));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_question_names_the_total_and_the_breakdown() {
        let op = crate::operations::find("createBundle").unwrap();
        let body = json!({"data": {"dry_run": true, "credits_would_charge": 14, "credits_charged": 0,
                                    "cost_breakdown": {"account": 10, "videos": 4}}});
        let preview = DryRunPreview::from_body(&body);
        let text = describe(op, "the bundle", preview.as_ref());
        assert!(text.contains("create-bundle would charge 14 credits"), "{text}");
        assert!(
            text.contains("account      10\n") && text.contains("videos        4\n"),
            "{text}"
        );
        assert!(text.ends_with("Charge 14 credits? [y/N] "), "{text}");
    }

    #[test]
    fn an_empty_breakdown_is_not_shown() {
        let op = crate::operations::find("publishBundle").unwrap();
        let body = json!({"data": {"dry_run": true, "credits_would_charge": 3, "cost_breakdown": {}}});
        let preview = DryRunPreview::from_body(&body).map(without_empty_breakdown);
        let text = describe(op, "publishing", preview.as_ref());
        assert!(!text.contains("{}"), "{text}");
        assert!(!preview.unwrap().to_string().contains("breakdown"));
    }

    #[test]
    fn no_price_is_said_and_still_asked() {
        let op = crate::operations::find("revealAccountCredentials").unwrap();
        let text = describe(op, "revealing the credentials", None);
        assert!(
            text.contains("gave no price") && text.ends_with("Send it? [y/N] "),
            "{text}"
        );
    }
}
