//! Webhook endpoints, the event catalog and the delivery log. Sending is
//! `deliveries`' job; this module records what is to be sent.

use serde_json::{Value, json};
use uuid::Uuid;

use super::{Handler, body, page, path};
use crate::sandbox::contract::Failure;
use crate::sandbox::world::state::{Endpoint, Tenant, stamp, str_of};
use crate::sandbox::world::vocabulary::{Call, Effects, Event, Payload, Reply, queue, subscribed};
use crate::webhooks::EVENT_TYPES;

/// Webhook endpoints a key may hold.
const MAX_ENDPOINTS: usize = 100;

/// The operations this module answers, and how.
pub(super) const HANDLERS: &[(&str, Handler)] = &[
    ("listWebhookEvents", list_webhook_events),
    ("listWebhookEndpoints", list_webhook_endpoints),
    ("createWebhookEndpoint", create_webhook_endpoint),
    ("getWebhookEndpoint", get_webhook_endpoint),
    ("updateWebhookEndpoint", update_webhook_endpoint),
    ("deleteWebhookEndpoint", delete_webhook_endpoint),
    ("listWebhookDeliveries", list_webhook_deliveries),
    ("retryWebhookDelivery", retry_webhook_delivery),
    ("testWebhookEndpoint", test_webhook_endpoint),
];

/// `listWebhookEvents`.
fn list_webhook_events(_tenant: &mut Tenant, call: &Call, _fx: &mut Effects) -> Result<Reply, Failure> {
    Ok(Reply::data(call, event_catalog()))
}

/// `listWebhookEndpoints`.
fn list_webhook_endpoints(tenant: &mut Tenant, call: &Call, _fx: &mut Effects) -> Result<Reply, Failure> {
    let enabled = call.query.get("enabled").and_then(Value::as_bool);
    let event = call.query.get("event").and_then(Value::as_str);
    let items = tenant
        .endpoints
        .iter()
        .filter(|e| enabled.is_none_or(|want| e.fields.get("enabled").and_then(Value::as_bool) == Some(want)))
        .filter(|e| event.is_none_or(|want| subscribed(&e.fields, want)))
        .map(|e| Value::Object(e.fields.clone()))
        .collect();
    Ok(page(call, items))
}

/// `createWebhookEndpoint`.
fn create_webhook_endpoint(tenant: &mut Tenant, call: &Call, _fx: &mut Effects) -> Result<Reply, Failure> {
    let mut fields = crate::sandbox::contract::with_defaults(call.op, &body(call));
    let url = str_of(&fields, "url").unwrap_or_default().to_owned();
    check_url(&url)?;
    if tenant.endpoints.len() >= MAX_ENDPOINTS {
        return Err(Failure::rule(
            "url",
            format!("cannot be added: a sandbox key holds at most {MAX_ENDPOINTS} webhook endpoints"),
        ));
    }
    if tenant
        .endpoints
        .iter()
        .any(|e| str_of(&e.fields, "url") == Some(url.as_str()))
    {
        return Err(Failure::new(
            409,
            "ENDPOINT_EXISTS",
            "A webhook endpoint with this URL already exists.",
        ));
    }
    let secret = format!("whsec_{}", Uuid::new_v4().simple());
    fields.insert("id".into(), json!(Uuid::new_v4()));
    fields.insert("created_at".into(), json!(stamp(call.now)));
    fields.insert("updated_at".into(), json!(stamp(call.now)));
    let mut answer = fields.clone();
    answer.insert("secret".into(), json!(secret));
    tenant.endpoints.push(Endpoint { fields, secret });
    Ok(Reply::data(call, Value::Object(answer)))
}

/// `getWebhookEndpoint`.
fn get_webhook_endpoint(tenant: &mut Tenant, call: &Call, _fx: &mut Effects) -> Result<Reply, Failure> {
    let id = path(call, "id");
    Ok(Reply::data(call, Value::Object(tenant.endpoint(id)?.fields.clone())))
}

