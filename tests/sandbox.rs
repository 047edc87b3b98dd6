//! `tokportal::sandbox` as any HTTP client sees it: every operation answers
//! as the spec documents, bad requests are named field by field, keys,
//! idempotency, rate limits, faults, dry runs, credits and signed webhooks.
//! Everything runs on 127.0.0.1.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use tokportal::operations::{OPERATIONS, Operation, find};
use tokportal::sandbox::{Sandbox, SandboxOptions};
use tokportal::webhooks::Verifier;

const KEY: &str = "sk_test_sandbox_suite";

/// What a webhook receiver got: each delivery's headers and body.
type Received = Arc<Mutex<Vec<(HeaderMap, Vec<u8>)>>>;

/// The vendored spec, as JSON.
fn spec() -> Value {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/spec/openapi.yaml")).unwrap();
    serde_norway::from_str(&text).unwrap()
}

/// A raw HTTP client of the sandbox that checks every answer against the spec.
struct Api {
    base: String,
    key: String,
    http: reqwest::Client,
    spec: Value,
    seen: Mutex<BTreeMap<&'static str, Vec<u16>>>,
}

struct Answer {
    status: u16,
    body: Value,
    headers: HeaderMap,
}

impl Api {
    fn new(sandbox: &Sandbox, key: &str) -> Self {
        Self {
            base: sandbox.url().to_owned(),
            key: key.into(),
            http: reqwest::Client::new(),
            spec: spec(),
            seen: Mutex::new(BTreeMap::new()),
        }
    }

    fn url(&self, op: &Operation, path: &[(&str, &str)]) -> String {
        let mut p = op.path.to_owned();
        for (name, value) in path {
            p = p.replace(&format!("{{{name}}}"), value);
        }
        format!("{}{p}", self.base)
    }

    async fn call(&self, id: &str, path: &[(&str, &str)], query: &[(&str, &str)], body: Option<Value>) -> Answer {
        let op = find(id).unwrap();
        let mut request = self
            .http
            .request(op.method.to_reqwest(), self.url(op, path))
            .header("x-api-key", &self.key)
            .query(query);
        if let Some(b) = body {
            request = request.json(&b);
        }
        self.check(op, request.send().await.unwrap()).await
    }

    async fn form(
        &self,
        id: &str,
        path: &[(&str, &str)],
        fields: &[(&str, &str)],
        file: (&str, &str, Vec<u8>),
    ) -> Answer {
        let op = find(id).unwrap();
        let mut form = reqwest::multipart::Form::new();
        for (k, v) in fields {
            form = form.text(k.to_string(), v.to_string());
        }
        let part = reqwest::multipart::Part::bytes(file.2)
            .file_name(file.0.to_owned())
            .mime_str(file.1)
            .unwrap();
        form = form.part("file", part);
        let response = self
            .http
            .post(self.url(op, path))
            .header("x-api-key", &self.key)
            .multipart(form)
            .send()
            .await
            .unwrap();
        self.check(op, response).await
    }

    /// The answer's status is documented for `op`, its content type is the
    /// documented one, its JSON body validates against the documented schema,
    /// and it carries the documented headers.
    async fn check(&self, op: &'static Operation, response: reqwest::Response) -> Answer {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.unwrap();
        let documented =
            &self.spec["paths"][op.path][op.method.as_str().to_lowercase()]["responses"][status.to_string()];
        assert!(
            documented.is_object(),
            "{}: HTTP {status} is not documented: {}",
            op.id,
            String::from_utf8_lossy(&bytes)
        );
        for h in [
            "x-tokportal-request-id",
            "x-tokportal-api-version",
            "x-ratelimit-limit",
            "x-ratelimit-remaining",
            "x-ratelimit-reset",
        ] {
            assert!(headers.contains_key(h), "{}: no {h}", op.id);
        }
        let body = match documented.get("content").and_then(Value::as_object) {
            None => {
                assert!(bytes.is_empty(), "{}: HTTP {status} documents no body", op.id);
                Value::Null
            }
            Some(content) => {
                let ct = headers
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                let media = ct.split(';').next().unwrap_or_default().trim();
                let schema = &content
                    .get(media)
                    .unwrap_or_else(|| panic!("{}: content type {ct} is not documented", op.id))["schema"];
                if media == "application/json" {
                    let body: Value = serde_json::from_slice(&bytes).unwrap();
                    let schema = match schema.get("$ref").and_then(Value::as_str) {
                        Some(r) => self.spec.pointer(r.trim_start_matches('#')).unwrap().clone(),
                        None => schema.clone(),
                    };
                    let validator = jsonschema::options()
                        .should_validate_formats(true)
                        .build(&schema)
                        .unwrap();
                    let errors: Vec<String> = validator.iter_errors(&body).map(|e| e.to_string()).collect();
                    assert!(errors.is_empty(), "{} HTTP {status}: {errors:?} in {body}", op.id);
                    body
                } else {
                    Value::String(String::from_utf8(bytes.to_vec()).unwrap())
                }
            }
        };
        self.seen.lock().unwrap().entry(op.id).or_default().push(status);
        Answer { status, body, headers }
    }
}

/// A webhook receiver on 127.0.0.1 that records deliveries and fails the
/// first `fail_first` of them with a 500.
struct Receiver {
    url: String,
    got: Received,
}

async fn receiver(fail_first: usize) -> Receiver {
    let got: Received = Arc::default();
    let seen = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let seen = seen.clone();
            async move {
                let mut seen = seen.lock().unwrap();
                seen.push((headers, body.to_vec()));
                if seen.len() <= fail_first {
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    axum::http::StatusCode::OK
                }
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
    o.rate_limit = 10_000;
    o.webhook_retry_delays = vec![Duration::from_millis(50), Duration::from_millis(50)];
    o
}

fn json(r: &tokportal::OperationResponse) -> Value {
    match &r.body {
        tokportal::ResponseBody::Json(v) => v.clone(),
        other => panic!("not JSON: {other:?}"),
    }
}

fn today() -> String {
    chrono::Utc::now().format("%Y-%m-%d").to_string()
}

fn s(v: &Value) -> String {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}")).to_owned()
}

