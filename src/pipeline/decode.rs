//! Reads answers: a success body by the operation's content type, an error
//! body into an [`ApiError`], and the guard that keeps a secret-bearing
//! answer out of any error.

use std::sync::Arc;

use serde_json::Value;

use crate::error::{ApiError, DecodedApiError, Error, RAW_BODY_LIMIT};
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

/// Reads a successful response according to the operation's success content type.
pub(crate) async fn decode_response(op: &Operation, response: reqwest::Response) -> Result<OperationResponse, Error> {
    let meta = ResponseMeta::from_parts(response.status().as_u16(), response.headers());
    let content_type = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let bytes = response.bytes().await.map_err(Error::from_reqwest)?;
    // The answers of the secret-bearing operations never go into an error (or its Debug).
    let secret = op.idempotency_key == IdempotencyKeySupport::Refused;
    let undecodable = |message: String| {
        if secret {
            Error::decode(
                meta.status,
                "the answer is not what the spec describes (withheld: it may hold secrets)",
                b"",
            )
        } else {
            Error::decode(meta.status, message, &bytes)
        }
    };
    let body = if bytes.is_empty() && (meta.status == 204 || op.success_content_type.is_none()) {
        ResponseBody::Empty
    } else if content_type.contains("json")
        || (content_type.is_empty() && op.success_content_type == Some("application/json"))
    {
        ResponseBody::Json(serde_json::from_slice(&bytes).map_err(|e| undecodable(e.to_string()))?)
    } else if op.success_content_type == Some("application/json") {
        // A proxy's HTML page under a 200 is not the answer the spec describes.
        return Err(undecodable(format!(
            "expected application/json, got {}",
            if content_type.is_empty() {
                "no content type"
            } else {
                &content_type
            }
        )));
    } else {
        ResponseBody::Text(String::from_utf8(bytes.to_vec()).map_err(|e| undecodable(e.to_string()))?)
    };
    Ok(OperationResponse { meta, body })
}

/// The [`Error::Api`] of an error answer: decoded once, by the attempt loop,
/// or here, with the same bounded read, when it was not.
pub(crate) async fn api_error(response: reqwest::Response) -> Error {
    let response = match response.extensions().get::<DecodedApiError>() {
        Some(_) => response,
        None => attach_error(response).await,
    };
    match response.extensions().get::<DecodedApiError>() {
        Some(decoded) => Error::Api(Box::new((*decoded.0).clone())),
        None => Error::decode(
            response.status().as_u16(),
            "an error answer that could not be read",
            b"",
        ),
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

/// Reads a success body whole, but never more than `limit` bytes (decoded),
/// and returns the response with the body in memory.
pub(crate) async fn buffer(mut response: reqwest::Response, limit: u64) -> Result<reqwest::Response, BufferError> {
    let announced = response.content_length();
    if announced.is_some_and(|n| n > limit) {
        return Err(BufferError::TooLarge {
            request_id: crate::meta::request_id(response.headers()),
        });
    }
    let parts = Parts::take(&mut response);
    let request_id = || crate::meta::request_id(&parts.headers);
    if announced.is_some() {
        // Announced within the limit: reqwest reads it in one go, and a body
        // that breaks off before its length is still an error.
        return match response.bytes().await {
            Ok(bytes) => Ok(rebuild(parts, bytes)),
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
    Ok(rebuild(parts, body.into()))
}

/// Reads an error answer, only as far as an [`ApiError`] keeps it (64 KiB),
/// and returns it with its [`ApiError`] attached.
pub(crate) async fn attach_error(mut response: reqwest::Response) -> reqwest::Response {
    let parts = Parts::take(&mut response);
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
    let body = bytes::Bytes::from(body);
    let error = ApiError::from_parts(parts.status, &parts.headers, &body);
    let mut rebuilt = rebuild(parts, body);
    rebuilt.extensions_mut().insert(DecodedApiError(Arc::new(error)));
    rebuilt
}

/// Passes a JSON-object body through; replaces any other body with a marker,
/// so that a decode error cannot carry a secret-bearing answer.
pub(crate) async fn withhold_unless_json_object(mut response: reqwest::Response) -> reqwest::Response {
    let parts = Parts::take(&mut response);
    let body = match response.bytes().await {
        Ok(bytes) if serde_json::from_slice::<serde_json::Map<String, Value>>(&bytes).is_ok() => bytes,
        _ => bytes::Bytes::from_static(b"[withheld: not the JSON object the spec describes; it may hold secrets]"),
    };
    rebuild(parts, body)
}

/// A response with the given parts and a body already read.
fn rebuild(parts: Parts, body: bytes::Bytes) -> reqwest::Response {
    let Parts {
        status,
        version,
        headers,
        url,
    } = parts;
    // The URL is handed over: without it reqwest parses a placeholder URL,
    // which costs more than all the rest of the rebuild.
    use reqwest::ResponseBuilderExt;
    let mut rebuilt = http::Response::builder()
        .status(status)
        .version(version)
        .url(url)
        .body(body)
        .unwrap_or_default();
    *rebuilt.headers_mut() = headers;
    reqwest::Response::from(rebuilt)
}

/// What a rebuilt response keeps of the original.
struct Parts {
    status: http::StatusCode,
    version: http::Version,
    headers: http::HeaderMap,
    url: url::Url,
}

impl Parts {
    fn take(response: &mut reqwest::Response) -> Self {
        Parts {
            status: response.status(),
            version: response.version(),
            headers: std::mem::take(response.headers_mut()),
            url: response.url().clone(),
        }
    }
}
