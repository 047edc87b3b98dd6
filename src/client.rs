//! Client configuration and the hooks the generated client runs on every call.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use http::HeaderValue;
use progenitor_client::{ClientHooks, OperationInfo};
use url::Url;

use crate::error::{Error, MISSING_API_KEY};
use crate::generated::Client;
use crate::operations::{self, IdempotencyKeySupport, Operation};
use crate::retry::RetryPolicy;
use crate::secret::Secret;

/// The production base URL.
pub const DEFAULT_BASE_URL: &str = "https://app.tokportal.com/api/ext";
/// Environment variable holding the API key.
pub const API_KEY_ENV: &str = "TOKPORTAL_API_KEY";
/// Environment variable overriding the base URL.
pub const BASE_URL_ENV: &str = "TOKPORTAL_BASE_URL";
/// `X-TokPortal-Client` value of the SDK.
pub const CLIENT_IDENTIFIER: &str = concat!("tokportal-rust/", env!("CARGO_PKG_VERSION"));

pub(crate) const API_KEY_HEADER: &str = "x-api-key";
pub(crate) const CLIENT_HEADER: &str = "x-tokportal-client";
pub(crate) const IDEMPOTENCY_HEADER: &str = "idempotency-key";
pub(crate) const REQUEST_ID_HEADER: &str = "x-request-id";

/// Builds a [`Client`].
///
/// ```
/// use std::time::Duration;
/// let client = tokportal::Client::builder()
///     .api_key("sk_test")
///     .base_url("http://127.0.0.1:8080/api/ext")
///     .timeout(Duration::from_secs(20))
///     .retry(tokportal::RetryPolicy::default().max_attempts(5))
///     .build()?;
/// assert!(!format!("{client:?}").contains("sk_test"));
/// # Ok::<(), tokportal::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    api_key: Option<Secret>,
    base_url: Option<String>,
    connect_timeout: Duration,
    timeout: Duration,
    upload_timeout: Duration,
    retry: RetryPolicy,
    http: Option<reqwest::Client>,
    identifier: String,
}

impl Default for ClientBuilder {
    fn default() -> Self {
        Self {
            api_key: None,
            base_url: None,
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(30),
            upload_timeout: Duration::from_secs(30 * 60),
            retry: RetryPolicy::default(),
            http: None,
            identifier: CLIENT_IDENTIFIER.to_owned(),
        }
    }
}

impl ClientBuilder {
    /// A builder with defaults and nothing read from the environment.
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder with the API key from `TOKPORTAL_API_KEY` and the base URL from
    /// `TOKPORTAL_BASE_URL`, when they are set and not empty.
    pub fn from_env() -> Self {
        let mut b = Self::default();
        if let Some(key) = std::env::var(API_KEY_ENV).ok().filter(|k| !k.trim().is_empty()) {
            b.api_key = Some(Secret::new(key.trim()));
        }
        if let Some(url) = std::env::var(BASE_URL_ENV).ok().filter(|u| !u.trim().is_empty()) {
            b.base_url = Some(url.trim().to_owned());
        }
        b
    }

    /// The API key sent as `X-API-Key` (marked sensitive, never logged).
    pub fn api_key(mut self, key: impl Into<Secret>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// The base URL, e.g. `https://app.tokportal.com/api/ext` (the default).
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }

    /// Time allowed to establish a connection (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Total time allowed for one attempt of an ordinary call (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Total time allowed for one attempt of a multipart upload (default 30 min).
    pub fn upload_timeout(mut self, timeout: Duration) -> Self {
        self.upload_timeout = timeout;
        self
    }

    /// The retry policy (on by default; see [`RetryPolicy`]).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Turns retries off: every call is sent once.
    pub fn no_retries(self) -> Self {
        self.retry(RetryPolicy::disabled())
    }

