//! The per-key token bucket: `X-RateLimit-*` on every answer, 429
//! `RATE_LIMIT_EXCEEDED` with `Retry-After` past it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Buckets kept before full ones are forgotten (a full bucket is the same as none).
const MAX_BUCKETS: usize = 10_000;

pub(in crate::sandbox) struct Buckets {
    capacity: f64,
    refill_per_second: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// What one request took from its bucket.
pub(in crate::sandbox) struct Verdict {
    pub(in crate::sandbox) allowed: bool,
    pub(in crate::sandbox) limit: u32,
    pub(in crate::sandbox) remaining: u32,
    /// Unix time at which the bucket is full again.
    pub(in crate::sandbox) reset: u64,
    /// Seconds until a token is back (for `Retry-After`).
    pub(in crate::sandbox) retry_after: u64,
}

impl Buckets {
    pub(in crate::sandbox) fn new(capacity: u32, refill_per_second: f64) -> Self {
        Self {
            capacity: f64::from(capacity),
            refill_per_second,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token from `key`'s bucket, if there is one.
    pub(in crate::sandbox) fn take(&self, key: &str) -> Verdict {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(key) {
            let (capacity, rate) = (self.capacity, self.refill_per_second);
            buckets.retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * rate < capacity);
        }
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket {
            tokens: self.capacity,
            at: now,
        });
        bucket.tokens =
            (bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * self.refill_per_second).min(self.capacity);
        bucket.at = now;
        let allowed = bucket.tokens >= 1.0;
        if allowed {
            bucket.tokens -= 1.0;
        }
        let unix = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let to_full = (self.capacity - bucket.tokens) / self.refill_per_second;
        let to_one = ((1.0 - bucket.tokens) / self.refill_per_second).max(0.0);
        Verdict {
            allowed,
            limit: self.capacity as u32,
            remaining: bucket.tokens.floor().max(0.0) as u32,
            reset: unix + to_full.ceil() as u64,
            retry_after: (to_one.ceil() as u64).max(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_empties_and_keys_do_not_share() {
        let buckets = Buckets::new(3, 0.001);
        let seen: Vec<(bool, u32)> = (0..4)
            .map(|_| buckets.take("a"))
            .map(|v| (v.allowed, v.remaining))
            .collect();
        assert_eq!(seen, [(true, 2), (true, 1), (true, 0), (false, 0)]);
        assert!(buckets.take("b").allowed);
        assert!(buckets.take("a").retry_after >= 1);
    }
}
