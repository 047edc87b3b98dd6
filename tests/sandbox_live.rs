//! The sandbox in front of the live API (issue 41): `--proxy --record`
//! against a stand-in "live" TokPortal that is newer than the vendored
//! contract, drift, replay, fixtures from a recording, and the refusal of
//! a paid call without `--allow-spend`.
//!
//! The stand-in is an inner sandbox (which answers as the contract says)
//! behind a router that plants exactly four differences: an operation the
//! contract does not know, a field `MeResponse` does not name, a status
//! `getCreditBalance` does not document, and an event type the contract's
//! enum lacks. It keeps a log of every request it was sent and every
//! answer it gave.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use tokportal::sandbox::{Sandbox, SandboxOptions};

const KEY: &str = "sk_test_live_stand_in_key_0123";

/// What the stand-in saw and said.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    path: String,
    dry_run: bool,
    status: u16,
    body: Bytes,
}

struct StandIn {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: tokio::sync::oneshot::Sender<()>,
    served: tokio::task::JoinHandle<()>,
    _inner: Sandbox,
}

#[derive(Clone)]
struct Routed {
    inner: String,
    http: reqwest::Client,
    seen: Arc<Mutex<Vec<Seen>>>,
}

/// The inner sandbox's answer to the same request.
async fn inner(
    routed: &Routed,
    method: &http::Method,
    path_and_query: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> (u16, HeaderMap, Value, Bytes) {
    let mut sent = HeaderMap::new();
    for (name, value) in headers {
        if !matches!(name.as_str(), "host" | "content-length" | "connection") {
            sent.append(name.clone(), value.clone());
        }
    }
    let answer = routed
        .http
        .request(method.clone(), format!("{}{path_and_query}", routed.inner))
        .headers(sent)
        .body(body)
        .send()
        .await
        .expect("the inner sandbox answers");
    let status = answer.status().as_u16();
    let headers = answer.headers().clone();
    let bytes = answer.bytes().await.expect("a body");
    let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, headers, value, bytes)
}

async fn stand_in_answer(routed: Routed, request: axum::extract::Request) -> axum::response::Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20).await.expect("a body");
    let path = parts
        .uri
        .path()
        .strip_prefix("/api/ext")
        .unwrap_or(parts.uri.path())
        .to_owned();
    let path_and_query = match parts.uri.query() {
        Some(q) => format!("{path}?{q}"),
        None => path.clone(),
    };
    let dry_run = parts
        .headers
        .get("x-tokportal-dry-run")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"));
    let (status, mut headers, mut value, mut bytes) = if path.ends_with("/insights") {
        // An operation the contract does not know.
        let (_, headers, _, _) = inner(&routed, &http::Method::GET, "/me", &parts.headers, Bytes::new()).await;
        let v = json!({"data": {"views": 10}});
        (200, headers, v.clone(), Bytes::from(v.to_string()))
    } else {
        inner(&routed, &parts.method, &path_and_query, &parts.headers, body).await
    };
    let mut planted = true;
    match (parts.method.as_str(), path.as_str()) {
        ("GET", "/me") => value["data"]["beta_features"] = json!(["insights"]),
        ("GET", "/webhooks/events") => {
            let mut extra = value["data"]["events"][0].clone();
            extra["type"] = json!("account.banned");
            value["data"]["events"].as_array_mut().expect("the events").push(extra);
        }
        _ => planted = false,
    }
    let mut status = status;
    if parts.method == http::Method::GET && path == "/credits/balance" {
        status = 418;
        value = json!({"error": {"code": "TEAPOT", "message": "The balance is brewing."}});
        planted = true;
    }
    if planted {
        bytes = Bytes::from(value.to_string());
        headers.remove("content-length");
    }
    routed.seen.lock().expect("the log").push(Seen {
        method: parts.method.to_string(),
        path: path_and_query,
        dry_run,
        status,
        body: bytes.clone(),
    });
    let mut response = axum::response::Response::new(axum::body::Body::from(bytes));
    *response.status_mut() = StatusCode::from_u16(status).expect("a status");
    for (name, value) in &headers {
        if !matches!(name.as_str(), "content-length" | "transfer-encoding" | "connection") {
            response.headers_mut().append(name.clone(), value.clone());
        }
    }
    response
}

