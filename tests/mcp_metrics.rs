//! `tokportal-mcp --metrics`, scraped by a real Prometheus (Debian's
//! `prometheus`; `.ci/run` installs it): two replicas against one
//! in-process sandbox, paid and free tool calls with an API key as Bearer,
//! and the credits spent and the calls made read back through Prometheus'
//! HTTP query API. Skipped (saying so) without `prometheus` outside CI.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::mcp_http::McpHttp;
use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, CallToolResult, JsonObject};
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};
use tokportal::sandbox::Sandbox;

const KEY: &str = "sk_test_metrics_team";

/// Polls of 100 ms at most while waiting on Prometheus (a hang guard, not
/// a timing claim).
const POLLS: usize = 600;

fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// The address a replica's `--metrics` listener says it bound.
fn metrics_addr(replica: &McpHttp) -> String {
    let log = replica.log.lock().unwrap();
    log.iter()
        .find_map(|line| line.split("metrics on http://").nth(1))
        .map(|rest| rest.trim().trim_end_matches("/metrics").to_owned())
        .unwrap_or_else(|| panic!("no `metrics on` line: {log:?}"))
}

async fn agent(replica: &McpHttp) -> RunningService<RoleClient, ()> {
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(replica.mcp()).auth_header(KEY.to_owned()),
    );
    ().serve(transport).await.expect("initialize over HTTP")
}

async fn call(agent: &RunningService<RoleClient, ()>, tool: &str, arguments: Value) -> CallToolResult {
    let Value::Object(arguments) = arguments else {
        panic!("arguments are an object")
    };
    agent
        .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments))
        .await
        .unwrap()
}

/// A paid call: its `credits_charged`.
async fn create_bundle(agent: &RunningService<RoleClient, ()>) -> f64 {
    let body = json!({"body": {"bundle_type": "account_and_videos", "platform": "tiktok", "country": "USA", "videos_quantity": 2}});
    let result = call(agent, "createBundle", body).await;
    assert_ne!(result.is_error, Some(true), "{result:?}");
    let charged = result
        .structured_content
        .as_ref()
        .and_then(|v| v["credits_charged"].as_f64());
    charged.filter(|c| *c > 0.0).expect("createBundle charges credits")
}

