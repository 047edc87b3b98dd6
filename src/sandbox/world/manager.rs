//! The account manager: the people behind TokPortal, played by the sandbox.
//!
//! Behaviour hands the manager its work ([`hand`]) when a customer's call
//! starts it: a published bundle's account to build and send to review, a
//! video to post on its date, corrections to make. On a key on real time
//! the manager does it at once, as the sandbox always has; on a simulated
//! clock the work waits on the clock and is done, in time order, when
//! [`advance`] reaches it. Each step checks that its resource is still
//! where the step left it (a bundle unpublished meanwhile, a video reset):
//! a step that no longer applies is dropped.
//!
//! Where the contract is silent these are the sandbox's choices, and the
//! README says so: the delays (`clock::Delays`), that a video is posted at
//! 00:00 UTC of its `target_publish_date`, that `auto_finalize_videos`
//! finalizes a video once it has been in review for the `auto_finalize`
//! delay (on a simulated clock only: real time keeps today's answers), and
//! that a step held by a download issue is done as soon as
//! `fixBundleVideoDownload` is called.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::clock::{Desk, Work, start_of};
use super::state::{Bundle, Tenant, stamp, str_of};
use super::transitions::{account_to, post_video, sync_account_status, touch, video_to};
use super::vocabulary::{Effects, Queued, queue};

/// Hands `work` on `bundle` to the manager at `now`: done at once on real
/// time (its transitions returned), or scheduled on the key's clock. On
/// real time a video waits for its date as it always has (nothing posts it)
/// and nothing is finalized for the customer.
pub(in crate::sandbox) fn hand(
    bundle: &mut Bundle,
    desk: &mut Desk,
    work: Work,
    now: DateTime<Utc>,
    fx: &mut Effects,
) -> Vec<Value> {
    match desk.clock.as_mut() {
        Some(clock) => {
            let d = &clock.delays;
            let due = match &work {
                Work::AccountReview { .. } => now + d.account,
                Work::AccountCorrected { .. } | Work::VideoCorrected { .. } => now + d.corrections,
                Work::VideoReview { .. } => now + d.video,
                Work::VideoAutoFinalize { .. } => now + d.auto_finalize,
                Work::VideoPost { position, .. } => video_date(bundle, *position).unwrap_or(now),
            };
            clock.schedule(due, work);
            Vec::new()
        }
        None => match work {
            Work::VideoPost { .. } | Work::VideoAutoFinalize { .. } => Vec::new(),
            work => perform(bundle, desk, work, now, fx),
        },
    }
}

/// The start of the `target_publish_date` of video `position`.
fn video_date(bundle: &Bundle, position: usize) -> Option<DateTime<Utc>> {
    let video = bundle.videos.get(position.checked_sub(1)?)?;
    start_of(str_of(video, "target_publish_date")?)
}

/// One transition as `advance` answers it.
fn transition(
    at: DateTime<Utc>,
    resource: &str,
    id: Option<&Value>,
    from: Value,
    to: &str,
    event: Option<&str>,
) -> Value {
    json!({
        "at": stamp(at),
        "resource": resource,
        "id": id,
        "from": from,
        "to": to,
        "event": event,
    })
}

