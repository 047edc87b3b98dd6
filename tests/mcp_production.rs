//! `tokportal-mcp --http` as a team runs it: bounded sessions, per-caller
//! limits, the probes, a graceful stop on SIGTERM, and two stateless
//! replicas behind a real nginx (`deploy/nginx/tokportal-mcp.conf`).

mod common;

use common::nginx::Nginx;

use std::process::Command;
use std::time::{Duration, Instant};

use futures::StreamExt;
use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, CallToolResult, JsonObject};
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};

type Session = RunningService<RoleClient, ()>;

/// A `tokportal-mcp --http` process; its stderr lines are kept.
struct Server(common::mcp_http::McpHttp);

impl std::ops::Deref for Server {
    type Target = common::mcp_http::McpHttp;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl Server {
    fn start(base_url: &str, extra: &[&str]) -> Self {
        Server(common::mcp_http::McpHttp::start(
            base_url,
            extra,
            &[("RUST_LOG", "tokportal=info")],
        ))
    }

    fn lines_with(&self, needle: &str) -> usize {
        self.log.lock().unwrap().iter().filter(|l| l.contains(needle)).count()
    }

    fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.0.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit by itself (at most `limit`).
    fn exit_code(&mut self, limit: Duration) -> Option<i32> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(status) = self.0.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("tokportal-mcp did not exit within {limit:?}");
    }
}

async fn connect(url: &str, key: &str) -> Session {
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(url.to_owned()).auth_header(key.to_owned()),
    );
    ().serve(transport).await.expect("initialize over HTTP")
}

fn arguments(value: Value) -> JsonObject {
    match value {
        Value::Object(map) => map,
        _ => JsonObject::new(),
    }
}

async fn call(session: &Session, tool: &str, args: Value) -> Result<CallToolResult, rmcp::ServiceError> {
    session
        .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments(args)))
        .await
}

fn initialize_body() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}})
}

/// A raw `initialize` POST: (status, `Mcp-Session-Id`, `Retry-After`, body).
async fn initialize(http: &reqwest::Client, url: &str, key: &str) -> (u16, Option<String>, Option<String>, String) {
    let response = http
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .bearer_auth(key)
        .json(&initialize_body())
        .send()
        .await
        .unwrap();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (session, retry_after) = (header("mcp-session-id"), header("retry-after"));
    let status = response.status().as_u16();
    // An SSE answer stays open in session mode: read its first event only.
    let mut body = String::new();
    let mut stream = response.bytes_stream();
    while let Ok(Some(Ok(chunk))) = tokio::time::timeout(Duration::from_secs(5), stream.next()).await {
        body.push_str(&String::from_utf8_lossy(&chunk));
        if body.contains("\"result\"") || body.contains("\"error\"") || status != 200 {
            break;
        }
    }
    (status, session, retry_after, body)
}

