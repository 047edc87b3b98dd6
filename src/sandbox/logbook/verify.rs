//! Verifying what happened, as WireMock's `verify` does: `POST
//! /_sandbox/verify` asks how many requests (or webhook deliveries) matched,
//! and whether that count holds.
//!
//! The counts are a tally, kept beside the journal and not read from its
//! ring: the ring forgets its oldest entries, the tally forgets nothing
//! since start (or a reset). It stays bounded because it counts by kind,
//! never by request: a key's fingerprint, an operation, a status, and
//! whether the request was a dry run or a replay; or a key and a webhook
//! event type. Past [`MAX_KINDS`] kinds a new kind is not counted, and
//! every answer says so (`complete: false`).

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::{Map, Value, json};

use super::journal::{StatusFilter, Summary};

/// Kinds the tally counts at most.
pub(in crate::sandbox) const MAX_KINDS: usize = 100_000;

/// One kind of thing counted.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Kind {
    Request {
        key: Option<String>,
        operation: Option<&'static str>,
        status: Option<u16>,
        dry_run: bool,
        replayed: bool,
    },
    Delivery {
        key: String,
        event: String,
    },
}

/// What was seen since start or reset, by kind.
#[derive(Default)]
pub(in crate::sandbox) struct Tally {
    counts: Mutex<Counts>,
}

#[derive(Default)]
struct Counts {
    by_kind: HashMap<Kind, u64>,
    /// Something was not counted: the tally was full.
    overflowed: bool,
}

impl Counts {
    fn add(&mut self, kind: Kind) {
        if let Some(n) = self.by_kind.get_mut(&kind) {
            *n += 1;
        } else if self.by_kind.len() < MAX_KINDS {
            self.by_kind.insert(kind, 1);
        } else {
            self.overflowed = true;
        }
    }
}

/// What `verify` asks: every field optional; a count (`times`, `at_least`,
/// `at_most`, at most one of them) or, with none, at least once.
#[derive(Debug, Default)]
pub(in crate::sandbox) struct Query {
    pub(in crate::sandbox) key: Option<String>,
    pub(in crate::sandbox) operation: Option<String>,
    pub(in crate::sandbox) status: Option<StatusFilter>,
    pub(in crate::sandbox) event: Option<String>,
    pub(in crate::sandbox) dry_run: Option<bool>,
    pub(in crate::sandbox) replayed: Option<bool>,
    pub(in crate::sandbox) expect: Expect,
}

/// The count a verification expects.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(in crate::sandbox) enum Expect {
    Times(u64),
    AtLeast(u64),
    AtMost(u64),
}

impl Default for Expect {
    fn default() -> Self {
        Expect::AtLeast(1)
    }
}

impl Expect {
    fn holds(self, found: u64) -> bool {
        match self {
            Expect::Times(n) => found == n,
            Expect::AtLeast(n) => found >= n,
            Expect::AtMost(n) => found <= n,
        }
    }

    fn shown(self) -> Value {
        match self {
            Expect::Times(n) => json!({"times": n}),
            Expect::AtLeast(n) => json!({"at_least": n}),
            Expect::AtMost(n) => json!({"at_most": n}),
        }
    }
}

/// The fields `verify` reads; any other is refused, naming it.
const FIELDS: &[&str] = &[
    "operation",
    "status",
    "event",
    "times",
    "at_least",
    "at_most",
    "dry_run",
    "replayed",
];