/// `updateWebhookEndpoint`.
fn update_webhook_endpoint(tenant: &mut Tenant, call: &Call, _fx: &mut Effects) -> Result<Reply, Failure> {
    let id = path(call, "id");
    let patch = body(call);
    if let Some(url) = str_of(&patch, "url") {
        check_url(url)?;
    }
    let endpoint = tenant.endpoint(id)?;
    for (k, v) in patch {
        endpoint.fields.insert(k, v);
    }
    endpoint.fields.insert("updated_at".into(), json!(stamp(call.now)));
    Ok(Reply::data(call, Value::Object(endpoint.fields.clone())))
}

/// `deleteWebhookEndpoint`.
fn delete_webhook_endpoint(tenant: &mut Tenant, call: &Call, _fx: &mut Effects) -> Result<Reply, Failure> {
    let id = path(call, "id");
    tenant.endpoint(id)?;
    tenant.endpoints.retain(|e| str_of(&e.fields, "id") != Some(id));
    Ok(Reply {
        status: call.op.success_status,
        payload: Payload::Empty,
    })
}

/// `listWebhookDeliveries`.
fn list_webhook_deliveries(tenant: &mut Tenant, call: &Call, _fx: &mut Effects) -> Result<Reply, Failure> {
    let id = path(call, "id");
    tenant.endpoint(id)?;
    let endpoint_id = Uuid::parse_str(id).ok();
    let event_type = call.query.get("event_type").and_then(Value::as_str);
    let success = call.query.get("success").and_then(Value::as_bool);
    let items = tenant
        .deliveries
        .iter()
        .rev()
        .filter(|d| Some(d.endpoint) == endpoint_id)
        .filter(|d| event_type.is_none_or(|t| str_of(&d.fields, "event_type") == Some(t)))
        .filter(|d| success.is_none_or(|s| d.fields.get("success").and_then(Value::as_bool) == Some(s)))
        .map(|d| Value::Object(d.fields.clone()))
        .collect();
    Ok(page(call, items))
}

/// `retryWebhookDelivery`.
fn retry_webhook_delivery(tenant: &mut Tenant, call: &Call, fx: &mut Effects) -> Result<Reply, Failure> {
    let id = path(call, "id");
    let enabled = tenant.endpoint(id)?.fields.get("enabled").and_then(Value::as_bool) != Some(false);
    // Both ids passed the path's uuid format check.
    let (endpoint_id, delivery_id) = (
        Uuid::parse_str(id).ok(),
        Uuid::parse_str(path(call, "delivery_id")).ok(),
    );
    let delivery = delivery_id
        .and_then(|d| tenant.delivery_at(d))
        .map(|at| &tenant.deliveries[at])
        .filter(|d| Some(d.endpoint) == endpoint_id)
        .ok_or_else(|| Failure::not_found("Webhook delivery"))?;
    if !enabled {
        return Err(Failure::state("The webhook endpoint is disabled."));
    }
    if str_of(&delivery.fields, "status") == Some("pending") {
        return Err(Failure::state("The delivery is still being attempted."));
    }
    fx.retry_delivery = delivery_id;
    Ok(Reply::data(call, Value::Object(delivery.fields.clone())))
}

/// `testWebhookEndpoint`.
fn test_webhook_endpoint(tenant: &mut Tenant, call: &Call, fx: &mut Effects) -> Result<Reply, Failure> {
    let id = path(call, "id");
    tenant.endpoint(id)?;
    let endpoint_id = Uuid::parse_str(id).ok();
    let event = Event {
        event_type: "webhook.test",
        data: json!({"webhook_endpoint_id": id, "message": "This is a test event from the TokPortal sandbox."}),
        only: endpoint_id,
    };
    let queued = queue(tenant, &event, call.now);
    fx.await_delivery = queued.deliveries.first().copied();
    Ok(Reply::data(call, json!({})))
}

