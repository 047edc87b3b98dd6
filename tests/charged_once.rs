//! A paid call is charged at most once, however the caller asks (or does not
//! ask) for a preview: the typed dry-run setter at `true` and at `false`,
//! `.dry_run()`, `OperationArgs`, `Client::request_raw`'s header, `tokportal
//! api -H` and the MCP tool's `dry_run`. Each is sent while the sandbox
//! applies the call and then drops its answer (the `lost` fault), which is
//! what makes a retry without an idempotency key charge twice.
//!
//! And when every attempt is cut off, the error hands back the key the
//! sandbox's journal shows, so the call can be sent again under it.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use tokportal::sandbox::Sandbox;
use tokportal::types::{CreateBundleRequest, CreateBundleRequestBundleType};
use tokportal::{Client, Error, OperationArgs, RetryPolicy};

/// The body every case sends: a paid create.
fn body() -> Value {
    json!({"bundle_type": "account_only", "country": "USA"})
}

fn typed_body() -> tokportal::types::builder::CreateBundleRequest {
    CreateBundleRequest::builder()
        .bundle_type(CreateBundleRequestBundleType::AccountOnly)
        .country(Some("USA".parse().unwrap()))
}

/// A client of `key` whose retries wait little.
fn client(sandbox: &Sandbox, key: &str) -> Client {
    Client::builder()
        .api_key(key)
        .base_url(sandbox.url())
        .retry(
            RetryPolicy::default()
                .initial_backoff(Duration::from_millis(5))
                .jitter(false),
        )
        .build()
        .unwrap()
}

