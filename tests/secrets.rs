//! No secret is ever printed: every surface at its highest verbosity (the
//! SDK under a TRACE subscriber with an OpenTelemetry exporter, the CLI with
//! `-vvv` and `TOKPORTAL_DEBUG=api`, `tokportal-mcp` with `RUST_LOG=trace`
//! and its client at `debug`, the sandbox logging at TRACE), against answers
//! that hold a webhook signing secret and revealed account credentials.
//! None of the API key, the secret or the password appears in a log line,
//! a span, an MCP notification, or stderr. (stdout and a tool's result are
//! the answers themselves, and hold them, as they must.)

mod common;

use std::io::Write;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, CallToolResult, JsonObject};
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::TokioChildProcess;
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;

const KEY: &str = "sk_test_DistinctiveKey_9qz7Xw";

/// A writer into memory, for the SDK's and the sandbox's log lines.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn data(response: tokportal::OperationResponse) -> Value {
    match response.body {
        tokportal::ResponseBody::Json(v) => v["data"].clone(),
        other => panic!("{other:?}"),
    }
}

fn args(path: Value, body: Option<Value>) -> tokportal::OperationArgs {
    let mut args = tokportal::OperationArgs::new();
    if let Value::Object(path) = path {
        args.path = path;
    }
    args.body = body;
    args
}

async fn mcp_call(
    client: &RunningService<RoleClient, common::LogListener>,
    tool: &str,
    arguments: Value,
) -> CallToolResult {
    let Value::Object(arguments) = arguments else { panic!() };
    client
        .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments as JsonObject))
        .await
        .unwrap()
}