/// A tools/list POST on session `id` with `key`: its status.
async fn list_on(http: &reqwest::Client, url: &str, key: &str, id: &str) -> u16 {
    http.post(url)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", id)
        .header("mcp-protocol-version", "2025-06-18")
        .bearer_auth(key)
        .json(&json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn stateless_is_the_default_and_keeps_no_session() {
    let server = Server::start("http://127.0.0.1:9", &[]);
    let http = reqwest::Client::new();
    for _ in 0..3 {
        let (status, session, _, body) = initialize(&http, &server.mcp(), "sk_test_a").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(session, None, "a stateless server hands out no session id");
        assert!(body.contains("tokportal-mcp"), "{body}");
    }
    assert_eq!(server.lines_with("stateless"), 1, "the mode is said at start-up");
}

#[tokio::test]
async fn sessions_are_bounded_in_all_per_key_and_in_idle_time() {
    let server = Server::start(
        "http://127.0.0.1:9",
        &[
            "--sessions",
            "--max-sessions",
            "3",
            "--max-sessions-per-key",
            "2",
            "--session-idle",
            "2",
        ],
    );
    let http = reqwest::Client::new();
    let url = server.mcp();
    let (s, a1, _, body) = initialize(&http, &url, "sk_test_a").await;
    assert_eq!(s, 200, "{body}");
    let a1 = a1.expect("a session id");
    let (s, a2, _, _) = initialize(&http, &url, "sk_test_a").await;
    assert_eq!(s, 200);
    assert!(a2.is_some());
    // A third for the same key: refused, with when to come back.
    let (s, none, retry, body) = initialize(&http, &url, "sk_test_a").await;
    assert_eq!((s, none), (503, None), "{body}");
    assert!(body.contains("TOO_MANY_SESSIONS_FOR_KEY"), "{body}");
    let retry: u64 = retry.expect("Retry-After").parse().unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    // Another key still gets one, and then the server is full.
    let (s, _, _, _) = initialize(&http, &url, "sk_test_b").await;
    assert_eq!(s, 200);
    let (s, _, retry, body) = initialize(&http, &url, "sk_test_c").await;
    assert_eq!(s, 503, "{body}");
    assert!(body.contains("\"TOO_MANY_SESSIONS\""), "{body}");
    assert!(retry.is_some());
    // A session answers its own key only.
    assert_eq!(list_on(&http, &url, "sk_test_a", &a1).await, 200);
    assert_eq!(list_on(&http, &url, "sk_test_b", &a1).await, 404);
    // Idle sessions are closed: after 2 s unused, there is room again, and
    // the expired session is gone.
    tokio::time::sleep(Duration::from_millis(3200)).await;
    let (s, _, _, body) = initialize(&http, &url, "sk_test_c").await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(list_on(&http, &url, "sk_test_a", &a1).await, 404);
}

/// A mock TokPortal that holds every request until it is released: `GET
/// /me` then answers 200, `POST /bundles` 201. It counts what it holds, so
/// that a test waits for a call to be in flight instead of sleeping.
struct HeldApi {
    url: String,
    /// `METHOD PATH` of each request, as it arrived.
    arrived: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    count: tokio::sync::watch::Receiver<usize>,
    release: tokio::sync::watch::Sender<bool>,
}

impl HeldApi {
    async fn start() -> Self {
        let arrived = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (counter, count) = tokio::sync::watch::channel(0usize);
        let (release, released) = tokio::sync::watch::channel(false);
        let (kept, counter) = (arrived.clone(), std::sync::Arc::new(counter));
        let app = axum::Router::new().fallback(move |method: http::Method, uri: http::Uri| {
            let (kept, counter, mut released) = (kept.clone(), counter.clone(), released.clone());
            async move {
                kept.lock().unwrap().push(format!("{method} {}", uri.path()));
                counter.send_modify(|n| *n += 1);
                let _ = released.wait_for(|open| *open).await;
                let (status, body) = if method == http::Method::POST {
                    (201, json!({"data": {"id": common::UUID_A, "status": "pending_setup"}}))
                } else {
                    (200, json!({"data": {"email": "a@example.com"}}))
                };
                (
                    http::StatusCode::from_u16(status).unwrap(),
                    [("content-type", "application/json")],
                    body.to_string(),
                )
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        HeldApi {
            url,
            arrived,
            count,
            release,
        }
    }

    /// Waits until `n` requests have arrived (a hang guard fails the test
    /// after a minute).
    async fn arrived(&self, n: usize) {
        let mut count = self.count.clone();
        tokio::time::timeout(Duration::from_secs(60), count.wait_for(|c| *c >= n))
            .await
            .unwrap_or_else(|_| panic!("{n} requests never reached the API: {:?}", self.requests()))
            .unwrap();
    }

    /// Answers what it holds, and from now on everything at once.
    fn release(&self) {
        self.release.send_replace(true);
    }

    fn requests(&self) -> Vec<String> {
        self.arrived.lock().unwrap().clone()
    }
}

#[tokio::test]
async fn a_key_runs_a_bounded_number_of_calls_and_each_is_time_limited() {
    let api = HeldApi::start().await;
    let server = Server::start(&api.url, &["--max-calls-per-key", "2", "--call-timeout", "60"]);
    let alice = connect(&server.mcp(), "sk_test_alice").await;
    let bob = connect(&server.mcp(), "sk_test_bob").await;
    // Alice's first two calls are held by the API; then her third is
    // refused at once, and Bob's, another key, goes through to the API.
    let (a1, a2, (a3, b1)) = tokio::join!(
        call(&alice, "getCurrentUser", json!({})),
        call(&alice, "getCurrentUser", json!({})),
        async {
            api.arrived(2).await;
            let a3 = call(&alice, "getCurrentUser", json!({})).await;
            let (b1, ()) = tokio::join!(call(&bob, "getCurrentUser", json!({})), async {
                api.arrived(3).await;
                api.release();
            });
            (a3, b1)
        },
    );
    assert_eq!(
        api.requests(),
        vec!["GET /me"; 3],
        "the refused call never reached the API"
    );
    for ok in [a1, a2, b1] {
        let ok = ok.expect("within the limit");
        assert_ne!(ok.is_error, Some(true), "{ok:?}");
    }
    match a3 {
        Err(rmcp::ServiceError::McpError(e)) => {
            assert_eq!(e.code.0, -32029);
            assert!(e.message.contains("limit"), "{}", e.message);
        }
        other => panic!("the third call at once must be refused: {other:?}"),
    }
    // Once a place is free, the same key is served again.
    let again = call(&alice, "getCurrentUser", json!({})).await.unwrap();
    assert_ne!(again.is_error, Some(true));
    assert_eq!(api.requests().len(), 4);

    // An API that never answers: the call ends at its limit, and says
    // that the limit was `--call-timeout`'s (not the SDK's 30 s).
    let api = HeldApi::start().await;
    let server = Server::start(&api.url, &["--call-timeout", "1"]);
    let carol = connect(&server.mcp(), "sk_test_carol").await;
    let late = call(&carol, "getCurrentUser", json!({})).await.unwrap();
    assert_eq!(late.is_error, Some(true));
    let text = serde_json::to_string(&late.structured_content).unwrap();
    assert!(text.contains("timed out after 1s"), "{text}");
    assert_eq!(api.requests(), ["GET /me"], "the call reached the API");
}

#[tokio::test]
async fn sigterm_drains_a_paid_call_in_flight_then_exits_zero() {
    // The API holds the create until the test has seen the drain begin.
    let api = HeldApi::start().await;
    let mut server = Server::start(&api.url, &["--drain-delay", "2", "--shutdown-grace", "30"]);
    let http = reqwest::Client::new();
    let origin = server.origin.clone();
    let probe = |path: &'static str| {
        let url = format!("{origin}{path}");
        let http = http.clone();
        async move { http.get(url).send().await.map(|r| r.status().as_u16()) }
    };
    assert_eq!(probe("/healthz").await.unwrap(), 200);
    assert_eq!(probe("/readyz").await.unwrap(), 200);
    let agent = connect(&server.mcp(), "sk_test_agent").await;
    let in_flight = tokio::spawn(async move {
        let result = call(
            &agent,
            "createBundle",
            json!({"body": {"bundle_type": "account_only", "country": "USA"}}),
        )
        .await;
        (result, agent)
    });
    // The create has reached the API (and is held there) before the signal.
    api.arrived(1).await;
    server.terminate();
    // Draining: not ready (once the signal is handled: polled for, not
    // slept on), still alive, and (within the drain delay) still taking
    // connections.
    let drained = async {
        loop {
            match probe("/readyz").await {
                Ok(200) => tokio::time::sleep(Duration::from_millis(10)).await,
                other => break other,
            }
        }
    };
    let readyz = tokio::time::timeout(Duration::from_secs(30), drained)
        .await
        .expect("/readyz never said 503 after SIGTERM (hang guard)");
    assert_eq!(readyz.unwrap(), 503);
    assert_eq!(probe("/healthz").await.unwrap(), 200);
    assert!(!in_flight.is_finished(), "the paid call is still held by the API");
    api.release();
    let (result, agent) = in_flight.await.unwrap();
    let result = result.expect("the paid call's answer reaches its caller");
    assert_ne!(result.is_error, Some(true), "{result:?}");
    assert_eq!(result.structured_content.unwrap()["data"]["id"], common::UUID_A);
    drop(agent);
    assert_eq!(server.exit_code(Duration::from_secs(30)), Some(0));
    assert_eq!(api.requests(), ["POST /bundles"], "sent once");
    // After the stop, the port is closed.
    assert!(probe("/healthz").await.is_err());
}

#[tokio::test]
async fn two_stateless_replicas_behind_nginx_survive_a_sigterm() {
    let Some(nginx) = common::required_program("nginx", "apt-get install -y nginx") else {
        return;
    };
    let sandbox = tokportal::sandbox::Sandbox::start().await.unwrap();
    let flags = ["--stateless", "--shutdown-grace", "20"];
    let mut first = Server::start(sandbox.url(), &flags);
    let second = Server::start(sandbox.url(), &flags);
    let address = |s: &Server| s.origin.trim_start_matches("http://").to_owned();
    let lb = Nginx::start(&nginx, [&address(&first), &address(&second)]);
    let key = "sk_test_team_scale_out";
    let agent = connect(&format!("http://{}/mcp", lb.address), key).await;
    let tools = agent.list_all_tools().await.unwrap();
    assert_eq!(tools.len(), 78);

    // 50 calls, four at a time; ten of them paid creates. After 25 answers,
    // the first replica is told to stop.
    let calls = futures::stream::iter(0..50)
        .map(|i| {
            let agent = &agent;
            async move {
                let (tool, args) = if i % 5 == 0 {
                    (
                        "createBundle",
                        json!({"body": {"bundle_type": "account_only", "country": "USA"}, "idempotency_key": format!("scale-out-{i}")}),
                    )
                } else if i % 2 == 0 {
                    ("getCreditBalance", json!({}))
                } else {
                    ("listBundles", json!({}))
                };
                (i, call(agent, tool, args).await)
            }
        })
        .buffer_unordered(4);
    tokio::pin!(calls);
    let mut answered = 0;
    while let Some((i, result)) = calls.next().await {
        let result = result.unwrap_or_else(|e| panic!("call {i}: the client saw an error: {e}"));
        assert_ne!(result.is_error, Some(true), "call {i}: {result:?}");
        answered += 1;
        if answered == 25 {
            first.terminate();
        }
    }
    assert_eq!(answered, 50);
    assert_eq!(
        first.exit_code(Duration::from_secs(25)),
        Some(0),
        "the stopped replica exits 0"
    );
    let (a, b) = (first.lines_with("tools/call"), second.lines_with("tools/call"));
    assert!(a > 0 && b > 0, "both replicas served calls: {a} and {b}");
    assert_eq!(a + b, 50, "every call was served once: {a} + {b}");

    // Nothing was charged twice: ten creates, ten debits of 10 credits.
    let client = tokportal::ClientBuilder::new()
        .base_url(sandbox.url())
        .api_key(key)
        .build()
        .unwrap();
    let bundles = client.call_operation("listBundles", JsonObject::new()).await.unwrap();
    let balance = client
        .call_operation("getCreditBalance", JsonObject::new())
        .await
        .unwrap();
    let json_of = |body: tokportal::ResponseBody| match body {
        tokportal::ResponseBody::Json(v) => v,
        other => panic!("{other:?}"),
    };
    assert_eq!(json_of(bundles.body)["pagination"]["total"], 10);
    let balance = json_of(balance.body);
    assert_eq!(balance["data"]["balance"].as_f64(), Some(900.0), "{balance}");
}
