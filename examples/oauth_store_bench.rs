//! What `tokportal-mcp --oauth --store` costs, measured side by side:
//!
//! - `tools/call` throughput (getCurrentUser against a `tokportal sandbox`,
//!   8 at a time, with an OAuth access token) with `--store redis://`
//!   against `--store memory`, in alternating rounds; the ratio of the
//!   medians is printed (the target is at least 0.9x);
//! - store round trips per `/mcp` request with Redis, read from the
//!   server's own count (`INFO commandstats`) before and after;
//! - the resident memory (VmRSS, from `/proc`) of a `--store memory`
//!   replica before and after one grant's chain of refreshes (100,000 by
//!   default): a chain keeps one record, so it should not grow with it.
//!
//! ```text
//! cargo build --release --features cli,mcp --bin tokportal --bin tokportal-mcp
//! cargo run --release --example oauth_store_bench -- target/release/tokportal-mcp target/release/tokportal [CALLS] [REFRESHES]
//! ```
//!
//! Needs Debian's `redis-server` on PATH (started here on a socket of its
//! own). Everything talks to 127.0.0.1 only.

#[path = "bench/process.rs"]
mod process;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};

const SECRET: &str = "a sealing secret of 32 bytes or more, for the bench";
const REDIRECT: &str = "http://127.0.0.1:33418/callback";
/// A PKCE verifier and its S256 challenge (computed once, so the bench
/// needs no base64 of its own).
const VERIFIER: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaatokportalbench";
const CHALLENGE: &str = "9eGHfO3XgwbsbQJu7xeFk0OnXmcyC-DJh94VP4OKxo0";

struct Server {
    child: Child,
    origin: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(binary: &str, sandbox: &str, store: &str) -> Result<Server, Box<dyn std::error::Error>> {
    let mut child = Command::new(binary)
        .args(["--http", "127.0.0.1:0", "--oauth", "--public-url", "http://127.0.0.1"])
        .args(["--store", store])
        .env("TOKPORTAL_MCP_OAUTH_SECRET", SECRET)
        .env("TOKPORTAL_BASE_URL", sandbox)
        .env_remove("TOKPORTAL_API_KEY")
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let stderr = child.stderr.take().ok_or("no stderr")?;
    let mut lines = BufReader::new(stderr).lines();
    let origin = loop {
        let line = lines.next().ok_or("tokportal-mcp exited")??;
        if let Some(url) = line.split("listening on ").nth(1) {
            break url.trim().trim_end_matches("/mcp").to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Ok(Server { child, origin })
}

fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// One grant, by the flow a person goes through: its tokens.
async fn sign_in(http: &reqwest::Client, origin: &str, key: &str) -> Result<Value, Box<dyn std::error::Error>> {
    let registered: Value = http
        .post(format!("{origin}/register"))
        .json(&json!({"client_name": "bench", "redirect_uris": [REDIRECT]}))
        .send()
        .await?
        .json()
        .await?;
    let client_id = registered["client_id"].as_str().ok_or("no client id")?.to_owned();
    let query = form(&[
        ("response_type", "code"),
        ("client_id", &client_id),
        ("redirect_uri", REDIRECT),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ]);
    let page = http.get(format!("{origin}/authorize?{query}")).send().await?;
    let cookie = page
        .headers()
        .get("set-cookie")
        .and_then(|c| c.to_str().ok())
        .and_then(|c| c.split(';').next())
        .ok_or("no cookie")?
        .to_owned();
    let html = page.text().await?;
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .ok_or("no csrf")?
        .to_owned();
    let answered = http
        .post(format!("{origin}/authorize"))
        .header("cookie", cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("csrf", &csrf),
            ("api_key", key),
            ("access", "full"),
            ("decision", "allow"),
        ]))
        .send()
        .await?;
    let location = answered
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .ok_or("no redirect")?;
    let code = url::Url::parse(location)?
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .ok_or("no code")?;
    let tokens: Value = http
        .post(format!("{origin}/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", &client_id),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ]))
        .send()
        .await?
        .json()
        .await?;
    Ok(tokens)
}

/// `calls` tools/call of getCurrentUser, 8 at a time: calls a second.
async fn throughput(http: &reqwest::Client, origin: &str, access: &str, calls: usize) -> f64 {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                      "params": {"name": "getCurrentUser", "arguments": {}}});
    let started = Instant::now();
    let ok = futures::stream::iter(0..calls)
        .map(|_| {
            let body = body.clone();
            async move {
                http.post(format!("{origin}/mcp"))
                    .bearer_auth(access)
                    .header("accept", "application/json, text/event-stream")
                    .json(&body)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success())
            }
        })
        .buffer_unordered(8)
        .filter(|ok| futures::future::ready(*ok))
        .count()
        .await;
    if ok != calls {
        eprintln!("{} of {calls} calls failed", calls - ok);
    }
    calls as f64 / started.elapsed().as_secs_f64()
}

