//! What `--state FILE` costs: throughput of paid creates and of `GET /me`
//! with the state in a SQLite file against the same build in memory,
//! measured side by side with wrk; then the file's size and the sandbox's
//! memory after 100,000 creates, and the time to start again on that file.
//!
//! ```text
//! apt-get install -y wrk
//! cargo build --release --features cli --bin tokportal --example state_bench
//! target/release/examples/state_bench target/release/tokportal [SECONDS] [ROUNDS]
//! ```
//!
//! Throughput: two sandboxes of the same binary, one in memory and one on a
//! fresh state file, each `wrk -t2 -c16 -d SECONDS` in turn (memory, file,
//! memory, file, ... ROUNDS times, 8 s and 3 by default), `POST /bundles`
//! round robin over 1,000 keys (a Lua script), then `GET /me` the same way.
//! The medians and the ratio file/memory are printed. Then a fresh file
//! gets 100,000 creates over 1,000 keys (16 at a time, reqwest); its size
//! (with the WAL) and the sandbox's RSS are printed, the sandbox is killed,
//! and the time until a new one on the same file prints `listening on`.

use std::process::Command;
use std::time::Instant;

use futures::StreamExt;

#[path = "bench/process.rs"]
mod process;
use process::{Sandbox, rss_mib};

/// A sandbox without rate limit and with credits enough, on `state` if given.
fn start(binary: &str, state: Option<&std::path::Path>) -> Result<Sandbox, Box<dyn std::error::Error>> {
    let mut args: Vec<&std::ffi::OsStr> = ["--rate-limit", "4000000000", "--credits", "1000000000"]
        .map(std::ffi::OsStr::new)
        .to_vec();
    if let Some(file) = state {
        args.extend([std::ffi::OsStr::new("--state"), file.as_os_str()]);
    }
    process::start(binary, &args)
}

/// Requests a second, as wrk reports them.
fn wrk(url: &str, script: &std::path::Path, seconds: u32) -> Result<f64, Box<dyn std::error::Error>> {
    let out = Command::new("wrk")
        .args(["-t2", "-c16", &format!("-d{seconds}s"), "-s"])
        .arg(script)
        .arg(url)
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| format!("wrk said: {text}").into())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

const CREATE: &str = r#"counter = 0
request = function()
  counter = counter + 1
  local key = "sk_test_bench_" .. (counter % 1000)
  return wrk.format("POST", "/bundles", {["X-API-Key"] = key, ["Content-Type"] = "application/json"},
    '{"bundle_type":"account_only","country":"USA"}')
end
"#;

const ME: &str = r#"counter = 0
request = function()
  counter = counter + 1
  return wrk.format("GET", "/me", {["X-API-Key"] = "sk_test_bench_" .. (counter % 1000)})
end
"#;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let binary = args
        .get(1)
        .ok_or("usage: state_bench TOKPORTAL_BIN [SECONDS] [ROUNDS]")?;
    let seconds: u32 = args.get(2).map_or(Ok(8), |s| s.parse())?;
    let rounds: usize = args.get(3).map_or(Ok(3), |s| s.parse())?;
    let dir = tempfile::tempdir()?;
    let create = dir.path().join("create.lua");
    let me = dir.path().join("me.lua");
    std::fs::write(&create, CREATE)?;
    std::fs::write(&me, ME)?;

    let memory = start(binary, None)?;
    let file = start(binary, Some(&dir.path().join("bench.db")))?;
    let (mut creates, mut reads) = ((Vec::new(), Vec::new()), (Vec::new(), Vec::new()));
    // Which side goes first alternates from round to round: on this
    // machine the first of a pair is often the faster.
    for round in 0..rounds {
        if round % 2 == 0 {
            creates.0.push(wrk(&memory.1, &create, seconds)?);
            creates.1.push(wrk(&file.1, &create, seconds)?);
        } else {
            creates.1.push(wrk(&file.1, &create, seconds)?);
            creates.0.push(wrk(&memory.1, &create, seconds)?);
        }
    }
    for round in 0..rounds {
        if round % 2 == 0 {
            reads.0.push(wrk(&memory.1, &me, seconds)?);
            reads.1.push(wrk(&file.1, &me, seconds)?);
        } else {
            reads.1.push(wrk(&file.1, &me, seconds)?);
            reads.0.push(wrk(&memory.1, &me, seconds)?);
        }
    }
    drop((memory, file));
    let (cm, cf, rm, rf) = (
        median(creates.0.clone()),
        median(creates.1.clone()),
        median(reads.0.clone()),
        median(reads.1.clone()),
    );
    println!("wrk -t2 -c16 -d{seconds}s, {rounds} rounds each, round robin over 1000 keys");
    println!(
        "POST /bundles: memory {cm:.0}/s, state file {cf:.0}/s: {:.2}x  (rounds {:?} / {:?})",
        cf / cm,
        creates.0,
        creates.1
    );
    println!(
        "GET /me:       memory {rm:.0}/s, state file {rf:.0}/s: {:.2}x  (rounds {:?} / {:?})",
        rf / rm,
        reads.0,
        reads.1
    );

    // 100,000 creates in memory (the baseline), then on a fresh file.
    let baseline = start(binary, None)?;
    let (_, rss_memory) = hundred_thousand(&baseline.1, baseline.0.id()).await;
    drop(baseline);
    let path = dir.path().join("big.db");
    let sandbox = start(binary, Some(&path))?;
    let started = Instant::now();
    let (made, rss) = hundred_thousand(&sandbox.1, sandbox.0.id()).await;
    let took = started.elapsed().as_secs_f64();
    let size = |p: &std::path::Path| std::fs::metadata(p).map_or(0, |m| m.len());
    let wal = std::path::PathBuf::from(format!("{}-wal", path.display()));
    let bytes = size(&path) + size(&wal);
    drop(sandbox);
    let started = Instant::now();
    let again = start(binary, Some(&path))?;
    let start_s = started.elapsed().as_secs_f64();
    let rss_again = rss_mib(again.0.id());
    println!(
        "{made} creates in {took:.1} s; file {:.1} MiB (WAL included); RSS {rss:.1} MiB (in memory: {rss_memory:.1} MiB, {:.2}x); a new sandbox on the file listened after {start_s:.2} s, RSS {rss_again:.1} MiB",
        bytes as f64 / 1048576.0,
        rss / rss_memory
    );
    Ok(())
}

/// 100,000 creates over 1,000 keys, 16 at a time: how many were made, and
/// the sandbox's RSS then.
async fn hundred_thousand(url: &str, pid: u32) -> (usize, f64) {
    let http = reqwest::Client::new();
    let url = url.to_owned();
    let made = futures::stream::iter(0..100_000usize)
        .map(|n| {
            let (http, url) = (http.clone(), url.clone());
            async move {
                http.post(format!("{url}/bundles"))
                    .header("x-api-key", format!("sk_test_bench_{}", n % 1000))
                    .json(&serde_json::json!({"bundle_type": "account_only", "country": "USA"}))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().as_u16() == 201)
            }
        })
        .buffer_unordered(16)
        .filter(|ok| std::future::ready(*ok))
        .count()
        .await;
    (made, rss_mib(pid))
}
