//! The one public error type of the SDK.

use std::fmt;

use http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::Value;

use crate::meta::{RateLimit, ResponseMeta};

/// How much of a non-JSON error body is kept (an HTML page from a proxy can be large).
pub(crate) const RAW_BODY_LIMIT: usize = 64 * 1024;

/// Message of [`Error::MissingApiKey`].
pub(crate) const MISSING_API_KEY: &str =
    "this operation needs an API key: pass one to the client builder or set TOKPORTAL_API_KEY";

/// Everything that can go wrong with a call.
///
/// ```no_run
/// # async fn run(client: tokportal::Client) {
/// match client.get_current_user().send().await {
///     Ok(me) => println!("signed in as {}", me.into_inner().data.email),
///     Err(tokportal::Error::Api(e)) if e.is_retryable() => println!(
///         "busy: retry in {} s (request {})",
///         e.retry_after_seconds.unwrap_or(1),
///         e.request_id.as_deref().unwrap_or("without an id")
///     ),
///     Err(e) => eprintln!("{e}"),
/// }
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The API answered with an error status.
    #[error("{0}")]
    Api(Box<ApiError>),
    /// The connection could not be made (DNS, refused, TLS): nothing
    /// reached the server.
    #[error(
        "cannot connect to the TokPortal API{}: {}{}",
        connect_target(source),
        root_cause(source),
        key_note(idempotency_key)
    )]
    Connect {
        /// The transport's error.
        #[source]
        source: reqwest::Error,
        /// The `Idempotency-Key` the call was sent with, if it had one.
        idempotency_key: Option<String>,
    },
    /// An attempt ran out of time: the client's
    /// [`timeout`](crate::ClientBuilder::timeout) (or a call's own, or what
    /// was left of the retry policy's overall deadline) elapsed before the
    /// whole answer arrived, or the transport's own timer ran out.
    #[error("the request timed out{}{}", timed_out(after, source), key_note(idempotency_key))]
    Timeout {
        /// The limit that ran out, when it was the SDK's.
        after: Option<std::time::Duration>,
        /// The transport's error, when it was the transport's own timer.
        #[source]
        source: Option<reqwest::Error>,
        /// The `Idempotency-Key` the call was sent with, if it had one:
        /// send the call again with it to be charged at most once.
        idempotency_key: Option<String>,
    },
    /// Any other transport failure (connection reset, body stream error).
    #[error("transport error: {source}{}", key_note(idempotency_key))]
    Transport {
        /// The transport's error.
        #[source]
        source: reqwest::Error,
        /// The `Idempotency-Key` the call was sent with, if it had one:
        /// send the call again with it to be charged at most once.
        idempotency_key: Option<String>,
    },
    /// The connection broke after the request may have reached the server,
    /// and the request was not sent again because doing so could apply it
    /// twice (a `POST`/`PATCH` without an idempotency key). It may have been
    /// applied: look it up (by its request id when one was seen) before
    /// sending it again, or send it with an idempotency key.
    #[error(
        "the answer was lost{}: the request may have been applied, so it was not sent again{}: {message}{}",
        status.map(|s| format!(" (HTTP {s} started)")).unwrap_or_default(),
        request_id.as_ref().map(|id| format!(" (request id {id})")).unwrap_or_default(),
        key_note(idempotency_key)
    )]
    AnswerLost {
        /// The status, when the answer's head arrived before the body broke.
        status: Option<u16>,
        /// `X-TokPortal-Request-ID`, when the head arrived.
        request_id: Option<String>,
        /// What broke.
        message: String,
        /// The `Idempotency-Key` the call was sent with, if it had one.
        idempotency_key: Option<String>,
    },
    /// A success answer larger than the client's limit
    /// ([`ClientBuilder::max_response_body`](crate::ClientBuilder::max_response_body),
    /// 64 MiB by default). It was not read past the limit; stream large
    /// answers with [`Client::send_operation`](crate::Client::send_operation).
    #[error(
        "the HTTP {status} answer is larger than the {limit}-byte limit{}; stream it with send_operation or raise ClientBuilder::max_response_body{}",
        request_id.as_ref().map(|id| format!(" (request id {id})")).unwrap_or_default(),
        key_note(idempotency_key)
    )]
    ResponseTooLarge {
        /// HTTP status of the answer.
        status: u16,
        /// The limit, in bytes.
        limit: u64,
        /// `X-TokPortal-Request-ID`, when given.
        request_id: Option<String>,
        /// The `Idempotency-Key` the call was sent with, if it had one: the
        /// call was applied; send it again with this key to read its
        /// answer without a second charge.
        idempotency_key: Option<String>,
    },
    /// An argument does not match the spec; nothing was sent. `field` and
    /// `message` describe the first problem, `others` the rest, so that a
    /// caller (an agent, a form) can mend them all at once.
    #[error("{}", invalid_text(operation.as_deref(), field.as_deref(), message, others))]
    InvalidArgument {
        /// The operation, when known.
        operation: Option<String>,
        /// The offending parameter or body field, when known.
        field: Option<String>,
        /// What is wrong.
        message: String,
        /// Further problems with the same call.
        others: Vec<InvalidField>,
    },
    /// The operation needs an API key and the client has none; nothing was sent.
    #[error("{MISSING_API_KEY}")]
    MissingApiKey,
    /// A success response whose body could not be decoded.
    #[error("cannot decode the HTTP {status} response: {message}{}", key_note(idempotency_key))]
    Decode {
        /// HTTP status of the response.
        status: u16,
        /// Why decoding failed.
        message: String,
        /// The body as received (lossy UTF-8, truncated to 64 KiB); empty
        /// for the answers of the operations that return a secret.
        body: String,
        /// The `Idempotency-Key` the call was sent with, if it had one: the
        /// call was applied; send it again with this key to read its
        /// answer without a second charge.
        idempotency_key: Option<String>,
    },
    /// A local file could not be read (an upload source).
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The client configuration is invalid (a bad base URL, a bad header value).
    #[error("invalid client configuration: {0}")]
    Config(String),
}

