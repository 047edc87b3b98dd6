//! Peak memory of the `tokportal` CLI on huge answers: a 400 MB JSON success
//! answer and a 400 MB HTML error page (what a misbehaving proxy can send),
//! measured with `/usr/bin/time -f %M`, each CLI its own process.
//!
//! ```text
//! cargo build --release --features cli --bin tokportal
//! cargo run --release --example big_answer_rss -- target/release/tokportal [BASELINE_BIN] [MB]
//! ```
//!
//! With a second binary (the CLI built from another commit), both are run on
//! the same answers, side by side, and the ratio of their peaks is printed.
//! The server runs on 127.0.0.1 and stops with the example.

use std::process::Command;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let Some(cli) = args.get(1).cloned() else {
        return Err("usage: big_answer_rss <tokportal binary> [baseline binary] [MB]".into());
    };
    let baseline = args.get(2).filter(|a| a.parse::<u64>().is_err()).cloned();
    let mb: u64 = args.iter().skip(2).find_map(|a| a.parse().ok()).unwrap_or(400);
    let runtime = tokio::runtime::Runtime::new()?;
    let base = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        tokio::spawn(serve(listener, mb * 1_000_000));
        Ok::<_, std::io::Error>(base)
    })?;
    println!("answers of {mb} MB from {base}");
    let target = std::env::temp_dir().join(format!("big_answer_rss.{}.json", std::process::id()));
    let to_file = ["--output", target.to_str().unwrap_or("big_answer_rss.json")];
    for (case, path, extra) in [
        ("JSON success", "/countries", &[][..]),
        ("JSON to --output", "/countries", &to_file[..]),
        ("HTML 502", "/platforms", &[][..]),
    ] {
        let case = format!("{mb} MB {case}");
        let ours = peak_kib(&cli, &base, path, extra)?;
        let mut line = format!(
            "{case:<26} tokportal: exit {:?}, peak RSS {:>8.1} MiB",
            ours.0,
            ours.1 as f64 / 1024.0
        );
        if let Some(baseline) = &baseline {
            let theirs = peak_kib(baseline, &base, path, extra)?;
            line.push_str(&format!(
                " | baseline: exit {:?}, peak RSS {:>8.1} MiB | ratio {:.3}",
                theirs.0,
                theirs.1 as f64 / 1024.0,
                ours.1 as f64 / theirs.1 as f64
            ));
        }
        println!("{line}");
    }
    let _ = std::fs::remove_file(&target);
    Ok(())
}

/// Runs `<bin> <command> --no-retry --compact [extra]` (stdout to /dev/null) under
/// `/usr/bin/time`; returns its exit code and peak RSS in KiB.
fn peak_kib(
    bin: &str,
    base: &str,
    path: &str,
    extra: &[&str],
) -> Result<(Option<i32>, u64), Box<dyn std::error::Error>> {
    let command = if path == "/countries" {
        "list-countries"
    } else {
        "list-platforms"
    };
    let out = Command::new("/usr/bin/time")
        .args(["-f", "%M", bin, command, "--no-retry", "--compact"])
        .args(extra)
        .env("TOKPORTAL_BASE_URL", base)
        .env("TOKPORTAL_API_KEY", "sk_measure")
        .stdout(std::process::Stdio::null())
        .output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let kib = stderr
        .lines()
        .rev()
        .find_map(|l| l.trim().parse::<u64>().ok())
        .ok_or_else(|| format!("no peak RSS in {stderr}"))?;
    Ok((out.status.code(), kib))
}

/// `/countries`: a 200 JSON answer of `size` bytes; `/platforms`: a 502 HTML
/// page of `size` bytes. Each written in 1 MB chunks until the client hangs up.
async fn serve(listener: tokio::net::TcpListener, size: u64) {
    while let Ok((mut socket, _)) = listener.accept().await {
        tokio::spawn(async move {
            let mut buf = vec![0u8; 16 * 1024];
            let mut head = Vec::new();
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match socket.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let json = String::from_utf8_lossy(&head).contains("/countries");
            let (status, content_type, open, fill, close): (&str, &str, &[u8], u8, &[u8]) = if json {
                ("200 OK", "application/json", b"{\"data\":\"", b'a', b"\"}")
            } else {
                ("502 Bad Gateway", "text/html", b"<html>", b'x', b"</html>")
            };
            let header = format!(
                "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {size}\r\nconnection: close\r\n\r\n"
            );
            if socket.write_all(header.as_bytes()).await.is_err() || socket.write_all(open).await.is_err() {
                return;
            }
            let chunk = vec![fill; 1_000_000];
            let mut left = size - open.len() as u64 - close.len() as u64;
            while left > 0 {
                let n = left.min(chunk.len() as u64) as usize;
                if socket.write_all(&chunk[..n]).await.is_err() {
                    return;
                }
                left -= n as u64;
            }
            let _ = socket.write_all(close).await;
        });
    }
}
