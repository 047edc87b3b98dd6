//! A key's clock and the account manager's desk: what time it is for that
//! key, and the work the manager will do when it falls due.
//!
//! A key is on real time until it asks for a simulated clock (`POST
//! /_sandbox/clock`). A simulated clock stands still until it is advanced,
//! may start in the past, and never goes back. Behaviour asks the desk for
//! "now" and hands it work ([`Work`]); `manager` does the work, at once on
//! real time, or when `advance` reaches its time on a simulated clock. No
//! handler keeps a timer of its own.
//!
//! This module is data only: what the work is and when it is due.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveTime, SecondsFormat, Utc};
use serde_json::{Value, json};

/// A time as every answer and event of the sandbox writes it: RFC 3339,
/// to the second, in UTC.
pub(in crate::sandbox) fn stamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// How long the manager takes, per kind of work. The contract gives no
/// delays: these defaults are the sandbox's choice.
#[derive(Clone, Debug, PartialEq)]
pub(in crate::sandbox) struct Delays {
    /// From `publishBundle` to the account in customer review.
    pub(in crate::sandbox) account: Duration,
    /// From a request for corrections (account or video) back to review.
    pub(in crate::sandbox) corrections: Duration,
    /// From a video posted to the video in customer review.
    pub(in crate::sandbox) video: Duration,
    /// From a video in review to its finalization when its bundle has
    /// `auto_finalize_videos` (the customer's review window).
    pub(in crate::sandbox) auto_finalize: Duration,
}

impl Default for Delays {
    fn default() -> Self {
        Self {
            account: Duration::hours(48),
            corrections: Duration::hours(24),
            video: Duration::hours(12),
            auto_finalize: Duration::hours(48),
        }
    }
}

/// The longest delay or advance taken: ten years.
const MAX_SPAN: Duration = Duration::days(3650);

impl Delays {
    /// The delays as the clock's answer names them (`"48h"`).
    pub(in crate::sandbox) fn shown(&self) -> Value {
        json!({
            "account": span(self.account),
            "corrections": span(self.corrections),
            "video": span(self.video),
            "auto_finalize": span(self.auto_finalize),
        })
    }

    /// These delays with those `given` changes (`{"account": "72h"}`); a
    /// name that is not a delay, or a value that is not a duration, is the
    /// error, naming it.
    pub(in crate::sandbox) fn with(&self, given: &serde_json::Map<String, Value>) -> Result<Delays, String> {
        let mut out = self.clone();
        for (name, value) in given {
            let slot = match name.as_str() {
                "account" => &mut out.account,
                "corrections" => &mut out.corrections,
                "video" => &mut out.video,
                "auto_finalize" => &mut out.auto_finalize,
                other => {
                    return Err(format!(
                        "delays.{other} is not a delay: use account, corrections, video or auto_finalize"
                    ));
                }
            };
            let text = value
                .as_str()
                .ok_or_else(|| format!("delays.{name} must be a duration such as \"48h\""))?;
            *slot = parse_span(text).map_err(|why| format!("delays.{name}: {why}"))?;
        }
        Ok(out)
    }
}

/// Reads a duration: one or more numbers each with a unit, `s`, `m`, `h`
/// or `d` (`36h`, `1d12h`, `90m`, `0s`), at most ten years.
pub(in crate::sandbox) fn parse_span(text: &str) -> Result<Duration, String> {
    let bad = || format!("`{text}` is not a duration such as 36h, 3d, 1d12h or 90m");
    let text = text.trim();
    if text.is_empty() || text.len() > 64 {
        return Err(bad());
    }
    let mut total = Duration::zero();
    let mut digits = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let n: i64 = digits.parse().map_err(|_| bad())?;
        digits.clear();
        let unit = match c {
            's' => Duration::try_seconds(n),
            'm' => Duration::try_minutes(n),
            'h' => Duration::try_hours(n),
            'd' => Duration::try_days(n),
            _ => None,
        }
        .ok_or_else(bad)?;
        total = total.checked_add(&unit).ok_or_else(bad)?;
        if total > MAX_SPAN {
            return Err(format!("`{text}` is more than ten years"));
        }
    }
    if !digits.is_empty() {
        return Err(bad());
    }
    Ok(total)
}

