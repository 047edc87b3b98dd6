//! Delivered accounts and analytics. Analytics are synthetic: numbers
//! derived from the ids, stable from one call to the next.

use chrono::Duration;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{Handler, body, page, path, query_int};
use crate::sandbox::contract::Failure;
use crate::sandbox::world::state::{Object, Tenant, keep, object, stamp, str_of};
use crate::sandbox::world::vocabulary::{Call, Effects, Payload, Reply, seeded};

/// How long a manual analytics refresh waits for the next one.
const REFRESH_COOLDOWN_MINUTES: i64 = 15;

/// The operations this module answers, and how.
pub(super) const HANDLERS: &[(&str, Handler)] = &[
    ("listAccounts", list_accounts),
    ("getAccount", get_account),
    ("listAccountBundles", list_account_bundles),
    ("retrieveAccountVerificationCode", retrieve_account_verification_code),
    ("revealAccountCredentials", reveal_account_credentials),
    ("canRefreshAccountAnalytics", can_refresh_account_analytics),
    (
        "refreshAccountAnalytics",
        refresh_account_analytics_or_refresh_analytics_account,
    ),
    (
        "refreshAnalyticsAccount",
        refresh_account_analytics_or_refresh_analytics_account,
    ),
    ("getAccountEditRequest", get_account_edit_request),
    ("createAccountEditRequest", create_account_edit_request),
    ("getAnalyticsDashboard", get_analytics_dashboard),
    ("getAnalyticsContract", get_analytics_contract),
    ("exportAnalyticsVideos", export_analytics_videos),
    ("createAnalyticsReport", create_analytics_report),
    ("exportAnalyticsReportHtml", export_analytics_report_html),
    ("getAnalyticsSeries", get_analytics_series),
    ("getAnalyticsAccount", get_analytics_account_or_get_account_analytics),
    ("getAccountAnalytics", get_analytics_account_or_get_account_analytics),
    (
        "listAnalyticsAccountRawSnapshots",
        list_analytics_account_raw_snapshots_or_list_analytics_post_raw_snapshots,
    ),
    (
        "listAnalyticsPostRawSnapshots",
        list_analytics_account_raw_snapshots_or_list_analytics_post_raw_snapshots,
    ),
    ("listAccountVideoAnalytics", list_account_video_analytics),
    ("getVideoAnalytics", get_video_analytics),
    ("getCommentPulse", get_comment_pulse),
    ("listAnalyticsAccountComments", list_analytics_account_comments),
];

/// `listAccounts`.
fn list_accounts(tenant: &mut Tenant, call: &Call, _fx: &mut Effects) -> Result<Reply, Failure> {
    Ok(page(call, tenant.accounts.iter().cloned().map(Value::Object).collect()))
}

/// `getAccount`.
fn get_account(tenant: &mut Tenant, call: &Call, _fx: &mut Effects) -> Result<Reply, Failure> {
    let id = path(call, "id");
    Ok(Reply::data(call, Value::Object(tenant.account(id)?.clone())))
}

/// `listAccountBundles`.
fn list_account_bundles(tenant: &mut Tenant, call: &Call, _fx: &mut Effects) -> Result<Reply, Failure> {
    let id = path(call, "id");
    tenant.account(id)?;
    let status = call.query.get("status").and_then(Value::as_str);
    let items = tenant
        .bundles
        .iter()
        .filter(|b| {
            str_of(&b.fields, "account_id") == Some(id) || b.account.as_ref().and_then(|a| str_of(a, "id")) == Some(id)
        })
        .filter(|b| status.is_none_or(|s| str_of(&b.fields, "status") == Some(s)))
        .map(|b| Value::Object(b.fields.clone()))
        .collect();
    Ok(page(call, items))
}

/// `retrieveAccountVerificationCode`.
fn retrieve_account_verification_code(tenant: &mut Tenant, call: &Call, _fx: &mut Effects) -> Result<Reply, Failure> {
    let id = path(call, "id");
    let account = tenant.account(id)?;
    let code = format!("{:06}", seeded(id, call.now.timestamp() as u64 / 60, 1_000_000));
    Ok(Reply::data(
        call,
        json!({"account_id": account.get("id"), "code": code, "received_at": stamp(call.now), "expires_at": stamp(call.now + Duration::minutes(10))}),
    ))
}

