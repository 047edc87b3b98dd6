//! The consent page of `tokportal-mcp --oauth` in the real Chromium the
//! inspector's test uses (Debian's chromium and chromium-driver, which
//! `.ci/run` installs): opened from a client's authorization URL, answered
//! from the keyboard only (the key typed, Enter), and the browser sent back
//! to the client's loopback redirect, on a port other than the registered
//! one (RFC 8252), with `code`, `state` and `iss`. The code then buys a
//! token that calls the sandbox. Saves the page's screenshot to
//! `target/consent.png` (and `docs/consent.png` with
//! `TOKPORTAL_SCREENSHOTS=docs`).

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::oauth::JsonAnswer;
use fantoccini::key::Key;
use fantoccini::{ClientBuilder, Locator};
use serde_json::{Value, json};
use tokportal::sandbox::Sandbox;

const SECRET: &str = "a shared sealing secret, 32 bytes or more, for tests";
const KEY: &str = "sk_test_oauth_browser";

/// A replica on the store `store` (both replicas share one, as a team's do).
fn replica(sandbox: &Sandbox, store: &str) -> common::mcp_http::McpHttp {
    common::mcp_http::McpHttp::start(
        sandbox.url(),
        &["--oauth", "--public-url", "http://127.0.0.1", "--store", store],
        &[("TOKPORTAL_MCP_OAUTH_SECRET", SECRET)],
    )
}

