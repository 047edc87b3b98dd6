//! The sandbox as a workbench, end to end against a `tokportal sandbox`
//! process: the journal API and its live feed, `listen`, `trigger` and
//! `logs tail`, and their refusal to touch anything that is not a sandbox.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, ChildStderr, ChildStdout, Command, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

const KEY: &str = "sk_test_workbench";
const PATIENCE: Duration = Duration::from_secs(15);

/// A child process killed when the test ends, with its output read line by
/// line on threads.
struct Running {
    child: Child,
    stdout: mpsc::Receiver<String>,
    stderr: mpsc::Receiver<String>,
}

impl Running {
    fn spawn(command: &mut Command) -> Self {
        let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        fn lines<R: std::io::Read + Send + 'static>(from: R) -> mpsc::Receiver<String> {
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                for line in BufReader::new(from).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
            rx
        }
        let stdout: ChildStdout = child.stdout.take().unwrap();
        let stderr: ChildStderr = child.stderr.take().unwrap();
        Self {
            child,
            stdout: lines(stdout),
            stderr: lines(stderr),
        }
    }

    /// The next stdout line, or a failure naming `what`.
    fn line(&self, what: &str) -> String {
        self.stdout.recv_timeout(PATIENCE).unwrap_or_else(|_| {
            panic!(
                "no stdout line for {what}; stderr: {:?}",
                self.stderr.try_iter().collect::<Vec<_>>()
            )
        })
    }

    /// Waits for a stderr line that contains `text`.
    fn said(&self, text: &str) {
        let deadline = std::time::Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) if line.contains(text) => return,
                Ok(_) => {}
                Err(_) => panic!("never said {text:?}"),
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tokportal() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tokportal"));
    command.env_remove("TOKPORTAL_BASE_URL").env_remove("TOKPORTAL_API_KEY");
    command
}

/// `tokportal sandbox` on a free port, and its address.
fn sandbox() -> (Running, String) {
    sandbox_on(0)
}

/// `tokportal sandbox` on `port` (0: a free one), and its address.
fn sandbox_on(port: u16) -> (Running, String) {
    let running = Running::spawn(tokportal().args(["sandbox", "--port", &port.to_string()]));
    let first = running.line("listening on");
    let url = first
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("{first}"))
        .to_owned();
    let second = running.line("the inspector's address");
    assert_eq!(second, format!("inspector at {url}/_sandbox/"));
    (running, url)
}

fn run(url: &str, args: &[&str], config: &std::path::Path) -> Output {
    tokportal()
        .args(args)
        .env("TOKPORTAL_BASE_URL", url)
        .env("TOKPORTAL_API_KEY", KEY)
        .env("TOKPORTAL_CONFIG_DIR", config)
        .output()
        .unwrap()
}

fn get(url: &str) -> Value {
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(async { reqwest::get(url).await.unwrap().json().await.unwrap() })
}

/// What the local app was sent: each request's headers and body.
type Received = Arc<Mutex<Vec<(http::HeaderMap, Vec<u8>)>>>;

