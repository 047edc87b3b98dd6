//! The main job: a realistic TokPortal flow.
//!
//! With `TOKPORTAL_API_KEY` set it makes read-only calls to the real API.
//! Without it, it starts an in-process mock server (the `mock` feature) and runs
//! the whole flow against it: check the account, create a bundle (with an
//! idempotency key), configure a video, stream a video file up, walk a paginated
//! list, and handle a structured error.
//!
//! ```text
//! cargo run --example quickstart --features mock
//! ```

use std::time::Duration;

use futures::TryStreamExt;
use serde_json::{Map, json};
use tokportal::mock::{MockServerExt, MockTokPortal};
use tokportal::types::{self, CreateBundleRequest, CreateBundleRequestBundleType};
use tokportal::uploads::{UploadOptions, UploadSource};
use tokportal::{Client, Error, OperationArgs, ResponseExt};

const BUNDLE: &str = "9f3a7b2e-1c4d-4e8f-a5b6-7d9e0f1a2b3c";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::var(tokportal::API_KEY_ENV).is_ok_and(|k| !k.trim().is_empty()) {
        return live().await;
    }
    println!("TOKPORTAL_API_KEY is not set: running against an in-process mock server.\n");
    let mock = MockTokPortal::start().await;
    script(&mock);
    let client = mock.client()?;
    flow(&client).await?;
    println!(
        "\nDone: every call above went to {} and was checked by the mock.",
        mock.base_url()
    );
    Ok(())
}

/// Read-only calls against the real API.
async fn live() -> Result<(), Box<dyn std::error::Error>> {
    let client = Client::from_env()?;
    println!("Calling {} (read-only).", client.base_url());
    let me = client.get_current_user().send().await?;
    println!(
        "signed in as {}, {} credits (request {:?})",
        me.data.email,
        me.data.credits.balance,
        me.meta().request_id
    );
    let first = client
        .paginate("listBundles", OperationArgs::new().query("per_page", 5))?
        .pages()
        .try_next()
        .await?;
    if let Some(page) = first {
        println!(
            "{} bundles on the first page of {:?}",
            page.items.len(),
            page.total_pages
        );
    }
    Ok(())
}

/// The flow, the same against the mock as it would be against the API.
async fn flow(client: &Client) -> Result<(), Box<dyn std::error::Error>> {
    let me = client.get_current_user().send().await?;
    println!(
        "1. signed in as {}; balance {} credits",
        me.data.email, me.data.credits.balance
    );

    let bundle = client
        .create_bundle()
        .body(
            CreateBundleRequest::builder()
                .bundle_type(CreateBundleRequestBundleType::AccountAndVideos)
                .country(Some("USA".parse()?))
                .videos_quantity(5),
        )
        .idempotency_key("bundle-create-123")
        .send()
        .await?;
    println!(
        "2. created bundle {} for {:?} credits (replayed: {})",
        bundle.data["id"],
        bundle.credits_charged,
        bundle.meta().idempotent_replayed
    );

    let video = client
        .configure_bundle_video()
        .id(BUNDLE.parse::<uuid::Uuid>()?)
        .position(std::num::NonZeroU64::new(1).ok_or("position")?)
        .body(
            types::ConfigureVideoRequest::builder()
                .video_type(types::ConfigureVideoRequestVideoType::Video)
                .description("Launch day!".parse::<types::ConfigureVideoRequestDescription>()?)
                .target_publish_date("2026-12-01".parse::<types::ConfigureVideoRequestTargetPublishDate>()?),
        )
        .send()
        .await?;
    println!("3. configured video 1: status {}", video["data"]["status"]);

    let file = std::env::temp_dir().join("tokportal-quickstart.mp4");
    tokio::fs::write(&file, vec![0u8; 3 * 1024 * 1024]).await?;
    let uploaded = client
        .upload_video_direct(
            BUNDLE.parse()?,
            UploadSource::path(&file),
            UploadOptions::new()
                .idempotency_key("video-upload-123")
                .on_progress(|sent, total| {
                    if sent == total {
                        println!("   uploaded {sent} of {total} bytes");
                    }
                })
                .timeout(Duration::from_secs(120)),
        )
        .await?;
    println!("4. streamed {} from disk: {}", file.display(), uploaded["data"]["url"]);
    let _ = tokio::fs::remove_file(&file).await;

    let bundles: Vec<_> = client
        .paginate(
            "listBundles",
            OperationArgs::new().query("status", "draft").query("per_page", 2),
        )?
        .items()
        .try_collect()
        .await?;
    println!("5. listed {} draft bundles across every page", bundles.len());

    match client.publish_bundle().id(BUNDLE.parse::<uuid::Uuid>()?).send().await {
        Ok(_) => println!("6. published"),
        Err(Error::Api(e)) => println!(
            "6. publish refused: HTTP {} {} ({}), details {}, request {}, retryable: {}",
            e.status,
            e.code.as_deref().unwrap_or("-"),
            e.message,
            e.details.clone().unwrap_or_default(),
            e.request_id.as_deref().unwrap_or("-"),
            e.is_retryable()
        ),
        Err(other) => return Err(other.into()),
    }
    Ok(())
}

/// What the mock answers, with typed expectations generated by progenitor.
fn script(mock: &MockTokPortal) {
    let server = &mock.server;
    let me: types::MeResponse = serde_json::from_value(json!({"data": {
        "id": BUNDLE, "email": "you@example.com", "credits": {"balance": 1250},
        "api_key": {"id": BUNDLE, "name": "quickstart"}
    }}))
    .unwrap_or_else(|e| panic!("mock data: {e}"));
    server.get_current_user(|_, then| {
        then.success(200, &me);
    });
    let created: types::CreateBundleResponse =
        serde_json::from_value(json!({"data": {"id": BUNDLE, "status": "draft"}, "credits_charged": 55}))
            .unwrap_or_else(|e| panic!("mock data: {e}"));
    server.create_bundle(|when, then| {
        when.idempotency_key(
            &"bundle-create-123"
                .parse::<types::IdempotencyKey>()
                .unwrap_or_else(|e| panic!("{e}")),
        );
        then.success(201, &created);
    });
    server.configure_bundle_video(|_, then| {
        let mut data = Map::new();
        data.insert("data".into(), json!({"position": 1, "status": "configured"}));
        then.success(200, &data);
    });
    server.mock(|when, then| {
        when.method(httpmock::Method::POST)
            .path("/upload/video/direct")
            .header_includes("content-type", "multipart/form-data")
            .header("idempotency-key", "video-upload-123");
        then.status(200)
            .header("content-type", "application/json")
            .json_body(json!({"data": {"url": "https://cdn.tokportal.com/v/abc.mp4"}}));
    });
    for page in 1..=2 {
        server.mock(|when, then| {
            when.path("/bundles")
                .query_param("page", page.to_string())
                .query_param("status", "draft");
            then.status(200)
                .header("content-type", "application/json")
                .json_body(json!({
                    "data": [{"id": format!("bundle-{page}a")}, {"id": format!("bundle-{page}b")}],
                    "pagination": {"page": page, "per_page": 2, "total": 4, "total_pages": 2}
                }));
        });
    }
    server.mock(|when, then| {
        when.path(format!("/bundles/{BUNDLE}/publish"));
        then.status(402)
            .header("content-type", "application/json")
            .header("x-tokportal-request-id", "req_0123456789abcdef")
            .json_body(json!({"error": {"code": "INSUFFICIENT_CREDITS", "message": "Not enough credits to complete this operation.", "details": {"required": 50, "available": 12}}}));
    });
}
