//! The MCP SDKs' own OAuth clients, as a team deploys the server: nginx with
//! the deploy file in front of two `tokportal-mcp --oauth` replicas that
//! share a Redis store, no affinity. Each client is given the MCP URL and
//! nothing else: it finds the authorization server from the 401, registers
//! itself, sends the person to the consent page (answered here over HTTP as
//! a person answers it), exchanges the code, calls tools, and refreshes.
//!
//! - rmcp's client (its `auth` feature);
//! - the official MCP Python SDK's (`mcp.client.auth.OAuthClientProvider`
//!   with httpx and the streamable HTTP client), run by
//!   `tests/python/mcp_sdk_oauth.py` with the interpreter named in
//!   `TOKPORTAL_TEST_MCP_PYTHON` (a venv with `pip install mcp`; .ci/run
//!   makes one).
//!
//! nginx's access log shows that the flow went through it and reached both
//! replicas.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::team::Team;
use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::auth::{AuthClient, AuthorizationManager, AuthorizationRequest, OAuthState};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::Value;
use tokportal::sandbox::{Sandbox, Verify};

const SECRET: &str = "a shared sealing secret, 32 bytes or more, for tests";
const REDIRECT: &str = "http://127.0.0.1:33418/callback";
/// The sandbox's user, whatever the key.
const EMAIL: &str = "developer@sandbox.tokportal.test";
/// Every operation a tool, with the default toolsets.
const TOOLS: usize = 78;
const PYTHON: &str = "TOKPORTAL_TEST_MCP_PYTHON";

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap()
}