/// A local app that keeps what it is sent and answers 200 `thanks, got it`.
fn app() -> (SocketAddr, Received, tokio::runtime::Runtime) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let got = Arc::new(Mutex::new(Vec::new()));
    let kept = got.clone();
    let addr = runtime.block_on(async move {
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: http::HeaderMap, body: axum::body::Bytes| {
                let kept = kept.clone();
                async move {
                    kept.lock().unwrap().push((headers, body.to_vec()));
                    "thanks, got it"
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr
    });
    (addr, got, runtime)
}

#[test]
fn listen_forwards_triggered_events_signed_with_a_secret_that_survives_restarts() {
    let (_sandbox, url) = sandbox();
    let config = tempfile::tempdir().unwrap();
    let secret = run(&url, &["listen", "--print-secret"], config.path());
    assert!(secret.status.success());
    let secret = String::from_utf8(secret.stdout).unwrap();
    assert!(
        secret.starts_with("whsec_") && secret.lines().count() == 1,
        "{secret:?}"
    );
    let secret = secret.trim().to_owned();
    let (addr, got, _runtime) = app();
    let forward_to = format!("http://{addr}/hook");

    for round in 1..=2 {
        // A new `listen` each round: the secret is the same.
        let listen = Running::spawn(
            tokportal()
                .args([
                    "listen",
                    "--forward-to",
                    &forward_to,
                    "--events",
                    "bundle.published,account.in_review",
                ])
                .env("TOKPORTAL_BASE_URL", &url)
                .env("TOKPORTAL_API_KEY", KEY)
                .env("TOKPORTAL_CONFIG_DIR", config.path()),
        );
        listen.said("Ready: forwarding");
        let made = run(&url, &["trigger", "bundle.published"], config.path());
        assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
        let made: Value = serde_json::from_slice(&made.stdout).unwrap();
        let bundle = made["bundle_id"].as_str().unwrap().to_owned();
        let ops: Vec<&str> = made["calls"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["operation"].as_str().unwrap())
            .collect();
        assert_eq!(ops, ["createBundle", "configureBundleAccount", "publishBundle"]);
        assert_eq!(made["resources"]["publish"]["status"], "published");

        // bundle.published and account.in_review, in order; the other
        // events of the calls (bundle.created, account.configured, ...) are
        // filtered out by --events.
        let first = listen.line("the first forwarded event");
        let second = listen.line("the second forwarded event");
        assert!(
            first.contains("bundle.published") && first.contains("-> 200  thanks, got it"),
            "{first}"
        );
        assert!(second.contains("account.in_review"), "{second}");
        // A hang guard, in polls of 20 ms, not a bound on time asserted.
        let mut polls: u128 = 0;
        while got.lock().unwrap().len() < 2 * round {
            polls += 1;
            assert!(
                polls < PATIENCE.as_millis() / 20,
                "the app got {} events",
                got.lock().unwrap().len()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let received = got.lock().unwrap();
        assert_eq!(received.len(), 2 * round);
        let verifier = tokportal::webhooks::Verifier::new(secret.clone());
        let (headers, body) = &received[2 * round - 2];
        let event = verifier
            .construct_event(headers, body)
            .expect("signed with the printed secret");
        let payload: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(payload["type"], "bundle.published", "{event:?}");
        assert_eq!(payload["data"]["bundle_id"], bundle.as_str());
        assert!(
            tokportal::webhooks::Verifier::new("whsec_other")
                .construct_event(headers, body)
                .is_err()
        );
    }

    // Another key's events are not forwarded to this listener.
    let listen = Running::spawn(
        tokportal()
            .args(["listen", "--forward-to", &forward_to])
            .env("TOKPORTAL_BASE_URL", &url)
            .env("TOKPORTAL_API_KEY", "sk_test_someone_else")
            .env("TOKPORTAL_CONFIG_DIR", config.path()),
    );
    listen.said("Ready: forwarding");
    let before = got.lock().unwrap().len();
    // First an event of this test's key, then one of the listener's: the
    // feed keeps their order, so the first line forwarded must be the second's.
    assert!(
        run(&url, &["trigger", "bundle.created"], config.path())
            .status
            .success()
    );
    let theirs = tokportal()
        .args(["trigger", "bundle.created"])
        .env("TOKPORTAL_BASE_URL", &url)
        .env("TOKPORTAL_API_KEY", "sk_test_someone_else")
        .output()
        .unwrap();
    assert!(theirs.status.success());
    let theirs: Value = serde_json::from_slice(&theirs.stdout).unwrap();
    let line = listen.line("the listener's own event");
    assert!(line.contains("bundle.created") && line.contains("-> 200"), "{line}");
    let received = got.lock().unwrap();
    assert_eq!(received.len(), before + 1, "another key's event was forwarded");
    let payload: Value = serde_json::from_slice(&received[before].1).unwrap();
    assert_eq!(payload["data"]["bundle_id"], theirs["bundle_id"]);
}

#[test]
fn trigger_checks_every_override_before_it_sends_anything() {
    let (_sandbox, url) = sandbox();
    let config = tempfile::tempdir().unwrap();
    let requests = |url: &str| {
        get(&format!("{url}/_sandbox/requests"))["data"]
            .as_array()
            .unwrap()
            .len()
    };
    for (set, says) in [
        ("bundle.nope=1", "create-bundle's body has no field `nope`"),
        ("bundle.country=Atlantis", "country"),
        ("account.username=bad name!", "username"),
        ("publish.force=true", "publish-bundle takes no body"),
        ("video.description=x", "has no step `video`"),
        ("country=FRA", "is not STEP.FIELD=VALUE"),
    ] {
        let out = run(&url, &["trigger", "bundle.published", "--set", set], config.path());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{set}: {stderr}");
        assert!(stderr.contains(says), "{set}: {stderr}");
    }
    let out = run(&url, &["trigger", "bundle.nope"], config.path());
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(requests(&url), 0, "a refused trigger sent something");

    // An override that passes is used.
    let out = run(
        &url,
        &[
            "trigger",
            "video.finalized",
            "--set",
            "bundle.country=FRA",
            "--set",
            "video.description=Hello",
        ],
        config.path(),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let made: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(made["resources"]["bundle"]["country"], "FRA");
    assert_eq!(made["resources"]["video"]["description"], "Hello");
    assert_eq!(made["resources"]["finalize"]["status"], "finalized");
    let state = get(&format!("{url}/_sandbox/state"));
    assert_eq!(state["data"][0]["bundles"][0]["videos"][0]["status"], "finalized");
}

#[test]
fn logs_tail_follows_the_journal_with_its_filters() {
    let (_sandbox, url) = sandbox();
    let config = tempfile::tempdir().unwrap();
    let tail = Running::spawn(
        tokportal()
            .args(["logs", "tail", "--status", "4xx", "--format", "json"])
            .env("TOKPORTAL_BASE_URL", &url),
    );
    tail.said("following the requests of");
    let text = Running::spawn(
        tokportal()
            .args(["logs", "tail", "--operation", "createBundle"])
            .env("TOKPORTAL_BASE_URL", &url),
    );
    text.said("following the requests of");
    assert!(run(&url, &["get-current-user"], config.path()).status.success());
    let refused = run(
        &url,
        &[
            "create-bundle",
            "--body",
            r#"{"bundle_type": "account_only", "country": "Atlantis"}"#,
            "--no-retry",
        ],
        config.path(),
    );
    // The CLI checks before it sends: this one never reaches the sandbox.
    assert_eq!(refused.status.code(), Some(2));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let http = reqwest::Client::new();
        let bad = http
            .post(format!("{url}/bundles"))
            .header("x-api-key", KEY)
            .json(&json!({"bundle_type": "account_only", "country": "Atlantis"}))
            .send()
            .await
            .unwrap();
        assert_eq!(bad.status(), 400);
        let missing = http
            .get(format!("{url}/bundles/{}", uuid::Uuid::nil()))
            .header("x-api-key", KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(missing.status(), 404);
    });
    let first: Value = serde_json::from_str(&tail.line("the 400")).unwrap();
    assert_eq!(first["status"], 400);
    assert_eq!(first["operation"], "createBundle");
    assert_eq!(first["violations"][0]["field"], "country");
    let second: Value = serde_json::from_str(&tail.line("the 404")).unwrap();
    assert_eq!(
        (second["status"].as_u64(), second["operation"].as_str()),
        (Some(404), Some("getBundle"))
    );
    let line = text.line("the createBundle line");
    assert!(
        line.contains("400") && line.contains("POST /bundles") && line.contains("violations: country"),
        "{line}"
    );
    assert!(!line.contains(KEY), "{line}");

    // Filters the journal does not know are refused before anything is followed.
    let out = run(&url, &["logs", "tail", "--status", "4x"], config.path());
    assert_eq!(out.status.code(), Some(2));
    let out = run(&url, &["logs", "tail", "--operation", "makeMoney"], config.path());
    assert_eq!(out.status.code(), Some(2));
}

/// A request head read from `stream`, up to its blank line (2 s at most a read).
fn read_head(stream: &mut std::net::TcpStream) -> Vec<u8> {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && std::io::Read::read(stream, &mut byte).unwrap_or(0) == 1 {
        head.push(byte[0]);
    }
    head
}

/// A 200 answer of `content_type`, chunked: `first`, then 64 KiB chunks of
/// `fill` until the reader hangs up or `cap` bytes of them went. How many went.
fn send_endless(stream: &mut std::net::TcpStream, content_type: &str, first: &[u8], fill: u8, cap: usize) -> usize {
    let mut write = |bytes: &[u8]| std::io::Write::write_all(stream, bytes).is_ok();
    let head = format!("HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ntransfer-encoding: chunked\r\n\r\n");
    let started = write(head.as_bytes())
        && (first.is_empty() || (write(format!("{:x}\r\n", first.len()).as_bytes()) && write(first) && write(b"\r\n")));
    let chunk = vec![fill; 64 * 1024];
    let mut sent = 0;
    while started && sent < cap && write(b"10000\r\n") && write(&chunk) && write(b"\r\n") {
        sent += chunk.len();
    }
    sent
}

/// A server that is not a sandbox, and every request head it saw.
fn not_a_sandbox() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let kept = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(50) {
            let Ok(mut stream) = stream else { continue };
            let head = read_head(&mut stream);
            kept.lock().unwrap().push(String::from_utf8_lossy(&head).into_owned());
            let _ = std::io::Write::write_all(
                &mut stream,
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\nconnection: close\r\n\r\n{\"data\":{}}",
            );
        }
    });
    (format!("http://{addr}"), seen)
}

#[test]
fn the_workbench_commands_refuse_what_is_not_a_sandbox_and_send_it_nothing() {
    let config = tempfile::tempdir().unwrap();
    let (other, seen) = not_a_sandbox();
    let commands: [&[&str]; 3] = [
        &["listen", "--forward-to", "http://127.0.0.1:9/hook"],
        &["trigger", "bundle.published"],
        &["logs", "tail"],
    ];
    for args in commands {
        for base in ["https://app.tokportal.com/api/ext", other.as_str()] {
            let out = run(base, args, config.path());
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{args:?} {base}: {stderr}");
            assert!(stderr.contains("works only against a sandbox"), "{stderr}");
        }
    }
    // The local server was asked whether it is a sandbox, and nothing else:
    // no key, no operation.
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 3, "{seen:?}");
    for head in seen.iter() {
        assert!(head.starts_with("GET /_sandbox/health HTTP/1.1"), "{head}");
        assert!(
            !head.to_ascii_lowercase().contains("x-api-key") && !head.contains(KEY),
            "{head}"
        );
    }
    // Without any base URL, the default is the API: refused, offline.
    let out = tokportal().args(["logs", "tail"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no base URL is set"));
}

/// A health answer that never ends (JSON whitespace, chunk after chunk) is
/// read only to a small bound: the command says it is not a sandbox, and the
/// server got to send little before the command hung up.
#[test]
fn an_endless_health_answer_is_not_read_past_a_small_bound() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    // Stops by itself past this, so that a reader without a bound still ends.
    const CAP: usize = 512 << 20;
    let sent = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        read_head(&mut stream);
        // JSON whitespace, without end.
        send_endless(&mut stream, "application/json", b"", b' ', CAP)
    });
    let config = tempfile::tempdir().unwrap();
    let out = run(&url, &["logs", "tail"], config.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("did not answer GET /_sandbox/health as a sandbox"),
        "{stderr}"
    );
    let sent = sent.join().unwrap();
    assert!(
        sent < 32 << 20,
        "the command read {} MiB of a health answer",
        sent >> 20
    );
}

