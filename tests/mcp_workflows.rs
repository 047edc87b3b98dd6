//! `tokportal-mcp` beyond tools, driven over stdio by rmcp's own client
//! against an in-process sandbox: its prompts, its resources (the contract,
//! the operation table, the event catalog, bundles read through the API),
//! and a paid call confirmed through elicitation, accepted and declined,
//! with the sandbox's balance and request counts checked.

mod common;

use std::sync::{Arc, Mutex};

use rmcp::ServiceExt;
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, ElicitRequestParams, ElicitResult,
    ElicitationAction, GetPromptRequestParams, Implementation, JsonObject, ReadResourceRequestParams, ResourceContents,
};
use rmcp::service::{RequestContext, RoleClient, RunningService};
use rmcp::transport::TokioChildProcess;
use serde_json::{Value, json};
use tokportal::sandbox::{Sandbox, Verify};

/// A client that answers every `elicitation/create` with `action`, and
/// keeps the questions it was asked.
#[derive(Clone)]
struct Asked {
    action: Option<ElicitationAction>,
    questions: Arc<Mutex<Vec<String>>>,
    /// The protocol version it speaks (none: rmcp's default).
    version: Option<rmcp::model::ProtocolVersion>,
}

impl rmcp::ClientHandler for Asked {
    fn get_info(&self) -> ClientConfig {
        let capabilities = match self.action {
            Some(_) => ClientCapabilities::builder().enable_elicitation().build(),
            None => ClientCapabilities::default(),
        };
        let config = ClientConfig::new(capabilities, Implementation::new("workflows-test", "1"));
        match &self.version {
            Some(version) => config.with_protocol_version(version.clone()),
            None => config,
        }
    }

    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, rmcp::ErrorData> {
        if let ElicitRequestParams::FormElicitationParams { message, .. } = request {
            self.questions.lock().unwrap().push(message);
        }
        let action = self.action.clone().unwrap_or(ElicitationAction::Decline);
        let mut result = ElicitResult::new(action.clone());
        if action == ElicitationAction::Accept {
            result.content = Some(json!({"charge": true}));
        }
        Ok(result)
    }
}

struct World {
    sandbox: Sandbox,
    key: String,
}

impl World {
    async fn new(key: &str) -> Self {
        Self {
            sandbox: Sandbox::start().await.unwrap(),
            key: key.to_owned(),
        }
    }

    async fn agent(&self, asked: Asked, extra: &[&str]) -> RunningService<RoleClient, Asked> {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_tokportal-mcp"));
        command
            .args(extra)
            .env("TOKPORTAL_API_KEY", &self.key)
            .env("TOKPORTAL_BASE_URL", self.sandbox.url())
            .env_remove("TOKPORTAL_PROFILE")
            .env("RUST_LOG", "warn");
        let transport = TokioChildProcess::new(command).unwrap();
        asked.serve(transport).await.unwrap()
    }

    async fn balance(&self) -> f64 {
        let client = self.sandbox.client(self.key.as_str()).unwrap();
        let me = client
            .request_operation("getCurrentUser", tokportal::OperationArgs::new())
            .await
            .unwrap();
        match me.body {
            tokportal::ResponseBody::Json(v) => v["data"]["credits"]["balance"].as_f64().unwrap(),
            other => panic!("{other:?}"),
        }
    }

    async fn count(&self, operation: &str, dry_run: bool) -> u64 {
        self.sandbox
            .verify(
                Verify::operation(operation)
                    .key(self.key.as_str())
                    .dry_run(dry_run)
                    .at_least(0),
            )
            .await
            .unwrap()
    }
}

fn asked(action: Option<ElicitationAction>) -> Asked {
    Asked {
        action,
        questions: Arc::default(),
        version: None,
    }
}

async fn call(agent: &RunningService<RoleClient, Asked>, tool: &str, arguments: Value) -> CallToolResult {
    let Value::Object(arguments) = arguments else { panic!() };
    agent
        .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments as JsonObject))
        .await
        .unwrap()
}

