//! Sending webhook deliveries: signed with the endpoint's secret at each
//! attempt, retried on failure after the configured waits, and every
//! attempt written to the delivery log.
//!
//! The first attempts of one key's deliveries are made in the order their
//! events happened on the key's clock: each key has a lane, one task that
//! takes its deliveries in order (a failed one is retried beside the lane,
//! so a dead receiver does not hold the others back). Two faults make the
//! order as bad as production's can be: `--webhook-duplicates RATE` sends
//! that share of deliveries twice (the same `TokPortal-Event-Id` and
//! delivery id), and a queued `hold` (`POST /_sandbox/faults` with
//! `{"fault": "hold"}`) keeps one delivery back until the next one of its
//! key has been attempted (or [`HOLD_AT_MOST`] has passed).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::{mpsc, oneshot};

use chrono::Utc;
use serde_json::{Value, json};
use uuid::Uuid;

use tokio_util::sync::CancellationToken;

use crate::sandbox::logbook::journal::{Event, Journal};
use crate::sandbox::logbook::verify::Tally;
use crate::sandbox::world::state::{Delivery, MAX_TRIES, Tenants, fingerprint, stamp, str_of};
use crate::sandbox::world::store::Store;
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
    /// Deliveries counted for `verify`.
    tally: Arc<Tally>,
    /// The state file, where each attempt is written.
    store: Option<Arc<Store>>,
    stop: CancellationToken,
    /// Each key's lane (its state name to the lane's queue).
    lanes: Mutex<HashMap<String, mpsc::Sender<Job>>>,
    /// `hold` faults queued: for one key's deliveries (its state name) or any.
    holds: Mutex<VecDeque<Option<String>>>,
    /// Share of deliveries sent twice, and the dice that choose them.
    duplicates: f64,
    dice: Mutex<StdRng>,
}

/// Deliveries waiting in one key's lane at most; past that a delivery is
/// sent beside the lane, out of order (and logged so).
const LANE_DEPTH: usize = 4096;
/// How long an idle lane's task lives before it ends (a new one starts with
/// the key's next delivery).
const LANE_IDLE: Duration = Duration::from_secs(30);
/// A held delivery waits for the next one of its key this long at most.
pub(in crate::sandbox) const HOLD_AT_MOST: Duration = Duration::from_secs(2);
/// `hold` faults that may wait at once.
const MAX_HOLDS: usize = 100;

/// One delivery in a lane, and who waits for its first attempt.
struct Job {
    id: Uuid,
    attempted: Option<oneshot::Sender<()>>,
}

impl Courier {
    pub(in crate::sandbox) fn new(
        timeout: Duration,
        delays: Vec<Duration>,
        (duplicates, seed): (f64, Option<u64>),
        tenants: Tenants,
        (journal, tally): (Arc<Journal>, Arc<Tally>),
        store: Option<Arc<Store>>,
        stop: CancellationToken,
    ) -> Self {
        let http = crate::client::http_builder()
            .timeout(timeout)
            // A receiver's redirect is its failure, as with TokPortal.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        let dice = match seed {
            // Not the fault dice's stream: the same seed draws both apart.
            Some(seed) => StdRng::seed_from_u64(seed ^ 0x5eed_d0b1),
            None => StdRng::from_os_rng(),
        };
        Self {
            http,
            delays,
            tenants,
            journal,
            tally,
            store,
            stop,
            lanes: Mutex::new(HashMap::new()),
            holds: Mutex::new(VecDeque::new()),
            duplicates,
            dice: Mutex::new(dice),
        }
    }

    /// Queues a `hold` fault `times` times, for one key (its state name)
    /// or any; the holds now queued, or why not.
    pub(in crate::sandbox) fn hold(&self, times: usize, tenant: Option<String>) -> Result<usize, String> {
        let mut holds = self.holds.lock().unwrap_or_else(|p| p.into_inner());
        if holds.len() + times > MAX_HOLDS {
            return Err(format!("at most {MAX_HOLDS} hold faults may wait"));
        }
        holds.extend(std::iter::repeat_n(tenant, times));
        Ok(holds.len())
    }

    /// Drops every queued `hold` (the whole sandbox's reset).
    pub(in crate::sandbox) fn clear_holds(&self) {
        self.holds.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// Takes a `hold` queued for `tenant`'s deliveries (or any key's).
    fn take_hold(&self, tenant: &str) -> bool {
        let mut holds = self.holds.lock().unwrap_or_else(|p| p.into_inner());
        let at = holds.iter().position(|h| h.as_deref().is_none_or(|h| h == tenant));
        at.and_then(|at| holds.remove(at)).is_some()
    }

    fn roll_duplicate(&self) -> bool {
        self.duplicates > 0.0 && self.dice.lock().unwrap_or_else(|p| p.into_inner()).random::<f64>() < self.duplicates
    }
}

/// Sends delivery `id` of `tenant` through the key's lane, with its retries.
pub(in crate::sandbox) fn start(courier: &Arc<Courier>, tenant: &str, id: Uuid) {
    enqueue(courier, tenant, id, None);
}

