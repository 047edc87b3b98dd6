//! The world's vocabulary: what the handlers (`behaviour`), the account
//! manager (`manager`) and the status moves (`transitions`) all speak, and
//! nothing of what any of them does with it, so each reads it and none
//! reads the others through it.
//!
//! - a checked request as the world gets it ([`Call`], its [`Upload`]);
//! - an answer ([`Reply`], its [`Payload`]);
//! - what a call did besides its answer ([`Effects`]: its [`Event`]s, its
//!   charge, its warnings);
//! - the queue: an event recorded as one delivery per subscribed endpoint
//!   ([`queue`], [`Queued`]), the delivery log kept bounded;
//! - [`seeded`], the stable numbers of synthetic data.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::operations::Operation;
use crate::sandbox::world::state::{Charge, Delivery, Object, Tenant, object, stamp, str_of};

/// One checked request.
pub(in crate::sandbox) struct Call {
    pub(in crate::sandbox) op: &'static Operation,
    pub(in crate::sandbox) path: Object,
    pub(in crate::sandbox) query: Object,
    pub(in crate::sandbox) body: Option<Value>,
    pub(in crate::sandbox) upload: Option<Upload>,
    pub(in crate::sandbox) now: DateTime<Utc>,
    /// The sandbox's base URL, for the URLs it hands out.
    pub(in crate::sandbox) base_url: String,
    pub(in crate::sandbox) dry_run: bool,
}

/// A multipart body: its text fields and a summary of its file part (the
/// file itself is hashed while it streams in, never kept).
pub(in crate::sandbox) struct Upload {
    pub(in crate::sandbox) fields: Object,
    pub(in crate::sandbox) file: Option<FileSummary>,
}

/// The file part of an upload.
pub(in crate::sandbox) struct FileSummary {
    pub(in crate::sandbox) filename: Option<String>,
    pub(in crate::sandbox) content_type: Option<String>,
    pub(in crate::sandbox) size: u64,
    pub(in crate::sandbox) sha256: String,
    /// The text of a small file (a CSV import), when it is UTF-8.
    pub(in crate::sandbox) text: Option<String>,
}

/// A success answer.
pub(in crate::sandbox) enum Payload {
    Json(Value),
    Text(&'static str, String),
    Empty,
}

/// An answer: its status and its body.
pub(in crate::sandbox) struct Reply {
    pub(in crate::sandbox) status: u16,
    pub(in crate::sandbox) payload: Payload,
}

impl Reply {
    /// The operation's documented success status with a JSON body.
    pub(in crate::sandbox) fn ok(call: &Call, body: Value) -> Self {
        Self {
            status: call.op.success_status,
            payload: Payload::Json(body),
        }
    }

    /// `{"data": data}`.
    pub(in crate::sandbox) fn data(call: &Call, data: impl Into<Value>) -> Self {
        Self::ok(call, json!({ "data": data.into() }))
    }
}

/// An event to send to the subscribed endpoints (or to one endpoint).
pub(in crate::sandbox) struct Event {
    pub(in crate::sandbox) event_type: &'static str,
    pub(in crate::sandbox) data: Value,
    pub(in crate::sandbox) only: Option<Uuid>,
}

/// What a call did besides its answer.
#[derive(Default)]
pub(in crate::sandbox) struct Effects {
    pub(in crate::sandbox) events: Vec<Event>,
    pub(in crate::sandbox) charge: Option<Charge>,
    /// A delivery whose first attempt the answer waits for (`testWebhookEndpoint`).
    pub(in crate::sandbox) await_delivery: Option<Uuid>,
    /// A delivery to attempt once more at once (`retryWebhookDelivery`).
    pub(in crate::sandbox) retry_delivery: Option<Uuid>,
    /// What the answer's `X-Sandbox-Warning` says: something the contract
    /// allows but that is likely a mistake.
    pub(in crate::sandbox) warnings: Vec<String>,
}

impl Effects {
    /// Adds an `X-Sandbox-Warning` to the answer.
    pub(in crate::sandbox) fn warn(&mut self, warning: String) {
        self.warnings.push(warning);
    }