/// The consent page at `authorize_url`, answered as a person would with
/// `key` and full access, through nginx (`public`): the redirect's query.
async fn consent(authorize_url: &str, public: &str, key: &str) -> HashMap<String, String> {
    assert!(
        authorize_url.starts_with(&format!("{public}/authorize?")),
        "the client was sent to nginx's /authorize: {authorize_url}"
    );
    let page = http().get(authorize_url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let cookie = page.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let html = page.text().await.unwrap();
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a CSRF token")
        .to_owned();
    let form = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("csrf", &csrf)
        .append_pair("api_key", key)
        .append_pair("access", "full")
        .append_pair("decision", "allow")
        .finish();
    let answered = http()
        .post(format!("{public}/authorize"))
        .header("cookie", cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(answered.status(), 303, "{}", answered.text().await.unwrap());
    let location = answered.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(REDIRECT), "{location}");
    url::Url::parse(&location).unwrap().query_pairs().into_owned().collect()
}

/// What nginx's access log shows: every step of the flow went through it
/// (a method, or several as `A|B`, a path or its start, a status),
/// answered as it should be, and both replicas answered part of it.
fn assert_through_nginx(team: &Team) {
    let requests = team.lb.requests();
    let seen = |method: &str, path: &str, status: &str| {
        requests.iter().any(|line| {
            let mut fields = line.split_whitespace();
            fields.next().is_some_and(|m| method.split('|').any(|one| one == m))
                && fields.next().is_some_and(|p| p.starts_with(path))
                && fields.next() == Some(status)
        })
    };
    for (method, path, status) in [
        // The first request, without a token (rmcp's is a GET).
        ("GET|POST", "/mcp", "401"),
        ("GET", "/.well-known/oauth-protected-resource", "200"),
        ("GET", "/.well-known/oauth-authorization-server", "200"),
        ("POST", "/register", "201"),
        ("GET", "/authorize", "200"),
        ("POST", "/authorize", "303"),
        ("POST", "/token", "200"),
        ("POST", "/mcp", "200"),
    ] {
        assert!(
            seen(method, path, status),
            "{method} {path} answered {status} through nginx: {requests:#?}"
        );
    }
    let answered_by = |replica: &common::mcp_http::McpHttp| {
        let address = replica.origin.trim_start_matches("http://");
        requests.iter().any(|line| line.ends_with(address))
    };
    assert!(
        answered_by(&team.a) && answered_by(&team.b),
        "both replicas answered part of the flow: {requests:#?}"
    );
}

/// rmcp's own OAuth client, through nginx: discovery from the MCP URL,
/// dynamic registration, the authorization URL, the consent, the callback
/// (its `iss` checked by rmcp), the token, a refresh, then an MCP session
/// whose every request carries the token rmcp's `AuthClient` holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rmcp_s_oauth_client_completes_the_flow_through_nginx() {
    const KEY: &str = "sk_test_rmcp_sdk_user";
    let sandbox = Sandbox::start().await.unwrap();
    let Some(team) = Team::start(&sandbox, SECRET) else {
        return;
    };

    let manager = AuthorizationManager::new_allowing_private_addresses(team.mcp())
        .await
        .unwrap();
    let mut state = OAuthState::Unauthorized(manager);
    state
        .start_authorization(
            AuthorizationRequest::new(REDIRECT)
                .with_scopes(["tokportal:full"])
                .with_client_name("rmcp's client, through nginx"),
        )
        .await
        .expect("discovery and registration through nginx");
    let url = state.get_authorization_url().await.unwrap();
    let back = consent(&url, &team.public, KEY).await;
    assert_eq!(back["iss"], team.public, "RFC 9207's iss names nginx's address");
    let mut callback = url::Url::parse(REDIRECT).unwrap();
    callback.query_pairs_mut().extend_pairs(back.iter());
    state
        .handle_callback_url(callback.as_str())
        .await
        .expect("the code exchanged, iss checked");
    let OAuthState::Authorized(manager) = state else {
        panic!("authorized after the callback")
    };
    let first = manager.get_access_token().await.unwrap();
    manager.refresh_token().await.expect("refreshed by rmcp's client");
    let refreshed = manager.get_access_token().await.unwrap();
    assert_ne!(refreshed, first, "the refresh gave a new access token");

    let client = AuthClient::new(reqwest::Client::builder().no_proxy().build().unwrap(), manager);
    let transport =
        StreamableHttpClientTransport::with_client(client, StreamableHttpClientTransportConfig::with_uri(team.mcp()));
    let agent = ().serve(transport).await.expect("initialize with rmcp's token");
    let tools = agent.list_all_tools().await.unwrap();
    assert_eq!(tools.len(), TOOLS);
    let me = agent
        .call_tool(CallToolRequestParams::new("getCurrentUser"))
        .await
        .unwrap();
    assert_ne!(me.is_error, Some(true), "{me:?}");
    assert!(serde_json::to_string(&me).unwrap().contains(EMAIL), "{me:?}");
    agent.cancel().await.unwrap();
    // The consent page checked the key once; the tool call made one more.
    let counted = sandbox
        .verify(Verify::operation("getCurrentUser").key(KEY).times(2))
        .await;
    assert!(
        counted.is_ok(),
        "the call was made with the consenting key: {counted:?}"
    );
    assert_through_nginx(&team);
}

/// The Python interpreter with the `mcp` package, from `TOKPORTAL_TEST_MCP_PYTHON`;
/// `None` (saying so) outside CI, a failure in CI.
fn mcp_python() -> Option<std::path::PathBuf> {
    use std::io::Write as _;
    if let Some(python) = std::env::var_os(PYTHON) {
        return Some(python.into());
    }
    let why = format!(
        "{PYTHON} is not set: python3 -m venv /tmp/mcpvenv && /tmp/mcpvenv/bin/pip install 'mcp>=1.22,<2', \
         then {PYTHON}=/tmp/mcpvenv/bin/python; .ci/run does it"
    );
    assert!(std::env::var_os("CI").is_none(), "{why}, and CI requires this test");
    let _ = writeln!(std::io::stderr().lock(), "SKIPPED: {why}");
    None
}