/// A server that answers as a sandbox, then feeds one event that never ends:
/// `logs tail` drops the feed just past a small bound, says why, and the
/// server got to send little before it hung up.
#[test]
fn an_endless_feed_event_is_dropped_past_a_small_bound() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    const CAP: usize = 512 << 20;
    let (fed, sent) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(4) {
            let Ok(mut stream) = stream else { continue };
            let head = read_head(&mut stream);
            if head.starts_with(b"GET /_sandbox/health ") {
                let body = br#"{"data":{"sandbox":true}}"#;
                let _ = std::io::Write::write_all(&mut stream, format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", body.len()).as_bytes());
                let _ = std::io::Write::write_all(&mut stream, body);
                continue;
            }
            // One event's data line, without end.
            let _ = fed.send(send_endless(
                &mut stream,
                "text/event-stream",
                b"event: request\ndata: ",
                b'x',
                CAP,
            ));
            return;
        }
    });
    let config = tempfile::tempdir().unwrap();
    let mut tail = tokportal()
        .args(["logs", "tail"])
        .env("TOKPORTAL_BASE_URL", &url)
        .env("TOKPORTAL_API_KEY", KEY)
        .env("TOKPORTAL_CONFIG_DIR", config.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let count = sent.recv_timeout(Duration::from_secs(60));
    let _ = tail.kill();
    let out = tail.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let count = count.expect("the feed was served");
    assert!(count < 32 << 20, "logs tail took {} MiB of one event", count >> 20);
    assert!(stderr.contains("the feed broke off: "), "{stderr}");
}

