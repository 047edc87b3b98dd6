//! Bundles, their account slot and their video slots, with the status
//! transitions of the product: a bundle is created as `draft`, its account
//! and videos are configured, publishing it hands the account to the
//! account manager (`manager`: at once on real time, on the key's clock
//! otherwise), and the account and each video are then finalized or sent
//! back for corrections, which the manager makes.

use serde_json::{Value, json};
use uuid::Uuid;

use super::profile::COUNTRIES;
use super::{Handler, body, page, path};
use crate::operations::find;
use crate::sandbox::contract::{Failure, Location, Problem, validation, with_defaults};
use crate::sandbox::world::clock::{Desk, Work};
use crate::sandbox::world::manager;
use crate::sandbox::world::state::{Bundle, MAX_OWNED, Object, Tenant, object, price, stamp, str_of};
use crate::sandbox::world::transitions::{account_to, post_video, set, sync_account_status, touch, video_to};
use crate::sandbox::world::vocabulary::{Call, Effects, Reply};

/// The operations this module answers, and how.
pub(super) const HANDLERS: &[(&str, Handler)] = &[
    ("listBundles", list_bundles),
    ("createBundle", create_bundle),
    ("createBundlesBulk", create_bundles_bulk),
    ("getBundle", get_bundle),
    ("updateBundle", update_bundle),
    ("getBundlePublishReadiness", get_bundle_publish_readiness),
    ("publishBundle", publish_bundle),
    ("unpublishBundle", unpublish_bundle),
    ("addVideoSlots", add_video_slots_or_add_edit_slots),
    ("addEditSlots", add_video_slots_or_add_edit_slots),
    ("getBundleAccount", get_bundle_account),
    ("configureBundleAccount", configure_bundle_account),
    (
        "requestBundleAccountCorrections",
        request_bundle_account_corrections_or_finalize_bundle_account,
    ),
    (
        "finalizeBundleAccount",
        request_bundle_account_corrections_or_finalize_bundle_account,
    ),
    ("listBundleVideos", list_bundle_videos),
    ("getBundleVideo", get_bundle_video),
    ("configureBundleVideo", configure_bundle_video),
    ("patchBundleVideo", patch_bundle_video),
    ("batchConfigureBundleVideos", batch_configure_bundle_videos),
    ("importBundleVideosCsv", import_bundle_videos_csv),
    ("publishAllBundleVideos", publish_all_bundle_videos),
    ("publishBundleVideo", publish_bundle_video),
    ("resetBundleVideo", reset_bundle_video),
    ("unscheduleBundleVideo", unschedule_bundle_video),
    (
        "finalizeBundleVideo",
        finalize_bundle_video_or_request_bundle_video_corrections,
    ),
    (
        "requestBundleVideoCorrections",
        finalize_bundle_video_or_request_bundle_video_corrections,
    ),
    ("fixBundleVideoDownload", fix_bundle_video_download),
];

/// `listBundles`.
fn list_bundles(tenant: &mut Tenant, call: &Call, _fx: &mut Effects) -> Result<Reply, Failure> {
    let filters = ["status", "bundle_type", "platform", "external_ref", "account_status"];
    let items = tenant
        .bundles
        .iter()
        .filter(|b| {
            filters
                .iter()
                .all(|f| match call.query.get(*f).and_then(Value::as_str) {
                    Some(want) => str_of(&b.fields, f) == Some(want),
                    None => true,
                })
        })
        .map(|b| Value::Object(b.fields.clone()))
        .collect();
    Ok(page(call, items))
}

/// `createBundle`.
fn create_bundle(tenant: &mut Tenant, call: &Call, fx: &mut Effects) -> Result<Reply, Failure> {
    let fields = with_defaults(call.op, &body(call));
    let (bundle, charge) = create(tenant, call, fields, fx)?;
    let reply = json!({"data": full(&bundle), "credits_charged": charge.total});
    fx.charge = Some(charge);
    tenant.bundles.push(bundle);
    Ok(Reply::ok(call, reply))
}

/// `createBundlesBulk`.
fn create_bundles_bulk(tenant: &mut Tenant, call: &Call, fx: &mut Effects) -> Result<Reply, Failure> {
    bulk(tenant, call, fx)
}

/// `getBundle`.
fn get_bundle(tenant: &mut Tenant, call: &Call, _fx: &mut Effects) -> Result<Reply, Failure> {
    let id = path(call, "id");
    Ok(Reply::data(call, full(tenant.bundle(id)?)))
}

