//! The sandbox's clock per key and the account manager, through the HTTP
//! API and the Rust `Sandbox`: review delays, posts on their dates,
//! corrections, a flagged download, webhooks in clock order (duplicated and
//! held back on demand), and `verify`. Everything runs on 127.0.0.1.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use tokportal::sandbox::{Sandbox, SandboxError, SandboxOptions, Verify};
use tokportal::webhooks::Verifier;

/// What a webhook receiver got, in arrival order.
type Received = Arc<Mutex<Vec<(HeaderMap, Vec<u8>)>>>;

struct Receiver {
    url: String,
    got: Received,
}

async fn receiver() -> Receiver {
    let got: Received = Arc::default();
    let seen = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let seen = seen.clone();
            async move {
                seen.lock().unwrap().push((headers, body.to_vec()));
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Receiver { url, got }
}

fn options() -> SandboxOptions {
    let mut o = SandboxOptions::default();
    o.rate_limit = 100_000;
    o.webhook_retry_delays = vec![Duration::from_millis(50)];
    o
}

/// A raw HTTP client of one key.
struct Api {
    base: String,
    key: String,
    http: reqwest::Client,
}

impl Api {
    fn new(sandbox: &Sandbox, key: &str) -> Self {
        Self {
            base: sandbox.url().to_owned(),
            key: key.to_owned(),
            http: reqwest::Client::new(),
        }
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("x-api-key", &self.key);
        if let Some(body) = body.filter(|b| !b.is_null()) {
            request = request.json(&body);
        }
        let answer = request.send().await.unwrap();
        let status = answer.status().as_u16();
        let text = answer.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::PUT, path, Some(body)).await
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.send(reqwest::Method::GET, path, None).await
    }

    /// A bundle with one video slot, its account configured, and an
    /// endpoint for every event at `hook`; its id and the endpoint's secret.
    async fn world(&self, hook: &str) -> (String, String) {
        let events = tokportal::webhooks::EVENT_TYPES.to_vec();
        let (status, endpoint) = self.post("/webhooks", json!({"url": hook, "events": events})).await;
        assert_eq!(status, 201, "{endpoint}");
        let secret = endpoint["data"]["secret"].as_str().unwrap().to_owned();
        let (status, bundle) = self
            .post(
                "/bundles",
                json!({"bundle_type": "account_and_videos", "country": "USA", "videos_quantity": 1}),
            )
            .await;
        assert_eq!(status, 201, "{bundle}");
        let id = bundle["data"]["id"].as_str().unwrap().to_owned();
        let (status, _) = self
            .put(
                &format!("/bundles/{id}/account"),
                json!({"username": "clock_brand", "visible_name": "Clock Brand"}),
            )
            .await;
        assert_eq!(status, 200);
        (id, secret)
    }

    async fn video(&self, bundle: &str, date: &str) -> (u16, Value) {
        self.put(
            &format!("/bundles/{bundle}/videos/1"),
            json!({"video_type": "video", "description": "Launch", "target_publish_date": date, "video_url": "https://cdn.example.com/1.mp4"}),
        )
        .await
    }
}

