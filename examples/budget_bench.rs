//! What a daily credit limit and the audit log cost a `tools/call`,
//! measured side by side: two `tokportal-mcp --http` servers against one
//! `tokportal sandbox`, one with `--daily-credit-limit` (high enough never
//! to refuse) and `--audit-log FILE`, one without a limit (its audit lines
//! go to stdout, here /dev/null), called in alternating rounds with an API
//! key as Bearer, 8 at a time:
//!
//! - `getCurrentUser` (free: neither the limit nor the audit log does
//!   anything);
//! - `createBundle` (paid: under a limit, its price comes from a dry run and
//!   is reserved in the store before the paid request is sent, then an
//!   audit line is written);
//! - `createBundle` previewed (`dry_run: true`, then the same call), as the
//!   tools' descriptions ask of an agent: under a limit the preview's price
//!   is used, so the limit adds no request (paid calls a second);
//! - `createBundle` confirmed: a second pair of servers that ask before
//!   spending (the default), called by rmcp's client speaking 2026-07-28
//!   and accepting every question (an input-required result, then the
//!   answer's round): under a limit the question's price is held, so the
//!   limit adds no request here either.
//!
//! ```text
//! cargo build --release --features cli,mcp --bin tokportal --bin tokportal-mcp
//! cargo run --release --example budget_bench -- target/release/tokportal-mcp target/release/tokportal [CALLS, 500]
//! ```

#[path = "bench/process.rs"]
#[allow(dead_code)] // Its RSS reader is the other examples'.
mod process;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use futures::StreamExt;
use serde_json::json;

struct Server(Child, String);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(binary: &str, sandbox: &str, extra: &[&str]) -> Result<Server, Box<dyn std::error::Error>> {
    let asks = extra.first() == Some(&ASK);
    let extra = if asks { &extra[1..] } else { extra };
    let mut child = Command::new(binary)
        .args(["--http", "127.0.0.1:0"])
        .args(if asks {
            &[][..]
        } else {
            &["--confirm-spending", "never"][..]
        })
        .args(extra)
        .env("TOKPORTAL_BASE_URL", sandbox)
        .env_remove("TOKPORTAL_API_KEY")
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut lines = BufReader::new(child.stderr.take().ok_or("no stderr")?).lines();
    let origin = loop {
        let line = lines.next().ok_or("tokportal-mcp exited")??;
        if let Some(url) = line.split("listening on ").nth(1) {
            break url.trim().trim_end_matches("/mcp").to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Ok(Server(child, origin))
}

/// `calls` tools/call of `tool`, 8 at a time: calls a second. For
/// `createBundle+preview`, each call is a preview then the same call, and
/// the paid calls are counted.
async fn round(http: &reqwest::Client, origin: &str, key: &str, tool: &str, calls: usize) -> f64 {
    let (name, previewed) = match tool.strip_suffix("+preview") {
        Some(name) => (name, true),
        None => (tool, false),
    };
    let arguments = match name {
        "createBundle" => json!({"body": {"bundle_type": "account_only", "country": "USA"}}),
        _ => json!({}),
    };
    let body = |arguments: &serde_json::Value| {
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
               "params": {"name": name, "arguments": arguments}})
    };
    let real = body(&arguments);
    let mut preview_arguments = arguments.clone();
    preview_arguments["dry_run"] = json!(true);
    let preview = body(&preview_arguments);
    let send = |key: String, body: serde_json::Value| async move {
        let answer: serde_json::Value = match http
            .post(format!("{origin}/mcp"))
            .bearer_auth(&key)
            .header("accept", "application/json, text/event-stream")
            .json(&body)
            .send()
            .await
        {
            Ok(r) => r.json().await.unwrap_or_default(),
            Err(_) => return true,
        };
        answer["result"]["isError"] == true
    };
    let started = Instant::now();
    let failed = futures::stream::iter(0..calls)
        .map(|n| {
            // A key every 50 calls: the sandbox's dry run slows as a key's
            // bundles grow, which is the sandbox's cost, not the server's.
            let key = format!("{key}_{}", n / 50);
            let (real, preview) = (real.clone(), preview.clone());
            async move {
                if previewed && send(key.clone(), preview).await {
                    return true;
                }
                send(key, real).await
            }
        })
        .buffer_unordered(8)
        .filter(|failed| futures::future::ready(*failed))
        .count()
        .await;
    if failed > 0 {
        eprintln!("{failed} of {calls} {tool} calls failed");
    }
    calls as f64 / started.elapsed().as_secs_f64()
}

