//! A call by method and path, for what the vendored contract may not know
//! yet ([`Client::request_raw`], `tokportal api`): TokPortal's live API is
//! ahead of it. The call goes through the same pipeline as every other one
//! (the key, the origin check, retries, idempotency keys, dry runs, spans).
//!
//! Where the method and path match an operation of the contract, the call
//! is that operation's, with its checks: path values, query parameters and
//! the body are checked before anything is sent. Where they match none, it
//! is sent as given, under an operation of its own (`unlisted`): a read has
//! no idempotency key, and a change gets one generated when retries are on,
//! as TokPortal takes one on every mutating request.

use http::{HeaderName, HeaderValue};
use serde_json::Value;

use crate::check::OperationArgs;
use crate::error::Error;
use crate::generated::Client;
use crate::headers;
use crate::operations::{HttpMethod, IdempotencyKeySupport, Operation, ParamLocation, match_path};
use crate::pipeline::ResponseBody;
use crate::pipeline::decode::{Answer, decode_response};
use crate::pipeline::execute::{self, Body};
use crate::pipeline::prepare;

/// A request by method and path. Build it with [`RawRequest::new`] and its
/// setters.
///
/// ```
/// use tokportal::operations::HttpMethod;
/// use tokportal::raw::RawRequest;
/// let raw = RawRequest::new(HttpMethod::Get, "/bundles?status=published").query("per_page", "5");
/// assert_eq!(raw.operation().map(|op| op.id), Some("listBundles"));
/// assert!(RawRequest::new(HttpMethod::Get, "/beta/things").operation().is_none());
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RawRequest {
    /// The method.
    pub method: HttpMethod,
    /// The path below the base URL, without its query.
    pub path: String,
    /// Query parameters, in order (those of the path's own query first).
    pub query: Vec<(String, String)>,
    /// Headers besides those the client sets.
    pub headers: Vec<(String, String)>,
    /// A JSON body.
    pub body: Option<Value>,
    /// `Idempotency-Key`.
    pub idempotency_key: Option<String>,
    /// `X-Request-ID`.
    pub request_id: Option<String>,
    /// Sent as a dry run (`X-TokPortal-Dry-Run: true`).
    pub dry_run: bool,
}

/// The answer of a [`RawRequest`]: its status, every header, the body.
#[derive(Debug)]
#[non_exhaustive]
pub struct RawResponse {
    /// The operation of the contract the request matched, if any.
    pub operation: Option<&'static str>,
    /// The HTTP status.
    pub status: u16,
    /// Every header of the answer.
    pub headers: http::HeaderMap,
    /// The body, decoded as the operation's (JSON, text or empty).
    pub body: ResponseBody,
}

/// The operation a request that matches none is sent under, one per method.
const fn unlisted(method: HttpMethod) -> Operation {
    Operation {
        id: "unlisted",
        method,
        path: "(not in the vendored contract)",
        tag: "Unlisted",
        summary: "A call the vendored contract does not describe",
        description: None,
        requires_auth: true,
        rust_method: "request_raw",
        cli_command: "api",
        idempotency_key: if method.is_read_only() {
            IdempotencyKeySupport::NotApplicable
        } else {
            IdempotencyKeySupport::Accepted
        },
        paginated: false,
        handwritten: true,
        params: &[],
        body: None,
        success_status: 200,
        success_content_type: None,
        success_schema: None,
        success_schema_json: None,
        error_statuses: &[],
    }
}

static UNLISTED: [Operation; 8] = [
    unlisted(HttpMethod::Get),
    unlisted(HttpMethod::Post),
    unlisted(HttpMethod::Put),
    unlisted(HttpMethod::Patch),
    unlisted(HttpMethod::Delete),
    unlisted(HttpMethod::Options),
    unlisted(HttpMethod::Head),
    unlisted(HttpMethod::Trace),
];

fn unlisted_for(method: HttpMethod) -> &'static Operation {
    UNLISTED.iter().find(|op| op.method == method).unwrap_or(&UNLISTED[0])
}