/// The `(type, created_at, status)` of each delivery, in arrival order,
/// each checked against its signature (`t=` on the wall clock).
fn events(hook: &Receiver, secret: &str) -> Vec<(String, String, String)> {
    let verifier = Verifier::new(secret);
    hook.got
        .lock()
        .unwrap()
        .iter()
        .map(|(headers, raw)| {
            // Signed now, on the wall clock, whatever the key's clock says:
            // the default 300-second tolerance accepts it.
            let event = verifier.construct_event(headers, raw).unwrap();
            let body: Value = serde_json::from_slice(raw).unwrap();
            assert_eq!(event.created_at, body["created_at"].as_str().unwrap());
            (
                event.event_type.to_string(),
                event.created_at.clone(),
                body["data"]["status"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// The body of delivery `n` as JSON.
fn body_of(hook: &Receiver, n: usize) -> Value {
    serde_json::from_slice(&hook.got.lock().unwrap()[n].1).unwrap()
}

/// Waits until the receiver holds `n` deliveries (at most 5 s).
async fn wait_for(hook: &Receiver, n: usize) {
    for _ in 0..250 {
        if hook.got.lock().unwrap().len() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "the receiver got {} deliveries, not {n}",
        hook.got.lock().unwrap().len()
    );
}

/// Three days of an account manager's work, advanced in under a second:
/// the account to review after 48 h, the video posted on its date and in
/// review 12 h later, corrections back after 24 h, auto-finalization after
/// 48 h of review; every timestamp and every webhook on the key's clock, in
/// clock order.
#[tokio::test]
async fn a_simulated_clock_plays_the_account_managers_days() {
    let sandbox = Sandbox::start_with(options()).await.unwrap();
    let key = "sk_test_clock_days";
    let api = Api::new(&sandbox, key);
    let clock = sandbox.clock(key);
    let frozen = clock.freeze_at("2026-06-01T00:00:00Z".parse().unwrap()).await.unwrap();
    assert!(frozen.simulated);
    assert_eq!(frozen.now.to_rfc3339(), "2026-06-01T00:00:00+00:00");
    let hook = receiver().await;
    let (bundle, secret) = api.world(&hook.url).await;
    let (_, got) = api.get(&format!("/bundles/{bundle}")).await;
    assert_eq!(
        got["data"]["created_at"], "2026-06-01T00:00:00Z",
        "created on the key's clock"
    );

    let (status, published) = api.post(&format!("/bundles/{bundle}/publish"), Value::Null).await;
    assert_eq!(status, 200, "{published}");
    assert_eq!(
        published["data"]["account_status"], "published",
        "the manager has not built it yet"
    );
    assert_eq!(published["data"]["published_at"], "2026-06-01T00:00:00Z");
    let (status, video) = api.video(&bundle, "2026-06-03").await;
    assert_eq!(status, 200, "{video}");
    let (_, video) = api
        .post(&format!("/bundles/{bundle}/videos/1/publish"), Value::Null)
        .await;
    assert_eq!(video["data"]["status"], "scheduled", "a later date by the key's clock");

    let state = clock.get().await.unwrap();
    let steps: Vec<(String, String)> = state
        .pending
        .iter()
        .map(|p| (p.at.to_rfc3339(), p.step.clone()))
        .collect();
    assert_eq!(
        steps,
        [
            ("2026-06-03T00:00:00+00:00".to_owned(), "account.in_review".to_owned()),
            ("2026-06-03T00:00:00+00:00".to_owned(), "video.published".to_owned()),
        ]
    );

    let quiet = clock.advance("36h").await.unwrap();
    assert!(quiet.transitions.is_empty(), "{:?}", quiet.transitions);
    assert_eq!(quiet.now.to_rfc3339(), "2026-06-02T12:00:00+00:00");

    let day3 = clock.advance("1d").await.unwrap();
    let moves: Vec<(String, String, Option<String>, String)> = day3
        .transitions
        .iter()
        .map(|t| (t.at.to_rfc3339(), t.resource.clone(), t.from.clone(), t.to.clone()))
        .collect();
    assert_eq!(
        moves,
        [
            (
                "2026-06-03T00:00:00+00:00".into(),
                "account".into(),
                Some("published".into()),
                "in_review".into()
            ),
            (
                "2026-06-03T00:00:00+00:00".into(),
                "video".into(),
                Some("scheduled".into()),
                "published".into()
            ),
            (
                "2026-06-03T12:00:00+00:00".into(),
                "video".into(),
                Some("published".into()),
                "in_review".into()
            ),
        ]
    );
    let (_, video) = api.get(&format!("/bundles/{bundle}/videos/1")).await;
    assert_eq!(video["data"]["status"], "in_review");
    assert_eq!(video["data"]["published_at"], "2026-06-03T00:00:00Z");
    assert!(
        video["data"]["platform_url"]
            .as_str()
            .is_some_and(|u| u.starts_with("https://"))
    );

    // Corrections go back to the manager, who takes a day.
    let (status, _) = api
        .post(
            &format!("/bundles/{bundle}/account/corrections"),
            json!({"comment": "Shorter bio"}),
        )
        .await;
    assert_eq!(status, 200);
    let (_, account) = api.get(&format!("/bundles/{bundle}/account")).await;
    assert_eq!(account["data"]["status"], "pending_corrections");
    let back = clock.advance("24h").await.unwrap();
    assert_eq!(back.transitions.len(), 1, "{:?}", back.transitions);
    assert_eq!(back.transitions[0].to, "in_review");
    assert_eq!(back.transitions[0].at.to_rfc3339(), "2026-06-04T12:00:00+00:00");
    let (status, _) = api
        .post(&format!("/bundles/{bundle}/account/finalize"), Value::Null)
        .await;
    assert_eq!(status, 200);

    // auto_finalize_videos (the default): 48 h after review.
    let last = clock.advance("1d").await.unwrap();
    assert_eq!(last.transitions.len(), 1, "{:?}", last.transitions);
    assert_eq!(
        (last.transitions[0].to.as_str(), last.transitions[0].at.to_rfc3339()),
        ("finalized", "2026-06-05T12:00:00+00:00".to_owned())
    );

    wait_for(&hook, 12).await;
    let got = events(&hook, &secret);
    let got: Vec<(&str, &str, &str)> = got
        .iter()
        .map(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("bundle.created", "2026-06-01T00:00:00Z", "draft"),
            ("account.configured", "2026-06-01T00:00:00Z", "configured"),
            ("bundle.published", "2026-06-01T00:00:00Z", "published"),
            ("account.published", "2026-06-01T00:00:00Z", "published"),
            ("video.configured", "2026-06-01T00:00:00Z", "configured"),
            ("account.in_review", "2026-06-03T00:00:00Z", "in_review"),
            ("video.published", "2026-06-03T00:00:00Z", "published"),
            ("video.in_review", "2026-06-03T12:00:00Z", "in_review"),
            (
                "account.pending_corrections",
                "2026-06-03T12:00:00Z",
                "pending_corrections"
            ),
            ("account.in_review", "2026-06-04T12:00:00Z", "in_review"),
            ("account.finalized", "2026-06-04T12:00:00Z", "finalized"),
            ("video.finalized", "2026-06-05T12:00:00Z", "finalized"),
        ],
        "every event, in clock order, stamped by the key's clock"
    );
    sandbox
        .verify(Verify::event("account.in_review").key(key).times(2))
        .await
        .unwrap();
}

/// Two keys' clocks never move each other; a key on real time keeps
/// today's behaviour (the manager's work done at once).
#[tokio::test]
async fn two_keys_clocks_are_independent_and_real_time_is_unchanged() {
    let sandbox = Sandbox::start_with(options()).await.unwrap();
    let (a, b) = ("sk_test_clock_a", "sk_test_clock_b");
    sandbox
        .clock(a)
        .freeze_at("2026-06-01T00:00:00Z".parse().unwrap())
        .await
        .unwrap();
    let hook = receiver().await;
    let (api_a, api_b) = (Api::new(&sandbox, a), Api::new(&sandbox, b));
    let (bundle_a, _) = api_a.world(&hook.url).await;
    let (bundle_b, _) = api_b.world(&hook.url).await;
    api_a.post(&format!("/bundles/{bundle_a}/publish"), Value::Null).await;
    let (_, published_b) = api_b.post(&format!("/bundles/{bundle_b}/publish"), Value::Null).await;
    assert_eq!(
        published_b["data"]["account_status"], "in_review",
        "real time: at once, as before"
    );
    let real = sandbox.clock(b).get().await.unwrap();
    assert!(!real.simulated);
    assert!((chrono::Utc::now() - real.now).num_seconds().abs() < 60);

    sandbox.clock(a).advance("3d").await.unwrap();
    let b_after = sandbox.clock(b).get().await.unwrap();
    assert!(!b_after.simulated, "advancing a does not give b a clock");
    let (_, created_b) = api_b.get(&format!("/bundles/{bundle_b}")).await;
    assert!(
        created_b["data"]["created_at"].as_str().unwrap() > "2026-06-10",
        "b's timestamps are real: {created_b}"
    );
    let (_, account_a) = api_a.get(&format!("/bundles/{bundle_a}/account")).await;
    assert_eq!(account_a["data"]["status"], "in_review");
    assert_eq!(account_a["data"]["updated_at"], "2026-06-03T00:00:00Z");
    assert_eq!(
        sandbox.clock(a).get().await.unwrap().now.to_rfc3339(),
        "2026-06-04T00:00:00+00:00"
    );

    // Back on real time: timestamps follow the wall clock again.
    let back = sandbox.clock(a).real_time().await.unwrap();
    assert!(!back.simulated);
    let (_, later) = api_a
        .post("/bundles", json!({"bundle_type": "account_only", "country": "USA"}))
        .await;
    assert!(later["data"]["created_at"].as_str().unwrap() > "2026-06-10");
}

/// A key on real time: corrections come back to review at once, with the
/// event, so the account can be finalized (before, it stayed in
/// `pending_corrections` for ever). The same for a video.
#[tokio::test]
async fn corrections_on_real_time_come_back_to_review_at_once() {
    let sandbox = Sandbox::start_with(options()).await.unwrap();
    let api = Api::new(&sandbox, "sk_test_clock_corrections");
    let hook = receiver().await;
    let (bundle, _) = api.world(&hook.url).await;
    api.post(&format!("/bundles/{bundle}/publish"), Value::Null).await;
    let (status, account) = api
        .post(
            &format!("/bundles/{bundle}/account/corrections"),
            json!({"comment": "Another photo"}),
        )
        .await;
    assert_eq!(status, 200, "{account}");
    assert_eq!(
        account["data"]["status"], "in_review",
        "the manager's correction, done at once"
    );
    let (status, _) = api
        .post(&format!("/bundles/{bundle}/account/finalize"), Value::Null)
        .await;
    assert_eq!(status, 200, "the account can be finalized after corrections");

    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    api.video(&bundle, &today).await;
    let (_, video) = api
        .post(&format!("/bundles/{bundle}/videos/1/publish"), Value::Null)
        .await;
    assert_eq!(video["data"]["status"], "in_review");
    let (status, video) = api
        .post(
            &format!("/bundles/{bundle}/videos/1/corrections"),
            json!({"comment": "Louder"}),
        )
        .await;
    assert_eq!(status, 200, "{video}");
    assert_eq!(video["data"]["status"], "in_review");
    wait_for(&hook, 1).await;
    sandbox
        .verify(Verify::event("account.in_review").times(2))
        .await
        .unwrap();
    sandbox
        .verify(Verify::event("video.pending_corrections").times(1))
        .await
        .unwrap();
}

/// A clock never goes back; bad input is named; a key on real time cannot
/// be advanced.
#[tokio::test]
async fn the_clock_refuses_what_it_cannot_do() {
    let sandbox = Sandbox::start_with(options()).await.unwrap();
    let api = Api::new(&sandbox, "sk_test_clock_refusals");
    let (status, body) = api.post("/_sandbox/clock/advance", json!({"by": "1h"})).await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("NO_CLOCK")));
    let (status, body) = api
        .post(
            "/_sandbox/clock",
            json!({"frozen_at": "2026-06-01T00:00:00Z", "delays": {"account": "72h"}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["delays"]["account"], "72h");
    assert_eq!(body["data"]["delays"]["video"], "12h");
    let (status, body) = api
        .post("/_sandbox/clock/advance", json!({"to": "2026-05-31T00:00:00Z"}))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("CLOCK_BACKWARDS")),
        "{body}"
    );
    for (bad, field) in [
        (json!({"by": "soon"}), "by"),
        (json!({"by": "1h", "to": "2026-06-02T00:00:00Z"}), "by"),
        (json!({"to": "tomorrow"}), "to"),
        (json!({"step": "1h"}), "step"),
    ] {
        let (status, body) = api.post("/_sandbox/clock/advance", bad.clone()).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(body["error"]["details"]["fields"][0]["field"], field, "{bad}: {body}");
    }
    let (status, body) = api.post("/_sandbox/clock", json!({"delays": {"review": "1h"}})).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["details"]["fields"][0]["message"]
            .as_str()
            .unwrap()
            .contains("delays.review")
    );
    let (status, body) = api
        .post("/_sandbox/clock", json!({"frozen_at": "2027-01-01T00:00:00Z"}))
        .await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("CLOCK_SET")));
    let refused = sandbox
        .clock("sk_test_clock_refusals")
        .advance_to("2020-01-01T00:00:00Z".parse().unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(refused, SandboxError::Control { status: 409, ref code, .. } if code == "CLOCK_BACKWARDS"),
        "{refused}"
    );
    let (status, _) = reqwest::Client::new()
        .post(format!("{}/_sandbox/clock", sandbox.url()))
        .json(&json!({}))
        .send()
        .await
        .map(|r| (r.status().as_u16(), ()))
        .unwrap();
    assert_eq!(status, 401, "a clock is per key");
}

