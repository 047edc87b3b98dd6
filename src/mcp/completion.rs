//! `completion/complete` (the MCP spec's completion utility) for the
//! prompts' arguments and the resource templates' variables:
//!
//! - countries (`launch_accounts`' `countries`, a comma-separated list whose
//!   last item is completed; `monitor_accounts`' `country`): `listCountries`;
//! - platforms (`launch_accounts`' `platform`): the contract's enum (the
//!   `platform` filter of `listBundles`), no call;
//! - bundle ids (`schedule_videos`' `bundle_id`, `tokportal://bundles/{id}`):
//!   the caller's own `listBundles`;
//! - account ids (`tokportal://accounts/{id}`): the caller's own
//!   `listAccounts`.
//!
//! The lists are read with the caller's key, through the same per-caller
//! client as tool calls, and never kept: one caller's ids are never offered
//! to another. Values are those starting with what was typed (case
//! ignored), at most 100 (the spec's limit), `hasMore` when some were cut.

use rmcp::ErrorData as McpError;
use rmcp::model::{CompletionInfo, JsonObject, Reference};
use serde_json::Value;

use crate::{Client, Error, ResponseBody};

/// Where an argument's values come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// `listCountries`' codes.
    Countries,
    /// The contract's platform enum.
    Platforms,
    /// The caller's bundles (`listBundles`).
    Bundles,
    /// The caller's accounts (`listAccounts`).
    Accounts,
}

/// An argument that can be completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Wanted {
    /// Where its values come from.
    pub(crate) source: Source,
    /// A comma-separated list: the item after the last comma is completed.
    pub(crate) list: bool,
}

/// Pages of 100 read at most from a caller's list (500 ids).
const MAX_PAGES: u64 = 5;

/// The arguments with values to offer, by prompt.
const PROMPT_ARGUMENTS: &[(&str, &str, Source, bool)] = &[
    ("launch_accounts", "countries", Source::Countries, true),
    ("launch_accounts", "platform", Source::Platforms, false),
    ("schedule_videos", "bundle_id", Source::Bundles, false),
    ("monitor_accounts", "country", Source::Countries, false),
];

/// The template variables with values to offer, by URI template.
const TEMPLATE_ARGUMENTS: &[(&str, &str, Source)] = &[
    ("tokportal://bundles/{id}", "id", Source::Bundles),
    ("tokportal://accounts/{id}", "id", Source::Accounts),
];

/// What `argument` of `reference` is completed from: `None` for an argument
/// with nothing to offer (a number, a date); `Err` for a prompt, template
/// or argument this server does not have (invalid params, -32602).
pub(crate) fn wanted(reference: &Reference, argument: &str) -> Result<Option<Wanted>, McpError> {
    let invalid = |why: String| McpError::invalid_params(why, None);
    match reference {
        Reference::Prompt(prompt) => {
            let known = super::prompts::list().into_iter().find(|p| p.name == prompt.name);
            let Some(known) = known else {
                return Err(invalid(format!("no prompt `{}`", prompt.name)));
            };
            if !known.arguments.iter().flatten().any(|a| a.name == argument) {
                return Err(invalid(format!(
                    "prompt `{}` has no argument `{argument}`",
                    prompt.name
                )));
            }
            Ok(PROMPT_ARGUMENTS
                .iter()
                .find(|(p, a, ..)| *p == prompt.name && *a == argument)
                .map(|&(_, _, source, list)| Wanted { source, list }))
        }
        Reference::Resource(resource) => {
            let known = super::resources::templates()
                .into_iter()
                .any(|t| t.uri_template == resource.uri);
            if !known {
                return Err(invalid(format!("no resource template `{}`", resource.uri)));
            }
            TEMPLATE_ARGUMENTS
                .iter()
                .find(|(t, ..)| *t == resource.uri)
                .filter(|(_, a, _)| *a == argument)
                .map(|&(_, _, source)| Some(Wanted { source, list: false }))
                .ok_or_else(|| invalid(format!("`{}` has no variable `{argument}`", resource.uri)))
        }
        other => Err(invalid(format!(
            "no completion for a `{}` reference",
            other.reference_type()
        ))),
    }
}