/// A duration as `parse_span` reads it, in its largest whole unit.
pub(in crate::sandbox) fn span(d: Duration) -> String {
    let s = d.num_seconds();
    match s {
        0 => "0s".into(),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// The manager's work on one resource of a key.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(tag = "work", rename_all = "snake_case")]
pub(in crate::sandbox) enum Work {
    /// A published bundle's account goes to customer review.
    AccountReview { bundle: String },
    /// An account sent back for corrections returns to review.
    AccountCorrected { bundle: String },
    /// A scheduled video is posted on its date.
    VideoPost { bundle: String, position: usize },
    /// A posted video goes to customer review.
    VideoReview { bundle: String, position: usize },
    /// A video sent back for corrections returns to review.
    VideoCorrected { bundle: String, position: usize },
    /// A video in review is finalized (`auto_finalize_videos`).
    VideoAutoFinalize { bundle: String, position: usize },
}

impl Work {
    /// The bundle the work is on.
    pub(in crate::sandbox) fn bundle(&self) -> &str {
        match self {
            Work::AccountReview { bundle } | Work::AccountCorrected { bundle } => bundle,
            Work::VideoPost { bundle, .. }
            | Work::VideoReview { bundle, .. }
            | Work::VideoCorrected { bundle, .. }
            | Work::VideoAutoFinalize { bundle, .. } => bundle,
        }
    }

    /// The video's position, for work on a video.
    pub(in crate::sandbox) fn position(&self) -> Option<usize> {
        match self {
            Work::AccountReview { .. } | Work::AccountCorrected { .. } => None,
            Work::VideoPost { position, .. }
            | Work::VideoReview { position, .. }
            | Work::VideoCorrected { position, .. }
            | Work::VideoAutoFinalize { position, .. } => Some(*position),
        }
    }

    /// What the step is called in `pending` (`account.in_review`).
    pub(in crate::sandbox) fn label(&self) -> &'static str {
        match self {
            Work::AccountReview { .. } | Work::AccountCorrected { .. } => "account.in_review",
            Work::VideoPost { .. } => "video.published",
            Work::VideoReview { .. } | Work::VideoCorrected { .. } => "video.in_review",
            Work::VideoAutoFinalize { .. } => "video.finalized",
        }
    }
}

/// A simulated clock: its time, its delays, and the work waiting on it,
/// in time order (ties in the order they were handed over).
#[derive(Clone, Debug)]
pub(in crate::sandbox) struct Clock {
    pub(in crate::sandbox) now: DateTime<Utc>,
    pub(in crate::sandbox) delays: Delays,
    /// `(due, sequence)` to work: a `BTreeMap` keeps it in time order.
    pending: BTreeMap<(DateTime<Utc>, u64), Work>,
    next: u64,
}

impl Clock {
    pub(in crate::sandbox) fn new(now: DateTime<Utc>, delays: Delays) -> Self {
        Self {
            now,
            delays,
            pending: BTreeMap::new(),
            next: 0,
        }
    }

    /// Schedules `work` at `due` (never before now).
    pub(in crate::sandbox) fn schedule(&mut self, due: DateTime<Utc>, work: Work) {
        let due = due.max(self.now);
        self.pending.insert((due, self.next), work);
        self.next += 1;
    }

    /// The earliest work due at or before `until`, taken.
    pub(in crate::sandbox) fn take_due(&mut self, until: DateTime<Utc>) -> Option<(DateTime<Utc>, Work)> {
        let (&(at, seq), _) = self.pending.first_key_value()?;
        if at > until {
            return None;
        }
        self.pending.remove(&(at, seq)).map(|work| (at, work))
    }

    /// When the next work falls due.
    pub(in crate::sandbox) fn next_due(&self) -> Option<DateTime<Utc>> {
        self.pending.keys().next().map(|(at, _)| *at)
    }

    /// Drops the work on `bundle` (a reset video, an unpublished bundle)
    /// that `keep` refuses.
    pub(in crate::sandbox) fn retain(&mut self, keep: impl Fn(&Work) -> bool) {
        self.pending.retain(|_, work| keep(work));
    }

    /// The waiting work, in order, as the clock's answer shows it.
    pub(in crate::sandbox) fn pending(&self) -> Vec<Value> {
        self.pending
            .iter()
            .map(|((at, _), work)| {
                json!({
                    "at": stamp(*at),
                    "resource": if work.position().is_some() { "video" } else { "account" },
                    "bundle_id": work.bundle(),
                    "position": work.position(),
                    "step": work.label(),
                })
            })
            .collect()
    }

    /// How many steps wait.
    pub(in crate::sandbox) fn waiting(&self) -> usize {
        self.pending.len()
    }
}

/// The start (00:00 UTC) of `date` (`YYYY-MM-DD`), when it is one.
pub(in crate::sandbox) fn start_of(date: &str) -> Option<DateTime<Utc>> {
    let day = chrono::NaiveDate::parse_from_str(date.get(..10)?, "%Y-%m-%d").ok()?;
    Some(day.and_time(NaiveTime::MIN).and_utc())
}

/// A video the manager is asked to flag at its next step.
#[derive(Clone, Debug, PartialEq, Hash, serde::Serialize, serde::Deserialize)]
pub(in crate::sandbox) struct Flag {
    pub(in crate::sandbox) bundle: String,
    pub(in crate::sandbox) position: usize,
}

/// Flags a key may have waiting.
pub(in crate::sandbox) const MAX_FLAGS: usize = 1000;

/// The manager's desk for one key: its clock (none on real time), the
/// videos to flag at their next step, and the steps held by a download
/// issue until `fixBundleVideoDownload`.
#[derive(Clone, Debug, Default)]
pub(in crate::sandbox) struct Desk {
    pub(in crate::sandbox) clock: Option<Clock>,
    pub(in crate::sandbox) flags: Vec<Flag>,
    pub(in crate::sandbox) held: Vec<Work>,
}

impl Desk {
    /// The desk as JSON, for the state file and snapshots: the clock (its
    /// now, delays in seconds and pending steps in order), flags and held
    /// steps.
    pub(in crate::sandbox) fn to_json(&self) -> Value {
        let clock = self.clock.as_ref().map(|c| {
            json!({
                "now": stamp(c.now),
                "delays": {
                    "account": c.delays.account.num_seconds(),
                    "corrections": c.delays.corrections.num_seconds(),
                    "video": c.delays.video.num_seconds(),
                    "auto_finalize": c.delays.auto_finalize.num_seconds(),
                },
                "pending": c.pending.iter().map(|((at, _), w)| json!({"at": stamp(*at), "step": w})).collect::<Vec<_>>(),
            })
        });
        json!({"clock": clock, "flags": self.flags, "held": self.held})
    }

    /// A desk from [`Desk::to_json`]'s form; what is wrong, named, otherwise.
    pub(in crate::sandbox) fn from_json(value: &Value) -> Result<Desk, String> {
        let time = |v: &Value, what: &str| -> Result<DateTime<Utc>, String> {
            v.as_str()
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                .map(|t| t.with_timezone(&Utc))
                .ok_or_else(|| format!("{what} is not an RFC 3339 time"))
        };
        let clock = match value.get("clock") {
            None | Some(Value::Null) => None,
            Some(c) => {
                let seconds = |name: &str| -> Result<Duration, String> {
                    c["delays"][name]
                        .as_i64()
                        .and_then(Duration::try_seconds)
                        .filter(|d| *d >= Duration::zero() && *d <= MAX_SPAN)
                        .ok_or_else(|| format!("clock.delays.{name} is not a number of seconds"))
                };
                let delays = Delays {
                    account: seconds("account")?,
                    corrections: seconds("corrections")?,
                    video: seconds("video")?,
                    auto_finalize: seconds("auto_finalize")?,
                };
                let mut clock = Clock::new(time(&c["now"], "clock.now")?, delays);
                for (n, p) in c["pending"].as_array().into_iter().flatten().enumerate() {
                    let work: Work = serde_json::from_value(p["step"].clone())
                        .map_err(|e| format!("clock.pending[{n}].step: {e}"))?;
                    let at = time(&p["at"], &format!("clock.pending[{n}].at"))?;
                    clock.pending.insert((at, clock.next), work);
                    clock.next += 1;
                }
                Some(clock)
            }
        };
        let list = |name: &str| value.get(name).cloned().unwrap_or(Value::Array(Vec::new()));
        Ok(Desk {
            clock,
            flags: serde_json::from_value(list("flags")).map_err(|e| format!("flags: {e}"))?,
            held: serde_json::from_value(list("held")).map_err(|e| format!("held: {e}"))?,
        })
    }

    /// A number that changes whenever the desk does (its clock's now,
    /// delays, steps handed over and waiting, its flags and held steps),
    /// without walking its steps: what the state file compares.
    pub(in crate::sandbox) fn version(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = rustc_hash::FxHasher::default();
        if let Some(c) = &self.clock {
            c.now.timestamp().hash(&mut h);
            c.next.hash(&mut h);
            c.pending.len().hash(&mut h);
            for d in [
                c.delays.account,
                c.delays.corrections,
                c.delays.video,
                c.delays.auto_finalize,
            ] {
                d.num_seconds().hash(&mut h);
            }
        } else {
            u64::MAX.hash(&mut h);
        }
        self.flags.hash(&mut h);
        self.held.hash(&mut h);
        h.finish()
    }

    /// The key's now: its simulated clock's, or the wall clock's.
    pub(in crate::sandbox) fn now(&self) -> DateTime<Utc> {
        self.clock.as_ref().map_or_else(Utc::now, |c| c.now)
    }

    /// Takes the flag on video `position` of `bundle`, if one waits.
    pub(in crate::sandbox) fn take_flag(&mut self, bundle: &str, position: usize) -> bool {
        let before = self.flags.len();
        self.flags.retain(|f| !(f.bundle == bundle && f.position == position));
        self.flags.len() != before
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_and_print_in_their_units() {
        assert_eq!(parse_span("36h"), Ok(Duration::hours(36)));
        assert_eq!(parse_span("1d12h"), Ok(Duration::hours(36)));
        assert_eq!(parse_span("90m"), Ok(Duration::minutes(90)));
        assert_eq!(parse_span("0s"), Ok(Duration::zero()));
        for bad in ["", "36", "h", "3w", "-1h", "1.5h", "99999999999999999999d", "3651d"] {
            assert!(parse_span(bad).is_err(), "{bad} was read");
        }
        assert_eq!(span(Duration::hours(48)), "48h");
        assert_eq!(span(Duration::minutes(90)), "90m");
        assert_eq!(span(Duration::seconds(5)), "5s");
    }

    #[test]
    fn work_falls_due_in_time_order_and_ties_in_handed_order() {
        let t0 = start_of("2026-06-01").unwrap();
        let mut clock = Clock::new(t0, Delays::default());
        let a = Work::AccountReview { bundle: "a".into() };
        let b = Work::AccountReview { bundle: "b".into() };
        let c = Work::AccountReview { bundle: "c".into() };
        clock.schedule(t0 + Duration::hours(2), a.clone());
        clock.schedule(t0 + Duration::hours(1), b.clone());
        clock.schedule(t0 + Duration::hours(1), c.clone());
        clock.schedule(t0 - Duration::hours(1), c.clone());
        assert_eq!(
            clock.take_due(t0 + Duration::hours(1)),
            Some((t0, c.clone())),
            "never before now"
        );
        assert_eq!(
            clock.take_due(t0 + Duration::hours(1)),
            Some((t0 + Duration::hours(1), b))
        );
        assert_eq!(
            clock.take_due(t0 + Duration::hours(1)),
            Some((t0 + Duration::hours(1), c))
        );
        assert_eq!(clock.take_due(t0 + Duration::hours(1)), None, "a is later");
        assert_eq!(clock.next_due(), Some(t0 + Duration::hours(2)));
        assert_eq!(
            clock.take_due(t0 + Duration::hours(9)),
            Some((t0 + Duration::hours(2), a))
        );
    }

    #[test]
    fn a_desk_round_trips_through_json() {
        let t0 = start_of("2026-06-01").unwrap();
        let mut clock = Clock::new(t0, Delays::default());
        clock.schedule(t0 + Duration::hours(48), Work::AccountReview { bundle: "b".into() });
        clock.schedule(
            t0 + Duration::hours(1),
            Work::VideoPost {
                bundle: "b".into(),
                position: 2,
            },
        );
        let desk = Desk {
            clock: Some(clock),
            flags: vec![Flag {
                bundle: "b".into(),
                position: 1,
            }],
            held: vec![Work::VideoReview {
                bundle: "c".into(),
                position: 3,
            }],
        };
        let json = desk.to_json();
        let back = Desk::from_json(&json).unwrap();
        assert_eq!(back.to_json(), json);
        let mut clock = back.clock.unwrap();
        assert_eq!(
            clock.take_due(t0 + Duration::hours(1)).map(|(_, w)| w.label()),
            Some("video.published")
        );
        assert_eq!(back.held.len(), 1);
        let mut broken = json.clone();
        broken["clock"]["pending"][0]["step"] = json!({"work": "teleport"});
        assert!(Desk::from_json(&broken).unwrap_err().contains("clock.pending[0].step"));
    }

    #[test]
    fn delays_change_by_name_and_refuse_the_unknown() {
        let given = serde_json::from_str(r#"{"account": "72h", "video": "30m"}"#).unwrap();
        let d = Delays::default().with(&given).unwrap();
        assert_eq!(
            (d.account, d.video, d.corrections),
            (Duration::hours(72), Duration::minutes(30), Duration::hours(24))
        );
        let unknown = serde_json::from_str(r#"{"review": "1h"}"#).unwrap();
        assert!(Delays::default().with(&unknown).unwrap_err().contains("delays.review"));
        let bad = serde_json::from_str(r#"{"account": 5}"#).unwrap();
        assert!(Delays::default().with(&bad).unwrap_err().contains("delays.account"));
    }
}
