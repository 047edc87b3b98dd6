//! `tokportal-mcp` for agents, driven by rmcp's own client over stdio and
//! streamable HTTP: toolsets, read-only, dynamic mode, official names, the
//! file sandbox, per-caller keys, the Origin and key guard.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::UUID_A;
use httpmock::prelude::*;
use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, CallToolResult, JsonObject, Tool};
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use serde_json::{Value, json};

type Session = RunningService<RoleClient, ()>;

async fn stdio(base_url: &str, args: &[&str]) -> Session {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_tokportal-mcp"));
    command
        .args(args)
        .env("TOKPORTAL_API_KEY", "sk_stdio")
        .env("TOKPORTAL_BASE_URL", base_url)
        .stderr(Stdio::null());
    let transport = TokioChildProcess::new(command).expect("tokportal-mcp starts");
    ().serve(transport).await.expect("initialize")
}

fn arguments(value: Value) -> JsonObject {
    match value {
        Value::Object(map) => map,
        _ => JsonObject::new(),
    }
}

async fn call<H: rmcp::ClientHandler>(
    session: &RunningService<RoleClient, H>,
    tool: &str,
    args: Value,
) -> Result<CallToolResult, rmcp::ServiceError> {
    session
        .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments(args)))
        .await
}

fn bytes(tools: &[Tool]) -> usize {
    serde_json::to_string(&json!({"tools": tools})).unwrap().len()
}

