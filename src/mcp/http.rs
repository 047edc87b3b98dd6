//! The streamable HTTP transport at `/mcp` (rmcp's server), behind a guard
//! that follows the MCP spec's security advice: a request whose `Origin` is
//! not allowed gets 403, and one without a key gets 401, both with a JSON
//! body. Each request's key is its caller's own (`caller::caller_key`).
//!
//! Two modes ([`Mode`]): stateless (the default; every POST is served on its
//! own, so any replica behind a load balancer can answer any request), or
//! bounded sessions (`sessions`). Beside `/mcp`: `/healthz` and `/readyz`
//! (`lifecycle`), and a graceful stop on SIGTERM or SIGINT.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;

use super::caller::caller_key;
use super::lifecycle::{self, Lifecycle};
use super::oauth::OAuth;
use super::refusal::refuse;
use super::server::TokPortalMcp;
use super::sessions::{self, SessionLimits, Sessions};

/// How the HTTP server keeps (or does not keep) MCP sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// No sessions: each POST is answered on its own, as JSON (or one SSE
    /// stream when a notification comes before the answer).
    Stateless,
    /// rmcp's sessions, bounded in number, per key and in idle time.
    Sessions(SessionLimits),
}

/// The HTTP server's settings.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Browser origins allowed besides loopback ones.
    pub origins: Origins,
    /// Any `Host` is accepted (the server is bound beyond loopback on purpose).
    pub remote: bool,
    /// Sessions or none.
    pub mode: Mode,
    /// After the stop signal, how long `/readyz` says 503 while new
    /// connections are still taken (time for a load balancer to notice).
    pub drain_delay: Duration,
    /// How long requests already in may take to be answered after that.
    pub shutdown_grace: Duration,
    /// `--oauth`: the authorization server beside `/mcp`.
    pub oauth: Option<Arc<OAuth>>,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            origins: Origins::default(),
            remote: false,
            mode: Mode::Stateless,
            drain_delay: Duration::ZERO,
            shutdown_grace: Duration::from_secs(30),
            oauth: None,
        }
    }
}

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

/// What the guard knows: the allowed origins, and the authorization server.
struct Guard {
    origins: Origins,
    oauth: Option<Arc<OAuth>>,
}

async fn guard(State(guard): State<Arc<Guard>>, mut request: Request, next: Next) -> Response {
    let origin = request.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok());
    if !guard.origins.allows(origin) {
        tracing::warn!(origin, "refused a request from a foreign origin");
        return refuse(
            StatusCode::FORBIDDEN,
            "FORBIDDEN_ORIGIN",
            "this origin may not call this server",
        );
    }
    let Some(bearer) = caller_key(request.headers()) else {
        let mut refused = refuse(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            match guard.oauth {
                Some(_) => {
                    "sign in with OAuth (see WWW-Authenticate), or send your TokPortal API key as `Authorization: Bearer <key>`"
                }
                None => "send your TokPortal API key as `Authorization: Bearer <key>` or `X-API-Key`",
            },
        );
        if let Some(oauth) = &guard.oauth {
            refused
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, oauth.challenge(None));
        }
        return refused;
    };
    if let Some(oauth) = &guard.oauth
        && OAuth::is_sealed(&bearer)
    {
        // A token of this server: the key it wraps replaces it, so that
        // everything below sees a caller's key, and only the key ever goes
        // upstream; the token's scope goes along as `Access`.
        match oauth.check_bearer(&bearer).await {
            Ok((key, access, connection)) => {
                let Ok(value) = header::HeaderValue::from_str(&format!("Bearer {}", key.expose())) else {
                    return refuse(
                        StatusCode::UNAUTHORIZED,
                        "INVALID_TOKEN",
                        "the token holds no usable key",
                    );
                };
                let headers = request.headers_mut();
                headers.remove(crate::headers::API_KEY);
                headers.insert(header::AUTHORIZATION, value);
                request.extensions_mut().insert(access);
                request.extensions_mut().insert(connection);
            }
            Err(super::oauth::Bearer::Unavailable(e)) => {
                tracing::error!(store = %e.store, error = %e.message, "the store cannot be reached: refusing a token");
                super::metrics::store_error();
                let mut refused = refuse(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "STORE_UNAVAILABLE",
                    "the server's store cannot be reached, so the token cannot be checked; try again shortly",
                );
                refused.headers_mut().insert(
                    header::RETRY_AFTER,
                    header::HeaderValue::from(super::oauth::RETRY_AFTER_SECONDS),
                );
                return refused;
            }
            Err(super::oauth::Bearer::Invalid(why)) => {
                tracing::info!(why, "refused a bearer token");
                let mut refused = refuse(
                    StatusCode::UNAUTHORIZED,
                    "INVALID_TOKEN",
                    &format!("the token is {why}"),
                );
                refused
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, oauth.challenge(Some(why)));
                return refused;
            }
        }
    }
    next.run(request).await
}

