//! The streamable HTTP transport at `/mcp` (rmcp's server), behind a guard
//! that follows the MCP spec's security advice: a request whose `Origin` is
//! not allowed gets 403, and one without a key gets 401, both with a JSON
//! body. Each request's key is its caller's own (`caller::caller_key`).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::json;

use super::caller::caller_key;
use super::server::TokPortalMcp;

/// Which browser origins may call the server: loopback pages always, and
/// the ones given with `--allow-origin` (`https://app.example.com`).
#[derive(Debug, Clone, Default)]
pub struct Origins {
    allowed: Vec<String>,
}

impl Origins {
    /// Loopback origins and `allowed` (compared without a trailing slash).
    pub fn new(allowed: &[String]) -> Self {
        Self {
            allowed: allowed.iter().map(|o| o.trim_end_matches('/').to_owned()).collect(),
        }
    }

    /// Whether a request with this `Origin` may be served (none: not a browser).
    pub fn allows(&self, origin: Option<&str>) -> bool {
        let Some(origin) = origin else { return true };
        if self.allowed.iter().any(|a| a == origin.trim_end_matches('/')) {
            return true;
        }
        url::Url::parse(origin).is_ok_and(|u| {
            matches!(u.scheme(), "http" | "https")
                && match u.host() {
                    Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
                    Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                    Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                    None => false,
                }
        })
    }
}

fn refuse(status: StatusCode, code: &str, message: &str) -> Response {
    let mut response = (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        json!({"error": {"code": code, "message": message}}).to_string(),
    )
        .into_response();
    if status == StatusCode::UNAUTHORIZED {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

async fn guard(State(origins): State<Arc<Origins>>, request: Request, next: Next) -> Response {
    let origin = request.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok());
    if !origins.allows(origin) {
        tracing::warn!(origin, "refused a request from a foreign origin");
        return refuse(
            StatusCode::FORBIDDEN,
            "FORBIDDEN_ORIGIN",
            "this origin may not call this server",
        );
    }
    if caller_key(request.headers()).is_none() {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "send your TokPortal API key as `Authorization: Bearer <key>` or `X-API-Key`",
        );
    }
    next.run(request).await
}

/// Serves `server` at `/mcp` on `listener` until `shutdown` resolves. `remote`:
/// any `Host` is accepted (the server is bound beyond loopback on purpose).
pub async fn serve(
    listener: tokio::net::TcpListener,
    server: TokPortalMcp,
    origins: Origins,
    remote: bool,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let cancel = tokio_util::sync::CancellationToken::new();
    let mut config = StreamableHttpServerConfig::default().with_cancellation_token(cancel.child_token());
    if remote {
        config = config.disable_allowed_hosts();
    }
    let service = StreamableHttpService::new(
        move || Ok(server.clone()),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let router = axum::Router::new()
        .nest_service("/mcp", service)
        .layer(middleware::from_fn_with_state(Arc::new(origins), guard));
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            shutdown.await;
            cancel.cancel();
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        let o = Origins::new(&["https://app.example.com".into()]);
        assert!(o.allows(None));
        assert!(o.allows(Some("http://localhost:5173")));
        assert!(o.allows(Some("http://127.0.0.1:8080")));
        assert!(o.allows(Some("https://app.example.com")));
        assert!(!o.allows(Some("https://evil.example")));
        assert!(!o.allows(Some("null")));
    }
}
