//! The SDK's per-call overhead against bare reqwest, side by side in one
//! process, against the same local keep-alive server (axum on 127.0.0.1).
//!
//! ```text
//! cargo run --release --example overhead_bench            # 3 rounds of 20,000 calls a side
//! cargo run --release --example overhead_bench -- 5 40000
//! ```
//!
//! Two calls: `GET /me` (typed answer) and `GET /bundles` with three query
//! parameters. Each side makes the same request with the same headers and
//! decodes the same answer type; 16 tasks share one client. Rounds alternate
//! bare and SDK; the median throughput of each is compared. Allocations per
//! call are counted by a global allocator over 2,000 sequential calls.
//! Targets: at least 0.95x bare on `/me`, 0.92x on the list, at most 1.2x
//! the allocations. For reference it also times bare reqwest with the one
//! safety the SDK always adds and bare reqwest does not: a per-request
//! timeout (30 s), whose timer every call pays for.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

#[path = "bench/server.rs"]
mod server;

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same layout, same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as for `alloc` and `dealloc`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const TASKS: usize = 16;

#[derive(Clone, Copy, PartialEq)]
enum Call {
    Me,
    List,
}

#[derive(Clone, Copy, PartialEq)]
enum Side {
    Bare,
    /// Bare reqwest with the SDK's per-attempt timeout.
    BareTimeout,
    Sdk,
}

struct Clients {
    bare: reqwest::Client,
    sdk: tokportal::Client,
    base: String,
}

async fn one(clients: &Clients, call: Call, side: Side) {
    match (call, side) {
        (Call::Me, Side::Bare | Side::BareTimeout) => {
            let mut request = server::bare_get(&clients.bare, format!("{}/me", clients.base));
            if side == Side::BareTimeout {
                request = request.timeout(std::time::Duration::from_secs(30));
            }
            let response = request.send().await.expect("bare /me");
            assert!(response.status().is_success());
            let me: tokportal::types::MeResponse = response.json().await.expect("decodes");
            std::hint::black_box(me);
        }
        (Call::Me, Side::Sdk) => {
            let me = clients.sdk.get_current_user().send().await.expect("sdk /me");
            std::hint::black_box(me);
        }
        (Call::List, Side::Bare | Side::BareTimeout) => {
            let mut request = server::bare_get(&clients.bare, format!("{}/bundles", clients.base)).query(&[
                ("page", "1"),
                ("per_page", "10"),
                ("status", "published"),
            ]);
            if side == Side::BareTimeout {
                request = request.timeout(std::time::Duration::from_secs(30));
            }
            let response = request.send().await.expect("bare list");
            assert!(response.status().is_success());
            let list: serde_json::Map<String, serde_json::Value> = response.json().await.expect("decodes");
            std::hint::black_box(list);
        }
        (Call::List, Side::Sdk) => {
            let list = clients
                .sdk
                .list_bundles()
                .page(std::num::NonZeroU64::MIN)
                .per_page(std::num::NonZeroU64::new(10).expect("10"))
                .status("published")
                .send()
                .await
                .expect("sdk list");
            std::hint::black_box(list);
        }
    }
}

/// Calls per second with 16 tasks.
async fn throughput(clients: &std::sync::Arc<Clients>, call: Call, side: Side, calls: usize) -> f64 {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let clients = clients.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..calls / TASKS {
                one(&clients, call, side).await;
            }
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }
    (calls / TASKS * TASKS) as f64 / started.elapsed().as_secs_f64()
}

async fn allocations(clients: &Clients, call: Call, side: Side) -> f64 {
    const N: u64 = 2_000;
    for _ in 0..100 {
        one(clients, call, side).await;
    }
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..N {
        one(clients, call, side).await;
    }
    (ALLOCATIONS.load(Ordering::Relaxed) - before) as f64 / N as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let rounds: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(3);
    let calls: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(20_000);

    let base = server::start().await?;

    let (bare, sdk) = server::sides(&base)?;
    let clients = std::sync::Arc::new(Clients { bare, sdk, base });

    println!("{rounds} rounds of {calls} calls a side, {TASKS} tasks");
    for (call, name, target) in [(Call::Me, "GET /me", 0.95), (Call::List, "GET /bundles?3 params", 0.92)] {
        // Warm both pools.
        throughput(&clients, call, Side::Bare, 1_000).await;
        throughput(&clients, call, Side::Sdk, 1_000).await;
        let (mut bare, mut timed, mut sdk) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..rounds {
            bare.push(throughput(&clients, call, Side::Bare, calls).await);
            sdk.push(throughput(&clients, call, Side::Sdk, calls).await);
            timed.push(throughput(&clients, call, Side::BareTimeout, calls).await);
        }
        let (bare, timed, sdk) = (median(bare), median(timed), median(sdk));
        let (bare_allocs, sdk_allocs) = (
            allocations(&clients, call, Side::Bare).await,
            allocations(&clients, call, Side::Sdk).await,
        );
        println!(
            "{name:<24} bare {bare:>8.0}/s  sdk {sdk:>8.0}/s  ratio {:.3} (target >= {target})  \
             allocations/call bare {bare_allocs:.1} sdk {sdk_allocs:.1} ratio {:.2} (target <= 1.2)",
            sdk / bare,
            sdk_allocs / bare_allocs
        );
        println!(
            "{:<24} bare with a 30 s timeout {timed:>8.0}/s: sdk ratio {:.3} (reference)",
            "",
            sdk / timed
        );
    }
    Ok(())
}
