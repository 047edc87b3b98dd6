//! `tokportal-mcp --http ADDR --oauth --public-url URL`: the server as its own
//! OAuth 2.1 authorization server, as Sentry's MCP server is: the token it
//! issues wraps the caller's TokPortal key, so Claude's and ChatGPT's
//! connectors (which take OAuth, not a pasted key) can reach it.
//!
//! - Discovery: `/.well-known/oauth-protected-resource[/mcp]` (RFC 9728),
//!   `/.well-known/oauth-authorization-server` (RFC 8414), and a 401 on
//!   `/mcp` naming the first in `WWW-Authenticate`.
//! - Clients (`clients`): `/register` (RFC 7591) and Client ID Metadata
//!   Documents.
//! - `/authorize` (`consent`): one page, the user's key checked with
//!   `getCurrentUser` before anything is issued, `full` or `read_only`.
//! - `/token` (`token`): PKCE S256 codes used once, short access tokens,
//!   rotating refresh tokens in families (grants).
//! - `/revoke` (`token`, RFC 7009): a refresh or access token ends its
//!   grant, on every replica that shares the store.
//! - Everything is sealed (`seal`), bound to its purpose and to the issuer:
//!   replicas with the same `TOKPORTAL_MCP_OAUTH_SECRET` and public URL
//!   accept each other's clients, codes and tokens. What must be used once
//!   (codes, refresh generations) and what is revoked is the store's
//!   (`crate::mcp::store`: memory, SQLite or Redis).
//!
//! Why not oxide-auth (looked at first, with oxide-auth-axum 0.6): its
//! primitives fit a server with state: a `Registrar` over a client map, an
//! `Authorizer` that stores codes (its docs: "there is no stateless
//! implementation of an authorizer"), an `Issuer` that stores or signs its
//! own tokens; and it has no dynamic registration, no metadata documents,
//! no RFC 8414/9728 metadata, no `iss` (RFC 9207) nor `resource` (RFC 8707).
//! Every one of those would have been ours anyway, leaving it only the
//! parsing of four form fields. The sealing is pasetors' (PASETO v4.local),
//! not ours.

pub(crate) mod clients;
pub(crate) mod consent;
pub(crate) mod seal;
pub(crate) mod token;

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use url::Url;

use crate::mcp::store::{Store, StoreError};
use crate::secret::Secret;

/// The scope of full access.
pub const SCOPE_FULL: &str = "tokportal:full";
/// The scope of read-only access: only the operations that change nothing.
pub const SCOPE_READ_ONLY: &str = "tokportal:read_only";

/// What a caller may do, from its token's scope (an API key: everything).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Access {
    /// Every exposed operation.
    #[default]
    Full,
    /// Only the operations that change nothing.
    ReadOnly,
}

impl Access {
    /// The access a scope string grants.
    pub(crate) fn of_scope(scope: &str) -> Self {
        if scope.split(' ').any(|s| s == SCOPE_FULL) {
            Access::Full
        } else {
            Access::ReadOnly
        }
    }

    /// As a scope string.
    pub(crate) fn scope(self) -> &'static str {
        match self {
            Access::Full => SCOPE_FULL,
            Access::ReadOnly => SCOPE_READ_ONLY,
        }
    }
}

/// The authorization server's settings.
#[derive(Clone)]
pub struct OAuthSettings {
    /// The address clients use (`https://mcp.example.com`), the same for
    /// every replica behind a load balancer.
    pub public_url: Url,
    /// The sealing secret, shared by the replicas.
    pub secret: Secret,
    /// How long an access token lasts.
    pub access_ttl: Duration,
    /// How long a refresh token lasts.
    pub refresh_ttl: Duration,
    /// How long a code lasts.
    pub code_ttl: Duration,
    /// Private-use redirect URI schemes allowed besides RFC 8252's
    /// reverse-domain ones (`--allow-redirect-scheme cursor`).
    pub redirect_schemes: Vec<String>,
    /// `--daily-credit-limit`, said on the consent page.
    pub daily_credit_limit: Option<u64>,
}