    /// Uses the caller's own `reqwest::Client` (its pool, proxy and TLS settings).
    ///
    /// The SDK's own client refuses cross-origin redirects so that `X-API-Key`
    /// never reaches another origin; give yours [`redirect_policy`] (or
    /// `reqwest::redirect::Policy::none()`) to keep that guarantee, since reqwest
    /// only strips its standard credential headers on a redirect.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// The `X-TokPortal-Client` value (default `tokportal-rust/<version>`).
    pub fn client_identifier(mut self, identifier: impl Into<String>) -> Self {
        self.identifier = identifier.into();
        self
    }

    /// Builds the client. Fails on a malformed base URL or identifier.
    pub fn build(self) -> Result<Client, Error> {
        let raw = self.base_url.as_deref().unwrap_or(DEFAULT_BASE_URL);
        let url = Url::parse(raw).map_err(|e| Error::Config(format!("base URL `{raw}`: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(Error::Config(format!(
                "base URL `{raw}` must be an http(s) URL with a host"
            )));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(Error::Config(format!(
                "base URL `{raw}` must not carry a query or fragment"
            )));
        }
        let base = url.as_str().trim_end_matches('/').to_owned();
        let identifier = HeaderValue::from_str(&self.identifier).map_err(|_| {
            Error::Config(format!(
                "client identifier `{}` is not a valid header value",
                self.identifier
            ))
        })?;
        // Built once, marked sensitive (hyper and reqwest then keep it out of their logs and HPACK tables).
        let api_key = match &self.api_key {
            Some(key) => {
                let mut value = HeaderValue::from_str(key.expose())
                    .map_err(|_| Error::Config("the API key is not a valid header value".into()))?;
                value.set_sensitive(true);
                Some(value)
            }
            None => None,
        };
        let http = match self.http {
            Some(http) => http,
            None => reqwest::Client::builder()
                .connect_timeout(self.connect_timeout)
                .redirect(redirect_policy())
                .user_agent(self.identifier.clone())
                .build()
                .map_err(|e| Error::Config(format!("cannot build the HTTP client: {e}")))?,
        };
        let state = ClientState(Arc::new(StateInner {
            api_key,
            identifier,
            origin: url.origin(),
            timeout: self.timeout,
            upload_timeout: self.upload_timeout,
            retry: self.retry,
            version_warned: AtomicBool::new(false),
        }));
        Ok(Client::new_with_client(&base, http, state))
    }
}

/// A redirect policy that follows same-origin redirects only (at most 5), so
/// that `X-API-Key` is never sent to another origin.
pub fn redirect_policy() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let first = attempt.previous().first().map(Url::origin);
        if attempt.previous().len() > 5 {
            attempt.error("too many redirects")
        } else if first.is_some_and(|o| o != attempt.url().origin()) {
            attempt.stop()
        } else {
            attempt.follow()
        }
    })
}

/// Configuration shared by every call of a [`Client`] (its `inner` state).
///
/// Cheap to clone. Its `Debug` never shows the API key.
#[derive(Clone)]
pub struct ClientState(pub(crate) Arc<StateInner>);

pub(crate) struct StateInner {
    /// The `X-API-Key` value, marked sensitive (its `Debug` prints `Sensitive`).
    pub(crate) api_key: Option<HeaderValue>,
    pub(crate) identifier: HeaderValue,
    pub(crate) origin: url::Origin,
    pub(crate) timeout: Duration,
    pub(crate) upload_timeout: Duration,
    pub(crate) retry: RetryPolicy,
    pub(crate) version_warned: AtomicBool,
}

impl fmt::Debug for ClientState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientState")
            .field("api_key", &self.0.api_key.as_ref().map(|_| "[redacted]"))
            .field("identifier", &self.0.identifier)
            .field("timeout", &self.0.timeout)
            .field("upload_timeout", &self.0.upload_timeout)
            .field("retry", &self.0.retry)
            .finish()
    }
}