impl Error {
    /// True for failures worth retrying: 408, 429, 5xx, connection failures and timeouts.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Api(e) => e.is_retryable(),
            Error::Connect { .. } | Error::Timeout { .. } | Error::Transport { .. } => true,
            _ => false,
        }
    }

    /// The API error, when the server answered with an error status.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Error::Api(e) => Some(e),
            _ => None,
        }
    }

    /// HTTP status, when a response was received.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api(e) => Some(e.status),
            Error::Decode { status, .. } | Error::ResponseTooLarge { status, .. } => Some(*status),
            Error::AnswerLost { status, .. } => *status,
            _ => None,
        }
    }

    pub(crate) fn invalid(operation: Option<&str>, field: Option<&str>, message: impl Into<String>) -> Self {
        Error::InvalidArgument {
            operation: operation.map(str::to_owned),
            field: field.map(str::to_owned),
            message: message.into(),
            others: Vec::new(),
        }
    }

    /// Every problem of an [`Error::InvalidArgument`], the first included.
    pub fn invalid_fields(&self) -> Vec<InvalidField> {
        match self {
            Error::InvalidArgument {
                field, message, others, ..
            } => std::iter::once(InvalidField {
                field: field.clone(),
                message: message.clone(),
            })
            .chain(others.iter().cloned())
            .collect(),
            _ => Vec::new(),
        }
    }

    /// One [`Error::InvalidArgument`] holding every problem of `errors`
    /// (the first error as it is when it is of another kind).
    pub(crate) fn combine(mut errors: Vec<Error>) -> Option<Error> {
        if errors.is_empty() {
            return None;
        }
        let mut first = errors.remove(0);
        if let Error::InvalidArgument { others, .. } = &mut first {
            others.extend(errors.iter().flat_map(Error::invalid_fields));
        }
        Some(first)
    }

    /// The TokPortal error code of an API error answer
    /// (`INSUFFICIENT_CREDITS`), when its body is the JSON error envelope.
    ///
    /// ```
    /// let e = tokportal::Error::Api(Box::new(tokportal::ApiError::from_parts(
    ///     http::StatusCode::PAYMENT_REQUIRED,
    ///     &http::HeaderMap::new(),
    ///     br#"{"error":{"code":"INSUFFICIENT_CREDITS","message":"Not enough credits."}}"#,
    /// )));
    /// assert_eq!(e.code(), Some("INSUFFICIENT_CREDITS"));
    /// ```
    pub fn code(&self) -> Option<&str> {
        self.api().and_then(|e| e.code.as_deref())
    }

    /// The `Idempotency-Key` a call was sent with, when it failed after
    /// sending (an error answer, a lost or unreadable answer, a timeout, a
    /// broken connection). Send the same call again with this key (the
    /// typed builders' `.idempotency_key(..)`, `OperationArgs::idempotency_key`,
    /// `--idempotency-key` in the CLI) and it is charged at most once,
    /// whatever became of the first attempt. `None` when nothing was sent,
    /// or the call had no key (a read, a dry run, retries off).
    ///
    /// ```no_run
    /// # async fn run(client: tokportal::Client, body: tokportal::types::CreateBundleRequest) {
    /// match client.create_bundle().body(body.clone()).send().await {
    ///     Ok(bundle) => println!("created {}", bundle.data.get("id").unwrap_or(&serde_json::Value::Null)),
    ///     Err(e) => match e.idempotency_key() {
    ///         // Later: the same call, the same key, one charge at most.
    ///         Some(key) => eprintln!("{e}; resend with idempotency key {key}"),
    ///         None => eprintln!("{e}"),
    ///     },
    /// }
    /// # }
    /// ```
    pub fn idempotency_key(&self) -> Option<&str> {
        match self {
            Error::Api(e) => e.idempotency_key.as_deref(),
            Error::Connect { idempotency_key, .. }
            | Error::Timeout { idempotency_key, .. }
            | Error::Transport { idempotency_key, .. }
            | Error::AnswerLost { idempotency_key, .. }
            | Error::ResponseTooLarge { idempotency_key, .. }
            | Error::Decode { idempotency_key, .. } => idempotency_key.as_deref(),
            Error::InvalidArgument { .. } | Error::MissingApiKey | Error::Io { .. } | Error::Config(_) => None,
        }
    }

    /// The error of a call that was sent with `key` as its `Idempotency-Key`
    /// (nothing changes for an error raised before sending).
    pub(crate) fn with_idempotency_key(mut self, key: Option<&http::HeaderValue>) -> Self {
        let Some(key) = key.and_then(|k| k.to_str().ok()) else {
            return self;
        };
        let slot = match &mut self {
            Error::Api(e) => &mut e.idempotency_key,
            Error::Connect { idempotency_key, .. }
            | Error::Timeout { idempotency_key, .. }
            | Error::Transport { idempotency_key, .. }
            | Error::AnswerLost { idempotency_key, .. }
            | Error::ResponseTooLarge { idempotency_key, .. }
            | Error::Decode { idempotency_key, .. } => idempotency_key,
            Error::InvalidArgument { .. } | Error::MissingApiKey | Error::Io { .. } | Error::Config(_) => {
                return self;
            }
        };
        *slot = Some(key.to_owned());
        self
    }

    pub(crate) fn from_reqwest(e: reqwest::Error) -> Self {
        if e.is_timeout() {
            Error::Timeout {
                after: None,
                source: Some(e),
                idempotency_key: None,
            }
        } else if e.is_connect() {
            Error::Connect {
                source: e,
                idempotency_key: None,
            }
        } else {
            Error::Transport {
                source: e,
                idempotency_key: None,
            }
        }
    }

    pub(crate) fn decode(status: u16, message: impl fmt::Display, body: &[u8]) -> Self {
        Error::Decode {
            status,
            message: message.to_string(),
            body: lossy_truncated(body),
            idempotency_key: None,
        }
    }
}