/// `GET {sandbox}{path}` as `key`: its JSON.
async fn get(sandbox: &Sandbox, key: &str, path: &str) -> Value {
    reqwest::Client::new()
        .get(format!("{}{path}", sandbox.url()))
        .header("x-api-key", key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// What a key holds: its balance and how many bundles it has.
async fn holdings(sandbox: &Sandbox, key: &str) -> (f64, u64) {
    let me = get(sandbox, key, "/me").await;
    let bundles = get(sandbox, key, "/bundles").await;
    let balance = me["data"]["credits"]["balance"].as_f64().expect("a balance");
    let count = bundles["pagination"]["total"]
        .as_u64()
        .or_else(|| bundles["data"].as_array().map(|d| d.len() as u64))
        .expect("a bundle count");
    (balance, count)
}

/// Queues `times` lost answers for `key`'s next `createBundle`.
async fn lose_answers(sandbox: &Sandbox, key: &str, times: u32) {
    let r = reqwest::Client::new()
        .post(format!("{}/_sandbox/faults", sandbox.url()))
        .header("x-api-key", key)
        .json(&json!({"fault": "lost", "times": times, "operation": "createBundle"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
}

/// The price of the create, from a dry run (and the proof that a dry run
/// changes nothing).
async fn price(sandbox: &Sandbox, key: &str) -> f64 {
    let preview = client(sandbox, key)
        .request_operation("createBundle", OperationArgs::new().body(body()).dry_run())
        .await
        .unwrap()
        .dry_run_preview()
        .expect("a preview");
    let cost = preview.credits_would_charge.expect("a price");
    assert!(cost > 0.0, "the create is paid");
    cost
}

/// One way of sending the create.
#[derive(Debug, Clone, Copy)]
enum Way {
    TypedNoSetter,
    TypedSetterFalse,
    TypedSetterTrue,
    TypedDotDryRun,
    ArgsReal,
    ArgsDryRun,
    CallOperationFalse,
    CallOperationTrue,
    RawHeaderFalse,
    RawHeaderTrue,
    CliHeaderFalse,
    CliHeaderTrue,
}

impl Way {
    /// Whether this way asks for a preview.
    fn previews(self) -> bool {
        matches!(
            self,
            Way::TypedSetterTrue
                | Way::TypedDotDryRun
                | Way::ArgsDryRun
                | Way::CallOperationTrue
                | Way::RawHeaderTrue
                | Way::CliHeaderTrue
        )
    }

    /// Sends the create this way; `Ok` when it reports success.
    async fn send(self, sandbox: &Sandbox, key: &str) -> Result<(), String> {
        use tokportal::operations::HttpMethod;
        use tokportal::raw::RawRequest;
        let c = client(sandbox, key);
        let e = |e: Error| e.to_string();
        match self {
            Way::TypedNoSetter => c.create_bundle().body(typed_body()).send().await.map(drop).map_err(e),
            Way::TypedSetterFalse => c
                .create_bundle()
                .x_tok_portal_dry_run(false)
                .body(typed_body())
                .send()
                .await
                .map(drop)
                .map_err(e),
            Way::TypedSetterTrue => c
                .create_bundle()
                .x_tok_portal_dry_run(true)
                .body(typed_body())
                .send()
                .await
                .map(drop)
                .map_err(e),
            Way::TypedDotDryRun => c
                .create_bundle()
                .body(typed_body())
                .dry_run()
                .send()
                .await
                .map(drop)
                .map_err(e),
            Way::ArgsReal => c
                .request_operation("createBundle", OperationArgs::new().body(body()))
                .await
                .map(drop)
                .map_err(e),
            Way::ArgsDryRun => c
                .request_operation("createBundle", OperationArgs::new().body(body()).dry_run())
                .await
                .map(drop)
                .map_err(e),
            Way::CallOperationFalse | Way::CallOperationTrue => c
                .call_operation("createBundle", {
                    let mut arguments = serde_json::Map::new();
                    arguments.insert("body".into(), body());
                    arguments.insert("dry_run".into(), json!(matches!(self, Way::CallOperationTrue)));
                    arguments
                })
                .await
                .map(drop)
                .map_err(e),
            Way::RawHeaderFalse | Way::RawHeaderTrue => {
                let value = if matches!(self, Way::RawHeaderTrue) {
                    "true"
                } else {
                    "false"
                };
                c.request_raw(
                    RawRequest::new(HttpMethod::Post, "/bundles")
                        .header("X-TokPortal-Dry-Run", value)
                        .body(body()),
                )
                .await
                .map(drop)
                .map_err(e)
            }
            Way::CliHeaderFalse | Way::CliHeaderTrue => {
                let value = if matches!(self, Way::CliHeaderTrue) {
                    "true"
                } else {
                    "false"
                };
                let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_tokportal"))
                    .args(["api", "POST", "/bundles", "-H"])
                    .arg(format!("X-TokPortal-Dry-Run: {value}"))
                    .args(["--body", &body().to_string()])
                    .env("TOKPORTAL_API_KEY", key)
                    .env("TOKPORTAL_BASE_URL", sandbox.url())
                    .env_remove("TOKPORTAL_PROFILE")
                    .stdin(Stdio::null())
                    .output()
                    .await
                    .unwrap();
                if out.status.success() {
                    Ok(())
                } else {
                    Err(String::from_utf8_lossy(&out.stderr).into_owned())
                }
            }
        }
    }
}

const WAYS: [Way; 12] = [
    Way::TypedNoSetter,
    Way::TypedSetterFalse,
    Way::TypedSetterTrue,
    Way::TypedDotDryRun,
    Way::ArgsReal,
    Way::ArgsDryRun,
    Way::CallOperationFalse,
    Way::CallOperationTrue,
    Way::RawHeaderFalse,
    Way::RawHeaderTrue,
    Way::CliHeaderFalse,
    Way::CliHeaderTrue,
];

/// The reproduction, for every way: one lost answer, one call. A
/// real call makes one bundle and is charged its price once (and succeeds,
/// its retry replayed under the key); a preview makes none and is charged
/// nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_answer_never_charges_twice_whatever_the_caller_writes() {
    let sandbox = Sandbox::start().await.unwrap();
    for (n, way) in WAYS.into_iter().enumerate() {
        let key = format!("sk_test_charged_once_{n}");
        let cost = price(&sandbox, &key).await;
        let (before, none) = holdings(&sandbox, &key).await;
        assert_eq!(none, 0, "{way:?}: a dry run made no bundle");
        lose_answers(&sandbox, &key, 1).await;
        let sent = way.send(&sandbox, &key).await;
        let (after, bundles) = holdings(&sandbox, &key).await;
        if way.previews() {
            assert!(sent.is_ok(), "{way:?}: {sent:?}");
            assert_eq!(
                (before - after, bundles),
                (0.0, 0),
                "{way:?}: a preview changes nothing"
            );
        } else {
            assert!(sent.is_ok(), "{way:?}: the retry is replayed under its key: {sent:?}");
            assert_eq!(
                (before - after, bundles),
                (cost, 1),
                "{way:?}: one bundle, charged once"
            );
        }
    }
}

/// The same through `tokportal-mcp`'s tool, with `dry_run` absent, `false`
/// and `true`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mcp_tool_is_charged_at_most_once_whatever_its_dry_run() {
    let sandbox = Sandbox::start().await.unwrap();
    for (n, dry_run) in [None, Some(false), Some(true)].into_iter().enumerate() {
        let key = format!("sk_test_charged_once_mcp_{n}");
        let cost = price(&sandbox, &key).await;
        let (before, _) = holdings(&sandbox, &key).await;
        lose_answers(&sandbox, &key, 1).await;
        let mut arguments = json!({"body": body()});
        if let Some(d) = dry_run {
            arguments["dry_run"] = json!(d);
        }
        let url = sandbox.url().to_owned();
        let key_for_mcp = key.clone();
        let result = tokio::task::spawn_blocking(move || mcp_call(&url, &key_for_mcp, "createBundle", arguments))
            .await
            .unwrap();
        assert_ne!(result["isError"], true, "{dry_run:?}: {result}");
        let (after, bundles) = holdings(&sandbox, &key).await;
        let expected = if dry_run == Some(true) { (0.0, 0) } else { (cost, 1) };
        assert_eq!((before - after, bundles), expected, "{dry_run:?}: {result}");
    }
}

/// One `tools/call` over stdio, with confirmation off (this client cannot be asked).
fn mcp_call(base_url: &str, key: &str, tool: &str, arguments: Value) -> Value {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tokportal-mcp"))
        .args(["--confirm-spending", "never"])
        .env("TOKPORTAL_API_KEY", key)
        .env("TOKPORTAL_BASE_URL", base_url)
        .env_remove("TOKPORTAL_PROFILE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("tokportal-mcp starts");
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let messages = [
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}}),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": tool, "arguments": arguments}}),
    ];
    let mut answer = Value::Null;
    for message in messages {
        writeln!(stdin, "{message}").unwrap();
        stdin.flush().unwrap();
        let Some(id) = message.get("id").cloned() else { continue };
        // Read until the answer to this request (notifications may come first).
        for line in lines.by_ref() {
            let line = line.unwrap();
            let v: Value = serde_json::from_str(&line).unwrap();
            if v["id"] == id {
                answer = v["result"].clone();
                break;
            }
        }
    }
    drop(stdin);
    let _ = child.kill();
    let _ = child.wait();
    answer
}

/// Every attempt cut off: the error names the key, and it is the key every
/// attempt carried in the sandbox's journal. Sending the call again under
/// it is then charged once, in all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_every_attempt_is_cut_off_the_error_hands_back_the_key() {
    let sandbox = Sandbox::start().await.unwrap();
    let key = "sk_test_cut_off";
    let cost = price(&sandbox, key).await;
    let (before, _) = holdings(&sandbox, key).await;
    let c = client(&sandbox, key);
    let attempts = RetryPolicy::default().attempts();
    lose_answers(&sandbox, key, attempts).await;
    let err = c.create_bundle().body(typed_body()).send().await.unwrap_err();
    let sent_key = err.idempotency_key().expect("the error names its key").to_owned();
    assert!(err.to_string().contains(&sent_key), "Display names it: {err}");

    let journal = get(&sandbox, key, "/_sandbox/requests?operation=createBundle").await;
    let entries = journal["data"].as_array().expect("journal entries");
    let real: Vec<&Value> = entries.iter().filter(|e| e["dry_run"] != true).collect();
    assert_eq!(real.len() as u32, attempts, "{journal}");
    for entry in real {
        assert_eq!(entry["idempotency_key"], sent_key.as_str(), "{entry}");
    }

    // Later: the same call under the same key. It is the first one's answer,
    // charged once in all.
    let again = c
        .create_bundle()
        .body(typed_body())
        .idempotency_key(sent_key.as_str())
        .send()
        .await
        .unwrap();
    use tokportal::ResponseExt;
    assert!(again.meta().idempotent_replayed);
    assert_eq!(again.meta().idempotency_key.as_deref(), Some(sent_key.as_str()));
    let (after, bundles) = holdings(&sandbox, key).await;
    assert_eq!((before - after, bundles), (cost, 1));
}

