//! The four surfaces send the same request: the typed builder,
//! `request_operation`, the CLI and the MCP server, against one recording
//! server on 127.0.0.1.

mod common;

use common::{KEY, Reply, Scripted, UUID_A, client, json_reply};
use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use serde_json::{Value, json};
use tokportal::OperationArgs;
use tokportal::types::{CreateBundleRequest, CreateBundleRequestBundleType};

fn created() -> Reply {
    json_reply(201, json!({"data": {"id": UUID_A}}))
}

#[tokio::test]
async fn one_create_bundle_four_surfaces_four_identical_bodies() {
    let server = Scripted::start(vec![created(), created(), created(), created()]).await;
    let expected = json!({"bundle_type": "account_only", "country": "USA"});

    // 1. The typed builder: only the two fields set.
    let sdk = client(&server.base_url);
    sdk.create_bundle()
        .body(
            CreateBundleRequest::builder()
                .bundle_type(CreateBundleRequestBundleType::AccountOnly)
                .country(Some("USA".parse().unwrap())),
        )
        .send()
        .await
        .unwrap();
    // 2. By operationId.
    sdk.request_operation("createBundle", OperationArgs::new().body(expected.clone()))
        .await
        .unwrap();
    // 3. The CLI.
    let base = server.base_url.clone();
    let body = expected.to_string();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_tokportal"))
            .args(["create-bundle", "--body", &body])
            .env("TOKPORTAL_BASE_URL", base)
            .env("TOKPORTAL_API_KEY", KEY)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    // 4. The MCP server, through rmcp's client.
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_tokportal-mcp"));
    command
        .env("TOKPORTAL_API_KEY", KEY)
        .env("TOKPORTAL_BASE_URL", &server.base_url)
        .stderr(std::process::Stdio::null());
    let mcp = ().serve(rmcp::transport::TokioChildProcess::new(command).unwrap()).await.unwrap();
    let Value::Object(arguments) = json!({"body": expected}) else {
        unreachable!()
    };
    let result = mcp
        .call_tool(CallToolRequestParams::new("createBundle").with_arguments(arguments))
        .await
        .unwrap();
    assert_ne!(result.is_error, Some(true), "{result:?}");
    mcp.cancel().await.unwrap();

    let bodies: Vec<Value> = server
        .requests()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    assert_eq!(bodies, vec![expected.clone(); 4]);
    // And the same headers by name: no surface adds one the contract does
    // not document (progenitor's typed builders sent `api-version`).
    let names: Vec<Vec<String>> = server
        .requests()
        .iter()
        .map(|r| {
            let mut names: Vec<String> = r
                .headers
                .iter()
                .map(|(k, _)| k.to_ascii_lowercase())
                .filter(|k| {
                    !["accept", "content-length", "host", "accept-encoding", "user-agent"].contains(&k.as_str())
                })
                .collect();
            names.sort();
            names
        })
        .collect();
    assert!(!names[0].contains(&"api-version".to_owned()), "{:?}", names[0]);
    assert!(names.iter().all(|n| n == &names[0]), "{names:#?}");
}

#[tokio::test]
async fn a_repeatable_filter_takes_one_value_or_many() {
    let csv = || Reply::Http(200, vec![("content-type", "text/csv".into())], "id\n".into());
    let server = Scripted::start(vec![csv(), csv(), csv()]).await;
    let sdk = client(&server.base_url);
    sdk.export_analytics_videos().account("A").send().await.unwrap();
    sdk.export_analytics_videos().account(["A", "B"]).send().await.unwrap();
    sdk.export_analytics_videos()
        .account(vec!["C".to_owned()])
        .send()
        .await
        .unwrap();
    let targets: Vec<String> = server.requests().iter().map(|r| r.target.clone()).collect();
    assert!(targets[0].ends_with("?account=A"), "{targets:?}");
    assert!(targets[1].ends_with("?account=A&account=B"), "{targets:?}");
    assert!(targets[2].ends_with("?account=C"), "{targets:?}");
}