/// `revealAccountCredentials`.
fn reveal_account_credentials(tenant: &mut Tenant, call: &Call, _fx: &mut Effects) -> Result<Reply, Failure> {
    let id = path(call, "id");
    let account = tenant.account(id)?;
    let username = str_of(account, "username").unwrap_or("sandbox.creator").to_owned();
    Ok(Reply::data(
        call,
        json!({
            "account_id": account.get("id"),
            "username": username,
            "email": format!("{username}@mail.sandbox.tokportal.test"),
            "password": format!("sandbox-{}", seeded(id, 7, 1_000_000_000)),
            "revealed_at": stamp(call.now),
        }),
    ))
}

/// `canRefreshAccountAnalytics`.
fn can_refresh_account_analytics(tenant: &mut Tenant, call: &Call, _fx: &mut Effects) -> Result<Reply, Failure> {
    let id = path(call, "id");
    tenant.account(id)?;
    let next = next_refresh(tenant, id);
    let can = next.is_none_or(|n| n <= call.now);
    Ok(Reply::data(
        call,
        json!({"account_id": id, "can_refresh": can, "next_refresh_at": next.filter(|_| !can).map(stamp)}),
    ))
}

/// `refreshAccountAnalytics`, `refreshAnalyticsAccount`.
fn refresh_account_analytics_or_refresh_analytics_account(
    tenant: &mut Tenant,
    call: &Call,
    _fx: &mut Effects,
) -> Result<Reply, Failure> {
    let id = path(call, "id");
    tenant.account(id)?;
    if let Some(next) = next_refresh(tenant, id).filter(|n| *n > call.now) {
        let wait = (next - call.now).num_seconds().max(1);
        return Err(Failure::new(
            429,
            "REFRESH_COOLDOWN",
            "A manual refresh of this account ran recently.",
        )
        .details(json!({"retry_after_seconds": wait, "next_refresh_at": stamp(next)}))
        .header("retry-after", wait.to_string()));
    }
    if let Ok(account) = Uuid::parse_str(id) {
        tenant.refreshed.retain(|(a, _)| *a != account);
        tenant.refreshed.push((account, call.now));
    }
    Ok(Reply::data(
        call,
        json!({"account_id": id, "status": "completed", "refreshed_at": stamp(call.now), "options": body(call)}),
    ))
}

/// `getAccountEditRequest`.
fn get_account_edit_request(tenant: &mut Tenant, call: &Call, _fx: &mut Effects) -> Result<Reply, Failure> {
    let id = path(call, "id");
    tenant.account(id)?;
    let active = tenant
        .edit_requests
        .iter()
        .rev()
        .find(|r| str_of(r, "account_id") == Some(id))
        .cloned()
        .map_or(Value::Null, Value::Object);
    Ok(Reply::data(call, active))
}

/// `createAccountEditRequest`.
fn create_account_edit_request(tenant: &mut Tenant, call: &Call, _fx: &mut Effects) -> Result<Reply, Failure> {
    let id = path(call, "id");
    tenant.account(id)?;
    if tenant
        .edit_requests
        .iter()
        .any(|r| str_of(r, "account_id") == Some(id) && str_of(r, "status") == Some("pending"))
    {
        return Err(Failure::new(
            409,
            "EDIT_REQUEST_EXISTS",
            "An active edit request already exists.",
        ));
    }
    let mut request = body(call);
    request.insert("id".into(), json!(Uuid::new_v4()));
    request.insert("account_id".into(), json!(id));
    request.insert("status".into(), json!("pending"));
    request.insert("created_at".into(), json!(stamp(call.now)));
    tenant.edit_requests.push(request.clone());
    Ok(Reply::data(call, Value::Object(request)))
}

/// `getAnalyticsDashboard`.
fn get_analytics_dashboard(tenant: &mut Tenant, call: &Call, _fx: &mut Effects) -> Result<Reply, Failure> {
    Ok(Reply::data(call, dashboard(tenant)))
}

/// `getAnalyticsContract`.
fn get_analytics_contract(_tenant: &mut Tenant, call: &Call, _fx: &mut Effects) -> Result<Reply, Failure> {
    Ok(Reply::data(
        call,
        json!({
            "version": "v2",
            "access": {"level": "full", "raw_payloads": true},
            "metrics": ["views", "likes", "comments", "shares", "followers"],
            "freshness_minutes": 60,
            "redactions": [],
            "note": "Sandbox analytics are synthetic.",
        }),
    ))
}

