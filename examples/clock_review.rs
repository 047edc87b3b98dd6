//! One key's simulated clock advanced through the whole review of 1,000
//! published bundles: how long the advance takes and what `tokportal
//! sandbox` holds in memory, beside the same work on a key on real time
//! (where the manager works at once: the baseline).
//!
//! ```text
//! cargo build --release --features cli --bin tokportal
//! cargo run --release --features cli --example clock_review -- target/release/tokportal [N]
//! ```
//!
//! Each run starts its own sandbox process and a webhook receiver on
//! 127.0.0.1 subscribed to every event, then builds N bundles (1,000 by
//! default, the most a key holds), 8 requests at a time: create (one video
//! slot), configure the account, publish, configure the video for the next
//! day, publish the video. On the simulated key that leaves 2N steps
//! waiting; one `POST /_sandbox/clock/advance` of 10 days then does all 4N
//! transitions (account to review, video posted, video to review, video
//! finalized), each with its webhook, and answers once every webhook had
//! its first delivery attempt. Resident memory (VmRSS, from `/proc`) is
//! read after the setup and after the advance.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use futures::StreamExt;
use serde_json::{Value, json};

#[path = "bench/process.rs"]
mod process;
use process::{Sandbox, rss_mib};

/// A sandbox for the run: no journal, credits for 1,000 bundles and more.
fn start(binary: &str) -> Result<Sandbox, Box<dyn std::error::Error>> {
    let args = ["--rate-limit", "4000000000", "--journal", "0", "--credits", "1000000"];
    process::start(binary, &args.map(std::ffi::OsStr::new))
}

/// A receiver that answers 200 and counts.
async fn receiver() -> Result<(String, Arc<AtomicUsize>), Box<dyn std::error::Error>> {
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            counted.fetch_add(1, Ordering::Relaxed);
            async { "ok" }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((url, hits))
}

struct Run {
    setup_s: f64,
    rss_setup: f64,
    advance_s: f64,
    rss_after: f64,
    transitions: usize,
    webhooks: usize,
}

async fn send(http: &reqwest::Client, key: &str, method: reqwest::Method, url: String, body: Option<Value>) -> Value {
    let mut request = http.request(method, url).header("x-api-key", key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    match request.send().await {
        Ok(answer) => answer.json().await.unwrap_or(Value::Null),
        Err(_) => Value::Null,
    }
}

async fn run(binary: &str, n: usize, simulated: bool) -> Result<Run, Box<dyn std::error::Error>> {
    let sandbox = start(binary)?;
    let (hook, hits) = receiver().await?;
    let http = reqwest::Client::new();
    let base = sandbox.1.clone();
    let key = "sk_test_clock_review";
    if simulated {
        send(
            &http,
            key,
            reqwest::Method::POST,
            format!("{base}/_sandbox/clock"),
            Some(json!({"frozen_at": "2026-06-01T00:00:00Z"})),
        )
        .await;
    }
    let events = tokportal::webhooks::EVENT_TYPES.to_vec();
    send(
        &http,
        key,
        reqwest::Method::POST,
        format!("{base}/webhooks"),
        Some(json!({"url": hook, "events": events})),
    )
    .await;
    let tomorrow = if simulated {
        "2026-06-02".to_owned()
    } else {
        (chrono::Utc::now() - chrono::Duration::days(1))
            .format("%Y-%m-%d")
            .to_string()
    };
    let started = Instant::now();
    futures::stream::iter(0..n)
        .for_each_concurrent(8, |_| {
            let (http, base, tomorrow) = (http.clone(), base.clone(), tomorrow.clone());
            async move {
                let bundle = send(
                    &http,
                    key,
                    reqwest::Method::POST,
                    format!("{base}/bundles"),
                    Some(json!({"bundle_type": "account_and_videos", "country": "USA", "videos_quantity": 1})),
                )
                .await;
                let Some(id) = bundle["data"]["id"].as_str() else { return };
                let b = format!("{base}/bundles/{id}");
                send(&http, key, reqwest::Method::PUT, format!("{b}/account"), Some(json!({"username": "review_bench", "visible_name": "Bench"}))).await;
                send(&http, key, reqwest::Method::POST, format!("{b}/publish"), None).await;
                send(&http, key, reqwest::Method::PUT, format!("{b}/videos/1"), Some(json!({"video_type": "video", "description": "Bench", "target_publish_date": tomorrow, "video_url": "https://cdn.example.com/v.mp4"}))).await;
                send(&http, key, reqwest::Method::POST, format!("{b}/videos/1/publish"), None).await;
            }
        })
        .await;
    let setup_s = started.elapsed().as_secs_f64();
    let listed = send(
        &http,
        key,
        reqwest::Method::GET,
        format!("{base}/bundles?per_page=1"),
        None,
    )
    .await;
    let made = listed["pagination"]["total"].as_u64().unwrap_or(0) as usize;
    if made != n {
        return Err(format!("{made} bundles were made, not {n}").into());
    }
    // The deliveries of the setup arrive first.
    let mut settled = hits.load(Ordering::Relaxed);
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let now = hits.load(Ordering::Relaxed);
        if now == settled {
            break;
        }
        settled = now;
    }
    let rss_setup = rss_mib(sandbox.0.id());
    let started = Instant::now();
    let mut transitions = 0;
    if simulated {
        let advanced = send(
            &http,
            key,
            reqwest::Method::POST,
            format!("{base}/_sandbox/clock/advance"),
            Some(json!({"by": "10d"})),
        )
        .await;
        transitions = advanced["data"]["transitions"].as_array().map_or(0, Vec::len);
    }
    let advance_s = started.elapsed().as_secs_f64();
    let rss_after = rss_mib(sandbox.0.id());
    Ok(Run {
        setup_s,
        rss_setup,
        advance_s,
        rss_after,
        transitions,
        webhooks: hits.load(Ordering::Relaxed) - settled,
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let binary = args.get(1).ok_or("usage: clock_review TOKPORTAL_BIN [N]")?;
    let n: usize = args.get(2).map_or(Ok(1000), |s| s.parse())?;
    let real = run(binary, n, false).await?;
    let simulated = run(binary, n, true).await?;
    println!("{n} bundles, one key, 8 requests at a time");
    println!(
        "real time (baseline): setup {:.2} s, RSS {:.1} MiB",
        real.setup_s, real.rss_setup
    );
    println!(
        "simulated: setup {:.2} s, RSS {:.1} MiB; advance 10d: {} transitions, {} webhooks in {:.2} s; RSS after {:.1} MiB",
        simulated.setup_s,
        simulated.rss_setup,
        simulated.transitions,
        simulated.webhooks,
        simulated.advance_s,
        simulated.rss_after
    );
    println!(
        "ratios simulated/real: setup {:.2}x, RSS after the review {:.2}x",
        simulated.setup_s / real.setup_s,
        simulated.rss_after / real.rss_setup
    );
    Ok(())
}
