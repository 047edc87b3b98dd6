//! What one API key owns in the sandbox: its profile, credits, bundles with
//! their account and video slots, delivered accounts, webhook endpoints and
//! deliveries, comment tasks and uploads. Resources are JSON objects: what
//! was sent, plus the server's fields (`id`, `status`, timestamps).

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::clock::Desk;
use crate::sandbox::contract::Failure;

/// Every key's state, by the SHA-256 of the key.
pub(in crate::sandbox) type Tenants = std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, Tenant>>>;

/// A JSON object.
pub(in crate::sandbox) type Object = Map<String, Value>;

/// The sandbox's credit prices (the contract gives none): what
/// `getCreditCosts` answers and what creates are debited.
pub(in crate::sandbox) const PRICES: &[(&str, f64)] = &[
    ("account", 10.0),
    ("account_instagram", 12.0),
    ("video_slot", 2.0),
    ("edit_slot", 1.0),
    ("niche_warming", 5.0),
    ("deep_warming", 10.0),
    ("moderation", 3.0),
    ("comment_task", 1.0),
];

/// The price of `item`.
pub(in crate::sandbox) fn price(item: &str) -> f64 {
    PRICES.iter().find(|(name, _)| *name == item).map_or(0.0, |(_, p)| *p)
}

/// Records of one kind a key keeps (uploads, reports, transactions); the
/// oldest go first, so that memory stays bounded however long a key is used.
pub(in crate::sandbox) const MAX_RECORDS: usize = 1000;

/// Bundles, video slots per bundle and comment tasks a key may hold: what
/// a key can make is refused past these, never dropped.
pub(in crate::sandbox) const MAX_OWNED: usize = 1000;

/// Appends `record`, dropping the oldest past [`MAX_RECORDS`].
pub(in crate::sandbox) fn keep(records: &mut Vec<Object>, record: Object) {
    if records.len() >= MAX_RECORDS {
        records.drain(..=records.len() - MAX_RECORDS);
    }
    records.push(record);
}

/// What logs, the journal and the inspector show of a key: the first 8 hex
/// digits of its state name (the SHA-256 of the key).
pub(in crate::sandbox) fn fingerprint(hash: &str) -> &str {
    hash.get(..8).unwrap_or(hash)
}

pub(in crate::sandbox) use super::clock::stamp;

/// A bundle: its own fields, its account slot and its video slots.
#[derive(Clone)]
pub(in crate::sandbox) struct Bundle {
    pub(in crate::sandbox) fields: Object,
    pub(in crate::sandbox) account: Option<Object>,
    pub(in crate::sandbox) videos: Vec<Object>,
}

/// A webhook endpoint and its signing secret (never in an answer but the create's).
#[derive(Clone)]
pub(in crate::sandbox) struct Endpoint {
    pub(in crate::sandbox) fields: Object,
    pub(in crate::sandbox) secret: String,
}

/// One event sent (or being sent) to one endpoint.
#[derive(Clone)]
pub(in crate::sandbox) struct Delivery {
    pub(in crate::sandbox) fields: Object,
    pub(in crate::sandbox) endpoint: Uuid,
    /// The envelope, as sent on every attempt.
    pub(in crate::sandbox) payload: bytes::Bytes,
    /// Each attempt, oldest first (the last [`MAX_TRIES`]): the sandbox's
    /// own log, shown by `/_sandbox/deliveries`, never in a contract answer.
    pub(in crate::sandbox) tries: Vec<Object>,
}

/// Attempts a delivery's own log keeps.
pub(in crate::sandbox) const MAX_TRIES: usize = 50;

