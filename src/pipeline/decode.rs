//! Reads answers: a success body by the operation's content type, an error
//! body into an [`ApiError`], and the guard that keeps a secret-bearing
//! answer out of any error.

use serde_json::Value;

use crate::error::{ApiError, Error, RAW_BODY_LIMIT};
use crate::meta::ResponseMeta;
use crate::operations::{IdempotencyKeySupport, Operation};

/// The body of a successful dynamic call.
#[derive(Debug, Clone, PartialEq)]
pub enum ResponseBody {
    /// `application/json`.
    Json(Value),
    /// `text/csv`, `text/html` or another text type.
    Text(String),
    /// No content (204).
    Empty,
}

/// A successful dynamic call.
#[derive(Debug, Clone, PartialEq)]
pub struct OperationResponse {
    /// Status, request id, rate limit, replay flag.
    pub meta: ResponseMeta,
    /// The body.
    pub body: ResponseBody,
}

impl OperationResponse {
    /// The answer's `data` (the whole body when it has none) as your own type.
    ///
    /// ```no_run
    /// # async fn run(client: tokportal::Client) -> Result<(), tokportal::Error> {
    /// #[derive(serde::Deserialize)]
    /// struct Country { code: String }
    /// let countries: Vec<Country> = client
    ///     .request_operation("listCountries", tokportal::OperationArgs::new())
    ///     .await?
    ///     .data_as()?;
    /// # Ok(()) }
    /// ```
    pub fn data_as<U: serde::de::DeserializeOwned>(&self) -> Result<U, Error> {
        match &self.body {
            ResponseBody::Json(body) => crate::data::data_as(body, self.meta.status),
            _ => Err(Error::decode(self.meta.status, "the answer is not JSON", b"")),
        }
    }

    /// The preview, when this answers a dry run (`OperationArgs::dry_run`).
    pub fn dry_run_preview(&self) -> Option<crate::dry_run::DryRunPreview> {
        match &self.body {
            ResponseBody::Json(body) => crate::dry_run::DryRunPreview::from_body(body),
            _ => None,
        }
    }
}

/// A success answer read whole: its status, headers and body.
pub(crate) struct Read {
    pub(crate) status: http::StatusCode,
    pub(crate) headers: http::HeaderMap,
    pub(crate) body: bytes::Bytes,
}

/// A success answer, as the attempts leave it.
pub(crate) enum Answer {
    /// Read whole within the attempt
    /// ([`Body::Buffer`](super::execute::Body::Buffer)): nothing is rebuilt
    /// around the body, which is handed over with the status and headers.
    Read(Read),
    /// Left unread ([`Body::Stream`](super::execute::Body::Stream)), for the caller to stream.
    Unread(reqwest::Response),
}

impl Answer {
    /// The answer's status.
    pub(crate) fn status(&self) -> http::StatusCode {
        match self {
            Answer::Read(read) => read.status,
            Answer::Unread(response) => response.status(),
        }
    }

    /// The answer's headers.
    pub(crate) fn headers(&self) -> &http::HeaderMap {
        match self {
            Answer::Read(read) => &read.headers,
            Answer::Unread(response) => response.headers(),
        }
    }

    /// The answer, carrying the `Idempotency-Key` its call was sent with
    /// (when the server did not echo one), for [`ResponseMeta`] to read.
    pub(crate) fn with_idempotency_key(mut self, key: Option<http::HeaderValue>) -> Self {
        if let Some(key) = key {
            let headers = match &mut self {
                Answer::Read(read) => &mut read.headers,
                Answer::Unread(response) => response.headers_mut(),
            };
            headers.entry(crate::headers::names::IDEMPOTENCY_KEY).or_insert(key);
        }
        self
    }

    /// The answer as a response, for a caller that streams it (a body
    /// already read is handed over from memory).
    pub(crate) fn into_response(self) -> reqwest::Response {
        match self {
            Answer::Unread(response) => response,
            Answer::Read(Read { status, headers, body }) => {
                let mut response = http::Response::new(body);
                *response.status_mut() = status;
                *response.headers_mut() = headers;
                reqwest::Response::from(response)
            }
        }
    }

    /// The answer read whole: as it is, or up to `limit` bytes when it was
    /// left unread.
    pub(crate) async fn read(self, limit: u64) -> Result<Read, Error> {
        match self {
            Answer::Read(read) => Ok(read),
            Answer::Unread(response) => {
                let status = response.status().as_u16();
                buffer(response, limit).await.map_err(|e| e.into_error(status, limit))
            }
        }
    }
}