/// What the tour's parts hand on to the later ones.
#[derive(Default)]
struct Tour {
    /// The webhook receiver's URL.
    hook: String,
    /// The bundle taken through every state, and one more made in bulk.
    bundle: String,
    other: String,
    /// The account `finalizeBundleAccount` delivered, and the seeded one.
    delivered: String,
    seeded: String,
    /// The finalized video.
    video: String,
    /// The webhook endpoint, deleted last.
    endpoint: String,
}

/// One part of the tour: its calls, on the tour so far.
type Part<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + 'a>>;

/// A part of the tour as a function: the API, the tour so far, its calls.
type PartFn = for<'a> fn(&'a Api, &'a mut Tour) -> Part<'a>;

/// The tour's parts, in order; a failing one is named (see [`Naming`]).
const PARTS: &[(&str, PartFn)] = &[
    ("public and account reads", reads),
    ("a bundle and its account", bundle_and_account),
    ("the bundle's videos", videos),
    ("unpublishing", unpublishing),
    ("accounts", accounts),
    ("webhook endpoints and deliveries", webhooks),
    ("uploads", uploads),
    ("analytics", analytics),
    ("comment tasks", comment_tasks),
    ("the endpoint deleted", endpoint_deleted),
];

/// Names the part of the tour that panicked, as the panic unwinds.
struct Naming(&'static str);

impl Drop for Naming {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "every_operation_answers_as_the_spec_documents: failed in the part `{}`",
                self.0
            );
        }
    }
}

/// Every one of the 78 operations is driven to its success status through
/// a realistic sequence, and every answer on the way (errors included)
/// validates against the spec.
#[tokio::test]
async fn every_operation_answers_as_the_spec_documents() {
    let sandbox = Sandbox::start_with(options()).await.unwrap();
    let api = Api::new(&sandbox, KEY);
    let hook = receiver(0).await;
    let mut tour = Tour {
        hook: hook.url.clone(),
        ..Tour::default()
    };
    for (name, part) in PARTS {
        let _naming = Naming(name);
        part(&api, &mut tour).await;
    }
    let seen = api.seen.lock().unwrap();
    let missing: Vec<&str> = OPERATIONS
        .iter()
        .filter(|op| !seen.get(op.id).is_some_and(|s| s.contains(&op.success_status)))
        .map(|op| op.id)
        .collect();
    assert!(missing.is_empty(), "never answered with success: {missing:?}");
    assert_eq!(seen.len(), 78);
}

/// The public reads and the key's own, each a success.
fn reads<'a>(api: &'a Api, _tour: &'a mut Tour) -> Part<'a> {
    Box::pin(async move {
        for id in [
            "getCurrentUser",
            "listCountries",
            "listPlatforms",
            "getCreditCosts",
            "getCreditBalance",
            "listCreditTransactions",
            "listWebhookEvents",
        ] {
            assert!(api.call(id, &[], &[], None).await.status < 300);
        }
    })
}

/// A bundle made (and one in bulk), read, changed, and its account taken to delivered.
fn bundle_and_account<'a>(api: &'a Api, tour: &'a mut Tour) -> Part<'a> {
    Box::pin(async move {
        let bundle = api
            .call("createBundle", &[], &[], Some(json!({"bundle_type": "account_and_videos", "country": "USA", "videos_quantity": 3, "external_ref": "suite-1"})))
            .await;
        assert_eq!(bundle.status, 201);
        assert_eq!(bundle.headers["x-ratelimit-limit"], "10000");
        let b = s(&bundle.body["data"]["id"]);
        let bulk = api
            .call(
                "createBundlesBulk",
                &[],
                &[],
                Some(json!({"platforms": ["tiktok"], "country": "USA", "accounts_count": 1})),
            )
            .await;
        let other = s(&bulk.body["data"]["bundles"][0]["id"]);
        let id = [("id", b.as_str())];
        assert_eq!(
            api.call("listBundles", &[], &[("bundle_type", "account_and_videos")], None)
                .await
                .body["pagination"]["total"],
            1
        );
        api.call("getBundle", &id, &[], None).await;
        api.call("updateBundle", &id, &[], Some(json!({"title": "Suite"})))
            .await;
        assert_eq!(
            api.call("getBundlePublishReadiness", &id, &[], None).await.body["data"]["ready"],
            false
        );
        assert_eq!(api.call("publishBundle", &id, &[], None).await.status, 409);
        api.call("addVideoSlots", &id, &[], Some(json!({"quantity": 1}))).await;
        api.call("addEditSlots", &id, &[], Some(json!({"quantity": 1}))).await;
        api.call("getBundleAccount", &id, &[], None).await;
        let profile = json!({"username": "suite_user", "visible_name": "Suite"});
        api.call("configureBundleAccount", &id, &[], Some(profile.clone()))
            .await;
        assert_eq!(
            api.call("publishBundle", &id, &[], None).await.body["data"]["account_status"],
            "in_review"
        );
        api.call(
            "requestBundleAccountCorrections",
            &id,
            &[],
            Some(json!({"comment": "Shorter name"})),
        )
        .await;
        api.call("configureBundleAccount", &id, &[], Some(profile)).await;
        let account = api.call("finalizeBundleAccount", &id, &[], None).await;
        let delivered = s(&account.body["data"]["id"]);
        tour.bundle = b;
        tour.other = other;
        tour.delivered = delivered;
    })
}

