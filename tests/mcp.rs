//! The `tokportal-mcp` binary, driven over stdio as an MCP client would.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use common::{KEY, UUID_A};
use httpmock::prelude::*;
use serde_json::{Value, json};

struct Session {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
    next_id: u64,
}

impl Session {
    fn start(base_url: &str) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tokportal-mcp"))
            .env("TOKPORTAL_API_KEY", KEY)
            .env("TOKPORTAL_BASE_URL", base_url)
            .env("RUST_LOG", "debug")
            // Uploads are allowed from the working folder: the tests' files are in the temp folder.
            .current_dir(std::env::temp_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("tokportal-mcp starts");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut s = Session {
            child,
            stdin,
            lines,
            next_id: 1,
        };
        let init = s.request(
            "initialize",
            json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}),
        );
        assert_eq!(init["result"]["serverInfo"]["name"], "tokportal-mcp");
        assert!(init["result"]["capabilities"]["tools"].is_object());
        s.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        s
    }

    fn send(&mut self, message: Value) {
        writeln!(self.stdin, "{message}").unwrap();
        self.stdin.flush().unwrap();
    }

    /// Sends a request and returns its response; every stdout line must be a JSON-RPC message.
    fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(20))
                .expect("an answer within 20 s");
            let message: Value =
                serde_json::from_str(&line).unwrap_or_else(|e| panic!("stdout carried a non-JSON line {line:?}: {e}"));
            assert_eq!(message["jsonrpc"], "2.0", "{line}");
            if message["id"] == id {
                return message;
            }
        }
    }

    fn call(&mut self, tool: &str, arguments: Value) -> Value {
        let response = self.request("tools/call", json!({"name": tool, "arguments": arguments}));
        response["result"].clone()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn lists_78_tools_with_valid_schemas_and_annotations() {
    let mut s = Session::start("http://127.0.0.1:9");
    let tools = s.request("tools/list", json!({}))["result"]["tools"]
        .as_array()
        .cloned()
        .unwrap();
    assert_eq!(tools.len(), 78);
    for tool in &tools {
        let name = tool["name"].as_str().unwrap();
        let op = tokportal::operations::find(name).unwrap_or_else(|| panic!("{name} is an operationId"));
        let schema = &tool["inputSchema"];
        assert_eq!(schema["type"], "object");
        assert!(jsonschema::validator_for(schema).is_ok(), "{name}: invalid schema");
        for p in op.params {
            assert!(schema["properties"].get(p.name).is_some(), "{name}: {}", p.name);
        }
        assert!(!tool["description"].as_str().unwrap().is_empty());
        // Only what differs from MCP's defaults is stated.
        let read_only = tool["annotations"]["readOnlyHint"].as_bool().unwrap_or(false);
        assert_eq!(read_only, op.method.is_read_only(), "{name}");
        if !read_only {
            assert_eq!(
                tool["annotations"]["destructiveHint"].as_bool(),
                Some(op.hints().destructive),
                "{name}"
            );
        }
        if op.method.as_str() == "DELETE" {
            assert!(op.hints().destructive, "{name}");
        }
    }
    let upload = tools.iter().find(|t| t["name"] == "uploadVideoDirect").unwrap();
    assert_eq!(upload["inputSchema"]["required"], json!(["file_path", "bundle_id"]));
    let create = tools.iter().find(|t| t["name"] == "createBundle").unwrap();
    assert!(create["inputSchema"]["properties"]["body"]["properties"]["bundle_type"].is_object());
    assert!(create["inputSchema"]["properties"]["idempotency_key"].is_object());
    let reveal = tools.iter().find(|t| t["name"] == "revealAccountCredentials").unwrap();
    assert!(reveal["inputSchema"]["properties"].get("idempotency_key").is_none());
}

#[test]
fn calls_operations_and_reports_errors() {
    let server = MockServer::start();
    let client_header = format!("tokportal-rust-mcp/{}", env!("CARGO_PKG_VERSION"));
    let list = server.mock(|when, then| {
        when.method(GET)
            .path("/bundles")
            .query_param("per_page", "10")
            .header("x-tokportal-client", client_header.clone());
        then.status(200)
            .header("content-type", "application/json")
            .json_body(json!({"data": [{"id": UUID_A}]}));
    });
    let create = server.mock(|when, then| {
        when.method(POST)
            .path("/bundles")
            .header("idempotency-key", "mcp-1")
            .json_body(json!({"bundle_type": "account_only", "country": "USA"}));
        then.status(201)
            .header("content-type", "application/json")
            .json_body(json!({"data": {"id": UUID_A}}));
    });
    let csv = server.mock(|when, then| {
        when.path("/analytics/export/videos")
            .query_param("account", "a1")
            .query_param("account", "a2");
        then.status(200).header("content-type", "text/csv").body("id\n1\n");
    });
    let missing = server.mock(|when, then| {
        when.path(format!("/bundles/{UUID_A}"));
        then.status(404)
            .header("content-type", "application/json")
            .header("x-tokportal-request-id", "req_404")
            .json_body(json!({"error": {"code": "NOT_FOUND", "message": "Bundle not found."}}));
    });
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("v.mp4");
    std::fs::write(&file, vec![3u8; 200_000]).unwrap();
    let upload = server.mock(|when, then| {
        when.path("/upload/video/direct").body_includes("filename=\"v.mp4\"");
        then.status(200)
            .header("content-type", "application/json")
            .json_body(json!({"data": {"url": "u"}}));
    });

    let mut s = Session::start(&server.base_url());
    let result = s.call("listBundles", json!({"per_page": 10}));
    assert_ne!(result["isError"], true);
    assert_eq!(result["structuredContent"], json!({"data": [{"id": UUID_A}]}));

    let result = s.call(
        "createBundle",
        json!({"body": {"bundle_type": "account_only", "country": "USA"}, "idempotency_key": "mcp-1"}),
    );
    assert_ne!(result["isError"], true, "{result}");

    let result = s.call("exportAnalyticsVideos", json!({"account": ["a1", "a2"]}));
    assert_eq!(result["content"][0]["text"], "id\n1\n");

    let result = s.call(
        "uploadVideoDirect",
        json!({"file_path": file.to_str().unwrap(), "bundle_id": UUID_A}),
    );
    assert_ne!(result["isError"], true, "{result}");

    // An API error: the payload plus diagnostics.
    let result = s.call("getBundle", json!({"id": UUID_A}));
    assert_eq!(result["isError"], true);
    assert_eq!(result["structuredContent"]["payload"]["error"]["code"], "NOT_FOUND");
    assert_eq!(result["structuredContent"]["diagnostics"]["request_id"], "req_404");
    assert_eq!(result["structuredContent"]["diagnostics"]["status"], 404);

    // Malformed arguments name the field, and nothing is sent.
    let result = s.call("getBundle", json!({"id": "not-a-uuid"}));
    assert_eq!(result["isError"], true);
    assert_eq!(result["structuredContent"]["error"]["field"], "id");
    let result = s.call("listBundles", json!({"per_page": 500}));
    assert_eq!(result["structuredContent"]["error"]["field"], "per_page");
    // A type error inside the body is refused; an unknown field or enum value would be sent as given.
    let result = s.call("createBundle", json!({"body": {"bundle_type": 5}}));
    assert_eq!(result["structuredContent"]["error"]["field"], "body");
    assert!(
        result["structuredContent"]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("bundle_type"),
        "{result}"
    );

    // An unknown tool is a protocol error.
    let response = s.request("tools/call", json!({"name": "noSuchTool", "arguments": {}}));
    assert!(response["error"].is_object(), "{response}");

    assert_eq!(
        (
            list.calls(),
            create.calls(),
            csv.calls(),
            upload.calls(),
            missing.calls()
        ),
        (1, 1, 1, 1, 1)
    );
}

#[test]
fn newer_fields_reach_the_api_and_dry_run_sends_its_header_only_when_true() {
    let server = MockServer::start();
    let newer = json!({"bundle_type": "account_only", "country": "USA", "wants_advanced_warming": true});
    let create = server.mock(|when, then| {
        when.method(POST)
            .path("/bundles")
            .header_missing("x-tokportal-dry-run")
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
        then.status(200)
            .header("content-type", "application/json")
            .json_body(json!({"data": {"dry_run": true, "credits_would_charge": 12}}));
    });
    let publish = server.mock(|when, then| {
        when.method(POST)
            .path(format!("/bundles/{UUID_A}/publish"))
            .header_missing("x-tokportal-dry-run");
        then.status(200)
            .header("content-type", "application/json")
            .json_body(json!({"data": {"id": UUID_A}}));
    });
    let mut s = Session::start(&server.base_url());
    let tools = s.request("tools/list", json!({}))["result"]["tools"]
        .as_array()
        .cloned()
        .unwrap();
    for tool in &tools {
        let op = tokportal::operations::find(tool["name"].as_str().unwrap()).unwrap();
        let has = tool["inputSchema"]["properties"].get("dry_run").is_some();
        assert_eq!(has, !op.method.is_read_only(), "{}", op.id);
    }
    let result = s.call("createBundle", json!({"body": newer}));
    assert_ne!(result["isError"], true, "{result}");
    let result = s.call(
        "createBundle",
        json!({"body": {"bundle_type": "account_only", "country": "USA"}, "dry_run": true, "idempotency_key": "k-2"}),
    );
    assert_eq!(
        result["structuredContent"]["data"]["credits_would_charge"], 12,
        "{result}"
    );
    let result = s.call("publishBundle", json!({"id": UUID_A, "dry_run": false}));
    assert_ne!(result["isError"], true, "{result}");
    let result = s.call("publishBundle", json!({"id": UUID_A, "dry_run": "yes"}));
    assert_eq!(result["structuredContent"]["error"]["field"], "dry_run", "{result}");
    assert_eq!((create.calls(), preview.calls(), publish.calls()), (1, 1, 1));
}

#[test]
fn help_and_version_answer_at_once() {
    for (flag, expected) in [
        ("--help", "Usage: tokportal-mcp"),
        ("--version", env!("CARGO_PKG_VERSION")),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_tokportal-mcp"))
            .arg(flag)
            .stdin(Stdio::null())
            .output()
            .expect("tokportal-mcp runs");
        assert_eq!(out.status.code(), Some(0), "{flag}");
        assert!(String::from_utf8_lossy(&out.stdout).contains(expected), "{flag}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_tokportal-mcp"))
        .arg("--no-such-flag")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn every_invalid_argument_is_reported_at_once() {
    let server = MockServer::start();
    // Would match the invalid call, had it been sent.
    let any = server.mock(|when, then| {
        when.query_param_exists("per_page");
        then.status(200);
    });
    let mut s = Session::start(&server.base_url());
    let result = s.call("listBundles", json!({"per_page": 500, "page": 0, "platform": 7}));
    assert_eq!(result["isError"], true);
    let errors = result["structuredContent"]["error"]["errors"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let fields: Vec<&str> = errors.iter().filter_map(|e| e["field"].as_str()).collect();
    assert_eq!(fields, ["page", "per_page", "platform"], "{result}");
    assert!(
        result["structuredContent"]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("500"),
        "the rule and the value: {result}"
    );
    // And 2.0 for an integer is sent as 2.
    let page = server.mock(|when, then| {
        when.path("/bundles").query_param("page", "2");
        then.status(200)
            .header("content-type", "application/json")
            .json_body(json!({"data": []}));
    });
    let result = s.call("listBundles", json!({"page": 2.0}));
    assert_ne!(result["isError"], true, "{result}");
    let result = s.call("listBundles", json!({"page": 2.5}));
    assert_eq!(result["structuredContent"]["error"]["field"], "page", "{result}");
    assert_eq!((any.calls(), page.calls()), (0, 1));
}

#[test]
fn malformed_tool_calls_are_invalid_params() {
    let mut s = Session::start("http://127.0.0.1:9");
    for params in [
        json!({"arguments": {}}),
        json!({"name": "listBundles", "arguments": [1]}),
        json!({"name": 7}),
    ] {
        let response = s.request("tools/call", params.clone());
        assert_eq!(response["error"]["code"], -32602, "{params}: {response}");
    }
    let response = s.request("no/such/method", json!({}));
    assert_eq!(response["error"]["code"], -32601, "{response}");
}