impl RawRequest {
    /// A request for `method` and `path` (below the base URL; a query after
    /// `?` is split off into [`RawRequest::query`]).
    pub fn new(method: HttpMethod, path: impl Into<String>) -> Self {
        let path = path.into();
        let (path, query) = match path.split_once('?') {
            Some((p, q)) => (
                p.to_owned(),
                url::form_urlencoded::parse(q.as_bytes()).into_owned().collect(),
            ),
            None => (path, Vec::new()),
        };
        Self {
            method,
            path,
            query,
            headers: Vec::new(),
            body: None,
            idempotency_key: None,
            request_id: None,
            dry_run: false,
        }
    }

    /// Adds a query parameter.
    pub fn query(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.query.push((name.into(), value.into()));
        self
    }

    /// Adds a header. `Idempotency-Key`, `X-Request-ID` and
    /// `X-TokPortal-Dry-Run` (`true` or `false`) set their fields; the key,
    /// the client's own headers and a dry-run value other than `true` or
    /// `false` are refused when sent ([`Client::request_raw`]).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        let (name, value) = (name.into(), value.into());
        if name.eq_ignore_ascii_case(headers::names::IDEMPOTENCY_KEY.as_str()) {
            self.idempotency_key = Some(value);
        } else if name.eq_ignore_ascii_case(headers::names::REQUEST_ID.as_str()) {
            self.request_id = Some(value);
        } else if name.eq_ignore_ascii_case(headers::names::DRY_RUN.as_str())
            && (value.trim().eq_ignore_ascii_case("true") || value.trim().eq_ignore_ascii_case("false"))
        {
            // The value decides: `false` is a real call. Any other value is
            // kept as a header, which the pipeline refuses before sending.
            self.dry_run = value.trim().eq_ignore_ascii_case("true");
        } else {
            self.headers.push((name, value));
        }
        self
    }

    /// Sets the JSON body.
    pub fn body(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }

    /// The operation of the contract this request calls, if it matches one.
    pub fn operation(&self) -> Option<&'static Operation> {
        match_path(self.method, &self.path).map(|(op, _)| op)
    }

    /// The request as the matched operation's arguments (path values from
    /// the path, the query, the body and the headers' fields).
    fn args(&self, op: &Operation, params: Vec<(&'static str, String)>) -> OperationArgs {
        let mut args = OperationArgs::new();
        for (name, value) in params {
            args.path.insert(name.to_owned(), Value::String(value));
        }
        for (name, value) in &self.query {
            let value = Value::String(value.clone());
            let repeatable = op
                .param(name)
                .is_some_and(|p| p.location == ParamLocation::Query && p.repeatable);
            match args.query.get_mut(name) {
                Some(Value::Array(values)) => values.push(value),
                Some(first) => *first = Value::Array(vec![first.take(), value]),
                None if repeatable => {
                    args.query.insert(name.clone(), Value::Array(vec![value]));
                }
                None => {
                    args.query.insert(name.clone(), value);
                }
            }
        }
        args.body = self.body.clone();
        args.idempotency_key = self.idempotency_key.clone();
        args.request_id = self.request_id.clone();
        args.dry_run = self.dry_run;
        args
    }
}

