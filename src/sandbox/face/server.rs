//! The listener: HTTP/1.1 connections served by hyper, each of which a fault
//! can close without an answer (which a framework's `serve` cannot do).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::sandbox::face::admin;
use crate::sandbox::face::flow::{self, Connection};
use crate::sandbox::face::relay;
use crate::sandbox::face::shared::Shared;

/// At most this many connections are served at once; the next ones wait.
const MAX_CONNECTIONS: usize = 1024;

/// The sandbox's own routes under `/_sandbox/`, or the API's flow (the
/// live API's, when proxying); on
/// loopback, either only for a loopback (or allowed) `Host`.
async fn answer(
    shared: &Arc<Shared>,
    connection: &Connection,
    request: http::Request<hyper::body::Incoming>,
) -> http::Response<axum::body::Body> {
    if let Some(refused) = admin::refuse_host(shared, request.headers()) {
        return refused;
    }
    match admin::route(flow::api_path(request.uri().path())).map(str::to_owned) {
        Some(route) => {
            let (parts, body) = request.into_parts();
            admin::handle(shared, &route, parts, axum::body::Body::new(body)).await
        }
        None => match &shared.live.upstream {
            Some(upstream) => relay::handle(shared, upstream, request).await,
            None => flow::handle(shared, connection, request).await,
        },
    }
}

/// Accepts connections until `stop` is cancelled, then closes them all.
pub(in crate::sandbox) async fn serve(listener: TcpListener, shared: Arc<Shared>, stop: CancellationToken) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        let (stream, peer) = tokio::select! {
            _ = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // Out of file descriptors and the like: wait, then go on.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // An answer streamed in several writes (a proxied one) must not wait
        // on Nagle's algorithm for the client's delayed ACK (40 ms each).
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        let stop = stop.clone();
        connections.spawn(async move {
            let _slot = slot;
            let close = CancellationToken::new();
            let connection = Connection {
                peer,
                close: close.clone(),
            };
            let service = hyper::service::service_fn(move |request| {
                let shared = shared.clone();
                let connection = connection.clone();
                async move { Ok::<_, Infallible>(answer(&shared, &connection, request).await) }
            });
            let served = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(30))
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = served => {}
                _ = close.cancelled() => {}
                _ = stop.cancelled() => {}
            }
        });
        while connections.try_join_next().is_some() {}
    }
    connections.shutdown().await;
}
