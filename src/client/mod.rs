//! Layer 4: the client and its configuration.
//!
//! [`ClientBuilder`] turns the caller's settings into the pipeline's
//! [`Settings`] and the generated [`Client`] (whose `inner` is a
//! [`ClientState`]); [`typed`] is where every generated call enters the
//! request pipeline. Nothing here knows the calls above it or the front-ends.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use http::HeaderValue;
use url::Url;

use crate::error::Error;
use crate::generated::Client;
use crate::pipeline::{ClientState, RetryPolicy, Settings};
use crate::secret::Secret;

pub(crate) mod typed;

/// The production base URL.
pub const DEFAULT_BASE_URL: &str = "https://app.tokportal.com/api/ext";
/// Environment variable holding the API key.
pub const API_KEY_ENV: &str = "TOKPORTAL_API_KEY";
/// The default of [`ClientBuilder::max_response_body`]: 64 MiB.
pub const DEFAULT_MAX_RESPONSE_BODY: u64 = 64 * 1024 * 1024;
/// Environment variable overriding the base URL.
pub const BASE_URL_ENV: &str = "TOKPORTAL_BASE_URL";
/// Environment variable that turns on [`ClientBuilder::strict_contract`] (`1` or `true`).
pub const STRICT_CONTRACT_ENV: &str = "TOKPORTAL_STRICT_CONTRACT";
/// `X-TokPortal-Client` value of the SDK.
pub const CLIENT_IDENTIFIER: &str = concat!("tokportal-rust/", env!("CARGO_PKG_VERSION"));

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
    strict_contract: bool,
    max_response_body: u64,
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
            strict_contract: false,
            max_response_body: DEFAULT_MAX_RESPONSE_BODY,
        }
    }
}

impl ClientBuilder {
    /// A builder with defaults and nothing read from the environment.
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder with the API key from `TOKPORTAL_API_KEY` and the base URL from
    /// `TOKPORTAL_BASE_URL`, when they are set and not empty, and
    /// [`strict_contract`](Self::strict_contract) when `TOKPORTAL_STRICT_CONTRACT`
    /// is `1` or `true`.
    pub fn from_env() -> Self {
        let mut b = Self::default();
        if let Some(key) = std::env::var(API_KEY_ENV).ok().filter(|k| !k.trim().is_empty()) {
            b.api_key = Some(Secret::new(key.trim()));
        }
        if let Some(url) = std::env::var(BASE_URL_ENV).ok().filter(|u| !u.trim().is_empty()) {
            b.base_url = Some(url.trim().to_owned());
        }
        b.strict_contract = std::env::var(STRICT_CONTRACT_ENV).is_ok_and(|v| matches!(v.trim(), "1" | "true"));
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
    ///
    /// The SDK's reqwest has rustls without a crypto provider: build yours
    /// once one is installed (the SDK installs ring's,
    /// `rustls::crypto::ring::default_provider().install_default()`, when it
    /// builds a client of its own), or with your reqwest's `rustls` feature.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// The `X-TokPortal-Client` value (default `tokportal-rust/<version>`).
    pub fn client_identifier(mut self, identifier: impl Into<String>) -> Self {
        self.identifier = identifier.into();
        self
    }

    /// Refuse, before sending, whatever the vendored contract does not know.
    ///
    /// Off by default: the live API is often newer than the contract this SDK
    /// was generated from, so an unknown body property, enum value, query
    /// parameter or form field (or a body where the contract has none) is
    /// sent as given, with one `tracing` warning per operation and name.
    /// Types, ranges, formats and required fields are checked either way.
    pub fn strict_contract(mut self, strict: bool) -> Self {
        self.strict_contract = strict;
        self
    }

    /// The largest success answer read into memory (default 64 MiB). A larger
    /// one is [`Error::ResponseTooLarge`], not read past the limit, whatever a
    /// server or a proxy sends; stream such answers with
    /// [`Client::send_operation`]. Error answers are never read past 64 KiB.
    pub fn max_response_body(mut self, bytes: u64) -> Self {
        self.max_response_body = bytes;
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
            None => http_builder()
                .connect_timeout(self.connect_timeout)
                .redirect(redirect_policy())
                .user_agent(self.identifier.clone())
                .build()
                .map_err(|e| Error::Config(format!("cannot build the HTTP client: {e}")))?,
        };
        let state = ClientState(Arc::new(Settings {
            api_key,
            identifier,
            origin: url.origin(),
            timeout: self.timeout,
            upload_timeout: self.upload_timeout,
            retry: self.retry,
            strict: self.strict_contract,
            max_body: self.max_response_body,
            version_warned: AtomicBool::new(false),
        }));
        Ok(Client::new_with_client(&base, http, state))
    }
}

/// A `reqwest::ClientBuilder` whose TLS has a crypto provider: rustls'
/// process default if one is installed, ring's otherwise, installed as that
/// default. The crate's reqwest comes without a provider of its own
/// (`rustls-no-provider`) and would panic building a client without one:
/// every reqwest client of the crate starts here.
pub(crate) fn http_builder() -> reqwest::ClientBuilder {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // An Err is another thread's provider, installed in between: as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    reqwest::Client::builder()
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

impl Client {
    /// A [`ClientBuilder`] with defaults and nothing read from the environment.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::new()
    }

    /// A client configured from `TOKPORTAL_API_KEY` and `TOKPORTAL_BASE_URL`.
    pub fn from_env() -> Result<Client, Error> {
        ClientBuilder::from_env().build()
    }

    /// The base URL calls go to.
    pub fn base_url(&self) -> &str {
        &self.baseurl
    }
}