impl std::fmt::Debug for OAuthSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthSettings")
            .field("public_url", &self.public_url.as_str())
            .field("secret", &self.secret)
            .field("access_ttl", &self.access_ttl)
            .field("refresh_ttl", &self.refresh_ttl)
            .field("code_ttl", &self.code_ttl)
            .field("redirect_schemes", &self.redirect_schemes)
            .field("daily_credit_limit", &self.daily_credit_limit)
            .finish()
    }
}

/// Why a bearer token was refused.
#[derive(Debug)]
pub(crate) enum Bearer {
    /// Not a live token of this server: 401.
    Invalid(&'static str),
    /// The store could not say: 503.
    Unavailable(StoreError),
}

/// Whether `url`'s host is loopback: a loopback address, `localhost`, or a
/// name under `.localhost` (RFC 6761 §6.3: resolved to loopback only).
pub(crate) fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost")
        }
        None => false,
    }
}

/// The defaults: access tokens for an hour, refresh tokens for 30 days,
/// codes for 60 seconds.
pub const ACCESS_TTL: Duration = Duration::from_secs(3600);
/// See [`ACCESS_TTL`].
pub const REFRESH_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// See [`ACCESS_TTL`].
pub const CODE_TTL: Duration = Duration::from_secs(60);

/// A running authorization server.
pub struct OAuth {
    settings: OAuthSettings,
    sealer: seal::Sealer,
    store: Arc<Store>,
    /// Client metadata documents: fetches in flight, and the cache.
    documents: clients::Documents,
    /// For `getCurrentUser` on the consent page.
    upstream: reqwest::Client,
    base_url: Option<String>,
}

impl std::fmt::Debug for OAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuth")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// An OAuth error answer (RFC 6749 §5.2): `{"error", "error_description"}`.
#[derive(Debug, PartialEq)]
pub(crate) struct OAuthError {
    pub(crate) code: &'static str,
    pub(crate) description: String,
    pub(crate) status: StatusCode,
}

impl OAuthError {
    pub(crate) fn new(code: &'static str, description: impl Into<String>) -> Self {
        let status = if code == "invalid_client" {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::BAD_REQUEST
        };
        Self {
            code,
            description: description.into(),
            status,
        }
    }