#[tokio::test]
async fn no_surface_prints_a_key_a_webhook_secret_or_revealed_credentials() {
    let logs = Buffer::default();
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let writer = logs.clone();
    // Everything at TRACE but the test's own MCP client (rmcp), which logs
    // the tool results it receives: it is this test's, not a surface.
    let everything = || {
        tracing_subscriber::filter::Targets::new()
            .with_default(tracing::Level::TRACE)
            .with_target("rmcp", tracing_subscriber::filter::LevelFilter::OFF)
    };
    let subscriber = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(move || writer.clone())
                .with_filter(everything()),
        )
        .with(
            tracing_opentelemetry::layer()
                .with_tracer(provider.tracer("secrets"))
                .with_filter(everything()),
        );
    // Global: the sandbox's tasks run on the runtime's other threads.
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let sandbox = tokportal::sandbox::Sandbox::start().await.unwrap();
    let url = sandbox.url().to_owned();
    let sdk = tokportal::Client::builder()
        .api_key(KEY)
        .base_url(&url)
        .retry(
            tokportal::RetryPolicy::default()
                .initial_backoff(std::time::Duration::from_millis(10))
                .jitter(false),
        )
        .build()
        .unwrap();
    // A retried call, so that every kind of event is logged.
    reqwest::Client::new()
        .post(format!("{url}/_sandbox/faults"))
        .json(&json!({"fault": "503", "times": 1, "operation": "createBundle"}))
        .send()
        .await
        .unwrap();
    let endpoint = data(
        sdk.request_operation(
            "createWebhookEndpoint",
            args(
                json!({}),
                Some(json!({"url": "http://127.0.0.1:9/hook", "events": ["bundle.created"]})),
            ),
        )
        .await
        .unwrap(),
    );
    let secret = endpoint["secret"].as_str().expect("a signing secret").to_owned();
    let bundle = data(
        sdk.request_operation(
            "createBundle",
            args(
                json!({}),
                Some(json!({"bundle_type": "account_only", "country": "USA"})),
            ),
        )
        .await
        .unwrap(),
    );
    let id = json!({"id": bundle["id"]});
    sdk.request_operation(
        "configureBundleAccount",
        args(
            id.clone(),
            Some(json!({"username": "secret_test", "visible_name": "S"})),
        ),
    )
    .await
    .unwrap();
    sdk.request_operation("publishBundle", args(id.clone(), None))
        .await
        .unwrap();
    let account = data(
        sdk.request_operation("finalizeBundleAccount", args(id, None))
            .await
            .unwrap(),
    );
    let account_id = account["id"].as_str().unwrap().to_owned();
    let revealed = data(
        sdk.request_operation("revealAccountCredentials", args(json!({"id": account_id}), None))
            .await
            .unwrap(),
    );
    let password = revealed["password"].as_str().expect("a password").to_owned();
    // `data_as` into a type the credentials do not fit: its error, by the
    // dynamic and the typed path, holds none of them (serde's message would
    // quote the value it could not read).
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct NotTheCredentials {
        password: u64,
        username: bool,
    }
    let again = sdk
        .request_operation("revealAccountCredentials", args(json!({"id": account_id}), None))
        .await
        .unwrap();
    let dynamic = again.data_as::<NotTheCredentials>().unwrap_err();
    let typed = sdk
        .reveal_account_credentials()
        .id(account_id.parse::<uuid::Uuid>().unwrap())
        .send()
        .await
        .unwrap();
    let typed = tokportal::ResponseData::data_as::<NotTheCredentials>(&typed).unwrap_err();
    for e in [&dynamic, &typed] {
        assert!(matches!(e, tokportal::Error::Decode { .. }), "{e:?}");
    }
    // The SDK's error for a refused call holds no secret either.
    let refused = sdk
        .request_operation("getAccount", args(json!({"id": common::UUID_A}), None))
        .await
        .unwrap_err();
    let mut outputs = vec![
        ("an SDK error", format!("{refused} {refused:?}")),
        ("data_as on revealed credentials", format!("{dynamic} {dynamic:?}")),
        ("typed data_as on revealed credentials", format!("{typed} {typed:?}")),
    ];

    // The CLI at its most verbose.
    let cli = |cli_args: &[&str]| {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_tokportal"))
            .args(cli_args)
            .env("TOKPORTAL_API_KEY", KEY)
            .env("TOKPORTAL_BASE_URL", &url)
            .env("TOKPORTAL_DEBUG", "api")
            .env_remove("RUST_LOG")
            .output()
    };
    for cli_args in [
        vec!["reveal-account-credentials", "-vvv", "--id", account_id.as_str()],
        vec!["get-webhook-endpoint", "-vvv", "--id", endpoint["id"].as_str().unwrap()],
        vec![
            "create-webhook-endpoint",
            "-vvv",
            "--body",
            r#"{"url": "http://127.0.0.1:9/other", "events": ["bundle.created"]}"#,
        ],
    ] {
        let out = cli(&cli_args).await.unwrap();
        assert!(
            out.status.success(),
            "{cli_args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            stderr.contains("tokportal: > x-api-key: ** redacted"),
            "-vvv shows headers: {stderr}"
        );
        outputs.push(("the CLI's stderr", stderr));
    }

    // A stored key: `login` (the 0600 file here, as no keyring is set up in
    // this test), `auth status` and a call with the profile, all at -vvv.
    // Neither their stdout nor their stderr shows the key (only `auth token`
    // prints it, by design, and is not run here).
    let config = tempfile::tempdir().unwrap();
    let stored = |cli_args: Vec<&str>, stdin: String| {
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tokportal"))
            .args(cli_args)
            .env_remove("TOKPORTAL_API_KEY")
            .env_remove("TOKPORTAL_BASE_URL")
            .env("TOKPORTAL_CONFIG_DIR", config.path())
            .env("TOKPORTAL_NO_KEYRING", "1")
            .env("TOKPORTAL_DEBUG", "api")
            .env_remove("RUST_LOG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        async move {
            tokio::io::AsyncWriteExt::write_all(&mut input, stdin.as_bytes())
                .await
                .unwrap();
            drop(input);
            child.wait_with_output().await.unwrap()
        }
    };
    for (cli_args, stdin) in [
        (
            vec![
                "-vvv",
                "login",
                "--profile",
                "kept",
                "--base-url",
                url.as_str(),
                "--with-key",
            ],
            format!("{KEY}\n"),
        ),
        (vec!["-vvv", "auth", "status", "--profile", "kept"], String::new()),
        (vec!["get-current-user", "-vvv", "--profile", "kept"], String::new()),
    ] {
        let shown = format!("{cli_args:?}");
        let out = stored(cli_args, stdin).await;
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{shown}: {stderr}");
        outputs.push(("a stored key's CLI stderr", stderr));
        outputs.push((
            "a stored key's CLI stdout",
            String::from_utf8_lossy(&out.stdout).into_owned(),
        ));
    }
    assert!(
        outputs
            .iter()
            .any(|(_, text)| text.contains("tokportal: > x-api-key: ** redacted")),
        "the stored key was sent, and shown redacted at -vvv"
    );

    // The MCP server with everything on.
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_tokportal-mcp"));
    command
        .env("TOKPORTAL_API_KEY", KEY)
        .env("TOKPORTAL_BASE_URL", &url)
        .env("RUST_LOG", "trace");
    let (transport, stderr) = TokioChildProcess::builder(command)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let heard = common::LogListener::default();
    let agent = heard.clone().serve(transport).await.unwrap();
    #[allow(deprecated)]
    agent
        .set_level(rmcp::model::SetLevelRequestParams::new(
            rmcp::model::LoggingLevel::Debug,
        ))
        .await
        .unwrap();
    let shown = mcp_call(&agent, "revealAccountCredentials", json!({"id": account_id})).await;
    assert!(
        format!("{shown:?}").contains(&password),
        "the tool's result is the answer"
    );
    mcp_call(
        &agent,
        "createWebhookEndpoint",
        json!({"body": {"url": "http://127.0.0.1:9/third", "events": ["bundle.created"]}}),
    )
    .await;
    mcp_call(&agent, "getCurrentUser", json!({})).await;
    agent.cancel().await.unwrap();
    let mut mcp_stderr = String::new();
    if let Some(mut stderr) = stderr {
        stderr.read_to_string(&mut mcp_stderr).await.unwrap();
    }
    assert!(
        mcp_stderr.contains("tokportal"),
        "the server logged at trace: {mcp_stderr}"
    );
    let notifications = heard.0.lock().unwrap().clone();
    assert!(!notifications.is_empty(), "the client heard debug messages");
    outputs.push(("tokportal-mcp's stderr", mcp_stderr));
    outputs.push(("MCP notifications", serde_json::to_string(&notifications).unwrap()));

    provider.force_flush().unwrap();
    let spans = exporter.get_finished_spans().unwrap();
    assert!(spans.iter().any(|s| s.name == "POST /accounts/{id}/reveal-credentials"));
    outputs.push(("spans", format!("{spans:?}")));
    let lines = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    assert!(lines.contains("tokportal::http"), "the SDK logged at TRACE");
    assert!(lines.contains("tokportal::sandbox"), "the sandbox logged");
    outputs.push(("the SDK's and the sandbox's log lines", lines));

    for (secret_name, value) in [("API key", KEY), ("webhook secret", &secret), ("password", &password)] {
        for (place, text) in &outputs {
            if let Some(at) = text.find(value) {
                let from = text[..at].rfind('\n').map_or(0, |n| n + 1).max(at.saturating_sub(300));
                let line = text[from..].lines().next().unwrap_or_default();
                panic!("the {secret_name} appears in {place}: {}", &line[..line.len().min(400)]);
            }
        }
    }
}

