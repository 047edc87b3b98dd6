//! A daily credit limit per connection: what an agent may spend of the
//! user's credits in one UTC day, across every replica that shares the
//! store.
//!
//! A connection is an OAuth grant (its limit chosen on the consent page,
//! carried in its tokens) or an API key (sent as Bearer, or the stdio
//! server's own), counted by its fingerprint. `--daily-credit-limit N` sets
//! a limit for every connection; a consented one may only be lower.
//!
//! Before a paid call, its price comes from its dry run, and is reserved
//! in the store in one atomic step (`Store::reserve`) before the paid
//! request is sent: two replicas can never overspend a limit together. A
//! call the limit cannot pay is refused unsent. The reservation is given
//! back when nothing was charged (an error answer), trimmed to what was
//! charged, and kept when it is unknown whether anything was (a lost answer).
//!
//! The dry run costs one more request, so it is sent only when no price
//! is at hand. A call the user was asked about is held at the price of
//! the dry run made to ask (within the call, or remembered from the
//! question's round for the answer's); an agent that previewed the very
//! same call (`dry_run: true`, as the tools' descriptions ask) in the last
//! minute has its preview's price used ([`Previews`], once, on the replica
//! that saw the preview).
//!
//! Amounts are kept in thousandths of a credit (prices may be fractional).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use serde_json::{Value, json};

use super::store::{Reserved, Store, StoreError};

/// Who is calling, as the HTTP guard found them: an OAuth grant or a key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Connection {
    /// The grant, when the caller came with one of this server's tokens.
    pub grant: Option<String>,
    /// Its client's digest and name, for the audit log.
    pub client: Option<String>,
    /// The client's name (cleaned when registered).
    pub client_name: Option<String>,
    /// The limit chosen on the consent page (credits per UTC day).
    pub limit: Option<u64>,
}

impl Connection {
    /// What the budget is counted under: the grant, else the key's
    /// fingerprint.
    pub fn budget_id(&self, key_id: &str) -> String {
        match &self.grant {
            Some(grant) => format!("grant:{grant}"),
            None => format!("key:{key_id}"),
        }
    }
}

/// The server's budgets.
#[derive(Debug, Clone)]
pub struct Budgets {
    store: Arc<Store>,
    /// `--daily-credit-limit`.
    default_limit: Option<u64>,
    /// The prices of this replica's recent previews.
    pub previews: Arc<Previews>,
}

/// How long a preview's price stands in for a dry run.
const PREVIEW_KEPT: Duration = Duration::from_secs(60);
/// Previews remembered at most (the oldest go first).
const MAX_PREVIEWS: usize = 10_000;
/// Previews of one and the same call counted at most: as many paid calls
/// are held at their price (an agent running a few at once).
const MAX_SAME_PREVIEWS: u32 = 64;

/// The prices of the previews connections asked for (`dry_run: true`), by
/// connection, tool and arguments (without `dry_run` and
/// `idempotency_key`), each kept a minute and used once: the paid call
/// that follows its own preview is held at that price without a second dry
/// run. The same call previewed n times at once (eight agents' tasks making
/// the same bundle) stands in for n paid calls, at the newest price. In
/// this replica's memory only; a call that reaches another replica gets its
/// own dry run.
#[derive(Debug, Default)]
pub struct Previews {
    /// Price, when last previewed, and how many previews are unused.
    seen: Mutex<HashMap<[u8; 32], (f64, Instant, u32)>>,
}