fn bundle() -> Value {
    json!({"body": {"bundle_type": "account_and_videos", "platform": "tiktok", "country": "USA", "videos_quantity": 2}})
}

fn text(contents: &ResourceContents) -> &str {
    match contents {
        ResourceContents::TextResourceContents { text, .. } => text,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn prompts_and_resources_are_listed_and_read() {
    let world = World::new("sk_test_workflows_read").await;
    let agent = world.agent(asked(None), &[]).await;

    let prompts = agent.list_all_prompts().await.unwrap();
    let names: Vec<&str> = prompts.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["launch_accounts", "schedule_videos", "monitor_accounts"]);
    let mut args = JsonObject::new();
    args.insert("countries".into(), json!("USA,FRA"));
    let prompt = agent
        .get_prompt(GetPromptRequestParams::new("launch_accounts").with_arguments(args))
        .await
        .unwrap();
    let said = serde_json::to_value(&prompt.messages).unwrap().to_string();
    assert!(
        said.contains("createBundle") && said.contains("dry_run: true"),
        "{said}"
    );
    let missing = agent.get_prompt(GetPromptRequestParams::new("schedule_videos")).await;
    assert!(format!("{missing:?}").contains("bundle_id"), "{missing:?}");

    let resources = agent.list_all_resources().await.unwrap();
    assert_eq!(resources.len(), 3);
    let templates = agent.list_all_resource_templates().await.unwrap();
    let uris: Vec<&str> = templates.iter().map(|t| t.uri_template.as_str()).collect();
    assert_eq!(uris, ["tokportal://bundles/{id}", "tokportal://accounts/{id}"]);

    let contract = agent
        .read_resource(ReadResourceRequestParams::new("tokportal://contract/openapi.yaml"))
        .await
        .unwrap();
    let vendored = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/spec/openapi.yaml")).unwrap();
    assert_eq!(text(&contract.contents[0]), vendored, "the contract, whole");
    let table = agent
        .read_resource(ReadResourceRequestParams::new("tokportal://operations"))
        .await
        .unwrap();
    let table: Value = serde_json::from_str(text(&table.contents[0])).unwrap();
    assert_eq!(table["operations"].as_array().unwrap().len(), 78);

    // A bundle, read through the API with the server's key.
    let client = world.sandbox.client(world.key.as_str()).unwrap();
    let made = client
        .request_operation(
            "createBundle",
            tokportal::OperationArgs::new().body(bundle()["body"].clone()),
        )
        .await
        .unwrap();
    let tokportal::ResponseBody::Json(made) = made.body else {
        panic!()
    };
    let id = made["data"]["id"].as_str().unwrap();
    let read = agent
        .read_resource(ReadResourceRequestParams::new(format!("tokportal://bundles/{id}")))
        .await
        .unwrap();
    let read: Value = serde_json::from_str(text(&read.contents[0])).unwrap();
    assert_eq!(read["data"]["id"], id);
    let before = world.count("getBundle", false).await;
    let bad = agent
        .read_resource(ReadResourceRequestParams::new("tokportal://bundles/../../me"))
        .await;
    assert!(bad.is_err());
    assert_eq!(world.count("getBundle", false).await, before, "a bad id costs no call");
    agent.cancel().await.unwrap();
}

#[tokio::test]
async fn a_paid_call_is_confirmed_through_elicitation_both_ways() {
    let world = World::new("sk_test_workflows_confirm").await;
    let start = world.balance().await;

    // Declined: only the dry run was sent; nothing charged.
    let declining = asked(Some(ElicitationAction::Decline));
    let agent = world.agent(declining.clone(), &[]).await;
    let result = call(&agent, "createBundle", bundle()).await;
    assert_eq!(result.is_error, Some(true));
    let structured = result.structured_content.clone().unwrap();
    assert_eq!(structured["charged"], false, "{structured}");
    assert_eq!(structured["error"]["code"], "NOT_CONFIRMED");
    let questions = declining.questions.lock().unwrap().clone();
    assert_eq!(questions.len(), 1);
    assert!(
        questions[0].contains("would charge 14 credits") && questions[0].contains("account 10"),
        "{questions:?}"
    );
    assert_eq!(world.count("createBundle", false).await, 0);
    assert_eq!(world.count("createBundle", true).await, 1);
    assert_eq!(world.balance().await, start);
    // Cancelled: the same.
    agent.cancel().await.unwrap();
    let agent = world.agent(asked(Some(ElicitationAction::Cancel)), &[]).await;
    assert_eq!(call(&agent, "createBundle", bundle()).await.is_error, Some(true));
    assert_eq!(world.count("createBundle", false).await, 0);
    agent.cancel().await.unwrap();

    // Accepted: charged once, with an idempotency key.
    let accepting = asked(Some(ElicitationAction::Accept));
    let agent = world.agent(accepting.clone(), &[]).await;
    let result = call(&agent, "createBundle", bundle()).await;
    assert_ne!(result.is_error, Some(true), "{result:?}");
    assert_eq!(world.count("createBundle", false).await, 1);
    assert_eq!(world.balance().await, start - 14.0);
    assert_eq!(accepting.questions.lock().unwrap().len(), 1);
    // The agent's own dry run is not asked about: it is answered as a
    // preview, sent as one, and charges nothing.
    let dry_runs = world.count("createBundle", true).await;
    let mut preview = bundle();
    preview["dry_run"] = json!(true);
    let previewed = call(&agent, "createBundle", preview).await;
    assert_ne!(previewed.is_error, Some(true), "{previewed:?}");
    assert_eq!(world.count("createBundle", true).await, dry_runs + 1);
    assert_eq!(world.count("createBundle", false).await, 1);
    assert_eq!(world.balance().await, start - 14.0);
    assert_eq!(accepting.questions.lock().unwrap().len(), 1);
    // Nor is a call that spends nothing: it is answered.
    let me = call(&agent, "getCurrentUser", json!({})).await;
    assert_ne!(me.is_error, Some(true), "{me:?}");
    assert!(me.structured_content.is_some(), "{me:?}");
    assert_eq!(accepting.questions.lock().unwrap().len(), 1);
    agent.cancel().await.unwrap();

    // A client without elicitation is served as always; so is --confirm-spending never.
    let dry_runs = world.count("createBundle", true).await;
    let agent = world.agent(asked(None), &[]).await;
    assert_ne!(call(&agent, "createBundle", bundle()).await.is_error, Some(true));
    agent.cancel().await.unwrap();
    let never = asked(Some(ElicitationAction::Decline));
    let agent = world.agent(never.clone(), &["--confirm-spending", "never"]).await;
    assert_ne!(call(&agent, "createBundle", bundle()).await.is_error, Some(true));
    assert!(never.questions.lock().unwrap().is_empty());
    agent.cancel().await.unwrap();
    assert_eq!(world.count("createBundle", false).await, 3);
    assert_eq!(
        world.count("createBundle", true).await,
        dry_runs,
        "no dry run sent for them"
    );
    assert_eq!(world.balance().await, start - 42.0);
}

/// `handler` connected over stateless HTTP to `url` with `key` as Bearer:
/// a 2026-07-28 client discovers (server/discover) instead of initializing.
async fn connect_http(url: String, key: String, handler: Asked) -> RunningService<RoleClient, Asked> {
    use rmcp::service::{ClientLifecycleMode, ClientServiceExt};
    use rmcp::transport::StreamableHttpClientTransport;
    use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
    let transport =
        StreamableHttpClientTransport::from_config(StreamableHttpClientTransportConfig::with_uri(url).auth_header(key));
    match handler.version.clone() {
        Some(v) if v == rmcp::model::ProtocolVersion::V_2026_07_28 => handler
            .serve_with_lifecycle(
                transport,
                ClientLifecycleMode::Discover {
                    preferred_versions: vec![v],
                },
            )
            .await
            .unwrap(),
        _ => handler.serve(transport).await.unwrap(),
    }
}

/// Under a daily limit, a paid call the user was asked about is held at the
/// price of the dry run made to ask: the sandbox sees one dry run and one
/// paid call, over stdio (elicitation/create within the call) and over
/// stateless HTTP (an input-required result, then the answer's round), not
/// a second dry run for the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirmed_call_under_a_limit_is_held_at_the_price_it_was_asked_about() {
    let world = World::new("sk_test_workflows_confirm_limit").await;
    let start = world.balance().await;
    let limit = ["--daily-credit-limit", "100"];

    let agent = world.agent(asked(Some(ElicitationAction::Accept)), &limit).await;
    let result = call(&agent, "createBundle", bundle()).await;
    assert_ne!(result.is_error, Some(true), "{result:?}");
    agent.cancel().await.unwrap();
    assert_eq!(
        world.count("createBundle", true).await,
        1,
        "one dry run: the question's"
    );
    assert_eq!(world.count("createBundle", false).await, 1);

    let server = common::mcp_http::McpHttp::start(world.sandbox.url(), &limit, &[]);
    let modern = Asked {
        version: Some(rmcp::model::ProtocolVersion::V_2026_07_28),
        ..asked(Some(ElicitationAction::Accept))
    };
    let agent = connect_http(server.mcp(), world.key.clone(), modern.clone()).await;
    let result = call(&agent, "createBundle", bundle()).await;
    assert_ne!(result.is_error, Some(true), "{result:?}");
    assert_eq!(modern.questions.lock().unwrap().len(), 1);
    assert_eq!(
        world.count("createBundle", true).await,
        2,
        "one more dry run: the question's"
    );
    assert_eq!(world.count("createBundle", false).await, 2);
    assert_eq!(world.balance().await, start - 28.0);
    // Held and settled at the price asked about.
    let me = call(&agent, "getCurrentUser", json!({})).await;
    let budget = &me.structured_content.unwrap()["tokportal_mcp"]["budget"];
    assert_eq!(budget["spent_today"], 14.0, "{budget}");
    assert_eq!(budget["left_today"], 86.0, "{budget}");
}