/// The client's redirect: a loopback server that keeps the query it gets.
async fn redirect_receiver() -> (u16, Arc<Mutex<Option<HashMap<String, String>>>>) {
    let got = Arc::new(Mutex::new(None));
    let kept = got.clone();
    let app = axum::Router::new().route(
        "/callback",
        axum::routing::get(move |axum::extract::RawQuery(query): axum::extract::RawQuery| {
            let kept = kept.clone();
            async move {
                let pairs = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
                    .into_owned()
                    .collect();
                *kept.lock().unwrap() = Some(pairs);
                "You may close this page."
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (port, got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_in_chromium_from_the_keyboard() {
    let Some(chromium) =
        common::required_program("chromium|chromium-browser|google-chrome", "apt-get install -y chromium")
    else {
        return;
    };
    let Some(driver_path) = common::required_program("chromedriver", "apt-get install -y chromium-driver") else {
        return;
    };
    let sandbox = Sandbox::start().await.unwrap();
    // Two replicas with the same secret and public URL: the browser talks
    // to one, the client's token requests and calls go to the other.
    let shared = tempfile::tempdir().unwrap();
    let store = format!("sqlite:{}", shared.path().join("store.db").display());
    let (server, second) = (replica(&sandbox, &store), replica(&sandbox, &store));
    let (origin, other) = (server.origin.clone(), second.origin.clone());
    let (port, got) = redirect_receiver().await;
    let http = reqwest::Client::new();
    // Registered with one loopback port; the browser goes back on another.
    let registered: Value = http
        .post(format!("{origin}/register"))
        .json(&json!({"client_name": "Claude", "redirect_uris": ["http://127.0.0.1:1/callback"]}))
        .json_answer()
        .await;
    let client_id = registered["client_id"].as_str().unwrap();
    let verifier = "v".repeat(64);
    use base64::Engine as _;
    use sha2::Digest as _;
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
    let redirect = format!("http://127.0.0.1:{port}/callback");
    let mut authorize = url::Url::parse(&format!("{origin}/authorize")).unwrap();
    authorize
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", &redirect)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256")
        .append_pair("state", "browser-state")
        .append_pair("scope", "tokportal:full tokportal:read_only");

    let driver = common::Chromedriver::start(&driver_path);
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({"binary": chromium, "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=900,760", "--no-first-run"]}),
    );
    let page = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a WebDriver session in chromium");
    page.goto(authorize.as_str()).await.unwrap();
    let heading = page.find(Locator::Css("h1")).await.unwrap().text().await.unwrap();
    assert_eq!(heading, "Connect Claude to TokPortal");
    // The key field has the focus: type the key, Enter submits (Allow).
    let focused = page.active_element().await.unwrap().attr("id").await.unwrap();
    assert_eq!(focused.as_deref(), Some("api_key"), "the key field is focused");

    // First a wrong key: refused on the page with TokPortal's message.
    page.active_element()
        .await
        .unwrap()
        .send_keys(&format!("not-a-tokportal-key{}", Key::Enter))
        .await
        .unwrap();
    let problem = wait_for(&page, "#problem").await;
    assert!(problem.contains("TokPortal refused this key"), "{problem}");
    let png = page.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"));

    // A daily credit limit, typed into its field; then the right key, from
    // the keyboard again.
    let limit = page.find(Locator::Id("daily_credit_limit")).await.unwrap();
    limit.send_keys("15").await.unwrap();
    let field = page.find(Locator::Id("api_key")).await.unwrap();
    field.send_keys(&format!("{KEY}{}", Key::Enter)).await.unwrap();
    // A hang guard, in polls (200 of 50 ms), not a bound on time asserted.
    let mut polls = 0;
    let back = loop {
        if let Some(back) = got.lock().unwrap().clone() {
            break back;
        }
        polls += 1;
        assert!(polls < 200, "the browser never came back to the client");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(back["state"], "browser-state");
    assert_eq!(back["iss"], "http://127.0.0.1");
    // The page as the README shows it (a fresh one, no error on it).
    page.goto(authorize.as_str()).await.unwrap();
    let png = page.screenshot().await.unwrap();
    let target = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("consent.png");
    std::fs::write(&target, &png).unwrap();
    if std::env::var("TOKPORTAL_SCREENSHOTS").as_deref() == Ok("docs") {
        std::fs::write(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/consent.png"), &png).unwrap();
    }
    page.close().await.unwrap();

    // The code buys a token on the other replica, which calls the sandbox with the typed key.
    let tokens = post_form(
        &http,
        &format!("{other}/token"),
        &[
            ("grant_type", "authorization_code"),
            ("code", &back["code"]),
            ("client_id", client_id),
            ("redirect_uri", &redirect),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(tokens["token_type"], "Bearer", "{tokens}");
    assert_eq!(tokens["scope"], "tokportal:full");
    let me: Value = http
        .post(format!("{other}/mcp"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                      "params": {"name": "getCurrentUser", "arguments": {}}}))
        .json_answer()
        .await;
    assert_eq!(me["result"]["isError"], false, "{me}");
    assert_eq!(
        me["result"]["structuredContent"]["tokportal_mcp"]["budget"]["daily_credit_limit"], 15,
        "the limit typed in Chromium reached the token: {me}"
    );
    // The token's paid calls are held to it: a 10-credit create fits, a
    // second does not, and is refused unsent.
    let create = |access: String| {
        let http = http.clone();
        let other = other.clone();
        async move {
            let answer: Value = http
                .post(format!("{other}/mcp"))
                .bearer_auth(access)
                .header("accept", "application/json, text/event-stream")
                .json(&json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                              "params": {"name": "createBundle",
                                         "arguments": {"body": {"bundle_type": "account_only", "country": "USA"}}}}))
                .json_answer()
                .await;
            answer["result"].clone()
        }
    };
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let first = create(access.clone()).await;
    assert_ne!(first["isError"], true, "{first}");
    let second = create(access).await;
    assert_eq!(
        second["structuredContent"]["error"]["code"], "DAILY_CREDIT_LIMIT",
        "{second}"
    );
    assert!(
        sandbox
            .verify(
                tokportal::sandbox::Verify::operation("createBundle")
                    .key(KEY)
                    .dry_run(false)
                    .times(1)
            )
            .await
            .is_ok(),
        "one create sent"
    );
    assert!(
        sandbox
            .verify(
                tokportal::sandbox::Verify::operation("getCurrentUser")
                    .key(KEY)
                    .at_least(2)
            )
            .await
            .is_ok(),
        "the consent page's check and the call both used the typed key"
    );
    // And a refresh, on the first replica again.
    let refreshed = post_form(
        &http,
        &format!("{origin}/token"),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
            ("client_id", client_id),
        ],
    )
    .await;
    assert!(
        refreshed["access_token"]
            .as_str()
            .is_some_and(|t| t.starts_with("v4.local.")),
        "{refreshed}"
    );
}

/// POSTs a form to `url`: its JSON answer.
async fn post_form(http: &reqwest::Client, url: &str, pairs: &[(&str, &str)]) -> Value {
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        form.append_pair(k, v);
    }
    http.post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form.finish())
        .json_answer()
        .await
}

async fn wait_for(page: &fantoccini::Client, css: &str) -> String {
    // A hang guard, in polls, not a bound on time asserted.
    for _ in 0..200 {
        if let Ok(found) = page.find(Locator::Css(css)).await
            && let Ok(text) = found.text().await
        {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{css} never showed");
}
