//! The inspector page (`GET /_sandbox/`) in a real browser: Debian's
//! `chromium`, driven headless over WebDriver by `chromedriver` and
//! fantoccini. Without them the test says it was skipped and how to install
//! them; in CI (`.ci/run` installs them) it must run.
//!
//! It prints the page's load time and how long a request took to appear
//! (printed, never asserted: a test asserts what the page shows), and
//! saves a screenshot to `target/inspector.png`.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use tokportal::sandbox::{Sandbox, SandboxOptions};

/// How long the test waits for something to show before it fails rather
/// than hang: a guard, not a measure (it asserts no speed).
const PATIENCE: Duration = Duration::from_secs(30);

async fn browser(driver: &str, chromium: &std::path::Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1440,1000", "--no-first-run"],
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(driver)
        .await
        .expect("a WebDriver session in chromium")
}

/// A webhook receiver on 127.0.0.1 that counts what it gets.
async fn receiver() -> (SocketAddr, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let counted = counted.clone();
            async move {
                counted.fetch_add(1, Ordering::SeqCst);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, hits)
}

/// Waits until `check` holds; fails saying what was awaited should it
/// never hold (after [`PATIENCE`], a hang guard).
async fn until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let poll = async {
        while !check().await {
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    };
    if tokio::time::timeout(PATIENCE, poll).await.is_err() {
        panic!("{what} never showed (waited {PATIENCE:?})");
    }
}

async fn rows(page: &Client, table: &str) -> Vec<String> {
    let mut texts = Vec::new();
    for row in page
        .find_all(Locator::Css(&format!("#{table} tbody tr")))
        .await
        .unwrap_or_default()
    {
        texts.push(row.text().await.unwrap_or_default());
    }
    texts
}