/// Everything one API key owns. Cloned for a dry run, which works on the
/// copy and throws it away.
#[derive(Clone)]
pub(in crate::sandbox) struct Tenant {
    pub(in crate::sandbox) user: Object,
    pub(in crate::sandbox) balance: f64,
    pub(in crate::sandbox) transactions: Vec<Object>,
    pub(in crate::sandbox) bundles: Vec<Bundle>,
    pub(in crate::sandbox) accounts: Vec<Object>,
    pub(in crate::sandbox) edit_requests: Vec<Object>,
    pub(in crate::sandbox) refreshed: Vec<(Uuid, DateTime<Utc>)>,
    pub(in crate::sandbox) endpoints: Vec<Endpoint>,
    pub(in crate::sandbox) deliveries: Vec<Delivery>,
    pub(in crate::sandbox) comments: Vec<Object>,
    pub(in crate::sandbox) uploads: Vec<Object>,
    pub(in crate::sandbox) reports: Vec<Object>,
    /// The key's clock and the account manager's work (`clock`).
    pub(in crate::sandbox) desk: Desk,
    /// The bundles a call reached for since the state was last written
    /// (`store`): the ones whose rows may have to change.
    pub(in crate::sandbox) touched: std::collections::HashSet<String>,
    /// What of this key the state file holds (`store`).
    pub(in crate::sandbox) saved: super::saved::Saved,
}

impl Tenant {
    /// A new key's state: a profile, the starting credits and one delivered
    /// account, so that account calls work at once.
    pub(in crate::sandbox) fn new(credits: f64, key_hint: &str, now: DateTime<Utc>) -> Self {
        let created = stamp(now);
        let user = json!({
            "id": Uuid::new_v4(),
            "email": "developer@sandbox.tokportal.test",
            "full_name": "Sandbox Developer",
            "company_name": null,
            "role": "owner",
            "country": "USA",
            "subscription": {"plan": "sandbox", "analytics_level": "full"},
            "api_key": {"id": Uuid::new_v4(), "name": format!("sandbox key {key_hint}")},
            "created_at": created,
        });
        let account = json!({
            "id": Uuid::new_v4(),
            "platform": "tiktok",
            "country": "USA",
            "username": "sandbox.creator",
            "visible_name": "Sandbox Creator",
            "biography": "A delivered account every sandbox key starts with.",
            "status": "active",
            "owned": true,
            "bundle_id": null,
            "profile_url": "https://www.tiktok.com/@sandbox.creator",
            "delivered_at": created,
            "created_at": created,
        });
        let mut tenant = Self {
            user: object(user),
            balance: 0.0,
            transactions: Vec::new(),
            bundles: Vec::new(),
            accounts: vec![object(account)],
            edit_requests: Vec::new(),
            refreshed: Vec::new(),
            endpoints: Vec::new(),
            deliveries: Vec::new(),
            comments: Vec::new(),
            uploads: Vec::new(),
            reports: Vec::new(),
            desk: Desk::default(),
            touched: std::collections::HashSet::new(),
            saved: super::saved::Saved::default(),
        };
        tenant.book("grant", credits, "Sandbox starting credits", None, now);
        tenant
    }

    /// A key's state as the state file gives it back: no resource yet.
    pub(in crate::sandbox) fn empty(user: Object, balance: f64, desk: Desk) -> Self {
        Self {
            user,
            balance,
            transactions: Vec::new(),
            bundles: Vec::new(),
            accounts: Vec::new(),
            edit_requests: Vec::new(),
            refreshed: Vec::new(),
            endpoints: Vec::new(),
            deliveries: Vec::new(),
            comments: Vec::new(),
            uploads: Vec::new(),
            reports: Vec::new(),
            desk,
            touched: std::collections::HashSet::new(),
            saved: super::saved::Saved::default(),
        }
    }

    /// The bundle with this id (marked as touched: its row may change).
    pub(in crate::sandbox) fn bundle(&mut self, id: &str) -> Result<&mut Bundle, Failure> {
        self.bundle_and_desk(id).map(|(bundle, _)| bundle)
    }

    /// The bundle with this id and the manager's desk, borrowed together
    /// (a handler moves the bundle and hands the manager its next step).
    pub(in crate::sandbox) fn bundle_and_desk(&mut self, id: &str) -> Result<(&mut Bundle, &mut Desk), Failure> {
        let bundle = self
            .bundles
            .iter_mut()
            .find(|b| str_of(&b.fields, "id") == Some(id))
            .ok_or_else(|| Failure::not_found("Bundle"))?;
        if !self.touched.contains(id) {
            self.touched.insert(id.to_owned());
        }
        Ok((bundle, &mut self.desk))
    }

    /// The key's now: its simulated clock's, or the wall clock's.
    pub(in crate::sandbox) fn now(&self) -> DateTime<Utc> {
        self.desk.now()
    }

