//! Dynamic calls by operationId: [`Client::request_operation`] with
//! [`OperationArgs`], [`Client::send_operation`] to stream the answer, and
//! [`Client::call_operation`] with the flat arguments an MCP client sends.

use serde_json::{Map, Value};

use crate::check::OperationArgs;
use crate::error::Error;
use crate::generated::Client;
use crate::operations::{IdempotencyKeySupport, Operation, ParamLocation, flat_keys, lookup};
use crate::pipeline::decode::{Answer, OperationResponse, decode_response};
use crate::pipeline::execute::Body;
use crate::pipeline::{execute, prepare};

impl Client {
    /// Calls any operation by its operationId with JSON arguments.
    ///
    /// Arguments are checked against the spec (unknown, missing or malformed
    /// parameters, a body that does not match its schema) before anything is
    /// sent. Multipart operations are called with [`Client::request_upload`].
    ///
    /// ```no_run
    /// # async fn run(client: tokportal::Client) -> Result<(), tokportal::Error> {
    /// use tokportal::OperationArgs;
    /// let retried = client
    ///     .request_operation(
    ///         "retryWebhookDelivery",
    ///         OperationArgs::new()
    ///             .path("id", "9f3a7b2e-1c4d-4e8f-a5b6-7d9e0f1a2b3c")
    ///             .path("delivery_id", "7a1f3e5d-2222-4333-9444-abc123abc123"),
    ///     )
    ///     .await?;
    /// println!("{:?}", retried.body);
    /// # Ok(()) }
    /// ```
    pub async fn request_operation(&self, operation_id: &str, args: OperationArgs) -> Result<OperationResponse, Error> {
        let op = lookup(operation_id)?;
        let limit = self.inner.settings().max_body;
        let answer = self.send_op(op, args, Body::Buffer(limit)).await?;
        decode_response(op, answer, limit).await
    }

    /// Like [`Client::request_operation`], but returns the successful response
    /// unread, to stream a large body (a CSV export) instead of buffering it.
    pub async fn send_operation(&self, operation_id: &str, args: OperationArgs) -> Result<reqwest::Response, Error> {
        Ok(self
            .send_op(lookup(operation_id)?, args, Body::Stream)
            .await?
            .into_response())
    }

    async fn send_op(&self, op: &'static Operation, args: OperationArgs, body: Body) -> Result<Answer, Error> {
        if op.is_multipart() {
            return Err(Error::invalid(
                Some(op.id),
                None,
                "a multipart upload: call it with `request_upload` or its typed method",
            ));
        }
        let settings = self.inner.settings();
        let mut request = prepare::build_request(&self.baseurl, op, &args, settings.strict)?;
        if let Some(body) = &args.body {
            let bytes =
                serde_json::to_vec(body).map_err(|e| Error::invalid(Some(op.id), Some("body"), e.to_string()))?;
            request.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/json"),
            );
            *request.body_mut() = Some(bytes.into());
        }
        prepare::prepare(settings, op, &mut request)?;
        let replay = execute::replay_for(settings, &request);
        execute::send(&self.client, settings, op, request, replay, body).await
    }
}

impl Client {
    /// Calls an operation with flat arguments shaped by [`Operation::input_schema`]
    /// (what an MCP client sends): unknown or malformed arguments are refused,
    /// naming the field, before anything is sent.
    pub async fn call_operation(
        &self,
        operation_id: &str,
        arguments: Map<String, Value>,
    ) -> Result<OperationResponse, Error> {
        let op = lookup(operation_id)?;
        let mut args = OperationArgs::new();
        let mut form = Map::new();
        let mut file = None;
        let form_fields: Vec<String> = op
            .body
            .filter(|_| op.is_multipart())
            .map(|b| b.form_fields().into_iter().map(|f| f.name).collect())
            .unwrap_or_default();
        for (key, value) in arguments {
            let text = || match &value {
                Value::String(s) => Ok(s.clone()),
                _ => Err(Error::invalid(Some(op.id), Some(&key), "must be a string")),
            };
            match key.as_str() {
                flat_keys::IDEMPOTENCY_KEY => args.idempotency_key = Some(text()?),
                flat_keys::REQUEST_ID => args.request_id = Some(text()?),
                // A body where the contract has none is the check's to warn about or refuse.
                flat_keys::BODY if !op.is_multipart() => args.body = Some(value),
                flat_keys::DRY_RUN if !op.method.is_read_only() => match value {
                    Value::Bool(b) => args.dry_run = b,
                    _ => return Err(Error::invalid(Some(op.id), Some(&key), "must be a boolean")),
                },
                flat_keys::FILE_PATH if op.is_multipart() => file = Some(text()?),
                _ => match op.param(&key) {
                    Some(p) if p.location == ParamLocation::Path => {
                        args.path.insert(key, value);
                    }
                    Some(_) => {
                        args.query.insert(key, value);
                    }
                    None if form_fields.contains(&key) => {
                        form.insert(key, value);
                    }
                    // Not in the vendored contract: sent as given (the checks warn),
                    // unless the client holds to the contract strictly.
                    None if !self.inner.settings().strict && op.is_multipart() => {
                        form.insert(key, value);
                    }
                    None if !self.inner.settings().strict => {
                        args.query.insert(key, value);
                    }
                    None => {
                        return Err(Error::invalid(
                            Some(op.id),
                            Some(&key),
                            format!("not an argument of {}", op.id),
                        ));
                    }
                },
            }
        }
        if op.is_multipart() {
            let path = file.ok_or_else(|| Error::invalid(Some(op.id), Some(flat_keys::FILE_PATH), "required"))?;
            if op.idempotency_key == IdempotencyKeySupport::Refused && args.idempotency_key.is_some() {
                return Err(Error::invalid(
                    Some(op.id),
                    Some(flat_keys::IDEMPOTENCY_KEY),
                    "refused by this operation",
                ));
            }
            let mut fields = args.path.clone();
            fields.extend(form);
            let mut options = super::uploads::UploadOptions::new();
            if let Some(k) = args.idempotency_key {
                options = options.idempotency_key(k);
            }
            if let Some(r) = args.request_id {
                options = options.request_id(r);
            }
            if args.dry_run {
                options = options.dry_run();
            }
            return self
                .request_upload(op.id, fields, super::uploads::UploadSource::path(path), options)
                .await;
        }
        self.request_operation(op.id, args).await
    }
}