impl ClientState {
    /// The retry policy.
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.0.retry
    }

    /// Whether an API key is configured.
    pub fn has_api_key(&self) -> bool {
        self.0.api_key.is_some()
    }

    /// Says once, through `tracing`, that the server speaks another contract version.
    pub(crate) fn note_api_version(&self, headers: &http::HeaderMap) {
        let Some(version) = crate::meta::header_str(headers, "x-tokportal-api-version") else {
            return;
        };
        if version != operations::SPEC_VERSION && !self.0.version_warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                server = version,
                sdk = operations::SPEC_VERSION,
                "the TokPortal API reports contract version {version}, this SDK was generated from {}; \
                 update the SDK if calls start failing",
                operations::SPEC_VERSION
            );
        }
    }

    /// Sets the headers, the idempotency key and the timeout, and checks the
    /// key rules, before a request is sent. Used by the generated client's
    /// `pre` hook and by the hand-written calls alike.
    pub(crate) fn prepare(
        &self,
        op: &'static Operation,
        request: &mut reqwest::Request,
        upload: bool,
    ) -> Result<(), Error> {
        if request.url().origin() != self.0.origin {
            return Err(Error::Config(format!(
                "refusing to send the API key to {}, which is not the configured API origin",
                request.url().origin().ascii_serialization()
            )));
        }
        let headers = request.headers_mut();
        headers.insert(CLIENT_HEADER, self.0.identifier.clone());
        match &self.0.api_key {
            Some(key) => {
                headers.insert(API_KEY_HEADER, key.clone());
            }
            None if op.requires_auth => return Err(Error::MissingApiKey),
            None => {}
        }
        match op.idempotency_key {
            IdempotencyKeySupport::Refused if headers.contains_key(IDEMPOTENCY_HEADER) => {
                return Err(Error::invalid(
                    Some(op.id),
                    Some("idempotency_key"),
                    format!(
                        "{} returns a secret or one-time value, which the server would store for 24 hours \
                         under an idempotency key; send it without one",
                        op.id
                    ),
                ));
            }
            IdempotencyKeySupport::Accepted if self.0.retry.enabled() && !headers.contains_key(IDEMPOTENCY_HEADER) => {
                // Generated once here and reused by every attempt, so a retried create never creates twice.
                let key = crate::idempotency::generate_key();
                headers.insert(
                    IDEMPOTENCY_HEADER,
                    HeaderValue::from_str(&key).map_err(|e| Error::Config(e.to_string()))?,
                );
            }
            _ => {}
        }
        if let Some(value) = headers.get(IDEMPOTENCY_HEADER) {
            crate::idempotency::validate_key(value.as_bytes())
                .map_err(|m| Error::invalid(Some(op.id), Some("idempotency_key"), m))?;
        }
        if request.timeout().is_none() {
            *request.timeout_mut() = Some(if upload { self.0.upload_timeout } else { self.0.timeout });
        }
        Ok(())
    }
}

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
        crate::validate::check_request(op, request)
            .and_then(|()| self.inner.prepare(op, request, false))
            .map_err(|e| match e {
                Error::MissingApiKey => progenitor_client::Error::Custom(MISSING_API_KEY.into()),
                other => progenitor_client::Error::InvalidRequest(other.to_string()),
            })
    }

    async fn exec(&self, request: reqwest::Request, info: &OperationInfo) -> reqwest::Result<reqwest::Response> {
        let op = operations::find_by_rust_method(info.operation_id);
        // Traced under its operationId, like the hand-written calls.
        let name = op.map_or(info.operation_id, |op| op.id);
        let replay = crate::transport::replay_clone(&request);
        let deadline = self.inner.0.retry.overall_deadline();
        let response = crate::transport::execute(self, name, request, replay, deadline).await?;
        let secret = op.is_some_and(|op| op.idempotency_key == IdempotencyKeySupport::Refused);
        if secret && response.status().is_success() {
            // Their typed answers are JSON objects; anything else would reach a
            // decode error (and its Debug) with the secret inside, so withhold it.
            return Ok(crate::transport::withhold_unless_json_object(response).await);
        }
        Ok(response)
    }
}
