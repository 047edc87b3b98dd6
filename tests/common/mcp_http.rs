//! `tokportal-mcp --http` as a child process: started on a free port, its
//! stderr read to its end on a thread (kept, and the `listening on` line
//! giving its address), killed when dropped.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A running `tokportal-mcp --http`.
pub struct McpHttp {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub origin: String,
    /// Its stderr, a line each.
    pub log: Arc<Mutex<Vec<String>>>,
}

impl McpHttp {
    /// Starts it with `args` (`--http 127.0.0.1:0` unless they name
    /// `--http`), against `base_url`, with `env` set and no key of ours.
    pub fn start(base_url: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tokportal-mcp"));
        if !args.contains(&"--http") {
            command.args(["--http", "127.0.0.1:0"]);
        }
        command
            .args(args)
            .env_remove("TOKPORTAL_API_KEY")
            .env("TOKPORTAL_BASE_URL", base_url)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("tokportal-mcp starts");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let kept = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.split("listening on ").nth(1) {
                    let _ = tx.send(url.trim().trim_end_matches("/mcp").to_owned());
                }
                kept.lock().unwrap().push(line);
            }
        });
        let origin = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("tokportal-mcp says where it listens");
        McpHttp { child, origin, log }
    }

    /// Its `/mcp` URL.
    pub fn mcp(&self) -> String {
        format!("{}/mcp", self.origin)
    }

    /// Its process id (to signal it).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// How it exited, once it has.
    pub fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for McpHttp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
