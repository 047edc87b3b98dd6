//! Per-caller limits on tool calls: how many may run at once for one key
//! (`--max-calls-per-key`, default 16), and how long one may take
//! (`--call-timeout`, default 300 s). Both hold over stdio (one key) and
//! HTTP (each caller's own key), with or without sessions.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rmcp::ErrorData as McpError;
use rmcp::model::ErrorCode;
use serde_json::json;

use super::caller::KeyId;

/// The JSON-RPC error code of a call refused because its key has too many
/// calls running (in the range JSON-RPC leaves to servers).
pub const TOO_MANY_CALLS: ErrorCode = ErrorCode(-32029);

/// Limits on one caller's tool calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallLimits {
    /// Tool calls one key may have running at once.
    pub per_key: usize,
    /// How long one tool call may take, retries and waits included.
    pub timeout: Duration,
}

impl Default for CallLimits {
    fn default() -> Self {
        Self {
            per_key: 16,
            timeout: Duration::from_secs(300),
        }
    }
}

/// The tool calls running now, per key.
pub struct CallGate {
    limits: CallLimits,
    running: Mutex<HashMap<KeyId, usize>>,
}

impl CallGate {
    /// No call running, under `limits`.
    pub fn new(limits: CallLimits) -> Self {
        Self {
            limits,
            running: Mutex::new(HashMap::new()),
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> CallLimits {
        self.limits
    }

    fn running(&self) -> MutexGuard<'_, HashMap<KeyId, usize>> {
        // Counts stay whole numbers even if a holder panicked.
        self.running.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A place for one more call of `caller`, or the JSON-RPC error that
    /// refuses it. The place is freed when the permit is dropped.
    pub fn enter(self: &Arc<Self>, caller: KeyId) -> Result<CallPermit, McpError> {
        let mut running = self.running();
        let count = running.entry(caller).or_default();
        if *count >= self.limits.per_key {
            let limit = self.limits.per_key;
            drop(running);
            tracing::warn!(caller = %caller, limit, "tool call refused: too many at once for this key");
            super::metrics::refused("concurrency");
            return Err(McpError::new(
                TOO_MANY_CALLS,
                format!("this key has {limit} tool calls running, its limit: wait for one to finish, then retry"),
                Some(json!({"limit": limit, "retryable": true})),
            ));
        }
        *count += 1;
        Ok(CallPermit {
            gate: Arc::clone(self),
            caller,
        })
    }

    /// Calls running for `caller` now.
    pub fn running_for(&self, caller: KeyId) -> usize {
        self.running().get(&caller).copied().unwrap_or(0)
    }
}

/// One running tool call; dropping it frees its place.
pub struct CallPermit {
    gate: Arc<CallGate>,
    caller: KeyId,
}

impl Drop for CallPermit {
    fn drop(&mut self) {
        let mut running = self.gate.running();
        if let Some(n) = running.get_mut(&self.caller) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                running.remove(&self.caller);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_gets_its_limit_and_no_more_and_other_keys_are_apart() {
        let gate = Arc::new(CallGate::new(CallLimits {
            per_key: 2,
            timeout: Duration::from_secs(1),
        }));
        let (a, b) = (KeyId::of("sk_a"), KeyId::of("sk_b"));
        let p1 = gate.enter(a).unwrap();
        let _p2 = gate.enter(a).unwrap();
        let refused = gate.enter(a).err().unwrap();
        assert_eq!(refused.code, TOO_MANY_CALLS);
        assert!(refused.message.contains("limit"), "{}", refused.message);
        let _other = gate.enter(b).unwrap();
        drop(p1);
        let _p3 = gate.enter(a).unwrap();
        assert_eq!(gate.running_for(a), 2);
    }

    #[test]
    fn freed_places_leave_no_entry_behind() {
        let gate = Arc::new(CallGate::new(CallLimits::default()));
        for i in 0..100 {
            drop(gate.enter(KeyId::of(&format!("sk_{i}"))).unwrap());
        }
        assert!(gate.running().is_empty());
    }
}
