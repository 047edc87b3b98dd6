//! The generated client's hooks: every typed call goes through the same
//! checks and request pipeline as the hand-written ones, here.

use progenitor_client::{ClientHooks, OperationInfo};

use crate::error::{CarriedError, Error};
use crate::generated::Client;
use crate::operations::{self, IdempotencyKeySupport};
use crate::pipeline::execute::Body;
use crate::pipeline::{ClientState, decode, execute, prepare};

impl ClientHooks<ClientState> for Client {
    async fn pre<E>(
        &self,
        request: &mut reqwest::Request,
        info: &OperationInfo,
    ) -> Result<(), progenitor_client::Error<E>> {
        // progenitor names the operation by its Rust method.
        let op = operations::find_by_rust_method(info.operation_id)
            .ok_or_else(|| progenitor_client::Error::Custom(format!("unknown operation {}", info.operation_id)))?;
        // The hand-written calls check their arguments as JSON before building the
        // request; the generated ones are checked here, from the built request.
        let strict = self.inner.settings().strict;
        crate::check::request::check_request(op, request, strict)
            .and_then(|()| prepare::prepare(self.inner.settings(), op, request, false))
            // Carried whole through progenitor's string, and taken back out as
            // the same variant by `Error::from` / `Error::from_generated`.
            .map_err(|e| progenitor_client::Error::InvalidRequest(e.to_pre_failure()))
    }

    async fn exec(&self, request: reqwest::Request, info: &OperationInfo) -> reqwest::Result<reqwest::Response> {
        let op = operations::find_by_rust_method(info.operation_id);
        // Traced under its operationId, like the hand-written calls.
        let name = op.map_or(info.operation_id, |op| op.id);
        let settings = self.inner.settings();
        let replay = execute::replay_for(settings, &request);
        let deadline = settings.retry.overall_deadline();
        // JSON answers are read within the attempt (bounded, retried when they
        // break off); CSV and HTML exports reach the caller as a stream.
        let body = match op.and_then(|op| op.success_content_type) {
            Some(t) if !t.contains("json") => Body::Stream,
            _ => Body::Buffer(settings.max_body),
        };
        let response = match execute::execute(&self.client, settings, name, request, replay, deadline, body).await {
            Ok(response) => response,
            Err(error) => return Ok(carry(error)),
        };
        let secret = op.is_some_and(|op| op.idempotency_key == IdempotencyKeySupport::Refused);
        if secret && response.status().is_success() {
            // Their typed answers are JSON objects; anything else would reach a
            // decode error (and its Debug) with the secret inside, so withhold it.
            return Ok(decode::withhold_unless_json_object(response).await);
        }
        Ok(response)
    }
}

/// A stand-in answer that carries `error` through progenitor's `send()`: it
/// is not a success, so progenitor returns it as unexpected, and
/// `tokportal::Error::from` takes the error back out whole.
fn carry(error: Error) -> reqwest::Response {
    let mut response = http::Response::new(bytes::Bytes::new());
    // 599: not an HTTP answer; never shown, only carried.
    *response.status_mut() = http::StatusCode::from_u16(599).unwrap_or(http::StatusCode::BAD_GATEWAY);
    response.extensions_mut().insert(CarriedError::new(error));
    reqwest::Response::from(response)
}