/// `updateBundle`.
fn update_bundle(tenant: &mut Tenant, call: &Call, _fx: &mut Effects) -> Result<Reply, Failure> {
    let id = path(call, "id");
    let patch = body(call);
    if let Some(r) = patch.get("external_ref").and_then(Value::as_str)
        && tenant
            .bundles
            .iter()
            .any(|b| str_of(&b.fields, "external_ref") == Some(r) && str_of(&b.fields, "id") != Some(id))
    {
        return Err(Failure::new(
            409,
            "DUPLICATE_EXTERNAL_REF",
            format!("Another bundle has external_ref `{r}`."),
        ));
    }
    let bundle = tenant.bundle(id)?;
    for (k, v) in patch {
        bundle.fields.insert(k, v);
    }
    touch(&mut bundle.fields, call.now);
    Ok(Reply::data(call, full(bundle)))
}

/// `getBundlePublishReadiness`.
fn get_bundle_publish_readiness(tenant: &mut Tenant, call: &Call, _fx: &mut Effects) -> Result<Reply, Failure> {
    let id = path(call, "id");
    let bundle = tenant.bundle(id)?;
    let issues = readiness(bundle);
    Ok(Reply::data(
        call,
        json!({"bundle_id": id, "ready": issues.is_empty(), "issues": issues}),
    ))
}

/// `publishBundle`.
fn publish_bundle(tenant: &mut Tenant, call: &Call, fx: &mut Effects) -> Result<Reply, Failure> {
    let id = path(call, "id");
    let (bundle, desk) = tenant.bundle_and_desk(id)?;
    if str_of(&bundle.fields, "status") == Some("published") {
        return Err(Failure::state("The bundle is already published."));
    }
    let issues = readiness(bundle);
    if !issues.is_empty() {
        return Err(
            Failure::new(409, "BUNDLE_NOT_READY", "The bundle is not ready to publish.")
                .details(json!({ "issues": issues })),
        );
    }
    set(&mut bundle.fields, "status", "published", call.now);
    bundle.fields.insert("published_at".into(), json!(stamp(call.now)));
    fx.emit("bundle.published", bundle_event(bundle));
    if let Some(account) = bundle.account.as_mut() {
        account_to(account, &bundle.fields, "published", call.now, fx);
        sync_account_status(bundle);
        let work = Work::AccountReview { bundle: id.to_owned() };
        manager::hand(bundle, desk, work, call.now, fx);
    }
    Ok(Reply::data(call, full(bundle)))
}

/// `unpublishBundle`.
fn unpublish_bundle(tenant: &mut Tenant, call: &Call, _fx: &mut Effects) -> Result<Reply, Failure> {
    let id = path(call, "id");
    let (bundle, desk) = tenant.bundle_and_desk(id)?;
    if str_of(&bundle.fields, "status") != Some("published") {
        return Err(Failure::state("Only a published bundle can be unpublished."));
    }
    if bundle.account.as_ref().and_then(|a| str_of(a, "status")) == Some("finalized") {
        return Err(Failure::state(
            "The bundle's account is finalized: it cannot be unpublished.",
        ));
    }
    set(&mut bundle.fields, "status", "draft", call.now);
    bundle.fields.insert("published_at".into(), Value::Null);
    manager::forget(desk, |b, _| b != id);
    if let Some(account) = bundle.account.as_mut()
        && matches!(
            str_of(account, "status"),
            Some("in_review" | "pending_corrections" | "published")
        )
    {
        set(account, "status", "configured", call.now);
    }
    for video in &mut bundle.videos {
        if str_of(video, "status") == Some("scheduled") {
            set(video, "status", "configured", call.now);
        }
    }
    sync_account_status(bundle);
    Ok(Reply::data(call, full(bundle)))
}

/// `addVideoSlots`, `addEditSlots`.
fn add_video_slots_or_add_edit_slots(tenant: &mut Tenant, call: &Call, fx: &mut Effects) -> Result<Reply, Failure> {
    let id = path(call, "id");
    let quantity = body(call).get("quantity").and_then(Value::as_u64).unwrap_or(0);
    let videos = call.op.id == "addVideoSlots";
    let bundle = tenant.bundle(id)?;
    if videos && str_of(&bundle.fields, "bundle_type") == Some("account_only") {
        return Err(Failure::rule(
            "quantity",
            "cannot add video slots to an account_only bundle",
        ));
    }
    if videos && bundle.videos.len() + quantity as usize > MAX_OWNED {
        return Err(Failure::limit(call.op, "video slots per bundle"));
    }
    let item = if videos { "video_slot" } else { "edit_slot" };
    let unit = price(item);
    let charge = tenant.debit(
        &[(item, unit * quantity as f64)],
        call.op.summary,
        call.dry_run,
        call.now,
    )?;
    let bundle = tenant.bundle(id)?;
    if videos {
        for _ in 0..quantity {
            let position = bundle.videos.len() + 1;
            bundle.videos.push(new_video(position, call));
        }
        let n = bundle.videos.len();
        bundle.fields.insert("videos_quantity".into(), json!(n));
    } else {
        let n = bundle.fields.get("edits_quantity").and_then(Value::as_u64).unwrap_or(0) + quantity;
        bundle.fields.insert("edits_quantity".into(), json!(n));
    }
    touch(&mut bundle.fields, call.now);
    let data = json!({"bundle": full(bundle), "added": quantity, "credits_charged": charge.total});
    fx.charge = Some(charge);
    Ok(Reply::data(call, data))
}

