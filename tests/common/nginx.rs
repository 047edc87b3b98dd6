//! nginx in front of two `tokportal-mcp` replicas, with the deploy file
//! (`deploy/nginx/tokportal-mcp.conf`) as users run it.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// nginx with `deploy/nginx/tokportal-mcp.conf`, its upstreams replaced
/// with these, listening on a socket handed to it.
pub struct Nginx {
    child: Child,
    dir: tempfile::TempDir,
    /// `127.0.0.1:PORT`, where it listens.
    pub address: std::net::SocketAddr,
}

impl Nginx {
    /// The listening socket is bound here, on a port of the system's
    /// choosing, and handed to nginx as it hands its own to a new binary on
    /// an upgrade: as an open descriptor named in `NGINX` (here its stdin,
    /// descriptor 0). nginx takes an inherited socket whose address a
    /// `listen` names instead of binding one, so no port is raced for, and
    /// a connection made before it is ready waits in the socket's backlog.
    pub fn start(binary: &std::path::Path, upstreams: [&str; 2]) -> Self {
        Self::start_on(binary, Self::bind(), upstreams)
    }

    /// The socket nginx will listen on, bound now: its address can be
    /// named (a public URL) before nginx and its upstreams start.
    pub fn bind() -> std::net::TcpListener {
        std::net::TcpListener::bind("127.0.0.1:0").unwrap()
    }

    /// nginx on `listener` (from [`Nginx::bind`]).
    pub fn start_on(binary: &std::path::Path, listener: std::net::TcpListener, upstreams: [&str; 2]) -> Self {
        let address = listener.local_addr().unwrap();
        let listen = address.port();
        let dir = tempfile::tempdir().unwrap();
        let conf =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/nginx/tokportal-mcp.conf")).unwrap();
        let mut conf = conf;
        for (from, to) in [
            ("server 127.0.0.1:8081 ", format!("server {} ", upstreams[0])),
            ("server 127.0.0.1:8082 ", format!("server {} ", upstreams[1])),
            ("listen 127.0.0.1:8080;", format!("listen 127.0.0.1:{listen};")),
        ] {
            assert_eq!(conf.matches(from).count(), 1, "the deploy file names {from:?} once");
            conf = conf.replace(from, &to);
        }
        let d = dir.path().display();
        std::fs::write(dir.path().join("tokportal-mcp.conf"), conf).unwrap();
        for temp in ["body", "proxy", "fastcgi", "uwsgi", "scgi"] {
            let path = dir.path().join(temp);
            std::fs::create_dir(&path).unwrap();
            // nginx's workers run as `nobody` when the master is root.
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777)).unwrap();
        }
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(
            dir.path().join("nginx.conf"),
            format!(
                "daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log info;\n\
                 events {{ worker_connections 256; }}\n\
                 http {{\n  log_format upstreams '$request_method $uri $status $upstream_addr';\n  \
                 access_log {d}/access.log upstreams;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  \
                 fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n  \
                 include {d}/tokportal-mcp.conf;\n}}\n"
            ),
        )
        .unwrap();
        let mut child = Command::new(binary)
            .args(["-e", &format!("{d}/error.log"), "-p"])
            .arg(dir.path())
            .arg("-c")
            .arg(dir.path().join("nginx.conf"))
            .env("NGINX", "0;")
            .stdin(Stdio::from(std::os::fd::OwnedFd::from(listener)))
            .spawn()
            .expect("nginx starts");
        // It has read its configuration and taken the socket once it has
        // written its pid file; should it exit first, its log says why.
        let pid = dir.path().join("nginx.pid");
        let start = Instant::now();
        while !pid.exists() {
            let log = || std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default();
            if let Ok(Some(status)) = child.try_wait() {
                panic!("nginx exited ({status}): {}", log());
            }
            if start.elapsed() > Duration::from_secs(30) {
                panic!("nginx did not start (hang guard): {}", log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let log = std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default();
        assert!(log.contains("using inherited sockets"), "{log}");
        Nginx { child, dir, address }
    }

    /// Its access log so far, a request a line: `METHOD PATH STATUS
    /// REPLICA`, the replica being the upstream that answered
    /// (`127.0.0.1:PORT`; several, comma-separated, when one was retried;
    /// `-` when nginx answered itself).
    pub fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("access.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-QUIT", &self.child.id().to_string()])
            .status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = &self.dir;
    }
}
