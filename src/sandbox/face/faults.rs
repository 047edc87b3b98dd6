//! Faults on demand (`X-Sandbox-Fault`), queued ahead of time (`POST
//! /_sandbox/faults`, for a client that cannot add a header: the CLI, an
//! app under test) and at random (`--fault-rate`).

use std::sync::Mutex;
use std::time::Duration;

use http::HeaderMap;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

use crate::sandbox::contract::{self, Failure, Location, Problem};

/// A fault to inject into one request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(in crate::sandbox) enum Fault {
    /// An error answer with this status (500, 502, 503 or 429); nothing is done.
    Status(u16),
    /// The connection is closed before anything is done.
    Reset,
    /// The request is carried out, then the connection is closed unanswered.
    Lost,
    /// The answer waits this long.
    Slow(Duration),
}

/// The longest `slow` wait.
const MAX_SLOW: Duration = Duration::from_secs(120);

impl Fault {
    /// Reads an `X-Sandbox-Fault` value.
    pub(in crate::sandbox) fn parse(value: &str) -> Result<Fault, String> {
        let value = value.trim().to_ascii_lowercase();
        match value.as_str() {
            "500" | "502" | "503" | "429" => Ok(Fault::Status(value.parse().unwrap_or(503))),
            "reset" => Ok(Fault::Reset),
            "lost" => Ok(Fault::Lost),
            "slow" => Ok(Fault::Slow(Duration::from_secs(2))),
            other => match other.strip_prefix("slow=").map(str::parse::<f64>) {
                Some(Ok(s)) if s.is_finite() && s >= 0.0 => Ok(Fault::Slow(Duration::from_secs_f64(s).min(MAX_SLOW))),
                _ => Err(format!(
                    "`{other}` is not a sandbox fault; use 500, 502, 503, 429, reset, lost, slow or slow=SECONDS"
                )),
            },
        }
    }
}

impl Fault {
    /// The fault as `X-Sandbox-Fault` names it (`503`, `reset`, `slow=2`).
    pub(in crate::sandbox) fn label(self) -> String {
        match self {
            Fault::Status(status) => status.to_string(),
            Fault::Reset => "reset".into(),
            Fault::Lost => "lost".into(),
            Fault::Slow(wait) => format!("slow={}", wait.as_secs_f64()),
        }
    }

    /// The answer of a status fault, with its status and code; `None` for
    /// the faults that act on the connection or the time.
    pub(in crate::sandbox) fn failure(self) -> Option<Failure> {
        let Fault::Status(status) = self else { return None };
        if status == 429 {
            return Some(
                Failure::new(429, "RATE_LIMIT_EXCEEDED", "Rate limit exceeded (sandbox fault).")
                    .details(json!({"retry_after_seconds": 1}))
                    .header("retry-after", "1"),
            );
        }
        let code = match status {
            500 => "INTERNAL_ERROR",
            502 => "BAD_GATEWAY",
            _ => "SERVICE_UNAVAILABLE",
        };
        Some(Failure::new(
            status,
            code,
            "The sandbox was asked to fail this request.",
        ))
    }
}

/// Faults queued for the next requests (of one operation, or any), each
/// used once, oldest first.
#[derive(Default)]
pub(in crate::sandbox) struct Queue {
    queued: Mutex<std::collections::VecDeque<(Option<String>, Fault)>>,
}

/// Faults the queue holds at most.
const MAX_QUEUED: usize = 100;

impl Queue {
    /// Drops every queued fault (the whole sandbox's reset).
    pub(in crate::sandbox) fn clear(&self) {
        self.queued.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// Queues `fault` `times` times, for `operation` or any; the faults now
    /// queued, or why not.
    pub(in crate::sandbox) fn push(
        &self,
        fault: Fault,
        times: usize,
        operation: Option<String>,
    ) -> Result<usize, String> {
        let mut queued = self.queued.lock().unwrap_or_else(|p| p.into_inner());
        if queued.len() + times > MAX_QUEUED {
            return Err(format!("at most {MAX_QUEUED} faults may wait in the queue"));
        }
        queued.extend(std::iter::repeat_n((operation, fault), times));
        Ok(queued.len())
    }

    /// The oldest fault queued for `operation` (or any), taken.
    fn take(&self, operation: &str) -> Option<Fault> {
        let mut queued = self.queued.lock().unwrap_or_else(|p| p.into_inner());
        let at = queued
            .iter()
            .position(|(op, _)| op.as_deref().is_none_or(|op| op == operation))?;
        queued.remove(at).map(|(_, fault)| fault)
    }
}

/// The fault of one request of `operation`: the one its `X-Sandbox-Fault`
/// header asks for, else the next queued for it, else the dice's. A header
/// that names no fault is a validation failure of that header.
pub(in crate::sandbox) fn asked(
    headers: &HeaderMap,
    operation: &str,
    queue: &Queue,
    dice: &Dice,
) -> Result<Option<Fault>, Failure> {
    let Some(value) = headers.get(crate::sandbox::FAULT_HEADER) else {
        return Ok(queue.take(operation).or_else(|| dice.roll()));
    };
    Fault::parse(value.to_str().unwrap_or("?"))
        .map(Some)
        .map_err(|message| {
            contract::validation(vec![Problem {
                field: "X-Sandbox-Fault".into(),
                location: Location::Header,
                message,
                unknown: false,
            }])
        })
}

/// The random draw of `--fault-rate`.
pub(in crate::sandbox) struct Dice {
    rate: f64,
    rng: Mutex<StdRng>,
}

impl Dice {
    pub(in crate::sandbox) fn new(rate: f64, seed: Option<u64>) -> Self {
        let rng = match seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_os_rng(),
        };
        Self {
            rate,
            rng: Mutex::new(rng),
        }
    }

    /// A 503, a 429 or a reset, for `rate` of the calls.
    pub(in crate::sandbox) fn roll(&self) -> Option<Fault> {
        if self.rate <= 0.0 {
            return None;
        }
        let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
        if rng.random::<f64>() >= self.rate {
            return None;
        }
        Some(match rng.random_range(0..3) {
            0 => Fault::Status(503),
            1 => Fault::Status(429),
            _ => Fault::Reset,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_rates() {
        assert_eq!(Fault::parse("503"), Ok(Fault::Status(503)));
        assert_eq!(Fault::parse(" Reset "), Ok(Fault::Reset));
        assert_eq!(Fault::parse("slow=0.5"), Ok(Fault::Slow(Duration::from_millis(500))));
        assert_eq!(Fault::parse("slow=9999"), Ok(Fault::Slow(MAX_SLOW)));
        assert!(Fault::parse("404").unwrap_err().contains("not a sandbox fault"));
        assert!(Fault::parse("slow=-1").is_err());
        assert_eq!(Dice::new(0.0, Some(1)).roll(), None);
        let always = Dice::new(1.0, Some(7));
        assert!((0..20).all(|_| always.roll().is_some()));
        let half = Dice::new(0.5, Some(7));
        let hits = (0..1000).filter(|_| half.roll().is_some()).count();
        assert!((400..600).contains(&hits), "{hits}");
    }
}