/// `exportAnalyticsVideos`.
fn export_analytics_videos(tenant: &mut Tenant, call: &Call, _fx: &mut Effects) -> Result<Reply, Failure> {
    let mut csv = String::from("video_id,account_id,platform,views,likes,comments,shares\n");
    for (video, account) in posts(tenant) {
        let v = str_of(&video, "id").unwrap_or_default();
        csv.push_str(&format!(
            "{v},{account},tiktok,{},{},{},{}\n",
            seeded(v, 1, 100_000),
            seeded(v, 2, 10_000),
            seeded(v, 3, 1_000),
            seeded(v, 4, 500)
        ));
    }
    Ok(Reply {
        status: call.op.success_status,
        payload: Payload::Text("text/csv", csv),
    })
}

/// `createAnalyticsReport`.
fn create_analytics_report(tenant: &mut Tenant, call: &Call, _fx: &mut Effects) -> Result<Reply, Failure> {
    let token = Uuid::new_v4().simple().to_string();
    let mut report = body(call);
    report.insert("id".into(), json!(Uuid::new_v4()));
    report.insert("token".into(), json!(token));
    report.insert("url".into(), json!(format!("{}/reports/{token}", call.base_url)));
    report.insert("created_at".into(), json!(stamp(call.now)));
    keep(&mut tenant.reports, report.clone());
    Ok(Reply::data(call, Value::Object(report)))
}

/// `exportAnalyticsReportHtml`.
fn export_analytics_report_html(tenant: &mut Tenant, call: &Call, _fx: &mut Effects) -> Result<Reply, Failure> {
    let title = body(call)
        .get("title")
        .and_then(Value::as_str)
        .unwrap_or("Analytics report")
        .replace(['<', '>', '&', '"'], "");
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title></head><body><h1>{title}</h1><p>{} accounts, synthetic sandbox figures.</p></body></html>\n",
        tenant.accounts.len()
    );
    Ok(Reply {
        status: call.op.success_status,
        payload: Payload::Text("text/html; charset=utf-8", html),
    })
}

/// `getAnalyticsSeries`.
fn get_analytics_series(_tenant: &mut Tenant, call: &Call, _fx: &mut Effects) -> Result<Reply, Failure> {
    let metric = call
        .query
        .get("metric")
        .and_then(Value::as_str)
        .unwrap_or("views")
        .to_owned();
    let days = 14;
    let points: Vec<Value> = (0..days)
        .map(|d| {
            let day = call.now - Duration::days(days - 1 - d);
            let date = day.format("%Y-%m-%d").to_string();
            json!({"date": date, "value": seeded(&format!("{metric}{date}"), 5, 10_000)})
        })
        .collect();
    Ok(Reply::data(
        call,
        json!({"metric": metric, "granularity": call.query.get("granularity").cloned().unwrap_or(json!("day")), "points": points}),
    ))
}

/// `getAnalyticsAccount`, `getAccountAnalytics`.
fn get_analytics_account_or_get_account_analytics(
    tenant: &mut Tenant,
    call: &Call,
    _fx: &mut Effects,
) -> Result<Reply, Failure> {
    let id = path(call, "id");
    let account = tenant.account(id)?.clone();
    Ok(Reply::data(call, account_stats(&account)))
}

/// `listAnalyticsAccountRawSnapshots`, `listAnalyticsPostRawSnapshots`.
fn list_analytics_account_raw_snapshots_or_list_analytics_post_raw_snapshots(
    tenant: &mut Tenant,
    call: &Call,
    _fx: &mut Effects,
) -> Result<Reply, Failure> {
    let id = path(call, "id");
    if call.op.id == "listAnalyticsAccountRawSnapshots" {
        tenant.account(id)?;
    } else if !posts(tenant).iter().any(|(v, _)| str_of(v, "id") == Some(id)) {
        return Err(Failure::not_found("Post"));
    }
    let limit = query_int(call, "limit", 5).clamp(1, 30);
    let source = call.query.get("source").and_then(Value::as_str).unwrap_or("manual");
    let snapshots: Vec<Value> = (0..limit.min(3))
            .map(|n| {
                json!({"id": Uuid::new_v4(), "source": source, "captured_at": stamp(call.now - Duration::hours(n * 24)), "payload": {"followers": seeded(id, n as u64, 50_000)}})
            })
            .collect();
    Ok(Reply::data(call, snapshots))
}