/// The bundle's videos: configured (one flagged and fixed), imported, published, corrected, reset, unscheduled and finalized.
fn videos<'a>(api: &'a Api, tour: &'a mut Tour) -> Part<'a> {
    Box::pin(async move {
        let b = tour.bundle.clone();
        let id = [("id", b.as_str())];
        api.call("listBundleVideos", &id, &[], None).await;
        let one = [("id", b.as_str()), ("position", "1")];
        api.call("getBundleVideo", &one, &[], None).await;
        let video = |url: &str, date: &str| json!({"video_type": "video", "description": "A video", "target_publish_date": date, "video_url": url});
        let flagged = api
            .call(
                "configureBundleVideo",
                &one,
                &[],
                Some(video("https://cdn.example.com/broken.mp4", &today())),
            )
            .await;
        assert_eq!(flagged.body["data"]["download_issue"], true);
        api.call(
            "fixBundleVideoDownload",
            &one,
            &[],
            Some(json!({"video_url": "https://cdn.example.com/ok.mp4"})),
        )
        .await;
        api.call("patchBundleVideo", &one, &[], Some(json!({"name": "First"})))
            .await;
        let batch = api.call("batchConfigureBundleVideos", &id, &[], Some(json!({"videos": [{"position": 2, "video_type": "video", "description": "Later", "target_publish_date": "2099-01-01", "video_url": "https://cdn.example.com/2.mp4"}]}))).await;
        assert_eq!(batch.body["data"]["configured"], 1);
        let csv = format!(
            "video_type,description,target_publish_date,video_url\nvideo,From CSV,{},https://cdn.example.com/3.mp4\nvideo,,bad-date,\n",
            today()
        );
        let import = api
            .form(
                "importBundleVideosCsv",
                &id,
                &[],
                ("videos.csv", "text/csv", csv.into_bytes()),
            )
            .await;
        assert_eq!(
            (
                import.body["data"]["configured"].clone(),
                import.body["data"]["errors"].as_array().unwrap().len()
            ),
            (json!(1), 1)
        );
        assert_eq!(
            api.call("publishBundleVideo", &one, &[], None).await.body["data"]["status"],
            "in_review"
        );
        // On real time the manager's correction is done at once: back in review.
        assert_eq!(
            api.call(
                "requestBundleVideoCorrections",
                &one,
                &[],
                Some(json!({"comment": "Louder"})),
            )
            .await
            .body["data"]["status"],
            "in_review"
        );
        let two = [("id", b.as_str()), ("position", "2")];
        api.call("resetBundleVideo", &two, &[], None).await;
        api.call(
            "configureBundleVideo",
            &two,
            &[],
            Some(video("https://cdn.example.com/2.mp4", "2099-01-01")),
        )
        .await;
        let all = api.call("publishAllBundleVideos", &id, &[], None).await;
        assert_eq!(all.body["data"]["published"], 2, "video 1 is in review, not configured");
        assert_eq!(
            api.call("unscheduleBundleVideo", &two, &[], None).await.body["data"]["status"],
            "configured"
        );
        let three = [("id", b.as_str()), ("position", "3")];
        let finalized = api.call("finalizeBundleVideo", &three, &[], None).await;
        let video_id = s(&finalized.body["data"]["id"]);
        tour.video = video_id;
    })
}

/// A finalized account stays published; a bundle in review can be unpublished.
fn unpublishing<'a>(api: &'a Api, tour: &'a mut Tour) -> Part<'a> {
    Box::pin(async move {
        let (b, other) = (tour.bundle.clone(), tour.other.clone());
        let id = [("id", b.as_str())];
        let other_id = [("id", other.as_str())];
        assert_eq!(
            api.call("unpublishBundle", &id, &[], None).await.status,
            409,
            "a finalized account stays published"
        );
        api.call(
            "configureBundleAccount",
            &other_id,
            &[],
            Some(json!({"username": "other_user", "visible_name": "Other"})),
        )
        .await;
        api.call("publishBundle", &other_id, &[], None).await;
        assert_eq!(
            api.call("unpublishBundle", &other_id, &[], None).await.body["data"]["status"],
            "draft"
        );
    })
}

/// The seeded and the delivered account: reads, secrets, refreshes and edit requests.
fn accounts<'a>(api: &'a Api, tour: &'a mut Tour) -> Part<'a> {
    Box::pin(async move {
        let delivered = tour.delivered.clone();
        let accounts = api.call("listAccounts", &[], &[], None).await;
        assert_eq!(accounts.body["pagination"]["total"], 2);
        let seeded = s(&accounts.body["data"][0]["id"]);
        let a = [("id", seeded.as_str())];
        let d = [("id", delivered.as_str())];
        api.call("getAccount", &a, &[], None).await;
        assert_eq!(
            api.call("listAccountBundles", &d, &[], None).await.body["pagination"]["total"],
            1
        );
        api.call("retrieveAccountVerificationCode", &a, &[], None).await;
        api.call("revealAccountCredentials", &a, &[], None).await;
        api.call("canRefreshAccountAnalytics", &a, &[], None).await;
        api.call("refreshAccountAnalytics", &a, &[], Some(json!({"force": true})))
            .await;
        let cooldown = api.call("refreshAccountAnalytics", &a, &[], Some(json!({}))).await;
        assert_eq!(
            (cooldown.status, cooldown.body["error"]["code"].clone()),
            (429, json!("REFRESH_COOLDOWN"))
        );
        api.call("refreshAnalyticsAccount", &d, &[], Some(json!({}))).await;
        api.call(
            "createAccountEditRequest",
            &a,
            &[],
            Some(json!({"requested_username": "new_name", "requested_visible_name": "New"})),
        )
        .await;
        assert_eq!(
            api.call(
                "createAccountEditRequest",
                &a,
                &[],
                Some(json!({"requested_username": "x", "requested_visible_name": "X"}))
            )
            .await
            .status,
            409
        );
        api.call("getAccountEditRequest", &a, &[], None).await;
        tour.seeded = seeded;
    })
}

/// A webhook endpoint: made (its secret shown once), listed, changed, tested, and a delivery retried.
fn webhooks<'a>(api: &'a Api, tour: &'a mut Tour) -> Part<'a> {
    Box::pin(async move {
        let endpoint = api
            .call(
                "createWebhookEndpoint",
                &[],
                &[],
                Some(json!({"url": tour.hook, "events": ["bundle.created", "bundle.published"]})),
            )
            .await;
        let e = s(&endpoint.body["data"]["id"]);
        assert!(s(&endpoint.body["data"]["secret"]).starts_with("whsec_"));
        let ep = [("id", e.as_str())];
        assert!(
            api.call("getWebhookEndpoint", &ep, &[], None).await.body["data"]
                .get("secret")
                .is_none(),
            "the secret is shown once"
        );
        api.call("listWebhookEndpoints", &[], &[("enabled", "true")], None)
            .await;
        api.call("updateWebhookEndpoint", &ep, &[], Some(json!({"description": "suite"})))
            .await;
        let test = api.call("testWebhookEndpoint", &ep, &[], None).await;
        assert_eq!(test.body["data"]["success"], true, "{}", test.body);
        let deliveries = api.call("listWebhookDeliveries", &ep, &[], None).await;
        let delivery = s(&deliveries.body["data"][0]["id"]);
        let retried = api
            .call(
                "retryWebhookDelivery",
                &[("id", e.as_str()), ("delivery_id", delivery.as_str())],
                &[],
                None,
            )
            .await;
        assert_eq!(retried.body["data"]["attempts"], 2);
        tour.endpoint = e;
    })
}