/// The OAuth flow (`tokportal-mcp --oauth`, logging at TRACE): registration,
/// the consent page with the user's key, the code, the tokens, a refresh and
/// a call, a paid call and a destructive one, with a daily limit and the
/// audit log on. Neither the key, the code, the access token nor the
/// refresh token appears in the server's log or in its audit log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_oauth_key_code_or_token_reaches_a_log() {
    use common::oauth::{KEY as OAUTH_KEY, REDIRECT, Replica, client, discover, register, send, sign_in};
    use oauth2::TokenResponse;

    let sandbox = tokportal::sandbox::Sandbox::start().await.unwrap();
    let audit = tempfile::tempdir().unwrap();
    let audit_log = audit.path().join("audit.log");
    let replica = Replica::start(
        &sandbox,
        common::oauth::PUBLIC,
        &[
            "--audit-log",
            audit_log.to_str().unwrap(),
            "--daily-credit-limit",
            "100000",
            "--confirm-spending",
            "never",
        ],
    );
    let server = discover(&replica).await;
    let client_id = register(&replica, &server, REDIRECT).await;
    let (tokens, code) = sign_in(&replica, &server, &client_id, "full").await;
    let access = tokens.access_token().secret().clone();
    let refresh = tokens.refresh_token().unwrap().clone();
    let origin = replica.origin.clone();
    let http = move |r| send(r, origin.clone());
    let renewed = client(&server, &client_id, REDIRECT)
        .exchange_refresh_token(&refresh)
        .request_async(&http)
        .await
        .unwrap();
    let transport = rmcp::transport::StreamableHttpClientTransport::from_config(
        rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig::with_uri(format!(
            "{}/mcp",
            replica.origin
        ))
        .auth_header(renewed.access_token().secret().clone()),
    );
    let agent = ().serve(transport).await.unwrap();
    let me = agent
        .call_tool(CallToolRequestParams::new("getCurrentUser".to_owned()))
        .await
        .unwrap();
    assert_ne!(me.is_error, Some(true));
    for (tool, arguments) in [
        (
            "createBundle",
            json!({"body": {"bundle_type": "account_only", "country": "USA"}}),
        ),
        (
            "deleteWebhookEndpoint",
            json!({"id": "9f3a7b2e-1c4d-4e8f-a5b6-7d9e0f1a2b3c"}),
        ),
    ] {
        let Value::Object(arguments) = arguments else {
            unreachable!()
        };
        agent
            .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments))
            .await
            .unwrap();
    }
    agent.cancel().await.unwrap();
    let audited = std::fs::read_to_string(&audit_log).unwrap();
    assert_eq!(
        audited.lines().count(),
        2,
        "a line per paid or destructive call: {audited}"
    );

    let log = replica.log.lock().unwrap().join("\n");
    assert!(log.contains("a code was issued"), "the server logged at trace");
    let secrets = [
        ("the key", OAUTH_KEY.to_owned()),
        ("the code", code),
        ("the access token", access),
        ("the refresh token", refresh.secret().clone()),
        ("the renewed access token", renewed.access_token().secret().clone()),
    ];
    for (name, secret) in secrets {
        assert!(!log.contains(&secret), "{name} appears in tokportal-mcp's log");
        assert!(
            !audited.contains(&secret),
            "{name} appears in tokportal-mcp's audit log"
        );
    }
}