/// `getBundleAccount`.
fn get_bundle_account(tenant: &mut Tenant, call: &Call, _fx: &mut Effects) -> Result<Reply, Failure> {
    let id = path(call, "id");
    Ok(Reply::data(call, Value::Object(slot(tenant.bundle(id)?)?.clone())))
}

/// `configureBundleAccount`.
fn configure_bundle_account(tenant: &mut Tenant, call: &Call, fx: &mut Effects) -> Result<Reply, Failure> {
    let id = path(call, "id");
    let config = body(call);
    if config
        .get("username")
        .and_then(Value::as_str)
        .is_some_and(|u| u.ends_with('.'))
    {
        return Err(Failure::rule("username", "cannot end with a dot"));
    }
    let bundle = tenant.bundle(id)?;
    let fields = bundle.fields.clone();
    let account = slot(bundle)?;
    let was = configurable("An account", account)?;
    for (k, v) in config {
        account.insert(k, v);
    }
    account_to(account, &fields, "configured", call.now, fx);
    if was == "pending_corrections" {
        account_to(account, &fields, "in_review", call.now, fx);
    }
    let data = Value::Object(account.clone());
    sync_account_status(bundle);
    Ok(Reply::data(call, data))
}

/// `requestBundleAccountCorrections`, `finalizeBundleAccount`.
fn request_bundle_account_corrections_or_finalize_bundle_account(
    tenant: &mut Tenant,
    call: &Call,
    fx: &mut Effects,
) -> Result<Reply, Failure> {
    let id = path(call, "id");
    let (bundle, desk) = tenant.bundle_and_desk(id)?;
    let fields = bundle.fields.clone();
    let account = slot(bundle)?;
    if str_of(account, "status") != Some("in_review") {
        return Err(Failure::state("The account is not in review."));
    }
    let to = if call.op.id == "finalizeBundleAccount" {
        "finalized"
    } else {
        account.insert("corrections".into(), Value::Object(body(call)));
        "pending_corrections"
    };
    account_to(account, &fields, to, call.now, fx);
    sync_account_status(bundle);
    if to == "pending_corrections" {
        let work = Work::AccountCorrected { bundle: id.to_owned() };
        manager::hand(bundle, desk, work, call.now, fx);
    }
    let account = slot(bundle)?.clone();
    if to == "finalized" {
        let account_id = str_of(&account, "id").unwrap_or_default().to_owned();
        bundle.fields.insert("account_id".into(), json!(account_id));
        let mut delivered = account.clone();
        delivered.insert("status".into(), json!("active"));
        delivered.insert("owned".into(), json!(true));
        delivered.insert("bundle_id".into(), json!(id));
        delivered.insert("delivered_at".into(), json!(stamp(call.now)));
        tenant.accounts.push(delivered);
    }
    Ok(Reply::data(call, Value::Object(account)))
}

/// `listBundleVideos`.
fn list_bundle_videos(tenant: &mut Tenant, call: &Call, _fx: &mut Effects) -> Result<Reply, Failure> {
    let id = path(call, "id");
    let videos = tenant
        .bundle(id)?
        .videos
        .iter()
        .cloned()
        .map(Value::Object)
        .collect::<Vec<_>>();
    Ok(Reply::data(call, videos))
}

/// `getBundleVideo`.
fn get_bundle_video(tenant: &mut Tenant, call: &Call, _fx: &mut Effects) -> Result<Reply, Failure> {
    let id = path(call, "id");
    let position = position(call);
    Ok(Reply::data(
        call,
        Value::Object(video(tenant.bundle(id)?, position)?.clone()),
    ))
}

/// `configureBundleVideo`.
fn configure_bundle_video(tenant: &mut Tenant, call: &Call, fx: &mut Effects) -> Result<Reply, Failure> {
    let id = path(call, "id");
    let position = position(call);
    let config = body(call);
    media_rule(&config)?;
    let bundle = tenant.bundle(id)?;
    let fields = bundle.fields.clone();
    let v = video(bundle, position)?;
    configure_video(v, &fields, config, call, fx)?;
    Ok(Reply::data(call, Value::Object(v.clone())))
}

/// `patchBundleVideo`.
fn patch_bundle_video(tenant: &mut Tenant, call: &Call, _fx: &mut Effects) -> Result<Reply, Failure> {
    let id = path(call, "id");
    let position = position(call);
    let bundle = tenant.bundle(id)?;
    let v = video(bundle, position)?;
    for (k, val) in body(call) {
        v.insert(k, val);
    }
    touch(v, call.now);
    Ok(Reply::data(call, Value::Object(v.clone())))
}