/// Uploads by URL, by form and from a URL.
fn uploads<'a>(api: &'a Api, tour: &'a mut Tour) -> Part<'a> {
    Box::pin(async move {
        let b = tour.bundle.clone();
        api.call(
            "uploadVideo",
            &[],
            &[],
            Some(json!({"filename": "clip.mp4", "bundle_id": b})),
        )
        .await;
        api.call(
            "uploadImage",
            &[],
            &[],
            Some(json!({"filename": "a.png", "content_type": "image/png", "bundle_id": b})),
        )
        .await;
        let direct = api
            .form(
                "uploadVideoDirect",
                &[],
                &[("bundle_id", &b)],
                ("clip.mp4", "video/mp4", vec![7; 300_000]),
            )
            .await;
        assert_eq!(direct.body["data"]["size"], 300_000);
        api.form(
            "uploadImageDirect",
            &[],
            &[("bundle_id", &b), ("purpose", "carousel")],
            ("a.png", "image/png", vec![1; 10]),
        )
        .await;
        api.call(
            "uploadImageFromUrl",
            &[],
            &[],
            Some(json!({"url": "https://cdn.example.com/a.png", "bundle_id": b})),
        )
        .await;
    })
}

/// Analytics of the key, its accounts and the finalized video.
fn analytics<'a>(api: &'a Api, tour: &'a mut Tour) -> Part<'a> {
    Box::pin(async move {
        let (video_id, seeded, delivered) = (tour.video.clone(), tour.seeded.clone(), tour.delivered.clone());
        let a = [("id", seeded.as_str())];
        let d = [("id", delivered.as_str())];
        for id in [
            "getAnalyticsDashboard",
            "getAnalyticsContract",
            "exportAnalyticsVideos",
            "getAnalyticsSeries",
            "getCommentPulse",
        ] {
            api.call(id, &[], &[], None).await;
        }
        assert!(s(&api.call("exportAnalyticsVideos", &[], &[], None).await.body).contains(&video_id));
        api.call("createAnalyticsReport", &[], &[], Some(json!({"title": "Q4"})))
            .await;
        api.call("exportAnalyticsReportHtml", &[], &[], Some(json!({}))).await;
        api.call("getAnalyticsAccount", &a, &[], None).await;
        api.call("listAnalyticsAccountRawSnapshots", &a, &[], None).await;
        api.call("getAccountAnalytics", &a, &[], None).await;
        assert_eq!(
            api.call("listAccountVideoAnalytics", &d, &[], None).await.body["pagination"]["total"],
            2
        );
        api.call("getVideoAnalytics", &[("id", video_id.as_str())], &[], None)
            .await;
        api.call("listAnalyticsAccountComments", &a, &[], None).await;
        api.call("listAnalyticsPostRawSnapshots", &[("id", video_id.as_str())], &[], None)
            .await;
    })
}

/// Comment tasks: made one and in a batch, approved once, disputed, deleted.
fn comment_tasks<'a>(api: &'a Api, tour: &'a mut Tour) -> Part<'a> {
    Box::pin(async move {
        let seeded = tour.seeded.clone();
        let task = json!({"saved_account_id": seeded, "target_video_url": "https://www.tiktok.com/@x/video/1", "comment_text": "Nice"});
        let created = api.call("createCommentTasks", &[], &[], Some(task.clone())).await;
        let t1 = s(&created.body["data"][0]["id"]);
        let created = api
            .call("createCommentTasks", &[], &[], Some(json!({"tasks": [task]})))
            .await;
        let t2 = s(&created.body["data"][0]["id"]);
        api.call("listCommentTasks", &[], &[], None).await;
        api.call("getCommentTask", &[("id", t1.as_str())], &[], None).await;
        api.call("approveCommentTask", &[("id", t1.as_str())], &[], None).await;
        assert_eq!(
            api.call("approveCommentTask", &[("id", t1.as_str())], &[], None)
                .await
                .status,
            409
        );
        api.call(
            "disputeCommentTask",
            &[("id", t2.as_str())],
            &[],
            Some(json!({"reason": "Not posted"})),
        )
        .await;
        api.call("listCommentTaskVerifications", &[("id", t2.as_str())], &[], None)
            .await;
        api.call("deleteCommentTask", &[("id", t2.as_str())], &[], None).await;
    })
}

/// The endpoint deleted, and then not found.
fn endpoint_deleted<'a>(api: &'a Api, tour: &'a mut Tour) -> Part<'a> {
    Box::pin(async move {
        let ep = [("id", tour.endpoint.as_str())];
        api.call("deleteWebhookEndpoint", &ep, &[], None).await;
        assert_eq!(api.call("getWebhookEndpoint", &ep, &[], None).await.status, 404);
    })
}

/// What a curl user sees: every failing field named; JSON 401, 404 and 405.
#[tokio::test]
async fn bad_requests_get_the_error_envelope_naming_each_field() {
    let sandbox = Sandbox::start().await.unwrap();
    let http = reqwest::Client::new();
    let url = sandbox.url();
    let r = http
        .post(format!("{url}/bundles"))
        .header("x-api-key", KEY)
        .header("content-type", "application/json")
        .body(r#"{"bundle_type":"account_only","country":"U","colour":"red"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "VALIDATION_ERROR");
    let fields: Vec<&str> = body["error"]["details"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["country", "colour"], "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("`country`"));

    let r = http
        .get(format!("{url}/bundles?page=0&per_page=x"))
        .header("x-api-key", KEY)
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    let fields: Vec<&str> = body["error"]["details"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["page", "per_page"]);
    let r = http
        .get(format!("{url}/bundles/not-a-uuid"))
        .header("x-api-key", KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["details"]["fields"][0]["in"],
        "path"
    );
    let r = http
        .post(format!("{url}/bundles"))
        .header("x-api-key", KEY)
        .body("{")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert!(
        r.json::<Value>().await.unwrap()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not valid JSON")
    );

    for (key, why) in [
        (None, "Missing"),
        (Some("tok en"), "Malformed"),
        (Some("pk_live_x"), "Malformed"),
    ] {
        let mut req = http.get(format!("{url}/me"));
        if let Some(k) = key {
            req = req.header("x-api-key", k);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 401);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "UNAUTHORIZED");
        assert!(body["error"]["message"].as_str().unwrap().starts_with(why));
    }
    let public = http.get(format!("{url}/webhooks/events")).send().await.unwrap();
    assert_eq!(public.status(), 200, "a public operation needs no key");
    let r = http
        .delete(format!("{url}/bundles"))
        .header("x-api-key", KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(
        (r.status().as_u16(), r.headers()["allow"].to_str().unwrap().to_owned()),
        (405, "GET, POST".into())
    );
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "METHOD_NOT_ALLOWED");
    let r = http.get(format!("{url}/nowhere")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "NOT_FOUND");
    let r = http
        .get(format!("{url}/api/ext/me"))
        .header("x-api-key", KEY)
        .header("x-request-id", "trace-42")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["x-tokportal-request-id"],
        "trace-42",
        "a valid X-Request-ID is echoed"
    );
}

