//! Test helpers: sample arguments built from the spec's schemas, and a scripted
//! HTTP server on 127.0.0.1 for sequences httpmock cannot express (a 503 then a
//! 200, a dropped connection).
#![allow(dead_code)]

#[cfg(feature = "mcp")]
pub mod mcp_http;
#[cfg(feature = "mcp")]
pub mod nginx;
#[cfg(all(feature = "mcp", feature = "sandbox"))]
pub mod oauth;
#[cfg(feature = "mcp")]
pub mod redis;
#[cfg(all(feature = "mcp", feature = "sandbox"))]
pub mod team;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

pub const KEY: &str = "sk_test_0123456789abcdef";
pub const UUID_A: &str = "9f3a7b2e-1c4d-4e8f-a5b6-7d9e0f1a2b3c";

/// A value that satisfies `schema` (required fields only, smallest allowed values).
pub fn sample(schema: &Value) -> Value {
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        let mut merged = Map::new();
        for s in all {
            if let Value::Object(m) = sample(s) {
                merged.extend(m);
            }
        }
        return Value::Object(merged);
    }
    if let Some(first) = schema
        .get("oneOf")
        .or_else(|| schema.get("anyOf"))
        .and_then(|v| v.get(0))
    {
        if first.get("type").is_some() || first.get("properties").is_some() {
            return sample(first);
        }
        // `anyOf: [{required: [...]}]` next to `properties`: honour the first alternative.
        let mut s = schema.clone();
        if let Some(obj) = s.as_object_mut() {
            obj.remove("anyOf");
            obj.remove("oneOf");
            obj.insert("required".into(), first["required"].clone());
        }
        return sample(&s);
    }
    if let Some(e) = schema.get("enum").and_then(|e| e.get(0)) {
        return e.clone();
    }
    let ty = match schema.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null"),
        _ if schema.get("properties").is_some() => "object",
        _ => "string",
    };
    match ty {
        "object" => {
            let mut out = Map::new();
            let required: Vec<&str> = schema
                .get("required")
                .and_then(Value::as_array)
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let min = schema.get("minProperties").and_then(Value::as_u64).unwrap_or(0) as usize;
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (name, prop) in props {
                    if required.contains(&name.as_str()) || out.len() < min {
                        out.insert(name.clone(), sample(prop));
                    }
                }
            }
            Value::Object(out)
        }
        "array" => {
            let min = schema.get("minItems").and_then(Value::as_u64).unwrap_or(1).max(1);
            let item = sample(schema.get("items").unwrap_or(&json!({"type": "string"})));
            Value::Array((0..min).map(|_| item.clone()).collect())
        }
        "integer" => json!(schema.get("minimum").and_then(Value::as_i64).unwrap_or(1).max(1)),
        "number" => json!(schema.get("minimum").and_then(Value::as_f64).unwrap_or(1.0).max(1.0)),
        "boolean" => json!(true),
        "null" => Value::Null,
        _ => {
            let format = schema.get("format").and_then(Value::as_str).unwrap_or("");
            let pattern = schema.get("pattern").and_then(Value::as_str).unwrap_or("");
            match format {
                "uuid" => return json!(UUID_A),
                "date" => return json!("2026-01-02"),
                "date-time" => return json!("2026-01-02T03:04:05Z"),
                "uri" => return json!("https://cdn.example.com/file.mp4"),
                "email" => return json!("user@example.com"),
                _ => {}
            }
            if pattern.contains(r"\d{4}-\d{2}-\d{2}") {
                return json!("2026-01-02");
            }
            if pattern.starts_with("^image/") {
                return json!("image/png");
            }
            if pattern.starts_with("^evt_") {
                return json!("evt_1");
            }
            let min = schema.get("minLength").and_then(Value::as_u64).unwrap_or(1).max(3) as usize;
            let max = schema.get("maxLength").and_then(Value::as_u64).unwrap_or(64) as usize;
            json!("abcdefgh".repeat(4).chars().take(min.min(max)).collect::<String>())
        }
    }
}

/// One request as the scripted server received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// When it had been read whole, by the wall clock (a `Retry-After` date
    /// or an `X-RateLimit-Reset` is a wall-clock time).
    pub at: std::time::SystemTime,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What the scripted server does with one connection.