/// ` (idempotency key K: ...)`, the end of the message of an error whose
/// call was sent with a key.
fn key_note(key: &Option<String>) -> String {
    key.as_ref()
        .map(|k| format!(" (idempotency key {k}: send the call again with it to be charged at most once)"))
        .unwrap_or_default()
}

/// An error and its causes on one line (each cause once), for a message on
/// stderr or in an error that wraps a transport failure.
/// ` at https://host:port` of a failed connection, when reqwest knows the URL.
fn connect_target(e: &reqwest::Error) -> String {
    e.url()
        .map(|u| format!(" at {}", u.origin().ascii_serialization()))
        .unwrap_or_default()
}

/// What failed at the bottom of a chain (`Connection refused (os error
/// 111)`, `dns error: ...`), rather than every wrapper's own words.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut deepest = e;
    while let Some(next) = deepest.source() {
        deepest = next;
    }
    deepest.to_string().replace('\n', " ")
}

pub(crate) fn one_line(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let next = s.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = s.source();
    }
    text.replace('\n', " ")
}

/// One problem with a call's arguments.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct InvalidField {
    /// The parameter or body field, when known.
    pub field: Option<String>,
    /// What is wrong with it.
    pub message: String,
}

/// `createBundle: invalid argument `body`: ...; `per_page`: ...`.
fn invalid_text(operation: Option<&str>, field: Option<&str>, message: &str, others: &[InvalidField]) -> String {
    let mut text = String::new();
    if let Some(op) = operation {
        text.push_str(op);
        text.push_str(": ");
    }
    text.push_str(if others.is_empty() {
        "invalid argument"
    } else {
        "invalid arguments"
    });
    for (i, (field, message)) in std::iter::once((field, message))
        .chain(others.iter().map(|o| (o.field.as_deref(), o.message.as_str())))
        .enumerate()
    {
        text.push_str(if i == 0 { "" } else { ";" });
        if let Some(f) = field {
            text.push_str(&format!(" `{f}`"));
        }
        text.push_str(": ");
        text.push_str(message);
    }
    text
}

