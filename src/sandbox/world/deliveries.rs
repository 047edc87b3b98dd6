//! Sending webhook deliveries: signed with the endpoint's secret at each
//! attempt, retried on failure after the configured waits, and every
//! attempt written to the delivery log.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::{Value, json};
use uuid::Uuid;

use tokio_util::sync::CancellationToken;

use crate::sandbox::workbench::journal::{Event, Journal};
use crate::sandbox::world::state::{Delivery, MAX_TRIES, Tenants, fingerprint, stamp, str_of};
use crate::webhooks::sign;

/// `User-Agent` of every delivery.
pub(crate) const USER_AGENT: &str = "TokPortal-Webhooks/1.0 (sandbox)";

/// Sends deliveries: the HTTP client they go out with, the waits between
/// attempts, and the state their log is written to.
pub(in crate::sandbox) struct Courier {
    http: reqwest::Client,
    delays: Vec<Duration>,
    tenants: Tenants,
    journal: Arc<Journal>,
    stop: CancellationToken,
}

impl Courier {
    pub(in crate::sandbox) fn new(
        timeout: Duration,
        delays: Vec<Duration>,
        tenants: Tenants,
        journal: Arc<Journal>,
        stop: CancellationToken,
    ) -> Self {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            // A receiver's redirect is its failure, as with TokPortal.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Self {
            http,
            delays,
            tenants,
            journal,
            stop,
        }
    }
}

/// Sends delivery `id` of `tenant` in the background, with its retries.
pub(in crate::sandbox) fn start(courier: &Arc<Courier>, tenant: &str, id: Uuid) {
    let (courier, tenant) = (courier.clone(), tenant.to_owned());
    tokio::spawn(async move { retries(&courier, &tenant, id, 0).await });
}

/// Attempts delivery `id` from attempt number `first` (counted from 0):
/// attempt `n` waits the `n`-th configured wait first, and the attempts end
/// at the first success or when the waits run out.
pub(in crate::sandbox) async fn retries(courier: &Courier, tenant: &str, id: Uuid, first: usize) {
    let mut n = first;
    loop {
        if n > 0 {
            let Some(wait) = courier.delays.get(n - 1).copied() else {
                return;
            };
            let next = Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default();
            record(courier, tenant, id, |d| {
                d.fields.insert("status".into(), json!("retrying"));
                d.fields.insert("next_retry_at".into(), json!(stamp(next)));
            });
            tokio::select! {
                _ = courier.stop.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
        match attempt(courier, tenant, id).await {
            Some(false) => n += 1,
            _ => return,
        }
    }
}

/// One attempt of delivery `id`: `Some(true)` when the receiver answered
/// 2xx, `None` when the delivery or its endpoint is gone.
pub(in crate::sandbox) async fn attempt(courier: &Courier, tenant: &str, id: Uuid) -> Option<bool> {
    let (url, secret, payload, event_id, event_type) = {
        let tenants = courier.tenants.lock().unwrap_or_else(|p| p.into_inner());
        let t = tenants.get(tenant)?;
        let delivery = &t.deliveries[t.delivery_at(id)?];
        let endpoint_id = delivery.endpoint.to_string();
        let endpoint = t
            .endpoints
            .iter()
            .find(|e| str_of(&e.fields, "id") == Some(endpoint_id.as_str()))?;
        (
            str_of(&endpoint.fields, "url")?.to_owned(),
            endpoint.secret.clone(),
            delivery.payload.clone(),
            str_of(&delivery.fields, "event_id").unwrap_or_default().to_owned(),
            str_of(&delivery.fields, "event_type").unwrap_or_default().to_owned(),
        )
    };
    let signature = sign(&secret, Utc::now().timestamp(), &payload);
    let started = Instant::now();
    let sent = courier
        .http
        .post(&url)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::USER_AGENT, USER_AGENT)
        .header(crate::headers::SIGNATURE, signature)
        .header("tokportal-event-id", event_id.as_str())
        .header("tokportal-event-type", event_type.as_str())
        .header("tokportal-delivery-id", id.to_string())
        .body(payload)
        .send()
        .await;
    let elapsed = started.elapsed().as_millis() as u64;
    // The receiver's body is never read: a delivery is judged by its status.
    let (status, error) = match sent {
        Ok(r) if r.status().is_success() => (Some(r.status().as_u16()), None),
        Ok(r) => (
            Some(r.status().as_u16()),
            Some(format!("the receiver answered HTTP {}", r.status().as_u16())),
        ),
        Err(e) => (None, Some(crate::error::one_line(&e))),
    };
    let success = error.is_none();
    let now = stamp(Utc::now());
    let mut tried = json!(null);
    record(courier, tenant, id, |d| {
        let attempts = d.fields.get("attempts").and_then(Value::as_u64).unwrap_or(0) + 1;
        let f = &mut d.fields;
        f.insert("attempts".into(), json!(attempts));
        f.insert("response_status".into(), json!(status));
        f.insert("response_time_ms".into(), json!(elapsed));
        f.insert("error".into(), json!(error));
        f.insert("success".into(), json!(success));
        f.insert("status".into(), json!(if success { "succeeded" } else { "failed" }));
        f.insert("next_retry_at".into(), Value::Null);
        f.insert("last_attempt_at".into(), json!(now));
        tried = json!({
            "attempt": attempts,
            "at": now,
            "url": url,
            "response_status": status,
            "response_time_ms": elapsed,
            "error": error,
            "success": success,
        });
        // The delivery's own log of attempts (the oldest go first).
        if d.tries.len() >= MAX_TRIES {
            d.tries.remove(0);
        }
        if let Value::Object(one) = &tried {
            d.tries.push(one.clone());
        }
    });
    courier.journal.publish(Event::Delivery(Arc::new(json!({
        "key": fingerprint(tenant),
        "delivery_id": id,
        "event_id": event_id,
        "event_type": event_type,
        "try": tried,
    }))));
    tracing::info!(
        target: "tokportal::sandbox",
        "webhook delivery {id} to {url}: {}",
        if success { "delivered" } else { "failed" }
    );
    Some(success)
}

/// Changes delivery `id`: its log entry, its attempts.
fn record(courier: &Courier, tenant: &str, id: Uuid, change: impl FnOnce(&mut Delivery)) {
    let mut tenants = courier.tenants.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(t) = tenants.get_mut(tenant)
        && let Some(at) = t.delivery_at(id)
    {
        change(&mut t.deliveries[at]);
    }
}

/// Delivery `id`'s log entry as it stands.
pub(in crate::sandbox) fn entry(courier: &Courier, tenant: &str, id: Uuid) -> Option<Value> {
    let tenants = courier.tenants.lock().unwrap_or_else(|p| p.into_inner());
    let t = tenants.get(tenant)?;
    Some(Value::Object(t.deliveries[t.delivery_at(id)?].fields.clone()))
}
