//! What `tokportal sandbox --proxy URL --record FILE` costs a caller,
//! measured side by side against calling the same stand-in "live" API
//! directly, in one process and one run:
//!
//! - latency: `GET /me` sent in turn to the stand-in and through the proxy
//!   (one keep-alive connection each), p50 and p99 of each;
//! - throughput: 8 callers at a time, direct and proxied in alternating
//!   rounds, answers a second.
//!
//! The stand-in answers a fixed `MeResponse` with the documented headers
//! after `DELAY_MS` (0: at once, the proxy's whole cost shows; a live API
//! answers in tens of milliseconds). The proxy records every exchange
//! (HAR, redacted) and checks it for drift, as in use.
//!
//! ```text
//! CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
//!   cargo run --release --features sandbox --example proxy_bench -- [DELAY_MS, 0] [CALLS, 2000]
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokportal::sandbox::{Sandbox, SandboxOptions};

const KEY: &str = "sk_test_proxy_bench";
const ME: &str = r#"{"data":{"id":"0b0e7d2c-1111-4c4c-9999-000000000001","email":"bench@example.com","full_name":"Bench","company_name":null,"role":"owner","country":"USA","credits":{"balance":1000},"subscription":null,"api_key":{"id":"0b0e7d2c-1111-4c4c-9999-000000000002","name":"bench"}}}"#;

async fn stand_in(delay: Duration) -> Result<String, Box<dyn std::error::Error>> {
    let app = axum::Router::new().route(
        "/api/ext/me",
        axum::routing::get(move || async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            (
                [
                    ("content-type", "application/json"),
                    ("x-tokportal-api-version", "2026-05-25"),
                    ("x-tokportal-api-stability", "stable"),
                    ("x-tokportal-request-id", "req_0123456789abcdef0123456789abcdef"),
                    ("x-ratelimit-limit", "120"),
                    ("x-ratelimit-remaining", "119"),
                    ("x-ratelimit-reset", "1779724800"),
                ],
                ME,
            )
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(format!("http://{addr}/api/ext"))
}

async fn call(http: &reqwest::Client, url: &str) -> Result<Duration, Box<dyn std::error::Error>> {
    let start = Instant::now();
    let answer = http.get(url).header("x-api-key", KEY).send().await?;
    if answer.status() != 200 {
        return Err(format!("{url} answered {}", answer.status()).into());
    }
    answer.bytes().await?;
    Ok(start.elapsed())
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(at).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

async fn throughput(url: &str, calls: usize) -> Result<f64, Box<dyn std::error::Error>> {
    let http = reqwest::Client::new();
    let url = Arc::new(url.to_owned());
    let start = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (http, url) = (http.clone(), url.clone());
        workers.spawn(async move {
            for _ in 0..calls / 8 {
                call(&http, &url).await.map_err(|e| e.to_string())?;
            }
            Ok::<(), String>(())
        });
    }
    while let Some(done) = workers.join_next().await {
        done??;
    }
    Ok((calls / 8 * 8) as f64 / start.elapsed().as_secs_f64())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let delay_ms: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(0);
    let calls: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(2000);
    let live = stand_in(Duration::from_millis(delay_ms)).await?;
    let dir = tempfile::tempdir()?;
    let mut options = SandboxOptions::default();
    options.proxy = Some(live.clone());
    options.record = Some(dir.path().join("bench.har"));
    options.journal = 1000;
    let proxy = Sandbox::start_with(options).await?;
    let direct_url = format!("{live}/me");
    let proxied_url = format!("{}/api/ext/me", proxy.url());

    // Latency: in turn, one connection each, after a warm-up.
    let (direct_http, proxied_http) = (reqwest::Client::new(), reqwest::Client::new());
    for _ in 0..50 {
        call(&direct_http, &direct_url).await?;
        call(&proxied_http, &proxied_url).await?;
    }
    let (mut direct, mut proxied) = (Vec::with_capacity(calls), Vec::with_capacity(calls));
    for _ in 0..calls {
        direct.push(call(&direct_http, &direct_url).await?);
        proxied.push(call(&proxied_http, &proxied_url).await?);
    }
    direct.sort();
    proxied.sort();
    let (d50, d99, p50, p99) = (
        percentile(&direct, 0.5),
        percentile(&direct, 0.99),
        percentile(&proxied, 0.5),
        percentile(&proxied, 0.99),
    );
    println!("stand-in delay {delay_ms} ms, {calls} calls each, in turn:");
    println!("  latency direct  p50 {d50:.3} ms  p99 {d99:.3} ms");
    println!("  latency proxied p50 {p50:.3} ms  p99 {p99:.3} ms");
    println!(
        "  ratio (proxied / direct): p50 {:.2}x  p99 {:.2}x",
        p50 / d50,
        p99 / d99
    );

    // Throughput: 8 at a time, alternating rounds.
    let (mut d, mut p) = (0.0, 0.0);
    for _ in 0..3 {
        d += throughput(&direct_url, calls).await?;
        p += throughput(&proxied_url, calls).await?;
    }
    println!(
        "  throughput (8 at a time, 3 alternating rounds): direct {:.0}/s, proxied {:.0}/s: {:.2}x",
        d / 3.0,
        p / 3.0,
        p / d
    );
    let drift = proxy.drift();
    println!(
        "  drift: {} answers checked, {} findings",
        drift.exchanges, drift.findings
    );
    proxy.shutdown().await;
    Ok(())
}