/// The JSON answer of `request`.
async fn json_of(request: reqwest::RequestBuilder) -> Value {
    request.send().await.unwrap().json().await.unwrap()
}

#[test]
fn the_journal_api_answers_as_documented() {
    let (_sandbox, url) = sandbox();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let http = reqwest::Client::new();
        let send =
            |method: reqwest::Method, path: &str| http.request(method, format!("{url}{path}")).header("x-api-key", KEY);
        // A secret-bearing answer is withheld; an ordinary one kept; a big body cut.
        let endpoint = json_of(
            send(reqwest::Method::POST, "/webhooks")
                .json(&json!({"url": "http://127.0.0.1:9/hook", "events": ["bundle.created"]})),
        )
        .await;
        let signing = endpoint["data"]["secret"].as_str().unwrap().to_owned();
        let long = "x".repeat(100_000);
        let big = send(reqwest::Method::POST, "/bundles")
            .header("idempotency-key", "wb-1")
            .json(&json!({"bundle_type": "account_only", "title": long}))
            .send()
            .await
            .unwrap();
        assert_eq!(big.status(), 400);
        send(reqwest::Method::GET, "/me")
            .header("x-sandbox-fault", "503")
            .send()
            .await
            .unwrap();
        let all = json_of(http.get(format!("{url}/_sandbox/requests"))).await;
        let text = all.to_string();
        assert!(
            !text.contains(&signing) && !text.contains(KEY),
            "a secret is in the journal"
        );
        let entries = all["data"].as_array().unwrap();
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[0]["fault"], "503");
        assert_eq!(entries[0]["status"], 503);
        assert_eq!(entries[1]["idempotency_key"], "wb-1");
        assert_eq!(entries[1]["request"]["truncated"], true);
        assert_eq!(entries[1]["request"]["body"].as_str().unwrap().len(), 64 * 1024);
        assert_eq!(entries[1]["violations"][0]["field"], "title");
        assert!(entries[2]["response"]["withheld"].as_str().unwrap().contains("secret"));
        assert_eq!(entries[0]["key"], entries[1]["key"]);

        // Filters, one entry, and the refusals.
        let get = |q: &str| {
            let http = http.clone();
            let u = format!("{url}/_sandbox/{q}");
            async move { http.get(u).send().await.unwrap() }
        };
        let four: Value = get("requests?status=4xx&view=summary").await.json().await.unwrap();
        assert_eq!(four["data"].as_array().unwrap().len(), 1);
        let since: Value = get("requests?since=1&operation=getCurrentUser")
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(since["data"][0]["id"], 3);
        let one: Value = get("requests/2").await.json().await.unwrap();
        assert_eq!(one["data"]["operation"], "createBundle");
        assert_eq!(get("requests?status=teapot").await.status(), 400);
        assert_eq!(get("requests?colour=red").await.status(), 400);
        assert_eq!(get("requests/999").await.status(), 404);

        // The feed: `ready`, then each request as it is answered.
        let feed = http
            .get(format!("{url}/_sandbox/events?kinds=request&status=404"))
            .send()
            .await
            .unwrap();
        assert_eq!(feed.headers()["content-type"], "text/event-stream");
        let mut events = sse_stream::SseStream::from_bytes_stream(feed.bytes_stream());
        use futures::StreamExt;
        let ready = events.next().await.unwrap().unwrap();
        assert_eq!(ready.event.as_deref(), Some("ready"));
        send(reqwest::Method::GET, "/me").send().await.unwrap();
        send(reqwest::Method::GET, &format!("/bundles/{}", uuid::Uuid::nil()))
            .send()
            .await
            .unwrap();
        let next = tokio::time::timeout(PATIENCE, events.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(next.event.as_deref(), Some("request"));
        let data: Value = serde_json::from_str(next.data.as_deref().unwrap()).unwrap();
        assert_eq!(
            (data["status"].as_u64(), data["operation"].as_str()),
            (Some(404), Some("getBundle"))
        );

        // A request whose connection is closed unanswered is journalled as such.
        let lost = send(reqwest::Method::POST, "/bundles")
            .header("x-sandbox-fault", "lost")
            .json(&json!({"bundle_type": "account_only", "country": "USA"}))
            .send()
            .await;
        assert!(lost.is_err(), "the lost fault answered: {lost:?}");
        // Written when the server drops the request, a moment after the
        // client sees its connection closed.
        let mut closed = Vec::new();
        for _ in 0..100 {
            let listed: Value = get("requests?status=closed").await.json().await.unwrap();
            closed = listed["data"].as_array().unwrap().clone();
            if !closed.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(closed.len(), 1, "{closed:?}");
        assert_eq!(
            (closed[0]["fault"].as_str(), closed[0]["operation"].as_str()),
            (Some("lost"), Some("createBundle"))
        );
        assert!(closed[0]["response"].is_null() && closed[0]["status"].is_null());

        // Clearing empties the journal; reset without {"all": true} and without a key is refused.
        let cleared = json_of(http.delete(format!("{url}/_sandbox/requests"))).await;
        assert_eq!(cleared["data"]["cleared"], 6);
        assert_eq!(
            http.post(format!("{url}/_sandbox/reset"))
                .send()
                .await
                .unwrap()
                .status(),
            401
        );
        let state: Value = get("state").await.json().await.unwrap();
        assert_eq!(state["data"][0]["webhook_endpoints"].as_array().unwrap().len(), 1);
        assert!(
            !state.to_string().contains(&signing),
            "the state shows an endpoint's secret"
        );
        let reset = http
            .post(format!("{url}/_sandbox/reset"))
            .json(&json!({"all": true}))
            .send()
            .await
            .unwrap();
        assert_eq!(reset.status(), 200);
        let state: Value = get("state").await.json().await.unwrap();
        assert_eq!(state["data"], json!([]));
    });
}