/// A running Prometheus, killed when dropped.
struct Prometheus {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    /// Starts `binary` scraping `targets` every second.
    ///
    /// Prometheus cannot listen on port 0 (`--web.listen-address` takes no
    /// port 0 and says nothing of what it bound), so a free port is found by
    /// binding one and letting it go; another process may take it in
    /// between, so a start that fails is retried on a new port, a bounded
    /// number of times.
    async fn start(binary: &std::path::Path, targets: &[String]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        let targets: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: tokportal-mcp\n    scrape_interval: 1s\n    \
                 static_configs:\n      - targets: [{}]\n",
                targets.join(", ")
            ),
        )
        .unwrap();
        for attempt in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let data = dir.path().join(format!("data{attempt}"));
            let mut child = Command::new(binary)
                .arg(format!("--config.file={}", config.display()))
                .arg(format!("--storage.tsdb.path={}", data.display()))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--log.level=warn")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("prometheus starts");
            let url = format!("http://127.0.0.1:{port}");
            for _ in 0..POLLS {
                if child.try_wait().ok().flatten().is_some() {
                    break; // exited: most likely the port was taken
                }
                let ready = http().get(format!("{url}/-/ready")).send().await;
                if ready.is_ok_and(|r| r.status().is_success()) {
                    return Self { child, url, _dir: dir };
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("prometheus did not start in 5 tries");
    }

    /// The value of an instant query that answers one sample, if it does.
    async fn scalar(&self, query: &str) -> Option<f64> {
        let answer: Value = http()
            .get(format!("{}/api/v1/query", self.url))
            .query(&[("query", query)])
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        let result = answer["data"]["result"].as_array()?;
        let [sample] = result.as_slice() else { return None };
        sample["value"][1].as_str()?.parse().ok()
    }

    /// Polls `query` until it answers `want` (bounded); what it last said.
    async fn until(&self, query: &str, want: f64) -> Option<f64> {
        let mut last = None;
        for _ in 0..POLLS {
            last = self.scalar(query).await;
            if last.is_some_and(|v| (v - want).abs() < 1e-9) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        last
    }
}

#[tokio::test]
async fn prometheus_reads_credits_and_calls_from_two_replicas() {
    let Some(binary) = common::required_program("prometheus", "apt-get install prometheus") else {
        return;
    };
    let sandbox = Sandbox::start().await.unwrap();
    let replicas = [
        McpHttp::start(sandbox.url(), &["--metrics", "127.0.0.1:0"], &[]),
        McpHttp::start(sandbox.url(), &["--metrics", "127.0.0.1:0"], &[]),
    ];
    let targets: Vec<String> = replicas.iter().map(metrics_addr).collect();

    // The public address serves /mcp, never the metrics.
    let public = http()
        .get(format!("{}/metrics", replicas[0].origin))
        .send()
        .await
        .unwrap();
    let text = public.text().await.unwrap();
    assert!(
        !text.contains("tokportal_mcp_"),
        "/metrics on the public address: {text}"
    );

    // Paid and free calls through both replicas, with the key as Bearer.
    let (first, second) = (agent(&replicas[0]).await, agent(&replicas[1]).await);
    let mut spent = 0.0;
    spent += create_bundle(&first).await;
    spent += create_bundle(&first).await;
    spent += create_bundle(&second).await;
    for agent in [&first, &first, &second] {
        let free = call(agent, "getCreditBalance", json!({})).await;
        assert_ne!(free.is_error, Some(true), "{free:?}");
    }
    // A dry run charges nothing.
    let mut preview = JsonObject::new();
    preview.insert("dry_run".into(), true.into());
    preview.insert(
        "body".into(),
        json!({"bundle_type": "account_only", "platform": "tiktok", "country": "USA"}),
    );
    let dry = call(&second, "createBundle", Value::Object(preview)).await;
    assert_ne!(dry.is_error, Some(true), "{dry:?}");

    // Refused unsent: uploads are off over HTTP without --allow-dir.
    let refused = call(&first, "uploadVideoDirect", json!({"file_path": "/etc/hostname"})).await;
    assert_eq!(refused.is_error, Some(true), "{refused:?}");

    // Each replica's own /metrics says its share.
    let own = http()
        .get(format!("http://{}/metrics", targets[1]))
        .send()
        .await
        .unwrap();
    assert!(
        own.headers()[reqwest::header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let own = own.text().await.unwrap();
    assert!(
        own.contains("tokportal_mcp_credits_spent_total{tool=\"createBundle\"}"),
        "{own}"
    );

    let prometheus = Prometheus::start(&binary, &targets).await;
    assert_eq!(
        prometheus.until("count(up{job=\"tokportal-mcp\"} == 1)", 2.0).await,
        Some(2.0),
        "both replicas scraped"
    );
    assert_eq!(
        prometheus.until("sum(tokportal_mcp_credits_spent_total)", spent).await,
        Some(spent),
        "the credits spent, summed over the replicas"
    );
    let by_replica = "count(sum by (instance) (tokportal_mcp_credits_spent_total) > 0)";
    assert_eq!(
        prometheus.until(by_replica, 2.0).await,
        Some(2.0),
        "both replicas spent"
    );
    let calls = "sum(mcp_server_operation_duration_seconds_count{method=\"tools/call\",outcome=\"ok\"})";
    assert_eq!(
        prometheus.until(calls, 7.0).await,
        Some(7.0),
        "3 paid, 3 free, 1 dry run"
    );
    let paid = "sum(mcp_server_operation_duration_seconds_count{tool=\"createBundle\"})";
    assert_eq!(prometheus.until(paid, 4.0).await, Some(4.0));
    let free = "sum(mcp_server_operation_duration_seconds_count{tool=\"getCreditBalance\"})";
    assert_eq!(prometheus.until(free, 3.0).await, Some(3.0));
    let refusals = "sum(tokportal_mcp_calls_refused_total{reason=\"file_sandbox\"})";
    assert_eq!(prometheus.until(refusals, 1.0).await, Some(1.0));
    let refused = "sum(mcp_server_operation_duration_seconds_count{tool=\"uploadVideoDirect\",outcome=\"refused\"})";
    assert_eq!(prometheus.until(refused, 1.0).await, Some(1.0));

    first.cancel().await.unwrap();
    second.cancel().await.unwrap();
}
