//! Idempotency keys as TokPortal documents them: the first answer is kept
//! for 24 hours and given back, marked `Idempotent-Replayed: true`, for the
//! same key and the same request; the same key with another request, or
//! while the first is still running, is refused.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::HeaderMap;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::headers;
use crate::operations::{IdempotencyKeySupport, Operation};
use crate::sandbox::contract::{self, Failure, Location, Problem};

/// How long an answer is kept.
const KEPT: Duration = Duration::from_secs(24 * 60 * 60);
/// Keys kept at most; expired ones go first, then the oldest.
const MAX_KEYS: usize = 100_000;

/// A kept answer.
#[derive(Clone)]
pub(in crate::sandbox) struct Stored {
    pub(in crate::sandbox) status: u16,
    pub(in crate::sandbox) content_type: Option<&'static str>,
    pub(in crate::sandbox) body: Bytes,
}

enum Entry {
    Running {
        fingerprint: [u8; 32],
    },
    Done {
        fingerprint: [u8; 32],
        stored: Stored,
        at: Instant,
    },
}

/// What a key says of a new request.
pub(in crate::sandbox) enum Claim {
    /// First use: the request runs; [`Replays::finish`] or [`Replays::release`] follows.
    Fresh,
    /// The kept answer.
    Replay(Stored),
    /// The first request with this key has not finished.
    Running,
    /// The key was used for another request.
    Mismatch,
}

/// What the idempotency stage of a request decided.
pub(in crate::sandbox) enum Idempotency {
    /// No key, a read, or a dry run: nothing is kept.
    Untracked,
    /// The key is the request's; [`Replays::settle`] follows.
    Claimed(Claimed),
    /// The key's kept answer is the answer.
    Replay(Stored),
}

/// A claimed key, to settle once the request has run.
pub(in crate::sandbox) struct Claimed {
    tenant: String,
    key: String,
    fingerprint: [u8; 32],
}

impl Claimed {
    /// The idempotency key and the request's fingerprint, as the state
    /// file keeps them.
    pub(in crate::sandbox) fn kept_as(&self) -> (&str, [u8; 32]) {
        (&self.key, self.fingerprint)
    }
}

#[derive(Default)]
pub(in crate::sandbox) struct Replays {
    entries: Mutex<HashMap<(String, String), Entry>>,
}