/// Reads a successful answer according to the operation's success content type.
pub(crate) async fn decode_response(op: &Operation, answer: Answer, limit: u64) -> Result<OperationResponse, Error> {
    let Read {
        status,
        headers,
        body: bytes,
    } = answer.read(limit).await?;
    let meta = ResponseMeta::from_parts(status.as_u16(), &headers);
    let sent_key = || headers.get(crate::headers::names::IDEMPOTENCY_KEY);
    let content_type = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let body = if bytes.is_empty() && (meta.status == 204 || op.success_content_type.is_none()) {
        ResponseBody::Empty
    } else if content_type.contains("json")
        || (content_type.is_empty() && op.success_content_type == Some("application/json"))
    {
        ResponseBody::Json(json(op, meta.status, &bytes).map_err(|e| e.with_idempotency_key(sent_key()))?)
    } else if op.success_content_type == Some("application/json") {
        // A proxy's HTML page under a 200 is not the answer the spec describes.
        let message = format!(
            "expected application/json, got {}",
            if content_type.is_empty() {
                "no content type"
            } else {
                &content_type
            }
        );
        return Err(undecodable(op, meta.status, message, &bytes).with_idempotency_key(sent_key()));
    } else {
        ResponseBody::Text(
            String::from_utf8(bytes.to_vec())
                .map_err(|e| undecodable(op, meta.status, e, &bytes).with_idempotency_key(sent_key()))?,
        )
    };
    Ok(OperationResponse { meta, body })
}

/// A success body of `op` as `T`. The answers of the secret-bearing
/// operations never go into an error (or its `Debug`): neither their body
/// nor the decoder's message, which can quote a value.
pub(crate) fn json<T: serde::de::DeserializeOwned>(op: &Operation, status: u16, bytes: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(bytes).map_err(|e| undecodable(op, status, e, bytes))
}

fn undecodable(op: &Operation, status: u16, message: impl ToString, bytes: &[u8]) -> Error {
    if op.idempotency_key == IdempotencyKeySupport::Refused {
        Error::decode(
            status,
            "the answer is not what the spec describes (withheld: it may hold secrets)",
            b"",
        )
    } else {
        Error::decode(status, message.to_string(), bytes)
    }
}

/// Why a success body could not be buffered; each carries the answer's
/// request id, read only when something went wrong.
pub(crate) enum BufferError {
    /// Larger than the limit: not read past it.
    TooLarge { request_id: Option<String> },
    /// The body broke off.
    Broken {
        error: reqwest::Error,
        request_id: Option<String>,
    },
}

impl BufferError {
    /// The error a caller sees for an answer of `status` that could not be
    /// read within `limit` bytes.
    pub(crate) fn into_error(self, status: u16, limit: u64) -> Error {
        match self {
            BufferError::TooLarge { request_id } => Error::ResponseTooLarge {
                status,
                limit,
                request_id,
                idempotency_key: None,
            },
            BufferError::Broken { error, .. } => Error::from_reqwest(error),
        }
    }
}

/// Reads a success body whole, but never more than `limit` bytes (decoded).
pub(crate) async fn buffer(mut response: reqwest::Response, limit: u64) -> Result<Read, BufferError> {
    let announced = response.content_length();
    if announced.is_some_and(|n| n > limit) {
        return Err(BufferError::TooLarge {
            request_id: crate::meta::request_id(response.headers()),
        });
    }
    let status = response.status();
    let headers = std::mem::take(response.headers_mut());
    let request_id = || crate::meta::request_id(&headers);
    if announced.is_some() {
        // Announced within the limit: reqwest reads it in one go, and a body
        // that breaks off before its length is still an error.
        return match response.bytes().await {
            Ok(body) => Ok(Read { status, headers, body }),
            Err(error) => Err(BufferError::Broken {
                error,
                request_id: request_id(),
            }),
        };
    }
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) if (body.len() + chunk.len()) as u64 > limit => {
                return Err(BufferError::TooLarge {
                    request_id: request_id(),
                });
            }
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) => break,
            Err(error) => {
                return Err(BufferError::Broken {
                    error,
                    request_id: request_id(),
                });
            }
        }
    }
    Ok(Read {
        status,
        headers,
        body: body.into(),
    })
}

/// Reads an error answer, only as far as an [`ApiError`] keeps it (64 KiB),
/// into its [`ApiError`].
pub(crate) async fn read_error(mut response: reqwest::Response) -> ApiError {
    // A body that breaks off is kept as far as it came; one that goes on is
    // not read past the kept size (the connection is dropped instead).
    let mut body = Vec::new();
    while body.len() < RAW_BODY_LIMIT {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = RAW_BODY_LIMIT - body.len();
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            _ => break,
        }
    }
    ApiError::from_parts(response.status(), response.headers(), &body)
}
