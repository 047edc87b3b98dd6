//! Agents with a budget: a daily credit limit per connection, held across
//! replicas by the shared store, and an audit line for every paid call.
//!
//! Two replicas behind nginx share Debian's redis-server; 20 concurrent
//! `createBundle` calls through both, with a limit that pays for 3, charge
//! exactly 3 (the sandbox's balance and journal say so), and the other 17
//! are refused unsent, naming the limit. A limit chosen on the consent page
//! travels in the grant's tokens and holds for them.

mod common;

use common::mcp_http::McpHttp;
use common::nginx::Nginx;
use common::redis::RedisServer;
use futures::StreamExt;
use serde_json::{Value, json};
use tokportal::sandbox::{Sandbox, Verify};

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap()
}

fn bundle() -> Value {
    json!({"body": {"bundle_type": "account_only", "country": "USA"}})
}

/// One `tools/call` at `origin`'s `/mcp` with `bearer`: the JSON-RPC result.
async fn call(origin: &str, bearer: &str, tool: &str, arguments: Value) -> Value {
    let answer: Value = http()
        .post(format!("{origin}/mcp"))
        .bearer_auth(bearer)
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                      "params": {"name": tool, "arguments": arguments}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["result"].clone()
}

async fn balance(sandbox: &Sandbox, key: &str) -> f64 {
    let me: Value = http()
        .get(format!("{}/me", sandbox.url()))
        .header("x-api-key", key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    me["data"]["credits"]["balance"].as_f64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daily_limit_holds_across_two_replicas_sharing_redis() {
    let Some(nginx) = common::required_program("nginx", "apt-get install -y nginx") else {
        return;
    };
    let Some(redis) = RedisServer::start() else { return };
    let sandbox = Sandbox::start().await.unwrap();
    let key = "sk_test_budget_team";
    let price = {
        let preview = call_preview(&sandbox, key).await;
        assert!(preview > 0.0);
        preview
    };
    // A limit that pays for three creates, and not a fourth.
    let limit = (price * 3.0 + price / 2.0).floor() as u64;
    let logs = tempfile::tempdir().unwrap();
    let start = |n: usize| {
        let audit = logs.path().join(format!("audit-{n}.log"));
        McpHttp::start(
            sandbox.url(),
            &[
                "--store",
                &redis.url,
                "--daily-credit-limit",
                &limit.to_string(),
                "--audit-log",
                audit.to_str().unwrap(),
            ],
            &[],
        )
    };
    let (a, b) = (start(0), start(1));
    let address = |r: &McpHttp| r.origin.trim_start_matches("http://").to_owned();
    let lb = Nginx::start(&nginx, [&address(&a), &address(&b)]);
    let lb = format!("http://{}", lb.address);
    let before = balance(&sandbox, key).await;

    let results: Vec<Value> = futures::stream::iter(0..20)
        .map(|_| call(&lb, key, "createBundle", bundle()))
        .buffer_unordered(20)
        .collect()
        .await;
    let made = results.iter().filter(|r| r["isError"] != true).count();
    let refused: Vec<&Value> = results
        .iter()
        .filter(|r| r["structuredContent"]["error"]["code"] == "DAILY_CREDIT_LIMIT")
        .collect();
    assert_eq!((made, refused.len()), (3, 17), "{results:#?}");
    for r in &refused {
        let error = &r["structuredContent"]["error"];
        assert_eq!(error["daily_credit_limit"], limit);
        assert_eq!(error["cost"].as_f64(), Some(price));
        assert!(error["spent_today"].as_f64().unwrap() >= price * 3.0 - f64::EPSILON);
        assert!(error["message"].as_str().unwrap().contains("nothing was charged"));
    }
    // The sandbox charged exactly three, and saw exactly three real creates.
    assert_eq!(before - balance(&sandbox, key).await, price * 3.0);
    let counted = sandbox
        .verify(Verify::operation("createBundle").key(key).times(3).dry_run(false))
        .await;
    assert!(counted.is_ok(), "{counted:?}");
    // Both replicas served the flood.
    let lines: Vec<Value> = (0..2)
        .flat_map(|n| {
            std::fs::read_to_string(logs.path().join(format!("audit-{n}.log")))
                .unwrap_or_default()
                .lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(lines.len(), 20, "one audit line per paid call");
    let outcome = |o: &str| lines.iter().filter(|l| l["outcome"] == o).count();
    assert_eq!((outcome("sent"), outcome("refused_by_limit")), (3, 17));
    for line in &lines {
        assert_eq!(line["tool"], "createBundle");
        assert!(line["key"].as_str().is_some_and(|k| !k.contains(key)));
        assert_eq!(line["grant"], Value::Null, "an API key has no grant");
    }
    for n in 0..2 {
        let text = std::fs::read_to_string(logs.path().join(format!("audit-{n}.log"))).unwrap_or_default();
        assert!(!text.contains(key), "no key in the audit log");
    }
    let sent: Vec<&Value> = lines.iter().filter(|l| l["outcome"] == "sent").collect();
    assert!(
        sent.iter()
            .all(|l| l["idempotency_key"].is_string() && l["request_id"].is_string())
    );
    // getCurrentUser shows the limit and what is left today.
    let me = call(&lb, key, "getCurrentUser", json!({})).await;
    let budget = &me["structuredContent"]["tokportal_mcp"]["budget"];
    assert_eq!(budget["daily_credit_limit"], limit);
    assert_eq!(budget["spent_today"].as_f64(), Some(price * 3.0));
    drop(redis);
}

/// The price of the create, from a dry run.
async fn call_preview(sandbox: &Sandbox, key: &str) -> f64 {
    let preview: Value = http()
        .post(format!("{}/bundles", sandbox.url()))
        .header("x-api-key", key)
        .header("x-tokportal-dry-run", "true")
        .json(&bundle()["body"])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    preview["data"]["credits_would_charge"].as_f64().expect("a price")
}

/// A limit chosen on the consent page travels in the grant's tokens: the
/// grant's calls are held to it, a key's own calls are not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consented_limit_holds_for_its_grant() {
    use common::oauth::{KEY, PUBLIC, REDIRECT, Replica, client, discover, register};
    use oauth2::{AuthorizationCode, CsrfToken, PkceCodeChallenge, Scope, TokenResponse};
    let sandbox = Sandbox::start().await.unwrap();
    let price = call_preview(&sandbox, KEY).await;
    let replica = Replica::start(&sandbox, PUBLIC, &[]);
    let server = discover(&replica).await;
    let client_id = register(&replica, &server, REDIRECT).await;
    let oauth = client(&server, &client_id, REDIRECT);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, _) = oauth
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("tokportal:full".into()))
        .set_pkce_challenge(challenge)
        .url();
    let page = http().get(replica.here(url.as_str())).send().await.unwrap();
    let cookie = page.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let html = page.text().await.unwrap();
    assert!(html.contains("name=\"daily_credit_limit\""), "{html}");
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_owned();
    let form = |limit: &str| {
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("csrf", &csrf)
            .append_pair("api_key", KEY)
            .append_pair("access", "full")
            .append_pair("daily_credit_limit", limit)
            .append_pair("decision", "allow")
            .finish()
    };
    // Not a number: the page again, with why.
    let bad = http()
        .post(format!("{}/authorize", replica.origin))
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form("ten"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert!(bad.text().await.unwrap().contains("whole number"));
    let limit = price.ceil() as u64;
    let answered = http()
        .post(format!("{}/authorize", replica.origin))
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&limit.to_string()))
        .send()
        .await
        .unwrap();
    assert_eq!(answered.status(), 303);
    let location = url::Url::parse(answered.headers()["location"].to_str().unwrap()).unwrap();
    let code = location
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let origin = replica.origin.clone();
    let send = move |r| common::oauth::send(r, origin.clone());
    let tokens = oauth
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .request_async(&send)
        .await
        .unwrap();
    let access = tokens.access_token().secret().clone();
    let first = call(&replica.origin, &access, "createBundle", bundle()).await;
    assert_ne!(first["isError"], true, "{first}");
    let second = call(&replica.origin, &access, "createBundle", bundle()).await;
    assert_eq!(
        second["structuredContent"]["error"]["code"], "DAILY_CREDIT_LIMIT",
        "{second}"
    );
    assert_eq!(second["structuredContent"]["error"]["daily_credit_limit"], limit);
    // The refreshed tokens keep the limit.
    let refreshed = oauth
        .exchange_refresh_token(tokens.refresh_token().unwrap())
        .request_async(&send)
        .await
        .unwrap();
    let third = call(
        &replica.origin,
        refreshed.access_token().secret(),
        "createBundle",
        bundle(),
    )
    .await;
    assert_eq!(
        third["structuredContent"]["error"]["code"], "DAILY_CREDIT_LIMIT",
        "{third}"
    );
    // The same user's key, as Bearer, is another connection with no limit here.
    let own = call(&replica.origin, KEY, "createBundle", bundle()).await;
    assert_ne!(own["isError"], true, "{own}");
}

