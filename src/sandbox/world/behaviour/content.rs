//! Uploads and comment tasks.

use chrono::Duration;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{Handler, body, page, path};
use crate::sandbox::contract::Failure;
use crate::sandbox::world::state::{MAX_OWNED, Object, Tenant, keep, object, price, stamp, str_of};
use crate::sandbox::world::vocabulary::{Call, Effects, Reply};

/// The operations this module answers, and how.
pub(super) const HANDLERS: &[(&str, Handler)] = &[
    ("uploadVideo", upload_video_or_upload_image),
    ("uploadImage", upload_video_or_upload_image),
    ("uploadVideoDirect", upload_video_direct_or_upload_image_direct),
    ("uploadImageDirect", upload_video_direct_or_upload_image_direct),
    ("uploadImageFromUrl", upload_image_from_url),
    ("listCommentTasks", list_comment_tasks),
    ("createCommentTasks", create_comment_tasks),
    ("getCommentTask", get_comment_task),
    ("deleteCommentTask", delete_comment_task),
    ("approveCommentTask", approve_comment_task_or_dispute_comment_task),
    ("disputeCommentTask", approve_comment_task_or_dispute_comment_task),
    ("listCommentTaskVerifications", list_comment_task_verifications),
];

/// `uploadVideo`, `uploadImage`.
fn upload_video_or_upload_image(tenant: &mut Tenant, call: &Call, _fx: &mut Effects) -> Result<Reply, Failure> {
    let request = crate::sandbox::contract::with_defaults(call.op, &body(call));
    own_bundle(tenant, &request, false)?;
    let upload_id = Uuid::new_v4();
    let filename = str_of(&request, "filename").unwrap_or("upload").to_owned();
    let mut upload = request.clone();
    upload.insert("id".into(), json!(upload_id));
    upload.insert(
        "upload_url".into(),
        json!(format!("{}/_sandbox/uploads/{upload_id}", call.base_url)),
    );
    upload.insert("public_url".into(), json!(public_url(call, upload_id, &filename)));
    upload.insert("expires_at".into(), json!(stamp(call.now + Duration::hours(1))));
    upload.insert("created_at".into(), json!(stamp(call.now)));
    keep(&mut tenant.uploads, upload.clone());
    Ok(Reply::data(call, Value::Object(upload)))
}

/// `uploadVideoDirect`, `uploadImageDirect`.
fn upload_video_direct_or_upload_image_direct(
    tenant: &mut Tenant,
    call: &Call,
    fx: &mut Effects,
) -> Result<Reply, Failure> {
    let upload = call
        .upload
        .as_ref()
        .ok_or_else(|| Failure::rule("file", "is required"))?;
    let file = upload
        .file
        .as_ref()
        .ok_or_else(|| Failure::rule("file", "is required"))?;
    own_bundle(tenant, &upload.fields, false)?;
    let image = call.op.id == "uploadImageDirect";
    let content_type = file
        .content_type
        .clone()
        .unwrap_or_else(|| "application/octet-stream".into());
    let wanted = if image { "image/" } else { "video/" };
    // The contract states no content type for the file part (TokPortal's
    // own CLI sends application/octet-stream): not refused, only noted.
    if !content_type.starts_with(wanted) {
        fx.warn(format!(
            "the file part is sent as {content_type}; a {wanted}* type would describe it"
        ));
    }
    if file.size == 0 {
        return Err(Failure::rule("file", "is empty"));
    }
    let upload_id = Uuid::new_v4();
    let filename = file.filename.clone().unwrap_or_else(|| "upload".into());
    let mut record = upload.fields.clone();
    record.insert("id".into(), json!(upload_id));
    record.insert("filename".into(), json!(filename));
    record.insert("content_type".into(), json!(content_type));
    record.insert("size".into(), json!(file.size));
    record.insert("sha256".into(), json!(file.sha256));
    record.insert("url".into(), json!(public_url(call, upload_id, &filename)));
    record.insert("created_at".into(), json!(stamp(call.now)));
    keep(&mut tenant.uploads, record.clone());
    Ok(Reply::data(call, Value::Object(record)))
}

/// `uploadImageFromUrl`.
fn upload_image_from_url(tenant: &mut Tenant, call: &Call, _fx: &mut Effects) -> Result<Reply, Failure> {
    let request = crate::sandbox::contract::with_defaults(call.op, &body(call));
    own_bundle(tenant, &request, true)?;
    let upload_id = Uuid::new_v4();
    let mut record = request.clone();
    record.insert("id".into(), json!(upload_id));
    record.insert("source_url".into(), request.get("url").cloned().unwrap_or(Value::Null));
    record.insert("url".into(), json!(public_url(call, upload_id, "image.jpg")));
    record.insert("created_at".into(), json!(stamp(call.now)));
    keep(&mut tenant.uploads, record.clone());
    Ok(Reply::data(call, Value::Object(record)))
}

/// `listCommentTasks`.
fn list_comment_tasks(tenant: &mut Tenant, call: &Call, _fx: &mut Effects) -> Result<Reply, Failure> {
    Ok(page(
        call,
        tenant.comments.iter().rev().cloned().map(Value::Object).collect(),
    ))
}