impl Replays {
    /// Forgets every kept answer (the whole sandbox's reset).
    pub(in crate::sandbox) fn clear(&self) {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// The idempotency stage of a request of `op`: a key is refused where
    /// the answer holds a secret, checked for form, ignored on reads and
    /// dry runs (and without a key's state), and claimed otherwise.
    /// `fingerprint` is computed only for a claim.
    pub(in crate::sandbox) fn claim_request(
        &self,
        op: &Operation,
        headers: &HeaderMap,
        tenant: Option<&str>,
        dry_run: bool,
        fingerprint: impl FnOnce() -> [u8; 32],
    ) -> Result<Idempotency, Failure> {
        let Some(key) = headers
            .get(headers::IDEMPOTENCY_KEY)
            .filter(|_| !op.method.is_read_only())
        else {
            return Ok(Idempotency::Untracked);
        };
        if op.idempotency_key == IdempotencyKeySupport::Refused {
            return Err(Failure::new(
                400,
                "IDEMPOTENCY_KEY_NOT_ALLOWED_FOR_SENSITIVE_RESPONSE",
                format!(
                    "{} answers with a secret or one-time value and does not take an Idempotency-Key.",
                    op.id
                ),
            ));
        }
        if let Err(why) = crate::idempotency::validate_key(key.as_bytes()) {
            return Err(contract::validation(vec![Problem {
                field: "Idempotency-Key".into(),
                location: Location::Header,
                message: why,
                unknown: false,
            }]));
        }
        let Some(tenant) = tenant.filter(|_| !dry_run) else {
            return Ok(Idempotency::Untracked);
        };
        let key = String::from_utf8_lossy(key.as_bytes()).into_owned();
        let fingerprint = fingerprint();
        match self.claim(tenant, &key, fingerprint) {
            Claim::Fresh => Ok(Idempotency::Claimed(Claimed {
                tenant: tenant.to_owned(),
                key,
                fingerprint,
            })),
            Claim::Replay(stored) => Ok(Idempotency::Replay(stored)),
            Claim::Running => Err(Failure::new(
                409,
                "IDEMPOTENCY_KEY_IN_USE",
                "A request with this Idempotency-Key is still being processed; retry shortly.",
            )),
            Claim::Mismatch => Err(Failure::new(
                contract::conflict_status(op),
                "IDEMPOTENCY_KEY_REUSED",
                "This Idempotency-Key was used with a different request; use a new key for a new request.",
            )),
        }
    }

    /// Keeps `kept` as the claimed key's answer, or (`None`: a failure that
    /// is not the request's own) frees the key for a retry.
    pub(in crate::sandbox) fn settle(&self, claimed: Claimed, kept: Option<Stored>) {
        match kept {
            Some(stored) => self.finish(&claimed.tenant, &claimed.key, stored),
            None => self.release(&claimed.tenant, &claimed.key),
        }
    }

    /// Forgets the kept answers of one key's state (that key's reset): a
    /// replay after a reset would name resources that no longer exist.
    pub(in crate::sandbox) fn forget(&self, tenant: &str) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(owner, _), _| owner != tenant);
    }

    /// Claims `key` of `tenant` for a request with this fingerprint.
    pub(in crate::sandbox) fn claim(&self, tenant: &str, key: &str, fingerprint: [u8; 32]) -> Claim {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let id = (tenant.to_owned(), key.to_owned());
        match entries.get(&id) {
            Some(Entry::Done { at, .. }) if at.elapsed() > KEPT => {}
            Some(Entry::Done {
                fingerprint: f, stored, ..
            }) => {
                return if *f == fingerprint {
                    Claim::Replay(stored.clone())
                } else {
                    Claim::Mismatch
                };
            }
            Some(Entry::Running { fingerprint: f }) => {
                return if *f == fingerprint {
                    Claim::Running
                } else {
                    Claim::Mismatch
                };
            }
            None => {}
        }
        if entries.len() >= MAX_KEYS {
            entries.retain(|_, e| !matches!(e, Entry::Done { at, .. } if at.elapsed() > KEPT));
            if entries.len() >= MAX_KEYS
                && let Some(oldest) = entries
                    .iter()
                    .filter_map(|(k, e)| match e {
                        Entry::Done { at, .. } => Some((k.clone(), *at)),
                        Entry::Running { .. } => None,
                    })
                    .min_by_key(|(_, at)| *at)
                    .map(|(k, _)| k)
            {
                entries.remove(&oldest);
            }
        }
        entries.insert(id, Entry::Running { fingerprint });
        Claim::Fresh
    }

    /// Keeps an answer the state file held (`kept_at` on the wall clock):
    /// one older than a day is not kept.
    pub(in crate::sandbox) fn restore(
        &self,
        tenant: &str,
        key: &str,
        fingerprint: [u8; 32],
        stored: Stored,
        kept_at: chrono::DateTime<chrono::Utc>,
    ) {
        let age = (chrono::Utc::now() - kept_at).to_std().unwrap_or_default();
        let Some(at) = Instant::now().checked_sub(age).filter(|_| age < KEPT) else {
            return;
        };
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() < MAX_KEYS {
            entries.insert(
                (tenant.to_owned(), key.to_owned()),
                Entry::Done {
                    fingerprint,
                    stored,
                    at,
                },
            );
        }
    }

    /// The answers kept for one key's state: `(idempotency key,
    /// fingerprint, answer, kept at)` on the wall clock, for a snapshot.
    pub(in crate::sandbox) fn kept_of(
        &self,
        tenant: &str,
    ) -> Vec<(String, [u8; 32], Stored, chrono::DateTime<chrono::Utc>)> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .iter()
            .filter(|((owner, _), _)| owner == tenant)
            .filter_map(|((_, key), entry)| match entry {
                Entry::Done {
                    fingerprint,
                    stored,
                    at,
                } if at.elapsed() < KEPT => {
                    let age = chrono::Duration::from_std(at.elapsed()).unwrap_or_default();
                    Some((key.clone(), *fingerprint, stored.clone(), chrono::Utc::now() - age))
                }
                _ => None,
            })
            .collect()
    }

    /// Keeps the answer of a claimed key.
    pub(in crate::sandbox) fn finish(&self, tenant: &str, key: &str, stored: Stored) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(entry) = entries.get_mut(&(tenant.to_owned(), key.to_owned()))
            && let Entry::Running { fingerprint } = *entry
        {
            *entry = Entry::Done {
                fingerprint,
                stored,
                at: Instant::now(),
            };
        }
    }

    /// Frees a claimed key whose request was not carried out (a 5xx, a 429):
    /// the same request may be sent again with it.
    pub(in crate::sandbox) fn release(&self, tenant: &str, key: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let id = (tenant.to_owned(), key.to_owned());
        if matches!(entries.get(&id), Some(Entry::Running { .. })) {
            entries.remove(&id);
        }
    }
}

/// The request's fingerprint: operation, path parameters, query and body,
/// with object keys sorted so that key order does not matter.
pub(in crate::sandbox) fn fingerprint(op: &str, path: &Value, query: &Value, body: &Value) -> [u8; 32] {
    let mut hash = Sha256::new();
    for part in [&Value::String(op.to_owned()), path, query, body] {
        hash.update(canonical(part).to_string().as_bytes());
        hash.update([0]);
    }
    hash.finalize().into()
}

fn canonical(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            Value::Object(keys.into_iter().map(|k| (k.clone(), canonical(&map[k]))).collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn claims() {
        let replays = Replays::default();
        let a = fingerprint("createBundle", &json!({}), &json!({}), &json!({"x": 1, "y": 2}));
        let same = fingerprint("createBundle", &json!({}), &json!({}), &json!({"y": 2, "x": 1}));
        let other = fingerprint("createBundle", &json!({}), &json!({}), &json!({"x": 2}));
        assert_eq!(a, same);
        assert!(matches!(replays.claim("t", "k", a), Claim::Fresh));
        assert!(matches!(replays.claim("t", "k", a), Claim::Running));
        assert!(matches!(replays.claim("t", "k", other), Claim::Mismatch));
        assert!(matches!(replays.claim("u", "k", other), Claim::Fresh));
        let stored = Stored {
            status: 201,
            content_type: Some("application/json"),
            body: Bytes::from_static(b"{}"),
        };
        replays.finish("t", "k", stored);
        assert!(matches!(replays.claim("t", "k", a), Claim::Replay(s) if s.status == 201));
        assert!(matches!(replays.claim("t", "k", other), Claim::Mismatch));
        replays.release("u", "k");
        assert!(matches!(replays.claim("u", "k", a), Claim::Fresh));
    }
}