#[derive(Debug, Clone)]
pub enum Reply {
    /// An HTTP response: status, extra headers, body.
    Http(u16, Vec<(&'static str, String)>, String),
    /// Read the request, then close the connection without answering.
    Drop,
    /// Read the request, then wait this long before answering 200 `{}`.
    Slow(Duration),
    /// Read the request, then write these exact bytes and close.
    Raw(Vec<u8>),
    /// Read the request, write this head (status line and headers), then say
    /// nothing more for up to 10 s.
    HeadThenSilence(String),
    /// Read the request, write this head, then write filler bytes until `total`
    /// or until the client hangs up; the bytes written are counted in
    /// [`Scripted::flooded`].
    Flood { head: String, total: u64 },
}

pub fn json_reply(status: u16, body: Value) -> Reply {
    Reply::Http(
        status,
        vec![("content-type", "application/json".into())],
        body.to_string(),
    )
}

/// A server on 127.0.0.1 that answers each connection with the next scripted
/// reply (`Connection: close`), records what it received, and stops after the
/// script or after 30 s, whichever comes first.
pub struct Scripted {
    pub base_url: String,
    pub received: Arc<Mutex<Vec<Received>>>,
    /// Body bytes the `Flood` replies managed to write.
    pub flooded: Arc<std::sync::atomic::AtomicU64>,
    /// Replies carried out to their end (the connection closed or dropped).
    served: tokio::sync::watch::Receiver<usize>,
}

impl Scripted {
    pub async fn start(script: Vec<Reply>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("local addr");
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = received.clone();
        let flooded = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let written = flooded.clone();
        let (done, served) = tokio::sync::watch::channel(0usize);
        tokio::spawn(async move {
            let serve = async {
                for reply in script {
                    let Ok((mut socket, _)) = listener.accept().await else {
                        return;
                    };
                    let Some(request) = read_request(&mut socket).await else {
                        continue;
                    };
                    log.lock().unwrap().push(request);
                    match reply {
                        Reply::Drop => drop(socket),
                        Reply::Slow(wait) => {
                            tokio::time::sleep(wait).await;
                            let _ = socket.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}").await;
                        }
                        Reply::Raw(bytes) => {
                            let _ = socket.write_all(&bytes).await;
                            let _ = socket.shutdown().await;
                        }
                        Reply::HeadThenSilence(head) => {
                            let _ = socket.write_all(head.as_bytes()).await;
                            tokio::time::sleep(Duration::from_secs(10)).await;
                        }
                        Reply::Flood { head, total } => {
                            let _ = socket.write_all(head.as_bytes()).await;
                            let chunk = vec![b'x'; 64 * 1024];
                            let mut sent = 0u64;
                            while sent < total {
                                let n = chunk.len().min((total - sent) as usize);
                                let wrote =
                                    tokio::time::timeout(Duration::from_secs(2), socket.write_all(&chunk[..n])).await;
                                if !matches!(wrote, Ok(Ok(()))) {
                                    break;
                                }
                                sent += n as u64;
                                written.store(sent, std::sync::atomic::Ordering::SeqCst);
                            }
                            drop(socket);
                        }
                        Reply::Http(status, headers, body) => {
                            let mut out = format!(
                                "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n",
                                body.len()
                            );
                            for (k, v) in headers {
                                out.push_str(&format!("{k}: {v}\r\n"));
                            }
                            out.push_str("\r\n");
                            out.push_str(&body);
                            let _ = socket.write_all(out.as_bytes()).await;
                            let _ = socket.shutdown().await;
                        }
                    }
                    done.send_modify(|n| *n += 1);
                }
            };
            let _ = tokio::time::timeout(Duration::from_secs(30), serve).await;
        });
        Self {
            base_url: format!("http://{addr}/api/ext"),
            received,
            flooded,
            served,
        }
    }

    pub fn requests(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Waits until `n` replies have been carried out to their end (a
    /// `Flood` stops when the client hangs up), so that what the server
    /// counted is final. Fails if the server stops first.
    pub async fn served(&self, n: usize) {
        let mut served = self.served.clone();
        served
            .wait_for(|done| *done >= n)
            .await
            .unwrap_or_else(|_| panic!("the scripted server stopped before {n} replies were carried out"));
    }
}

async fn read_request(socket: &mut tokio::net::TcpStream) -> Option<Received> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let header_end = loop {
        let n = tokio::time::timeout(Duration::from_secs(5), socket.read(&mut chunk))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_owned();
    let target = first.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        })
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[header_end..].to_vec();
    while body.len() < len {
        let n = tokio::time::timeout(Duration::from_secs(5), socket.read(&mut chunk))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Received {
        method,
        target,
        headers,
        body,
        at: std::time::SystemTime::now(),
    })
}

/// A client for `base_url` with the test key and fast retries.
pub fn client(base_url: &str) -> tokportal::Client {
    tokportal::Client::builder()
        .api_key(KEY)
        .base_url(base_url)
        .retry(
            tokportal::RetryPolicy::default()
                .initial_backoff(Duration::from_millis(10))
                .max_backoff(Duration::from_secs(2))
                .jitter(false),
        )
        .build()
        .expect("client builds")
}

/// A client for `base_url` with the test key that sends every call once.
pub fn client_without_retries(base_url: &str) -> tokportal::Client {
    tokportal::Client::builder()
        .api_key(KEY)
        .base_url(base_url)
        .no_retries()
        .build()
        .expect("client builds")
}

/// A client for `base_url` with the test key that refuses whatever the
/// vendored contract does not know (`strict_contract(true)`).
pub fn strict_client(base_url: &str) -> tokportal::Client {
    tokportal::Client::builder()
        .api_key(KEY)
        .base_url(base_url)
        .strict_contract(true)
        .build()
        .expect("client builds")
}

/// An MCP client (rmcp's) that keeps the log messages a server sends it
/// (`notifications/message`), as `{"level", "logger", "data"}`.
#[derive(Clone, Default)]
pub struct LogListener(pub Arc<Mutex<Vec<Value>>>);

impl rmcp::ClientHandler for LogListener {
    #[allow(deprecated)] // MCP logging (SEP-2577), still served to these clients
    async fn on_logging_message(
        &self,
        params: rmcp::model::LoggingMessageNotificationParam,
        _context: rmcp::service::NotificationContext<rmcp::RoleClient>,
    ) {
        self.0
            .lock()
            .unwrap()
            .push(json!({"level": params.level, "logger": params.logger, "data": params.data}));
    }
}

/// Where `name` is installed, or why not. A test that needs it is skipped
/// with a line on the terminal that says why and how to install it, except
/// in CI (`CI` set), where `.ci/run` installs it and the test must run.
/// `name` may list alternatives (`chromium|google-chrome`): the first found.
pub fn required_program(name: &str, install: &str) -> Option<std::path::PathBuf> {
    use std::io::Write as _;
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<std::path::PathBuf> = std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/local/sbin".into()])
        .collect();
    let found = name
        .split('|')
        .find_map(|one| dirs.iter().map(|dir| dir.join(one)).find(|p| p.is_file()));
    if found.is_none() {
        let why = format!("`{name}` is not installed ({install}); .ci/run installs it");
        assert!(std::env::var_os("CI").is_none(), "{why}, and CI requires this test");
        // Straight to the terminal: cargo test shows a passing test's
        // captured output to nobody.
        let _ = writeln!(std::io::stderr().lock(), "SKIPPED: {why}");
    }
    found
}

/// A running `chromedriver`, killed when dropped.
pub struct Chromedriver {
    child: std::process::Child,
    /// `http://127.0.0.1:PORT`, where it listens.
    pub url: String,
}

impl Chromedriver {
    /// Starts `chromedriver --port=0`: it takes a port the system gives it
    /// and says which on stdout (`ChromeDriver was started successfully on
    /// port N.`), so no port is chosen here and raced for. The line is
    /// printed once it listens; the rest of its stdout is read and dropped.
    pub fn start(path: &std::path::Path) -> Self {
        use std::io::BufRead as _;
        use std::process::{Command, Stdio};
        let mut child = Command::new(path)
            .arg("--port=0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let stdout = child.stdout.take().expect("its stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut said = Vec::new();
            let mut told = false;
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                if told {
                    continue;
                }
                let port = line
                    .split("started successfully on port ")
                    .nth(1)
                    .and_then(|rest| rest.trim().trim_end_matches('.').parse::<u16>().ok());
                said.push(line);
                if let Some(port) = port {
                    told = true;
                    let _ = tx.send(Ok(port));
                }
            }
            if !told {
                let _ = tx.send(Err(said.join("\n")));
            }
        });
        // Killed on drop, should it not say where it listens.
        let mut driver = Chromedriver {
            child,
            url: String::new(),
        };
        // A hang guard only: it says where it listens or exits at once.
        let port = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(Ok(port)) => port,
            Ok(Err(said)) => panic!("chromedriver exited without saying its port: {said}"),
            Err(e) => panic!("chromedriver did not say its port: {e}"),
        };
        driver.url = format!("http://127.0.0.1:{port}");
        driver
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP forwarder on 127.0.0.1: for a server that must know its public
/// address before it starts (`--public-url`), and that itself listens on
/// a port the system chose. The forwarder's port is bound first and held,
/// so it is never raced for.
pub struct Forward {
    listener: TcpListener,
}

impl Forward {
    /// Binds a port of the system's choosing.
    pub async fn bind() -> Self {
        Forward {
            listener: TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1"),
        }
    }

    /// `http://127.0.0.1:PORT`, the forwarder's own address.
    pub fn origin(&self) -> String {
        format!("http://{}", self.listener.local_addr().expect("local addr"))
    }

    /// Forwards every connection to `target` (`HOST:PORT`) from now on.
    pub fn to(self, target: String) {
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = self.listener.accept().await {
                let target = target.clone();
                tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
    }
}
