//! Memory of `tokportal sandbox` after 100,000 requests, journal and all:
//! the journal is a ring bounded by entries (`--journal N`) and by bytes
//! (32 MiB), so resident memory must level off however many requests come.
//!
//! ```text
//! cargo build --release --features cli --bin tokportal
//! cargo run --release --features cli --example journal_memory -- target/release/tokportal [BASELINE_BIN] [N]
//! ```
//!
//! Each run starts a sandbox, sends N requests (100,000 by default), 8 at a
//! time over kept-alive connections: nine in ten `GET /me`, one in ten a
//! `POST /bundles` whose 60 KiB title the contract refuses (a 400 whose
//! body the journal keeps, cut at 64 KiB). Resident memory (VmRSS) is read
//! from `/proc` (Linux) after 10 %, 50 % and all of the requests. The runs
//! are `--journal 0` (nothing kept: the baseline), the default 1000, and
//! 100000 (where the byte bound, not the count, must hold it); a baseline
//! binary (built from a commit without a journal) runs side by side when
//! given. Ratios are against `--journal 0`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Instant;

use futures::StreamExt;

/// A `tokportal sandbox` process, killed when dropped.
struct Sandbox(std::process::Child, String);

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(binary: &str, journal: Option<usize>) -> Result<Sandbox, Box<dyn std::error::Error>> {
    let mut command = Command::new(binary);
    command.args(["sandbox", "--port", "0", "--rate-limit", "4000000000"]);
    if let Some(n) = journal {
        command.args(["--journal", &n.to_string()]);
    }
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::null()).spawn()?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().ok_or("no stdout")?).read_line(&mut line)?;
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .ok_or_else(|| format!("unexpected first line {line:?}"))?
        .to_owned();
    Ok(Sandbox(child, url))
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Sends `n` requests; the RSS after 10 %, 50 % and 100 % of them, and the seconds taken.
async fn load(sandbox: &Sandbox, n: usize) -> Result<([u64; 3], f64), Box<dyn std::error::Error>> {
    let http = reqwest::Client::builder().pool_max_idle_per_host(8).build()?;
    let title = "x".repeat(60 * 1024);
    let refused = serde_json::json!({"bundle_type": "account_only", "title": title}).to_string();
    let started = Instant::now();
    let mut marks = [0u64; 3];
    let mut done = 0;
    for (at, share) in [(0, 10), (1, 50), (2, 100)] {
        let until = n * share / 100;
        let batch = until - done;
        let offset = done;
        futures::stream::iter(0..batch)
            .map(|i| {
                let (http, url, body) = (&http, &sandbox.1, &refused);
                async move {
                    let request = if (offset + i) % 10 == 9 {
                        http.post(format!("{url}/bundles"))
                            .header("content-type", "application/json")
                            .body(body.clone())
                    } else {
                        http.get(format!("{url}/me"))
                    };
                    request.header("x-api-key", "sk_test_journal_memory").send().await
                }
            })
            .buffer_unordered(8)
            .for_each(|sent| {
                if let Err(e) = sent {
                    eprintln!("request failed: {e}");
                }
                std::future::ready(())
            })
            .await;
        done = until;
        marks[at] = rss_kib(sandbox.0.id());
    }
    Ok((marks, started.elapsed().as_secs_f64()))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(binary) = args.first().cloned() else {
        return Err("usage: journal_memory <tokportal binary> [baseline binary] [N]".into());
    };
    let n: usize = args.iter().skip(1).find_map(|a| a.parse().ok()).unwrap_or(100_000);
    let baseline = args.get(1).filter(|a| a.parse::<usize>().is_err()).cloned();
    let mut runs: Vec<(String, String, Option<usize>)> = vec![
        ("--journal 0".into(), binary.clone(), Some(0)),
        ("--journal 1000 (default)".into(), binary.clone(), Some(1000)),
        ("--journal 100000".into(), binary.clone(), Some(100_000)),
    ];
    if let Some(b) = baseline {
        runs.push(("baseline binary".into(), b, None));
    }
    println!("{n} requests, 8 at a time; VmRSS in MiB after 10 % / 50 % / 100 %");
    let mut reference = None;
    for (name, binary, journal) in runs {
        let sandbox = start(&binary, journal)?;
        let idle = rss_kib(sandbox.0.id());
        let (marks, seconds) = load(&sandbox, n).await?;
        let mib = |k: u64| k as f64 / 1024.0;
        let base = *reference.get_or_insert(marks[2]);
        println!(
            "{name:<26} idle {:>6.1}  {:>6.1} / {:>6.1} / {:>6.1}  ({:>5.2}x --journal 0; growth 50 % -> 100 %: {:+.1} MiB)  {seconds:.1} s",
            mib(idle),
            mib(marks[0]),
            mib(marks[1]),
            mib(marks[2]),
            marks[2] as f64 / base as f64,
            mib(marks[2]) - mib(marks[1]),
        );
    }
    Ok(())
}
