//! A `tokportal sandbox` process for the measurement examples that measure
//! a whole sandbox (its RSS from `/proc`), and nothing else of theirs.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// A `tokportal sandbox` process and its URL, killed when dropped.
pub struct Sandbox(pub std::process::Child, pub String);

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `BINARY sandbox --port 0 ARGS...` and waits for its `listening on` line.
pub fn start(binary: &str, args: &[&std::ffi::OsStr]) -> Result<Sandbox, Box<dyn std::error::Error>> {
    let mut child = Command::new(binary)
        .args(["sandbox", "--port", "0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().ok_or("no stdout")?).read_line(&mut line)?;
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .ok_or_else(|| format!("unexpected first line {line:?}"))?
        .to_owned();
    Ok(Sandbox(child, url))
}

/// Process `pid`'s resident memory (VmRSS), in MiB; 0 where `/proc` has none.
pub fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}
