//! What a dry run answers: the preview TokPortal returns for a call sent with
//! `X-TokPortal-Dry-Run: true`, read without indexing JSON by hand.
//!
//! The vendored contract does not describe this answer, so only its
//! documented fields are read (`dry_run`, `dry_run_notice`,
//! `credits_would_charge`, `credits_charged`, `cost_breakdown`), at the top
//! of the body or under `data`; `cost_breakdown` is kept as the server sent it.

use serde::Serialize;
use serde_json::Value;

/// The preview of a dry run.
///
/// ```
/// use serde_json::json;
/// let body = json!({"data": {"dry_run": true, "credits_would_charge": 12, "credits_charged": 0,
///                             "cost_breakdown": {"bundle": 10, "videos": 2}}});
/// let preview = tokportal::DryRunPreview::from_body(&body).unwrap();
/// assert_eq!(preview.credits_would_charge, Some(12.0));
/// assert_eq!(preview.to_string(), r#"dry run: would charge 12 credits, charged 0 (cost breakdown: {"bundle":10,"videos":2})"#);
/// assert!(tokportal::DryRunPreview::from_body(&json!({"data": {"id": "b1"}})).is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct DryRunPreview {
    /// `credits_would_charge`: what the call would cost.
    pub credits_would_charge: Option<f64>,
    /// `credits_charged`: what it did cost (0 for a dry run).
    pub credits_charged: Option<f64>,
    /// `cost_breakdown`, as the server sent it.
    pub cost_breakdown: Option<Value>,
    /// `dry_run_notice`: the server's explanation.
    pub notice: Option<String>,
}

impl DryRunPreview {
    /// The preview in a JSON answer (marked `dry_run: true`, at the top or
    /// under `data`), or `None` when the answer is not a dry run's.
    pub fn from_body(body: &Value) -> Option<Self> {
        let is_preview = |v: &&Value| v.get("dry_run").and_then(Value::as_bool) == Some(true);
        let at = Some(body)
            .filter(is_preview)
            .or_else(|| body.get("data").filter(is_preview))?;
        Some(Self {
            credits_would_charge: at.get("credits_would_charge").and_then(Value::as_f64),
            credits_charged: at.get("credits_charged").and_then(Value::as_f64),
            cost_breakdown: at.get("cost_breakdown").filter(|v| !v.is_null()).cloned(),
            notice: at.get("dry_run_notice").and_then(Value::as_str).map(str::to_owned),
        })
    }

    /// The preview in a typed answer (a `ResponseValue`'s inner value).
    pub fn from_typed(answer: &impl Serialize) -> Option<Self> {
        Self::from_body(&serde_json::to_value(answer).ok()?)
    }
}

impl std::fmt::Display for DryRunPreview {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "dry run: ")?;
        match self.credits_would_charge {
            Some(c) => write!(f, "would charge {c} credits")?,
            None => write!(f, "no cost given")?,
        }
        if let Some(c) = self.credits_charged {
            write!(f, ", charged {c}")?;
        }
        if let Some(b) = &self.cost_breakdown {
            write!(f, " (cost breakdown: {b})")?;
        }
        if let Some(n) = &self.notice {
            write!(f, "; {}", n.replace(['\r', '\n'], " "))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_preview_at_the_top_or_under_data() {
        let top = json!({"dry_run": true, "credits_would_charge": 14, "dry_run_notice": "nothing\ncharged"});
        let preview = DryRunPreview::from_body(&top).unwrap();
        assert_eq!(preview.credits_would_charge, Some(14.0));
        assert_eq!(preview.credits_charged, None);
        assert_eq!(preview.cost_breakdown, None);
        assert_eq!(preview.notice.as_deref(), Some("nothing\ncharged"));
        assert_eq!(preview.to_string(), "dry run: would charge 14 credits; nothing charged");
        let under = json!({"data": {"dry_run": true, "credits_charged": 0, "cost_breakdown": null}});
        let preview = DryRunPreview::from_body(&under).unwrap();
        assert_eq!(preview.cost_breakdown, None, "a null breakdown is none");
        assert_eq!(preview.to_string(), "dry run: no cost given, charged 0");
    }

    #[test]
    fn an_answer_that_is_not_a_preview() {
        for body in [
            json!({"data": {"id": "b1", "credits_charged": 10}}),
            json!({"dry_run": false, "credits_would_charge": 10}),
            json!({"data": {"dry_run": "true"}}),
            json!([1, 2]),
        ] {
            assert_eq!(DryRunPreview::from_body(&body), None, "{body}");
        }
        assert_eq!(DryRunPreview::from_typed(&json!({"data": {"id": "b1"}})), None);
        let typed = DryRunPreview::from_typed(&json!({"dry_run": true, "credits_would_charge": 2.5})).unwrap();
        assert_eq!(typed.credits_would_charge, Some(2.5));
    }
}