/// Does `work` on `bundle` at `at`: the move, its event, and the next step
/// handed on. Its transitions, in order (none when the step no longer
/// applies).
pub(in crate::sandbox) fn perform(
    bundle: &mut Bundle,
    desk: &mut Desk,
    work: Work,
    at: DateTime<Utc>,
    fx: &mut Effects,
) -> Vec<Value> {
    let fields = bundle.fields.clone();
    match work {
        Work::AccountReview { .. } | Work::AccountCorrected { .. } => {
            let from = if matches!(work, Work::AccountReview { .. }) {
                "published"
            } else {
                "pending_corrections"
            };
            let Some(account) = bundle.account.as_mut().filter(|a| str_of(a, "status") == Some(from)) else {
                return Vec::new();
            };
            account_to(account, &fields, "in_review", at, fx);
            let done = transition(
                at,
                "account",
                account.get("id"),
                json!(from),
                "in_review",
                Some("account.in_review"),
            );
            sync_account_status(bundle);
            vec![done]
        }
        Work::VideoPost { position, .. }
        | Work::VideoReview { position, .. }
        | Work::VideoCorrected { position, .. }
        | Work::VideoAutoFinalize { position, .. } => {
            let (from, to, event) = match work {
                Work::VideoPost { .. } => ("scheduled", "published", "video.published"),
                Work::VideoReview { .. } => ("published", "in_review", "video.in_review"),
                Work::VideoCorrected { .. } => ("pending_corrections", "in_review", "video.in_review"),
                _ => ("in_review", "finalized", "video.finalized"),
            };
            let bundle_id = str_of(&fields, "id").unwrap_or_default().to_owned();
            let Some(video) = position
                .checked_sub(1)
                .and_then(|i| bundle.videos.get_mut(i))
                .filter(|v| str_of(v, "status") == Some(from))
            else {
                return Vec::new();
            };
            // A download the manager cannot use (flagged on demand, or a
            // broken media URL) stops the video here until it is fixed.
            let flagged = desk.take_flag(&bundle_id, position);
            let broken = video.get("download_issue").and_then(Value::as_bool) == Some(true);
            if (flagged || broken) && !matches!(work, Work::VideoAutoFinalize { .. }) {
                video.insert("download_issue".into(), json!(true));
                touch(video, at);
                let held = transition(at, "video", video.get("id"), json!(from), from, None);
                desk.held.push(work);
                return vec![held];
            }
            if to == "published" {
                post_video(video, &fields, at, fx);
            } else {
                video_to(video, &fields, to, at, fx);
            }
            let mut done = vec![transition(at, "video", video.get("id"), json!(from), to, Some(event))];
            let auto_finalize = fields.get("auto_finalize_videos").and_then(Value::as_bool) != Some(false);
            let next = match to {
                "published" => Some(Work::VideoReview {
                    bundle: bundle_id,
                    position,
                }),
                "in_review" if auto_finalize => Some(Work::VideoAutoFinalize {
                    bundle: bundle_id,
                    position,
                }),
                _ => None,
            };
            if let Some(next) = next {
                done.extend(hand(bundle, desk, next, at, fx));
            }
            done
        }
    }
}

/// The step held by a download issue on video `position` of `bundle`,
/// taken (`fixBundleVideoDownload` resumes it).
pub(in crate::sandbox) fn take_held(desk: &mut Desk, bundle: &str, position: usize) -> Option<Work> {
    let at = desk
        .held
        .iter()
        .position(|w| w.bundle() == bundle && w.position() == Some(position))?;
    Some(desk.held.remove(at))
}

/// Forgets the manager's work that `keep` refuses: waiting on the clock,
/// held, or flagged (a bundle unpublished, a video reset or unscheduled).
pub(in crate::sandbox) fn forget(desk: &mut Desk, keep: impl Fn(&str, Option<usize>) -> bool) {
    if let Some(clock) = desk.clock.as_mut() {
        clock.retain(|w| keep(w.bundle(), w.position()));
    }
    desk.held.retain(|w| keep(w.bundle(), w.position()));
    desk.flags.retain(|f| keep(&f.bundle, Some(f.position)));
}

/// What one advance did: the transitions in time order, and the webhook
/// events they queued, each with the time it happened.
pub(in crate::sandbox) struct Advanced {
    pub(in crate::sandbox) transitions: Vec<Value>,
    pub(in crate::sandbox) queued: Vec<Queued>,
}

/// Moves `tenant`'s simulated clock to `until`, doing every step that falls
/// due on the way in time order (a step may hand on another that falls due
/// before `until`: it is done too). The caller has checked that the key has
/// a clock and that `until` is not before its now.
pub(in crate::sandbox) fn advance(tenant: &mut Tenant, until: DateTime<Utc>) -> Advanced {
    let mut done = Advanced {
        transitions: Vec::new(),
        queued: Vec::new(),
    };
    while let Some((at, work)) = tenant.desk.clock.as_mut().and_then(|c| c.take_due(until)) {
        if let Some(clock) = tenant.desk.clock.as_mut() {
            clock.now = at;
        }
        let mut fx = Effects::default();
        let Ok((bundle, desk)) = tenant.bundle_and_desk(work.bundle()) else {
            continue;
        };
        done.transitions.extend(perform(bundle, desk, work, at, &mut fx));
        for event in &fx.events {
            done.queued.push(queue(tenant, event, at));
        }
    }
    if let Some(clock) = tenant.desk.clock.as_mut() {
        clock.now = until;
    }
    done
}