/// `batchConfigureBundleVideos`.
fn batch_configure_bundle_videos(tenant: &mut Tenant, call: &Call, fx: &mut Effects) -> Result<Reply, Failure> {
    let id = path(call, "id");
    let configs: Vec<Object> = body(call)
        .get("videos")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|v| object(v.clone()))
        .collect();
    for (i, config) in configs.iter().enumerate() {
        media_rule(config).map_err(|_| {
            Failure::rule(
                &format!("videos[{i}]"),
                "needs video_url for a video, carousel_images for a carousel",
            )
        })?;
    }
    let bundle = tenant.bundle(id)?;
    let configured = fill_slots(bundle, configs, call, fx)?;
    Ok(Reply::data(
        call,
        json!({"configured": configured.len(), "videos": configured}),
    ))
}

/// `importBundleVideosCsv`.
fn import_bundle_videos_csv(tenant: &mut Tenant, call: &Call, fx: &mut Effects) -> Result<Reply, Failure> {
    let id = path(call, "id");
    let (bundle, desk) = tenant.bundle_and_desk(id)?;
    import_csv(bundle, desk, call, fx)
}

/// `publishAllBundleVideos`.
fn publish_all_bundle_videos(tenant: &mut Tenant, call: &Call, fx: &mut Effects) -> Result<Reply, Failure> {
    let id = path(call, "id");
    let (bundle, desk) = tenant.bundle_and_desk(id)?;
    published_bundle(bundle)?;
    let mut published = Vec::new();
    for at in configured_videos(bundle) {
        publish_video(bundle, desk, at, call, fx);
        published.push(Value::Object(bundle.videos[at].clone()));
    }
    Ok(Reply::data(
        call,
        json!({"published": published.len(), "videos": published}),
    ))
}

/// `publishBundleVideo`.
fn publish_bundle_video(tenant: &mut Tenant, call: &Call, fx: &mut Effects) -> Result<Reply, Failure> {
    let id = path(call, "id");
    let position = position(call);
    let (bundle, desk) = tenant.bundle_and_desk(id)?;
    published_bundle(bundle)?;
    if str_of(video(bundle, position)?, "status") != Some("configured") {
        return Err(Failure::state("Only a configured video can be published."));
    }
    publish_video(bundle, desk, position - 1, call, fx);
    Ok(Reply::data(call, Value::Object(video(bundle, position)?.clone())))
}

/// `resetBundleVideo`.
fn reset_bundle_video(tenant: &mut Tenant, call: &Call, _fx: &mut Effects) -> Result<Reply, Failure> {
    let id = path(call, "id");
    let position = position(call);
    let (bundle, desk) = tenant.bundle_and_desk(id)?;
    let v = video(bundle, position)?;
    if !matches!(
        str_of(v, "status"),
        Some("configured" | "scheduled" | "pending_corrections")
    ) {
        return Err(Failure::state(
            "Only a configured, scheduled or corrected video can be reset.",
        ));
    }
    manager::forget(desk, |b, p| b != id || p != Some(position));
    let fresh = new_video(position, call);
    let keep_id = v.get("id").cloned();
    *v = fresh;
    if let Some(keep) = keep_id {
        v.insert("id".into(), keep);
    }
    Ok(Reply::data(call, Value::Object(v.clone())))
}

/// `unscheduleBundleVideo`.
fn unschedule_bundle_video(tenant: &mut Tenant, call: &Call, _fx: &mut Effects) -> Result<Reply, Failure> {
    let id = path(call, "id");
    let position = position(call);
    let (bundle, desk) = tenant.bundle_and_desk(id)?;
    let v = video(bundle, position)?;
    if str_of(v, "status") != Some("scheduled") {
        return Err(Failure::state("Only a scheduled video can be unscheduled."));
    }
    set(v, "status", "configured", call.now);
    manager::forget(desk, |b, p| b != id || p != Some(position));
    Ok(Reply::data(call, Value::Object(v.clone())))
}

/// `finalizeBundleVideo`, `requestBundleVideoCorrections`.
fn finalize_bundle_video_or_request_bundle_video_corrections(
    tenant: &mut Tenant,
    call: &Call,
    fx: &mut Effects,
) -> Result<Reply, Failure> {
    let id = path(call, "id");
    let position = position(call);
    let (bundle, desk) = tenant.bundle_and_desk(id)?;
    let fields = bundle.fields.clone();
    let v = video(bundle, position)?;
    if str_of(v, "status") != Some("in_review") {
        return Err(Failure::state("The video is not in review."));
    }
    // Whatever the manager would do next to it (an automatic finalization) is void.
    manager::forget(desk, |b, p| b != id || p != Some(position));
    if call.op.id == "finalizeBundleVideo" {
        video_to(v, &fields, "finalized", call.now, fx);
    } else {
        v.insert("corrections".into(), Value::Object(body(call)));
        video_to(v, &fields, "pending_corrections", call.now, fx);
        let work = Work::VideoCorrected {
            bundle: id.to_owned(),
            position,
        };
        manager::hand(bundle, desk, work, call.now, fx);
    }
    Ok(Reply::data(call, Value::Object(video(bundle, position)?.clone())))
}