/// `createCommentTasks`.
fn create_comment_tasks(tenant: &mut Tenant, call: &Call, fx: &mut Effects) -> Result<Reply, Failure> {
    let request = body(call);
    let tasks: Vec<Object> = match request.get("tasks").and_then(Value::as_array) {
        Some(tasks) => tasks.iter().map(|t| object(t.clone())).collect(),
        None => vec![request.clone()],
    };
    if tenant.comments.len() + tasks.len() > MAX_OWNED {
        return Err(Failure::limit(call.op, "comment tasks"));
    }
    for (i, task) in tasks.iter().enumerate() {
        let account = str_of(task, "saved_account_id").unwrap_or_default();
        if !tenant.accounts.iter().any(|a| str_of(a, "id") == Some(account)) {
            let field = if request.contains_key("tasks") {
                format!("tasks[{i}].saved_account_id")
            } else {
                "saved_account_id".into()
            };
            return Err(Failure::rule(&field, "is not one of your delivered accounts"));
        }
    }
    let cost = price("comment_task") * tasks.len() as f64;
    let charge = tenant.debit(
        &[("comment_task", cost)],
        "Comment tasks created",
        call.dry_run,
        call.now,
    )?;
    let mut made = Vec::new();
    for mut task in tasks {
        task.insert("id".into(), json!(Uuid::new_v4()));
        // The sandbox posts and confirms at once, so approve and dispute can follow.
        task.insert("status".into(), json!("manually_confirmed"));
        task.insert("created_at".into(), json!(stamp(call.now)));
        task.insert("updated_at".into(), json!(stamp(call.now)));
        task.insert(
            "verifications".into(),
            json!([
                {"event": "created", "at": stamp(call.now)},
                {"event": "posted", "at": stamp(call.now)},
                {"event": "manually_confirmed", "at": stamp(call.now)},
            ]),
        );
        tenant.comments.push(task.clone());
        made.push(Value::Object(task));
    }
    let total = charge.total;
    fx.charge = Some(charge);
    Ok(Reply::ok(call, json!({"data": made, "credits_charged": total})))
}

/// `getCommentTask`.
fn get_comment_task(tenant: &mut Tenant, call: &Call, _fx: &mut Effects) -> Result<Reply, Failure> {
    let id = path(call, "id");
    Ok(Reply::data(call, Value::Object(tenant.comment(id)?.clone())))
}

/// `deleteCommentTask`.
fn delete_comment_task(tenant: &mut Tenant, call: &Call, _fx: &mut Effects) -> Result<Reply, Failure> {
    let id = path(call, "id");
    tenant.comment(id)?;
    tenant.comments.retain(|c| str_of(c, "id") != Some(id));
    Ok(Reply::data(call, json!({"id": id, "deleted": true})))
}

/// `approveCommentTask`, `disputeCommentTask`.
fn approve_comment_task_or_dispute_comment_task(
    tenant: &mut Tenant,
    call: &Call,
    _fx: &mut Effects,
) -> Result<Reply, Failure> {
    let id = path(call, "id");
    let approve = call.op.id == "approveCommentTask";
    let reason = body(call).get("reason").cloned();
    let task = tenant.comment(id)?;
    if str_of(task, "status") != Some("manually_confirmed") {
        return Err(Failure::state(
            "Only a manually confirmed comment task can be approved or disputed.",
        ));
    }
    let to = if approve { "approved" } else { "disputed" };
    task.insert("status".into(), json!(to));
    task.insert("updated_at".into(), json!(stamp(call.now)));
    if let Some(reason) = reason {
        task.insert("dispute_reason".into(), reason);
    }
    if let Some(Value::Array(v)) = task.get_mut("verifications") {
        v.push(json!({"event": to, "at": stamp(call.now)}));
    }
    Ok(Reply::data(call, Value::Object(task.clone())))
}

/// `listCommentTaskVerifications`.
fn list_comment_task_verifications(tenant: &mut Tenant, call: &Call, _fx: &mut Effects) -> Result<Reply, Failure> {
    let id = path(call, "id");
    let task = tenant.comment(id)?;
    Ok(Reply::data(
        call,
        task.get("verifications").cloned().unwrap_or(json!([])),
    ))
}

/// The request's `bundle_id` must be one of the key's bundles: a 404 where
/// the operation documents one, a 400 naming the field elsewhere.
fn own_bundle(tenant: &mut Tenant, request: &Object, not_found: bool) -> Result<(), Failure> {
    let bundle = str_of(request, "bundle_id").unwrap_or_default();
    match tenant.bundle(bundle) {
        Ok(_) => Ok(()),
        Err(f) if not_found => Err(f),
        Err(_) => Err(Failure::rule("bundle_id", "is not one of your bundles")),
    }
}

fn public_url(call: &Call, id: Uuid, filename: &str) -> String {
    let name: String = filename
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{}/_sandbox/files/{id}/{name}", call.base_url)
}
