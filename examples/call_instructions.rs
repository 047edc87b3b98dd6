//! One side of the per-call instruction count: N sequential `GET /me` calls
//! against a local axum server in the same process, made with bare reqwest
//! or with the SDK (typed), optionally under a `tracing` subscriber at INFO.
//! Run it under callgrind twice, with 200 and 2200 calls; the difference,
//! divided by 2000, is the cost of one call with start-up left out
//! (instructions do not swing with the machine's load as times do).
//!
//! ```text
//! cargo build --release --example call_instructions
//! for side in bare sdk sdk-info; do for n in 200 2200; do
//!   valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.$side.$n \
//!     target/release/examples/call_instructions $side $n 2>&1 | grep refs
//! done; done
//! ```
//!
//! `sdk-info` installs a subscriber that records the SDK's spans at INFO (a
//! `tracing_subscriber::fmt` layer writing to nowhere), the cost of the
//! call and attempt spans when something listens.

use tracing_subscriber::Layer;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;

#[path = "bench/server.rs"]
mod server;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let side = args.get(1).map(String::as_str).unwrap_or("sdk");
    let calls: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(200);
    if side == "sdk-info" {
        let subscriber = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::sink)
                .with_filter(Targets::new().with_target("tokportal", tracing::Level::INFO)),
        );
        tracing::subscriber::set_global_default(subscriber)?;
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async move {
        let base = server::start().await?;
        let (bare, sdk) = server::sides(&base)?;
        for _ in 0..calls {
            if side == "bare" {
                let response = server::bare_get(&bare, format!("{base}/me")).send().await?;
                let me: tokportal::types::MeResponse = response.json().await?;
                std::hint::black_box(me);
            } else {
                std::hint::black_box(sdk.get_current_user().send().await?);
            }
        }
        Ok::<_, Box<dyn std::error::Error>>(())
    })
}