/// The official MCP Python SDK's OAuth client, through nginx: the script
/// gives `OAuthClientProvider` the MCP URL alone; it discovers, registers,
/// is sent to the consent page (answered over HTTP in its redirect handler),
/// exchanges the code, lists the tools and calls `getCurrentUser`; then,
/// its access token made to look expired, refreshes and calls again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdk_s_oauth_client_completes_the_flow_through_nginx() {
    const KEY: &str = "sk_test_python_sdk_user";
    let Some(python) = mcp_python() else { return };
    let sandbox = Sandbox::start().await.unwrap();
    let Some(team) = Team::start(&sandbox, SECRET) else {
        return;
    };

    let dir = tempfile::tempdir().unwrap();
    let (out, err) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let mut child = std::process::Command::new(&python)
        .arg("-B")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/mcp_sdk_oauth.py"))
        .args([team.mcp().as_str(), KEY])
        .env("PYTHONDONTWRITEBYTECODE", "1")
        // Only 127.0.0.1 is spoken to: no proxy (httpx honours these).
        .env_remove("HTTP_PROXY")
        .env_remove("HTTPS_PROXY")
        .env_remove("ALL_PROXY")
        .env_remove("http_proxy")
        .env_remove("https_proxy")
        .env_remove("all_proxy")
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("{PYTHON}={}: {e}", python.display()));
    // A hang guard, in polls (up to two minutes).
    let mut status = None;
    for _ in 0..1200 {
        status = child.try_wait().unwrap();
        if status.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "the Python SDK's client did not finish: {}",
            std::fs::read_to_string(&err).unwrap()
        );
    };
    let stdout = std::fs::read_to_string(&out).unwrap();
    let stderr = std::fs::read_to_string(&err).unwrap();
    assert!(status.success(), "{status}\n{stdout}\n{stderr}");
    let said: Value = serde_json::from_str(stdout.lines().last().expect("a JSON line")).unwrap();
    eprintln!("the MCP Python SDK {} completed the flow", said["sdk"]);

    // It was sent to nginx's /authorize, with the client id it registered,
    // the MCP URL as the resource (RFC 8707) and the scopes the 401 named.
    let public = &team.public;
    let client_id = said["client_id"].as_str().expect("a registered client");
    assert!(client_id.starts_with("v4.local."), "{client_id}");
    assert_eq!(said["authorize"]["origin"], *public);
    assert_eq!(said["authorize"]["path"], "/authorize");
    assert_eq!(said["authorize"]["client_id"], client_id);
    assert_eq!(said["authorize"]["resource"], format!("{public}/mcp"));
    assert!(
        said["authorize"]["scope"]
            .as_str()
            .unwrap()
            .split(' ')
            .any(|s| s == "tokportal:full"),
        "{said}"
    );
    // The redirect brought a code, the state and the issuer (RFC 9207).
    assert_eq!(said["callback"], serde_json::json!(["code", "iss", "state"]));
    assert_eq!(said["iss"], *public);
    // One token response from the code exchange, a second from the refresh,
    // each with new tokens; granted full access.
    assert_eq!(said["token_responses_after_consent"], 1, "{said}");
    assert_eq!(said["token_responses"], 2, "{said}");
    assert_eq!(said["access_changed"], true, "{said}");
    assert_eq!(said["refresh_changed"], true, "{said}");
    assert_eq!(said["scope"], "tokportal:full");
    // The MCP session: our server, every tool, the user, before and after
    // the refresh.
    assert_eq!(said["server"], "tokportal-mcp");
    assert_eq!(said["tools"], TOOLS);
    assert_eq!(
        (&said["is_error"], &said["email"]),
        (&Value::Bool(false), &Value::from(EMAIL))
    );
    assert_eq!(
        (&said["again_is_error"], &said["again_email"]),
        (&Value::Bool(false), &Value::from(EMAIL))
    );
    // The consent page checked the key once; each tool call made one more.
    let counted = sandbox
        .verify(Verify::operation("getCurrentUser").key(KEY).times(3))
        .await;
    assert!(counted.is_ok(), "both calls made with the consenting key: {counted:?}");
    assert_through_nginx(&team);
}