/// The values of `wanted` that complete `typed`, read with `client`.
pub(crate) async fn complete(wanted: Wanted, typed: &str, client: &Client) -> Result<CompletionInfo, McpError> {
    let (candidates, more) = match read(wanted.source, client).await {
        Ok(found) => found,
        Err(e) => {
            tracing::warn!(error = %e, source = ?wanted.source, "completion values could not be read");
            return Err(McpError::internal_error(
                format!("the values could not be read: {e}"),
                None,
            ));
        }
    };
    Ok(answer(&candidates, typed, wanted.list, more))
}

/// Every value of `source` this server can read, and whether there were
/// more than it read.
async fn read(source: Source, client: &Client) -> Result<(Vec<String>, bool), Error> {
    match source {
        Source::Platforms => Ok((platforms(), false)),
        Source::Countries => {
            let body = json_of(client.call_operation("listCountries", JsonObject::new()).await?.body);
            Ok((countries(body.get("data").unwrap_or(&body)), false))
        }
        Source::Bundles => ids(client, "listBundles").await,
        Source::Accounts => ids(client, "listAccounts").await,
    }
}

fn json_of(body: ResponseBody) -> Value {
    match body {
        ResponseBody::Json(v) => v,
        _ => Value::Null,
    }
}

/// The contract's platforms.
fn platforms() -> Vec<String> {
    crate::operations::find("listBundles")
        .and_then(|op| op.param("platform"))
        .map(|p| p.schema())
        .and_then(|s| s.get("enum").and_then(Value::as_array).cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

/// The codes in `listCountries`' data: a list of codes, of objects with a
/// `code` (or an `id`), or an object keyed by code.
fn countries(data: &Value) -> Vec<String> {
    match data {
        Value::Array(items) => items
            .iter()
            .filter_map(|item| match item {
                Value::String(code) => Some(code.clone()),
                Value::Object(o) => o
                    .get("code")
                    .or_else(|| o.get("id"))
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                _ => None,
            })
            .collect(),
        Value::Object(o) => o
            .get("countries")
            .map_or_else(|| o.keys().cloned().collect(), countries),
        _ => Vec::new(),
    }
}

/// The ids of the caller's list `operation`, pages of 100, at most
/// [`MAX_PAGES`] of them.
async fn ids(client: &Client, operation: &str) -> Result<(Vec<String>, bool), Error> {
    let mut found = Vec::new();
    for page in 1..=MAX_PAGES {
        let mut arguments = JsonObject::new();
        arguments.insert("page".into(), page.into());
        arguments.insert("per_page".into(), 100.into());
        let body = json_of(client.call_operation(operation, arguments).await?.body);
        let items = body
            .get("data")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        found.extend(
            items
                .iter()
                .filter_map(|item| item.get("id").and_then(Value::as_str).map(str::to_owned)),
        );
        let pages = body
            .pointer("/pagination/total_pages")
            .and_then(Value::as_u64)
            .unwrap_or(page);
        if items.is_empty() || page >= pages {
            return Ok((found, false));
        }
    }
    Ok((found, true))
}

/// The candidates that complete `typed` (its last comma-separated item in
/// a list), whole values, at most 100.
fn answer(candidates: &[String], typed: &str, list: bool, more: bool) -> CompletionInfo {
    let (head, item) = match typed.rfind(',') {
        Some(at) if list => typed.split_at(at + 1),
        _ => ("", typed),
    };
    // "USA, fr" completes as "USA, FRA": the spacing typed is kept.
    let spaces = &item[..item.len() - item.trim_start().len()];
    let prefix = item.trim_start().to_lowercase();
    let taken: Vec<&str> = head.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
    let mut values: Vec<String> = Vec::new();
    for candidate in candidates {
        let fits =
            candidate.to_lowercase().starts_with(&prefix) && !taken.iter().any(|t| t.eq_ignore_ascii_case(candidate));
        let value = format!("{head}{spaces}{candidate}");
        if fits && !values.contains(&value) {
            values.push(value);
        }
    }
    let matched = values.len();
    values.truncate(CompletionInfo::MAX_VALUES);
    let total = (!more).then(|| u32::try_from(matched).unwrap_or(u32::MAX));
    // At most MAX_VALUES by now, so never refused.
    CompletionInfo::with_pagination(values, total, more || matched > CompletionInfo::MAX_VALUES).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn strings(values: &[&str]) -> Vec<String> {
        values.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn values_start_with_what_was_typed_and_lists_complete_their_last_item() {
        let codes = strings(&["USA", "FRA", "DEU", "GBR", "USA"]);
        let got = answer(&codes, "u", false, false);
        assert_eq!(
            (got.values, got.total, got.has_more),
            (strings(&["USA"]), Some(1), Some(false))
        );
        let got = answer(&codes, "USA, ", true, false);
        assert_eq!(got.values, strings(&["USA, FRA", "USA, DEU", "USA, GBR"]));
        assert_eq!(answer(&codes, "DEU,f", true, false).values, strings(&["DEU,FRA"]));
        assert!(answer(&codes, "x", false, false).values.is_empty());
    }

    #[test]
    fn at_most_a_hundred_and_has_more_when_cut() {
        let many: Vec<String> = (0..250).map(|i| format!("id-{i:03}")).collect();
        let got = answer(&many, "id-", false, false);
        assert_eq!(
            (got.values.len(), got.total, got.has_more),
            (100, Some(250), Some(true))
        );
        let got = answer(&many, "id-00", false, false);
        assert_eq!((got.values.len(), got.has_more), (10, Some(false)));
        // Pages left unread: more, and no total.
        let got = answer(&many, "id-00", false, true);
        assert_eq!((got.total, got.has_more), (None, Some(true)));
    }

    #[test]
    fn countries_read_from_any_shape_and_platforms_from_the_contract() {
        assert_eq!(
            countries(&json!([{"code": "USA"}, "FRA", {"id": "DEU"}, 3])),
            strings(&["USA", "FRA", "DEU"])
        );
        assert_eq!(countries(&json!({"countries": ["USA"]})), strings(&["USA"]));
        assert!(platforms().contains(&"tiktok".to_owned()), "{:?}", platforms());
    }

    #[test]
    fn every_completed_argument_is_one_the_server_has() {
        for (prompt, argument, source, list) in PROMPT_ARGUMENTS {
            let got = wanted(&Reference::for_prompt(*prompt), argument).unwrap();
            assert_eq!(
                got,
                Some(Wanted {
                    source: *source,
                    list: *list
                })
            );
        }
        for (template, argument, source) in TEMPLATE_ARGUMENTS {
            let got = wanted(&Reference::for_resource(*template), argument).unwrap();
            assert_eq!(
                got,
                Some(Wanted {
                    source: *source,
                    list: false
                })
            );
        }
        assert_eq!(
            wanted(&Reference::for_prompt("launch_accounts"), "budget").unwrap(),
            None
        );
        let unknown = [
            wanted(&Reference::for_prompt("nope"), "x"),
            wanted(&Reference::for_prompt("launch_accounts"), "nope"),
            wanted(&Reference::for_resource("tokportal://nope/{id}"), "id"),
            wanted(&Reference::for_resource("tokportal://bundles/{id}"), "nope"),
        ];
        for e in unknown {
            assert_eq!(e.unwrap_err().code, rmcp::model::ErrorCode::INVALID_PARAMS);
        }
    }
}
