//! The status moves of a bundle's account slot and video slots, each with
//! its webhook event: what the customer's calls (`behaviour::bundles`) and
//! the account manager's work (`manager`) both do to a slot. Every move is
//! stamped with the key's now, simulated or real.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::state::{Bundle, Object, stamp, str_of};
use super::vocabulary::{Effects, seeded};

/// Sets `field` to `value` and stamps `updated_at`.
pub(in crate::sandbox) fn set(object: &mut Object, field: &str, value: &str, now: DateTime<Utc>) {
    object.insert(field.into(), json!(value));
    touch(object, now);
}

/// Stamps `updated_at`.
pub(in crate::sandbox) fn touch(object: &mut Object, now: DateTime<Utc>) {
    object.insert("updated_at".into(), json!(stamp(now)));
}

/// Copies the account slot's status to the bundle's `account_status`.
pub(in crate::sandbox) fn sync_account_status(bundle: &mut Bundle) {
    let status = bundle
        .account
        .as_ref()
        .and_then(|a| a.get("status").cloned())
        .unwrap_or(Value::Null);
    bundle.fields.insert("account_status".into(), status);
}

/// Moves the account slot to `to`, with its event.
pub(in crate::sandbox) fn account_to(
    account: &mut Object,
    bundle: &Object,
    to: &'static str,
    now: DateTime<Utc>,
    fx: &mut Effects,
) {
    let previous = account.get("status").cloned().unwrap_or(Value::Null);
    set(account, "status", to, now);
    let event = match to {
        "configured" => "account.configured",
        "published" => "account.published",
        "in_review" => "account.in_review",
        "pending_corrections" => "account.pending_corrections",
        _ => "account.finalized",
    };
    fx.emit(
        event,
        json!({
            "account_id": account.get("id"),
            "bundle_id": bundle.get("id"),
            "username": account.get("username"),
            "platform": account.get("platform"),
            "status": to,
            "previous_status": previous,
        }),
    );
}

/// Moves a video slot to `to`, with its event when it has one.
pub(in crate::sandbox) fn video_to(
    video: &mut Object,
    bundle: &Object,
    to: &'static str,
    now: DateTime<Utc>,
    fx: &mut Effects,
) {
    let previous = video.get("status").cloned().unwrap_or(Value::Null);
    set(video, "status", to, now);
    let event = match to {
        "configured" => "video.configured",
        "published" => "video.published",
        "in_review" => "video.in_review",
        "pending_corrections" => "video.pending_corrections",
        "finalized" => "video.finalized",
        _ => return,
    };
    fx.emit(
        event,
        json!({
            "video_id": video.get("id"),
            "bundle_id": bundle.get("id"),
            "position": video.get("position"),
            "status": to,
            "previous_status": previous,
            "platform_url": video.get("platform_url"),
        }),
    );
}

/// Posts a video: its `platform_url` (stable for its id), `published_at`,
/// and the move to `published`.
pub(in crate::sandbox) fn post_video(video: &mut Object, bundle: &Object, now: DateTime<Utc>, fx: &mut Effects) {
    let url = format!(
        "https://www.tiktok.com/@sandbox/video/{}",
        7_000_000_000_000_000_000u64 + seeded(str_of(video, "id").unwrap_or_default(), 1, 1_000_000_000)
    );
    video.insert("platform_url".into(), json!(url));
    video.insert("published_at".into(), json!(stamp(now)));
    video_to(video, bundle, "published", now, fx);
}