/// Sends `ids` of `tenant` through the key's lane, in order, and waits
/// until each has had its first attempt (a held one counts as attempted
/// when it is held).
pub(in crate::sandbox) async fn send_in_order(courier: &Arc<Courier>, tenant: &str, ids: Vec<Uuid>) {
    let mut waits = Vec::with_capacity(ids.len());
    for id in ids {
        let (tx, rx) = oneshot::channel();
        enqueue(courier, tenant, id, Some(tx));
        waits.push(rx);
    }
    for wait in waits {
        let _ = wait.await;
    }
}

/// Puts one delivery in `tenant`'s lane, starting the lane's task if none runs.
fn enqueue(courier: &Arc<Courier>, tenant: &str, id: Uuid, attempted: Option<oneshot::Sender<()>>) {
    let mut lanes = courier.lanes.lock().unwrap_or_else(|p| p.into_inner());
    let lane = lanes.entry(tenant.to_owned()).or_insert_with(|| {
        let (tx, rx) = mpsc::channel(LANE_DEPTH);
        let (courier, tenant) = (courier.clone(), tenant.to_owned());
        tokio::spawn(async move { run_lane(&courier, &tenant, rx).await });
        tx
    });
    match lane.try_send(Job { id, attempted }) {
        Ok(()) => {}
        Err(full_or_closed) => {
            let job = full_or_closed.into_inner();
            tracing::warn!(
                target: "tokportal::sandbox",
                "webhook delivery {id}: key {}'s lane is full, sent out of order",
                fingerprint(tenant)
            );
            let (courier, tenant) = (courier.clone(), tenant.to_owned());
            tokio::spawn(async move { first_attempt(&courier, &tenant, job).await });
        }
    }
}

/// One key's lane: first attempts one at a time, in order.
async fn run_lane(courier: &Arc<Courier>, tenant: &str, mut rx: mpsc::Receiver<Job>) {
    let mut held: Option<Job> = None;
    loop {
        let wait = if held.is_some() { HOLD_AT_MOST } else { LANE_IDLE };
        let next = tokio::select! {
            _ = courier.stop.cancelled() => return,
            next = tokio::time::timeout(wait, rx.recv()) => next,
        };
        match next {
            Ok(Some(mut job)) => {
                if held.is_none() && courier.take_hold(tenant) {
                    // Held back: whoever waits is told now, the receiver later.
                    if let Some(attempted) = job.attempted.take() {
                        let _ = attempted.send(());
                    }
                    tracing::info!(target: "tokportal::sandbox", "webhook delivery {}: held back (fault)", job.id);
                    held = Some(job);
                    continue;
                }
                first_attempt(courier, tenant, job).await;
                if let Some(job) = held.take() {
                    first_attempt(courier, tenant, job).await;
                }
            }
            Ok(None) => return,
            Err(_) => {
                if let Some(job) = held.take() {
                    first_attempt(courier, tenant, job).await;
                    continue;
                }
                // Idle: the lane ends, unless a delivery came in meanwhile.
                let mut lanes = courier.lanes.lock().unwrap_or_else(|p| p.into_inner());
                if rx.is_empty() {
                    lanes.remove(tenant);
                    return;
                }
            }
        }
    }
}

/// A delivery's first attempt (and its duplicate, when the dice say so);
/// a failure goes on to its retries beside the lane.
async fn first_attempt(courier: &Arc<Courier>, tenant: &str, mut job: Job) {
    let delivered = attempt(courier, tenant, job.id).await;
    if delivered == Some(true) && courier.roll_duplicate() {
        attempt(courier, tenant, job.id).await;
    }
    if let Some(attempted) = job.attempted.take() {
        let _ = attempted.send(());
    }
    if delivered == Some(false) {
        let (courier, tenant, id) = (courier.clone(), tenant.to_owned(), job.id);
        tokio::spawn(async move { retries(&courier, &tenant, id, 1).await });
    }
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
    if tried["attempt"] == 1 {
        courier.tally.delivery(fingerprint(tenant), &event_type);
    }
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

/// Changes delivery `id`: its log entry, its attempts (written to the
/// state file, if there is one).
fn record(courier: &Courier, tenant: &str, id: Uuid, change: impl FnOnce(&mut Delivery)) {
    let mut tenants = courier.tenants.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(t) = tenants.get_mut(tenant)
        && let Some(at) = t.delivery_at(id)
    {
        change(&mut t.deliveries[at]);
        if let Some(store) = &courier.store {
            store.save_delivery(tenant, &t.deliveries[at]);
        }
    }
}

/// Delivery `id`'s log entry as it stands.
pub(in crate::sandbox) fn entry(courier: &Courier, tenant: &str, id: Uuid) -> Option<Value> {
    let tenants = courier.tenants.lock().unwrap_or_else(|p| p.into_inner());
    let t = tenants.get(tenant)?;
    Some(Value::Object(t.deliveries[t.delivery_at(id)?].fields.clone()))
}