/// Over stateless HTTP a 2026-07-28 client is asked with an input-required
/// result (MRTR): declined, nothing is charged; accepted, once. A client of
/// an older version there cannot be asked, and is served as always.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stateless_http_asks_a_2026_07_28_client_with_an_input_required_result() {
    let world = World::new("sk_test_workflows_mrtr").await;
    let server = common::mcp_http::McpHttp::start(world.sandbox.url(), &[], &[]);
    let url = server.mcp();
    let start = world.balance().await;
    let connect = |handler: Asked| connect_http(url.clone(), world.key.clone(), handler);
    let modern = |action| Asked {
        version: Some(rmcp::model::ProtocolVersion::V_2026_07_28),
        ..asked(Some(action))
    };

    let declining = modern(ElicitationAction::Decline);
    let agent = connect(declining.clone()).await;
    let result = call(&agent, "createBundle", bundle()).await;
    assert_eq!(result.is_error, Some(true), "{result:?}");
    assert_eq!(result.structured_content.unwrap()["error"]["code"], "NOT_CONFIRMED");
    let questions = declining.questions.lock().unwrap().clone();
    assert!(
        questions.len() == 1 && questions[0].contains("would charge 14 credits"),
        "{questions:?}"
    );
    assert_eq!(world.count("createBundle", false).await, 0);
    assert_eq!(world.balance().await, start);

    let accepting = modern(ElicitationAction::Accept);
    let agent = connect(accepting.clone()).await;
    let result = call(&agent, "createBundle", bundle()).await;
    assert_ne!(result.is_error, Some(true), "{result:?}");
    assert_eq!(accepting.questions.lock().unwrap().len(), 1);
    assert_eq!(world.count("createBundle", false).await, 1);
    assert_eq!(world.balance().await, start - 14.0);

    let older = Asked {
        version: Some(rmcp::model::ProtocolVersion::V_2025_06_18),
        ..asked(Some(ElicitationAction::Decline))
    };
    let agent = connect(older.clone()).await;
    assert_ne!(call(&agent, "createBundle", bundle()).await.is_error, Some(true));
    assert!(
        older.questions.lock().unwrap().is_empty(),
        "stateless HTTP cannot ask a 2025 client"
    );
    assert_eq!(world.count("createBundle", false).await, 2);
}