#[test]
fn logs_tail_follows_the_sandbox_through_a_restart() {
    let (first, url) = sandbox();
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    let config = tempfile::tempdir().unwrap();
    let tail = Running::spawn(tokportal().args(["logs", "tail"]).env("TOKPORTAL_BASE_URL", &url));
    tail.said("following the requests of");
    drop(first);
    tail.said("lost the sandbox");
    let (_second, again) = sandbox_on(port);
    assert_eq!(again, url);
    tail.said("reconnected to");
    assert!(run(&url, &["get-current-user"], config.path()).status.success());
    let line = tail.line("a request to the restarted sandbox");
    assert!(line.contains("GET /me") && line.contains("getCurrentUser"), "{line}");
}

/// `tokportal sandbox clock` against a running sandbox: set, show, advance
/// (by, --next), real; a key is required, bad input is refused before any
/// request, and the sandbox's refusals reach stderr with their code.
#[test]
fn sandbox_clock_sets_shows_and_advances_a_keys_clock() {
    let (_sandbox, url) = sandbox();
    let config = tempfile::tempdir().unwrap();
    let ok = |args: &[&str]| {
        let out = run(&url, args, config.path());
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let shown = ok(&["sandbox", "clock"]);
    assert!(shown.contains("(real time)"), "{shown}");
    let set = ok(&[
        "sandbox",
        "clock",
        "set",
        "--at",
        "2026-06-01T00:00:00Z",
        "--delay",
        "account=72h",
    ]);
    assert!(set.starts_with("now 2026-06-01T00:00:00Z (simulated)"), "{set}");
    // A published bundle: its account waits 72 h for the manager.
    let created = ok(&[
        "create-bundle",
        "--body",
        r#"{"bundle_type":"account_only","country":"USA"}"#,
    ]);
    let id = serde_json::from_str::<Value>(&created).unwrap()["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    ok(&[
        "configure-bundle-account",
        "--id",
        &id,
        "--body",
        r#"{"username":"clock_cli","visible_name":"Clock"}"#,
    ]);
    ok(&["publish-bundle", "--id", &id]);
    let shown = ok(&["sandbox", "clock", "show", "--format", "json"]);
    let clock: Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(clock["pending"][0]["at"], "2026-06-04T00:00:00Z", "{clock}");
    assert_eq!(clock["delays"]["account"], "72h");
    let quiet = ok(&["sandbox", "clock", "advance", "2d", "--format", "json"]);
    let quiet: Value = serde_json::from_str(&quiet).unwrap();
    assert_eq!(quiet["transitions"], json!([]), "two days are short of the 72 h step");
    assert_eq!(quiet["now"], "2026-06-03T00:00:00Z");
    let next = ok(&["sandbox", "clock", "advance", "--next"]);
    assert!(
        next.contains("account") && next.contains("published -> in_review"),
        "{next}"
    );
    let back = run(
        &url,
        &["sandbox", "clock", "advance", "--to", "2026-05-01T00:00:00Z"],
        config.path(),
    );
    assert_eq!(back.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&back.stderr).contains("CLOCK_BACKWARDS"));
    let real = ok(&["sandbox", "clock", "real"]);
    assert!(real.contains("(real time)"), "{real}");
    let bad = run(&url, &["sandbox", "clock", "set", "--at", "soon"], config.path());
    assert_eq!(bad.status.code(), Some(2), "refused before anything is sent");
    let keyless = tokportal()
        .args(["sandbox", "clock", "--base-url", &url])
        .output()
        .unwrap();
    assert_eq!(keyless.status.code(), Some(3));
}