/// A success's metadata names the key the SDK generated for it.
#[tokio::test]
async fn a_success_names_its_generated_key() {
    let sandbox = Sandbox::start().await.unwrap();
    let c = client(&sandbox, "sk_test_meta_key");
    let typed = c.create_bundle().body(typed_body()).send().await.unwrap();
    use tokportal::ResponseExt;
    let typed_key = typed.meta().idempotency_key.expect("the generated key");
    let dynamic = c
        .request_operation("createBundle", OperationArgs::new().body(body()))
        .await
        .unwrap();
    let dynamic_key = dynamic.meta.idempotency_key.expect("the generated key");
    assert_ne!(typed_key, dynamic_key, "one key per call");
    // A read has none.
    let me = c.get_current_user().send().await.unwrap();
    assert_eq!(me.meta().idempotency_key, None);
}

/// A dry-run value that is neither `true` nor `false` is refused before
/// anything is sent: the client and the server could read it differently.
#[tokio::test]
async fn an_unreadable_dry_run_value_is_refused_unsent() {
    use tokportal::operations::HttpMethod;
    use tokportal::raw::RawRequest;
    let sandbox = Sandbox::start().await.unwrap();
    let key = "sk_test_unreadable";
    let (before, _) = holdings(&sandbox, key).await;
    for value in ["1", "yes", ""] {
        let err = client(&sandbox, key)
            .request_raw(
                RawRequest::new(HttpMethod::Post, "/bundles")
                    .header("X-TokPortal-Dry-Run", value)
                    .body(body()),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::InvalidArgument { field: Some(f), .. } if f == "dry_run"),
            "{value:?}: {err:?}"
        );
    }
    assert_eq!(holdings(&sandbox, key).await, (before, 0));
    let journal = get(&sandbox, key, "/_sandbox/requests?operation=createBundle").await;
    assert_eq!(
        journal["data"].as_array().map(Vec::len),
        Some(0),
        "nothing sent: {journal}"
    );
}