/// An error answer from the TokPortal API, with everything the response said.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ApiError {
    /// HTTP status code.
    pub status: u16,
    /// TokPortal error code (`RATE_LIMIT_EXCEEDED`), when the body is the JSON error envelope.
    pub code: Option<String>,
    /// Human-readable message: the API's, or the status reason when the body is not JSON.
    pub message: String,
    /// `error.details`, when present.
    pub details: Option<Value>,
    /// `X-TokPortal-Request-ID`, else `X-Request-ID`.
    pub request_id: Option<String>,
    /// `Retry-After`, in seconds.
    pub retry_after_seconds: Option<u64>,
    /// `X-RateLimit-*`.
    pub rate_limit: Option<RateLimit>,
    /// The body as received when it is not the JSON error envelope (an HTML page
    /// from a proxy, an empty body, truncated JSON); lossy UTF-8, at most 64 KiB.
    pub raw_body: Option<String>,
    /// The body parsed as JSON, when it is JSON (envelope or not).
    pub body_json: Option<Value>,
    /// The `Idempotency-Key` the call was sent with, if it had one. The
    /// server keeps the answer to a key for 24 hours: the same call with
    /// the same key is not applied twice.
    pub idempotency_key: Option<String>,
}

#[derive(Deserialize)]
struct Envelope {
    error: EnvelopeError,
}

#[derive(Deserialize)]
struct EnvelopeError {
    code: String,
    message: String,
    #[serde(default)]
    details: Option<Value>,
}