#[tokio::test]
async fn toolsets_read_only_dynamic_and_official_names() {
    let server = MockServer::start_async().await;
    let balance = server
        .mock_async(|when, then| {
            when.path("/credits/balance").header("x-api-key", "sk_stdio");
            then.status(200)
                .header("content-type", "application/json")
                .json_body(json!({"data": {"balance": 12}}));
        })
        .await;

    let all = stdio(&server.base_url(), &[]).await;
    let tools = all.list_all_tools().await.unwrap();
    assert_eq!(tools.len(), 78);
    let size = bytes(&tools);
    assert!(size <= 56_000, "the full list is {size} bytes");
    for tool in &tools {
        let schema = Value::Object((*tool.input_schema).clone());
        assert!(schema["properties"].get("request_id").is_none(), "{}", tool.name);
        assert!(
            tool.annotations.as_ref().and_then(|a| a.title.as_ref()).is_none(),
            "no repeated title"
        );
        assert_ne!(tool.description.as_deref(), tool.title.as_deref(), "{}", tool.name);
    }
    let find = |name: &str| tools.iter().find(|t| t.name == name).unwrap().clone();
    assert_eq!(
        find("unpublishBundle").annotations.unwrap().destructive_hint,
        Some(true)
    );
    assert_eq!(find("createBundle").annotations.unwrap().destructive_hint, Some(false));
    assert!(find("createBundle").description.unwrap().contains("Spends credits"));
    assert!(find("getCurrentUser").output_schema.is_some());
    assert!(find("listBundles").output_schema.is_none());
    let info = all.peer_info().unwrap();
    let instructions = info.instructions.clone().unwrap_or_default();
    assert!(
        instructions.contains("dry_run") && instructions.contains("never refunded"),
        "{instructions}"
    );
    assert!(instructions.contains("account-configuration"), "{instructions}");
    all.cancel().await.unwrap();

    let read_only = stdio(&server.base_url(), &["--read-only"]).await;
    let tools = read_only.list_all_tools().await.unwrap();
    assert!(tools.len() < 78 && !tools.is_empty());
    assert!(
        tools
            .iter()
            .all(|t| t.annotations.as_ref().and_then(|a| a.read_only_hint) == Some(true))
    );
    // A tool that is not exposed cannot be called, and nothing is sent.
    assert!(
        call(
            &read_only,
            "createBundle",
            json!({"body": {"bundle_type": "account_only"}})
        )
        .await
        .is_err()
    );
    read_only.cancel().await.unwrap();

    let bundles = stdio(&server.base_url(), &["--toolsets", "bundles,credits"]).await;
    let names: Vec<String> = bundles
        .list_all_tools()
        .await
        .unwrap()
        .iter()
        .map(|t| t.name.to_string())
        .collect();
    assert!(names.contains(&"createBundle".into()) && names.contains(&"getCreditBalance".into()));
    assert!(!names.contains(&"listAccounts".into()), "{names:?}");
    let result = call(&bundles, "getCreditBalance", json!({})).await.unwrap();
    assert_eq!(result.structured_content, Some(json!({"data": {"balance": 12}})));
    bundles.cancel().await.unwrap();

    let official = stdio(
        &server.base_url(),
        &["--tool-names", "official", "--tools", "getCreditBalance"],
    )
    .await;
    let tools = official.list_all_tools().await.unwrap();
    assert_eq!(
        tools.iter().map(|t| t.name.to_string()).collect::<Vec<_>>(),
        ["tokportal_get_credit_balance"]
    );
    call(&official, "tokportal_get_credit_balance", json!({}))
        .await
        .unwrap();
    assert!(call(&official, "getCreditBalance", json!({})).await.is_err());
    official.cancel().await.unwrap();

    let dynamic = stdio(&server.base_url(), &["--dynamic"]).await;
    let tools = dynamic.list_all_tools().await.unwrap();
    assert!(tools.len() <= 4);
    assert!(bytes(&tools) <= 6_000, "{} bytes", bytes(&tools));
    let found = call(&dynamic, "search_operations", json!({"query": "credit balance"}))
        .await
        .unwrap();
    let found = found.structured_content.unwrap();
    assert_eq!(found["operations"][0]["name"], "getCreditBalance", "{found}");
    let described = call(&dynamic, "describe_operation", json!({"name": "listBundles"}))
        .await
        .unwrap();
    assert!(described.structured_content.unwrap()["input_schema"]["properties"]["per_page"].is_object());
    let result = call(
        &dynamic,
        "call_operation",
        json!({"name": "getCreditBalance", "arguments": {}}),
    )
    .await
    .unwrap();
    assert_eq!(result.structured_content, Some(json!({"data": {"balance": 12}})));
    // Arguments are checked as usual.
    let result = call(
        &dynamic,
        "call_operation",
        json!({"name": "listBundles", "arguments": {"per_page": 500}}),
    )
    .await
    .unwrap();
    assert_eq!(result.is_error, Some(true));
    dynamic.cancel().await.unwrap();
    assert_eq!(
        balance.calls_async().await,
        3,
        "--toolsets, --tool-names official, call_operation"
    );
}

#[tokio::test]
async fn uploads_only_from_allowed_folders() {
    let server = MockServer::start_async().await;
    let upload = server
        .mock_async(|when, then| {
            when.path("/upload/video/direct");
            then.status(200)
                .header("content-type", "application/json")
                .json_body(json!({"data": {"url": "u"}}));
        })
        .await;
    let root = tempfile::tempdir().unwrap();
    let allowed = root.path().join("videos");
    std::fs::create_dir(&allowed).unwrap();
    std::fs::write(allowed.join("clip.mp4"), vec![1u8; 1000]).unwrap();
    std::fs::write(root.path().join("id_rsa"), b"PRIVATE KEY").unwrap();
    std::os::unix::fs::symlink(root.path().join("id_rsa"), allowed.join("innocent.mp4")).unwrap();

    let session = stdio(&server.base_url(), &["--allow-dir", allowed.to_str().unwrap()]).await;
    let upload_of = |path: std::path::PathBuf| json!({"file_path": path.to_str().unwrap(), "bundle_id": UUID_A});
    let ok = call(&session, "uploadVideoDirect", upload_of(allowed.join("clip.mp4")))
        .await
        .unwrap();
    assert_ne!(ok.is_error, Some(true), "{ok:?}");
    for refused in [
        root.path().join("id_rsa"),
        allowed.join("innocent.mp4"),
        allowed.join("../id_rsa"),
        std::path::PathBuf::from("/etc/passwd"),
    ] {
        let result = call(&session, "uploadVideoDirect", upload_of(refused.clone()))
            .await
            .unwrap();
        assert_eq!(result.is_error, Some(true), "{refused:?}");
        let error = result.structured_content.unwrap();
        assert_eq!(error["error"]["field"], "file_path", "{error}");
    }
    session.cancel().await.unwrap();
    assert_eq!(upload.calls_async().await, 1, "only the allowed file was sent");
}