/// Idempotency keys as TokPortal documents them, one debit per key, and the
/// six secret-bearing operations refuse them.
#[tokio::test]
async fn replays_are_marked_and_reused_keys_refused() {
    let sandbox = Sandbox::start().await.unwrap();
    let http = reqwest::Client::new();
    let url = sandbox.url();
    let create = |key: &'static str, body: Value| {
        http.post(format!("{url}/bundles"))
            .header("x-api-key", KEY)
            .header("idempotency-key", key)
            .json(&body)
            .send()
    };
    let body = json!({"bundle_type": "account_only", "country": "USA"});
    let first = create("create-1", body.clone()).await.unwrap();
    assert_eq!(first.status(), 201);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: Value = first.json().await.unwrap();
    // The same fields in another order are the same request.
    let again = create("create-1", json!({"country": "USA", "bundle_type": "account_only"}))
        .await
        .unwrap();
    assert_eq!(
        (
            again.status().as_u16(),
            again.headers()["idempotent-replayed"].to_str().unwrap()
        ),
        (201, "true")
    );
    assert_eq!(again.json::<Value>().await.unwrap()["data"]["id"], first["data"]["id"]);
    let reused = create("create-1", json!({"bundle_type": "account_only", "country": "FRA"}))
        .await
        .unwrap();
    assert_eq!(reused.status(), 409);
    assert_eq!(
        reused.json::<Value>().await.unwrap()["error"]["code"],
        "IDEMPOTENCY_KEY_REUSED"
    );
    let client = sandbox.client(KEY).unwrap();
    let balance = client.get_credit_balance().send().await.unwrap();
    assert_eq!(balance.into_inner()["data"]["balance"], 990.0, "debited once");
    let refused = http
        .post(format!("{url}/webhooks"))
        .header("x-api-key", KEY)
        .header("idempotency-key", "hook-1")
        .json(&json!({"url": "http://127.0.0.1:9/x", "events": ["bundle.created"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    assert_eq!(
        refused.json::<Value>().await.unwrap()["error"]["code"],
        "IDEMPOTENCY_KEY_NOT_ALLOWED_FOR_SENSITIVE_RESPONSE"
    );
}

/// A key's reset forgets the answers kept under its idempotency keys (a replay
/// would name a bundle that no longer exists), and only that key's.
#[tokio::test]
async fn a_keys_reset_forgets_its_kept_answers_and_only_its() {
    let sandbox = Sandbox::start().await.unwrap();
    let http = reqwest::Client::new();
    let url = sandbox.url();
    let other = "sk_test_another_key_0123456789";
    let create = |api_key: &'static str| {
        http.post(format!("{url}/bundles"))
            .header("x-api-key", api_key)
            .header("idempotency-key", "setup-1")
            .json(&json!({"bundle_type": "account_only", "country": "USA"}))
            .send()
    };
    let id = |answer: reqwest::Response| async move {
        let replayed = answer.headers().contains_key("idempotent-replayed");
        let body: Value = answer.json().await.unwrap();
        (s(&body["data"]["id"]), replayed)
    };
    let (mine, _) = id(create(KEY).await.unwrap()).await;
    let (theirs, _) = id(create(other).await.unwrap()).await;
    let reset = http
        .post(format!("{url}/_sandbox/reset"))
        .header("x-api-key", KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), 200);

    let (after, replayed) = id(create(KEY).await.unwrap()).await;
    assert!(!replayed, "the reset key's answer is not replayed");
    assert_ne!(after, mine, "a new bundle, not the one the reset forgot");
    let fetched = http
        .get(format!("{url}/bundles/{after}"))
        .header("x-api-key", KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(fetched.status(), 200, "the answer names a bundle that exists");
    let (still, replayed) = id(create(other).await.unwrap()).await;
    assert!(replayed, "another key's kept answer survives");
    assert_eq!(still, theirs);
}

/// 150 rapid calls empty the 120-token bucket; another key is unaffected.
#[tokio::test]
async fn rapid_calls_see_429_with_retry_after() {
    // The default bucket of 120, refilled too slowly to matter, so that the
    // count does not depend on how fast this machine sends.
    let mut options = SandboxOptions::default();
    options.refill_per_second = 0.001;
    let sandbox = Sandbox::start_with(options).await.unwrap();
    let http = reqwest::Client::new();
    let mut limited = 0;
    let mut last_remaining = u32::MAX;
    for _ in 0..150 {
        let r = http
            .get(format!("{}/me", sandbox.url()))
            .header("x-api-key", KEY)
            .send()
            .await
            .unwrap();
        let remaining: u32 = r.headers()["x-ratelimit-remaining"].to_str().unwrap().parse().unwrap();
        assert!(remaining <= last_remaining, "remaining only goes down");
        last_remaining = remaining;
        if r.status() == 429 {
            limited += 1;
            assert!(r.headers()["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
            assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "RATE_LIMIT_EXCEEDED");
        }
    }
    assert_eq!(limited, 30, "120 of 150 fit the bucket");
    let other = http
        .get(format!("{}/me", sandbox.url()))
        .header("x-api-key", "sk_test_other")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 200);
    // The SDK reads the 429 as a typed, retryable error.
    let client = tokportal::Client::builder()
        .base_url(sandbox.url())
        .api_key(KEY)
        .retry(tokportal::RetryPolicy::disabled())
        .build()
        .unwrap();
    let err = client.get_current_user().send().await.unwrap_err();
    assert_eq!(err.status(), Some(429));
    assert!(err.is_retryable());
}

/// Faults on demand: a status, a closed connection, a lost answer that an
/// idempotency key gets back, and a slow answer.
#[tokio::test]
async fn faults_on_demand() {
    let sandbox = Sandbox::start().await.unwrap();
    let http = reqwest::Client::new();
    let url = sandbox.url();
    let r = http
        .get(format!("{url}/me"))
        .header("x-api-key", KEY)
        .header("x-sandbox-fault", "503")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "SERVICE_UNAVAILABLE");
    let reset = http
        .get(format!("{url}/me"))
        .header("x-api-key", KEY)
        .header("x-sandbox-fault", "reset")
        .send()
        .await;
    assert!(reset.is_err(), "the connection is closed without an answer");
    let body = json!({"bundle_type": "account_only", "country": "USA"});
    let lost = http
        .post(format!("{url}/bundles"))
        .header("x-api-key", KEY)
        .header("idempotency-key", "lost-1")
        .header("x-sandbox-fault", "lost")
        .json(&body)
        .send()
        .await;
    assert!(lost.is_err(), "the answer is lost");
    let found = http
        .post(format!("{url}/bundles"))
        .header("x-api-key", KEY)
        .header("idempotency-key", "lost-1")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        found.headers()["idempotent-replayed"],
        "true",
        "the lost answer was kept under its key"
    );
    let client = sandbox.client(KEY).unwrap();
    let list = client
        .request_operation("listBundles", tokportal::OperationArgs::new())
        .await
        .unwrap();
    assert_eq!(json(&list)["pagination"]["total"], 1, "carried out once");
    let started = std::time::Instant::now();
    let slow = http
        .get(format!("{url}/me"))
        .header("x-api-key", KEY)
        .header("x-sandbox-fault", "slow=0.3")
        .send()
        .await
        .unwrap();
    assert_eq!(slow.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
    let bad = http
        .get(format!("{url}/me"))
        .header("x-api-key", KEY)
        .header("x-sandbox-fault", "explode")
        .send()
        .await
        .unwrap();
    assert_eq!(
        bad.json::<Value>().await.unwrap()["error"]["details"]["fields"][0]["field"],
        "X-Sandbox-Fault"
    );
    // The SDK's retries get through a 503 on a read.
    let mut options = SandboxOptions::default();
    options.fault_rate = 0.5;
    options.seed = Some(3);
    let flaky = Sandbox::start_with(options).await.unwrap();
    let client = tokportal::Client::builder()
        .base_url(flaky.url())
        .api_key(KEY)
        .retry(
            tokportal::RetryPolicy::default()
                .max_attempts(10)
                .initial_backoff(Duration::from_millis(1))
                .jitter(false),
        )
        .build()
        .unwrap();
    for _ in 0..3 {
        client.get_current_user().send().await.unwrap();
    }
    // The sandbox's journal shows what the retries got through: at least
    // one 503 among the attempts, and the three calls answered 200.
    let journal: Value = http
        .get(format!("{}/_sandbox/requests?limit=1000", flaky.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entries = journal["data"].as_array().expect("the journal's entries");
    let with = |status: u64| entries.iter().filter(|e| e["status"] == status).count();
    assert_eq!(with(200), 3, "{journal}");
    assert!(with(503) >= 1, "no 503 was met: {journal}");
    assert!(
        entries
            .iter()
            .filter(|e| e["status"] == 503)
            .all(|e| e["fault"] == "503"),
        "{journal}"
    );
}

/// A dry run answers what it would charge and changes nothing; an
/// insufficient balance is a 402 with `required` and `available`.
#[tokio::test]
async fn dry_runs_change_nothing_and_credits_run_out() {
    let sandbox = Sandbox::start().await.unwrap();
    let client = sandbox.client(KEY).unwrap();
    let args = || {
        tokportal::OperationArgs::new()
            .body(json!({"bundle_type": "account_and_videos", "country": "USA", "videos_quantity": 5}))
    };
    let preview = client
        .request_operation("createBundle", args().dry_run())
        .await
        .unwrap();
    let p = preview.dry_run_preview().unwrap();
    assert_eq!((p.credits_would_charge, p.credits_charged), (Some(20.0), Some(0.0)));
    assert_eq!(p.cost_breakdown.unwrap()["video_slot"], 10.0);
    let list = client
        .request_operation("listBundles", tokportal::OperationArgs::new())
        .await
        .unwrap();
    assert_eq!(json(&list)["pagination"]["total"], 0);
    let balance = client
        .request_operation("getCreditBalance", tokportal::OperationArgs::new())
        .await
        .unwrap();
    assert_eq!(json(&balance)["data"]["balance"], 1000.0);
    reqwest::Client::new()
        .post(format!("{}/_sandbox/credits", sandbox.url()))
        .header("x-api-key", KEY)
        .json(&json!({"balance": 5}))
        .send()
        .await
        .unwrap();
    let err = client.request_operation("createBundle", args()).await.unwrap_err();
    let api = err.api().unwrap();
    assert_eq!((api.status, api.code.as_deref()), (402, Some("INSUFFICIENT_CREDITS")));
    assert_eq!(api.details.as_ref().unwrap()["required"], 20.0);
    assert_eq!(api.details.as_ref().unwrap()["available"], 5.0);
}

/// Signed deliveries for the events that happen, retried after a failure,
/// visible in the delivery log; a dry run sends none.
#[tokio::test]
async fn webhooks_are_signed_retried_and_logged() {
    let sandbox = Sandbox::start_with(options()).await.unwrap();
    let hook = receiver(1).await;
    let client = sandbox.client(KEY).unwrap();
    let endpoint = client
        .request_operation(
            "createWebhookEndpoint",
            tokportal::OperationArgs::new().body(json!({"url": hook.url, "events": ["bundle.created"]})),
        )
        .await
        .unwrap();
    let secret = s(&json(&endpoint)["data"]["secret"]);
    let endpoint_id = s(&json(&endpoint)["data"]["id"]);
    let create = tokportal::OperationArgs::new().body(json!({"bundle_type": "account_only", "country": "USA"}));
    client
        .request_operation("createBundle", create.clone().dry_run())
        .await
        .unwrap();
    let bundle = client.request_operation("createBundle", create).await.unwrap();
    let mut log = Value::Null;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        log = client
            .request_operation(
                "listWebhookDeliveries",
                tokportal::OperationArgs::new().path("id", endpoint_id.as_str()),
            )
            .await
            .map(|r| json(&r))
            .unwrap();
        if log["data"][0]["success"] == true {
            break;
        }
    }
    assert_eq!(log["data"][0]["attempts"], 2, "{log}");
    assert_eq!(log["data"].as_array().unwrap().len(), 1, "the dry run sent nothing");
    let got = hook.got.lock().unwrap();
    assert_eq!(got.len(), 2);
    let (headers, body) = &got[1];
    let event = Verifier::new(secret.as_str()).construct_event(headers, body).unwrap();
    assert_eq!(event.event_type, "bundle.created");
    assert_eq!(headers["user-agent"], tokportal_user_agent());
    match event.payload {
        tokportal::webhooks::WebhookEvent::BundleCreated(p) => assert_eq!(p.bundle_id, s(&json(&bundle)["data"]["id"])),
        other => panic!("{other:?}"),
    }
    assert!(Verifier::new("whsec_wrong").construct_event(headers, body).is_err());
}

fn tokportal_user_agent() -> &'static str {
    "TokPortal-Webhooks/1.0 (sandbox)"
}

/// Each key has its own state; the typed SDK works against the sandbox as is.
#[tokio::test]
async fn keys_do_not_share_state_and_the_typed_sdk_works() {
    let sandbox = Sandbox::start().await.unwrap();
    let alice = sandbox.client("sk_test_alice").unwrap();
    let bob = sandbox.client("sk_test_bob").unwrap();
    let made = alice
        .create_bundle()
        .body(
            tokportal::types::CreateBundleRequest::builder()
                .bundle_type(tokportal::types::CreateBundleRequestBundleType::AccountOnly)
                .country(Some("USA".parse().unwrap())),
        )
        .send()
        .await
        .unwrap();
    let id = s(&made.data["id"]);
    assert!(
        alice
            .get_bundle()
            .id(id.parse::<uuid::Uuid>().unwrap())
            .send()
            .await
            .is_ok()
    );
    let err = bob
        .get_bundle()
        .id(id.parse::<uuid::Uuid>().unwrap())
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(404));
    let me = alice.get_current_user().send().await.unwrap();
    assert_eq!(me.data.credits.balance, 990.0);
    sandbox.shutdown().await;
}

