//! Debian's `redis-server` for a test: on a Unix socket of its own (no port
//! to race for), with nothing written to disk; paused and resumed as a store
//! that stops answering would be; killed when dropped.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct RedisServer {
    child: Child,
    _dir: tempfile::TempDir,
    /// `redis+unix:///…/redis.sock`, for `--store`.
    pub url: String,
}

impl RedisServer {
    /// Starts one, or `None` (saying so) where redis-server is missing
    /// outside CI.
    pub fn start() -> Option<Self> {
        let binary = super::required_program("redis-server", "apt-get install -y redis-server")?;
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("redis.sock");
        let mut child = Command::new(binary)
            .args(["--port", "0", "--save", "", "--appendonly", "no", "--unixsocket"])
            .arg(&socket)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        // A hang guard, in polls: the socket appears once it listens.
        for _ in 0..1000 {
            if socket.exists() {
                return Some(RedisServer {
                    child,
                    url: format!("redis+unix://{}", socket.display()),
                    _dir: dir,
                });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("redis-server did not open its socket");
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// It stops answering (SIGSTOP): connections stay open, commands wait.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// It answers again (SIGCONT), with what it held.
    pub fn resume(&self) {
        self.signal("-CONT");
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.resume();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