    /// The delivered account with this id.
    pub(in crate::sandbox) fn account(&mut self, id: &str) -> Result<&mut Object, Failure> {
        self.accounts
            .iter_mut()
            .find(|a| str_of(a, "id") == Some(id))
            .ok_or_else(|| Failure::not_found("Account"))
    }

    /// The webhook endpoint with this id.
    pub(in crate::sandbox) fn endpoint(&mut self, id: &str) -> Result<&mut Endpoint, Failure> {
        self.endpoints
            .iter_mut()
            .find(|e| str_of(&e.fields, "id") == Some(id))
            .ok_or_else(|| Failure::not_found("Webhook endpoint"))
    }

    /// Where the delivery with this id is in the log.
    pub(in crate::sandbox) fn delivery_at(&self, id: Uuid) -> Option<usize> {
        let id = id.to_string();
        self.deliveries
            .iter()
            .position(|d| str_of(&d.fields, "id") == Some(id.as_str()))
    }

    /// The comment task with this id.
    pub(in crate::sandbox) fn comment(&mut self, id: &str) -> Result<&mut Object, Failure> {
        self.comments
            .iter_mut()
            .find(|c| str_of(c, "id") == Some(id))
            .ok_or_else(|| Failure::not_found("Comment task"))
    }

    /// Debits `items` (name, credits) for `description`, or refuses with 402
    /// `INSUFFICIENT_CREDITS` and `required`/`available`. A dry run is never
    /// refused: it reports what would be charged.
    pub(in crate::sandbox) fn debit(
        &mut self,
        items: &[(&str, f64)],
        description: &str,
        dry_run: bool,
        now: DateTime<Utc>,
    ) -> Result<Charge, Failure> {
        let total: f64 = items.iter().map(|(_, c)| c).sum();
        let mut breakdown = Object::new();
        for (name, credits) in items {
            let entry = breakdown.entry((*name).to_owned()).or_insert(json!(0.0));
            *entry = json!(entry.as_f64().unwrap_or(0.0) + credits);
        }
        let charge = Charge {
            total,
            breakdown: Value::Object(breakdown),
            sufficient: total <= self.balance,
        };
        if dry_run || total == 0.0 {
            return Ok(charge);
        }
        if !charge.sufficient {
            return Err(Failure::new(
                402,
                "INSUFFICIENT_CREDITS",
                "Not enough credits to complete this operation.",
            )
            .details(json!({"required": total, "available": self.balance})));
        }
        self.book("debit", -total, description, Some(&charge.breakdown), now);
        Ok(charge)
    }

    /// Sets the balance (the sandbox's own `/_sandbox/credits`).
    pub(in crate::sandbox) fn set_balance(&mut self, balance: f64, now: DateTime<Utc>) {
        self.book("adjustment", balance - self.balance, "Sandbox balance set", None, now);
        // Exactly what was asked, whatever the float arithmetic above gave.
        self.balance = balance;
    }

    /// Moves the balance by `amount` and writes the transaction.
    fn book(&mut self, kind: &str, amount: f64, description: &str, breakdown: Option<&Value>, now: DateTime<Utc>) {
        self.balance += amount;
        let mut entry = json!({
            "id": Uuid::new_v4(),
            "type": kind,
            "amount": amount,
            "balance_after": self.balance,
            "description": description,
            "created_at": stamp(now),
        });
        if let Some(breakdown) = breakdown {
            entry["cost_breakdown"] = breakdown.clone();
        }
        keep(&mut self.transactions, object(entry));
    }
}

/// What a call costs.
#[derive(Debug, Clone)]
pub(in crate::sandbox) struct Charge {
    pub(in crate::sandbox) total: f64,
    pub(in crate::sandbox) breakdown: Value,
    pub(in crate::sandbox) sufficient: bool,
}

/// `value` as an object (an empty one if it is not).
pub(in crate::sandbox) fn object(value: Value) -> Object {
    match value {
        Value::Object(map) => map,
        _ => Object::new(),
    }
}

/// A string field.
pub(in crate::sandbox) fn str_of<'a>(object: &'a Object, name: &str) -> Option<&'a str> {
    object.get(name).and_then(Value::as_str)
}