/// A destructive call (the table's `destructive` hint, as TokPortal's agent
/// rules ask) is confirmed like a paid one, the question naming what will
/// be destroyed: over stdio (elicitation/create) and over stateless HTTP (a
/// 2026-07-28 input-required result). Declined: nothing is sent; accepted:
/// sent once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destructive_call_is_confirmed_over_stdio_and_stateless_http() {
    use rmcp::transport::StreamableHttpClientTransport;
    use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
    let world = World::new("sk_test_workflows_destroy").await;
    let sdk = world.sandbox.client(world.key.as_str()).unwrap();
    let endpoint = || async {
        let made = sdk
            .request_operation(
                "createWebhookEndpoint",
                tokportal::OperationArgs::new()
                    .body(json!({"url": "http://127.0.0.1:9/hook", "events": ["bundle.created"]})),
            )
            .await
            .unwrap();
        match made.body {
            tokportal::ResponseBody::Json(v) => v["data"]["id"].as_str().unwrap().to_owned(),
            other => panic!("{other:?}"),
        }
    };

    // Over stdio.
    let id = endpoint().await;
    let declining = asked(Some(ElicitationAction::Decline));
    let agent = world.agent(declining.clone(), &[]).await;
    let result = call(&agent, "deleteWebhookEndpoint", json!({"id": id})).await;
    assert_eq!(result.structured_content.unwrap()["error"]["code"], "NOT_CONFIRMED");
    let questions = declining.questions.lock().unwrap().clone();
    assert!(
        questions.len() == 1 && questions[0].contains("cannot be undone") && questions[0].contains(&id),
        "{questions:?}"
    );
    assert_eq!(world.count("deleteWebhookEndpoint", false).await, 0, "nothing sent");
    agent.cancel().await.unwrap();
    let accepting = asked(Some(ElicitationAction::Accept));
    let agent = world.agent(accepting.clone(), &[]).await;
    let result = call(&agent, "deleteWebhookEndpoint", json!({"id": id})).await;
    assert_ne!(result.is_error, Some(true), "{result:?}");
    assert_eq!(world.count("deleteWebhookEndpoint", false).await, 1, "sent once");
    agent.cancel().await.unwrap();

    // Over stateless HTTP, a 2026-07-28 client.
    let server = common::mcp_http::McpHttp::start(world.sandbox.url(), &[], &[]);
    let connect = |handler: Asked| {
        let transport = StreamableHttpClientTransport::from_config(
            StreamableHttpClientTransportConfig::with_uri(server.mcp()).auth_header(world.key.clone()),
        );
        async move {
            use rmcp::service::{ClientLifecycleMode, ClientServiceExt};
            handler
                .serve_with_lifecycle(
                    transport,
                    ClientLifecycleMode::Discover {
                        preferred_versions: vec![rmcp::model::ProtocolVersion::V_2026_07_28],
                    },
                )
                .await
                .unwrap()
        }
    };
    let modern = |action| Asked {
        version: Some(rmcp::model::ProtocolVersion::V_2026_07_28),
        ..asked(Some(action))
    };
    let id = endpoint().await;
    let declining = modern(ElicitationAction::Decline);
    let agent = connect(declining.clone()).await;
    let result = call(&agent, "deleteWebhookEndpoint", json!({"id": id})).await;
    assert_eq!(result.structured_content.unwrap()["error"]["code"], "NOT_CONFIRMED");
    assert_eq!(declining.questions.lock().unwrap().len(), 1);
    assert_eq!(
        world.count("deleteWebhookEndpoint", false).await,
        1,
        "nothing more sent"
    );
    let accepting = modern(ElicitationAction::Accept);
    let agent = connect(accepting.clone()).await;
    let result = call(&agent, "deleteWebhookEndpoint", json!({"id": id})).await;
    assert_ne!(result.is_error, Some(true), "{result:?}");
    assert_eq!(world.count("deleteWebhookEndpoint", false).await, 2, "sent once more");
}