impl Previews {
    /// What a call is remembered by.
    fn key(budget_id: &str, tool: &str, arguments: &serde_json::Map<String, Value>) -> [u8; 32] {
        let mut fields: Vec<(&String, &Value)> = arguments
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "dry_run" | "idempotency_key"))
            .collect();
        fields.sort_by(|a, b| a.0.cmp(b.0));
        let mut hash = Sha256::new();
        for part in [budget_id, "\0", tool, "\0"] {
            hash.update(part.as_bytes());
        }
        for (k, v) in fields {
            hash.update(k.as_bytes());
            hash.update(b"\0");
            hash.update(v.to_string().as_bytes());
            hash.update(b"\0");
        }
        hash.finalize().into()
    }

    /// Remembers the price of a preview.
    pub fn remember(&self, budget_id: &str, tool: &str, arguments: &serde_json::Map<String, Value>, price: f64) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() >= MAX_PREVIEWS {
            seen.retain(|_, (_, at, _)| at.elapsed() < PREVIEW_KEPT);
            if seen.len() >= MAX_PREVIEWS
                && let Some(oldest) = seen.iter().min_by_key(|(_, (_, at, _))| *at).map(|(k, _)| *k)
            {
                seen.remove(&oldest);
            }
        }
        let now = Instant::now();
        seen.entry(Self::key(budget_id, tool, arguments))
            .and_modify(|(kept, at, count)| {
                *count = if at.elapsed() < PREVIEW_KEPT {
                    (*count + 1).min(MAX_SAME_PREVIEWS)
                } else {
                    1
                };
                (*kept, *at) = (price, now);
            })
            .or_insert((price, now, 1));
    }

    /// The price of the same call's preview of the last minute, if there
    /// was one; it is used up.
    pub fn take(&self, budget_id: &str, tool: &str, arguments: &serde_json::Map<String, Value>) -> Option<f64> {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let key = Self::key(budget_id, tool, arguments);
        let (price, at, count) = *seen.get(&key)?;
        if count > 1 && at.elapsed() < PREVIEW_KEPT {
            seen.insert(key, (price, at, count - 1));
        } else {
            seen.remove(&key);
        }
        (at.elapsed() < PREVIEW_KEPT).then_some(price)
    }
}

/// A price held against a connection's day, until the call's outcome is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    id: String,
    day: String,
    /// Thousandths of a credit.
    amount: i64,
    /// When the day's count may be forgotten (Unix seconds).
    expires: i64,
}

/// Why a paid call was refused before sending.
#[derive(Debug)]
pub enum Refused {
    /// The limit cannot pay it.
    OverLimit {
        /// Credits a day.
        limit: u64,
        /// Spent (or held) today, in credits.
        spent: f64,
        /// The call's price.
        cost: f64,
    },
    /// The store could not say.
    Unavailable(StoreError),
    /// The dry run named no price the limit can hold (none, not a number,
    /// negative): the call is not sent, as a limit that counted it as free
    /// would not be one.
    NoPrice,
}

impl Refused {
    /// The tool error an agent reads: the limit, what was spent today, the
    /// call's cost (or the store's failure).
    pub fn body(&self, tool: &str) -> Value {
        match self {
            Refused::OverLimit { limit, spent, cost } => json!({
                "charged": false,
                "error": {
                    "code": "DAILY_CREDIT_LIMIT",
                    "message": format!(
                        "{tool} was not sent: it costs {cost} credits, and this connection's daily limit is \
                         {limit} credits, of which {spent} are spent today (UTC); nothing was charged"
                    ),
                    "daily_credit_limit": limit,
                    "spent_today": spent,
                    "cost": cost,
                }
            }),
            Refused::NoPrice => json!({
                "charged": false,
                "error": {
                    "code": "PRICE_UNKNOWN",
                    "message": format!(
                        "{tool} was not sent: its dry run named no price (credits_would_charge), so this \
                         connection's daily limit cannot hold it; nothing was charged"
                    ),
                }
            }),
            Refused::Unavailable(_) => json!({
                "charged": false,
                "error": {
                    "code": "STORE_UNAVAILABLE",
                    "message": format!("{tool} was not sent: the daily limit cannot be checked now; nothing was charged; try again shortly"),
                }
            }),
        }
    }
}

/// Credits to thousandths.
pub(crate) fn milli(credits: f64) -> i64 {
    (credits * 1000.0).round() as i64
}

fn credits(milli: i64) -> f64 {
    milli as f64 / 1000.0
}

/// Today, in UTC, and when its records may go (the day after tomorrow's start).
fn today() -> (String, i64) {
    let now = chrono::Utc::now();
    let day = now.format("%Y-%m-%d").to_string();
    let expires = now
        .date_naive()
        .succ_opt()
        .and_then(|d| d.succ_opt())
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map_or(now.timestamp() + 2 * 86_400, |t| t.and_utc().timestamp());
    (day, expires)
}

impl Budgets {
    /// Budgets kept in `store`, with `--daily-credit-limit`'s default.
    pub fn new(store: Arc<Store>, default_limit: Option<u64>) -> Self {
        Self {
            store,
            default_limit,
            previews: Arc::default(),
        }
    }