/// Whatever a client sends, the sandbox answers a documented status with the
/// error envelope or a valid body, and never falls over: random JSON bodies,
/// random path segments and query strings, random methods.
#[test]
fn arbitrary_requests_get_an_answer_in_the_envelope() {
    use proptest::prelude::*;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut options = SandboxOptions::default();
    options.rate_limit = 100_000;
    let sandbox = runtime.block_on(Sandbox::start_with(options)).unwrap();
    let http = reqwest::Client::new();
    let leaf = prop_oneof![
        any::<u32>().prop_map(|n| json!(n)),
        "[ -~]{0,12}".prop_map(|s| json!(s)),
        Just(json!("account_only")),
        Just(Value::Null),
    ];
    let body = leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(|v| json!(v)),
            proptest::collection::btree_map(
                prop_oneof![
                    Just("bundle_type".to_owned()),
                    Just("country".to_owned()),
                    "[a-z_]{1,8}"
                ],
                inner,
                0..4
            )
            .prop_map(|m| json!(m)),
        ]
    });
    let method = prop_oneof![Just("GET"), Just("POST"), Just("PUT"), Just("PATCH"), Just("DELETE")];
    let mut runner = proptest::test_runner::TestRunner::new(proptest::test_runner::Config {
        cases: 96,
        ..Default::default()
    });
    runner
        .run(
            &(method, "[a-z/%{}.-]{0,24}", "[a-z=&%0-9.-]{0,16}", body),
            |(method, path, query, body)| {
                let url = format!("{}/{}?{}", sandbox.url(), path.trim_start_matches('/'), query);
                let answer = runtime.block_on(async {
                    let request = http
                        .request(method.parse().unwrap(), &url)
                        .header("x-api-key", KEY)
                        .header("content-type", "application/json")
                        .body(body.to_string());
                    let response = request.send().await.unwrap();
                    let status = response.status().as_u16();
                    let text = response.text().await.unwrap();
                    (status, text)
                });
                let (status, text) = answer;
                prop_assert!(status < 500, "{method} {url}: {status} {text}");
                if status >= 400 {
                    let envelope: Value = serde_json::from_str(&text).unwrap();
                    prop_assert!(envelope["error"]["code"].is_string(), "{text}");
                    prop_assert!(envelope["error"]["message"].is_string(), "{text}");
                }
                Ok(())
            },
        )
        .unwrap();
    // And random bodies at the richest operation, through its whole contract.
    let mut runner = proptest::test_runner::TestRunner::new(proptest::test_runner::Config {
        cases: 96,
        ..Default::default()
    });
    let fields = proptest::collection::btree_map(
        prop_oneof![
            Just("bundle_type"),
            Just("country"),
            Just("videos_quantity"),
            Just("platform"),
            Just("account_id"),
            Just("external_ref")
        ],
        prop_oneof![
            Just(json!("account_only")),
            Just(json!("videos_only")),
            Just(json!("USA")),
            Just(json!("instagram")),
            any::<i16>().prop_map(|n| json!(n)),
            "[ -~]{0,6}".prop_map(|s| json!(s)),
        ],
        0..6,
    );
    runner
        .run(&fields, |fields| {
            let (status, text) = runtime.block_on(async {
                let r = http
                    .post(format!("{}/bundles", sandbox.url()))
                    .header("x-api-key", KEY)
                    .json(&fields)
                    .send()
                    .await
                    .unwrap();
                (r.status().as_u16(), r.text().await.unwrap())
            });
            prop_assert!([201, 400, 402, 409].contains(&status), "{status} {text}");
            let body: Value = serde_json::from_str(&text).unwrap();
            prop_assert!(status == 201 || body["error"]["code"].is_string(), "{text}");
            Ok(())
        })
        .unwrap();
}