/// Every command the Redis server has run, in all.
fn redis_calls(socket: &std::path::Path) -> u64 {
    let out = Command::new("redis-cli")
        .arg("-s")
        .arg(socket)
        .args(["INFO", "commandstats"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    out.lines()
        .filter(|l| l.starts_with("cmdstat_") && !l.starts_with("cmdstat_info"))
        .filter_map(|l| l.split("calls=").nth(1)?.split(',').next()?.parse::<u64>().ok())
        .sum()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(mcp), Some(cli)) = (args.first(), args.get(1)) else {
        return Err("usage: oauth_store_bench <tokportal-mcp> <tokportal> [CALLS] [REFRESHES]".into());
    };
    let calls: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(2000);
    let refreshes: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let sandbox = process::start(cli, &["--rate-limit".as_ref(), "4000000000".as_ref()])?;
    let dir = std::env::temp_dir().join(format!("oauth_store_bench_{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let socket = dir.join("redis.sock");
    let mut redis = Command::new("redis-server")
        .args(["--port", "0", "--save", "", "--appendonly", "no", "--unixsocket"])
        .arg(&socket)
        .stdout(Stdio::null())
        .spawn()?;
    for _ in 0..500 {
        if socket.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let runtime = tokio::runtime::Runtime::new()?;
    let http = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let result = runtime.block_on(async {
        let memory = start(mcp, &sandbox.1, "memory")?;
        let shared = start(mcp, &sandbox.1, &format!("redis+unix://{}", socket.display()))?;
        let on_memory = sign_in(&http, &memory.origin, "sk_test_bench_memory").await?;
        let on_redis = sign_in(&http, &shared.origin, "sk_test_bench_redis").await?;
        let token = |t: &Value| t["access_token"].as_str().unwrap_or_default().to_owned();
        let (a_memory, a_redis) = (token(&on_memory), token(&on_redis));
        // Warm both, then alternate rounds.
        throughput(&http, &memory.origin, &a_memory, 200).await;
        throughput(&http, &shared.origin, &a_redis, 200).await;
        let (mut m, mut r) = (Vec::new(), Vec::new());
        let mut per_request = 0.0;
        for round in 0..3 {
            if round % 2 == 0 {
                m.push(throughput(&http, &memory.origin, &a_memory, calls).await);
            }
            let before = redis_calls(&socket);
            r.push(throughput(&http, &shared.origin, &a_redis, calls).await);
            per_request = (redis_calls(&socket) - before) as f64 / calls as f64;
            if round % 2 == 1 {
                m.push(throughput(&http, &memory.origin, &a_memory, calls).await);
            }
        }
        println!("tools/call (getCurrentUser, {calls} a round, 8 at a time, 3 rounds, medians):");
        println!("  --store memory: {:.0}/s  {m:.0?}", median(m.clone()));
        println!("  --store redis:  {:.0}/s  {r:.0?}", median(r.clone()));
        println!("  ratio redis / memory: {:.3}", median(r) / median(m));
        println!("store round trips per /mcp request (redis, INFO commandstats): {per_request:.2}");

        // One grant's chain of refreshes, on the memory store.
        let pid = memory.child.id();
        let before = process::rss_mib(pid);
        let mut refresh = on_memory["refresh_token"].as_str().unwrap_or_default().to_owned();
        let started = Instant::now();
        for n in 0..refreshes {
            let answer: Value = http
                .post(format!("{}/token", memory.origin))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)]))
                .send()
                .await?
                .json()
                .await?;
            refresh = answer["refresh_token"]
                .as_str()
                .ok_or_else(|| format!("refresh {n} refused: {answer}"))?
                .to_owned();
        }
        let after = process::rss_mib(pid);
        println!(
            "a chain of {refreshes} refreshes on --store memory ({:.1} s): RSS {before:.1} MiB before, {after:.1} MiB after ({:.3}x)",
            started.elapsed().as_secs_f64(),
            after / before
        );
        Ok::<(), Box<dyn std::error::Error>>(())
    });
    let _ = redis.kill();
    let _ = redis.wait();
    let _ = std::fs::remove_dir_all(&dir);
    result
}