impl ApiError {
    /// Builds the error from a response's status, headers and body.
    pub fn from_parts(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Self {
        let meta = ResponseMeta::from_parts(status.as_u16(), headers);
        let body_json = serde_json::from_slice::<Value>(body).ok();
        let envelope = body_json
            .as_ref()
            .and_then(|v| serde_json::from_value::<Envelope>(v.clone()).ok());
        let reason = status.canonical_reason().unwrap_or("error").to_owned();
        let (code, message, details, raw_body) = match envelope {
            Some(Envelope { error }) => (Some(error.code), error.message, error.details, None),
            None => (None, reason, None, Some(lossy_truncated(body))),
        };
        Self {
            status: status.as_u16(),
            code,
            message,
            details,
            request_id: meta.request_id,
            retry_after_seconds: meta.retry_after_seconds,
            rate_limit: meta.rate_limit,
            raw_body,
            body_json,
            idempotency_key: None,
        }
    }

    /// `error.details` as your own type (`Option<T>` for details that may be
    /// absent; absent details decode as JSON `null`).
    ///
    /// ```
    /// #[derive(serde::Deserialize)]
    /// struct Credits { required: f64, available: f64 }
    /// let e = tokportal::ApiError::from_parts(
    ///     http::StatusCode::PAYMENT_REQUIRED,
    ///     &http::HeaderMap::new(),
    ///     br#"{"error":{"code":"INSUFFICIENT_CREDITS","message":"Not enough credits.","details":{"required":14,"available":12}}}"#,
    /// );
    /// let credits: Credits = e.details_as()?;
    /// assert_eq!((credits.required, credits.available), (14.0, 12.0));
    /// # Ok::<(), tokportal::Error>(())
    /// ```
    pub fn details_as<T: serde::de::DeserializeOwned>(&self) -> Result<T, Error> {
        let null = Value::Null;
        T::deserialize(self.details.as_ref().unwrap_or(&null)).map_err(|e| Error::Decode {
            status: self.status,
            message: format!("`error.details` is not a {}: {e}", std::any::type_name::<T>()),
            body: String::new(),
            idempotency_key: self.idempotency_key.clone(),
        })
    }

    /// True for 408, 429 and every 5xx.
    pub fn is_retryable(&self) -> bool {
        is_retryable_status(self.status)
    }

    /// A 428: the API wants an acceptance first (the preview before
    /// `revealAccountCredentials` or `retrieveAccountVerificationCode`).
    /// Read [`details`](Self::details), then send the call again with the
    /// acceptance as its body (`OperationArgs::body`, or `--body` in the CLI).
    /// Never retried as it is.
    pub fn acceptance_required(&self) -> bool {
        self.status == 428
    }

    /// The API's JSON payload, or `{"raw_body": ...}` when the body was not JSON
    /// (what the CLI and the MCP server report as `payload`).
    pub fn payload(&self) -> Value {
        match (&self.body_json, &self.raw_body) {
            (Some(json), _) => json.clone(),
            (None, raw) => serde_json::json!({ "raw_body": raw.clone().unwrap_or_default() }),
        }
    }

    /// `{"request_id", "status", "retry_after_seconds", "rate_limit"}`, as
    /// the other official clients report it, and `idempotency_key` when the
    /// call was sent with one.
    pub fn diagnostics(&self) -> Value {
        let mut d = serde_json::json!({
            "request_id": self.request_id,
            "status": self.status,
            "retry_after_seconds": self.retry_after_seconds,
            "rate_limit": self.rate_limit,
        });
        if let (Some(key), Some(map)) = (&self.idempotency_key, d.as_object_mut()) {
            map.insert("idempotency_key".into(), Value::String(key.clone()));
        }
        d
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP {}", self.status)?;
        if let Some(code) = &self.code {
            write!(f, " {code}")?;
        }
        write!(f, ": {}", self.message.replace(['\r', '\n'], " "))?;
        if let Some(id) = &self.request_id {
            write!(f, " (request id {id})")?;
        }
        if let Some(key) = &self.idempotency_key {
            write!(f, " (idempotency key {key})")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

/// 408, 429 and 5xx.
pub(crate) fn is_retryable_status(status: u16) -> bool {
    status == 408 || status == 429 || (500..600).contains(&status)
}

fn lossy_truncated(body: &[u8]) -> String {
    let cut = &body[..body.len().min(RAW_BODY_LIMIT)];
    String::from_utf8_lossy(cut).into_owned()
}

/// The end of [`Error::Timeout`]'s message: after how long, or the transport's words.
fn timed_out(after: &Option<std::time::Duration>, source: &Option<reqwest::Error>) -> String {
    match (after, source) {
        (Some(after), _) => format!(" after {after:?}"),
        (None, Some(source)) => format!(": {source}"),
        (None, None) => String::new(),
    }
}

impl Error {
    /// A generated builder's failure as an [`Error`], naming `operation`.
    ///
    /// A value the builder could not convert (`conversion to `Uuid` for id
    /// failed`) becomes an [`Error::InvalidArgument`] naming the field, in
    /// the same wording as the other paths.
    pub fn from_generated<E>(e: progenitor_client::Error<E>, operation: &str) -> Self {
        match e {
            progenitor_client::Error::InvalidRequest(message) => {
                let (field, rule) = builder_problem(&message);
                Error::invalid(Some(operation), field.as_deref(), rule)
            }
            other => Error::from(other),
        }
    }
}

/// The field and the rule of a builder's conversion message:
/// ``conversion to `:: uuid :: Uuid` for id failed`` → (`id`, "must be a UUID").
fn builder_problem(message: &str) -> (Option<String>, String) {
    if let Some(rest) = message.strip_prefix("conversion to `")
        && let Some((ty, rest)) = rest.split_once("` for ")
        && let Some(field) = rest.strip_suffix(" failed")
    {
        let ty = ty.replace(' ', "");
        let rule = match ty.rsplit("::").next().unwrap_or(&ty) {
            "Uuid" => "must be a UUID".to_owned(),
            "NonZeroU64" => "must be a whole number of at least 1".to_owned(),
            "IdempotencyKey" | "RequestId" => "must be 1 to 255 visible ASCII characters".to_owned(),
            other => format!("cannot be converted to {other}"),
        };
        return (Some(field.to_owned()), rule);
    }
    if let Some(rest) = message.strip_prefix("error converting supplied value for ")
        && let Some((field, why)) = rest.split_once(": ")
    {
        return (Some(field.to_owned()), why.to_owned());
    }
    if let Some(field) = message.strip_prefix("no value supplied for ") {
        return (Some(field.trim().to_owned()), "required".to_owned());
    }
    (None, message.to_owned())
}

impl<E> From<progenitor_client::Error<E>> for Error {
    fn from(e: progenitor_client::Error<E>) -> Self {
        use progenitor_client::Error as P;
        match e {
            P::InvalidRequest(message) => Error::invalid(None, None, message),
            P::Custom(message) => Error::invalid(None, None, message),
            P::CommunicationError(e) | P::InvalidUpgrade(e) | P::ResponseBodyError(e) => Error::from_reqwest(e),
            P::ErrorResponse(rv) => {
                let status = rv.status();
                Error::Api(Box::new(ApiError::from_parts(status, rv.headers(), &[])))
            }
            P::InvalidResponsePayload(body, e) => Error::decode(200, e, &body),
            P::UnexpectedResponse(response) => Error::Decode {
                status: response.status().as_u16(),
                message: "a status the spec does not document for this operation".into(),
                body: String::new(),
                idempotency_key: None,
            },
        }
    }
}

impl From<ApiError> for Error {
    fn from(e: ApiError) -> Self {
        Error::Api(Box::new(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-tokportal-request-id", "req_9".parse().unwrap());
        h.insert("retry-after", "2".parse().unwrap());
        h
    }

    #[test]
    fn envelope_is_decoded() {
        let body =
            br#"{"error":{"code":"INSUFFICIENT_CREDITS","message":"Not enough credits.","details":{"required":50}}}"#;
        let e = ApiError::from_parts(StatusCode::PAYMENT_REQUIRED, &headers(), body);
        assert_eq!(e.code.as_deref(), Some("INSUFFICIENT_CREDITS"));
        assert_eq!(e.details, Some(serde_json::json!({"required": 50})));
        assert_eq!(e.raw_body, None);
        assert!(!e.is_retryable());
        assert_eq!(
            e.to_string(),
            "HTTP 402 INSUFFICIENT_CREDITS: Not enough credits. (request id req_9)"
        );
    }

    #[test]
    fn html_body_is_kept_raw() {
        let e = ApiError::from_parts(StatusCode::BAD_GATEWAY, &headers(), b"<html>bad gateway</html>");
        assert_eq!(e.code, None);
        assert_eq!(e.message, "Bad Gateway");
        assert_eq!(e.raw_body.as_deref(), Some("<html>bad gateway</html>"));
        assert!(e.is_retryable());
        assert_eq!(e.payload(), serde_json::json!({"raw_body": "<html>bad gateway</html>"}));
        assert_eq!(e.diagnostics()["retry_after_seconds"], 2);
    }

    #[test]
    fn truncated_json_and_empty_bodies_are_raw() {
        let e = ApiError::from_parts(
            StatusCode::INTERNAL_SERVER_ERROR,
            &HeaderMap::new(),
            br#"{"error":{"co"#,
        );
        assert_eq!(e.raw_body.as_deref(), Some(r#"{"error":{"co"#));
        let e = ApiError::from_parts(StatusCode::SERVICE_UNAVAILABLE, &HeaderMap::new(), b"");
        assert_eq!(e.raw_body.as_deref(), Some(""));
        assert_eq!(e.to_string(), "HTTP 503: Service Unavailable");
    }

    #[test]
    fn a_builder_conversion_failure_names_the_operation_and_the_field() {
        assert!(matches!(
            Error::from_generated(progenitor_client::Error::<()>::InvalidRequest("conversion to `Uuid` for id failed".into()), "getBundle"),
            Error::InvalidArgument { field: Some(f), .. } if f == "id"
        ));
    }

    #[test]
    fn retryable_statuses() {
        for s in [408, 429, 500, 502, 503, 599] {
            assert!(is_retryable_status(s), "{s}");
        }
        for s in [400, 401, 402, 403, 404, 409] {
            assert!(!is_retryable_status(s), "{s}");
        }
    }
}
