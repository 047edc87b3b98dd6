//! The main job: a realistic TokPortal flow.
//!
//! With `TOKPORTAL_API_KEY` set it makes read-only calls to the real API.
//! Without it, it starts the offline sandbox in process (the `sandbox`
//! feature), which enforces the API contract and keeps state, and runs the
//! whole flow against it for free: check the account, preview a bundle's
//! cost with a dry run, create it with an idempotency key (and see the
//! replay), configure a video, stream a video file up, handle a structured
//! error, configure the account, publish, and walk a paginated list.
//!
//! ```text
//! cargo run --example quickstart --features sandbox
//! ```

use std::time::Duration;

use futures::TryStreamExt;
use tokportal::sandbox::Sandbox;
use tokportal::types::{self, CreateBundleRequest, CreateBundleRequestBundleType};
use tokportal::uploads::{UploadOptions, UploadSource};
use tokportal::{Client, DryRunPreview, Error, OperationArgs, ResponseExt};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::var(tokportal::API_KEY_ENV).is_ok_and(|k| !k.trim().is_empty()) {
        return live().await;
    }
    let sandbox = Sandbox::start().await?;
    println!(
        "TOKPORTAL_API_KEY is not set: running against the offline sandbox at {} (nothing is charged).\n",
        sandbox.url()
    );
    let client = sandbox.client("sk_test_quickstart")?;
    flow(&client).await?;
    println!(
        "\nDone: every call above went to {} and was checked against the contract.",
        sandbox.url()
    );
    sandbox.shutdown().await;
    Ok(())
}

/// Read-only calls against the real API.
async fn live() -> Result<(), Box<dyn std::error::Error>> {
    let client = Client::from_env()?;
    println!("Calling {} (read-only).", client.base_url());
    let me = client.get_current_user().send().await?;
    println!(
        "signed in as {}, {} credits (request {})",
        me.data.email,
        me.data.credits.balance,
        me.meta().request_id.as_deref().unwrap_or("without an id")
    );
    let first = client
        .paginate("listBundles", OperationArgs::new().query("per_page", 5))?
        .pages()
        .try_next()
        .await?;
    if let Some(page) = first {
        let pages = page.total_pages.map_or_else(|| "?".to_owned(), |n| n.to_string());
        println!("{} bundles on the first page of {pages}", page.items.len());
    }
    Ok(())
}

/// The flow, the same against the sandbox as it would be against the API.
async fn flow(client: &Client) -> Result<(), Box<dyn std::error::Error>> {
    let me = client.get_current_user().send().await?;
    println!(
        "1. signed in as {}; balance {} credits",
        me.data.email, me.data.credits.balance
    );

    let request = || {
        CreateBundleRequest::builder()
            .bundle_type(CreateBundleRequestBundleType::AccountAndVideos)
            .country(Some("USA".parse().expect("a valid country")))
            .videos_quantity(Some(2))
    };
    let preview = client.create_bundle().body(request()).dry_run().send().await?;
    if let Some(p) = DryRunPreview::from_typed(&preview.into_inner()) {
        println!("2. {p}");
    }

    let bundle = client
        .create_bundle()
        .body(request())
        .idempotency_key("bundle-create-123")
        .send()
        .await?;
    let id: uuid::Uuid = bundle.data["id"].as_str().ok_or("no bundle id")?.parse()?;
    let again = client
        .create_bundle()
        .body(request())
        .idempotency_key("bundle-create-123")
        .send()
        .await?;
    let charged = bundle
        .credits_charged
        .map_or_else(|| "an unstated number of".to_owned(), |c| c.to_string());
    let replayed = if again.meta().idempotent_replayed { "yes" } else { "no" };
    let same = if again.data["id"] == bundle.data["id"] {
        "the same bundle"
    } else {
        "another bundle"
    };
    println!("3. created bundle {id} for {charged} credits; sent again with the same key: replayed {replayed}, {same}");

    let video = client
        .configure_bundle_video()
        .id(id)
        .position(std::num::NonZeroU64::new(1).ok_or("position")?)
        .body(
            types::ConfigureVideoRequest::builder()
                .video_type(types::ConfigureVideoRequestVideoType::Video)
                .description("Launch day!".parse::<types::ConfigureVideoRequestDescription>()?)
                .target_publish_date("2026-12-01".parse::<types::ConfigureVideoRequestTargetPublishDate>()?)
                .video_url(Some("https://cdn.example.com/launch.mp4".to_owned())),
        )
        .send()
        .await?;
    println!("4. configured video 1: status {}", text(&video["data"]["status"]));

    let file = std::env::temp_dir().join("tokportal-quickstart.mp4");
    tokio::fs::write(&file, vec![0u8; 3 * 1024 * 1024]).await?;
    let uploaded = client
        .upload_video_direct(
            id,
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
    println!(
        "5. streamed {} from disk: {}",
        file.display(),
        text(&uploaded["data"]["url"])
    );
    let _ = tokio::fs::remove_file(&file).await;

    match client.publish_bundle().id(id).send().await {
        Ok(_) => println!("6. published"),
        Err(Error::Api(e)) => println!(
            "6. publish refused: HTTP {} {} ({}), details {}, request {}, retryable: {}",
            e.status,
            e.code.as_deref().unwrap_or("-"),
            e.message,
            e.details
                .as_ref()
                .map_or_else(|| "none".to_owned(), ToString::to_string),
            e.request_id.as_deref().unwrap_or("-"),
            e.is_retryable()
        ),
        Err(other) => return Err(other.into()),
    }

    client
        .configure_bundle_account()
        .id(id)
        .body(
            types::ConfigureAccountRequest::builder()
                .username("launch_day".parse::<types::ConfigureAccountRequestUsername>()?)
                .visible_name("Launch Day".parse::<types::ConfigureAccountRequestVisibleName>()?),
        )
        .send()
        .await?;
    let published = client.publish_bundle().id(id).send().await?;
    println!(
        "7. configured the account and published: bundle {}, account {}",
        text(&published["data"]["status"]),
        text(&published["data"]["account_status"])
    );

    let bundles: Vec<_> = client
        .paginate("listBundles", OperationArgs::new().query("per_page", 1))?
        .items()
        .try_collect()
        .await?;
    println!("8. listed {} bundle(s) across every page", bundles.len());
    Ok(())
}

/// A JSON value as a person reads it: a string without its quotes.
fn text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "-".to_owned(),
        other => other.to_string(),
    }
}