/// After the listener closes, how long connections it had accepted get to
/// send their first request before the server looks for requests in flight.
const SETTLE: Duration = Duration::from_millis(500);

/// Serves `server` at `/mcp` on `listener` until `shutdown` resolves, then
/// stops gracefully (see [`super::lifecycle`]).
pub async fn serve(
    listener: tokio::net::TcpListener,
    server: TokPortalMcp,
    settings: HttpSettings,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let cancel = CancellationToken::new();
    let mut config = StreamableHttpServerConfig::default().with_cancellation_token(cancel.child_token());
    if settings.remote {
        config = config.disable_allowed_hosts();
    }
    let factory = move || Ok(server.clone());
    let mcp = match settings.mode {
        Mode::Stateless => {
            let config = config.with_legacy_session_mode(false).with_json_response(true);
            let service = StreamableHttpService::new(factory, Arc::new(NeverSessionManager::default()), config);
            axum::Router::new().nest_service("/mcp", service)
        }
        Mode::Sessions(limits) => {
            let mut manager = LocalSessionManager::default();
            // rmcp's own idle close, a second net under the sweeper.
            manager.session_config.keep_alive = Some(limits.idle + Duration::from_secs(1));
            let manager = Arc::new(manager);
            let book = Arc::new(Sessions::new(limits));
            tokio::spawn(sessions::sweep(Arc::clone(&book), Arc::clone(&manager), cancel.clone()));
            let service = StreamableHttpService::new(factory, manager, config);
            axum::Router::new()
                .nest_service("/mcp", service)
                .layer(middleware::from_fn_with_state(book, sessions::gate))
        }
    };
    let state = Arc::new(Lifecycle::default());
    if let Some(oauth) = &settings.oauth {
        state.watch_store(Arc::clone(oauth.store()));
    }
    let guard_state = Arc::new(Guard {
        origins: settings.origins,
        oauth: settings.oauth.clone(),
    });
    let mut router = mcp.layer(middleware::from_fn_with_state(guard_state, guard));
    if let Some(oauth) = settings.oauth {
        router = router.merge(oauth.routes());
    }
    let router = router
        .merge(lifecycle::routes(Arc::clone(&state)))
        .layer(middleware::from_fn_with_state(Arc::clone(&state), lifecycle::track));

    // The stop, in order (see `lifecycle`): not ready; after the drain
    // delay, the listener closes; a moment for connections accepted just
    // before to send their requests; those requests are answered (within
    // the grace); then connections are told to finish and streams end.
    let close_listener = CancellationToken::new();
    let finish_connections = CancellationToken::new();
    let stop = {
        let (state, cancel) = (Arc::clone(&state), cancel.clone());
        let (close_listener, finish_connections) = (close_listener.clone(), finish_connections.clone());
        async move {
            shutdown.await;
            state.begin_drain();
            super::say(format_args!(
                "tokportal-mcp: stopping: /readyz answers 503; finishing the requests in flight"
            ));
            tokio::time::sleep(settings.drain_delay).await;
            close_listener.cancel();
            tokio::time::sleep(SETTLE).await;
            if tokio::time::timeout(settings.shutdown_grace, state.drained())
                .await
                .is_err()
            {
                tracing::warn!(
                    in_flight = state.answering(),
                    "the shutdown grace ran out with requests still in flight"
                );
            }
            finish_connections.cancel();
            cancel.cancel();
        }
    };
    tokio::spawn(stop);
    let listener = lifecycle::ClosingListener::new(listener, close_listener)?;
    let serving = axum::serve(listener, router).with_graceful_shutdown(finish_connections.cancelled_owned());
    tokio::select! {
        result = serving => result,
        // Connections that outlive the cancellation (a client that never
        // reads) do not hold the process.
        _ = async {
            cancel.cancelled().await;
            tokio::time::sleep(Duration::from_secs(5)).await;
        } => Ok(()),
    }
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
