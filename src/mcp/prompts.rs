//! MCP prompts: the workflows a TokPortal user runs, written for this
//! server's tools. Each takes arguments and tells the agent which tools to
//! call, in which order, with a dry run before every paid step.
//!
//! The tools are named as this server names them (by operationId, or as
//! TokPortal's hosted server does with `--tool-names official`).

use rmcp::model::{GetPromptResult, Prompt, PromptArgument, PromptMessage, Role};
use serde_json::{Map, Value};

use super::tools::Naming;
use crate::operations::find;

/// One prompt: its name, title, what it is for, and its arguments
/// (name, description, required).
struct Workflow {
    name: &'static str,
    title: &'static str,
    description: &'static str,
    arguments: &'static [(&'static str, &'static str, bool)],
}

const WORKFLOWS: &[Workflow] = &[
    Workflow {
        name: "launch_accounts",
        title: "Launch accounts in several countries, costs first",
        description: "Create one account bundle per country, showing every cost before anything is charged.",
        arguments: &[
            (
                "countries",
                "Comma-separated countries, as TokPortal names them (USA, FRA, DEU)",
                true,
            ),
            ("platform", "tiktok, instagram or youtube (default tiktok)", false),
            ("videos_per_account", "Video slots per account (default 0)", false),
            ("budget", "Most credits to spend in all; stop before going over", false),
        ],
    },
    Workflow {
        name: "schedule_videos",
        title: "Schedule a bundle's videos under a per-day cap",
        description: "Configure a bundle's videos with publish dates, never more than a chosen number on one day.",
        arguments: &[
            ("bundle_id", "The bundle whose videos to schedule", true),
            (
                "max_per_day",
                "Most videos to publish on one day (your cap: the contract sets none)",
                true,
            ),
            (
                "start_date",
                "First publish date, YYYY-MM-DD (default: tomorrow)",
                false,
            ),
        ],
    },
    Workflow {
        name: "monitor_accounts",
        title: "Monitor accounts and webhooks",
        description: "Report on accounts, bundles waiting on you, and webhook endpoints with failing deliveries.",
        arguments: &[
            (
                "since",
                "Only what changed since this date, YYYY-MM-DD (default: the last 7 days)",
                false,
            ),
            ("country", "Only accounts in this country", false),
        ],
    },
];

/// The prompts this server offers.
pub(crate) fn list() -> Vec<Prompt> {
    WORKFLOWS
        .iter()
        .map(|w| {
            let arguments = w
                .arguments
                .iter()
                .map(|(name, description, required)| {
                    PromptArgument::new(*name)
                        .with_description(*description)
                        .with_required(*required)
                })
                .collect();
            Prompt::new(w.name, Some(w.description), Some(arguments)).with_title(w.title)
        })
        .collect()
}

/// Why a prompt could not be given.
#[derive(Debug, PartialEq)]
pub(crate) enum PromptError {
    /// No prompt has this name.
    Unknown(String),
    /// A required argument is missing or empty.
    Missing(&'static str),
    /// An argument does not read as it should.
    Invalid(&'static str, String),
}

impl std::fmt::Display for PromptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PromptError::Unknown(name) => write!(f, "unknown prompt `{name}`"),
            PromptError::Missing(name) => write!(f, "the argument `{name}` is required"),
            PromptError::Invalid(name, why) => write!(f, "the argument `{name}` {why}"),
        }
    }
}

