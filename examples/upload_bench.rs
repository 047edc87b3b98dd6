//! Measures a streamed multipart upload against `curl -F` on the same file and
//! the same local server, and prints peak resident memory and throughput.
//!
//! ```text
//! cargo run --release --example upload_bench            # 1 GiB, 3 rounds
//! cargo run --release --example upload_bench -- 256 5   # 256 MiB, 5 rounds
//! ```
//!
//! The orchestrator runs a sink server on 127.0.0.1 (it answers
//! `Expect: 100-continue`, reads and discards the body, answers 200) and starts
//! each uploader as its own process, so each one's peak RSS is its own: this
//! example re-run as `client`, and `curl` under `/usr/bin/time -v`. Targets:
//! at most 1.05x curl's time and 1.5x its peak memory, whatever the size.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BUNDLE: &str = "9f3a7b2e-1c4d-4e8f-a5b6-7d9e0f1a2b3c";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("client") {
        // The uploader runs as a single-threaded program, like curl.
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        return runtime.block_on(client(&args[2], &args[3]));
    }
    tokio::runtime::Runtime::new()?.block_on(orchestrate(args))
}

async fn orchestrate(args: Vec<String>) -> Result<(), Box<dyn std::error::Error>> {
    let mib: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(1024);
    let rounds: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(3);
    let dir = tempfile_dir()?;
    let file = dir.join("bench.mp4");
    // Each uploader must deliver the whole file: the sink answers 200 only after reading the announced length.
    write_file(&file, mib * 1024 * 1024)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(sink(listener));
    let me = std::env::current_exe()?;

    println!("file: {} MiB, {rounds} rounds, server {base}", mib);
    let (mut sdk, mut curl) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        let (secs, rss_kib) = run_sdk(&me, &file, &base).await?;
        println!(
            "round {round}: tokportal {:>8.1} MiB/s, peak RSS {:>7.1} MiB",
            mib as f64 / secs,
            rss_kib as f64 / 1024.0
        );
        sdk.push((secs, rss_kib));
        let (secs, rss_kib) = run_curl(&file, &base).await?;
        println!(
            "round {round}: curl -F   {:>8.1} MiB/s, peak RSS {:>7.1} MiB",
            mib as f64 / secs,
            rss_kib as f64 / 1024.0
        );
        curl.push((secs, rss_kib));
    }
    let median = |v: &mut Vec<(f64, u64)>| {
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
        v[v.len() / 2]
    };
    let (s_secs, _) = median(&mut sdk);
    let (c_secs, _) = median(&mut curl);
    let s_rss = sdk.iter().map(|x| x.1).max().unwrap_or(0);
    let c_rss = curl.iter().map(|x| x.1).max().unwrap_or(0);
    println!();
    println!(
        "median time: tokportal {:.3} s ({:.1} MiB/s), curl {:.3} s ({:.1} MiB/s), ratio {:.3} (target <= 1.05)",
        s_secs,
        mib as f64 / s_secs,
        c_secs,
        mib as f64 / c_secs,
        s_secs / c_secs
    );
    println!(
        "peak RSS: tokportal {:.1} MiB, curl {:.1} MiB, ratio {:.2} (target <= 1.5)",
        s_rss as f64 / 1024.0,
        c_rss as f64 / 1024.0,
        s_rss as f64 / c_rss.max(1) as f64
    );
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

/// The uploader process: one streamed upload, then its own peak RSS.
async fn client(file: &str, base: &str) -> Result<(), Box<dyn std::error::Error>> {
    let client = tokportal::Client::builder()
        .api_key("sk_bench")
        .base_url(base)
        .no_retries()
        .build()?;
    let started = Instant::now();
    client
        .upload_video_direct(
            BUNDLE.parse()?,
            tokportal::uploads::UploadSource::path(file),
            Default::default(),
        )
        .await?;
    let secs = started.elapsed().as_secs_f64();
    println!("{secs} {}", peak_rss_kib().unwrap_or(0));
    Ok(())
}

/// Times the whole uploader process, start-up included, exactly as for curl.
async fn run_sdk(me: &Path, file: &Path, base: &str) -> Result<(f64, u64), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let out = tokio::process::Command::new(me)
        .arg("client")
        .arg(file)
        .arg(base)
        .output()
        .await?;
    let wall = started.elapsed().as_secs_f64();
    if !out.status.success() {
        return Err(format!("client failed: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    // The client prints its own upload time too; the wall time is what compares with curl.
    let text = String::from_utf8(out.stdout)?;
    let rss: u64 = text.split_whitespace().nth(1).ok_or("no rss")?.parse()?;
    Ok((wall, rss))
}

async fn run_curl(file: &Path, base: &str) -> Result<(f64, u64), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let out = tokio::process::Command::new("/usr/bin/time")
        .args(["-v", "curl", "-sS", "-o", "/dev/null", "-H", "X-API-Key: sk_bench"])
        .arg("-F")
        .arg(format!("file=@{}", file.display()))
        .arg("-F")
        .arg(format!("bundle_id={BUNDLE}"))
        .arg(format!("{base}/upload/video/direct"))
        .output()
        .await?;
    let secs = started.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!("curl failed: {stderr}").into());
    }
    let rss = stderr
        .lines()
        .find_map(|l| l.trim().strip_prefix("Maximum resident set size (kbytes): "))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Ok((secs, rss))
}

/// A server that reads and discards each request body, then answers 200.
async fn sink(listener: tokio::net::TcpListener) {
    loop {
        let Ok((mut socket, _)) = listener.accept().await else {
            return;
        };
        tokio::spawn(async move {
            let mut buf = vec![0u8; 256 * 1024];
            let mut head = Vec::new();
            let end = loop {
                let Ok(n) = socket.read(&mut buf).await else { return };
                if n == 0 {
                    return;
                }
                head.extend_from_slice(&buf[..n]);
                if let Some(p) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                    break p + 4;
                }
            };
            let text = String::from_utf8_lossy(&head[..end]).to_ascii_lowercase();
            let len: u64 = text
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if text.contains("expect: 100-continue")
                && socket.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await.is_err()
            {
                return;
            }
            let mut remaining = len.saturating_sub((head.len() - end) as u64);
            while remaining > 0 {
                match socket.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => remaining = remaining.saturating_sub(n as u64),
                }
            }
            // Only a body of the announced length counts: anything else fails the uploader loudly.
            let status = if len > 0 { "200 OK" } else { "411 Length Required" };
            let body = br#"{"data":{"url":"https://cdn.example.com/v.mp4"}}"#;
            let reply = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = socket.write_all(reply.as_bytes()).await;
            let _ = socket.write_all(body).await;
        });
    }
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn tempfile_dir() -> std::io::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("tokportal-upload-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn write_file(path: &Path, len: u64) -> std::io::Result<()> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    let chunk: Vec<u8> = (0..1024 * 1024).map(|i| (i % 251) as u8).collect();
    let mut left = len;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        f.write_all(&chunk[..n])?;
        left -= n as u64;
    }
    f.flush()?;
    let _ = Command::new("sync").status();
    Ok(())
}
