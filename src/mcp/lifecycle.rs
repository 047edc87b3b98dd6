//! The HTTP server's life: `GET /healthz` (alive), `GET /readyz` (ready, and
//! not while draining), the count of requests being answered, and the signals
//! that start a graceful stop (SIGTERM from an orchestrator, SIGINT from a
//! terminal).
//!
//! A stop goes: the signal; `/readyz` answers 503; after `--drain-delay`
//! the listener closes (a load balancer's next connection goes to another
//! replica); requests already in (a paid create among them) are answered
//! within `--shutdown-grace`; then open streams are ended and the process
//! exits 0.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::StreamExt;
use serde_json::json;
use tokio::sync::Notify;

/// Whether the server is draining, and how many requests it is answering.
#[derive(Debug, Default)]
pub struct Lifecycle {
    draining: AtomicBool,
    answering: AtomicUsize,
    idle: Notify,
}

impl Lifecycle {
    /// From now on `/readyz` answers 503.
    pub fn begin_drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Whether a stop has begun.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Requests (POSTs) whose answers are not yet fully sent.
    pub fn answering(&self) -> usize {
        self.answering.load(Ordering::SeqCst)
    }

    /// One more request being answered, until the guard is dropped.
    pub fn enter(self: &Arc<Self>) -> Answering {
        self.answering.fetch_add(1, Ordering::SeqCst);
        Answering(Arc::clone(self))
    }

    /// Resolves once no request is being answered.
    pub async fn drained(&self) {
        loop {
            let idle = self.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            if self.answering() == 0 {
                return;
            }
            idle.await;
        }
    }
}

/// A request being answered; dropped when its answer's body has been sent
/// (or the client went away).
pub struct Answering(Arc<Lifecycle>);

impl Drop for Answering {
    fn drop(&mut self) {
        if self.0.answering.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

fn status(code: StatusCode, status: &str) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        json!({"status": status}).to_string(),
    )
        .into_response()
}

/// `GET /healthz` and `GET /readyz`, outside the key guard: a probe has no key.
pub fn routes(lifecycle: Arc<Lifecycle>) -> axum::Router {
    axum::Router::new()
        .route("/healthz", get(|| async { status(StatusCode::OK, "ok") }))
        .route(
            "/readyz",
            get(|State(l): State<Arc<Lifecycle>>| async move {
                if l.is_draining() {
                    status(StatusCode::SERVICE_UNAVAILABLE, "draining")
                } else {
                    status(StatusCode::OK, "ready")
                }
            }),
        )
        .with_state(lifecycle)
}

/// The middleware that counts POSTs (initialize, tool calls) until their
/// answer's last byte is handed to the connection. GET streams, which live
/// as long as their client wants, are not counted: the stop ends them.
pub async fn track(State(lifecycle): State<Arc<Lifecycle>>, request: Request, next: Next) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let answering = lifecycle.enter();
    let (parts, body) = next.run(request).await.into_parts();
    // The guard lives in the body's stream, so it is dropped when hyper has
    // sent the whole answer (an SSE answer ends after its last message).
    let body = Body::from_stream(body.into_data_stream().map(move |chunk| {
        let _answering = &answering;
        chunk
    }));
    Response::from_parts(parts, body)
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C); elsewhere than Unix, on Ctrl-C.
pub async fn termination() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM: stopping"),
                    _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: stopping"),
                }
                return;
            }
            Err(e) => tracing::warn!(error = %e, "cannot listen for SIGTERM; Ctrl-C only"),
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn drained_waits_for_every_answer() {
        let l = Arc::new(Lifecycle::default());
        l.drained().await; // nothing in: at once
        let a = l.enter();
        let b = l.enter();
        let waiting = tokio::spawn({
            let l = Arc::clone(&l);
            async move { l.drained().await }
        });
        drop(a);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "one answer is still going out");
        drop(b);
        tokio::time::timeout(Duration::from_secs(2), waiting)
            .await
            .expect("drained once the last answer is out")
            .unwrap();
    }

    #[tokio::test]
    async fn readyz_says_draining_and_healthz_stays_ok() {
        use tower::ServiceExt;
        let l = Arc::new(Lifecycle::default());
        let app = routes(Arc::clone(&l));
        let get = |path: &str| axum::http::Request::builder().uri(path).body(Body::empty()).unwrap();
        assert_eq!(app.clone().oneshot(get("/readyz")).await.unwrap().status(), 200);
        l.begin_drain();
        assert_eq!(app.clone().oneshot(get("/readyz")).await.unwrap().status(), 503);
        assert_eq!(app.oneshot(get("/healthz")).await.unwrap().status(), 200);
    }
}