async fn text(page: &Client, css: &str) -> String {
    match page.find(Locator::Css(css)).await {
        Ok(e) => e.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inspector_shows_requests_details_deliveries_and_resets_in_chromium() {
    let Some(chromium) =
        common::required_program("chromium|chromium-browser|google-chrome", "apt-get install -y chromium")
    else {
        return;
    };
    let Some(driver_path) = common::required_program("chromedriver", "apt-get install -y chromium-driver") else {
        return;
    };
    let mut options = SandboxOptions::default();
    options.webhook_retry_delays = Vec::new();
    let sandbox = Sandbox::start_with(options).await.unwrap();
    let driver = common::Chromedriver::start(&driver_path);
    let page = browser(&driver.url, &chromium).await;
    let inspector = format!("{}/_sandbox/", sandbox.url());
    page.goto(&inspector).await.unwrap();
    until("the live feed", || async { text(&page, "#live").await == "live" }).await;
    let load_ms = page
        .execute(
            "const n = performance.getEntriesByType('navigation')[0]; return n.loadEventEnd - n.startTime;",
            vec![],
        )
        .await
        .unwrap()
        .as_f64()
        .unwrap_or(f64::NAN);

    // Every control has a name a screen reader can say.
    let unnamed = page
        .execute(
            "return [...document.querySelectorAll('button, select, input')].filter(e => \
               !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.textContent.trim()).length;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(unnamed, json!(0), "controls without a label");

    // Requests made with the SDK and with a plain HTTP client appear without
    // a reload: a mark set on this page now is still there when they show.
    page.execute("window.stillTheSamePage = true;", vec![]).await.unwrap();
    let client = sandbox.client("sk_test_inspector").unwrap();
    let made = Instant::now();
    client.get_current_user().send().await.unwrap();
    let refused = reqwest::Client::new()
        .post(format!("{}/bundles", sandbox.url()))
        .header("x-api-key", "sk_test_inspector")
        .json(&json!({"bundle_type": "account_and_videos", "country": "Atlantis"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    until("two requests in the log", || async {
        rows(&page, "requests").await.len() == 2
    })
    .await;
    let appeared = made.elapsed();
    let same = page
        .execute("return window.stillTheSamePage === true;", vec![])
        .await
        .unwrap();
    assert_eq!(same, json!(true), "the page was reloaded to show the requests");

    // The 4xx filter shows the failed one only.
    page.find(Locator::Css("#filter-status"))
        .await
        .unwrap()
        .select_by_value("4xx")
        .await
        .unwrap();
    let shown = rows(&page, "requests").await;
    assert_eq!(shown.len(), 1, "{shown:?}");
    assert!(
        shown[0].contains("400") && shown[0].contains("createBundle"),
        "{shown:?}"
    );

    // Its detail, opened from the keyboard, names the failing field, and
    // its curl carries the key as a variable, never the key itself.
    let open = page.find(Locator::Css("#requests tbody tr button")).await.unwrap();
    open.send_keys("\u{E007}").await.unwrap();
    until("the violations of the failed request", || async {
        text(&page, "#violations").await.contains("country")
    })
    .await;
    let curl = text(&page, "#curl").await;
    assert!(
        curl.contains("$TOKPORTAL_API_KEY") && curl.contains("Atlantis"),
        "{curl}"
    );
    let detail = text(&page, "#detail").await;
    assert!(
        !detail.contains("sk_test_inspector"),
        "the key is on the page: {detail}"
    );

    // A delivery to a local receiver, then a resend: a new attempt arrives.
    let (hook, hits) = receiver().await;
    client
        .request_operation(
            "createWebhookEndpoint",
            tokportal::OperationArgs::new()
                .body(json!({"url": format!("http://{hook}/hook"), "events": ["bundle.created"]})),
        )
        .await
        .unwrap();
    client
        .request_operation(
            "createBundle",
            tokportal::OperationArgs::new().body(json!({"bundle_type": "account_only", "country": "USA"})),
        )
        .await
        .unwrap();
    until("the first delivery", || async { hits.load(Ordering::SeqCst) == 1 }).await;
    until("the delivery in the page", || async {
        rows(&page, "deliveries")
            .await
            .iter()
            .any(|r| r.contains("bundle.created") && r.contains("succeeded"))
    })
    .await;
    until("the resource and credits of the key", || async {
        let keys = text(&page, "#keys").await;
        keys.contains("1 bundles") && keys.contains("Credits: ")
    })
    .await;
    page.find(Locator::Css("#deliveries tbody tr button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until("the resent attempt at the receiver", || async {
        hits.load(Ordering::SeqCst) == 2
    })
    .await;
    until("two attempts in the page", || async {
        text(&page, "#deliveries tbody tr td:nth-child(5)").await == "2"
    })
    .await;

    // A key on a simulated clock: its clock and the manager's next step are
    // shown, and the page's control advances to it.
    let timed = "sk_test_inspector_clock";
    let clock = sandbox.clock(timed);
    clock.freeze_at("2026-06-01T00:00:00Z".parse().unwrap()).await.unwrap();
    let timed_client = sandbox.client(timed).unwrap();
    let made = timed_client
        .request_operation(
            "createBundle",
            tokportal::OperationArgs::new().body(json!({"bundle_type": "account_only", "country": "USA"})),
        )
        .await
        .unwrap();
    let bundle_id = match &made.body {
        tokportal::ResponseBody::Json(v) => v["data"]["id"].as_str().unwrap().to_owned(),
        other => panic!("{other:?}"),
    };
    let path = tokportal::OperationArgs::new().path("id", bundle_id.as_str());
    timed_client
        .request_operation(
            "configureBundleAccount",
            path.clone()
                .body(json!({"username": "inspector_clock", "visible_name": "Clock"})),
        )
        .await
        .unwrap();
    timed_client.request_operation("publishBundle", path).await.unwrap();
    until("the key's clock and its waiting step", || async {
        let keys = text(&page, "#keys").await;
        keys.contains("Clock: 2026-06-01T00:00:00Z (simulated)")
            && keys.contains("2026-06-03T00:00:00Z account.in_review")
    })
    .await;
    page.find(Locator::Css("#keys button.advance"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until("the clock at the step, the account in review", || async {
        let keys = text(&page, "#keys").await;
        keys.contains("Clock: 2026-06-03T00:00:00Z (simulated)")
            && keys.contains("account in_review")
            && keys.contains("Nothing waits on the clock")
    })
    .await;
    assert_eq!(clock.get().await.unwrap().now.to_rfc3339(), "2026-06-03T00:00:00+00:00");

    // The screenshot the README shows: every request again, with a detail open.
    page.find(Locator::Css("#filter-status"))
        .await
        .unwrap()
        .select_by_value("")
        .await
        .unwrap();
    let png = page.screenshot().await.unwrap();
    let target = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("inspector.png");
    std::fs::write(&target, &png).unwrap();
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000);

    // Reset empties the view.
    page.find(Locator::Css("#reset")).await.unwrap().click().await.unwrap();
    until("an empty view", || async {
        rows(&page, "requests").await.is_empty()
            && rows(&page, "deliveries").await.is_empty()
            && text(&page, "#keys").await.contains("No key has called yet")
    })
    .await;
    let state: Value = reqwest::get(format!("{}/_sandbox/state", sandbox.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state["data"], json!([]));

    eprintln!(
        "inspector: page loaded in {load_ms:.0} ms; requests appeared {} ms after they were made; screenshot {}",
        appeared.as_millis(),
        target.display()
    );
    page.close().await.unwrap();
    drop(driver);
    sandbox.shutdown().await;
}