    pub(crate) fn server(description: impl Into<String>) -> Self {
        Self {
            code: "server_error",
            description: description.into(),
            status: StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The store could not answer: nothing was accepted; 503 with
    /// `Retry-After`, and a log line naming the store (never its password).
    pub(crate) fn unavailable(e: &StoreError) -> Self {
        tracing::error!(store = %e.store, error = %e.message, "the store cannot be reached: refusing");
        crate::mcp::metrics::store_error();
        Self {
            code: "server_error",
            description: "the server's store cannot be reached; nothing was accepted; try again shortly".into(),
            status: StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// How long a client is asked to wait after a 503.
pub(crate) const RETRY_AFTER_SECONDS: u64 = 5;

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let unavailable = self.status == StatusCode::SERVICE_UNAVAILABLE;
        let mut response = (
            self.status,
            Json(json!({"error": self.code, "error_description": self.description})),
        )
            .into_response();
        no_store(&mut response);
        if unavailable {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
        }
        response
    }
}

/// `Cache-Control: no-store` and `Pragma: no-cache`, on everything that
/// holds a code or a token.
pub(crate) fn no_store(response: &mut Response) {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
        .headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

impl OAuth {
    /// The authorization server of `settings`, keeping what must be used
    /// once in `store`; `base_url` is the API's.
    ///
    /// A public URL off loopback must be `https`: the consent page posts
    /// the user's key to it, and its cookies are then `Secure`.
    pub fn new(
        settings: OAuthSettings,
        upstream: reqwest::Client,
        base_url: Option<String>,
        store: Arc<Store>,
    ) -> Result<Self, String> {
        let url = &settings.public_url;
        if !matches!(url.scheme(), "https" | "http") || url.host().is_none() {
            return Err(format!("--public-url {url}: an http(s) address"));
        }
        if url.scheme() == "http" && !is_loopback_host(url) {
            return Err(format!(
                "--public-url {url}: must be https off loopback (the consent page posts the user's API key to it)"
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(format!("--public-url {url}: no query or fragment"));
        }
        let issuer = url.as_str().trim_end_matches('/').to_owned();
        let sealer = seal::Sealer::new(settings.secret.expose(), &issuer)?;
        Ok(Self {
            settings,
            sealer,
            store,
            documents: clients::Documents::default(),
            upstream,
            base_url,
        })
    }

    /// The store.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The public URL's path, without a trailing slash (`""` at the root):
    /// where the routes are, as the browser sees them behind a proxy.
    pub(crate) fn path_prefix(&self) -> String {
        self.settings.public_url.path().trim_end_matches('/').to_owned()
    }

    /// Whether cookies must be `Secure` (an https public URL).
    pub(crate) fn secure_cookies(&self) -> bool {
        self.settings.public_url.scheme() == "https"
    }

    /// The issuer: the public URL, without a trailing slash.
    pub(crate) fn issuer(&self) -> String {
        self.settings.public_url.as_str().trim_end_matches('/').to_owned()
    }

    /// The protected resource: the MCP endpoint.
    pub(crate) fn resource(&self) -> String {
        format!("{}/mcp", self.issuer())
    }

    /// Where the protected resource's metadata is.
    pub(crate) fn resource_metadata(&self) -> String {
        format!("{}/.well-known/oauth-protected-resource/mcp", self.issuer())
    }

    /// `WWW-Authenticate` for a 401 at `/mcp`: where to discover how to
    /// get a token, and (for a bad token) why.
    pub(crate) fn challenge(&self, error: Option<&str>) -> HeaderValue {
        let mut value = format!(
            "Bearer resource_metadata=\"{}\", scope=\"{SCOPE_FULL} {SCOPE_READ_ONLY}\"",
            self.resource_metadata()
        );
        if let Some(error) = error {
            value.push_str(&format!(", error=\"invalid_token\", error_description=\"{error}\""));
        }
        HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("Bearer"))
    }

    /// Opens a bearer access token and asks the store (one round trip)
    /// whether its grant is live: the key it wraps and its access, or why
    /// not (expired, another audience, not ours, revoked), or the store's
    /// failure.
    pub(crate) async fn check_bearer(
        &self,
        token: &str,
    ) -> Result<(Secret, Access, crate::mcp::budget::Connection), Bearer> {
        let claims = self
            .sealer
            .open(seal::Purpose::Access, token, Some(&self.resource()))
            .map_err(Bearer::Invalid)?;
        let key = seal::text(&claims, "k").ok_or(Bearer::Invalid("no key"))?;
        let grant = seal::text(&claims, "gid").ok_or(Bearer::Invalid("not of a grant"))?;
        match self.store.is_live(grant).await {
            Ok(true) => {}
            Ok(false) => return Err(Bearer::Invalid("revoked")),
            Err(e) => return Err(Bearer::Unavailable(e)),
        }
        let access = Access::of_scope(seal::text(&claims, "sc").unwrap_or(SCOPE_READ_ONLY));
        let connection = crate::mcp::budget::Connection {
            grant: Some(grant.to_owned()),
            client: seal::text(&claims, "cid").map(token::client_digest),
            client_name: seal::text(&claims, "cn").map(str::to_owned),
            limit: claims.get("lim").and_then(Value::as_u64),
        };
        Ok((Secret::new(key), access, connection))
    }

    /// Whether the server's own public address is on loopback (local
    /// testing): then client metadata documents may be too.
    pub(crate) fn is_local(&self) -> bool {
        is_loopback_host(&self.settings.public_url)
    }

    /// Whether `token` is shaped as one of this server's (PASETO v4.local)
    /// rather than an API key.
    pub(crate) fn is_sealed(token: &str) -> bool {
        token.starts_with("v4.local.")
    }

    /// The routes: discovery, registration, consent and tokens.
    pub fn routes(self: Arc<Self>) -> axum::Router {
        axum::Router::new()
            .route("/.well-known/oauth-protected-resource", get(protected_resource))
            .route("/.well-known/oauth-protected-resource/mcp", get(protected_resource))
            .route("/.well-known/oauth-authorization-server", get(authorization_server))
            .route("/register", post(register))
            .route("/authorize", get(consent::page).post(consent::decide))
            .route("/token", post(token::exchange))
            .route("/revoke", post(token::revoke))
            // Bodies here are small forms and JSON; anything bigger is refused unread.
            .layer(axum::extract::DefaultBodyLimit::max(64 * 1024))
            .with_state(self)
    }
}

async fn protected_resource(State(oauth): State<Arc<OAuth>>) -> Json<Value> {
    Json(json!({
        "resource": oauth.resource(),
        "authorization_servers": [oauth.issuer()],
        "scopes_supported": [SCOPE_FULL, SCOPE_READ_ONLY],
        "bearer_methods_supported": ["header"],
        "resource_name": "TokPortal (tokportal-mcp)",
    }))
}

async fn authorization_server(State(oauth): State<Arc<OAuth>>) -> Json<Value> {
    let issuer = oauth.issuer();
    Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "registration_endpoint": format!("{issuer}/register"),
        "revocation_endpoint": format!("{issuer}/revoke"),
        "revocation_endpoint_auth_methods_supported": ["none"],
        "scopes_supported": [SCOPE_FULL, SCOPE_READ_ONLY],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_methods_supported": ["none"],
        "code_challenge_methods_supported": ["S256"],
        "client_id_metadata_document_supported": true,
        "authorization_response_iss_parameter_supported": true,
    }))
}

async fn register(State(oauth): State<Arc<OAuth>>, body: axum::body::Bytes) -> Response {
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return OAuthError::new("invalid_client_metadata", "the body is not JSON").into_response();
    };
    match clients::register(&oauth.sealer, &oauth.settings.redirect_schemes, &body) {
        Ok(answer) => {
            let mut response = (StatusCode::CREATED, Json(answer)).into_response();
            no_store(&mut response);
            response
        }
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    //! The settings, the bearer check, the errors and the routes of
    //! discovery and registration, on an `OAuth` built in this process.

    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt as _;

    use super::*;

    const SECRET: &str = "a test secret of at least thirty-two bytes";

    fn settings(public_url: &str) -> OAuthSettings {
        OAuthSettings {
            public_url: Url::parse(public_url).unwrap(),
            secret: Secret::new(SECRET),
            access_ttl: ACCESS_TTL,
            refresh_ttl: REFRESH_TTL,
            code_ttl: CODE_TTL,
            redirect_schemes: vec!["cursor".into()],
            daily_credit_limit: Some(250),
        }
    }

    fn server(public_url: &str) -> Arc<OAuth> {
        let store = Arc::new(Store::memory());
        Arc::new(OAuth::new(settings(public_url), reqwest::Client::new(), None, store).unwrap())
    }

    #[test]
    fn a_scope_grants_full_access_only_when_it_names_full() {
        for (scope, access) in [
            (SCOPE_FULL, Access::Full),
            ("tokportal:read_only tokportal:full", Access::Full),
            (SCOPE_READ_ONLY, Access::ReadOnly),
            ("", Access::ReadOnly),
            ("tokportal:full_or_not", Access::ReadOnly),
        ] {
            assert_eq!(Access::of_scope(scope), access, "{scope:?}");
        }
        assert_eq!(Access::Full.scope(), "tokportal:full");
        assert_eq!(Access::ReadOnly.scope(), "tokportal:read_only");
        for access in [Access::Full, Access::ReadOnly] {
            assert_eq!(Access::of_scope(access.scope()), access);
        }
    }

    /// The settings and the server show themselves in logs, never the
    /// sealing secret.
    #[test]
    fn debug_shows_the_settings_never_the_secret() {
        let oauth = server("https://mcp.example/");
        for shown in [format!("{:?}", oauth.settings), format!("{oauth:?}")] {
            assert!(shown.contains("public_url: \"https://mcp.example/\""), "{shown}");
            assert!(shown.contains("redirect_schemes: [\"cursor\"]"), "{shown}");
            assert!(shown.contains("daily_credit_limit: Some(250)"), "{shown}");
            assert!(shown.contains("secret: Secret("), "{shown}");
            assert!(!shown.contains(SECRET), "{shown}");
        }
        assert!(format!("{oauth:?}").starts_with("OAuth {"));
    }

    #[test]
    fn loopback_is_a_loopback_address_localhost_or_a_name_under_it() {
        for (url, loopback) in [
            ("http://127.0.0.1:8080/", true),
            ("http://127.9.9.9/", true),
            ("http://[::1]:8080/", true),
            ("http://localhost/", true),
            ("http://LocalHost./", true),
            ("http://mcp.tokportal.localhost/", true),
            ("http://10.0.0.1/", false),
            ("http://[2001:db8::1]/", false),
            ("https://mcp.example/", false),
            ("http://localhost.example/", false),
            ("http://notlocalhost/", false),
            ("file:///tmp/x", false),
        ] {
            assert_eq!(is_loopback_host(&Url::parse(url).unwrap()), loopback, "{url}");
        }
    }

    #[test]
    fn tokens_last_an_hour_refresh_tokens_30_days_codes_a_minute() {
        assert_eq!(ACCESS_TTL, Duration::from_secs(3600));
        assert_eq!(REFRESH_TTL, Duration::from_secs(2_592_000));
        assert_eq!(CODE_TTL, Duration::from_secs(60));
    }

    /// What an error answer says: its status, its JSON, never cached, and
    /// `Retry-After` only when the store could not answer.
    async fn answer(error: OAuthError) -> (StatusCode, header::HeaderMap, Value) {
        let response = error.into_response();
        let (status, headers) = (response.status(), response.headers().clone());
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (status, headers, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn errors_are_uncached_json_and_only_a_503_asks_to_retry() {
        let store_down = StoreError {
            store: "redis://store.example".into(),
            message: "connection refused".into(),
        };
        for (error, status, code, retry) in [
            (
                OAuthError::new("invalid_client", "who?"),
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                false,
            ),
            (
                OAuthError::new("invalid_grant", "no"),
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                false,
            ),
            (
                OAuthError::server("cannot seal"),
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                false,
            ),
            (
                OAuthError::unavailable(&store_down),
                StatusCode::SERVICE_UNAVAILABLE,
                "server_error",
                true,
            ),
        ] {
            let description = error.description.clone();
            let (got, headers, body) = answer(error).await;
            assert_eq!(got, status, "{body}");
            assert_eq!(body, json!({"error": code, "error_description": description}));
            assert_eq!(headers[header::CACHE_CONTROL], "no-store");
            assert_eq!(headers[header::PRAGMA], "no-cache");
            assert_eq!(
                headers.get(header::RETRY_AFTER).map(|v| v.to_str().unwrap()),
                retry.then_some("5"),
                "{body}"
            );
        }
        let unavailable = OAuthError::unavailable(&store_down);
        assert!(unavailable.description.contains("nothing was accepted"));
        assert!(
            !unavailable.description.contains("store.example"),
            "the store stays in the log"
        );
    }

    /// Every address follows the public URL, under its path; cookies are
    /// `Secure` on https.
    #[test]
    fn addresses_follow_the_public_url() {
        let oauth = server("https://mcp.example/base/");
        assert_eq!(oauth.path_prefix(), "/base");
        assert_eq!(oauth.issuer(), "https://mcp.example/base");
        assert_eq!(oauth.resource(), "https://mcp.example/base/mcp");
        assert_eq!(
            oauth.resource_metadata(),
            "https://mcp.example/base/.well-known/oauth-protected-resource/mcp"
        );
        assert!(oauth.secure_cookies());
        assert!(!oauth.is_local());
        let local = server("http://localhost:8080/");
        assert_eq!(local.path_prefix(), "");
        assert_eq!(local.issuer(), "http://localhost:8080");
        assert!(!local.secure_cookies());
        assert!(local.is_local());
        let store = Arc::new(Store::memory());
        let oauth = OAuth::new(
            settings("https://mcp.example/"),
            reqwest::Client::new(),
            None,
            Arc::clone(&store),
        )
        .unwrap();
        assert!(Arc::ptr_eq(oauth.store(), &store));
    }

    #[test]
    fn a_public_url_must_be_https_off_loopback_without_query_or_fragment() {
        for (url, refused) in [
            ("ftp://mcp.example/", Some("an http(s) address")),
            ("http://mcp.example/", Some("must be https off loopback")),
            ("https://mcp.example/?a=1", Some("no query or fragment")),
            ("https://mcp.example/#a", Some("no query or fragment")),
            ("http://127.0.0.1:9/", None),
            ("https://mcp.example/", None),
        ] {
            let store = Arc::new(Store::memory());
            let made = OAuth::new(settings(url), reqwest::Client::new(), None, store);
            match refused {
                Some(why) => assert!(made.unwrap_err().contains(why), "{url}"),
                None => assert!(made.is_ok(), "{url}"),
            }
        }
    }

    #[test]
    fn the_challenge_names_the_metadata_and_scopes_and_why_a_token_failed() {
        let oauth = server("https://mcp.example/");
        let bare = "Bearer resource_metadata=\"https://mcp.example/.well-known/oauth-protected-resource/mcp\", \
                    scope=\"tokportal:full tokportal:read_only\"";
        assert_eq!(oauth.challenge(None), bare);
        assert_eq!(
            oauth.challenge(Some("expired")),
            format!("{bare}, error=\"invalid_token\", error_description=\"expired\"").as_str()
        );
        assert_eq!(oauth.challenge(Some("a\nb")), "Bearer", "never a broken header");
    }

    #[test]
    fn only_a_paseto_local_token_is_taken_for_one_of_ours() {
        assert!(OAuth::is_sealed("v4.local.abc"));
        assert!(!OAuth::is_sealed("sk_live_abc"));
        assert!(!OAuth::is_sealed("v4.public.abc"));
    }

    /// An access token as `/token` seals it, for `audience`, with `claims`.
    fn access_token(oauth: &OAuth, audience: &str, claims: &[(&str, Value)]) -> String {
        let claims = claims.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
        oauth
            .sealer
            .seal(seal::Purpose::Access, claims, Some(ACCESS_TTL), Some(audience))
            .unwrap()
    }

    #[track_caller]
    fn invalid(checked: Result<(Secret, Access, crate::mcp::budget::Connection), Bearer>, why: &str) {
        match checked {
            Err(Bearer::Invalid(got)) => assert!(got.contains(why), "{got:?}, not {why:?}"),
            other => panic!("{other:?}, not refused for {why:?}"),
        }
    }

    /// A bearer token lets its caller in only when it is one of this
    /// server's access tokens, for its `/mcp`, with a key and a live grant.
    #[tokio::test]
    async fn a_bearer_token_is_an_access_token_for_this_mcp_of_a_live_grant() {
        let oauth = server("https://mcp.example/");
        let now = crate::mcp::store::now();
        oauth
            .store
            .create_grant(&crate::mcp::store::NewGrant {
                id: "g1".into(),
                client: "digest".into(),
                client_name: "Claude".into(),
                key_id: "kid".into(),
                scope: SCOPE_READ_ONLY.into(),
                created_at: now,
                expires_at: now + 3600,
            })
            .await
            .unwrap();
        let full = [
            ("k", json!("sk_test_key")),
            ("gid", json!("g1")),
            ("sc", json!(SCOPE_READ_ONLY)),
            ("cid", json!("client-a")),
            ("cn", json!("Claude")),
            ("lim", json!(70)),
        ];
        let resource = "https://mcp.example/mcp";
        let (key, access, connection) = oauth
            .check_bearer(&access_token(&oauth, resource, &full))
            .await
            .unwrap();
        assert_eq!((key.expose(), access), ("sk_test_key", Access::ReadOnly));
        assert_eq!(
            connection,
            crate::mcp::budget::Connection {
                grant: Some("g1".into()),
                client: Some(token::client_digest("client-a")),
                client_name: Some("Claude".into()),
                limit: Some(70),
            }
        );
        invalid(oauth.check_bearer("v4.local.nope").await, "not a token");
        invalid(
            oauth
                .check_bearer(&access_token(&oauth, "https://other.example/mcp", &full))
                .await,
            "another resource",
        );
        invalid(
            oauth.check_bearer(&access_token(&oauth, resource, &full[1..])).await,
            "no key",
        );
        let no_grant = [full[0].clone(), full[2].clone()];
        invalid(
            oauth.check_bearer(&access_token(&oauth, resource, &no_grant)).await,
            "not of a grant",
        );
        let other_grant = [full[0].clone(), ("gid", json!("g2"))];
        invalid(
            oauth.check_bearer(&access_token(&oauth, resource, &other_grant)).await,
            "revoked",
        );
        assert!(oauth.store.revoke("g1").await.unwrap());
        invalid(
            oauth.check_bearer(&access_token(&oauth, resource, &full)).await,
            "revoked",
        );
    }

    async fn call(oauth: &Arc<OAuth>, request: Request<Body>) -> (StatusCode, header::HeaderMap, Value) {
        let response = Arc::clone(oauth).routes().oneshot(request).await.unwrap();
        let (status, headers) = (response.status(), response.headers().clone());
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (status, headers, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    fn get(path: &str) -> Request<Body> {
        Request::get(path).body(Body::empty()).unwrap()
    }

    fn post(path: &str, body: impl Into<Body>) -> Request<Body> {
        Request::post(path).body(body.into()).unwrap()
    }

    #[tokio::test]
    async fn the_metadata_documents_name_this_server_s_endpoints() {
        let oauth = server("https://mcp.example/base/");
        let resource = json!({
            "resource": "https://mcp.example/base/mcp",
            "authorization_servers": ["https://mcp.example/base"],
            "scopes_supported": [SCOPE_FULL, SCOPE_READ_ONLY],
            "bearer_methods_supported": ["header"],
            "resource_name": "TokPortal (tokportal-mcp)",
        });
        for path in [
            "/.well-known/oauth-protected-resource",
            "/.well-known/oauth-protected-resource/mcp",
        ] {
            let (status, _, body) = call(&oauth, get(path)).await;
            assert_eq!((status, body), (StatusCode::OK, resource.clone()), "{path}");
        }
        let (status, _, body) = call(&oauth, get("/.well-known/oauth-authorization-server")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["issuer"], "https://mcp.example/base");
        for (name, path) in [
            ("authorization_endpoint", "authorize"),
            ("token_endpoint", "token"),
            ("registration_endpoint", "register"),
            ("revocation_endpoint", "revoke"),
        ] {
            assert_eq!(body[name], format!("https://mcp.example/base/{path}"), "{name}");
        }
        assert_eq!(body["code_challenge_methods_supported"], json!(["S256"]));
        assert_eq!(body["token_endpoint_auth_methods_supported"], json!(["none"]));
        assert_eq!(
            body["grant_types_supported"],
            json!(["authorization_code", "refresh_token"])
        );
        assert_eq!(body["authorization_response_iss_parameter_supported"], true);
        assert_eq!(body["client_id_metadata_document_supported"], true);
    }

    /// `/register` answers 201 with a client id that `/authorize` knows,
    /// uncached; a body that is not JSON is refused; a body over 64 KiB
    /// is refused unread, one of exactly 64 KiB read.
    #[tokio::test]
    async fn register_answers_a_client_and_bodies_end_at_64_kib() {
        let oauth = server("https://mcp.example/");
        let metadata = r#"{"client_name": "Claude", "redirect_uris": ["https://c.example/cb"]}"#;
        // JSON, padded with spaces to `len` bytes.
        let padded = |len: usize| format!("{metadata}{}", " ".repeat(len - metadata.len()));
        let (status, _, _) = call(&oauth, post("/register", padded(64 * 1024 + 1))).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        let padded = padded(64 * 1024);
        let (status, headers, body) = call(&oauth, post("/register", padded)).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
        assert_eq!(body["client_name"], "Claude");
        assert_eq!(body["redirect_uris"], json!(["https://c.example/cb"]));
        let client = clients::resolve(
            &oauth.sealer,
            &oauth.documents,
            false,
            &[],
            body["client_id"].as_str().unwrap(),
        )
        .await
        .unwrap();
        assert_eq!(client.redirect_uris, ["https://c.example/cb"]);
        let (status, _, body) = call(&oauth, post("/register", "client_name=Claude")).await;
        assert_eq!(
            (status, &body["error"]),
            (StatusCode::BAD_REQUEST, &json!("invalid_client_metadata"))
        );
    }
}