fn check_url(url: &str) -> Result<(), Failure> {
    match url::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(()),
        _ => Err(Failure::rule("url", "must be an http or https URL with a host")),
    }
}

/// `listWebhookEvents`: the event types, the envelope, how deliveries are
/// made and signed.
pub(crate) fn event_catalog() -> Value {
    let bundle = json!({"type": "object", "required": ["bundle_id"], "properties": {"bundle_id": {"type": "string", "format": "uuid"}, "external_ref": {"type": ["string", "null"]}, "status": {"type": "string"}, "platform": {"type": "string"}, "bundle_type": {"type": "string"}}});
    let account = json!({"type": "object", "required": ["account_id", "bundle_id", "status"], "properties": {"account_id": {"type": "string", "format": "uuid"}, "bundle_id": {"type": "string", "format": "uuid"}, "username": {"type": ["string", "null"]}, "platform": {"type": "string"}, "status": {"type": "string"}, "previous_status": {"type": ["string", "null"]}}});
    let video = json!({"type": "object", "required": ["video_id", "bundle_id", "position", "status"], "properties": {"video_id": {"type": "string", "format": "uuid"}, "bundle_id": {"type": "string", "format": "uuid"}, "position": {"type": "integer"}, "status": {"type": "string"}, "previous_status": {"type": ["string", "null"]}, "platform_url": {"type": ["string", "null"]}}});
    let test = json!({"type": "object", "required": ["webhook_endpoint_id", "message"], "properties": {"webhook_endpoint_id": {"type": "string", "format": "uuid"}, "message": {"type": "string"}}});
    let id = "9f3a7b2e-1c4d-4e8f-a5b6-7d9e0f1a2b3c";
    let events: Vec<Value> = EVENT_TYPES
        .iter()
        .map(|t| {
            let (category, rest) = t.split_once('.').unwrap_or((t, ""));
            let status = rest.to_owned();
            let (schema, example) = match category {
                "bundle" => (bundle.clone(), json!({"bundle_id": id, "external_ref": null, "status": if status == "created" { "draft" } else { "published" }, "platform": "tiktok", "bundle_type": "account_and_videos"})),
                "account" => (account.clone(), json!({"account_id": id, "bundle_id": id, "username": "sandbox.creator", "platform": "tiktok", "status": status, "previous_status": null})),
                "video" => (video.clone(), json!({"video_id": id, "bundle_id": id, "position": 1, "status": status, "previous_status": null, "platform_url": null})),
                _ => (test.clone(), json!({"webhook_endpoint_id": id, "message": "This is a test event."})),
            };
            json!({
                "type": t,
                "category": category,
                "availability": "emitted",
                "description": format!("The {category} is now {}.", status.replace('_', " ")),
                "when": format!("When the {category} moves to `{status}`."),
                "payload_schema": schema,
                "example_payload": example,
            })
        })
        .collect();
    json!({
        "events": events,
        "envelope": {"id": "evt_0123456789abcdef0123456789abcdef", "type": "bundle.created", "api_version": crate::operations::SPEC_VERSION, "created_at": "2026-05-25T00:00:00Z", "data": {}},
        "delivery": {
            "method": "POST",
            "content_type": "application/json",
            "timeout_ms": 8000,
            "user_agent": crate::sandbox::world::deliveries::USER_AGENT,
            "headers": ["Content-Type", "User-Agent", "TokPortal-Signature", "TokPortal-Event-ID", "TokPortal-Event-Type", "TokPortal-Delivery-ID"],
        },
        "signature": {
            "header": "TokPortal-Signature",
            "scheme": "t={unix_timestamp},v1={hmac_sha256}",
            "signed_payload": "{timestamp}.{raw_body}",
            "algorithm": "HMAC-SHA256",
            "default_tolerance_seconds": 300,
        },
    })
}