struct HttpServer {
    child: Child,
    url: String,
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn http_server(base_url: &str, extra: &[&str]) -> HttpServer {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tokportal-mcp"))
        .args(["--http", "127.0.0.1:0"])
        .args(extra)
        .env_remove("TOKPORTAL_API_KEY")
        .env("TOKPORTAL_BASE_URL", base_url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tokportal-mcp starts");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(url) = line.split("listening on ").nth(1) {
                let _ = tx.send(url.trim().to_owned());
            }
        }
    });
    let url = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the server says where it listens");
    HttpServer { child, url }
}

async fn http_session(url: &str, key: &str) -> Session {
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(url.to_owned()).auth_header(key.to_owned()),
    );
    ().serve(transport).await.expect("initialize over HTTP")
}

#[tokio::test]
async fn http_callers_use_their_own_keys() {
    let server = MockServer::start_async().await;
    let mut mocks = Vec::new();
    for key in ["sk_alice", "sk_bob"] {
        mocks.push(
            server
                .mock_async(move |when, then| {
                    when.path("/me").header("x-api-key", key);
                    then.status(200)
                        .header("content-type", "application/json")
                        .json_body(json!({"data": {"email": format!("{key}@example.com")}}));
                })
                .await,
        );
    }
    let mcp = http_server(&server.base_url(), &[]);
    let alice = http_session(&mcp.url, "sk_alice").await;
    let bob = http_session(&mcp.url, "sk_bob").await;
    // Interleaved, and at the same time: each call carries its caller's key.
    let (a, b) = tokio::join!(
        call(&alice, "getCurrentUser", json!({})),
        call(&bob, "getCurrentUser", json!({}))
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.structured_content.unwrap()["data"]["email"], "sk_alice@example.com");
    assert_eq!(b.structured_content.unwrap()["data"]["email"], "sk_bob@example.com");
    call(&alice, "getCurrentUser", json!({})).await.unwrap();
    assert_eq!(mocks[0].calls_async().await, 2);
    assert_eq!(mocks[1].calls_async().await, 1);
    // Uploads are off over HTTP unless a folder is allowed.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("v.mp4");
    std::fs::write(&file, b"v").unwrap();
    let refused = call(
        &alice,
        "uploadVideoDirect",
        json!({"file_path": file.to_str().unwrap(), "bundle_id": UUID_A}),
    )
    .await
    .unwrap();
    assert_eq!(refused.is_error, Some(true));
    alice.cancel().await.unwrap();
    bob.cancel().await.unwrap();

    // No key: 401 with a JSON body. A foreign Origin: 403.
    let http = reqwest::Client::new();
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}});
    let post = |origin: Option<&str>, key: Option<&str>| {
        let mut request = http
            .post(&mcp.url)
            .header("accept", "application/json, text/event-stream")
            .json(&initialize);
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        request.send()
    };
    let response = post(None, None).await.unwrap();
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "UNAUTHORIZED");
    let response = post(Some("https://evil.example"), Some("sk_alice")).await.unwrap();
    assert_eq!(response.status(), 403);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "FORBIDDEN_ORIGIN");
    let response = post(Some("http://localhost:5173"), Some("sk_alice")).await.unwrap();
    assert!(response.status().is_success(), "{}", response.status());
}

