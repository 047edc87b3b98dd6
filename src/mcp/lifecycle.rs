//! The HTTP server's life: `GET /healthz` (alive), `GET /readyz` (ready, and
//! not while draining), the count of requests being answered, and the signals
//! that start a graceful stop (SIGTERM from an orchestrator, SIGINT from a
//! terminal).
//!
//! A stop goes: the signal; `/readyz` answers 503; after `--drain-delay`
//! the listener closes ([`ClosingListener`]: a load balancer's next
//! connection is refused, and goes to another replica), the connections it
//! had already accepted keep being served; requests already in (a paid create
//! among them) are answered within `--shutdown-grace`; then idle connections
//! and open streams are ended and the process exits 0.

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
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Whether the server is draining, and how many requests it is answering.
#[derive(Debug, Default)]
pub struct Lifecycle {
    draining: AtomicBool,
    answering: AtomicUsize,
    idle: Notify,
    /// The store whose answer `/readyz` waits for, when there is one.
    store: std::sync::OnceLock<Arc<crate::mcp::store::Store>>,
}

impl Lifecycle {
    /// `/readyz` answers 503 while `store` cannot be reached.
    pub fn watch_store(&self, store: Arc<crate::mcp::store::Store>) {
        let _ = self.store.set(store);
    }

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
                    return status(StatusCode::SERVICE_UNAVAILABLE, "draining");
                }
                if let Some(store) = l.store.get()
                    && let Err(e) = store.ping().await
                {
                    tracing::error!(store = %e.store, error = %e.message, "not ready: the store cannot be reached");
                    return status(StatusCode::SERVICE_UNAVAILABLE, "store unavailable");
                }
                status(StatusCode::OK, "ready")
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

/// A listener that can be closed while the server goes on serving the
/// connections it accepted. axum's own graceful shutdown closes the listener
/// and tells every connection to finish at the same moment, so a connection
/// accepted an instant before, whose request is on its way, is closed unread
/// (a load balancer answers 502 and must not re-send a POST). Here the
/// listener closes first, once every connection the kernel had completed
/// is taken (`take_backlog`); connections are told to finish later.
pub struct ClosingListener {
    inner: Option<TcpListener>,
    close: CancellationToken,
    addr: std::net::SocketAddr,
    /// What the kernel had accepted for us when the listener closed.
    backlog: std::collections::VecDeque<(TcpStream, std::net::SocketAddr)>,
}

impl ClosingListener {
    /// Wraps `listener`; cancelling `close` closes it.
    pub fn new(listener: TcpListener, close: CancellationToken) -> std::io::Result<Self> {
        Ok(Self {
            addr: listener.local_addr()?,
            inner: Some(listener),
            close,
            backlog: std::collections::VecDeque::new(),
        })
    }
}

/// Every connection the kernel has completed on `listener`, taken with
/// `accept` calls until it has none, then the listener closed. tokio's own
/// `accept` cannot do this: it tries the call only once its reactor has seen
/// the listener readable, which it may not have yet, and a listener closed
/// with connections queued resets them after their clients sent a request.
fn take_backlog(listener: TcpListener) -> std::collections::VecDeque<(TcpStream, std::net::SocketAddr)> {
    let mut taken = std::collections::VecDeque::new();
    // tokio keeps the socket non-blocking: `accept` says WouldBlock when empty.
    let Ok(listener) = listener.into_std() else {
        return taken;
    };
    loop {
        match listener.accept() {
            Ok((stream, addr)) => {
                if let Ok(stream) = stream.set_nonblocking(true).and_then(|()| TcpStream::from_std(stream)) {
                    taken.push_back((stream, addr));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                if e.kind() != std::io::ErrorKind::WouldBlock {
                    tracing::debug!(error = %e, "accept failed while closing");
                }
                return taken;
            }
        }
    }
}

impl axum::serve::Listener for ClosingListener {
    type Io = TcpStream;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (TcpStream, std::net::SocketAddr) {
        loop {
            if self.close.is_cancelled() {
                // Take what the kernel has already accepted for us, then close:
                // those clients have sent their requests and must be answered.
                if let Some(listener) = self.inner.take() {
                    self.backlog = take_backlog(listener);
                }
                return match self.backlog.pop_front() {
                    Some(connection) => connection,
                    // Closed: axum's accept loop waits here until its shutdown.
                    None => std::future::pending().await,
                };
            }
            let Some(listener) = &self.inner else {
                return std::future::pending().await;
            };
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(connection) => return connection,
                    // Out of file descriptors and the like: wait a little, as axum's own listener does.
                    Err(e) => {
                        tracing::debug!(error = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    }
                },
                _ = self.close.cancelled() => {}
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        Ok(self.addr)
    }
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

    /// Connections the kernel completed before the close, which the server
    /// had not yet seen, are handed out after it, then none: closing with
    /// them queued would reset them, and a load balancer that already sent a
    /// POST on one answers 502 rather than send it again.
    #[tokio::test]
    async fn a_close_hands_out_every_connection_the_kernel_had_completed() {
        use axum::serve::Listener;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let close = CancellationToken::new();
        let mut closing = ClosingListener::new(listener, close.clone()).unwrap();
        // Completed by the kernel, a request sent on each; the server has not
        // looked at its listener since.
        let clients: Vec<_> = (0..3)
            .map(|_| {
                let mut c = std::net::TcpStream::connect(addr).unwrap();
                std::io::Write::write_all(&mut c, b"POST /mcp").unwrap();
                c
            })
            .collect();
        close.cancel();
        for i in 0..clients.len() {
            tokio::time::timeout(Duration::from_secs(2), closing.accept())
                .await
                .unwrap_or_else(|_| panic!("connection {i} was handed out"));
        }
        assert!(
            tokio::time::timeout(Duration::from_millis(100), closing.accept())
                .await
                .is_err(),
            "no more after them"
        );
        assert!(std::net::TcpStream::connect(addr).is_err(), "the listener is closed");
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