async fn stand_in() -> StandIn {
    let inner_sandbox = Sandbox::start().await.expect("the inner sandbox starts");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let routed = Routed {
        inner: inner_sandbox.url().to_owned(),
        http: reqwest::Client::new(),
        seen: seen.clone(),
    };
    let app =
        axum::Router::new().fallback(move |request: axum::extract::Request| stand_in_answer(routed.clone(), request));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let addr = listener.local_addr().expect("an address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
            .expect("the stand-in serves");
    });
    StandIn {
        addr,
        seen,
        stop,
        served,
        _inner: inner_sandbox,
    }
}

/// A GET answered with JSON.
async fn get_json(http: &reqwest::Client, url: String) -> Value {
    http.get(url)
        .send()
        .await
        .expect("an answer")
        .json()
        .await
        .expect("JSON")
}

/// One request of the flow.
struct Step {
    method: http::Method,
    path: &'static str,
    dry_run: bool,
    body: Option<Value>,
}

fn flow() -> Vec<Step> {
    let get = |path| Step {
        method: http::Method::GET,
        path,
        dry_run: false,
        body: None,
    };
    vec![
        get("/api/ext/me"),
        get("/api/ext/countries"),
        get("/api/ext/webhooks/events"),
        get("/api/ext/credits/balance"),
        get("/api/ext/bundles/bnd_123/insights"),
        Step {
            method: http::Method::POST,
            path: "/api/ext/bundles",
            dry_run: true,
            body: Some(json!({"bundle_type": "account_only", "platform": "tiktok", "country": "USA"})),
        },
        Step {
            method: http::Method::POST,
            path: "/api/ext/webhooks",
            dry_run: false,
            body: Some(json!({"url": "https://hooks.example/tokportal", "events": ["bundle.created"]})),
        },
    ]
}

async fn send(http: &reqwest::Client, base: &str, step: &Step) -> (u16, HeaderMap, Bytes) {
    let mut request = http
        .request(step.method.clone(), format!("{base}{}", step.path))
        .header("x-api-key", KEY);
    if step.dry_run {
        request = request.header("x-tokportal-dry-run", "true");
    }
    if let Some(body) = &step.body {
        request = request.json(body);
    }
    let answer = request.send().await.expect("an answer");
    let status = answer.status().as_u16();
    let headers = answer.headers().clone();
    (status, headers, answer.bytes().await.expect("a body"))
}

fn proxy_options(stand_in: &StandIn, record: &std::path::Path, allow_spend: bool) -> SandboxOptions {
    let mut options = SandboxOptions::default();
    options.proxy = Some(format!("http://{}/api/ext", stand_in.addr));
    options.record = Some(record.to_owned());
    options.allow_spend = allow_spend;
    options
}