/// `fixBundleVideoDownload`.
fn fix_bundle_video_download(tenant: &mut Tenant, call: &Call, fx: &mut Effects) -> Result<Reply, Failure> {
    let id = path(call, "id");
    let position = position(call);
    let (bundle, desk) = tenant.bundle_and_desk(id)?;
    let v = video(bundle, position)?;
    if v.get("download_issue").and_then(Value::as_bool) != Some(true) {
        return Err(Failure::state("The video does not have a download issue."));
    }
    for (k, val) in body(call) {
        v.insert(k, val);
    }
    v.insert("download_issue".into(), json!(false));
    touch(v, call.now);
    // The manager was waiting for this fix: the held step is done now.
    if let Some(work) = manager::take_held(desk, id, position) {
        manager::perform(bundle, desk, work, call.now, fx);
    }
    Ok(Reply::data(call, Value::Object(video(bundle, position)?.clone())))
}

/// A new bundle from a create's fields (defaults applied), debited.
fn create(
    tenant: &mut Tenant,
    call: &Call,
    mut fields: Object,
    fx: &mut Effects,
) -> Result<(Bundle, crate::sandbox::world::state::Charge), Failure> {
    if tenant.bundles.len() >= MAX_OWNED {
        return Err(Failure::limit(call.op, "bundles"));
    }
    check_create(tenant, &fields)?;
    let videos_only = str_of(&fields, "bundle_type") == Some("videos_only");
    let videos = fields.get("videos_quantity").and_then(Value::as_u64).unwrap_or(0);
    let platform = str_of(&fields, "platform").unwrap_or("tiktok").to_owned();
    let charge = tenant.debit(&bundle_items(&fields), "Bundle created", call.dry_run, call.now)?;
    let id = Uuid::new_v4().to_string();
    let now = stamp(call.now);
    let account = (!videos_only).then(|| {
        object(json!({
            "id": Uuid::new_v4(),
            "bundle_id": id,
            "platform": platform,
            "country": fields.get("country").cloned().unwrap_or(Value::Null),
            "status": "pending_configuration",
            "username": null,
            "updated_at": now,
        }))
    });
    fields.insert("id".into(), json!(id));
    fields.insert("status".into(), json!("draft"));
    fields.insert(
        "account_status".into(),
        account.as_ref().map_or(Value::Null, |_| json!("pending_configuration")),
    );
    fields.entry("account_id").or_insert(Value::Null);
    fields.insert("credits_charged".into(), json!(charge.total));
    fields.insert("published_at".into(), Value::Null);
    fields.insert("created_at".into(), json!(now));
    fields.insert("updated_at".into(), json!(now));
    let bundle = Bundle {
        videos: (1..=videos as usize).map(|p| new_video(p, call)).collect(),
        fields,
        account,
    };
    fx.emit("bundle.created", bundle_event(&bundle));
    Ok((bundle, charge))
}

/// The business rules of a new bundle beyond its schema: the country and
/// the account of a `videos_only` bundle, slot counts by type, and a free
/// `external_ref`.
fn check_create(tenant: &Tenant, fields: &Object) -> Result<(), Failure> {
    let kind = str_of(fields, "bundle_type").unwrap_or_default();
    let mut problems = Vec::new();
    let rule = |field: &str, message: &str| Problem {
        field: field.into(),
        location: Location::Body,
        message: message.into(),
        unknown: false,
    };
    let videos_only = kind == "videos_only";
    match str_of(fields, "country") {
        None if !videos_only => problems.push(rule("country", "is required unless bundle_type is videos_only")),
        Some(c) if !COUNTRIES.iter().any(|(code, _)| *code == c) => {
            problems.push(rule("country", "is not a country the sandbox sells; see listCountries"))
        }
        _ => {}
    }
    let videos = fields.get("videos_quantity").and_then(Value::as_u64).unwrap_or(0);
    if videos_only {
        match str_of(fields, "account_id") {
            None => problems.push(rule("account_id", "is required for a videos_only bundle")),
            Some(a) if !tenant.accounts.iter().any(|acc| str_of(acc, "id") == Some(a)) => {
                problems.push(rule("account_id", "is not one of your delivered accounts"))
            }
            Some(_) => {}
        }
        if videos == 0 {
            problems.push(rule("videos_quantity", "must be at least 1 for a videos_only bundle"));
        }
    }
    if kind == "account_only" && videos > 0 {
        problems.push(rule("videos_quantity", "must be 0 for an account_only bundle"));
    }
    if !problems.is_empty() {
        return Err(validation(problems));
    }
    if let Some(r) = str_of(fields, "external_ref")
        && tenant
            .bundles
            .iter()
            .any(|b| str_of(&b.fields, "external_ref") == Some(r))
    {
        return Err(Failure::new(
            409,
            "DUPLICATE_EXTERNAL_REF",
            format!("A bundle with external_ref `{r}` exists."),
        ));
    }
    Ok(())
}