    /// Emits `event_type` to every subscribed endpoint.
    pub(in crate::sandbox) fn emit(&mut self, event_type: &'static str, data: Value) {
        self.events.push(Event {
            event_type,
            data,
            only: None,
        });
    }
}

/// Finished deliveries (succeeded, or failed for good) kept per key; the
/// oldest go first.
pub(in crate::sandbox) const MAX_DELIVERIES: usize = 1000;
/// Deliveries not finished yet (waiting for their first attempt, or for a
/// retry) kept per key beyond those: they are never dropped before they are
/// sent unless a key has more than this many waiting at once.
pub(in crate::sandbox) const MAX_UNFINISHED: usize = 20_000;
/// Whether `endpoint` subscribes to `event_type`.
pub(in crate::sandbox) fn subscribed(endpoint: &Object, event_type: &str) -> bool {
    endpoint
        .get("events")
        .and_then(Value::as_array)
        .is_some_and(|e| e.iter().any(|t| t.as_str() == Some(event_type)))
}

/// The envelope every delivery carries.
fn envelope(event_type: &str, data: &Value, now: DateTime<Utc>) -> Value {
    json!({
        "id": format!("evt_{}", Uuid::new_v4().simple()),
        "type": event_type,
        "api_version": crate::operations::SPEC_VERSION,
        "created_at": stamp(now),
        "data": data,
    })
}

/// Records one delivery of `event` per enabled endpoint it goes to, and
/// returns their ids for sending.
pub(in crate::sandbox) fn queue(tenant: &mut Tenant, event: &Event, now: DateTime<Utc>) -> Queued {
    let envelope = envelope(event.event_type, &event.data, now);
    let payload = bytes::Bytes::from(envelope.to_string());
    let only = event.only.map(|u| u.to_string());
    let targets: Vec<Uuid> = tenant
        .endpoints
        .iter()
        .filter(|e| match &only {
            Some(only) => str_of(&e.fields, "id") == Some(only.as_str()),
            None => {
                e.fields.get("enabled").and_then(Value::as_bool) != Some(false)
                    && subscribed(&e.fields, event.event_type)
            }
        })
        .filter_map(|e| str_of(&e.fields, "id").and_then(|id| Uuid::parse_str(id).ok()))
        .collect();
    let mut ids = Vec::new();
    for endpoint in targets {
        let id = Uuid::new_v4();
        tenant.deliveries.push(Delivery {
            fields: object(json!({
                "id": id,
                "webhook_endpoint_id": endpoint,
                "event_id": envelope["id"],
                "event_type": event.event_type,
                "status": "pending",
                "success": null,
                "attempts": 0,
                "response_status": null,
                "response_time_ms": null,
                "error": null,
                "next_retry_at": null,
                "created_at": stamp(now),
                "last_attempt_at": null,
            })),
            endpoint,
            payload: payload.clone(),
            tries: Vec::new(),
        });
        ids.push(id);
    }
    bound_deliveries(&mut tenant.deliveries);
    Queued {
        event_type: event.event_type,
        payload,
        deliveries: ids,
    }
}

/// Keeps the delivery log bounded without losing what is still to be
/// sent: past [`MAX_DELIVERIES`], the oldest finished deliveries go; the
/// unfinished ones go (oldest first) only past [`MAX_UNFINISHED`] more.
fn bound_deliveries(deliveries: &mut Vec<Delivery>) {
    if deliveries.len() <= MAX_DELIVERIES {
        return;
    }
    let finished = |d: &Delivery| matches!(str_of(&d.fields, "status"), Some("succeeded" | "failed"));
    let mut drop_finished = deliveries.len() - MAX_DELIVERIES;
    deliveries.retain(|d| {
        if drop_finished > 0 && finished(d) {
            drop_finished -= 1;
            return false;
        }
        true
    });
    let excess = deliveries.len().saturating_sub(MAX_DELIVERIES + MAX_UNFINISHED);
    if excess > 0 {
        tracing::warn!(target: "tokportal::sandbox", "{excess} webhook deliveries dropped unsent: more than {MAX_UNFINISHED} waited at once");
        deliveries.drain(..excess);
    }
}

/// An event as queued: its envelope, and the deliveries made of it (none
/// when no endpoint is subscribed; `tokportal listen` gets it either way).
pub(in crate::sandbox) struct Queued {
    pub(in crate::sandbox) event_type: &'static str,
    pub(in crate::sandbox) payload: bytes::Bytes,
    pub(in crate::sandbox) deliveries: Vec<Uuid>,
}

/// A number that is stable for an id: synthetic analytics without a database.
pub(in crate::sandbox) fn seeded(id: &str, salt: u64, below: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ salt;
    for b in id.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h % below.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A burst of events larger than the delivery log loses none of them:
    /// the unfinished deliveries stay until sent; finished ones make room.
    #[test]
    fn unsent_deliveries_are_never_dropped_to_bound_the_log() {
        use crate::sandbox::world::state::{Endpoint, str_of};
        let mut tenant = Tenant::new(0.0, "test", Utc::now());
        let endpoint = uuid::Uuid::new_v4();
        tenant.endpoints.push(Endpoint {
            fields: crate::sandbox::world::state::object(
                json!({"id": endpoint, "url": "http://127.0.0.1:1/hook", "events": ["bundle.created"], "enabled": true}),
            ),
            secret: "whsec_test".into(),
        });
        let event = Event {
            event_type: "bundle.created",
            data: json!({"bundle_id": "b"}),
            only: None,
        };
        let mut first = Vec::new();
        for _ in 0..MAX_DELIVERIES + 500 {
            first.extend(queue(&mut tenant, &event, Utc::now()).deliveries);
        }
        assert_eq!(
            tenant.deliveries.len(),
            MAX_DELIVERIES + 500,
            "none was sent yet: none dropped"
        );
        assert!(
            tenant.delivery_at(first[0]).is_some(),
            "the oldest unsent delivery is still there"
        );
        // Once 600 are sent, the next event makes room from those.
        for d in tenant.deliveries.iter_mut().take(600) {
            d.fields.insert("status".into(), json!("succeeded"));
        }
        queue(&mut tenant, &event, Utc::now());
        assert_eq!(tenant.deliveries.len(), MAX_DELIVERIES);
        let finished = tenant
            .deliveries
            .iter()
            .filter(|d| str_of(&d.fields, "status") == Some("succeeded"))
            .count();
        assert_eq!(finished, 99, "the oldest finished went first");
        const { assert!(MAX_UNFINISHED > MAX_DELIVERIES) };
    }
}