/// The distinct drift findings of a report, as (kind, operation, at).
fn drift_set(report: &Value) -> std::collections::BTreeSet<(String, String, String)> {
    report["examples"]
        .as_array()
        .expect("examples")
        .iter()
        .map(|f| {
            (
                f["kind"].as_str().unwrap_or_default().to_owned(),
                f["operation"].as_str().unwrap_or_default().to_owned(),
                f["at"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn planted() -> std::collections::BTreeSet<(String, String, String)> {
    [
        ("unknown_field", "getCurrentUser", "data.beta_features"),
        ("enum_mismatch", "listWebhookEvents", "data.events[].type"),
        ("undocumented_status", "getCreditBalance", "418"),
        ("unknown_operation", "GET /bundles/{id}/insights", ""),
    ]
    .into_iter()
    .map(|(a, b, c)| (a.to_owned(), b.to_owned(), c.to_owned()))
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_flow_is_unchanged_reports_its_drift_and_plays_back_offline() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let recording = dir.path().join("live.har");
    let stand_in = stand_in().await;
    let http = reqwest::Client::new();
    let proxy = Sandbox::start_with(proxy_options(&stand_in, &recording, false))
        .await
        .expect("the proxy starts");

    // 1. Every answer comes back as the stand-in gave it.
    let mut answers = Vec::new();
    for step in flow() {
        let (status, headers, body) = send(&http, proxy.url(), &step).await;
        let seen = stand_in
            .seen
            .lock()
            .expect("the log")
            .last()
            .cloned()
            .expect("the stand-in was asked");
        assert_eq!(
            (status, &body),
            (seen.status, &seen.body),
            "{} {}",
            step.method,
            step.path
        );
        assert!(seen.path.ends_with(step.path.trim_start_matches("/api/ext")));
        if status < 500 && !step.path.ends_with("/insights") {
            assert!(
                headers.contains_key("x-tokportal-request-id"),
                "{} {}: {headers:?}",
                step.method,
                step.path
            );
        }
        answers.push((status, body));
    }
    let secret = serde_json::from_slice::<Value>(&answers[6].1).expect("JSON")["data"]["secret"]
        .as_str()
        .expect("the caller gets the webhook secret")
        .to_owned();

    // 2. A paid call is refused unsent, and says how to let it through.
    let before = stand_in.seen.lock().expect("the log").len();
    let paid = Step {
        method: http::Method::POST,
        path: "/api/ext/bundles",
        dry_run: false,
        body: Some(json!({"bundle_type": "account_only", "platform": "tiktok", "country": "USA"})),
    };
    let (status, _, body) = send(&http, proxy.url(), &paid).await;
    let refusal: Value = serde_json::from_slice(&body).expect("an error envelope");
    assert_eq!(status, 403, "{refusal}");
    assert_eq!(refusal["error"]["code"], "PROXY_SPEND_NOT_ALLOWED");
    assert!(
        refusal["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("--allow-spend")),
        "{refusal}"
    );
    assert_eq!(
        stand_in.seen.lock().expect("the log").len(),
        before,
        "nothing reached the stand-in"
    );

    // 3. Every planted drift is reported, and nothing else.
    let report: Value = get_json(&http, format!("{}/_sandbox/drift", proxy.url())).await;
    assert_eq!(drift_set(&report["data"]), planted(), "{report}");
    assert_eq!(report["data"]["exchanges"], 7, "{report}");
    assert_eq!(proxy.drift().findings, 4);

    // 4. The journal names the key's fingerprint and the source.
    let journal: Value = get_json(&http, format!("{}/_sandbox/requests?limit=20", proxy.url())).await;
    let entries = journal["data"].as_array().expect("entries");
    assert_eq!(entries.len(), 8);
    assert!(
        entries.iter().all(|e| e["source"] == "live" && e["key"].is_string()),
        "{journal}"
    );
    assert!(!journal.to_string().contains(&secret), "the journal keeps no secret");
    proxy.shutdown().await;

    // 5. The recording is HAR 1.2 and holds no key and no secret.
    let text = std::fs::read_to_string(&recording).expect("the recording");
    assert!(
        !text.contains(KEY) && !text.contains(&secret),
        "a key or a secret in the recording"
    );
    let har: Value = serde_json::from_str(&text).expect("one JSON document");
    assert_eq!(har["log"]["version"], "1.2");
    let entries = har["log"]["entries"].as_array().expect("entries");
    assert_eq!(entries.len(), 7, "the refused paid call is not recorded");
    for entry in entries {
        for field in ["startedDateTime", "time", "request", "response", "cache", "timings"] {
            assert!(entry.get(field).is_some(), "HAR's {field} in {entry}");
        }
        assert!(entry["response"]["content"]["mimeType"].is_string());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&recording).expect("metadata").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the recording is the user's alone");
    }

    // 6. The stand-in stopped, --replay-strict plays the flow back.
    let StandIn { stop, served, .. } = stand_in;
    let _ = stop.send(());
    let _ = served.await;
    let mut options = SandboxOptions::default();
    options.replay = Some(recording.clone());
    options.replay_strict = true;
    let replay = Sandbox::start_with(options).await.expect("the replay starts");
    for (step, (status, body)) in flow().iter().zip(&answers) {
        let (replayed_status, _, replayed) = send(&http, replay.url(), step).await;
        assert_eq!(replayed_status, *status, "{} {}", step.method, step.path);
        if step.path.ends_with("/insights") {
            // An operation the contract does not know may carry a secret:
            // recorded with its ids, statuses, types and times only.
            assert_eq!(&replayed[..], br#"{"data":{"views":"[redacted]"}}"#);
        } else if step.path == "/api/ext/webhooks" {
            // A secret-bearing answer plays back redacted.
            let v: Value = serde_json::from_slice(&replayed).expect("JSON");
            assert_eq!(v["data"]["secret"], "[redacted]");
        } else {
            assert_eq!(&replayed, body, "{} {}", step.method, step.path);
        }
    }
    let (status, _, body) = send(&http, replay.url(), &paid).await;
    assert_eq!(status, 404, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("NOT_RECORDED"));
    let journal: Value = get_json(&http, format!("{}/_sandbox/requests?limit=20", replay.url())).await;
    let sources: Vec<&Value> = journal["data"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| &e["source"])
        .collect();
    assert_eq!(sources.iter().filter(|s| **s == "recording").count(), 7, "{journal}");
    replay.shutdown().await;

    // 7. The same drift, offline, from the binary; exit 6 with --fail-on-drift.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tokportal"))
        .args(["sandbox", "drift", "--format", "json", "--fail-on-drift"])
        .arg(&recording)
        .output()
        .expect("tokportal runs");
    assert_eq!(out.status.code(), Some(6), "{}", String::from_utf8_lossy(&out.stderr));
    let offline: Value = serde_json::from_slice(&out.stdout).expect("a JSON report");
    assert_eq!(drift_set(&offline), planted(), "{offline}");
    let table = std::process::Command::new(env!("CARGO_BIN_EXE_tokportal"))
        .args(["sandbox", "drift"])
        .arg(&recording)
        .output()
        .expect("tokportal runs");
    assert_eq!(table.status.code(), Some(0));
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains("unknown_field") && table.contains("getCurrentUser"),
        "{table}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paid_calls_pass_with_allow_spend_and_a_recording_becomes_fixtures() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let recording = dir.path().join("paid.har");
    let stand_in = stand_in().await;
    let http = reqwest::Client::new();
    let proxy = Sandbox::start_with(proxy_options(&stand_in, &recording, true))
        .await
        .expect("the proxy starts");
    let create = Step {
        method: http::Method::POST,
        path: "/api/ext/bundles",
        dry_run: false,
        body: Some(json!({"bundle_type": "account_only", "platform": "tiktok", "country": "USA"})),
    };
    let (status, _, body) = send(&http, proxy.url(), &create).await;
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    let id = serde_json::from_slice::<Value>(&body).expect("JSON")["data"]["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    let seen = stand_in.seen.lock().expect("the log").clone();
    assert!(
        seen.iter()
            .any(|s| s.method == "POST" && s.path == "/bundles" && !s.dry_run),
        "the paid call went through"
    );
    let patched = http
        .patch(format!("{}/api/ext/bundles/{id}", proxy.url()))
        .header("x-api-key", KEY)
        .json(&json!({"title": "Recorded launch"}))
        .send()
        .await
        .expect("an answer");
    assert_eq!(patched.status(), 200);
    proxy.shutdown().await;

    // The recording as fixtures: the create, then the change naming its
    // id as a reference to the create's answer.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tokportal"))
        .args(["sandbox", "fixtures-from"])
        .arg(&recording)
        .output()
        .expect("tokportal runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let yaml = String::from_utf8(out.stdout).expect("text");
    assert!(
        yaml.contains("operation: createBundle") && yaml.contains("operation: updateBundle"),
        "{yaml}"
    );
    assert!(
        yaml.contains("${s1_create_bundle.data.id}") && !yaml.contains(&id),
        "{yaml}"
    );
    let fixtures = dir.path().join("fixtures.yaml");
    std::fs::write(&fixtures, &yaml).expect("written");
    let mut options = SandboxOptions::default();
    options.fixtures = vec![fixtures];
    let seeded = Sandbox::start_with(options).await.expect("the fixtures apply");
    let key = yaml
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("- key: ")
                .or_else(|| l.trim().strip_prefix("key: "))
        })
        .expect("a key")
        .to_owned();
    let bundles: Value = http
        .get(format!("{}/bundles", seeded.url()))
        .header("x-api-key", key)
        .send()
        .await
        .expect("an answer")
        .json()
        .await
        .expect("JSON");
    let list = bundles["data"].as_array().expect("bundles");
    assert_eq!(list.len(), 1, "{bundles}");
    assert_eq!(list[0]["title"], "Recorded launch", "{bundles}");
    seeded.shutdown().await;
}

#[tokio::test]
async fn the_modes_refuse_what_does_not_go_together() {
    let mut options = SandboxOptions::default();
    options.record = Some("x.har".into());
    assert!(Sandbox::start_with(options).await.is_err(), "--record without --proxy");
    let mut options = SandboxOptions::default();
    options.proxy = Some("http://tokportal.example/api/ext".into());
    let refused = Sandbox::start_with(options)
        .await
        .expect_err("plain http to another machine");
    assert!(refused.to_string().contains("https"), "{refused}");
    let mut options = SandboxOptions::default();
    options.proxy = Some("https://tokportal.example/api/ext".into());
    options.fixtures = vec!["f.yaml".into()];
    assert!(
        Sandbox::start_with(options).await.is_err(),
        "fixtures would reach the live API"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_itself_does_not_drift_from_the_contract() {
    // The proxy in front of a plain sandbox: the same flow, no drift.
    let plain = Sandbox::start().await.expect("the sandbox starts");
    let mut options = SandboxOptions::default();
    options.proxy = Some(format!("{}/api/ext", plain.url()));
    let proxy = Sandbox::start_with(options).await.expect("the proxy starts");
    let http = reqwest::Client::new();
    for step in flow().iter().filter(|s| !s.path.ends_with("/insights")) {
        let (status, _, body) = send(&http, proxy.url(), step).await;
        assert!(
            status < 300,
            "{} {}: {status} {}",
            step.method,
            step.path,
            String::from_utf8_lossy(&body)
        );
    }
    let report = proxy.drift();
    assert_eq!(report.exchanges, 6);
    assert!(report.is_clean(), "{}", report.table());
    proxy.shutdown().await;
    plain.shutdown().await;
}

/// One request written by hand (`target` exactly as given), with the key;
/// the answer's text.
async fn raw(addr: SocketAddr, method: &str, target: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("a connection");
    let request = format!(
        "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: {KEY}\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
    );
    stream.write_all(request.as_bytes()).await.expect("sent");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.expect("an answer");
    String::from_utf8_lossy(&answer).into_owned()
}

/// What an outside review found: the journal, the drift report and the
/// recording keep no secret of a query, a header or a body; a dot segment
/// neither hides an operation from the spending rule nor leaves the API's
/// base.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_the_journal_or_the_drift_and_paths_are_read_as_the_origin_reads_them() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let recording = dir.path().join("secrets.har");
    let plain = Sandbox::start().await.expect("the sandbox starts");
    let mut options = SandboxOptions::default();
    options.proxy = Some(format!("{}/api/ext", plain.url()));
    options.record = Some(recording.clone());
    let proxy = Sandbox::start_with(options).await.expect("the proxy starts");
    let http = reqwest::Client::new();
    let _ = http
        .get(format!("{}/api/ext/me?access_token=QSECRET1&page=1", proxy.url()))
        .header("x-api-key", KEY)
        .header("x-custom-token", "HSECRET2")
        .send()
        .await
        .expect("an answer");
    let _ = http
        .patch(format!("{}/api/ext/webhooks/w_1", proxy.url()))
        .header("x-api-key", KEY)
        .json(&json!({"secret": "BSECRET3", "nested": {"apiToken": "BSECRET4"}, "note": "sk_live_BSECRET5"}))
        .send()
        .await
        .expect("an answer");
    // A dot segment, sent as is (an HTTP client resolves it first): read
    // one way here and another by the origin, so refused.
    for target in [
        "/api/ext/accounts/a_1/./reveal-credentials",
        "/api/ext/%2e%2e/%2e%2e/admin",
        "/api/ext/bundles/%2E/publish",
    ] {
        let answer = raw(proxy.addr(), "POST", target).await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{target}: {answer}");
        assert!(answer.contains("PROXY_PATH_NOT_CANONICAL"), "{target}: {answer}");
    }
    let journal = get_json(&http, format!("{}/_sandbox/requests?limit=20", proxy.url()))
        .await
        .to_string();
    let drift = get_json(&http, format!("{}/_sandbox/drift", proxy.url()))
        .await
        .to_string();
    proxy.shutdown().await;
    let recorded = std::fs::read_to_string(&recording).expect("the recording");
    for secret in ["QSECRET1", "HSECRET2", "BSECRET3", "BSECRET4", "BSECRET5", KEY] {
        assert!(!journal.contains(secret), "{secret} in the journal: {journal}");
        assert!(!drift.contains(secret), "{secret} in the drift report: {drift}");
        assert!(!recorded.contains(secret), "{secret} in the recording");
    }
    // Upstream, nothing paid and nothing outside the API arrived.
    plain
        .verify(tokportal::sandbox::Verify::operation("revealAccountCredentials").times(0))
        .await
        .expect("the paid call stayed here");
    plain.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_answer_never_runs_as_a_page_of_the_sandbox() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let recording = dir.path().join("page.har");
    let har = json!({"log": {"version": "1.2", "creator": {"name": "x", "version": "1"}, "entries": [{
        "startedDateTime": "2026-12-06T00:00:00Z", "time": 1,
        "request": {"method": "GET", "url": "https://app.tokportal.com/api/ext/countries", "headers": []},
        "response": {"status": 200, "headers": [{"name": "Content-Type", "value": "text/html"}],
                     "content": {"size": 30, "mimeType": "text/html", "text": "<script>alert(1)</script>"}},
        "cache": {}, "timings": {"send": 0, "wait": 1, "receive": 0}}]}});
    std::fs::write(&recording, har.to_string()).expect("written");
    let mut options = SandboxOptions::default();
    options.replay = Some(recording);
    options.replay_strict = true;
    let replay = Sandbox::start_with(options).await.expect("the replay starts");
    let answer = reqwest::get(format!("{}/api/ext/countries", replay.url()))
        .await
        .expect("an answer");
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.headers()["x-content-type-options"], "nosniff");
    let policy = answer.headers()["content-security-policy"]
        .to_str()
        .expect("text")
        .to_owned();
    assert!(
        policy.contains("sandbox") && policy.contains("default-src 'none'"),
        "{policy}"
    );
    replay.shutdown().await;
}

/// `--fail-on-drift` holds when the proxy is stopped as `docker stop` and CI
/// runners stop it: SIGTERM, exit 6, the drift table on stderr.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_a_drifting_proxy_with_exit_6() {
    use std::io::{BufRead, BufReader};
    let stand_in = stand_in().await;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tokportal"))
        .args(["sandbox", "--port", "0", "--fail-on-drift", "--proxy"])
        .arg(format!("http://{}/api/ext", stand_in.addr))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("tokportal runs");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("the first line");
    let url = first
        .trim()
        .strip_prefix("listening on ")
        .expect("its address")
        .to_owned();
    let answer = reqwest::Client::new()
        .get(format!("{url}/api/ext/me"))
        .header("x-api-key", KEY)
        .send()
        .await
        .expect("an answer");
    assert_eq!(answer.status(), 200);
    // The drift is counted once the answer's last byte is in.
    let http = reqwest::Client::new();
    let mut counted = false;
    for _ in 0..200 {
        let report: Value = get_json(&http, format!("{url}/_sandbox/drift")).await;
        if report["data"]["findings"] == 1 {
            counted = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(counted, "the drift was counted");
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let out = child.wait_with_output().expect("it stops");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(6), "{stderr}");
    assert!(
        stderr.contains("unknown_field") && stderr.contains("getCurrentUser"),
        "{stderr}"
    );
}