#[test]
fn binding_beyond_loopback_needs_an_explicit_flag() {
    let out = Command::new(env!("CARGO_BIN_EXE_tokportal-mcp"))
        .args(["--http", "0.0.0.0:0"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--allow-remote"));
    let out = Command::new(env!("CARGO_BIN_EXE_tokportal-mcp"))
        .args(["--toolsets", "nope"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bundles"));
}

#[tokio::test]
async fn structured_content_matches_the_output_schema() {
    let server = MockServer::start_async().await;
    let me = json!({"data": {"id": UUID_A, "email": "a@example.com", "full_name": "A", "company_name": null,
        "credits": {"balance": 10}, "api_key": {"id": UUID_A, "name": "ci"}}});
    server
        .mock_async(|when, then| {
            when.path("/me");
            then.status(200)
                .header("content-type", "application/json")
                .json_body(me.clone());
        })
        .await;
    let session = stdio(&server.base_url(), &["--tools", "getCurrentUser"]).await;
    let tools = session.list_all_tools().await.unwrap();
    let schema = Value::Object((*tools[0].output_schema.clone().unwrap()).clone());
    let result = call(&session, "getCurrentUser", json!({})).await.unwrap();
    let content = result.structured_content.unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(&content).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}\n{schema}");
    // The schema does check: an answer without its required `data` would not pass.
    assert!(!validator.is_valid(&json!({"nope": 1})));
    session.cancel().await.unwrap();
}

fn text_of(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// An agent's session against the offline sandbox rather than canned
/// answers: it previews, creates, configures and publishes; what the contract
/// refuses comes back as the sandbox's field-level error; and two HTTP
/// callers, each with their own key, see only their own bundles.
#[tokio::test]
async fn an_agent_works_against_the_sandbox() {
    let sandbox = tokportal::sandbox::Sandbox::start().await.unwrap();
    let agent = stdio(sandbox.url(), &[]).await;
    let create = json!({"body": {"bundle_type": "account_only", "country": "USA"}});
    let mut preview = create.clone();
    preview["dry_run"] = json!(true);
    let previewed = call(&agent, "createBundle", preview).await.unwrap();
    let previewed = previewed.structured_content.unwrap();
    assert_eq!(previewed["data"]["dry_run"], true);
    assert_eq!(previewed["data"]["credits_would_charge"], 10.0);
    let created = call(&agent, "createBundle", create).await.unwrap();
    assert_ne!(created.is_error, Some(true), "{}", text_of(&created));
    let id = created.structured_content.unwrap()["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let configured = call(
        &agent,
        "configureBundleAccount",
        json!({"id": id, "body": {"username": "agent_made", "visible_name": "Agent"}}),
    )
    .await
    .unwrap();
    assert_ne!(configured.is_error, Some(true), "{}", text_of(&configured));
    let published = call(&agent, "publishBundle", json!({"id": id})).await.unwrap();
    assert!(text_of(&published).contains("\"published\""), "{}", text_of(&published));
    let balance = call(&agent, "getCreditBalance", json!({})).await.unwrap();
    assert!(
        text_of(&balance).contains("990"),
        "one debit of 10: {}",
        text_of(&balance)
    );
    // An argument this contract does not know is sent as given; the sandbox,
    // which enforces the contract, names it.
    let refused = call(&agent, "getBundle", json!({"id": id, "colour": "red"}))
        .await
        .unwrap();
    assert_eq!(refused.is_error, Some(true));
    let text = text_of(&refused);
    assert!(text.contains("VALIDATION_ERROR") && text.contains("colour"), "{text}");
    agent.cancel().await.unwrap();

    let mcp = http_server(sandbox.url(), &[]);
    let alice = http_session(&mcp.url, "sk_test_alice").await;
    let bob = http_session(&mcp.url, "sk_test_bob").await;
    for _ in 0..2 {
        let made = call(
            &alice,
            "createBundle",
            json!({"body": {"bundle_type": "account_only", "country": "FRA"}}),
        )
        .await
        .unwrap();
        assert_ne!(made.is_error, Some(true), "{}", text_of(&made));
    }
    let total = |r: CallToolResult| r.structured_content.map(|s| s["pagination"]["total"].clone());
    let a = call(&alice, "listBundles", json!({})).await.unwrap();
    let b = call(&bob, "listBundles", json!({})).await.unwrap();
    let (a, b) = (total(a).unwrap_or_default(), total(b).unwrap_or_default());
    assert_eq!((a, b), (json!(2), json!(0)), "each caller's key is its own");
    alice.cancel().await.unwrap();
    bob.cancel().await.unwrap();
}

async fn queue_fault(sandbox: &str, fault: &str, operation: &str) {
    let queued: Value = reqwest::Client::new()
        .post(format!("{sandbox}/_sandbox/faults"))
        .json(&json!({"fault": fault, "times": 1, "operation": operation}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(queued["data"]["queued"], 1);
}

/// A retry during a tool call reaches the agent's host as
/// `notifications/message`, over stdio and over HTTP, before the answer;
/// `logging/setLevel` is honoured.
#[tokio::test]
async fn a_retry_reaches_the_client_as_a_log_message() {
    let sandbox = tokportal::sandbox::Sandbox::start().await.unwrap();
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_tokportal-mcp"));
    command
        .env("TOKPORTAL_API_KEY", "sk_test_logging")
        .env("TOKPORTAL_BASE_URL", sandbox.url())
        .stderr(Stdio::null());
    let heard = common::LogListener::default();
    let client = heard
        .clone()
        .serve(TokioChildProcess::new(command).unwrap())
        .await
        .expect("initialize");
    assert!(
        client.peer_info().unwrap().capabilities.logging.is_some(),
        "the server declares logging"
    );
    queue_fault(sandbox.url(), "503", "getCurrentUser").await;
    let result = call(&client, "getCurrentUser", json!({})).await.unwrap();
    assert_ne!(result.is_error, Some(true), "{result:?}");
    let messages = heard.0.lock().unwrap().clone();
    let retry = messages
        .iter()
        .find(|m| m["data"]["event"] == "tokportal.retry")
        .unwrap_or_else(|| panic!("a retry message: {messages:?}"));
    assert_eq!(retry["level"], "info");
    assert!(
        retry["data"]["message"].as_str().unwrap().contains("before attempt 2"),
        "{retry}"
    );
    // At `warning`, a retry (info) is no longer sent.
    #[allow(deprecated)]
    client
        .set_level(rmcp::model::SetLevelRequestParams::new(
            rmcp::model::LoggingLevel::Warning,
        ))
        .await
        .unwrap();
    heard.0.lock().unwrap().clear();
    queue_fault(sandbox.url(), "503", "getCurrentUser").await;
    call(&client, "getCurrentUser", json!({})).await.unwrap();
    assert!(heard.0.lock().unwrap().is_empty(), "{:?}", heard.0.lock().unwrap());
    client.cancel().await.unwrap();

    // Over HTTP (stateless): the message comes in the call's own stream.
    let mcp = http_server(sandbox.url(), &[]);
    let heard = common::LogListener::default();
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(mcp.url.clone()).auth_header("sk_test_logging_http".to_owned()),
    );
    let client = heard.clone().serve(transport).await.expect("initialize over HTTP");
    queue_fault(sandbox.url(), "503", "getCurrentUser").await;
    let result = call(&client, "getCurrentUser", json!({})).await.unwrap();
    assert_ne!(result.is_error, Some(true), "{result:?}");
    let messages = heard.0.lock().unwrap().clone();
    assert!(
        messages.iter().any(|m| m["data"]["event"] == "tokportal.retry"),
        "{messages:?}"
    );
    client.cancel().await.unwrap();
}
