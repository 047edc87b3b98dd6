//! `tokportal-mcp --oauth`, driven as Claude's or ChatGPT's connector would:
//! discovery from the 401, registration, the consent page, the code, the
//! token (with the `oauth2` crate as the client), calls, refresh; over two
//! replicas that share the secret and the public URL and nothing else, in
//! front of an in-process sandbox. The public URL is a name no resolver
//! knows (`http://mcp.tokportal.localhost`): the test plays the load balancer
//! and sends each request to a replica of its choosing.

mod common;

use std::time::Duration;

use common::oauth::{KEY, PUBLIC, REDIRECT, Replica, client, consent, discover, no_redirects, register, send, sign_in};
use oauth2::{AuthorizationCode, CsrfToken, PkceCodeChallenge, PkceCodeVerifier, RefreshToken, TokenResponse};
use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, JsonObject};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};
use tokportal::sandbox::{Sandbox, Verify};

/// An MCP client with a bearer token, on one replica.
async fn agent(replica: &Replica, token: &str) -> rmcp::service::RunningService<rmcp::RoleClient, ()> {
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(format!("{}/mcp", replica.origin)).auth_header(token.to_owned()),
    );
    ().serve(transport).await.expect("initialize with the token")
}

async fn call(
    agent: &rmcp::service::RunningService<rmcp::RoleClient, ()>,
    tool: &str,
    arguments: Value,
) -> rmcp::model::CallToolResult {
    let Value::Object(arguments) = arguments else { panic!() };
    agent
        .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments as JsonObject))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_flow_over_two_replicas() {
    let sandbox = Sandbox::start().await.unwrap();
    // Two replicas share one store (here a SQLite file; tests/mcp_replicas.rs
    // runs Redis behind nginx): a grant made on one is live on the other.
    let shared = tempfile::tempdir().unwrap();
    let store = format!("sqlite:{}", shared.path().join("store.db").display());
    let a = Replica::start(&sandbox, PUBLIC, &["--store", &store]);
    let b = Replica::start(&sandbox, PUBLIC, &["--store", &store]);
    let server = discover(&a).await;
    let client_id = register(&a, &server, REDIRECT).await;
    let (challenge, _) = PkceCodeChallenge::new_random_sha256();
    let (url, _) = client(&server, &client_id, REDIRECT)
        .authorize_url(CsrfToken::new_random)
        .set_pkce_challenge(challenge)
        .url();
    let page = no_redirects()
        .get(a.here(url.as_str()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Connect A connector &lt;test&gt; to TokPortal"),
        "the client named, escaped: {page}"
    );

    let (tokens, code) = sign_in(&a, &server, &client_id, "full").await;
    let access = tokens.access_token().secret().clone();
    assert!(!access.contains(KEY), "the token never shows the key");
    assert_eq!(tokens.expires_in(), Some(Duration::from_secs(3600)));

    // Replica B serves A's token: the calls go upstream with the wrapped key.
    let on_b = agent(&b, &access).await;
    let tools = on_b.list_all_tools().await.unwrap();
    assert_eq!(tools.len(), 78);
    let me = call(&on_b, "getCurrentUser", json!({})).await;
    assert_ne!(me.is_error, Some(true), "{me:?}");
    let made = call(
        &on_b,
        "createBundle",
        json!({"body": {"bundle_type": "account_and_videos", "platform": "tiktok", "country": "USA", "videos_quantity": 1}}),
    )
    .await;
    assert_ne!(made.is_error, Some(true), "{made:?}");
    let counted = sandbox
        .verify(Verify::operation("createBundle").key(KEY).times(1))
        .await;
    assert!(counted.is_ok(), "the user's own key paid: {counted:?}");
    on_b.cancel().await.unwrap();

    // The code works once, on either replica.
    let oauth = client(&server, &client_id, REDIRECT);
    let origin = b.origin.clone();
    let http_b = move |r| send(r, origin.clone());
    let again = oauth
        .exchange_code(AuthorizationCode::new(code.clone()))
        .set_pkce_verifier(PkceCodeVerifier::new("x".repeat(50)))
        .request_async(&http_b)
        .await;
    assert!(format!("{again:?}").contains("invalid_grant"), "{again:?}");
    let origin = a.origin.clone();
    let http_a = move |r| send(r, origin.clone());

    // Refresh on B: a new pair; the old refresh token is used up there.
    let refresh = tokens.refresh_token().expect("a refresh token").clone();
    let renewed = oauth
        .exchange_refresh_token(&refresh)
        .request_async(&http_b)
        .await
        .expect("refreshed");
    assert_ne!(renewed.access_token().secret(), &access);
    assert_ne!(
        renewed.refresh_token().unwrap().secret(),
        refresh.secret(),
        "refresh tokens rotate"
    );
    let on_a = agent(&a, renewed.access_token().secret()).await;
    assert_ne!(call(&on_a, "getCurrentUser", json!({})).await.is_error, Some(true));
    on_a.cancel().await.unwrap();
    // The rotated token used again (on B): refused, and the whole grant is
    // revoked (RFC 9700 §4.14.2): the renewed tokens are refused too, on A.
    let reused = oauth.exchange_refresh_token(&refresh).request_async(&http_b).await;
    assert!(format!("{reused:?}").contains("invalid_grant"), "{reused:?}");
    let refused = no_redirects()
        .post(format!("{}/mcp", a.origin))
        .bearer_auth(renewed.access_token().secret())
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let renewed_again = oauth
        .exchange_refresh_token(renewed.refresh_token().unwrap())
        .request_async(&http_a)
        .await;
    assert!(
        format!("{renewed_again:?}").contains("invalid_grant"),
        "{renewed_again:?}"
    );
    let bogus = oauth
        .exchange_refresh_token(&RefreshToken::new("v4.local.not-a-token".into()))
        .request_async(&http_a)
        .await;
    assert!(format!("{bogus:?}").contains("invalid_grant"));

    // Secrets: no key, code or token in either replica's log, at trace.
    // Each log is known to hold the flow: A issued the code, B refused the reuses.
    for (replica, seen) in [(&a, "a code was issued"), (&b, "a token request was refused")] {
        let log = replica.log.lock().unwrap().join("\n");
        assert!(log.contains(seen), "{} logged `{seen}`", replica.origin);
        for secret in [KEY, code.as_str(), access.as_str(), refresh.secret().as_str()] {
            assert!(!log.contains(secret), "a secret in the log of {}", replica.origin);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_read_only_and_audience() {
    let sandbox = Sandbox::start().await.unwrap();
    let a = Replica::start(&sandbox, PUBLIC, &["--oauth-access-ttl", "2"]);
    let other = Replica::start(&sandbox, "http://other.tokportal.localhost", &[]);
    let server = discover(&a).await;
    let client_id = register(&a, &server, REDIRECT).await;
    let oauth = client(&server, &client_id, REDIRECT);
    let origin = a.origin.clone();
    let http = move |r| send(r, origin.clone());

    // An unregistered redirect is refused on the page, never redirected to.
    let stranger = client(&server, &client_id, "http://127.0.0.1:33418/elsewhere");
    let (challenge, _) = PkceCodeChallenge::new_random_sha256();
    let (url, _) = stranger
        .authorize_url(CsrfToken::new_random)
        .set_pkce_challenge(challenge)
        .url();
    let (status, page) = consent(&a, url.as_str(), KEY, "full").await.unwrap_err();
    assert_eq!(status, 400);
    assert!(page.contains("is not a redirect URI registered"), "{page}");

    // A bad key is refused on the page, with TokPortal's message; nothing issued.
    let (challenge, _) = PkceCodeChallenge::new_random_sha256();
    let (url, _) = oauth
        .authorize_url(CsrfToken::new_random)
        .set_pkce_challenge(challenge)
        .url();
    let (status, page) = consent(&a, url.as_str(), "not-a-key", "full").await.unwrap_err();
    assert_eq!(status, 401, "{page}");
    assert!(page.contains("TokPortal refused this key"), "{page}");

    // A wrong verifier.
    let (challenge, _) = PkceCodeChallenge::new_random_sha256();
    let (url, _) = oauth
        .authorize_url(CsrfToken::new_random)
        .set_pkce_challenge(challenge)
        .url();
    let back = consent(&a, url.as_str(), KEY, "full").await.unwrap();
    let wrong = oauth
        .exchange_code(AuthorizationCode::new(back["code"].clone()))
        .set_pkce_verifier(PkceCodeVerifier::new("w".repeat(64)))
        .request_async(&http)
        .await;
    assert!(format!("{wrong:?}").contains("invalid_grant"), "{wrong:?}");

    // Read-only: only what changes nothing is listed, and a change is refused unsent.
    let (tokens, _) = sign_in(&a, &server, &client_id, "read_only").await;
    assert_eq!(
        tokens.scopes().map(|s| s[0].to_string()),
        Some("tokportal:read_only".into())
    );
    let reader = agent(&a, tokens.access_token().secret()).await;
    let tools = reader.list_all_tools().await.unwrap();
    assert!(
        tools.len() < 78
            && tools
                .iter()
                .all(|t| t.annotations.as_ref().and_then(|a| a.read_only_hint) == Some(true))
    );
    let refused = call(
        &reader,
        "createBundle",
        json!({"body": {"bundle_type": "account_and_videos", "platform": "tiktok", "country": "USA", "videos_quantity": 1}}),
    )
    .await;
    assert_eq!(
        refused.structured_content.unwrap()["error"]["code"],
        "insufficient_scope"
    );
    assert!(
        sandbox.verify(Verify::operation("createBundle").times(0)).await.is_ok(),
        "nothing was sent"
    );
    reader.cancel().await.unwrap();

    // Another issuer: a replica with the same secret but another public URL
    // (staging beside production) refuses it: every sealed value is bound
    // to its issuer.
    let refused = no_redirects()
        .post(format!("{}/mcp", other.origin))
        .bearer_auth(tokens.access_token().secret())
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let challenge = refused.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(
        challenge.contains("invalid_token") && challenge.contains("not a token of this server"),
        "{challenge}"
    );

    // An expired token (this replica's last 2 s).
    tokio::time::sleep(Duration::from_millis(2600)).await;
    let expired = no_redirects()
        .post(format!("{}/mcp", a.origin))
        .bearer_auth(tokens.access_token().secret())
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(expired.status(), 401);
    assert!(
        expired.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("expired")
    );

    // API keys as Bearer keep working beside OAuth.
    let with_key = agent(&a, KEY).await;
    assert_eq!(with_key.list_all_tools().await.unwrap().len(), 78);
    with_key.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_metadata_documents_are_fetched_and_checked() {
    let sandbox = Sandbox::start().await.unwrap();
    // A server on loopback itself (local testing) may read a document on
    // loopback; one with a public address refuses to, unfetched.
    let a = Replica::start(&sandbox, "http://127.0.0.1", &[]);
    let public = Replica::start(&sandbox, "https://mcp.tokportal.example", &[]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let good = format!("http://127.0.0.1:{port}/client.json");
    let document = json!({"client_id": good, "client_name": "A documented client", "redirect_uris": [REDIRECT]});
    let liar = json!({"client_id": "https://someone.else/client.json", "redirect_uris": [REDIRECT]});
    let app = axum::Router::new()
        .route(
            "/client.json",
            axum::routing::get(move || async move { axum::Json(document) }),
        )
        .route(
            "/liar.json",
            axum::routing::get(move || async move { axum::Json(liar) }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await });

    let server = json!({
        "authorization_endpoint": format!("{}/authorize", a.origin),
        "token_endpoint": format!("{}/token", a.origin),
    });
    let (challenge, _) = PkceCodeChallenge::new_random_sha256();
    let (url, _) = client(&server, &good, REDIRECT)
        .authorize_url(CsrfToken::new_random)
        .set_pkce_challenge(challenge)
        .url();
    let on_public = no_redirects()
        .get(url.as_str().replacen(&a.origin, &public.origin, 1))
        .send()
        .await
        .unwrap();
    assert_eq!(on_public.status(), 400);
    assert!(on_public.text().await.unwrap().contains("must be https"));
    let page = no_redirects().get(url.as_str()).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("Connect A documented client to TokPortal") && html.contains("describes itself at"),
        "{html}"
    );

    let lying = format!("http://127.0.0.1:{port}/liar.json");
    let (challenge, _) = PkceCodeChallenge::new_random_sha256();
    let (url, _) = client(&server, &lying, REDIRECT)
        .authorize_url(CsrfToken::new_random)
        .set_pkce_challenge(challenge)
        .url();
    let page = no_redirects().get(url.as_str()).send().await.unwrap();
    assert_eq!(page.status(), 400);
    assert!(page.text().await.unwrap().contains("its client_id is not its own URL"));
}

/// rmcp's own OAuth client completes the flow: discovery from the MCP URL,
/// dynamic registration, the authorization URL (the consent answered as a
/// person would), the callback with its `iss` checked, the token, a call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rmcp_s_own_oauth_client_completes_the_flow() {
    use rmcp::transport::auth::{AuthorizationManager, AuthorizationRequest, OAuthState};

    let sandbox = Sandbox::start().await.unwrap();
    // Its public URL is an address it answers on: rmcp's client resolves
    // what it discovers. The replica takes a port of the system's choosing;
    // a forwarder, whose port is bound (and held) first, is that address.
    let forward = common::Forward::bind().await;
    let origin = forward.origin();
    let mut replica = Replica::start(&sandbox, &origin, &[]);
    forward.to(replica.origin.trim_start_matches("http://").to_owned());
    replica.origin = origin;
    let manager = AuthorizationManager::new_allowing_private_addresses(format!("{}/mcp", replica.origin))
        .await
        .unwrap();
    let mut state = OAuthState::Unauthorized(manager);
    state
        .start_authorization(
            AuthorizationRequest::new(REDIRECT)
                .with_scopes(["tokportal:full"])
                .with_client_name("rmcp's client"),
        )
        .await
        .expect("discovery and registration");
    let url = state.get_authorization_url().await.unwrap();
    let back = consent(&replica, &url, KEY, "full").await.expect("consent");
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
    // Its refresh (the refresh token rotates) gives a token that works too.
    manager.refresh_token().await.expect("refreshed by rmcp's client");
    let token = manager.get_access_token().await.unwrap();
    assert_ne!(token, first);
    let agent = agent(&replica, &token).await;
    assert_ne!(call(&agent, "getCurrentUser", json!({})).await.is_error, Some(true));
    agent.cancel().await.unwrap();
}

/// What an attacker who registers a client can put on the consent page:
/// nothing that is not escaped and cleaned, and the page says the client is
/// unverified, where the code goes, and where a key is found.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_consent_page_cannot_be_dressed_up() {
    let sandbox = Sandbox::start().await.unwrap();
    let a = Replica::start(&sandbox, PUBLIC, &[]);
    let http = no_redirects();
    // A markup redirect URI is refused at registration: an app's own scheme
    // must be a reverse domain name (RFC 8252 §7.1).
    let refused = http
        .post(format!("{}/register", a.origin))
        .json(&json!({"client_name": "x", "redirect_uris": ["x:<h1>Pay here</h1>"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    let said: Value = refused.json().await.unwrap();
    assert_eq!(said["error"], "invalid_redirect_uri");
    // A name with markup and bidi overrides, and a reverse-domain redirect.
    let registered: Value = http
        .post(format!("{}/register", a.origin))
        .json(&json!({
            "client_name": "Cl\u{202e}edua <img src=x onerror=alert(1)>\u{200b}",
            "redirect_uris": ["com.evil.app:/callback"]
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let client_id = registered["client_id"].as_str().unwrap();
    assert!(!registered["client_name"].as_str().unwrap().contains('\u{202e}'));
    let (challenge, _) = PkceCodeChallenge::new_random_sha256();
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", "com.evil.app:/callback")
        .append_pair("code_challenge", challenge.as_str())
        .append_pair("code_challenge_method", "S256")
        .finish();
    let page = http
        .get(format!("{}/authorize?{query}", a.origin))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    for bad in ["<img", "\u{202e}", "\u{200b}"] {
        assert!(!html.contains(bad), "{bad:?} on the page: {html}");
    }
    assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"), "{html}");
    assert!(html.contains("Unverified client"), "{html}");
    assert!(html.contains("The code goes to <b>the app com.evil.app</b>"), "{html}");
    assert!(html.contains("TokPortal dashboard"), "where a key is found: {html}");

    // An unregistered redirect with markup: an error page, escaped.
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", "https://x.example/<h1>x</h1>")
        .finish();
    let page = http
        .get(format!("{}/authorize?{query}", a.origin))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 400);
    let html = page.text().await.unwrap();
    assert!(!html.contains("<h1>x"), "{html}");
}

/// A registered client's redirect URI is never sent to without the user's
/// action: a request with an error (no `response_type`, no PKCE, an
/// unknown scope) is an error page, never a 303 (RFC 9700 §4.11.2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_before_consent_never_redirect() {
    let sandbox = Sandbox::start().await.unwrap();
    let a = Replica::start(&sandbox, PUBLIC, &[]);
    let http = no_redirects();
    let registered: Value = http
        .post(format!("{}/register", a.origin))
        .json(&json!({"client_name": "x", "redirect_uris": ["https://evil.example/landing"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let client_id = registered["client_id"].as_str().unwrap();
    for extra in [
        vec![],
        vec![("response_type", "token")],
        vec![("response_type", "code")],
        vec![
            ("response_type", "code"),
            ("code_challenge", "x"),
            ("code_challenge_method", "plain"),
        ],
    ] {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query.append_pair("client_id", client_id);
        query.append_pair("redirect_uri", "https://evil.example/landing");
        query.extend_pairs(&extra);
        let answer = http
            .get(format!("{}/authorize?{}", a.origin, query.finish()))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 400, "{extra:?}");
        assert!(answer.headers().get("location").is_none(), "{extra:?}: no redirect");
    }
}

/// `--public-url` with a path: the form posts under it and the cookie is
/// scoped to it (behind a path-prefixed proxy, the key is never posted to
/// whatever answers at the host's root); an https one makes the cookie
/// Secure; a plain-http one off loopback is refused at start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_public_url_s_path_and_scheme_are_followed() {
    let sandbox = Sandbox::start().await.unwrap();
    let http = no_redirects();
    for (public, prefix, secure) in [
        ("http://127.0.0.1/mcp-team", "/mcp-team", false),
        ("https://mcp.tokportal.example/a/b/", "/a/b", true),
    ] {
        let replica = Replica::start(&sandbox, public, &[]);
        let registered: Value = http
            .post(format!("{}/register", replica.origin))
            .json(&json!({"client_name": "x", "redirect_uris": [REDIRECT]}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let (challenge, _) = PkceCodeChallenge::new_random_sha256();
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("response_type", "code")
            .append_pair("client_id", registered["client_id"].as_str().unwrap())
            .append_pair("redirect_uri", REDIRECT)
            .append_pair("code_challenge", challenge.as_str())
            .append_pair("code_challenge_method", "S256")
            .finish();
        let page = http
            .get(format!("{}/authorize?{query}", replica.origin))
            .send()
            .await
            .unwrap();
        let cookie = page.headers()["set-cookie"].to_str().unwrap().to_owned();
        let html = page.text().await.unwrap();
        assert!(
            html.contains(&format!("action=\"{prefix}/authorize\"")),
            "{public}: {html}"
        );
        assert!(
            cookie.contains(&format!("Path={prefix}/authorize;")),
            "{public}: {cookie}"
        );
        assert_eq!(cookie.contains("; Secure"), secure, "{public}: {cookie}");
    }
    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_tokportal-mcp"))
        .args([
            "--http",
            "127.0.0.1:0",
            "--oauth",
            "--public-url",
            "http://mcp.example.com",
        ])
        .env("TOKPORTAL_MCP_OAUTH_SECRET", common::oauth::SECRET)
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("must be https"), "{stderr}");
}

/// A client metadata document is fetched directly, never through
/// `HTTPS_PROXY`/`HTTP_PROXY`: the address checked is the one reached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_metadata_document_is_never_fetched_through_a_proxy() {
    let sandbox = Sandbox::start().await.unwrap();
    let proxy = common::Scripted::start(vec![common::json_reply(502, json!({}))]).await;
    let proxy_url = proxy.base_url.clone();
    let a = common::mcp_http::McpHttp::start(
        sandbox.url(),
        &["--oauth", "--public-url", "http://127.0.0.1"],
        &[
            ("TOKPORTAL_MCP_OAUTH_SECRET", common::oauth::SECRET),
            ("HTTP_PROXY", proxy_url.as_str()),
            ("HTTPS_PROXY", proxy_url.as_str()),
            ("ALL_PROXY", proxy_url.as_str()),
            ("NO_PROXY", ""),
        ],
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let id = format!("http://127.0.0.1:{port}/client.json");
    let document = json!({"client_id": id, "client_name": "Direct", "redirect_uris": [REDIRECT]});
    let app = axum::Router::new().route(
        "/client.json",
        axum::routing::get(move || async move { axum::Json(document) }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    let (challenge, _) = PkceCodeChallenge::new_random_sha256();
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", &id)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("code_challenge", challenge.as_str())
        .append_pair("code_challenge_method", "S256")
        .finish();
    let page = no_redirects()
        .get(format!("{}/authorize?{query}", a.origin))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Connect Direct to TokPortal"));
    assert!(proxy.requests().is_empty(), "nothing went to the proxy");
}