/// The prompt `name` with its `arguments`, its tool names as `naming` gives them.
pub(crate) fn get(
    name: &str,
    arguments: Option<&Map<String, Value>>,
    naming: Naming,
) -> Result<GetPromptResult, PromptError> {
    let workflow = WORKFLOWS
        .iter()
        .find(|w| w.name == name)
        .ok_or_else(|| PromptError::Unknown(name.to_owned()))?;
    let arg = |key: &'static str| -> Option<String> {
        arguments
            .and_then(|a| a.get(key))
            .map(|v| match v {
                Value::String(s) => s.trim().to_owned(),
                other => other.to_string(),
            })
            .filter(|s| !s.is_empty())
    };
    for (key, _, required) in workflow.arguments {
        if *required && arg(key).is_none() {
            return Err(PromptError::Missing(key));
        }
    }
    let t = |id: &str| find(id).map_or_else(|| id.to_owned(), |op| naming.name(op));
    let text = match workflow.name {
        "launch_accounts" => {
            let countries: Vec<String> = arg("countries")
                .unwrap_or_default()
                .split(',')
                .map(|c| c.trim().to_uppercase())
                .filter(|c| !c.is_empty())
                .collect();
            if countries.is_empty() || countries.len() > 50 {
                return Err(PromptError::Invalid("countries", "must name 1 to 50 countries".into()));
            }
            let platform = arg("platform").unwrap_or_else(|| "tiktok".into());
            if !matches!(platform.as_str(), "tiktok" | "instagram" | "youtube") {
                return Err(PromptError::Invalid(
                    "platform",
                    "is tiktok, instagram or youtube".into(),
                ));
            }
            let videos = arg("videos_per_account").unwrap_or_else(|| "0".into());
            if videos.parse::<u32>().is_err() {
                return Err(PromptError::Invalid("videos_per_account", "is a whole number".into()));
            }
            let budget = match arg("budget") {
                Some(b) if b.parse::<f64>().is_ok() => {
                    format!("The user's budget is {b} credits in all: never go over it. ")
                }
                Some(_) => return Err(PromptError::Invalid("budget", "is a number of credits".into())),
                None => String::new(),
            };
            format!(
                "Launch {platform} accounts in {countries} ({n} bundle(s), {videos} video slot(s) each).\n\n\
                 1. Call {balance} and {costs} and tell me my balance and the prices.\n\
                 2. For each country, call {create} with dry_run: true and body \
                 {{\"bundle_type\": \"account_and_videos\", \"platform\": \"{platform}\", \"country\": COUNTRY, \
                 \"videos_quantity\": {videos}}}. A dry run charges nothing. {budget}\n\
                 3. Show me one table: country, credits each dry run would charge, and the total against my balance. \
                 Ask me to confirm. Do not go on without a yes.\n\
                 4. Then call {create} once per country with that body (no dry_run) and an idempotency_key of \
                 launch-COUNTRY-{platform}: if a call fails or times out, call it again with the same key, which \
                 never charges twice.\n\
                 5. For each new bundle, ask me for the account's username and display name, then call {configure}.\n\
                 6. Publishing is paid: call {publish} with dry_run: true first, show me the price, and publish only \
                 after I confirm.\n\
                 7. End with a table of the bundles made: id, country, status, credits charged.",
                countries = countries.join(", "),
                n = countries.len(),
                balance = t("getCreditBalance"),
                costs = t("getCreditCosts"),
                create = t("createBundle"),
                configure = t("configureBundleAccount"),
                publish = t("publishBundle"),
            )
        }
        "schedule_videos" => {
            let bundle = arg("bundle_id").unwrap_or_default();
            if uuid::Uuid::parse_str(&bundle).is_err() {
                return Err(PromptError::Invalid("bundle_id", "is a bundle's id (a UUID)".into()));
            }
            let cap = arg("max_per_day").unwrap_or_default();
            if !cap.parse::<u32>().is_ok_and(|n| n > 0) {
                return Err(PromptError::Invalid("max_per_day", "is a whole number above 0".into()));
            }
            let start = match arg("start_date") {
                Some(d) if chrono::NaiveDate::parse_from_str(&d, "%Y-%m-%d").is_ok() => format!("from {d}"),
                Some(_) => return Err(PromptError::Invalid("start_date", "is a date, YYYY-MM-DD".into())),
                None => "from tomorrow".into(),
            };
            format!(
                "Schedule the videos of bundle {bundle}, {start}, at most {cap} a day.\n\n\
                 1. Call {get} with id {bundle}, and {videos} to list its video slots and what each holds.\n\
                 2. Ask me for each unconfigured slot's video (video_url or carousel images) and description.\n\
                 3. Plan the dates: give each video a target_publish_date, in order, never more than {cap} on one \
                 day, counting the videos already scheduled on that day. Show me the plan as a table (position, \
                 date, description) and wait for my yes.\n\
                 4. Call {batch} with the videos and their dates (several at once), or {configure} for one. If the \
                 bundle needs more slots, {add_slots} is paid: call it with dry_run: true first and ask me.\n\
                 5. Call {videos} again and show me the schedule as it now stands.",
                get = t("getBundle"),
                videos = t("listBundleVideos"),
                batch = t("batchConfigureBundleVideos"),
                configure = t("configureBundleVideo"),
                add_slots = t("addVideoSlots"),
            )
        }
        _ => {
            let since = match arg("since") {
                Some(d) if chrono::NaiveDate::parse_from_str(&d, "%Y-%m-%d").is_ok() => format!("since {d}"),
                Some(_) => return Err(PromptError::Invalid("since", "is a date, YYYY-MM-DD".into())),
                None => "over the last 7 days".into(),
            };
            let country = arg("country")
                .map(|c| format!(" in {}", c.to_uppercase()))
                .unwrap_or_default();
            format!(
                "Give me a status report on my TokPortal accounts{country} and webhooks, {since}. Read only: \
                 change nothing and spend nothing.\n\n\
                 1. Call {accounts} (page through with page and per_page until pagination.total_pages) and count \
                 the accounts by status.\n\
                 2. Call {bundles} with account_status pending_corrections, then in_review: list the bundles \
                 waiting on me, with what each needs.\n\
                 3. Call {endpoints}; for each endpoint, call {deliveries} and report the failed deliveries (event, \
                 status, attempts, next retry). Suggest {retry} for those worth sending again, and do not call it \
                 without my yes.\n\
                 4. Call {balance} and say whether it covers what is waiting.\n\
                 5. End with three short sections: accounts, waiting on me, webhooks.",
                accounts = t("listAccounts"),
                bundles = t("listBundles"),
                endpoints = t("listWebhookEndpoints"),
                deliveries = t("listWebhookDeliveries"),
                retry = t("retryWebhookDelivery"),
                balance = t("getCreditBalance"),
            )
        }
    };
    let mut result = GetPromptResult::new(vec![PromptMessage::new_text(Role::User, text)]);
    result.description = Some(workflow.description.to_owned());
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operations::OPERATIONS;
    use serde_json::json;

    fn text(result: &GetPromptResult) -> String {
        serde_json::to_value(&result.messages[0]).unwrap()["content"]["text"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    #[test]
    fn every_tool_a_prompt_names_exists() {
        for w in WORKFLOWS {
            let args: Map<String, Value> = w
                .arguments
                .iter()
                .map(|(name, _, _)| {
                    let v = match *name {
                        "countries" => "USA,fra",
                        "bundle_id" => "9f3a7b2e-1c4d-4e8f-a5b6-7d9e0f1a2b3c",
                        "max_per_day" | "videos_per_account" | "budget" => "3",
                        "start_date" | "since" => "2026-12-05",
                        "platform" => "instagram",
                        _ => "USA",
                    };
                    ((*name).to_owned(), json!(v))
                })
                .collect();
            let prompt = text(&get(w.name, Some(&args), Naming::OperationId).unwrap());
            let named: Vec<&str> = OPERATIONS
                .iter()
                .map(|op| op.id)
                .filter(|id| prompt.contains(id))
                .collect();
            assert!(named.len() >= 4, "{}: {named:?}", w.name);
            let official = text(&get(w.name, Some(&args), Naming::Official).unwrap());
            assert!(official.contains("tokportal_"), "{official}");
        }
    }

    #[test]
    fn each_paid_step_has_a_dry_run_first() {
        let args = json!({"countries": "USA, FRA", "budget": "100"});
        let prompt = text(&get("launch_accounts", args.as_object(), Naming::OperationId).unwrap());
        assert!(prompt.contains("USA, FRA (2 bundle(s)"), "{prompt}");
        assert!(
            prompt.contains("dry_run: true") && prompt.contains("idempotency_key"),
            "{prompt}"
        );
        assert!(prompt.contains("100 credits"), "{prompt}");
    }

    #[test]
    fn arguments_are_checked() {
        assert_eq!(
            get(
                "schedule_videos",
                json!({"bundle_id": "x"}).as_object(),
                Naming::OperationId
            )
            .unwrap_err(),
            PromptError::Missing("max_per_day")
        );
        assert!(matches!(
            get(
                "schedule_videos",
                json!({"bundle_id": "x", "max_per_day": 2}).as_object(),
                Naming::OperationId
            ),
            Err(PromptError::Invalid("bundle_id", _))
        ));
        assert!(matches!(
            get(
                "launch_accounts",
                json!({"countries": "USA", "platform": "myspace"}).as_object(),
                Naming::OperationId
            ),
            Err(PromptError::Invalid("platform", _))
        ));
        assert_eq!(
            get("nope", None, Naming::OperationId).unwrap_err(),
            PromptError::Unknown("nope".into())
        );
    }
}
