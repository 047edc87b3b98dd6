//! The local API the measurement examples call: `GET /api/ext/me` and
//! `GET /api/ext/bundles` with fixed answers, served by axum on 127.0.0.1,
//! and the two sides they compare (bare reqwest and the SDK, sending the
//! same headers). Included by path (`#[path = "bench/server.rs"] mod
//! server;`), so each example measures the same server and the same sides.

use axum::routing::get;
use serde_json::json;

/// Starts the server; its base URL (`http://127.0.0.1:PORT/api/ext`).
pub async fn start() -> std::io::Result<String> {
    let me = json!({"data": {"id": "9f3a7b2e-1c4d-4e8f-a5b6-7d9e0f1a2b3c", "email": "bench@example.com",
        "full_name": "Bench", "company_name": null, "credits": {"balance": 1250},
        "api_key": {"id": "9f3a7b2e-1c4d-4e8f-a5b6-7d9e0f1a2b3c", "name": "bench"}}})
    .to_string();
    let list = json!({"data": [], "pagination": {"page": 1, "per_page": 10, "total": 0, "total_pages": 0}}).to_string();
    let app = axum::Router::new()
        .route(
            "/api/ext/me",
            get(move || {
                let me = me.clone();
                async move { ([("content-type", "application/json")], me) }
            }),
        )
        .route(
            "/api/ext/bundles",
            get(move || {
                let list = list.clone();
                async move { ([("content-type", "application/json")], list) }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}/api/ext", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(base)
}

/// The key both sides send.
pub const KEY: &str = "sk_bench_0123456789";
/// The client identifier both sides send.
const CLIENT: &str = "bench/1";

/// The two sides against `base`: bare reqwest, and the SDK.
pub fn sides(base: &str) -> Result<(reqwest::Client, tokportal::Client), Box<dyn std::error::Error>> {
    let bare = reqwest::Client::builder().build()?;
    let sdk = tokportal::Client::builder()
        .api_key(KEY)
        .base_url(base)
        .client_identifier(CLIENT)
        .build()?;
    Ok((bare, sdk))
}

/// A bare `GET url` with the headers the SDK sends.
pub fn bare_get(bare: &reqwest::Client, url: String) -> reqwest::RequestBuilder {
    bare.get(url)
        .header("x-api-key", KEY)
        .header("x-tokportal-client", CLIENT)
        .header("accept", "application/json")
}
