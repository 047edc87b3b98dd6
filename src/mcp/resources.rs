//! MCP resources: what an agent reads rather than calls.
//!
//! - `tokportal://contract/openapi.yaml`: the vendored contract, whole;
//! - `tokportal://operations`: the operation table as JSON (method, path,
//!   what each spends, whether it destroys, takes an idempotency key, pages);
//! - `tokportal://webhooks/events`: the webhook event catalog;
//! - templates `tokportal://bundles/{id}` and `tokportal://accounts/{id}`,
//!   read through the API with the caller's key (`getBundle`, `getAccount`).
//!
//! The first three are the same for every caller and built into the binary;
//! the templates are the caller's own, and never cached across callers.

use rmcp::model::{Resource, ResourceContents, ResourceTemplate};
use serde_json::{Value, json};

use crate::operations::{IdempotencyKeySupport, OPERATIONS, SPEC_VERSION};
use crate::webhooks::EVENT_TYPES;

/// The vendored contract, as this build was made from it.
const CONTRACT: &str = include_str!("../../spec/openapi.yaml");

/// The contract's address.
pub(crate) const CONTRACT_URI: &str = "tokportal://contract/openapi.yaml";
/// The operation table's address.
pub(crate) const OPERATIONS_URI: &str = "tokportal://operations";
/// The webhook event catalog's address.
pub(crate) const EVENTS_URI: &str = "tokportal://webhooks/events";

/// What reading an address gives.
#[derive(Debug, PartialEq)]
pub(crate) enum Read {
    /// Built in: the text and its MIME type.
    Static(String, &'static str),
    /// Read through the API: `operation` with the path parameter `id`.
    Call {
        /// The operationId.
        operation: &'static str,
        /// The resource's id.
        id: String,
    },
}

/// The fixed resources.
pub(crate) fn list() -> Vec<Resource> {
    vec![
        Resource::new(CONTRACT_URI, "contract")
            .with_title(format!("The TokPortal API contract (OpenAPI, {SPEC_VERSION})"))
            .with_description("The vendored OpenAPI document every call is checked against, whole.")
            .with_mime_type("application/yaml")
            .with_size(CONTRACT.len() as u64),
        Resource::new(OPERATIONS_URI, "operations")
            .with_title("The operations table")
            .with_description(
                "Every operation: method, path, tag, summary, what it spends credits on, whether it destroys \
                 something, takes an idempotency key, or pages.",
            )
            .with_mime_type("application/json"),
        Resource::new(EVENTS_URI, "webhook-events")
            .with_title("The webhook event catalog")
            .with_description("The webhook event types, the resource each is about, and how deliveries are signed.")
            .with_mime_type("application/json"),
    ]
}

/// The templates read through the API.
pub(crate) fn templates() -> Vec<ResourceTemplate> {
    vec![
        ResourceTemplate::new("tokportal://bundles/{id}", "bundle")
            .with_title("A bundle")
            .with_description("One of your bundles, as getBundle answers (read with your key).")
            .with_mime_type("application/json"),
        ResourceTemplate::new("tokportal://accounts/{id}", "account")
            .with_title("An account")
            .with_description("One of your accounts, as getAccount answers (read with your key).")
            .with_mime_type("application/json"),
    ]
}

/// What `uri` reads, or why it reads nothing.
pub(crate) fn resolve(uri: &str) -> Result<Read, String> {
    match uri {
        CONTRACT_URI => return Ok(Read::Static(CONTRACT.to_owned(), "application/yaml")),
        OPERATIONS_URI => return Ok(Read::Static(operations().to_string(), "application/json")),
        EVENTS_URI => return Ok(Read::Static(events().to_string(), "application/json")),
        _ => {}
    }
    let templated = [
        ("tokportal://bundles/", "getBundle"),
        ("tokportal://accounts/", "getAccount"),
    ];
    for (prefix, operation) in templated {
        if let Some(id) = uri.strip_prefix(prefix) {
            // Checked here, so that a bad id costs no call (and never
            // reaches a path as anything but one segment).
            return match uuid::Uuid::parse_str(id) {
                Ok(id) => Ok(Read::Call {
                    operation,
                    id: id.to_string(),
                }),
                Err(_) => Err(format!("`{id}` is not an id (a UUID) in {uri}")),
            };
        }
    }
    Err(format!("no resource at {uri}"))
}

/// The contents of a read.
pub(crate) fn contents(uri: &str, text: String, mime: &str) -> ResourceContents {
    ResourceContents::text(text, uri).with_mime_type(mime)
}

fn operations() -> Value {
    let ops: Vec<Value> = OPERATIONS
        .iter()
        .map(|op| {
            let hints = op.hints();
            json!({
                "operation_id": op.id,
                "method": op.method.as_str(),
                "path": op.path,
                "tag": op.tag,
                "summary": op.summary,
                "read_only": op.method.is_read_only(),
                "destructive": hints.destructive,
                "spends_credits": hints.spends_credits,
                "idempotency_key": match op.idempotency_key {
                    IdempotencyKeySupport::Accepted => "accepted",
                    IdempotencyKeySupport::Refused => "refused",
                    IdempotencyKeySupport::NotApplicable => "not_applicable",
                },
                "paginated": op.paginated,
                "multipart": op.is_multipart(),
            })
        })
        .collect();
    json!({"spec_version": SPEC_VERSION, "operations": ops})
}

fn events() -> Value {
    let events: Vec<Value> = EVENT_TYPES
        .iter()
        .map(|t| json!({"type": t, "resource": t.split('.').next().unwrap_or_default()}))
        .collect();
    json!({
        "spec_version": SPEC_VERSION,
        "events": events,
        "signature": "TokPortal-Signature: t=UNIX_SECONDS,v1=HEX(HMAC-SHA256(secret, t + \".\" + raw body)); \
                      verify against the raw body, within 300 seconds, with every secret of a rotation",
        "operations": ["listWebhookEvents", "createWebhookEndpoint", "listWebhookDeliveries", "retryWebhookDelivery"],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_contract_is_read_whole() {
        let Read::Static(text, mime) = resolve(CONTRACT_URI).unwrap() else {
            panic!("built in")
        };
        assert_eq!(mime, "application/yaml");
        assert_eq!(text, std::fs::read_to_string("spec/openapi.yaml").unwrap());
    }

    #[test]
    fn the_table_and_the_catalog_are_json() {
        let Read::Static(text, _) = resolve(OPERATIONS_URI).unwrap() else {
            panic!()
        };
        let table: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(table["operations"].as_array().unwrap().len(), OPERATIONS.len());
        let create = table["operations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["operation_id"] == "createBundle")
            .unwrap();
        assert!(create["spends_credits"].is_string() && create["idempotency_key"] == "accepted");
        let Read::Static(text, _) = resolve(EVENTS_URI).unwrap() else {
            panic!()
        };
        let catalog: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(catalog["events"].as_array().unwrap().len(), EVENT_TYPES.len());
    }

    #[test]
    fn templates_take_an_id_and_nothing_else() {
        assert_eq!(
            resolve("tokportal://bundles/9F3A7B2E-1C4D-4E8F-A5B6-7D9E0F1A2B3C").unwrap(),
            Read::Call {
                operation: "getBundle",
                id: "9f3a7b2e-1c4d-4e8f-a5b6-7d9e0f1a2b3c".into()
            }
        );
        assert!(resolve("tokportal://accounts/../me").unwrap_err().contains("not an id"));
        assert!(resolve("tokportal://nothing").unwrap_err().contains("no resource"));
    }
}