/// A literal route's methods decide its path: `PATCH /webhooks/events` is
/// 405 with `Allow: GET`, not a `PATCH /webhooks/{id}` whose id is "events".
#[tokio::test]
async fn a_method_the_literal_route_lacks_is_405_with_allow() {
    let sandbox = Sandbox::start_with(options()).await.unwrap();
    let http = reqwest::Client::new();
    for (method, path, allow) in [
        (reqwest::Method::PATCH, "/webhooks/events", "GET"),
        (reqwest::Method::PATCH, "/bundles/bulk", "POST"),
        (
            reqwest::Method::PUT,
            "/bundles/9f3a7b2e-1c4d-4e8f-a5b6-7d9e0f1a2b3c/videos/import-csv",
            "POST",
        ),
    ] {
        let answer = http
            .request(method.clone(), format!("{}{path}", sandbox.url()))
            .header("x-api-key", "sk_test_methods")
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 405, "{method} {path}");
        assert_eq!(answer.headers()["allow"], allow, "{method} {path}");
        let body: Value = answer.json().await.unwrap();
        assert_eq!(body["error"]["code"], "METHOD_NOT_ALLOWED");
    }
}

/// The contract states no content type for an upload's file part, so none is
/// refused (TokPortal's own CLI sends `application/octet-stream`); a type
/// that does not describe a video is only named in `X-Sandbox-Warning`.
#[tokio::test]
async fn an_upload_sent_as_octet_stream_is_accepted_with_a_warning() {
    let sandbox = Sandbox::start_with(options()).await.unwrap();
    let api = Api::new(&sandbox, "sk_test_uploads");
    let created = api
        .call(
            "createBundle",
            &[],
            &[],
            Some(json!({"bundle_type": "account_and_videos", "country": "USA", "videos_quantity": 1})),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = s(&created.body["data"]["id"]);
    let uploaded = api
        .form(
            "uploadVideoDirect",
            &[],
            &[("bundle_id", id.as_str())],
            ("video.mp4", "application/octet-stream", vec![7u8; 1024]),
        )
        .await;
    assert_eq!(uploaded.status, 200, "{}", uploaded.body);
    let warning = uploaded.headers["x-sandbox-warning"].to_str().unwrap();
    assert!(warning.contains("application/octet-stream"), "{warning}");
    let clean = api
        .form(
            "uploadVideoDirect",
            &[],
            &[("bundle_id", id.as_str())],
            ("video.mp4", "video/mp4", vec![7u8; 1024]),
        )
        .await;
    assert_eq!(clean.status, 200);
    assert!(clean.headers.get("x-sandbox-warning").is_none());
}

/// A malformed id names no resource: 404 `NOT_FOUND` where the operation
/// documents a 404 (it does not document a 400), the field named.
#[tokio::test]
async fn a_malformed_id_is_a_documented_404_naming_the_field() {
    let sandbox = Sandbox::start_with(options()).await.unwrap();
    let http = reqwest::Client::new();
    for (method, path) in [
        (reqwest::Method::GET, "/accounts/not-a-uuid"),
        (reqwest::Method::DELETE, "/comments/not-a-uuid"),
        (reqwest::Method::DELETE, "/webhooks/not-a-uuid"),
    ] {
        let answer = http
            .request(method.clone(), format!("{}{path}", sandbox.url()))
            .header("x-api-key", "sk_test_ids")
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 404, "{method} {path}");
        let body: Value = answer.json().await.unwrap();
        assert_eq!(body["error"]["code"], "NOT_FOUND", "{body}");
        assert_eq!(body["error"]["details"]["fields"][0]["field"], "id", "{body}");
    }
}