/// What a new bundle costs, item by item (free items left out).
fn bundle_items(fields: &Object) -> Vec<(&'static str, f64)> {
    let videos_only = str_of(fields, "bundle_type") == Some("videos_only");
    let videos = fields.get("videos_quantity").and_then(Value::as_u64).unwrap_or(0);
    let platform = str_of(fields, "platform").unwrap_or("tiktok");
    let mut items: Vec<(&'static str, f64)> = Vec::new();
    if !videos_only {
        let item = if platform == "instagram" {
            "account_instagram"
        } else {
            "account"
        };
        items.push((item, price(item)));
    }
    items.push(("video_slot", price("video_slot") * videos as f64));
    let edits = fields.get("edits_quantity").and_then(Value::as_u64).unwrap_or(0);
    items.push(("edit_slot", price("edit_slot") * edits as f64));
    for (flag, item) in [
        ("wants_niche_warming", "niche_warming"),
        ("wants_deep_warming", "deep_warming"),
        ("wants_moderation", "moderation"),
    ] {
        if fields.get(flag).and_then(Value::as_bool) == Some(true) {
            items.push((item, price(item)));
        }
    }
    items.retain(|(_, c)| *c > 0.0);
    items
}

fn bulk(tenant: &mut Tenant, call: &Call, fx: &mut Effects) -> Result<Reply, Failure> {
    let request = with_defaults(call.op, &body(call));
    let platforms: Vec<String> = request
        .get("platforms")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect();
    let accounts = request.get("accounts_count").and_then(Value::as_u64).unwrap_or(0);
    let upload_accounts = request
        .get("upload_accounts_count")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    if upload_accounts > accounts {
        return Err(Failure::rule("upload_accounts_count", "cannot exceed accounts_count"));
    }
    let per_account = request.get("videos_per_account").and_then(Value::as_u64).unwrap_or(0);
    let create_bundle = find("createBundle")
        .ok_or_else(|| Failure::new(500, "INTERNAL_ERROR", "createBundle is not in the contract"))?;
    // Everything or nothing: the bundles are made on a copy, which replaces
    // the key's state only when all of them could be paid for.
    let mut scratch = tenant.clone();
    let mut made = Vec::new();
    let mut total = 0.0;
    let mut breakdown = Object::new();
    for platform in &platforms {
        for n in 0..accounts {
            let mut fields = Object::new();
            let with_videos = n < upload_accounts && per_account > 0;
            fields.insert(
                "bundle_type".into(),
                json!(if with_videos {
                    "account_and_videos"
                } else {
                    "account_only"
                }),
            );
            fields.insert("platform".into(), json!(platform));
            fields.insert(
                "videos_quantity".into(),
                json!(if with_videos { per_account } else { 0 }),
            );
            for k in [
                "country",
                "wants_niche_warming",
                "wants_deep_warming",
                "wants_moderation",
                "niche_warming_instructions",
                "moderation_notice",
                "auto_finalize_videos",
            ] {
                if let Some(v) = request.get(k) {
                    fields.insert(k.into(), v.clone());
                }
            }
            if let Some(r) = str_of(&request, "external_ref") {
                fields.insert("external_ref".into(), json!(format!("{r}-{platform}-{}", n + 1)));
            }
            let fields = with_defaults(create_bundle, &fields);
            let (bundle, charge) = create(&mut scratch, call, fields, fx)?;
            total += charge.total;
            if let Value::Object(b) = &charge.breakdown {
                for (k, v) in b {
                    let e = breakdown.entry(k.clone()).or_insert(json!(0.0));
                    *e = json!(e.as_f64().unwrap_or(0.0) + v.as_f64().unwrap_or(0.0));
                }
            }
            made.push(full(&bundle));
            scratch.bundles.push(bundle);
        }
    }
    *tenant = scratch;
    fx.charge = Some(crate::sandbox::world::state::Charge {
        total,
        breakdown: Value::Object(breakdown),
        sufficient: true,
    });
    Ok(Reply::ok(
        call,
        json!({"data": {"bundles": made, "count": made.len()}, "credits_charged": total}),
    ))
}

/// A bundle with its account slot and video slots.
fn full(bundle: &Bundle) -> Value {
    let mut out = bundle.fields.clone();
    out.insert(
        "account".into(),
        bundle.account.clone().map_or(Value::Null, Value::Object),
    );
    out.insert(
        "videos".into(),
        Value::Array(bundle.videos.iter().cloned().map(Value::Object).collect()),
    );
    Value::Object(out)
}

fn readiness(bundle: &Bundle) -> Vec<Value> {
    let mut issues = Vec::new();
    if let Some(account) = &bundle.account
        && str_of(account, "status") == Some("pending_configuration")
    {
        issues.push(json!({"code": "ACCOUNT_NOT_CONFIGURED", "message": "Configure the account first (configureBundleAccount)."}));
    }
    issues
}

fn published_bundle(bundle: &Bundle) -> Result<(), Failure> {
    if str_of(&bundle.fields, "status") != Some("published") {
        return Err(Failure::state("The bundle is not published: publish it first."));
    }
    Ok(())
}

fn slot(bundle: &mut Bundle) -> Result<&mut Object, Failure> {
    bundle
        .account
        .as_mut()
        .ok_or_else(|| Failure::not_found("The bundle's account"))
}

/// The `position` path parameter (the contract checked it is an integer);
/// 0, which no video has, when it is out of range.
fn position(call: &Call) -> usize {
    call.path
        .get("position")
        .and_then(Value::as_u64)
        .and_then(|p| usize::try_from(p).ok())
        .unwrap_or(0)
}

fn video(bundle: &mut Bundle, position: usize) -> Result<&mut Object, Failure> {
    position
        .checked_sub(1)
        .and_then(|i| bundle.videos.get_mut(i))
        .ok_or_else(|| Failure::not_found("Video slot"))
}

fn new_video(position: usize, call: &Call) -> Object {
    object(json!({
        "id": Uuid::new_v4(),
        "position": position,
        "status": "pending_configuration",
        "download_issue": false,
        "platform_url": null,
        "updated_at": stamp(call.now),
    }))
}

fn bundle_event(bundle: &Bundle) -> Value {
    let f = &bundle.fields;
    json!({
        "bundle_id": f.get("id"),
        "external_ref": f.get("external_ref"),
        "status": f.get("status"),
        "platform": f.get("platform"),
        "bundle_type": f.get("bundle_type"),
    })
}

/// A video needs a `video_url`, a carousel `carousel_images`.
fn media_rule(config: &Object) -> Result<(), Failure> {
    match str_of(config, "video_type") {
        Some("video") if !config.contains_key("video_url") => {
            Err(Failure::rule("video_url", "is required for a video"))
        }
        Some("carousel") if !config.contains_key("carousel_images") => {
            Err(Failure::rule("carousel_images", "is required for a carousel"))
        }
        _ => Ok(()),
    }
}

/// The status of an account slot or video slot that may be configured (not
/// yet under review or final); a 409 naming `what` otherwise.
fn configurable(what: &str, slot: &Object) -> Result<String, Failure> {
    let was = str_of(slot, "status").unwrap_or_default().to_owned();
    if matches!(
        was.as_str(),
        "pending_configuration" | "configured" | "pending_corrections"
    ) {
        Ok(was)
    } else {
        Err(Failure::state(format!(
            "{what} in status `{was}` cannot be configured."
        )))
    }
}

fn configure_video(
    video: &mut Object,
    bundle: &Object,
    config: Object,
    call: &Call,
    fx: &mut Effects,
) -> Result<(), Failure> {
    let was = configurable("A video", video)?;
    // The sandbox's way to exercise fixBundleVideoDownload: a media URL
    // holding `broken` is flagged as a failed download.
    let broken = config
        .get("video_url")
        .and_then(Value::as_str)
        .is_some_and(|u| u.contains("broken"))
        || config
            .get("carousel_images")
            .and_then(Value::as_array)
            .is_some_and(|i| i.iter().filter_map(Value::as_str).any(|u| u.contains("broken")));
    for (k, v) in config {
        video.insert(k, v);
    }
    video.insert("download_issue".into(), json!(broken));
    video_to(video, bundle, "configured", call.now, fx);
    if was == "pending_corrections" {
        video_to(video, bundle, "in_review", call.now, fx);
    }
    Ok(())
}

/// Configures slots with `configs`: at its `position` when it gives one
/// (a batch), else the next free slot in order (a CSV import).
fn fill_slots(bundle: &mut Bundle, configs: Vec<Object>, call: &Call, fx: &mut Effects) -> Result<Vec<Value>, Failure> {
    let fields = bundle.fields.clone();
    let mut free = bundle
        .videos
        .iter()
        .enumerate()
        .filter(|(_, v)| matches!(str_of(v, "status"), Some("pending_configuration")))
        .map(|(i, _)| i)
        .collect::<Vec<_>>()
        .into_iter();
    let mut out = Vec::new();
    for (n, mut config) in configs.into_iter().enumerate() {
        let slot = match config.remove("position").and_then(|p| p.as_u64()) {
            Some(p) => (p as usize)
                .checked_sub(1)
                .filter(|i| *i < bundle.videos.len())
                .ok_or_else(|| Failure::rule(&format!("videos[{n}].position"), "is not a video slot of this bundle"))?,
            None => free.next().ok_or_else(|| {
                Failure::rule(
                    "file",
                    format!("has more rows than the bundle's {} free video slots", n),
                )
            })?,
        };
        let v = &mut bundle.videos[slot];
        configure_video(v, &fields, config, call, fx)?;
        out.push(Value::Object(v.clone()));
    }
    Ok(out)
}

/// The indices of the bundle's configured videos.
fn configured_videos(bundle: &Bundle) -> Vec<usize> {
    (0..bundle.videos.len())
        .filter(|&i| str_of(&bundle.videos[i], "status") == Some("configured"))
        .collect()
}

/// Publishes the video at index `at`: `scheduled` for a later
/// `target_publish_date` (by the key's clock), with its posting handed to
/// the manager; posted at once otherwise, with its review handed over.
fn publish_video(bundle: &mut Bundle, desk: &mut Desk, at: usize, call: &Call, fx: &mut Effects) {
    let fields = bundle.fields.clone();
    let Some(video) = bundle.videos.get_mut(at) else {
        return;
    };
    let today = call.now.format("%Y-%m-%d").to_string();
    let later = str_of(video, "target_publish_date").is_some_and(|d| d > today.as_str());
    let (bundle_id, position) = (str_of(&fields, "id").unwrap_or_default().to_owned(), at + 1);
    let work = if later {
        video_to(video, &fields, "scheduled", call.now, fx);
        Work::VideoPost {
            bundle: bundle_id,
            position,
        }
    } else {
        post_video(video, &fields, call.now, fx);
        Work::VideoReview {
            bundle: bundle_id,
            position,
        }
    };
    manager::hand(bundle, desk, work, call.now, fx);
}

/// `importBundleVideosCsv`: one row per video, a header row naming the
/// `configureBundleVideo` fields (`carousel_images` and the other lists
/// separated by `|`). Each row is checked against that operation's schema;
/// the valid rows fill the free slots.
fn import_csv(bundle: &mut Bundle, desk: &mut Desk, call: &Call, fx: &mut Effects) -> Result<Reply, Failure> {
    let upload = call.upload.as_ref();
    let text = upload
        .and_then(|u| u.file.as_ref())
        .and_then(|f| f.text.clone())
        .ok_or_else(|| Failure::rule("file", "must be a UTF-8 CSV file of at most 1 MiB"))?;
    let auto_publish = upload
        .and_then(|u| u.fields.get("auto_publish"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let configure = find("configureBundleVideo")
        .ok_or_else(|| Failure::new(500, "INTERNAL_ERROR", "configureBundleVideo is not in the contract"))?;
    let schema = configure.body.map(|b| b.schema_json).unwrap_or("true");
    let props = crate::check::schema::parsed(schema);
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| Failure::rule("file", format!("has no readable header row: {e}")))?
        .clone();
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    for (n, record) in reader.records().enumerate() {
        let line = n + 2;
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                errors.push(json!({"row": line, "message": e.to_string()}));
                continue;
            }
        };
        let mut row = Object::new();
        for (name, cell) in headers.iter().zip(record.iter()) {
            if cell.is_empty() {
                continue;
            }
            let prop = props
                .get("properties")
                .and_then(|p| p.get(name))
                .cloned()
                .unwrap_or(Value::Null);
            let value = if prop.get("type").and_then(Value::as_str) == Some("array") {
                Value::Array(cell.split('|').map(|s| json!(s.trim())).collect())
            } else {
                crate::check::schema::coerce(&prop, cell)
            };
            row.insert(name.to_owned(), value);
        }
        let row_value = Value::Object(row.clone());
        match crate::check::schema::violations(configure, "body", schema, &row_value) {
            Ok(v) if v.is_empty() => match media_rule(&row) {
                Ok(()) => rows.push(row),
                Err(f) => errors.push(json!({"row": line, "message": f.message})),
            },
            Ok(v) => errors.push(json!({
                "row": line,
                "message": v.iter().map(|p| format!("{}: {}", p.path.join("."), p.message)).collect::<Vec<_>>().join("; "),
            })),
            Err(e) => errors.push(json!({"row": line, "message": e.to_string()})),
        }
    }
    let configured = fill_slots(bundle, rows, call, fx)?;
    let mut published = 0;
    if auto_publish && str_of(&bundle.fields, "status") == Some("published") {
        for at in configured_videos(bundle) {
            publish_video(bundle, desk, at, call, fx);
            published += 1;
        }
    }
    Ok(Reply::data(
        call,
        json!({"configured": configured.len(), "published": published, "errors": errors, "videos": configured}),
    ))
}