/// An agent that previews a paid call, then sends it: the limit takes the
/// preview's price, so the sandbox sees one dry run and one paid call, not
/// a second dry run (and a different call still gets its own).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_previewed_call_is_held_at_its_previews_price_without_a_second_dry_run() {
    let sandbox = Sandbox::start().await.unwrap();
    let server = McpHttp::start(sandbox.url(), &["--daily-credit-limit", "1000"], &[]);
    let key = "sk_test_budget_preview";
    let mut preview = bundle();
    preview["dry_run"] = json!(true);
    let previewed = call(&server.origin, key, "createBundle", preview).await;
    assert_ne!(previewed["isError"], true, "{previewed}");
    let sent = call(&server.origin, key, "createBundle", bundle()).await;
    assert_ne!(sent["isError"], true, "{sent}");
    sandbox
        .verify(Verify::operation("createBundle").key(key).dry_run(true).times(1))
        .await
        .expect("one dry run: the agent's own");
    sandbox
        .verify(Verify::operation("createBundle").key(key).dry_run(false).times(1))
        .await
        .expect("one paid call");
    // Used once: the same call again is priced by a dry run of its own.
    let again = call(&server.origin, key, "createBundle", bundle()).await;
    assert_ne!(again["isError"], true, "{again}");
    sandbox
        .verify(Verify::operation("createBundle").key(key).dry_run(true).times(2))
        .await
        .expect("the second paid call had its own dry run");
    let me = call(&server.origin, key, "getCurrentUser", json!({})).await;
    let spent = me["structuredContent"]["tokportal_mcp"]["budget"]["spent_today"].as_f64();
    let price = call_preview(&sandbox, key).await;
    assert_eq!(spent, Some(2.0 * price), "{me}");

    // The same call sent again under its idempotency key (a retry, as the
    // docs advise after a timeout) is replayed by TokPortal and charges
    // nothing again: the limit counts it once.
    let mut keyed = bundle();
    keyed["idempotency_key"] = json!("budget-replay-1");
    for _ in 0..3 {
        let sent = call(&server.origin, key, "createBundle", keyed.clone()).await;
        assert_ne!(sent["isError"], true, "{sent}");
    }
    let me = call(&server.origin, key, "getCurrentUser", json!({})).await;
    let spent = me["structuredContent"]["tokportal_mcp"]["budget"]["spent_today"].as_f64();
    assert_eq!(spent, Some(3.0 * price), "charged once, counted once: {me}");

    // One replica on the memory store says the limit is its own.
    let warned = (0..500).any(|_| {
        let found = server
            .log
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("--daily-credit-limit with --store memory"));
        if !found {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        found
    });
    assert!(warned, "{:?}", server.log.lock().unwrap());
}