impl Client {
    /// Sends a [`RawRequest`] through the pipeline: as its operation, with
    /// that operation's checks, when it matches one; as given (with the
    /// key, to the configured origin only) when it matches none.
    ///
    /// ```no_run
    /// # async fn run(client: tokportal::Client) -> Result<(), tokportal::Error> {
    /// use tokportal::operations::HttpMethod;
    /// use tokportal::raw::RawRequest;
    /// let answer = client.request_raw(RawRequest::new(HttpMethod::Get, "/me")).await?;
    /// assert_eq!(answer.operation, Some("getCurrentUser"));
    /// # Ok(()) }
    /// ```
    pub async fn request_raw(&self, raw: RawRequest) -> Result<RawResponse, Error> {
        let settings = self.inner.settings();
        let matched = match_path(raw.method, &raw.path);
        let op = matched.as_ref().map_or_else(|| unlisted_for(raw.method), |(op, _)| *op);
        if op.is_multipart() {
            return Err(Error::invalid(
                Some(op.id),
                None,
                "a multipart upload: call it with `request_upload` (`tokportal upload-video-direct --file`)",
            ));
        }
        let mut request = match matched {
            Some((op, params)) => prepare::build_request(&self.baseurl, op, &raw.args(op, params), settings.strict)?,
            None => unlisted_request(&self.baseurl, op, &raw)?,
        };
        for (name, value) in &raw.headers {
            let name = HeaderName::from_bytes(name.trim().as_bytes())
                .map_err(|_| Error::invalid(Some(op.id), Some("header"), format!("`{name}` is not a header name")))?;
            if is_the_clients(&name) {
                return Err(Error::invalid(
                    Some(op.id),
                    Some(name.as_str()),
                    "set by the client (the key comes from --api-key, $TOKPORTAL_API_KEY or a profile)",
                ));
            }
            let value = HeaderValue::from_str(value.trim())
                .map_err(|_| Error::invalid(Some(op.id), Some(name.as_str()), "not a valid header value"))?;
            request.headers_mut().append(name, value);
        }
        if let Some(body) = &raw.body {
            let bytes =
                serde_json::to_vec(body).map_err(|e| Error::invalid(Some(op.id), Some("body"), e.to_string()))?;
            request
                .headers_mut()
                .insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            *request.body_mut() = Some(bytes.into());
        }
        prepare::prepare(settings, op, &mut request)?;
        let replay = execute::replay_for(settings, &request);
        let limit = settings.max_body;
        let answer = execute::send(&self.client, settings, op, request, replay, Body::Buffer(limit)).await?;
        let read = answer.read(limit).await?;
        let (status, headers) = (read.status.as_u16(), read.headers.clone());
        let decoded = decode_response(op, Answer::Read(read), limit).await?;
        Ok(RawResponse {
            operation: (op.id != "unlisted").then_some(op.id),
            status,
            headers,
            body: decoded.body,
        })
    }
}

/// Headers only the client sets: the key, its own name, where it sends.
fn is_the_clients(name: &HeaderName) -> bool {
    *name == headers::names::API_KEY
        || *name == headers::names::CLIENT
        || *name == http::header::HOST
        || *name == http::header::AUTHORIZATION
}

/// The request for a path the contract does not know: the base URL's path
/// and the given segments (kept as given, so an escaped one stays escaped
/// once), the query, the headers' fields.
fn unlisted_request(base_url: &str, op: &'static Operation, raw: &RawRequest) -> Result<reqwest::Request, Error> {
    let mut url = url::Url::parse(base_url).map_err(|e| Error::Config(format!("base URL: {e}")))?;
    let base = url.path().trim_end_matches('/').to_owned();
    let path = raw.path.trim_start_matches('/');
    url.set_path(&format!("{base}/{path}"));
    if !raw.query.is_empty() {
        url.query_pairs_mut().extend_pairs(&raw.query);
    }
    if let Some(id) = &raw.request_id {
        crate::idempotency::validate_request_id(id.as_bytes())
            .map_err(|m| Error::invalid(Some(op.id), Some("request_id"), m))?;
    }
    let mut args = OperationArgs::new();
    args.idempotency_key = raw.idempotency_key.clone();
    args.request_id = raw.request_id.clone();
    args.dry_run = raw.dry_run;
    prepare::new_request(op, url, &args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_that_are_fields_become_fields() {
        let raw = RawRequest::new(HttpMethod::Post, "/bundles")
            .header("idempotency-key", "k-1")
            .header("X-TokPortal-Dry-Run", "true")
            .header("X-Trace", "1");
        assert_eq!(raw.idempotency_key.as_deref(), Some("k-1"));
        assert!(raw.dry_run);
        assert_eq!(raw.headers, [("X-Trace".to_owned(), "1".to_owned())]);
    }

    #[test]
    fn the_path_query_comes_first_and_repeats_stay() {
        let raw = RawRequest::new(HttpMethod::Get, "/bundles?status=a%20b&status=c").query("page", "2");
        let (op, params) = match_path(raw.method, &raw.path).unwrap();
        let args = raw.args(op, params);
        assert_eq!(args.query["status"], serde_json::json!(["a b", "c"]));
        assert_eq!(args.query["page"], "2");
    }

    #[test]
    fn unlisted_changes_take_a_key_and_reads_none() {
        assert_eq!(
            unlisted_for(HttpMethod::Post).idempotency_key,
            IdempotencyKeySupport::Accepted
        );
        assert_eq!(
            unlisted_for(HttpMethod::Get).idempotency_key,
            IdempotencyKeySupport::NotApplicable
        );
        assert_eq!(unlisted_for(HttpMethod::Delete).method, HttpMethod::Delete);
    }
}