/// `--lenient`: what this contract version does not know (a newer client's
/// body property, query parameter or enum value) is accepted, kept, echoed
/// and named in `X-Sandbox-Warning`; the default stays strict.
#[tokio::test]
async fn lenient_accepts_what_the_contract_does_not_know_and_says_so() {
    let mut lenient = options();
    lenient.lenient = true;
    let relaxed = Sandbox::start_with(lenient).await.unwrap();
    let strict = Sandbox::start_with(options()).await.unwrap();
    let http = reqwest::Client::new();
    let create = json!({"bundle_type": "account_only", "country": "USA", "wants_advanced_warming": true});
    let post = |url: String| {
        http.post(format!("{url}/bundles"))
            .header("x-api-key", "sk_test_lenient")
            .json(&create)
            .send()
    };
    let answer = post(relaxed.url().to_owned()).await.unwrap();
    assert_eq!(answer.status(), 201);
    let warning = answer.headers()["x-sandbox-warning"].to_str().unwrap().to_owned();
    assert!(warning.contains("wants_advanced_warming"), "{warning}");
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["data"]["wants_advanced_warming"], true, "kept and echoed: {body}");
    let refused = post(strict.url().to_owned()).await.unwrap();
    assert_eq!(refused.status(), 400, "strict by default");
    // An unknown query parameter and an enum value this contract lacks.
    let list = http
        .get(format!("{}/bundles?status=archived&colour=red", relaxed.url()))
        .header("x-api-key", "sk_test_lenient")
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), 200);
    let warnings: Vec<String> = list
        .headers()
        .get_all("x-sandbox-warning")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert!(warnings.iter().any(|w| w.contains("colour")), "{warnings:?}");
    assert!(warnings.iter().any(|w| w.contains("status")), "{warnings:?}");
}

/// Found by Schemathesis: a page number beyond an `i64` is still an integer
/// to the contract (no maximum), so it is a valid request, not a 400.
#[tokio::test]
async fn a_page_beyond_i64_is_still_an_integer() {
    let sandbox = Sandbox::start_with(options()).await.unwrap();
    let answer = reqwest::Client::new()
        .get(format!(
            "{}/bundles?page=578831311003838492704768&per_page=40",
            sandbox.url()
        ))
        .header("x-api-key", "sk_test_pages")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["data"], json!([]), "{body}");
    let refused = reqwest::Client::new()
        .get(format!("{}/bundles?page=12x", sandbox.url()))
        .header("x-api-key", "sk_test_pages")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400, "not a number is still refused");
}
