//! A team's deployment, with real components: Debian's `redis-server` as
//! the store, two `tokportal-mcp --oauth` replicas sharing it, and nginx in
//! front of them with the deploy file and no affinity, so the flow's
//! requests spread over both. What must be used once is used once across
//! both; a replay or a revocation on one ends the grant on the other; a
//! store that stops answering makes both refuse, and both come back.
//!
//! And a single replica on `--store sqlite:` that restarts: what was used
//! stays used, what was revoked stays revoked.

mod common;

use std::time::Duration;

use base64::Engine;
use common::mcp_http::McpHttp;
use common::team::Team;
use serde_json::{Value, json};
use sha2::Digest;
use tokportal::sandbox::Sandbox;

const SECRET: &str = "a shared sealing secret, 32 bytes or more, for tests";
const KEY: &str = "sk_test_replicas_user";
const REDIRECT: &str = "http://127.0.0.1:33418/callback";

/// A form-encoded body (reqwest is built without its `form` feature).
trait FormOf {
    fn form_of(self, pairs: &[(&str, &str)]) -> Self;
}

impl FormOf for reqwest::RequestBuilder {
    fn form_of(self, pairs: &[(&str, &str)]) -> Self {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        self.header("content-type", "application/x-www-form-urlencoded")
            .body(body)
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap()
}

fn replica(sandbox: &Sandbox, public: &str, store: &str) -> McpHttp {
    common::team::replica(sandbox, public, store, SECRET)
}

/// `POST /register` at `origin`: the client id.
async fn register(origin: &str) -> String {
    let answer: Value = http()
        .post(format!("{origin}/register"))
        .json(&json!({"client_name": "Team test", "redirect_uris": [REDIRECT]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["client_id"].as_str().expect("a client id").to_owned()
}

/// The consent, as a person gives it, at `origin`: a code and its verifier.
async fn consent(origin: &str, client_id: &str) -> (String, String) {
    let verifier = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256")
        .append_pair("scope", "tokportal:full")
        .append_pair("state", "s1")
        .finish();
    let page = http().get(format!("{origin}/authorize?{query}")).send().await.unwrap();
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
    let answered = http()
        .post(format!("{origin}/authorize"))
        .header("cookie", cookie)
        .form_of(&[
            ("csrf", csrf.as_str()),
            ("api_key", KEY),
            ("access", "full"),
            ("decision", "allow"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(answered.status(), 303, "{}", answered.text().await.unwrap());
    let location = url::Url::parse(answered.headers()["location"].to_str().unwrap()).unwrap();
    let code = location
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("a code");
    (code, verifier)
}

/// `POST /token` at `origin`: the status, `Retry-After`, and the body.
async fn token(origin: &str, form: &[(&str, &str)]) -> (u16, Option<String>, Value) {
    let answer = http()
        .post(format!("{origin}/token"))
        .form_of(form)
        .send()
        .await
        .unwrap();
    let status = answer.status().as_u16();
    let retry = answer
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, retry, answer.json().await.unwrap_or(Value::Null))
}

async fn by_code(origin: &str, client_id: &str, code: &str, verifier: &str) -> (u16, Option<String>, Value) {
    token(
        origin,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("client_id", client_id),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
        ],
    )
    .await
}

async fn by_refresh(origin: &str, refresh: &Value) -> (u16, Option<String>, Value) {
    token(
        origin,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.as_str().unwrap()),
        ],
    )
    .await
}

/// A `tools/list` at `origin`'s `/mcp` with `access`: its status.
async fn mcp(origin: &str, access: &Value) -> u16 {
    http()
        .post(format!("{origin}/mcp"))
        .bearer_auth(access.as_str().unwrap())
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn ready(origin: &str) -> u16 {
    http()
        .get(format!("{origin}/readyz"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// A whole sign-in through `origin`: its tokens.
async fn sign_in(origin: &str, client_id: &str) -> Value {
    let (code, verifier) = consent(origin, client_id).await;
    let (status, _, tokens) = by_code(origin, client_id, &code, &verifier).await;
    assert_eq!(status, 200, "{tokens}");
    tokens
}

fn grants_cli(store: &str, args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tokportal-mcp"))
        .arg("grants")
        .args(args)
        .args(["--store", store])
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_behind_nginx_share_one_redis_store() {
    let sandbox = Sandbox::start().await.unwrap();
    let Some(team) = Team::start(&sandbox, SECRET) else {
        return;
    };
    let (a, b, redis, public) = (&team.a, &team.b, &team.redis, &team.public);
    let lb = public.clone();

    // Discovery and registration, through nginx.
    let metadata: Value = http()
        .get(format!("{lb}/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["revocation_endpoint"], format!("{public}/revoke"));
    let client_id = register(&lb).await;

    // A code is redeemed once: on A, then refused on B.
    let (code, verifier) = consent(&lb, &client_id).await;
    let (status, _, first) = by_code(&a.origin, &client_id, &code, &verifier).await;
    assert_eq!(status, 200, "{first}");
    let (status, _, again) = by_code(&b.origin, &client_id, &code, &verifier).await;
    assert_eq!(
        (status, again["error"].as_str()),
        (400, Some("invalid_grant")),
        "{again}"
    );
    assert!(again["error_description"].as_str().unwrap().contains("used already"));
    // Its access token works on both replicas, and through nginx.
    for origin in [&a.origin, &b.origin, &lb] {
        assert_eq!(mcp(origin, &first["access_token"]).await, 200, "{origin}");
    }

    // A refresh on A rotates; the old refresh token replayed on B revokes
    // the grant everywhere: the new pair is refused on A.
    let (status, _, renewed) = by_refresh(&a.origin, &first["refresh_token"]).await;
    assert_eq!(status, 200, "{renewed}");
    assert_eq!(mcp(&a.origin, &renewed["access_token"]).await, 200);
    let (status, _, replayed) = by_refresh(&b.origin, &first["refresh_token"]).await;
    assert_eq!(
        (status, replayed["error"].as_str()),
        (400, Some("invalid_grant")),
        "{replayed}"
    );
    assert_eq!(mcp(&a.origin, &renewed["access_token"]).await, 401);
    assert_eq!(mcp(&b.origin, &first["access_token"]).await, 401);
    let (status, _, _) = by_refresh(&lb, &renewed["refresh_token"]).await;
    assert_eq!(status, 400, "the renewed refresh token went with its grant");

    // /revoke on A ends a grant on B.
    let second = sign_in(&lb, &client_id).await;
    assert_eq!(mcp(&b.origin, &second["access_token"]).await, 200);
    let revoked = http()
        .post(format!("{}/revoke", a.origin))
        .form_of(&[
            ("token", second["refresh_token"].as_str().unwrap()),
            ("token_type_hint", "refresh_token"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    assert_eq!(mcp(&b.origin, &second["access_token"]).await, 401);
    // A token that is not ours is answered 200 too (RFC 7009 §2.2).
    let bogus = http()
        .post(format!("{lb}/revoke"))
        .form_of(&[("token", "v4.local.nothing")])
        .send()
        .await
        .unwrap();
    assert_eq!(bogus.status(), 200);

    // The operator's view, while the servers run: grants, no secret.
    let third = sign_in(&lb, &client_id).await;
    let (ok, listed, stderr) = grants_cli(&redis.url, &["list", "--json"]);
    assert!(ok, "{stderr}");
    let listed: Value = serde_json::from_str(&listed).unwrap();
    let grants = listed["grants"].as_array().unwrap();
    assert_eq!(grants.len(), 3, "{listed}");
    assert_eq!(grants.iter().filter(|g| g["revoked"] == false).count(), 1);
    let shown = listed.to_string();
    for secret in [
        KEY,
        third["access_token"].as_str().unwrap(),
        third["refresh_token"].as_str().unwrap(),
    ] {
        assert!(!shown.contains(secret), "the listing shows no key or token");
    }
    let live = grants.iter().find(|g| g["revoked"] == false).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (ok, said, stderr) = grants_cli(&redis.url, &["revoke", &live]);
    assert!(ok && said.contains("revoked"), "{said} {stderr}");
    assert_eq!(mcp(&a.origin, &third["access_token"]).await, 401);
    assert_eq!(mcp(&b.origin, &third["access_token"]).await, 401);

    // The store stops answering mid-flow: both replicas refuse (503 with
    // Retry-After), accept nothing, and are not ready.
    let fourth = sign_in(&lb, &client_id).await;
    let (code, verifier) = consent(&lb, &client_id).await;
    redis.pause();
    let (status, retry, _) = by_code(&lb, &client_id, &code, &verifier).await;
    assert_eq!((status, retry.as_deref()), (503, Some("5")));
    let (status, _, _) = by_refresh(&lb, &fourth["refresh_token"]).await;
    assert_eq!(status, 503);
    for origin in [&a.origin, &b.origin] {
        assert_eq!(mcp(origin, &fourth["access_token"]).await, 503, "{origin}");
        assert_eq!(ready(origin).await, 503, "{origin}");
    }
    let logs = [a, b].map(|r| r.log.lock().unwrap().join("\n"));
    assert!(
        logs.iter()
            .any(|l| l.contains("the store") && l.contains("redis+unix://")),
        "a log line names the store"
    );
    redis.resume();
    // Back: ready again (bounded polls), and the grant made before works.
    let mut back = false;
    for _ in 0..100 {
        if ready(&a.origin).await == 200 && ready(&b.origin).await == 200 {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(back, "both replicas ready once the store answers");
    assert_eq!(mcp(&lb, &fourth["access_token"]).await, 200);
    // The code tried during the outage is accepted at most once in all.
    let mut accepted = 0;
    for origin in [&a.origin, &b.origin] {
        let (status, _, _) = by_code(origin, &client_id, &code, &verifier).await;
        accepted += usize::from(status == 200);
    }
    assert!(accepted <= 1, "a code is never accepted twice");
    // And a new sign-in goes through.
    let fifth = sign_in(&lb, &client_id).await;
    assert_eq!(mcp(&lb, &fifth["access_token"]).await, 200);
}

/// One replica on `sqlite:` that restarts (a deploy): a used refresh token
/// stays used (replaying it revokes the grant), and a revoked grant stays
/// revoked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_on_sqlite_forgets_nothing_when_it_restarts() {
    let sandbox = Sandbox::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite:{}", dir.path().join("store.db").display());
    let public = "http://mcp.restart.localhost";
    let before = replica(&sandbox, public, &store);
    let client_id = register(&before.origin).await;
    let rotated = sign_in(&before.origin, &client_id).await;
    let (status, _, renewed) = by_refresh(&before.origin, &rotated["refresh_token"]).await;
    assert_eq!(status, 200);
    let revoked = sign_in(&before.origin, &client_id).await;
    let answer = http()
        .post(format!("{}/revoke", before.origin))
        .form_of(&[("token", revoked["access_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    drop(before);

    let after = replica(&sandbox, public, &store);
    assert_eq!(
        mcp(&after.origin, &renewed["access_token"]).await,
        200,
        "a live grant lives on"
    );
    let (status, _, replayed) = by_refresh(&after.origin, &rotated["refresh_token"]).await;
    assert_eq!((status, replayed["error"].as_str()), (400, Some("invalid_grant")));
    assert_eq!(
        mcp(&after.origin, &renewed["access_token"]).await,
        401,
        "the replay revoked the grant"
    );
    assert_eq!(mcp(&after.origin, &revoked["access_token"]).await, 401);
    let (status, _, _) = by_refresh(&after.origin, &revoked["refresh_token"]).await;
    assert_eq!(status, 400, "a revoked grant stays revoked");
}
