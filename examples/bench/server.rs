//! The local API the measurement examples call: `GET /api/ext/me` and
//! `GET /api/ext/bundles` with fixed answers, served by axum on 127.0.0.1.
//! Included by path (`#[path = "bench/server.rs"] mod server;`), so each
//! example measures the same server.

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
