//! The `tokportal` binary, run as a user would, against servers on 127.0.0.1.

mod common;

use std::process::{Command, Output};

use common::{KEY, UUID_A, sample};
use httpmock::prelude::*;
use serde_json::{Value, json};
use tokportal::operations::{OPERATIONS, ParamLocation};

fn tokportal(base_url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tokportal"))
        .args(args)
        .env_remove("TOKPORTAL_API_KEY")
        .env("TOKPORTAL_BASE_URL", base_url)
        .env("TOKPORTAL_API_KEY", KEY)
        .output()
        .expect("the binary runs")
}

fn identifier() -> String {
    format!("tokportal-rust-cli/{}", env!("CARGO_PKG_VERSION"))
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[test]
fn every_command_sends_its_request() {
    let server = MockServer::start();
    let dir = tempfile::tempdir().unwrap();
    let upload = dir.path().join("upload.csv");
    std::fs::write(&upload, "id,description\n1,hello\n").unwrap();
    for op in OPERATIONS {
        let mut args: Vec<String> = vec![op.cli_command.to_string(), "--compact".into()];
        let mut path = op.path.to_string();
        let mut query = Vec::new();
        for p in op.params {
            let schema = p.schema();
            let value = if p.repeatable {
                sample(&schema["items"])
            } else {
                sample(&schema)
            };
            if p.location == ParamLocation::Path {
                path = path.replace(&format!("{{{}}}", p.name), &text(&value));
            } else {
                query.push((p.name, text(&value)));
            }
            // Alternate the spec spelling and the dashed one.
            let flag = if query.len() % 2 == 0 {
                p.name.replace('_', "-")
            } else {
                p.name.to_string()
            };
            args.push(format!("--{flag}"));
            args.push(text(&value));
        }
        let mut body = None;
        if let Some(b) = op.body {
            if op.is_multipart() {
                args.push("--file".into());
                args.push(upload.display().to_string());
                for (k, v) in sample(&b.schema()).as_object().unwrap() {
                    if k != "file" {
                        args.push(format!("--{k}"));
                        args.push(text(v));
                    }
                }
            } else {
                let value = sample(&b.schema());
                args.push("--body".into());
                args.push(value.to_string());
                body = Some(value);
            }
        }
        let mock = server.mock(|when, then| {
            let mut when = when
                .method(op.method.as_str())
                .path(path.clone())
                .header("x-api-key", KEY)
                .header("x-tokportal-client", identifier());
            for (k, v) in &query {
                when = when.query_param(*k, v.clone());
            }
            if let Some(b) = &body {
                when = when.json_body(b.clone());
            }
            if op.is_multipart() {
                when.body_includes("id,description\n1,hello\n");
            }
            let then = then.status(op.success_status);
            match op.success_content_type {
                Some("application/json") => {
                    then.header("content-type", "application/json")
                        .json_body(json!({"data": {"op": op.id}}));
                }
                Some(_) => {
                    then.header("content-type", "text/plain").body("raw,text\n");
                }
                None => {}
            }
        });
        let out = tokportal(&server.base_url(), &args.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(
            out.status.success(),
            "{}: {:?}\n{}",
            op.cli_command,
            args,
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(mock.calls(), 1, "{}", op.cli_command);
        let stdout = String::from_utf8_lossy(&out.stdout);
        match op.success_content_type {
            Some("application/json") => assert_eq!(stdout.trim(), json!({"data": {"op": op.id}}).to_string()),
            Some(_) => assert_eq!(stdout, "raw,text\n"),
            None => assert_eq!(stdout, ""),
        }
    }
}

#[test]
fn the_product_docs_lines_work_as_written() {
    let server = MockServer::start();
    let me = server.mock(|when, then| {
        when.method(GET).path("/me");
        then.status(200)
            .header("content-type", "application/json")
            .json_body(json!({"data": {"email": "you@example.com"}}));
    });
    let list = server.mock(|when, then| {
        when.method(GET)
            .path("/bundles")
            .query_param("page", "1")
            .query_param("per_page", "25");
        then.status(200)
            .header("content-type", "application/json")
            .json_body(json!({"data": []}));
    });
    let create = server.mock(|when, then| {
        when.method(POST)
            .path("/bundles")
            .json_body(json!({"bundle_type": "account_and_videos", "country": "USA", "videos_quantity": 5}))
            .header_exists("idempotency-key");
        then.status(201)
            .header("content-type", "application/json")
            .json_body(json!({"data": {"id": UUID_A}}));
    });
    let upload = server.mock(|when, then| {
        when.method(POST)
            .path("/upload/video/direct")
            .body_includes("name=\"bundle_id\"\r\n\r\n00000000-0000-0000-0000-000000000000")
            .body_includes("filename=\"video.mp4\"\r\nContent-Type: video/mp4");
        then.status(200)
            .header("content-type", "application/json")
            .json_body(json!({"data": {"url": "https://cdn/x.mp4"}}));
    });
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("video.mp4"), vec![1u8; 1024]).unwrap();
    let run = |line: &str| {
        let words: Vec<String> = shell_words(line);
        let out = Command::new(env!("CARGO_BIN_EXE_tokportal"))
            .args(&words[1..])
            .current_dir(dir.path())
            .env("TOKPORTAL_API_KEY", KEY)
            .env("TOKPORTAL_BASE_URL", server.base_url())
            .output()
            .unwrap();
        assert!(out.status.success(), "{line}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    assert!(run("tokportal get-current-user").contains("you@example.com"));
    run("tokportal list-bundles --page 1 --per_page 25");
    run(r#"tokportal create-bundle --body '{"bundle_type":"account_and_videos","country":"USA","videos_quantity":5}'"#);
    assert!(
        run("tokportal upload-video-direct --file ./video.mp4 --bundle_id 00000000-0000-0000-0000-000000000000")
            .contains("cdn/x.mp4")
    );
    for m in [&me, &list, &create, &upload] {
        assert_eq!(m.calls(), 1);
    }
}

/// Splits a command line the way a POSIX shell does for these simple cases (single quotes).
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '\'' => quoted = !quoted,
            ' ' if !quoted => {
                if !current.is_empty() {
                    words.push(std::mem::take(&mut current));
                }
            }
            _ => current.push(c),
        }
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

#[test]
fn exit_codes_and_the_error_json() {
    let server = MockServer::start();
    server.mock(|when, then| {
        when.path("/me");
        then.status(429)
            .header("content-type", "application/json")
            .header("x-tokportal-request-id", "req_42")
            .header("retry-after", "1")
            .header("x-ratelimit-limit", "120")
            .header("x-ratelimit-remaining", "0")
            .header("x-ratelimit-reset", "1779724800")
            .json_body(json!({"error": {"code": "RATE_LIMIT_EXCEEDED", "message": "Rate limit exceeded."}}));
    });
    // 1: the API's payload and diagnostics on stderr (retries off so it fails at once).
    let out = tokportal(&server.base_url(), &["get-current-user", "--no-retry"]);
    assert_eq!(out.status.code(), Some(1));
    let err: Value = serde_json::from_slice(&out.stderr).expect("stderr is JSON");
    assert_eq!(
        err,
        json!({
            "payload": {"error": {"code": "RATE_LIMIT_EXCEEDED", "message": "Rate limit exceeded."}},
            "diagnostics": {"request_id": "req_42", "status": 429, "retry_after_seconds": 1,
                            "rate_limit": {"limit": 120, "remaining": 0, "reset": 1779724800}}
        })
    );
    // 2: usage errors, before any request.
    for args in [
        vec!["list-bundles", "--per_page", "101"],
        vec!["list-bundles", "--bundle_type", "nope", "--strict"],
        vec!["get-bundle", "--id", "not-a-uuid"],
        vec!["create-bundle", "--body", "{not json"],
        vec![
            "create-bundle",
            "--body",
            r#"{"bundle_type":"account_only","title":"x","unknown":1}"#,
            "--strict",
        ],
        vec!["reveal-account-credentials", "--id", UUID_A, "--idempotency-key", "k"],
        vec!["no-such-command"],
    ] {
        let out = tokportal(&server.base_url(), &args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // 3: no API key.
    let out = Command::new(env!("CARGO_BIN_EXE_tokportal"))
        .args(["get-current-user"])
        .env_remove("TOKPORTAL_API_KEY")
        .env("TOKPORTAL_BASE_URL", server.base_url())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    // 4: a transport failure, with a one-line reason.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = tokportal(&format!("http://127.0.0.1:{port}"), &["list-countries", "--no-retry"]);
    assert_eq!(out.status.code(), Some(4));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}

#[test]
fn csv_export_to_a_file_and_repeated_filters() {
    let server = MockServer::start();
    let mock = server.mock(|when, then| {
        when.path("/analytics/export/videos")
            .query_param("account", "a1")
            .query_param("account", "a2");
        then.status(200)
            .header("content-type", "text/csv")
            .body("id,views\n1,2\n");
    });
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("videos.csv");
    let out = tokportal(
        &server.base_url(),
        &[
            "--output",
            file.to_str().unwrap(),
            "export-analytics-videos",
            "--account",
            "a1",
            "--account",
            "a2",
        ],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "id,views\n1,2\n");
    assert_eq!(mock.calls(), 1);
}

#[test]
fn a_multi_megabyte_upload_and_global_flags_after_the_command() {
    let server = MockServer::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("clip.mp4");
    let content: Vec<u8> = (0..6 * 1024 * 1024).map(|i| (i % 253) as u8).collect();
    std::fs::write(&file, &content).unwrap();
    let mock = server.mock(|when, then| {
        when.path("/upload/video/direct")
            .header("idempotency-key", "upload-1")
            .header("x-request-id", "trace-9")
            .header_includes("content-length", "")
            .body_includes("filename=\"clip.mp4\"");
        then.status(200)
            .header("content-type", "application/json")
            .json_body(json!({"data": {"url": "u"}}));
    });
    let out = tokportal(
        &server.base_url(),
        &[
            "upload-video-direct",
            "--file",
            file.to_str().unwrap(),
            "--bundle-id",
            UUID_A,
            "--idempotency-key",
            "upload-1",
            "--request-id",
            "trace-9",
            "--compact",
        ],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), r#"{"data":{"url":"u"}}"#);
    assert_eq!(mock.calls(), 1);
}

#[test]
fn all_pages_prints_json_lines() {
    // Against the sandbox, which paginates for real: five bundles, two a page.
    let sandbox = SandboxProcess::start(&[]);
    for n in 1..=5 {
        let body = json!({"bundle_type": "account_only", "country": "USA", "external_ref": format!("b{n}")});
        stdout_json(&tokportal(&sandbox.1, &["create-bundle", "--body", &body.to_string()]));
    }
    let out = tokportal(&sandbox.1, &["list-bundles", "--all-pages", "--per-page", "2"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let refs: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| {
            serde_json::from_str::<Value>(line).unwrap()["external_ref"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        refs,
        ["b1", "b2", "b3", "b4", "b5"],
        "one JSON line an item, every page, in order"
    );
}

#[test]
fn webhooks_sign_then_verify() {
    let dir = tempfile::tempdir().unwrap();
    let body = dir.path().join("event.json");
    std::fs::write(&body, r#"{"id":"evt_7","type":"bundle.created","api_version":"2026-05-25","created_at":"2026-06-01T12:00:00Z","data":{"bundle_id":"b"}}"#).unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_tokportal"))
            .args(args)
            .output()
            .unwrap()
    };
    let signed = run(&[
        "webhooks",
        "sign",
        "--secret",
        "whsec_x",
        "--body-file",
        body.to_str().unwrap(),
    ]);
    assert!(signed.status.success());
    let header = String::from_utf8(signed.stdout).unwrap().trim().to_string();
    assert!(header.starts_with("t="), "{header}");
    let ok = run(&[
        "webhooks",
        "verify",
        "--secret",
        "whsec_old",
        "--secret",
        "whsec_x",
        "--header",
        &header,
        "--body-file",
        body.to_str().unwrap(),
    ]);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert_eq!(String::from_utf8_lossy(&ok.stdout).trim(), "bundle.created evt_7");
    let bad = run(&[
        "webhooks",
        "verify",
        "--secret",
        "whsec_wrong",
        "--header",
        &header,
        "--body-file",
        body.to_str().unwrap(),
    ]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("no signature matches"));
    let completions = run(&["completions", "bash"]);
    assert!(completions.status.success() && String::from_utf8_lossy(&completions.stdout).contains("get-current-user"));
}

#[test]
fn newer_fields_are_sent_as_given_and_dry_runs_preview() {
    let server = MockServer::start();
    let newer = json!({"bundle_type": "account_only", "country": "USA", "wants_advanced_warming": true});
    let create = server.mock(|when, then| {
        when.method(POST)
            .path("/bundles")
            .header_missing("x-tokportal-dry-run")
            .header_exists("idempotency-key")
            .json_body(newer.clone());
        then.status(201)
            .header("content-type", "application/json")
            .json_body(json!({"data": {"id": UUID_A}}));
    });
    let preview = server.mock(|when, then| {
        when.method(POST)
            .path("/bundles")
            .header("x-tokportal-dry-run", "true")
            .header_missing("idempotency-key");
        then.status(200).header("content-type", "application/json").json_body(
            json!({"data": {"dry_run": true, "credits_would_charge": 12, "credits_charged": 0,
                "cost_breakdown": {"bundle": 10, "videos": 2}, "id": UUID_A}}),
        );
    });
    let list = server.mock(|when, then| {
        when.method(GET)
            .path("/bundles")
            .query_param("colour", "red")
            .query_param("bundle_type", "carousel_only");
        then.status(200)
            .header("content-type", "application/json")
            .json_body(json!({"data": []}));
    });

    let out = tokportal(&server.base_url(), &["create-bundle", "--body", &newer.to_string()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("wants_advanced_warming") && stderr.contains("sent as given"),
        "{stderr}"
    );

    let out = tokportal(
        &server.base_url(),
        &[
            "create-bundle",
            "--dry-run",
            "--idempotency-key",
            "k-1",
            "--body",
            r#"{"bundle_type":"account_only","country":"USA"}"#,
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(r#"dry run: would charge 12 credits, charged 0 (cost breakdown: {"bundle":10,"videos":2})"#),
        "{stderr}"
    );
    let stdout: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stdout["data"]["dry_run"], true);

    // An enum value and a query parameter the contract does not know.
    let out = tokportal(
        &server.base_url(),
        &[
            "list-bundles",
            "--bundle-type",
            "carousel_only",
            "--query",
            "colour=red",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));

    // A dry run of a read-only command is a usage error, and nothing is sent.
    let out = tokportal(&server.base_url(), &["list-bundles", "--dry-run"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!((create.calls(), preview.calls(), list.calls()), (1, 1, 1));
}

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn usage_errors_and_help_read_as_a_user_expects() {
    let server = MockServer::start();
    // The environment's key and URL are not shown as if they were given.
    let out = tokportal(&server.base_url(), &["get-bundle"]);
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains("Usage: tokportal get-bundle --id <ID>"), "{stderr}");
    assert!(
        !stderr.contains("--api-key") && !stderr.contains("--base-url"),
        "{stderr}"
    );

    // A range says what it is, not i64::MAX.
    let out = tokportal(&server.base_url(), &["list-bundles", "--page", "0"]);
    let stderr = stderr_of(&out);
    assert!(stderr.contains("0 is less than the minimum of 1"), "{stderr}");
    assert!(!stderr.contains("9223372036854775807"), "{stderr}");
    let out = tokportal(&server.base_url(), &["list-bundles", "--per-page", "2.5"]);
    assert!(
        stderr_of(&out).contains("`2.5` is not a whole number"),
        "{}",
        stderr_of(&out)
    );

    // The request id's own grammar.
    let out = tokportal(&server.base_url(), &["get-current-user", "--request-id", "has space"]);
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains("a request id holds visible ASCII"), "{stderr}");
    assert!(!stderr.contains("an request id"), "{stderr}");

    // Parameters first, with their range and the server's default; then the call options.
    let out = tokportal(&server.base_url(), &["help", "list-bundles"]);
    let help = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(help.contains("Items per page (1 to 100; server default 25)"), "{help}");
    let parameters = help.find("Parameters:").expect("a Parameters section");
    let call = help.find("Call options:").expect("a Call options section");
    let api_key = help.find("--api-key").expect("--api-key is listed");
    assert!(parameters < call && call < api_key, "{help}");

    // The local tools list only their own flags.
    for tool in ["sign", "verify"] {
        let out = tokportal(&server.base_url(), &["webhooks", tool, "--help"]);
        let help = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(help.contains("--secret"), "{help}");
        for network in [
            "--api-key",
            "--base-url",
            "--timeout",
            "--idempotency-key",
            "--no-retry",
        ] {
            assert!(!help.contains(network), "webhooks {tool} lists {network}: {help}");
        }
    }
}

#[test]
fn a_whole_float_for_an_integer_is_sent_as_an_integer() {
    let server = MockServer::start();
    let list = server.mock(|when, then| {
        when.path("/bundles")
            .query_param("page", "2")
            .query_param("per_page", "10");
        then.status(200)
            .header("content-type", "application/json")
            .json_body(json!({"data": []}));
    });
    let out = tokportal(
        &server.base_url(),
        &["list-bundles", "--page", "2.0", "--per_page", "10"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    list.assert();
}

/// `tokportal sandbox` as a separate process: killed when the test ends.
struct SandboxProcess(std::process::Child, String);

impl SandboxProcess {
    fn start(extra: &[&str]) -> Self {
        use std::io::BufRead;
        let mut child = Command::new(env!("CARGO_BIN_EXE_tokportal"))
            .args(["sandbox", "--port", "0"])
            .args(extra)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("first line: {line:?}"))
            .to_owned();
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
        Self(child, url)
    }
}

impl Drop for SandboxProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn stdout_json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The issue's acceptance path: the CLI drives `tokportal sandbox` through
/// create → configure → publish, and a delivery it sends to a receiver is
/// accepted by `tokportal webhooks verify`.
#[test]
fn the_cli_drives_the_sandbox_from_create_to_publish_and_verifies_its_webhook() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    type Received = std::sync::Arc<std::sync::Mutex<Vec<(http::HeaderMap, Vec<u8>)>>>;
    let got: Received = Default::default();
    let seen = got.clone();
    let hook = runtime.block_on(async move {
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: http::HeaderMap, body: axum::body::Bytes| {
                let seen = seen.clone();
                async move {
                    seen.lock().unwrap().push((headers, body.to_vec()));
                    axum::http::StatusCode::NO_CONTENT
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    });
    let sandbox = SandboxProcess::start(&[]);
    let cli = |args: &[&str]| tokportal(&sandbox.1, args);
    let endpoint = stdout_json(&cli(&[
        "create-webhook-endpoint",
        "--body",
        &json!({"url": hook, "events": ["bundle.created", "bundle.published", "account.configured"]}).to_string(),
    ]));
    let secret = endpoint["data"]["secret"].as_str().unwrap().to_owned();
    let bundle = stdout_json(&cli(&[
        "create-bundle",
        "--body",
        r#"{"bundle_type":"account_and_videos","country":"USA","videos_quantity":1}"#,
    ]));
    let id = bundle["data"]["id"].as_str().unwrap().to_owned();
    assert_eq!(bundle["data"]["status"], "draft");
    let early = cli(&["publish-bundle", "--id", &id]);
    assert_eq!(
        early.status.code(),
        Some(1),
        "not ready before the account is configured"
    );
    assert!(String::from_utf8_lossy(&early.stderr).contains("BUNDLE_NOT_READY"));
    let configured = stdout_json(&cli(&[
        "configure-bundle-account",
        "--id",
        &id,
        "--body",
        r#"{"username":"cli_user","visible_name":"CLI"}"#,
    ]));
    assert_eq!(configured["data"]["status"], "configured");
    let published = stdout_json(&cli(&["publish-bundle", "--id", &id]));
    assert_eq!(published["data"]["status"], "published");
    assert_eq!(published["data"]["account_status"], "in_review");
    let listed = stdout_json(&cli(&["list-bundles", "--status", "published"]));
    assert_eq!(listed["pagination"]["total"], 1);
    let invalid = cli(&["get-bundle", "--id", &id, "--query", "colour=red"]);
    assert_eq!(
        invalid.status.code(),
        Some(1),
        "the sandbox refuses what this contract does not know"
    );
    assert!(String::from_utf8_lossy(&invalid.stderr).contains("VALIDATION_ERROR"));

    // Three events were subscribed to and happened: created, configured, published.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while got.lock().unwrap().len() < 3 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let deliveries = got.lock().unwrap().clone();
    let mut types = Vec::new();
    let dir = tempfile::tempdir().unwrap();
    for (n, (headers, body)) in deliveries.iter().enumerate() {
        let file = dir.path().join(format!("delivery-{n}.json"));
        std::fs::write(&file, body).unwrap();
        let header = headers["tokportal-signature"].to_str().unwrap();
        let verified = Command::new(env!("CARGO_BIN_EXE_tokportal"))
            .args([
                "webhooks",
                "verify",
                "--secret",
                &secret,
                "--header",
                header,
                "--body-file",
            ])
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            verified.status.success(),
            "{}",
            String::from_utf8_lossy(&verified.stderr)
        );
        let line = String::from_utf8(verified.stdout).unwrap();
        types.push(line.split_whitespace().next().unwrap().to_owned());
        assert!(line.contains(" evt_"), "{line}");
    }
    types.sort();
    assert_eq!(types, ["account.configured", "bundle.created", "bundle.published"]);
}

/// `-v` against the sandbox: a create that meets one 503 shows two attempt
/// lines with the operation, the method, the path template, the status,
/// the time and the request id, and the wait between them with its reason
/// and the idempotency key both attempts carried; stdout is the answer alone.
#[test]
fn verbose_shows_each_attempt_and_the_wait_and_keeps_stdout_for_the_answer() {
    let sandbox = SandboxProcess::start(&[]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let queued: Value = runtime.block_on(async {
        reqwest::Client::new()
            .post(format!("{}/_sandbox/faults", sandbox.1))
            .json(&json!({"fault": "503", "times": 1, "operation": "createBundle"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    assert_eq!(queued["data"]["queued"], 1);
    let out = tokportal(
        &sandbox.1,
        &[
            "create-bundle",
            "-v",
            "--idempotency-key",
            "verbose-key-1",
            "--body",
            r#"{"bundle_type": "account_only", "country": "USA"}"#,
        ],
    );
    let created = stdout_json(&out);
    assert_eq!(created["data"]["status"], "draft", "stdout is the answer alone");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    let attempts: Vec<&&str> = lines
        .iter()
        .filter(|l| l.starts_with("tokportal: createBundle  POST /bundles  "))
        .collect();
    assert_eq!(attempts.len(), 2, "{stderr}");
    assert!(
        attempts[0].contains("503 Service Unavailable") && attempts[0].contains("(attempt 1)"),
        "{stderr}"
    );
    assert!(
        attempts[1].contains("201 Created") && attempts[1].contains("(attempt 2)"),
        "{stderr}"
    );
    for line in &attempts {
        assert!(line.contains(" ms  request req_"), "{line}");
    }
    let wait = lines
        .iter()
        .find(|l| l.starts_with("tokportal: waiting "))
        .unwrap_or_else(|| panic!("a wait line: {stderr}"));
    assert!(
        wait.contains("then attempt 2 with the same Idempotency-Key verbose-key-1"),
        "{wait}"
    );
    // -vv adds the headers, the key redacted.
    let out = tokportal(&sandbox.1, &["get-current-user", "-vv"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("tokportal: > GET "), "{stderr}");
    assert!(
        stderr.contains("tokportal: > x-api-key: ** redacted (length="),
        "{stderr}"
    );
    assert!(stderr.contains("tokportal: < 200 OK"), "{stderr}");
    assert!(!stderr.contains(KEY), "{stderr}");
    // -vvv adds bodies.
    let out = tokportal(&sandbox.1, &["get-current-user", "-vvv"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("tokportal: < {\"data\""), "{stderr}");
    assert!(!stderr.contains(KEY), "{stderr}");
}

/// The binary against `url` with `key`, its environment otherwise clean.
fn against(url: &str, key: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tokportal"))
        .args(args)
        .env_remove("TOKPORTAL_PROFILE")
        .env_remove("TOKPORTAL_YES")
        .env("TOKPORTAL_BASE_URL", url)
        .env("TOKPORTAL_API_KEY", key)
        .env(
            "TOKPORTAL_CONFIG_DIR",
            std::env::temp_dir().join("tokportal-cli-tests-no-profiles"),
        )
        .output()
        .expect("the binary runs")
}

/// The request bodies a sandbox of one test received for `operation`
/// (its dry runs left out), oldest first, as its journal (`GET
/// /_sandbox/requests`, newest first) kept them.
fn journal_bodies(url: &str, operation: &str) -> Vec<String> {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let journal: Value = runtime.block_on(async {
        reqwest::get(format!("{url}/_sandbox/requests"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    let mut bodies: Vec<String> = journal["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["operation"] == operation && !e["dry_run"].as_bool().unwrap_or(false))
        .map(|e| e["request"]["body"].as_str().unwrap_or_default().to_owned())
        .collect();
    bodies.reverse();
    bodies
}

#[test]
fn body_flags_send_the_bytes_of_the_equivalent_body() {
    let sandbox = SandboxProcess::start(&[]);
    let key = "sk_test_flags_equal_body";
    // The flags, in the order of the JSON below.
    let flags = against(
        &sandbox.1,
        key,
        &[
            "create-bundle",
            "--bundle-type",
            "account_and_videos",
            "--country",
            "USA",
            "--videos-quantity",
            "5",
            "--wants-moderation",
            "-F",
            "title=Launch",
        ],
    );
    let made = stdout_json(&flags);
    let body = r#"{"bundle_type":"account_and_videos","country":"USA","videos_quantity":5,"wants_moderation":true,"title":"Launch"}"#;
    let given = against(&sandbox.1, key, &["create-bundle", "--body", body]);
    stdout_json(&given);
    // The noun-verb form, and snake_case spellings (hidden aliases), send the same.
    let nouns = against(
        &sandbox.1,
        key,
        &[
            "bundles",
            "create",
            "--bundle_type",
            "account_and_videos",
            "--country",
            "USA",
            "--videos_quantity",
            "5",
            "--wants-moderation",
            "true",
            "-f",
            "title=Launch",
        ],
    );
    stdout_json(&nouns);
    // Flags merge over --body: the flag wins for its field.
    let merged = against(
        &sandbox.1,
        key,
        &[
            "create-bundle",
            "--body",
            r#"{"bundle_type":"account_only","country":"USA","videos_quantity":5,"wants_moderation":true,"title":"Launch"}"#,
            "--bundle-type",
            "account_and_videos",
        ],
    );
    stdout_json(&merged);
    let bodies = journal_bodies(&sandbox.1, "createBundle");
    assert_eq!(bodies.len(), 4, "{bodies:?}");
    assert_eq!(bodies[0], body, "flags send the bytes of --body");
    assert_eq!(bodies[1], body, "--body is sent byte for byte");
    assert_eq!(bodies[2], body, "the noun-verb form and the snake_case spellings");
    let merged: Value = serde_json::from_str(&bodies[3]).unwrap();
    assert_eq!(
        merged,
        serde_json::from_str::<Value>(body).unwrap(),
        "merged over --body"
    );
    assert_eq!(made["data"]["videos_quantity"], 5);

    // A field given twice is refused before anything is sent.
    let twice = against(
        &sandbox.1,
        key,
        &[
            "create-bundle",
            "--bundle-type",
            "account_only",
            "--country",
            "USA",
            "-F",
            "country=FRA",
        ],
    );
    assert_eq!(twice.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&twice.stderr).contains("`country` is given twice"),
        "{}",
        String::from_utf8_lossy(&twice.stderr)
    );
    // A missing required field names its flag and an example, before sending.
    let missing = against(&sandbox.1, key, &["create-bundle", "--country", "USA"]);
    assert_eq!(missing.status.code(), Some(2));
    let said = String::from_utf8_lossy(&missing.stderr);
    assert!(
        said.contains("needs --bundle-type") && said.contains("tokportal create-bundle --bundle-type account_only"),
        "{said}"
    );
    // The contract still checks the merged body: a value out of range is refused.
    let out = against(
        &sandbox.1,
        key,
        &[
            "create-bundle",
            "--bundle-type",
            "account_only",
            "-F",
            "videos_quantity=9999",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        journal_bodies(&sandbox.1, "createBundle").len(),
        4,
        "nothing more was sent"
    );
}

#[test]
fn nested_fields_with_dotted_paths_and_files() {
    let sandbox = SandboxProcess::start(&[]);
    let key = "sk_test_nested_fields";
    let created = stdout_json(&against(
        &sandbox.1,
        key,
        &[
            "create-bundle",
            "--bundle-type",
            "account_and_videos",
            "--country",
            "USA",
            "--videos-quantity",
            "2",
        ],
    ));
    let id = created["data"]["id"].as_str().unwrap().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let second = dir.path().join("second.json");
    std::fs::write(
        &second,
        r#"{"position": 2, "video_type": "video", "description": "two", "target_publish_date": "2030-01-02", "video_url": "https://cdn.example.com/2.mp4"}"#,
    )
    .unwrap();
    let at_file = format!("videos[]=@{}", second.display());
    let out = against(
        &sandbox.1,
        key,
        &[
            "bundles",
            "videos",
            "batch-configure",
            "--id",
            &id,
            "-F",
            "videos.0.position=1",
            "-f",
            "videos.0.video_type=video",
            "-f",
            "videos.0.description=one",
            "-f",
            "videos.0.target_publish_date=2030-01-01",
            "-f",
            "videos.0.video_url=https://cdn.example.com/1.mp4",
            "-F",
            &at_file,
        ],
    );
    stdout_json(&out);
    let bodies = journal_bodies(&sandbox.1, "batchConfigureBundleVideos");
    let sent: Value = serde_json::from_str(bodies.last().unwrap()).unwrap();
    assert_eq!(sent["videos"][0]["position"], 1, "-F types numbers: {sent}");
    assert_eq!(sent["videos"][0]["target_publish_date"], "2030-01-01", "-f keeps text");
    assert_eq!(sent["videos"][1]["description"], "two", "@FILE read as JSON: {sent}");
}

#[test]
fn schema_prints_the_body_schema_and_an_example_that_passes_it() {
    let out = tokportal("http://127.0.0.1:9", &["schema", "bundles", "create"]);
    let doc = stdout_json(&out);
    assert_eq!(doc["operation"], "createBundle");
    assert_eq!(doc["schema"]["required"], json!(["bundle_type"]));
    assert_eq!(doc["example"], json!({"bundle_type": "account_only"}));
    assert_eq!(
        doc["example_command"],
        "tokportal create-bundle --bundle-type account_only"
    );
    let none = tokportal("http://127.0.0.1:9", &["schema", "list-bundles"]);
    assert_eq!(none.status.code(), Some(2));
    let typo = tokportal("http://127.0.0.1:9", &["schema", "create-bundel"]);
    assert!(String::from_utf8_lossy(&typo.stderr).contains("did you mean `create-bundle`?"));
}

#[test]
fn help_names_the_fields_cleanly() {
    let out = tokportal("http://127.0.0.1:9", &["configure-bundle-account", "--help"]);
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success());
    assert!(
        help.contains("--username <USERNAME>") && help.contains("[required"),
        "{help}"
    );
    assert!(
        help.contains("Example:\n  tokportal configure-bundle-account --id "),
        "{help}"
    );
    assert!(!help.contains("\n\n\n"), "no run of blank lines:\n{help}");
    assert!(!help.contains("<__"), "no internal placeholder:\n{help}");
    assert!(
        help.contains("--visible-name") && !help.contains("--visible_name"),
        "kebab-case first"
    );
    let upload = tokportal("http://127.0.0.1:9", &["upload-video-direct", "--help"]);
    let help = String::from_utf8(upload.stdout).unwrap();
    assert!(
        help.contains("--content-type <TYPE>") && help.contains("--bundle-id <BUNDLE_ID>"),
        "{help}"
    );
    assert!(!help.contains("--bundle_id"), "{help}");
    // A field whose flag is taken is prefixed and says so.
    let report = tokportal("http://127.0.0.1:9", &["create-analytics-report", "--help"]);
    let help = String::from_utf8(report.stdout).unwrap();
    assert!(
        help.contains("--body-query") && help.contains("the body's `query`"),
        "{help}"
    );
    let root = tokportal("http://127.0.0.1:9", &["--help"]);
    let help = String::from_utf8(root.stdout).unwrap();
    assert!(!help.contains("\n\n\n"), "{help}");
}

#[test]
fn a_closed_pipe_ends_every_command_family_quietly() {
    use std::process::Stdio;
    let sandbox = SandboxProcess::start(&[]);
    let key = "sk_test_closed_pipe";
    for _ in 0..3 {
        stdout_json(&against(
            &sandbox.1,
            key,
            &["create-bundle", "--bundle-type", "account_only", "--country", "USA"],
        ));
    }
    let body = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(body.path(), b"{}").unwrap();
    let body_path = body.path().to_str().unwrap().to_owned();
    let families: Vec<Vec<&str>> = vec![
        vec!["completions", "bash"],
        vec!["completions", "zsh"],
        vec!["--help"],
        vec!["create-bundle", "--help"],
        vec!["bundles", "--help"],
        vec!["--version"],
        vec!["list-bundles", "--all-pages", "--per-page", "1"],
        vec!["list-bundles"],
        vec!["bundles", "list", "--format", "csv"],
        vec!["list-countries"],
        vec!["get-current-user"],
        vec!["api", "GET", "/me", "-i"],
        vec!["schema", "create-bundle"],
        vec!["auth", "status"],
        vec!["auth", "token"],
        vec!["webhooks", "sign", "--secret", "whsec_x", "--body-file", &body_path],
        vec!["sandbox", "clock"],
    ];
    for args in families {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tokportal"))
            .args(&args)
            .env_remove("TOKPORTAL_PROFILE")
            .env("TOKPORTAL_BASE_URL", &sandbox.1)
            .env("TOKPORTAL_API_KEY", key)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The reader goes away before the first byte is written.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert_eq!(stderr, "", "{args:?} says nothing on stderr");
    }
}

#[test]
fn a_typo_gets_one_suggestion_in_either_form() {
    for (typed, meant) in [
        (&["list-bundle"][..], "tokportal list-bundles"),
        (&["bundle", "lst"][..], "tokportal bundles list"),
        (
            &["bundles", "videos", "configur"][..],
            "tokportal bundles videos configure",
        ),
    ] {
        let out = tokportal("http://127.0.0.1:9", typed);
        assert_eq!(out.status.code(), Some(2));
        let said = String::from_utf8_lossy(&out.stderr);
        assert_eq!(said.matches("did you mean").count(), 1, "{said}");
        assert!(said.contains(&format!("did you mean `{meant}`?")), "{typed:?}: {said}");
    }
}

#[test]
fn edges_say_one_line() {
    let sandbox = SandboxProcess::start(&[]);
    let out = tokportal("127.0.0.1:38787", &["get-current-user"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("did you mean `http://127.0.0.1:38787`?"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tokportal"))
        .args(["--profile", "nope", "get-current-user"])
        .env("TOKPORTAL_CONFIG_DIR", config.path())
        .env("TOKPORTAL_BASE_URL", &sandbox.1)
        .env("TOKPORTAL_API_KEY", "sk_test_profile_env")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no profile `nope`"));
    // A refused key: one line, nothing kept.
    let server = MockServer::start();
    server.mock(|when, then| {
        when.method(GET).path("/me");
        then.status(401)
            .header("content-type", "application/json")
            .body(r#"{"error": {"code": "UNAUTHORIZED", "message": "Invalid API key."}}"#);
    });
    let mut child = Command::new(env!("CARGO_BIN_EXE_tokportal"))
        .args(["login", "--with-key", "--base-url", &server.base_url()])
        .env("TOKPORTAL_CONFIG_DIR", config.path())
        .env("TOKPORTAL_NO_KEYRING", "1")
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child.stdin.take().unwrap().write_all(b"sk_live_refused\n").unwrap();
    let out = child.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(said.trim().lines().count(), 1, "one line: {said}");
    assert!(
        said.contains("refused the key") && said.contains("nothing was kept"),
        "{said}"
    );
}

#[test]
fn the_sandbox_cli_says_what_waits_and_what_is_taken() {
    let sandbox = SandboxProcess::start(&[]);
    let key = "sk_test_trigger_clock";
    let set = against(
        &sandbox.1,
        key,
        &["sandbox", "clock", "set", "--at", "2026-06-01T00:00:00Z"],
    );
    assert!(set.status.success(), "{}", String::from_utf8_lossy(&set.stderr));
    let out = against(&sandbox.1, key, &["trigger", "account.in_review"]);
    let made = stdout_json(&out);
    let said = String::from_utf8_lossy(&out.stderr);
    let at = made["waits_until"].as_str().expect("when it comes");
    assert!(said.contains("waits on this key's simulated clock"), "{said}");
    assert!(
        said.contains(&format!("tokportal sandbox clock advance --to {at}")),
        "{said}"
    );
    assert!(said.contains("publish-bundle"), "commands, not operationIds: {said}");

    // The port of a running sandbox is taken: said, with --port 0.
    let port = sandbox.1.rsplit(':').next().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tokportal"))
        .args(["sandbox", "--port", port])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains(&format!("port {port} is taken")) && said.contains("--port 0"),
        "{said}"
    );
}