    /// The limit that holds for `connection`: the lower of the consented
    /// one and the server's.
    pub fn limit(&self, connection: &Connection) -> Option<u64> {
        match (connection.limit, self.default_limit) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Holds `cost` credits of `connection`'s day, or says why not.
    /// `None`: no limit applies, nothing held.
    pub async fn hold(
        &self,
        connection: &Connection,
        key_id: &str,
        cost: Option<f64>,
    ) -> Result<Option<Hold>, Refused> {
        let Some(limit) = self.limit(connection) else {
            return Ok(None);
        };
        let Some(cost) = cost.filter(|c| c.is_finite() && *c >= 0.0) else {
            return Err(Refused::NoPrice);
        };
        let (day, expires) = today();
        let id = connection.budget_id(key_id);
        let amount = milli(cost);
        match self
            .store
            .reserve(&id, &day, amount, milli(limit as f64), expires)
            .await
        {
            Ok(Reserved::Reserved { .. }) => Ok(Some(Hold {
                id,
                day,
                amount,
                expires,
            })),
            Ok(Reserved::Over { spent }) => Err(Refused::OverLimit {
                limit,
                spent: credits(spent),
                cost,
            }),
            Err(e) => Err(Refused::Unavailable(e)),
        }
    }

    /// The call's outcome is known: `charged` credits (`None`: unknown, the
    /// whole hold is kept). What was held beyond it is given back; what was
    /// charged beyond it (the price changed between the dry run and the
    /// call) is counted too, past the limit if it must be: the day's count
    /// is what was spent, and the next call is refused.
    pub async fn settle(&self, hold: Hold, charged: Option<f64>) {
        let Some(charged) = charged.filter(|c| c.is_finite()) else {
            return;
        };
        // Bounded (a trillion credits), so that no answer's figure overflows a count.
        let charged = milli(charged.clamp(0.0, 1e12));
        if charged > hold.amount {
            let more = charged - hold.amount;
            tracing::warn!(
                held = credits(hold.amount),
                charged = credits(charged),
                "a call charged more than its dry run said: counted as charged"
            );
            if let Err(e) = self
                .store
                .reserve(&hold.id, &hold.day, more, i64::MAX, hold.expires)
                .await
            {
                tracing::error!(store = %e.store, error = %e.message, "what a call charged past its hold could not be counted");
            }
            return;
        }
        let back = hold.amount - charged;
        if back > 0
            && let Err(e) = self.store.release(&hold.id, &hold.day, back).await
        {
            // Kept: the connection may spend less today than it could, never more.
            tracing::error!(store = %e.store, error = %e.message, "a reservation could not be given back");
        }
    }

    /// `connection`'s limit and what is left today, for `getCurrentUser`'s
    /// answer (`None` without a limit).
    pub async fn today(&self, connection: &Connection, key_id: &str) -> Option<Value> {
        let limit = self.limit(connection)?;
        let (day, _) = today();
        let spent = self
            .store
            .spent(&connection.budget_id(key_id), &day)
            .await
            .ok()
            .map(credits);
        Some(json!({
            "daily_credit_limit": limit,
            "day": day,
            "spent_today": spent,
            "left_today": spent.map(|s| (limit as f64 - s).max(0.0)),
        }))
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_preview_is_found_by_its_call_once_and_only_for_its_connection() {
        let previews = Previews::default();
        let args = |v: Value| v.as_object().cloned().unwrap_or_default();
        let preview = args(json!({"body": {"bundle_type": "account_only"}, "dry_run": true}));
        previews.remember("grant_a", "createBundle", &preview, 10.0);
        let real = args(json!({"idempotency_key": "k1", "body": {"bundle_type": "account_only"}}));
        assert_eq!(
            previews.take("grant_b", "createBundle", &real),
            None,
            "another connection's"
        );
        assert_eq!(previews.take("grant_a", "publishBundle", &real), None, "another tool's");
        let other = args(json!({"body": {"bundle_type": "account_and_videos"}}));
        assert_eq!(
            previews.take("grant_a", "createBundle", &other),
            None,
            "other arguments"
        );
        assert_eq!(previews.take("grant_a", "createBundle", &real), Some(10.0));
        assert_eq!(previews.take("grant_a", "createBundle", &real), None, "used once");
    }

    /// The same call previewed three times at once (before any is sent)
    /// stands in for three paid calls, at the newest price, and no more.
    #[test]
    fn the_same_call_previewed_n_times_stands_in_for_n_calls() {
        let previews = Previews::default();
        let args = json!({"body": {"bundle_type": "account_only"}});
        let args = args.as_object().cloned().unwrap_or_default();
        for price in [10.0, 10.0, 12.0] {
            previews.remember("grant_a", "createBundle", &args, price);
        }
        for n in 0..3 {
            assert_eq!(previews.take("grant_a", "createBundle", &args), Some(12.0), "call {n}");
        }
        assert_eq!(previews.take("grant_a", "createBundle", &args), None, "three, not four");
        for _ in 0..1000 {
            previews.remember("grant_a", "createBundle", &args, 10.0);
        }
        let held = std::iter::from_fn(|| previews.take("grant_a", "createBundle", &args)).count();
        assert_eq!(held, MAX_SAME_PREVIEWS as usize, "bounded");
    }
    use super::*;

    #[tokio::test]
    async fn a_limit_holds_reserves_and_gives_back() {
        let budgets = Budgets::new(Arc::new(Store::memory()), Some(25));
        let key = Connection::default();
        let consented = Connection {
            grant: Some("g".into()),
            limit: Some(15),
            ..Connection::default()
        };
        assert_eq!(budgets.limit(&key), Some(25));
        assert_eq!(budgets.limit(&consented), Some(15), "a consented limit only lowers");
        let wider = Connection {
            limit: Some(99),
            ..consented.clone()
        };
        assert_eq!(budgets.limit(&wider), Some(25));
        assert_eq!(Budgets::new(Arc::new(Store::memory()), None).limit(&key), None);

        let first = budgets.hold(&consented, "k", Some(10.0)).await.unwrap().unwrap();
        match budgets.hold(&consented, "k", Some(10.0)).await {
            Err(Refused::OverLimit { limit, spent, cost }) => assert_eq!((limit, spent, cost), (15, 10.0, 10.0)),
            other => panic!("{other:?}"),
        }
        // Another connection of the same key has its own day.
        assert!(budgets.hold(&key, "k", Some(20.0)).await.unwrap().is_some());
        // Nothing charged: given back, and the next call fits.
        budgets.settle(first, Some(0.0)).await;
        let second = budgets.hold(&consented, "k", Some(12.5)).await.unwrap().unwrap();
        // Charged less than held: the rest comes back.
        budgets.settle(second, Some(10.0)).await;
        assert_eq!(budgets.today(&consented, "k").await.unwrap()["spent_today"], 10.0);
        // Unknown: kept whole.
        let third = budgets.hold(&consented, "k", Some(5.0)).await.unwrap().unwrap();
        budgets.settle(third, None).await;
        let today = budgets.today(&consented, "k").await.unwrap();
        assert_eq!(
            (today["spent_today"].as_f64(), today["left_today"].as_f64()),
            (Some(15.0), Some(0.0))
        );
        // A dry run that named no usable price: refused, nothing held.
        let fresh = Connection {
            grant: Some("priceless".into()),
            ..Connection::default()
        };
        for price in [None, Some(f64::NAN), Some(f64::INFINITY), Some(-1.0)] {
            match budgets.hold(&fresh, "k", price).await {
                Err(Refused::NoPrice) => {}
                other => panic!("{price:?}: {other:?}"),
            }
        }
        assert_eq!(budgets.today(&fresh, "k").await.unwrap()["spent_today"], 0.0);
        assert_eq!(Refused::NoPrice.body("createBundle")["error"]["code"], "PRICE_UNKNOWN");
        // Charged more than held (the price changed): counted as charged,
        // past the limit, and the next call is refused.
        let held = budgets.hold(&fresh, "k", Some(1.0)).await.unwrap().unwrap();
        budgets.settle(held, Some(20.0)).await;
        assert_eq!(budgets.today(&fresh, "k").await.unwrap()["spent_today"], 20.0);
        assert!(matches!(
            budgets.hold(&fresh, "k", Some(6.0)).await,
            Err(Refused::OverLimit { .. })
        ));
        // An absurd charge is counted, bounded, without overflowing the count.
        let huge = Connection {
            grant: Some("huge".into()),
            ..Connection::default()
        };
        let held = budgets.hold(&huge, "k", Some(1.0)).await.unwrap().unwrap();
        budgets.settle(held, Some(1e300)).await;
        assert_eq!(budgets.today(&huge, "k").await.unwrap()["spent_today"], 1e12);

        let body = Refused::OverLimit {
            limit: 15,
            spent: 15.0,
            cost: 10.0,
        }
        .body("createBundle");
        assert_eq!(body["error"]["code"], "DAILY_CREDIT_LIMIT");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("daily limit is 15 credits")
        );
    }
}