/// The manager flags a video on demand: at its next step it shows
/// `download_issue: true` and waits; `fixBundleVideoDownload` lets it go on.
#[tokio::test]
async fn a_flagged_download_waits_for_its_fix() {
    let sandbox = Sandbox::start_with(options()).await.unwrap();
    let key = "sk_test_clock_download";
    let api = Api::new(&sandbox, key);
    let clock = sandbox.clock(key);
    clock.freeze_at("2026-06-01T09:00:00Z".parse().unwrap()).await.unwrap();
    let hook = receiver().await;
    let (bundle, _) = api.world(&hook.url).await;
    api.post(&format!("/bundles/{bundle}/publish"), Value::Null).await;
    api.video(&bundle, "2026-06-01").await;
    clock.flag_download_issue(&bundle, 1).await.unwrap();
    let (_, video) = api
        .post(&format!("/bundles/{bundle}/videos/1/publish"), Value::Null)
        .await;
    assert_eq!(video["data"]["status"], "published", "posted today, by the key's clock");
    let held = clock.advance("12h").await.unwrap();
    let video_moves: Vec<_> = held.transitions.iter().filter(|t| t.resource == "video").collect();
    assert_eq!(video_moves.len(), 1, "{:?}", held.transitions);
    assert_eq!(
        (video_moves[0].to.as_str(), video_moves[0].event.as_deref()),
        ("published", None)
    );
    let (_, video) = api.get(&format!("/bundles/{bundle}/videos/1")).await;
    assert_eq!(video["data"]["download_issue"], true);
    assert_eq!(video["data"]["status"], "published");
    let nothing = clock.advance("3d").await.unwrap();
    assert!(
        nothing.transitions.iter().all(|t| t.resource != "video"),
        "it goes no further: {:?}",
        nothing.transitions
    );
    let (status, fixed) = api
        .post(
            &format!("/bundles/{bundle}/videos/1/fix-download"),
            json!({"video_url": "https://cdn.example.com/fixed.mp4"}),
        )
        .await;
    assert_eq!(status, 200, "{fixed}");
    assert_eq!(fixed["data"]["download_issue"], false);
    assert_eq!(
        fixed["data"]["status"], "in_review",
        "the manager's held step, done on the fix"
    );
    let (status, refused) = api
        .post(
            "/_sandbox/manager",
            json!({"bundle_id": bundle, "position": 9, "flag": "download_issue"}),
        )
        .await;
    assert_eq!(status, 404, "{refused}");
    let (status, _) = api
        .post(
            "/_sandbox/manager",
            json!({"bundle_id": bundle, "position": 1, "flag": "late"}),
        )
        .await;
    assert_eq!(status, 400);
}

