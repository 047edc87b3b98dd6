//! `completion/complete`, driven by rmcp's own client over streamable HTTP
//! against `tokportal-mcp --http` and an in-process sandbox: a prompt's
//! country argument from `listCountries`, the platforms from the contract,
//! and a resource template's bundle id from the caller's own bundles (read
//! with the caller's key: another key's bundles are never offered).

mod common;

use common::mcp_http::McpHttp;
use rmcp::ServiceExt;
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::json;
use tokportal::sandbox::{Sandbox, Verify};

const KEY: &str = "sk_test_completion_owner";
const OTHER: &str = "sk_test_completion_other";

async fn bundle(sandbox: &Sandbox, key: &str) -> String {
    let body = json!({"bundle_type": "account_only", "platform": "tiktok", "country": "FRA"});
    let made = sandbox
        .client(key)
        .unwrap()
        .request_operation("createBundle", tokportal::OperationArgs::new().body(body))
        .await
        .unwrap();
    let tokportal::ResponseBody::Json(made) = made.body else {
        panic!("createBundle answered no JSON")
    };
    made["data"]["id"].as_str().expect("a bundle id").to_owned()
}

async fn agent(mcp: &McpHttp, key: &str) -> RunningService<RoleClient, ()> {
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(mcp.mcp()).auth_header(key.to_owned()),
    );
    ().serve(transport).await.expect("initialize over HTTP")
}

#[tokio::test]
async fn prompts_and_templates_complete_from_the_api_and_the_callers_own_lists() {
    let sandbox = Sandbox::start().await.unwrap();
    let mine = [bundle(&sandbox, KEY).await, bundle(&sandbox, KEY).await];
    let theirs = bundle(&sandbox, OTHER).await;
    let mcp = McpHttp::start(sandbox.url(), &[], &[]);
    let agent = agent(&mcp, KEY).await;

    let capabilities = &agent.peer_info().expect("the server's info").capabilities;
    assert!(
        capabilities.completions.is_some(),
        "completions advertised: {capabilities:?}"
    );

    // A prompt's country: listCountries' codes that start with what was typed.
    let countries = agent
        .complete_prompt_argument("launch_accounts", "countries", "u", None)
        .await
        .unwrap();
    assert_eq!(countries.values, ["USA"], "{countries:?}");
    assert_eq!(countries.has_more, Some(false));
    // A list completes its last item, and leaves out what is already in it.
    let listed = agent
        .complete_prompt_argument("launch_accounts", "countries", "FRA, ", None)
        .await
        .unwrap();
    assert!(listed.values.contains(&"FRA, USA".to_owned()), "{listed:?}");
    assert!(!listed.values.iter().any(|v| v == "FRA, FRA"), "{listed:?}");
    assert!(listed.values.iter().all(|v| v.starts_with("FRA, ")), "{listed:?}");
    let one = agent
        .complete_prompt_argument("monitor_accounts", "country", "DE", None)
        .await
        .unwrap();
    assert_eq!(one.values, ["DEU"]);
    // Platforms, from the contract's enum.
    let platforms = agent
        .complete_prompt_argument("launch_accounts", "platform", "ins", None)
        .await
        .unwrap();
    assert_eq!(platforms.values, ["instagram"]);

    // A template's bundle id: this caller's two bundles, not the other key's.
    let ids = agent
        .complete_resource_argument("tokportal://bundles/{id}", "id", "", None)
        .await
        .unwrap();
    let mut got = ids.values.clone();
    got.sort();
    let mut want = mine.to_vec();
    want.sort();
    assert_eq!(got, want, "the caller's own bundles, and only them");
    assert!(!ids.values.contains(&theirs));
    assert_eq!((ids.total, ids.has_more), (Some(2), Some(false)));
    let prefix = &mine[1][..8];
    let narrowed = agent
        .complete_resource_argument("tokportal://bundles/{id}", "id", prefix, None)
        .await
        .unwrap();
    assert!(narrowed.values.contains(&mine[1]), "{narrowed:?}");
    assert!(narrowed.values.iter().all(|v| v.starts_with(prefix)), "{narrowed:?}");
    // The prompt's bundle argument reads the same list.
    let prompt = agent
        .complete_prompt_argument("schedule_videos", "bundle_id", "", None)
        .await
        .unwrap();
    assert_eq!(prompt.values.len(), 2, "{prompt:?}");

    // Read with the caller's key: the sandbox saw listBundles under it, and
    // never under the other key.
    let under = |key: &'static str| {
        let sandbox = &sandbox;
        async move {
            sandbox
                .verify(Verify::operation("listBundles").key(key).at_least(0))
                .await
                .unwrap()
        }
    };
    assert!(under(KEY).await >= 3, "listBundles with the caller's key");
    assert_eq!(under(OTHER).await, 0);

    // Nothing to complete: no values; an unknown prompt: invalid params.
    let budget = agent
        .complete_prompt_argument("launch_accounts", "budget", "1", None)
        .await
        .unwrap();
    assert!(budget.values.is_empty());
    let unknown = agent.complete_prompt_argument("no_such_prompt", "x", "", None).await;
    let Err(rmcp::ServiceError::McpError(e)) = unknown else {
        panic!("an unknown prompt is an error: {unknown:?}")
    };
    assert_eq!(e.code, rmcp::model::ErrorCode::INVALID_PARAMS);
    agent.cancel().await.unwrap();
}
