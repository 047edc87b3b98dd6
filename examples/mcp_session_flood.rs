//! Memory of `tokportal-mcp --http` under a session flood: N `initialize`
//! requests, each with its own made-up key (what anyone who can reach the
//! port can send), 32 at a time. Prints the answers by status and the
//! server's resident memory (VmRSS) and peak (VmHWM) afterwards, read from
//! `/proc` (Linux).
//!
//! ```text
//! cargo build --release --features mcp --bin tokportal-mcp
//! cargo run --release --example mcp_session_flood -- target/release/tokportal-mcp [BASELINE_BIN] [N]
//! ```
//!
//! The binary is measured three times: with `--sessions` (bounded sessions,
//! the defaults: 1000 in all, 32 per key, 64 half-open, 10 minutes idle)
//! under bare `initialize`s and under whole handshakes (`initialize`, then
//! `notifications/initialized` on the session, as a real client does), and
//! stateless (the default). A baseline binary (one built from another commit)
//! runs with no flag and whole handshakes, side by side, and the ratios are
//! printed. N defaults to 10,000.
//!
//! Then `--oauth`: N dynamic registrations (`/register`) and N consent pages
//! (`/authorize` for those clients), 32 at a time: what a crawler or an
//! attacker can send without a key. Nothing of it is stored (client ids,
//! and the consent form's CSRF token, are sealed), so memory should stay
//! where the stateless run left it; the ratio to that run is printed.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;

struct Measured {
    statuses: BTreeMap<u16, usize>,
    rss_kib: u64,
    peak_kib: u64,
    seconds: f64,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(binary) = args.first().cloned() else {
        return Err("usage: mcp_session_flood <tokportal-mcp binary> [baseline binary] [N]".into());
    };
    let n: usize = args.iter().skip(1).find_map(|a| a.parse().ok()).unwrap_or(10_000);
    let baseline = args.get(1).filter(|a| a.parse::<usize>().is_err()).cloned();
    let runtime = tokio::runtime::Runtime::new()?;
    println!("{n} initializes, each with its own key, 32 at a time");
    let bare = runtime.block_on(flood(&binary, &["--sessions"], n, false))?;
    print("--sessions, bare initializes", &bare);
    let whole = runtime.block_on(flood(&binary, &["--sessions"], n, true))?;
    print("--sessions, whole handshakes", &whole);
    let stateless = runtime.block_on(flood(&binary, &[], n, true))?;
    print("stateless", &stateless);
    let oauth = runtime.block_on(oauth_flood(&binary, n))?;
    print("--oauth: register+authorize", &oauth);
    println!(
        "ratio --oauth / stateless: RSS {:.3}, peak {:.3}",
        oauth.rss_kib as f64 / stateless.rss_kib as f64,
        oauth.peak_kib as f64 / stateless.peak_kib as f64
    );
    if let Some(baseline) = baseline {
        let base = runtime.block_on(flood(&baseline, &[], n, true))?;
        print("baseline, whole handshakes", &base);
        for (name, m) in [
            ("--sessions, bare", &bare),
            ("--sessions, whole", &whole),
            ("stateless", &stateless),
        ] {
            println!(
                "ratio {name:<18} / baseline: RSS {:.3}, peak {:.3}",
                m.rss_kib as f64 / base.rss_kib as f64,
                m.peak_kib as f64 / base.peak_kib as f64
            );
        }
    }
    Ok(())
}