/// Deliveries of one key arrive in clock order; with duplicates on, every
/// event arrives twice with the same `TokPortal-Event-Id`; a `hold` fault
/// makes one arrive after the next.
#[tokio::test]
async fn webhooks_arrive_in_order_duplicated_or_held_on_demand() {
    let mut o = options();
    o.webhook_duplicates = 1.0;
    let sandbox = Sandbox::start_with(o).await.unwrap();
    let key = "sk_test_clock_order";
    let api = Api::new(&sandbox, key);
    let hook = receiver().await;
    let (bundle, _) = api.world(&hook.url).await;
    wait_for(&hook, 4).await;
    let got = hook.got.lock().unwrap().clone();
    let ids: Vec<&str> = got
        .iter()
        .map(|(h, _)| h["tokportal-event-id"].to_str().unwrap())
        .collect();
    assert_eq!(ids[0], ids[1], "the same event twice");
    assert_eq!(ids[2], ids[3]);
    assert_ne!(ids[0], ids[2]);
    assert_eq!(
        body_of(&hook, 0)["type"],
        "bundle.created",
        "in the order they happened"
    );
    assert_eq!(body_of(&hook, 2)["type"], "account.configured");

    // Held back: the next delivery arrives after the one that follows it.
    let sandbox = Sandbox::start_with(options()).await.unwrap();
    let api = Api::new(&sandbox, key);
    let clock = sandbox.clock(key);
    clock.freeze_at("2026-06-01T00:00:00Z".parse().unwrap()).await.unwrap();
    let hook = receiver().await;
    let (bundle2, _) = api.world(&hook.url).await;
    wait_for(&hook, 2).await;
    api.post(&format!("/bundles/{bundle2}/publish"), Value::Null).await;
    wait_for(&hook, 4).await;
    let (status, _) = api.post("/_sandbox/faults", json!({"fault": "hold"})).await;
    assert_eq!(status, 200);
    api.video(&bundle2, "2026-06-01").await;
    api.post(&format!("/bundles/{bundle2}/videos/1/publish"), Value::Null)
        .await;
    clock.advance("2d").await.unwrap();
    wait_for(&hook, 8).await;
    let order: Vec<String> = (4..8)
        .map(|n| body_of(&hook, n)["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        &order[..2],
        ["video.published", "video.configured"],
        "video.configured was held behind the next delivery: {order:?}"
    );
    drop(bundle);
}

/// `verify` counts everything since start or reset, per key, and says what
/// it found and what came closest when the count does not hold.
#[tokio::test]
async fn verify_counts_what_happened() {
    let mut o = options();
    o.journal = 2;
    let sandbox = Sandbox::start_with(o).await.unwrap();
    let (a, b) = ("sk_test_verify_a", "sk_test_verify_b");
    let client = sandbox.client(a).unwrap();
    let create = tokportal::OperationArgs::new().body(json!({"bundle_type": "account_only", "country": "USA"}));
    client
        .request_operation("createBundle", create.clone().dry_run())
        .await
        .unwrap();
    for _ in 0..3 {
        client.request_operation("createBundle", create.clone()).await.unwrap();
    }
    sandbox.client(b).unwrap().get_current_user().send().await.unwrap();
    assert_eq!(
        sandbox
            .verify(Verify::operation("createBundle").key(a).dry_run(false).times(3))
            .await
            .unwrap(),
        3,
        "counted past the journal's ring of 2"
    );
    sandbox
        .verify(Verify::operation("createBundle").dry_run(true).times(1))
        .await
        .unwrap();
    sandbox
        .verify(Verify::operation("createBundle").key(b).times(0))
        .await
        .unwrap();
    sandbox
        .verify(Verify::operation("getCurrentUser").status(200).at_least(1))
        .await
        .unwrap();
    match sandbox
        .verify(Verify::operation("createBundle").key(a).at_most(1))
        .await
    {
        Err(SandboxError::NotVerified {
            found,
            closest,
            message,
        }) => {
            assert_eq!(found, 4);
            assert!(message.contains("at most 1"), "{message}");
            assert!(!closest.is_empty());
            assert!(closest.iter().all(|e| e["operation"] == "createBundle"));
        }
        other => panic!("{other:?}"),
    }
    let api = Api::new(&sandbox, a);
    let (status, body) = api
        .post("/_sandbox/verify", json!({"operation": "createBundle", "times": 9}))
        .await;
    assert_eq!(status, 409);
    assert_eq!(body["error"]["details"]["found"], 4);
    let (status, _) = api.post("/_sandbox/reset", json!({})).await;
    assert_eq!(status, 200);
    sandbox
        .verify(Verify::operation("createBundle").key(a).times(0))
        .await
        .unwrap();
    sandbox
        .verify(Verify::operation("getCurrentUser").key(b).times(1))
        .await
        .unwrap();
}

/// On a simulated clock a video's corrections come back after the
/// `corrections` delay; an unpublished bundle's waiting steps are dropped,
/// so nothing moves it later; `DELETE clock` drops what still waits.
#[tokio::test]
async fn video_corrections_wait_and_an_unpublished_bundle_is_left_alone() {
    let sandbox = Sandbox::start_with(options()).await.unwrap();
    let key = "sk_test_clock_video_corrections";
    let api = Api::new(&sandbox, key);
    let clock = sandbox.clock(key);
    clock
        .freeze(
            Some("2026-06-01T00:00:00Z".parse().unwrap()),
            &[("corrections", "6h"), ("auto_finalize", "30d")],
        )
        .await
        .unwrap();
    let hook = receiver().await;
    let (bundle, _) = api.world(&hook.url).await;
    api.post(&format!("/bundles/{bundle}/publish"), Value::Null).await;
    api.video(&bundle, "2026-06-01").await;
    api.post(&format!("/bundles/{bundle}/videos/1/publish"), Value::Null)
        .await;
    let reviewed = clock.advance("12h").await.unwrap();
    assert_eq!(reviewed.transitions.last().map(|t| t.to.as_str()), Some("in_review"));
    let (status, video) = api
        .post(
            &format!("/bundles/{bundle}/videos/1/corrections"),
            json!({"comment": "Brighter"}),
        )
        .await;
    assert_eq!(
        (status, video["data"]["status"].as_str()),
        (200, Some("pending_corrections"))
    );
    let early = clock.advance("5h").await.unwrap();
    assert!(early.transitions.is_empty(), "{:?}", early.transitions);
    let back = clock.advance("1h").await.unwrap();
    assert_eq!(back.transitions.len(), 1);
    assert_eq!(
        (
            back.transitions[0].from.as_deref(),
            back.transitions[0].to.as_str(),
            back.transitions[0].event.as_deref()
        ),
        (Some("pending_corrections"), "in_review", Some("video.in_review"))
    );
    assert_eq!(back.transitions[0].at.to_rfc3339(), "2026-06-01T18:00:00+00:00");

    // Another bundle, published then unpublished: its account never reaches review.
    let (status, other) = api
        .post("/bundles", json!({"bundle_type": "account_only", "country": "USA"}))
        .await;
    assert_eq!(status, 201);
    let other = other["data"]["id"].as_str().unwrap().to_owned();
    api.put(
        &format!("/bundles/{other}/account"),
        json!({"username": "other_brand", "visible_name": "Other"}),
    )
    .await;
    api.post(&format!("/bundles/{other}/publish"), Value::Null).await;
    let waiting = clock.get().await.unwrap();
    assert!(waiting.pending.iter().any(|p| p.bundle_id == other));
    let (status, _) = api.post(&format!("/bundles/{other}/unpublish"), Value::Null).await;
    assert_eq!(status, 200);
    assert!(clock.get().await.unwrap().pending.iter().all(|p| p.bundle_id != other));
    let later = clock.advance("3d").await.unwrap();
    let accounts: Vec<_> = later.transitions.iter().filter(|t| t.resource == "account").collect();
    assert_eq!(
        accounts.len(),
        1,
        "the first bundle's account only: {:?}",
        later.transitions
    );
    let (_, account) = api.get(&format!("/bundles/{other}/account")).await;
    assert_eq!(account["data"]["status"], "configured");

    let (status, dropped) = api.send(reqwest::Method::DELETE, "/_sandbox/clock", None).await;
    assert_eq!(status, 200);
    assert_eq!(
        dropped["data"]["dropped"], 1,
        "the first bundle's auto-finalization still waited"
    );
}