/// `listAccountVideoAnalytics`.
fn list_account_video_analytics(tenant: &mut Tenant, call: &Call, _fx: &mut Effects) -> Result<Reply, Failure> {
    let id = path(call, "id");
    tenant.account(id)?;
    let items = posts(tenant)
        .into_iter()
        .filter(|(_, account)| account == id)
        .map(|(v, _)| video_stats(&v))
        .collect();
    Ok(page(call, items))
}

/// `getVideoAnalytics`.
fn get_video_analytics(tenant: &mut Tenant, call: &Call, _fx: &mut Effects) -> Result<Reply, Failure> {
    let id = path(call, "id");
    let video = posts(tenant)
        .into_iter()
        .find(|(v, _)| str_of(v, "id") == Some(id))
        .ok_or_else(|| Failure::not_found("Video"))?;
    Ok(Reply::data(call, video_stats(&video.0)))
}

/// `getCommentPulse`.
fn get_comment_pulse(tenant: &mut Tenant, call: &Call, _fx: &mut Effects) -> Result<Reply, Failure> {
    Ok(Reply::data(
        call,
        json!({"total_comments": posts(tenant).len() * 12, "sentiment": {"positive": 0.62, "neutral": 0.3, "negative": 0.08}, "top_comments": []}),
    ))
}

/// `listAnalyticsAccountComments`.
fn list_analytics_account_comments(tenant: &mut Tenant, call: &Call, _fx: &mut Effects) -> Result<Reply, Failure> {
    let id = path(call, "id");
    tenant.account(id)?;
    let limit = query_int(call, "limit", 20).clamp(1, 50) as u64;
    let comments: Vec<Value> = (0..limit.min(3))
            .map(|n| json!({"id": Uuid::new_v4(), "text": format!("Sandbox comment {}", n + 1), "likes": seeded(id, n, 100)}))
            .collect();
    Ok(Reply::data(call, comments))
}

fn next_refresh(tenant: &Tenant, id: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    let id = Uuid::parse_str(id).ok()?;
    tenant
        .refreshed
        .iter()
        .find(|(a, _)| *a == id)
        .map(|(_, at)| *at + Duration::minutes(REFRESH_COOLDOWN_MINUTES))
}

/// Published videos, with the id of their account.
fn posts(tenant: &Tenant) -> Vec<(Object, String)> {
    let mut out = Vec::new();
    for b in &tenant.bundles {
        let account = str_of(&b.fields, "account_id")
            .or_else(|| b.account.as_ref().and_then(|a| str_of(a, "id")))
            .unwrap_or_default()
            .to_owned();
        for v in &b.videos {
            if v.get("platform_url").is_some_and(|u| !u.is_null()) {
                out.push((v.clone(), account.clone()));
            }
        }
    }
    out
}

fn video_stats(video: &Object) -> Value {
    let id = str_of(video, "id").unwrap_or_default();
    json!({
        "video_id": id,
        "platform_url": video.get("platform_url"),
        "views": seeded(id, 1, 100_000),
        "likes": seeded(id, 2, 10_000),
        "comments": seeded(id, 3, 1_000),
        "shares": seeded(id, 4, 500),
    })
}

fn account_stats(account: &Object) -> Value {
    let id = str_of(account, "id").unwrap_or_default();
    json!({
        "account_id": id,
        "username": account.get("username"),
        "followers": seeded(id, 10, 50_000),
        "views": seeded(id, 11, 1_000_000),
        "likes": seeded(id, 12, 100_000),
        "engagement_rate": seeded(id, 13, 1000) as f64 / 100.0,
    })
}

fn dashboard(tenant: &Tenant) -> Value {
    let accounts: Vec<Value> = tenant.accounts.iter().map(account_stats).collect();
    json!({
        "accounts": accounts.len(),
        "videos": posts(tenant).len(),
        "totals": object(json!({
            "followers": accounts.iter().filter_map(|a| a["followers"].as_u64()).sum::<u64>(),
            "views": accounts.iter().filter_map(|a| a["views"].as_u64()).sum::<u64>(),
        })),
        "top_accounts": accounts,
    })
}