/// Marks a server that asks before spending (`start`'s first argument).
const ASK: &str = "ask";

/// A client that accepts every question, as a user who says yes would.
#[derive(Clone)]
struct Accepting;

impl rmcp::ClientHandler for Accepting {
    fn get_info(&self) -> rmcp::model::ClientConfig {
        let capabilities = rmcp::model::ClientCapabilities::builder().enable_elicitation().build();
        rmcp::model::ClientConfig::new(capabilities, rmcp::model::Implementation::new("budget-bench", "1"))
            .with_protocol_version(rmcp::model::ProtocolVersion::V_2026_07_28)
    }

    async fn create_elicitation(
        &self,
        _request: rmcp::model::ElicitRequestParams,
        _context: rmcp::service::RequestContext<rmcp::RoleClient>,
    ) -> Result<rmcp::model::ElicitResult, rmcp::ErrorData> {
        let mut result = rmcp::model::ElicitResult::new(rmcp::model::ElicitationAction::Accept);
        result.content = Some(json!({"charge": true}));
        Ok(result)
    }
}

/// `calls` confirmed `createBundle` calls, by 8 rmcp clients at a time
/// (a key each): calls a second.
async fn confirmed_round(origin: &str, key: &str, calls: usize) -> Result<f64, Box<dyn std::error::Error>> {
    use rmcp::service::{ClientLifecycleMode, ClientServiceExt};
    use rmcp::transport::StreamableHttpClientTransport;
    use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
    let mut agents = Vec::new();
    for n in 0..8 {
        let transport = StreamableHttpClientTransport::from_config(
            StreamableHttpClientTransportConfig::with_uri(format!("{origin}/mcp")).auth_header(format!("{key}_{n}")),
        );
        let lifecycle = ClientLifecycleMode::Discover {
            preferred_versions: vec![rmcp::model::ProtocolVersion::V_2026_07_28],
        };
        agents.push(Accepting.serve_with_lifecycle(transport, lifecycle).await?);
    }
    let serde_json::Value::Object(arguments) = json!({"body": {"bundle_type": "account_only", "country": "USA"}})
    else {
        return Err("arguments".into());
    };
    let started = Instant::now();
    let each = calls / 8;
    let failed: usize = futures::future::join_all(agents.iter().map(|agent| {
        let arguments = arguments.clone();
        async move {
            let mut failed = 0;
            for _ in 0..each {
                let params = rmcp::model::CallToolRequestParams::new("createBundle").with_arguments(arguments.clone());
                match agent.call_tool(params).await {
                    Ok(result) if result.is_error != Some(true) => {}
                    _ => failed += 1,
                }
            }
            failed
        }
    }))
    .await
    .into_iter()
    .sum();
    let rate = (each * 8) as f64 / started.elapsed().as_secs_f64();
    for agent in agents {
        let _ = agent.cancel().await;
    }
    if failed > 0 {
        eprintln!("{failed} of {} confirmed createBundle calls failed", each * 8);
    }
    Ok(rate)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(mcp), Some(cli)) = (args.first(), args.get(1)) else {
        return Err("usage: budget_bench <tokportal-mcp> <tokportal> [CALLS]".into());
    };
    let calls: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(500);
    let sandbox = process::start(
        cli,
        &[
            "--rate-limit".as_ref(),
            "4000000000".as_ref(),
            "--credits".as_ref(),
            "1000000000".as_ref(),
        ],
    )?;
    let dir = std::env::temp_dir().join(format!("budget_bench_{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let audit = dir.join("audit.log");
    let off = start(mcp, &sandbox.1, &[])?;
    // BUDGET_BENCH_ON overrides the measured side's flags (to take the
    // limit and the audit log apart).
    let custom = std::env::var("BUDGET_BENCH_ON").ok();
    let on_args: Vec<&str> = match &custom {
        Some(args) => args.split_whitespace().collect(),
        None => vec![
            "--daily-credit-limit",
            "1000000000",
            "--audit-log",
            audit.to_str().unwrap_or("audit.log"),
        ],
    };
    let on = start(mcp, &sandbox.1, &on_args)?;
    let runtime = tokio::runtime::Runtime::new()?;
    let http = reqwest::Client::builder().no_proxy().build()?;
    runtime.block_on(async {
        for tool in ["getCurrentUser", "createBundle", "createBundle+preview"] {
            // A key a round: the sandbox bounds what one key may hold.
            let key = |side: &str, n: usize| format!("sk_test_bench_{side}_{}_{n}", tool.replace('+', "_"));
            round(&http, &off.1, &key("off", 9), tool, 100).await;
            round(&http, &on.1, &key("on", 9), tool, 100).await;
            let (mut a, mut b) = (Vec::new(), Vec::new());
            for n in 0..3 {
                if n % 2 == 0 {
                    a.push(round(&http, &off.1, &key("off", n), tool, calls).await);
                    b.push(round(&http, &on.1, &key("on", n), tool, calls).await);
                } else {
                    b.push(round(&http, &on.1, &key("on", n), tool, calls).await);
                    a.push(round(&http, &off.1, &key("off", n), tool, calls).await);
                }
            }
            let (off_median, on_median) = (median(a.clone()), median(b.clone()));
            println!(
                "{tool}: both off {off_median:.0}/s {a:.0?}; limit and audit log on {on_median:.0}/s {b:.0?}; ratio {:.3}",
                on_median / off_median
            );
        }
    });
    drop((off, on));
    // The same, with servers that ask before spending.
    let audit_asking = dir.join("audit-asking.log");
    let off = start(mcp, &sandbox.1, &[ASK])?;
    let on = start(
        mcp,
        &sandbox.1,
        &[
            ASK,
            "--daily-credit-limit",
            "1000000000",
            "--audit-log",
            audit_asking.to_str().unwrap_or("audit-asking.log"),
        ],
    )?;
    runtime.block_on(async {
        let key = |side: &str, n: usize| format!("sk_test_bench_{side}_confirmed_{n}");
        confirmed_round(&off.1, &key("off", 9), 96).await?;
        confirmed_round(&on.1, &key("on", 9), 96).await?;
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for n in 0..3 {
            if n % 2 == 0 {
                a.push(confirmed_round(&off.1, &key("off", n), calls).await?);
                b.push(confirmed_round(&on.1, &key("on", n), calls).await?);
            } else {
                b.push(confirmed_round(&on.1, &key("on", n), calls).await?);
                a.push(confirmed_round(&off.1, &key("off", n), calls).await?);
            }
        }
        let (off_median, on_median) = (median(a.clone()), median(b.clone()));
        println!(
            "createBundle confirmed: both off {off_median:.0}/s {a:.0?}; limit and audit log on {on_median:.0}/s {b:.0?}; ratio {:.3}",
            on_median / off_median
        );
        Ok::<(), Box<dyn std::error::Error>>(())
    })?;
    let lines = std::fs::read_to_string(&audit).map(|t| t.lines().count()).unwrap_or(0)
        + std::fs::read_to_string(&audit_asking)
            .map(|t| t.lines().count())
            .unwrap_or(0);
    println!("audit lines written: {lines}");
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