fn print(name: &str, m: &Measured) {
    println!(
        "{name:<28} RSS {:>7.1} MiB, peak {:>7.1} MiB, {:.1} s, answers {:?}",
        m.rss_kib as f64 / 1024.0,
        m.peak_kib as f64 / 1024.0,
        m.seconds,
        m.statuses
    );
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn proc_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// The answers by status, and the server's memory once they have settled.
async fn measure(running: &Running, statuses: Vec<u16>, started: Instant) -> Measured {
    let seconds = started.elapsed().as_secs_f64();
    // Let answers finish and the allocator settle.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let pid = running.0.id();
    let mut counts = BTreeMap::new();
    for s in statuses {
        *counts.entry(s).or_insert(0) += 1;
    }
    Measured {
        statuses: counts,
        rss_kib: proc_kib(pid, "VmRSS:"),
        peak_kib: proc_kib(pid, "VmHWM:"),
        seconds,
    }
}

/// Starts `binary` with `flags` on a free port: the process and its `/mcp` URL.
fn start(binary: &str, flags: &[&str], env: &[(&str, &str)]) -> Result<(Running, String), Box<dyn std::error::Error>> {
    let mut command = Command::new(binary);
    command
        .args(["--http", "127.0.0.1:0"])
        .args(flags)
        .env("TOKPORTAL_BASE_URL", "http://127.0.0.1:9")
        .env_remove("TOKPORTAL_API_KEY")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn()?;
    let stderr = child.stderr.take().ok_or("no stderr")?;
    let running = Running(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(u) = line.split("listening on ").nth(1) {
                let _ = tx.send(u.split_whitespace().next().unwrap_or_default().to_owned());
            }
        }
    });
    let url = rx
        .recv_timeout(Duration::from_secs(20))
        .map_err(|_| "the server did not say where it listens")?;
    Ok((running, url))
}

async fn oauth_flood(binary: &str, n: usize) -> Result<Measured, Box<dyn std::error::Error>> {
    let (running, url) = start(
        binary,
        &["--oauth", "--public-url", "http://127.0.0.1"],
        &[(
            "TOKPORTAL_MCP_OAUTH_SECRET",
            "a flood's sealing secret, at least 32 bytes",
        )],
    )?;
    let origin = url.trim_end_matches("/mcp").to_owned();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
    let started = Instant::now();
    let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    let statuses: Vec<u16> = futures::stream::iter(0..n)
        .map(|i| {
            let (http, origin) = (http.clone(), origin.clone());
            async move {
                let redirect = format!("https://client{i}.example/callback");
                let registered = http
                    .post(format!("{origin}/register"))
                    .json(&serde_json::json!({"client_name": format!("flood {i}"), "redirect_uris": [redirect]}))
                    .send()
                    .await;
                let Ok(registered) = registered else { return 0 };
                let Ok(body) = registered.json::<serde_json::Value>().await else {
                    return 1;
                };
                let Some(id) = body["client_id"].as_str() else { return 2 };
                let page = http
                    .get(format!("{origin}/authorize"))
                    .query(&[
                        ("response_type", "code"),
                        ("client_id", id),
                        ("redirect_uri", redirect.as_str()),
                        ("code_challenge", challenge),
                        ("code_challenge_method", "S256"),
                        ("state", "s"),
                    ])
                    .send()
                    .await;
                page.map(|p| p.status().as_u16()).unwrap_or(0)
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    Ok(measure(&running, statuses, started).await)
}

async fn flood(
    binary: &str,
    flags: &[&str],
    n: usize,
    handshake: bool,
) -> Result<Measured, Box<dyn std::error::Error>> {
    let (running, url) = start(binary, flags, &[])?;
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
    let started = Instant::now();
    let statuses: Vec<u16> = futures::stream::iter(0..n)
        .map(|i| {
            let (http, url) = (http.clone(), url.clone());
            async move {
                let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                    "protocolVersion": "2025-06-18", "capabilities": {},
                    "clientInfo": {"name": "flood", "version": "1"}}});
                let sent = http
                    .post(&url)
                    .header("accept", "application/json, text/event-stream")
                    .bearer_auth(format!("sk_made_up_{i}"))
                    .json(&body)
                    .send()
                    .await;
                let key = format!("sk_made_up_{i}");
                match sent {
                    // The headers are enough: the session exists (or was refused) by then.
                    Ok(response) => {
                        let status = response.status().as_u16();
                        let session = response.headers().get("mcp-session-id").cloned();
                        drop(response);
                        if let (true, Some(session)) = (handshake, session) {
                            let initialized =
                                serde_json::json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
                            let _ = http
                                .post(&url)
                                .header("accept", "application/json, text/event-stream")
                                .header("mcp-session-id", session)
                                .header("mcp-protocol-version", "2025-06-18")
                                .bearer_auth(&key)
                                .json(&initialized)
                                .send()
                                .await;
                        }
                        status
                    }
                    Err(e) => {
                        if i % 1000 == 0 {
                            eprintln!("request {i}: {e:?}");
                        }
                        0
                    }
                }
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    Ok(measure(&running, statuses, started).await)
}