impl Query {
    /// Reads a verification from its JSON body (`key` is the caller's, from
    /// its `X-API-Key`). The error names the field and what is wrong.
    pub(in crate::sandbox) fn parse(body: &Value, key: Option<String>) -> Result<Query, (String, String)> {
        let empty = Map::new();
        let asked = match body {
            Value::Object(map) => map,
            Value::Null => &empty,
            _ => return Err(("body".into(), "must be a JSON object".into())),
        };
        if let Some(unknown) = asked.keys().find(|k| !FIELDS.contains(&k.as_str())) {
            return Err((
                unknown.clone(),
                format!("is not a verify field: use {}", FIELDS.join(", ")),
            ));
        }
        let text = |name: &str| -> Result<Option<String>, (String, String)> {
            match asked.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err((name.into(), "must be a string".into())),
            }
        };
        let flag = |name: &str| -> Result<Option<bool>, (String, String)> {
            match asked.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Bool(b)) => Ok(Some(*b)),
                Some(_) => Err((name.into(), "must be true or false".into())),
            }
        };
        let operation = text("operation")?;
        if let Some(op) = &operation
            && crate::operations::find(op).is_none()
        {
            return Err((
                "operation".into(),
                format!("`{op}` is not an operation of the contract"),
            ));
        }
        let event = text("event")?;
        if let Some(event) = &event
            && !crate::webhooks::EVENT_TYPES.contains(&event.as_str())
        {
            return Err(("event".into(), format!("`{event}` is not a webhook event type")));
        }
        if event.is_some() && (operation.is_some() || asked.contains_key("status")) {
            return Err((
                "event".into(),
                "counts webhook deliveries: it goes with no operation or status".into(),
            ));
        }
        let status = match asked.get("status") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => {
                Some(StatusFilter::parse(&n.to_string()).map_err(|why| ("status".to_owned(), why))?)
            }
            Some(Value::String(s)) => Some(StatusFilter::parse(s).map_err(|why| ("status".to_owned(), why))?),
            Some(_) => {
                return Err((
                    "status".into(),
                    "must be a status (201), a class (\"4xx\") or \"closed\"".into(),
                ));
            }
        };
        let mut counts = Vec::new();
        for name in ["times", "at_least", "at_most"] {
            match asked.get(name) {
                None | Some(Value::Null) => {}
                Some(v) => {
                    let n = v
                        .as_u64()
                        .ok_or_else(|| (name.to_owned(), "must be a whole number, 0 or more".to_owned()))?;
                    counts.push(match name {
                        "times" => Expect::Times(n),
                        "at_least" => Expect::AtLeast(n),
                        _ => Expect::AtMost(n),
                    });
                }
            }
        }
        if counts.len() > 1 {
            return Err((
                "times".into(),
                "goes alone: give one of times, at_least or at_most".into(),
            ));
        }
        Ok(Query {
            key,
            operation,
            status,
            event,
            dry_run: flag("dry_run")?,
            replayed: flag("replayed")?,
            expect: counts.pop().unwrap_or_default(),
        })
    }

    fn matches(&self, kind: &Kind) -> bool {
        match kind {
            Kind::Request {
                key,
                operation,
                status,
                dry_run,
                replayed,
            } => {
                self.event.is_none()
                    && self.key.as_ref().is_none_or(|k| key.as_ref() == Some(k))
                    && self.operation.as_deref().is_none_or(|o| *operation == Some(o))
                    && self.status.is_none_or(|s| s.matches(*status))
                    && self.dry_run.is_none_or(|d| d == *dry_run)
                    && self.replayed.is_none_or(|r| r == *replayed)
            }
            Kind::Delivery { key, event } => {
                self.event.as_deref() == Some(event.as_str())
                    && self.key.as_ref().is_none_or(|k| k == key)
                    && self.dry_run.is_none()
                    && self.replayed.is_none()
            }
        }
    }

    /// Whether `summary`, a journal entry, is close to what is asked: of the
    /// same key and operation, whatever its status or flags.
    pub(in crate::sandbox) fn near(&self, summary: &Summary) -> bool {
        self.key.as_ref().is_none_or(|k| summary.key.as_ref() == Some(k))
            && self.operation.as_deref().is_none_or(|o| summary.operation == Some(o))
    }
}

/// A verification's outcome.
pub(in crate::sandbox) struct Verdict {
    pub(in crate::sandbox) holds: bool,
    pub(in crate::sandbox) found: u64,
    pub(in crate::sandbox) answer: Value,
}

impl Tally {
    /// Counts one answered (or closed) request.
    pub(in crate::sandbox) fn request(&self, summary: &Summary) {
        let kind = Kind::Request {
            key: summary.key.clone(),
            operation: summary.operation,
            status: summary.status,
            dry_run: summary.dry_run,
            replayed: summary.replayed,
        };
        self.counts.lock().unwrap_or_else(|p| p.into_inner()).add(kind);
    }

    /// Counts one webhook delivery of `event` for `key` (a fingerprint).
    pub(in crate::sandbox) fn delivery(&self, key: &str, event: &str) {
        let kind = Kind::Delivery {
            key: key.to_owned(),
            event: event.to_owned(),
        };
        self.counts.lock().unwrap_or_else(|p| p.into_inner()).add(kind);
    }

