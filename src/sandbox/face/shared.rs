//! What every request of the sandbox shares, and how a key's changes reach
//! the state file:
//!
//! - [`Shared`]: the options, the rate limit's buckets, the fault dice and
//!   queue, the kept idempotent answers, every key's state, the state file,
//!   the webhook courier, the journal and the tally, made once at start
//!   ([`Shared::new`], with a state file's keys and answers read back);
//! - [`persist`]: a key's changes (and the answer kept under an idempotency
//!   key) written to the state file in one transaction, before the answer
//!   is sent: the request flow, the clock routes, credits, reset and a
//!   snapshot's import all call it;
//! - [`resume_deliveries`]: the deliveries a state file held unsent, sent
//!   again at start (and a restored snapshot's, [`resume_deliveries_of`]).
//!
//! It sits in the face because it holds the face's own parts (the buckets,
//! the dice, the fault queue) beside the world's; the rules of a key (which
//! keys are taken, a key's state made on first use) are the world's, in
//! `world::keys`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

use crate::sandbox::SandboxOptions;
use crate::sandbox::contract::Failure;
use crate::sandbox::face::faults::{self, Dice};
use crate::sandbox::face::limits::Buckets;
use crate::sandbox::live::Live;
use crate::sandbox::logbook::journal::Journal;
use crate::sandbox::logbook::verify::Tally;
use crate::sandbox::world::deliveries::{self, Courier};
use crate::sandbox::world::replays::{Replays, Stored};
use crate::sandbox::world::state::{Tenants, str_of};
use crate::sandbox::world::store::{Loaded, Store};

/// What every request shares: options, buckets, kept answers, state.
pub(in crate::sandbox) struct Shared {
    pub(in crate::sandbox) options: SandboxOptions,
    pub(in crate::sandbox) url: String,
    /// The rate limit's token buckets, per key (per peer without one).
    pub(in crate::sandbox) buckets: Buckets,
    pub(in crate::sandbox) replays: Replays,
    /// The `--fault-rate` draw.
    pub(in crate::sandbox) dice: Dice,
    pub(in crate::sandbox) queued_faults: faults::Queue,
    pub(in crate::sandbox) tenants: Tenants,
    /// The state file (`--state`), written before each answer.
    pub(in crate::sandbox) store: Option<Arc<Store>>,
    pub(in crate::sandbox) courier: Arc<Courier>,
    pub(in crate::sandbox) journal: Arc<Journal>,
    /// What was seen since start or reset, counted for `verify` (the
    /// journal's ring forgets; this does not).
    pub(in crate::sandbox) tally: Arc<Tally>,
    /// Followers of `/_sandbox/events` at once (each holds a connection).
    pub(in crate::sandbox) followers: Arc<tokio::sync::Semaphore>,
    /// The live API (`--proxy`, `--record`), the drift found, the replayed
    /// recording (`--replay`).
    pub(in crate::sandbox) live: Live,
}

impl Shared {
    /// What every request shares; with a state file, its keys and kept
    /// answers read back first.
    pub(in crate::sandbox) fn new(
        options: SandboxOptions,
        url: String,
        stop: CancellationToken,
        store: Option<(Store, Loaded)>,
        live: Live,
    ) -> Result<Self, String> {
        let (store, (loaded, kept)) = match store {
            Some((store, loaded)) => (Some(Arc::new(store)), loaded),
            None => (None, (HashMap::new(), Vec::new())),
        };
        let tenants: Tenants = Arc::new(Mutex::new(loaded));
        let replays = Replays::default();
        for answer in kept {
            replays.restore(
                &answer.tenant,
                &answer.key,
                answer.fingerprint,
                answer.stored,
                answer.kept_at,
            );
        }
        let journal = Arc::new(Journal::new(options.journal));
        let tally = Arc::new(Tally::default());
        let courier = Courier::new(
            options.webhook_timeout,
            options.webhook_retry_delays.clone(),
            (options.webhook_duplicates, options.seed),
            tenants.clone(),
            (journal.clone(), tally.clone()),
            store.clone(),
            stop,
        );
        Ok(Self {
            buckets: Buckets::new(options.rate_limit, options.refill_per_second),
            replays,
            store,
            dice: Dice::new(options.fault_rate, options.seed),
            queued_faults: faults::Queue::default(),
            tenants,
            courier: Arc::new(courier),
            journal,
            tally,
            followers: Arc::new(tokio::sync::Semaphore::new(
                crate::sandbox::logbook::journal::MAX_FOLLOWERS,
            )),
            options,
            url,
            live,
        })
    }
}

/// Sends again what a state file held unsent: deliveries that had not
/// had their first attempt, or were waiting for a retry, when the last
/// sandbox on the file stopped.
pub(in crate::sandbox) fn resume_deliveries(shared: &Arc<Shared>) {
    let keys: Vec<String> = shared
        .tenants
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .keys()
        .cloned()
        .collect();
    resume_deliveries_of(shared, &keys);
}

/// Sends again the unsent deliveries of `keys` (a snapshot's, restored).
pub(in crate::sandbox) fn resume_deliveries_of(shared: &Arc<Shared>, keys: &[String]) {
    let unsent: Vec<(String, uuid::Uuid)> = {
        let tenants = shared.tenants.lock().unwrap_or_else(|p| p.into_inner());
        tenants
            .iter()
            .filter(|(key, _)| keys.contains(key))
            .flat_map(|(key, t)| {
                t.deliveries.iter().filter_map(move |d| {
                    matches!(str_of(&d.fields, "status"), Some("pending" | "retrying"))
                        .then(|| str_of(&d.fields, "id").and_then(|id| uuid::Uuid::parse_str(id).ok()))
                        .flatten()
                        .map(|id| (key.clone(), id))
                })
            })
            .collect()
    };
    for (key, id) in unsent {
        deliveries::start(&shared.courier, &key, id);
    }
}

/// Writes `key`'s changes to the state file, if there is one (and, with
/// `replay`, the answer kept under an idempotency key, in the same
/// transaction). A read leaves a key's file rows alone unless the key is
/// new (its profile and starting account must keep their ids).
pub(in crate::sandbox) async fn persist(
    shared: &Shared,
    key: &str,
    changed: bool,
    replay: Option<(&str, [u8; 32], &Stored)>,
) -> Result<(), Failure> {
    let Some(store) = &shared.store else {
        return Ok(());
    };
    // The rows are made, and handed to the writer, under the state's lock:
    // in the order the changes happened. Handed over after the lock, two
    // requests of one key could reach the file in the other order, and the
    // older balance overwrite the newer (kill -9 then found a bundle whose
    // debit was gone). The commit is awaited outside the lock.
    let pending = {
        let mut tenants = shared.tenants.lock().unwrap_or_else(|p| p.into_inner());
        let Some(tenant) = tenants.get_mut(key) else {
            return Ok(());
        };
        if !changed && replay.is_none() && tenant.saved.written() {
            return Ok(());
        }
        let ops = store.changes(key, tenant, replay);
        if ops.is_empty() {
            return Ok(());
        }
        store.enqueue(ops)
    };
    let committed = match pending {
        Ok(pending) => pending.committed().await,
        Err(why) => Err(why),
    };
    committed.map_err(|why| {
        tracing::error!(target: "tokportal::sandbox", "{why}");
        if let Some(tenant) = shared.tenants.lock().unwrap_or_else(|p| p.into_inner()).get_mut(key) {
            tenant.saved.resync();
        }
        Failure::new(500, "INTERNAL_ERROR", "The sandbox could not save its state file; the change is kept in memory and will be written whole with the next one.")
    })
}