/// The key `idempotency_key` of every real `createBundle` the journal of
/// `key` shows.
async fn journal_keys(sandbox: &Sandbox, key: &str) -> Vec<String> {
    let journal = get(sandbox, key, "/_sandbox/requests?operation=createBundle").await;
    journal["data"]
        .as_array()
        .expect("journal entries")
        .iter()
        .filter(|e| e["dry_run"] != true)
        .map(|e| e["idempotency_key"].as_str().unwrap_or("(none)").to_owned())
        .collect()
}

/// The CLI, every attempt cut off: it exits 4 and prints the line to send
/// the call again under the key the journal shows; that line, run, is
/// charged once in all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_prints_the_key_and_the_line_to_resend() {
    let sandbox = Sandbox::start().await.unwrap();
    let key = "sk_test_cli_cut_off";
    let cost = price(&sandbox, key).await;
    let (before, _) = holdings(&sandbox, key).await;
    lose_answers(&sandbox, key, RetryPolicy::default().attempts()).await;
    let cli = |extra: Vec<String>| {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_tokportal"))
            .args(["create-bundle", "--body", &body().to_string()])
            .args(extra)
            .env("TOKPORTAL_API_KEY", key)
            .env("TOKPORTAL_BASE_URL", sandbox.url())
            .env_remove("TOKPORTAL_PROFILE")
            .stdin(Stdio::null())
            .output()
    };
    let out = cli(Vec::new()).await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    let keys = journal_keys(&sandbox, key).await;
    assert_eq!(keys.len() as u32, RetryPolicy::default().attempts(), "{keys:?}");
    assert!(
        keys.iter().all(|k| *k == keys[0]),
        "one key for every attempt: {keys:?}"
    );
    let line = format!("--idempotency-key {}", keys[0]);
    assert!(
        stderr.contains(&line),
        "the resend line names the journal's key: {stderr}"
    );

    let again = cli(vec!["--idempotency-key".into(), keys[0].clone()]).await.unwrap();
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    let (after, bundles) = holdings(&sandbox, key).await;
    assert_eq!((before - after, bundles), (cost, 1));
}

/// The MCP tool's error, every attempt cut off, carries the key the
/// journal shows, for the agent to send the call again under it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mcp_tool_error_carries_the_key() {
    let sandbox = Sandbox::start().await.unwrap();
    let key = "sk_test_mcp_cut_off";
    lose_answers(&sandbox, key, RetryPolicy::default().attempts()).await;
    let url = sandbox.url().to_owned();
    let result = tokio::task::spawn_blocking(move || mcp_call(&url, key, "createBundle", json!({"body": body()})))
        .await
        .unwrap();
    assert_eq!(result["isError"], true, "{result}");
    let keys = journal_keys(&sandbox, key).await;
    assert!(!keys.is_empty());
    assert_eq!(
        result["structuredContent"]["error"]["idempotency_key"], keys[0],
        "{result}"
    );
}