    /// Forgets what was counted for `key` (a fingerprint), or everything.
    pub(in crate::sandbox) fn forget(&self, key: Option<&str>) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        match key {
            Some(key) => counts.by_kind.retain(|kind, _| match kind {
                Kind::Request { key: k, .. } => k.as_deref() != Some(key),
                Kind::Delivery { key: k, .. } => k != key,
            }),
            None => *counts = Counts::default(),
        }
    }

    /// Counts what `query` asks and says whether its count holds.
    pub(in crate::sandbox) fn verify(&self, query: &Query) -> Verdict {
        let counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let found: u64 = counts
            .by_kind
            .iter()
            .filter(|(kind, _)| query.matches(kind))
            .map(|(_, n)| n)
            .sum();
        let holds = query.expect.holds(found);
        let answer = json!({
            "verified": holds,
            "found": found,
            "expected": query.expect.shown(),
            "complete": !counts.overflowed,
        });
        Verdict { holds, found, answer }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(key: &str, operation: &'static str, status: u16, dry_run: bool) -> Summary {
        Summary {
            id: 0,
            time: String::new(),
            operation: Some(operation),
            method: "POST".into(),
            path: "/bundles".into(),
            status: Some(status),
            duration_ms: 0.0,
            request_id: String::new(),
            key: Some(key.into()),
            idempotency_key: None,
            replayed: false,
            source: None,
            dry_run,
            fault: None,
            violations: Vec::new(),
            warnings: Vec::new(),
        }
    }

    fn ask(body: Value, key: Option<&str>) -> Query {
        Query::parse(&body, key.map(str::to_owned)).unwrap()
    }

    #[test]
    fn counts_hold_or_fail_by_key_operation_status_and_flags() {
        let tally = Tally::default();
        tally.request(&summary("aaaa", "createBundle", 201, false));
        tally.request(&summary("aaaa", "createBundle", 201, false));
        tally.request(&summary("aaaa", "createBundle", 201, true));
        tally.request(&summary("bbbb", "createBundle", 402, false));
        tally.delivery("aaaa", "account.in_review");
        let v = tally.verify(&ask(
            json!({"operation": "createBundle", "times": 2, "dry_run": false}),
            Some("aaaa"),
        ));
        assert!(v.holds && v.found == 2);
        let v = tally.verify(&ask(json!({"operation": "createBundle", "times": 2}), Some("aaaa")));
        assert!(!v.holds && v.found == 3, "the dry run counts without dry_run");
        let v = tally.verify(&ask(json!({"operation": "createBundle", "status": "4xx"}), None));
        assert_eq!((v.holds, v.found), (true, 1));
        let v = tally.verify(&ask(json!({"status": 402, "at_most": 0}), Some("aaaa")));
        assert_eq!((v.holds, v.found), (true, 0), "another key's 402 is not this key's");
        let v = tally.verify(&ask(json!({"event": "account.in_review", "times": 1}), Some("aaaa")));
        assert_eq!((v.holds, v.found), (true, 1));
        tally.forget(Some("aaaa"));
        let v = tally.verify(&ask(json!({"operation": "createBundle"}), None));
        assert_eq!(v.found, 1, "bbbb's request is still counted");
    }

    #[test]
    fn a_bad_question_names_its_field() {
        for (body, field) in [
            (json!({"operation": "nope"}), "operation"),
            (json!({"times": 1, "at_least": 1}), "times"),
            (json!({"times": -1}), "times"),
            (json!({"event": "bundle.eaten"}), "event"),
            (json!({"event": "bundle.created", "operation": "createBundle"}), "event"),
            (json!({"status": "2x"}), "status"),
            (json!({"opration": "createBundle"}), "opration"),
            (json!({"dry_run": "yes"}), "dry_run"),
        ] {
            let (named, _) = Query::parse(&body, None).unwrap_err();
            assert_eq!(named, field, "{body}");
        }
    }

    #[test]
    fn the_tally_is_bounded() {
        let tally = Tally::default();
        for n in 0..MAX_KINDS + 10 {
            tally.delivery(&format!("{n:08x}"), "bundle.created");
        }
        let v = tally.verify(&ask(json!({"event": "bundle.created"}), None));
        assert_eq!(v.found, MAX_KINDS as u64);
        assert_eq!(v.answer["complete"], false, "the answer says it is incomplete");
    }
}
