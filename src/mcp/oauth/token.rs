//! `/token`: codes for tokens, refresh tokens for new ones.
//!
//! - `authorization_code`: the code opened (sealed, unexpired, 60 s), its
//!   client, redirect URI and PKCE S256 verifier checked, and used once in
//!   the store (on every replica that shares it); it starts a grant.
//! - `refresh_token`: rotated: the token names its grant and generation;
//!   the current generation gets the next one, an older one (a rotated
//!   token used again) revokes the grant everywhere (RFC 9700 §4.14.2).
//! - Access tokens last an hour (`--oauth-access-ttl`), carry the key, the
//!   scope, the client, the grant and the audience (this server's `/mcp`),
//!   and are sealed: the key is never readable in them.
//! - `/revoke` (RFC 7009): a refresh or an access token ends its grant.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::seal::{Purpose, text};
use super::{OAuth, OAuthError, no_store};
use crate::mcp::store::{Created, NewGrant, Once, Rotation, now};

/// POST `/token` (form-encoded, RFC 6749 §4.1.3 and §6).
pub(crate) async fn exchange(State(oauth): State<Arc<OAuth>>, body: axum::body::Bytes) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let answer = match form.get("grant_type").map(String::as_str) {
        Some("authorization_code") => by_code(&oauth, &form).await,
        Some("refresh_token") => by_refresh(&oauth, &form).await,
        Some(other) => Err(OAuthError::new(
            "unsupported_grant_type",
            format!("{other} is not supported"),
        )),
        None => Err(OAuthError::new("invalid_request", "grant_type is missing")),
    };
    match answer {
        Ok(tokens) => {
            let mut response = Json(tokens).into_response();
            no_store(&mut response);
            response
        }
        Err(e) => {
            tracing::info!(error = e.code, why = %e.description, "a token request was refused");
            e.into_response()
        }
    }
}

fn grant(reason: &'static str) -> OAuthError {
    OAuthError::new("invalid_grant", reason)
}

async fn by_code(oauth: &OAuth, form: &HashMap<String, String>) -> Result<Value, OAuthError> {
    let field = |k: &str| {
        form.get(k)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| OAuthError::new("invalid_request", format!("{k} is missing")))
    };
    let code = field("code")?;
    let claims = oauth.sealer.open(Purpose::Code, code, None).map_err(|why| {
        grant(if why == "expired" {
            "the code has expired"
        } else {
            "the code is not valid"
        })
    })?;
    if text(&claims, "cid") != Some(field("client_id")?) {
        return Err(grant("the code was issued to another client"));
    }
    if text(&claims, "ru") != Some(field("redirect_uri")?) {
        return Err(grant("the redirect_uri is not the one the code was issued for"));
    }
    let verifier = field("code_verifier")?;
    if !(43..=128).contains(&verifier.len()) {
        return Err(OAuthError::new(
            "invalid_request",
            "code_verifier must be 43 to 128 characters",
        ));
    }
    let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let expected = text(&claims, "cc").unwrap_or_default();
    if !bool::from(subtle::ConstantTimeEq::ct_eq(computed.as_bytes(), expected.as_bytes())) {
        return Err(grant("the code_verifier does not match the code_challenge"));
    }
    if let Some(resource) = form.get("resource")
        && resource.trim_end_matches('/') != oauth.resource()
    {
        return Err(OAuthError::new(
            "invalid_target",
            "this server issues tokens for its own /mcp only",
        ));
    }
    let id = text(&claims, "jti").ok_or_else(|| grant("the code is not valid"))?;
    // Held a second past its `exp` (the seal still opens in that second).
    // A code that opened has one: the seal refuses a code without it.
    let expires = claims
        .get("exp")
        .and_then(Value::as_str)
        .and_then(|e| chrono::DateTime::parse_from_rfc3339(e).ok())
        .map(|e| e.timestamp() + 1)
        .ok_or_else(|| grant("the code is not valid"))?;
    match oauth.store.use_code(id, expires).await {
        Ok(Once::First) => {}
        Ok(Once::Again) => return Err(grant("the code has been used already")),
        Ok(Once::Full) => return Err(OAuthError::server("too many codes in flight; try again in a minute")),
        Err(e) => return Err(OAuthError::unavailable(&e)),
    }
    let (key, scope, client) = (
        text(&claims, "k").unwrap_or_default(),
        text(&claims, "sc").unwrap_or(super::SCOPE_READ_ONLY),
        text(&claims, "cid").unwrap_or_default(),
    );
    let name = text(&claims, "cn").unwrap_or("an unnamed client");
    let limit = claims.get("lim").and_then(Value::as_u64);
    let created_at = now();
    let new = NewGrant {
        id: uuid::Uuid::new_v4().to_string(),
        client: client_digest(client),
        client_name: name.to_owned(),
        key_id: crate::mcp::caller::KeyId::of(key).to_string(),
        scope: scope.to_owned(),
        created_at,
        expires_at: created_at + oauth.settings.refresh_ttl.as_secs() as i64,
    };
    match oauth.store.create_grant(&new).await {
        Ok(Created::Created) => {}
        Ok(Created::TooMany) => {
            return Err(grant(
                "this client holds too many live grants; revoke some (POST /revoke) and sign in again",
            ));
        }
        Err(e) => return Err(OAuthError::unavailable(&e)),
    }
    tracing::info!(grant = %new.id, client = %new.client_name, scope, "a grant was made");
    crate::mcp::metrics::grant(crate::mcp::metrics::GrantEvent::Issued);
    let grant = Grant {
        client,
        name,
        family: &new.id,
        generation: 0,
        limit,
    };
    tokens(oauth, key, scope, &grant)
}

/// What every token of a grant carries besides the key and the scope.
struct Grant<'a> {
    client: &'a str,
    name: &'a str,
    family: &'a str,
    generation: u64,
    /// The daily credit limit chosen on the consent page.
    limit: Option<u64>,
}

/// A client's id as the store keeps it: a digest (a sealed id is long).
pub(crate) fn client_digest(client_id: &str) -> String {
    let digest = Sha256::digest(client_id.as_bytes());
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

async fn by_refresh(oauth: &OAuth, form: &HashMap<String, String>) -> Result<Value, OAuthError> {
    let refresh = form
        .get("refresh_token")
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| OAuthError::new("invalid_request", "refresh_token is missing"))?;
    let claims = oauth.sealer.open(Purpose::Refresh, refresh, None).map_err(|why| {
        grant(if why == "expired" {
            "the refresh token has expired"
        } else {
            "the refresh token is not valid"
        })
    })?;
    if let Some(client) = form.get("client_id")
        && text(&claims, "cid") != Some(client.as_str())
    {
        return Err(grant("the refresh token was issued to another client"));
    }
    // A narrower scope may be asked for, never a wider one.
    let granted = text(&claims, "sc").unwrap_or(super::SCOPE_READ_ONLY);
    let scope = match form.get("scope").map(|s| s.trim()).filter(|s| !s.is_empty()) {
        None => granted,
        Some(s) if s == granted || s == super::SCOPE_READ_ONLY => s,
        Some(_) => return Err(OAuthError::new("invalid_scope", "a refresh cannot widen the scope")),
    };
    let family = text(&claims, "gid").ok_or_else(|| grant("the refresh token is not valid"))?;
    let presented = claims
        .get("gen")
        .and_then(Value::as_u64)
        .ok_or_else(|| grant("the refresh token is not valid"))?;
    let expires_at = now() + oauth.settings.refresh_ttl.as_secs() as i64;
    let generation = match oauth.store.rotate(family, presented, expires_at).await {
        Ok(Rotation::Rotated { generation }) => generation,
        Ok(Rotation::Replayed) => {
            crate::mcp::metrics::grant(crate::mcp::metrics::GrantEvent::Revoked);
            tracing::warn!(
                grant = family,
                "a rotated refresh token was used again: the grant is revoked"
            );
            return Err(grant(
                "the refresh token was used already (they rotate): the grant is revoked; sign in again",
            ));
        }
        Ok(Rotation::Revoked) => return Err(grant("the grant was revoked; sign in again")),
        Ok(Rotation::Unknown) => return Err(grant("the grant has ended; sign in again")),
        Err(e) => return Err(OAuthError::unavailable(&e)),
    };
    crate::mcp::metrics::grant(crate::mcp::metrics::GrantEvent::Refreshed);
    let grant = Grant {
        client: text(&claims, "cid").unwrap_or_default(),
        name: text(&claims, "cn").unwrap_or("an unnamed client"),
        family,
        generation,
        limit: claims.get("lim").and_then(Value::as_u64),
    };
    tokens(oauth, text(&claims, "k").unwrap_or_default(), scope, &grant)
}

/// POST `/revoke` (RFC 7009, form-encoded `token`, optional
/// `token_type_hint` and `client_id`): the token's grant ends, its refresh
/// and access tokens with it, on every replica sharing the store. 200 for
/// any token, valid or not (§2.2), so the answer tells nothing; 503 when
/// the store cannot be reached.
pub(crate) async fn revoke(State(oauth): State<Arc<OAuth>>, body: axum::body::Bytes) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let Some(token) = form.get("token").map(|t| t.trim()).filter(|t| !t.is_empty()) else {
        return OAuthError::new("invalid_request", "token is missing").into_response();
    };
    let order = lookup_order(form.get("token_type_hint").map(String::as_str));
    let claims = order.into_iter().find_map(|purpose| {
        let audience = (purpose == Purpose::Access).then(|| oauth.resource());
        oauth.sealer.open(purpose, token, audience.as_deref()).ok()
    });
    let grant = claims.as_ref().and_then(|claims| {
        // A client that names itself revokes only its own tokens.
        let own = form
            .get("client_id")
            .is_none_or(|client| text(claims, "cid") == Some(client.as_str()));
        own.then(|| text(claims, "gid")).flatten()
    });
    if let Some(grant) = grant {
        match oauth.store.revoke(grant).await {
            Ok(true) => {
                tracing::info!(grant, "a grant was revoked");
                crate::mcp::metrics::grant(crate::mcp::metrics::GrantEvent::Revoked);
            }
            Ok(false) => {}
            Err(e) => return OAuthError::unavailable(&e).into_response(),
        }
    }
    let mut response = axum::http::StatusCode::OK.into_response();
    no_store(&mut response);
    response
}

/// The kinds of token `/revoke` tries, the hinted one first. A token opens
/// as one kind only, so the hint changes no answer: it spares a failed
/// opening (RFC 7009 §2.1, "MAY be used to optimize lookup").
fn lookup_order(token_type_hint: Option<&str>) -> [Purpose; 2] {
    if token_type_hint == Some("access_token") {
        [Purpose::Access, Purpose::Refresh]
    } else {
        [Purpose::Refresh, Purpose::Access]
    }
}

/// A new access token and a new refresh token of `grant`.
fn tokens(oauth: &OAuth, key: &str, scope: &str, grant: &Grant<'_>) -> Result<Value, OAuthError> {
    let mut access = Map::new();
    access.insert("k".into(), json!(key));
    access.insert("sc".into(), json!(scope));
    access.insert("cid".into(), json!(grant.client));
    access.insert("cn".into(), json!(grant.name));
    access.insert("gid".into(), json!(grant.family));
    if let Some(limit) = grant.limit {
        access.insert("lim".into(), json!(limit));
    }
    let access = oauth
        .sealer
        .seal(
            Purpose::Access,
            access,
            Some(oauth.settings.access_ttl),
            Some(&oauth.resource()),
        )
        .map_err(OAuthError::server)?;
    let mut refresh = Map::new();
    refresh.insert("k".into(), json!(key));
    refresh.insert("sc".into(), json!(scope));
    refresh.insert("cid".into(), json!(grant.client));
    refresh.insert("cn".into(), json!(grant.name));
    refresh.insert("gid".into(), json!(grant.family));
    refresh.insert("gen".into(), json!(grant.generation));
    if let Some(limit) = grant.limit {
        refresh.insert("lim".into(), json!(limit));
    }
    let refresh = oauth
        .sealer
        .seal(Purpose::Refresh, refresh, Some(oauth.settings.refresh_ttl), None)
        .map_err(OAuthError::server)?;
    Ok(json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": oauth.settings.access_ttl.as_secs(),
        "refresh_token": refresh,
        "scope": scope,
    }))
}

#[cfg(test)]
mod tests {
    //! `/token` and `/revoke` driven directly, on an `OAuth` built in this
    //! process over a memory store (SQLite where the stored row is read).

    use std::time::Duration;

    use axum::http::{StatusCode, header};
    use url::Url;

    use super::super::{Access, Bearer, OAuthSettings, SCOPE_FULL, SCOPE_READ_ONLY};
    use super::*;
    use crate::mcp::store::{MAX_GRANTS_PER_CLIENT, Store, StoreUrl};
    use crate::secret::Secret;

    const RESOURCE: &str = "https://mcp.example/mcp";
    /// The client ids `/token` compares (a real one is sealed, or a URL).
    const CLIENT: &str = "client-a";
    const OTHER_CLIENT: &str = "client-b";
    const REDIRECT: &str = "https://client.example/cb";
    const KEY: &str = "sk_test_the_users_key";
    /// RFC 7636 appendix B's verifier (43 characters) and its S256 challenge.
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    /// Not the defaults, so that a default used in their place shows.
    const ACCESS_TTL: Duration = Duration::from_secs(1234);
    const REFRESH_TTL: Duration = Duration::from_secs(56_789);

    fn server_on(store: Store) -> Arc<OAuth> {
        let settings = OAuthSettings {
            public_url: Url::parse("https://mcp.example/").unwrap(),
            secret: Secret::new("a test secret of at least thirty-two bytes"),
            access_ttl: ACCESS_TTL,
            refresh_ttl: REFRESH_TTL,
            code_ttl: super::super::CODE_TTL,
            redirect_schemes: Vec::new(),
            daily_credit_limit: None,
        };
        Arc::new(OAuth::new(settings, reqwest::Client::new(), None, Arc::new(store)).unwrap())
    }

    fn server() -> Arc<OAuth> {
        server_on(Store::memory())
    }

    fn challenge(verifier: &str) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
    }

    fn claims(pairs: &[(&str, Value)]) -> Map<String, Value> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect()
    }

    /// A code as `/authorize` seals it (for [`CLIENT`], [`REDIRECT`] and
    /// [`CHALLENGE`], full access, no limit), `edit`ed, lasting `ttl`.
    fn code_with(oauth: &OAuth, ttl: Duration, edit: impl FnOnce(&mut Map<String, Value>)) -> String {
        let mut code = claims(&[
            ("cid", json!(CLIENT)),
            ("ru", json!(REDIRECT)),
            ("cc", json!(CHALLENGE)),
            ("sc", json!(SCOPE_FULL)),
            ("cn", json!("Claude")),
            ("k", json!(KEY)),
        ]);
        edit(&mut code);
        oauth.sealer.seal(Purpose::Code, code, Some(ttl), None).unwrap()
    }

    fn code(oauth: &OAuth) -> String {
        code_with(oauth, oauth.settings.code_ttl, |_| {})
    }

    /// The form that exchanges `code`, as the client it was issued to sends it.
    fn redeem<'a>(code: &'a str, verifier: &'a str) -> Vec<(&'a str, &'a str)> {
        vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("client_id", CLIENT),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
        ]
    }

    fn refreshing(refresh_token: &str) -> Vec<(&str, &str)> {
        vec![("grant_type", "refresh_token"), ("refresh_token", refresh_token)]
    }

    /// `form` with `name` set to `value` (`None`: left out).
    fn with<'a>(mut form: Vec<(&'a str, &'a str)>, name: &'a str, value: Option<&'a str>) -> Vec<(&'a str, &'a str)> {
        form.retain(|(k, _)| *k != name);
        form.extend(value.map(|v| (name, v)));
        form
    }

    /// What a handler answered.
    #[derive(Debug)]
    struct Answer {
        status: StatusCode,
        /// The JSON body (`Null` when empty).
        body: Value,
        /// `Cache-Control: no-store` and `Pragma: no-cache` were set.
        no_store: bool,
    }

    impl Answer {
        fn text(&self, name: &str) -> &str {
            self.body[name]
                .as_str()
                .unwrap_or_else(|| panic!("no {name} in {:?}", self.body))
        }
    }

    async fn read(response: Response) -> Answer {
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        let no_store = headers.get(header::CACHE_CONTROL).is_some_and(|v| v == "no-store")
            && headers.get(header::PRAGMA).is_some_and(|v| v == "no-cache");
        Answer { status, body, no_store }
    }

    fn encode(form: &[(&str, &str)]) -> axum::body::Bytes {
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish()
            .into()
    }

    /// POST `/token`.
    async fn token(oauth: &Arc<OAuth>, form: &[(&str, &str)]) -> Answer {
        read(exchange(State(Arc::clone(oauth)), encode(form)).await).await
    }

    /// POST `/revoke`.
    async fn revoking(oauth: &Arc<OAuth>, form: &[(&str, &str)]) -> Answer {
        read(revoke(State(Arc::clone(oauth)), encode(form)).await).await
    }

    /// A refusal: its status, its OAuth error code, and a description
    /// that says `says`.
    #[track_caller]
    fn refused(answer: &Answer, status: StatusCode, error: &str, says: &str) {
        assert_eq!(
            (answer.status, answer.body["error"].as_str()),
            (status, Some(error)),
            "{answer:?}"
        );
        let description = answer.body["error_description"].as_str().unwrap_or_default();
        assert!(description.contains(says), "{says:?} not in {answer:?}");
        assert!(answer.no_store, "{answer:?}");
    }

    #[track_caller]
    fn granted(answer: &Answer) {
        assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
        assert!(answer.no_store, "{answer:?}");
    }

    /// Tokens for a fresh code (granted).
    async fn sign_in(oauth: &Arc<OAuth>) -> Answer {
        let code = code(oauth);
        let answer = token(oauth, &redeem(&code, VERIFIER)).await;
        granted(&answer);
        answer
    }

    fn access_claims(oauth: &OAuth, answer: &Answer) -> Map<String, Value> {
        oauth
            .sealer
            .open(Purpose::Access, answer.text("access_token"), Some(RESOURCE))
            .unwrap()
    }

    fn refresh_claims(oauth: &OAuth, answer: &Answer) -> Map<String, Value> {
        oauth
            .sealer
            .open(Purpose::Refresh, answer.text("refresh_token"), None)
            .unwrap()
    }

    /// A claim that is a time, as Unix seconds.
    fn time(claims: &Map<String, Value>, name: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(text(claims, name).unwrap())
            .unwrap()
            .timestamp()
    }

    async fn the_grant(oauth: &OAuth, id: &str) -> crate::mcp::store::Grant {
        let grants = oauth.store.grants().await.unwrap();
        grants.into_iter().find(|g| g.id == id).expect("the grant is stored")
    }

    async fn is_live(oauth: &OAuth, grant: &str) -> bool {
        oauth.store.is_live(grant).await.unwrap()
    }

    /// A code's tokens: both carry the key (unreadable), the scope, the
    /// client, its name and the grant; the access token is for this
    /// server's `/mcp` and lasts `access_ttl` (said as `expires_in`), the
    /// refresh token `refresh_ttl`, at generation 0; the grant is stored
    /// under the client's digest and the key's fingerprint, live for
    /// `refresh_ttl`; the access token lets the caller in.
    #[tokio::test]
    async fn a_code_is_exchanged_for_tokens_that_carry_its_grant() {
        let oauth = server();
        let answer = sign_in(&oauth).await;
        assert_eq!(answer.body["token_type"], "Bearer");
        assert_eq!(answer.body["expires_in"], json!(1234));
        assert_eq!(answer.body["scope"], SCOPE_FULL);
        let (access, refresh) = (answer.text("access_token"), answer.text("refresh_token"));
        assert!(!access.contains(KEY) && !refresh.contains(KEY), "the key is sealed");
        assert!(
            oauth
                .sealer
                .open(Purpose::Access, access, Some("https://mcp.example/other"))
                .is_err(),
            "for this server's /mcp only"
        );
        let a = access_claims(&oauth, &answer);
        let r = refresh_claims(&oauth, &answer);
        for claims in [&a, &r] {
            assert_eq!(text(claims, "k"), Some(KEY));
            assert_eq!(text(claims, "sc"), Some(SCOPE_FULL));
            assert_eq!(text(claims, "cid"), Some(CLIENT));
            assert_eq!(text(claims, "cn"), Some("Claude"));
            assert!(claims.get("lim").is_none(), "no limit was chosen: {claims:?}");
        }
        assert_eq!(time(&a, "exp") - time(&a, "iat"), 1234);
        assert_eq!(time(&r, "exp") - time(&r, "iat"), 56_789);
        assert_eq!(r.get("gen"), Some(&json!(0)));
        assert!(a.get("gen").is_none());
        let id = text(&a, "gid").unwrap();
        assert_eq!(text(&r, "gid"), Some(id));
        let g = the_grant(&oauth, id).await;
        assert_eq!(g.client, client_digest(CLIENT));
        assert_eq!(g.client_name, "Claude");
        assert_eq!(g.key_id, crate::mcp::caller::KeyId::of(KEY).to_string());
        assert_eq!((g.scope.as_str(), g.generation, g.revoked), (SCOPE_FULL, 0, false));
        assert_eq!(g.expires_at - g.created_at, 56_789);
        assert!(is_live(&oauth, id).await);
        let (key, access, connection) = oauth.check_bearer(answer.text("access_token")).await.unwrap();
        assert_eq!((key.expose(), access), (KEY, Access::Full));
        assert_eq!(connection.grant.as_deref(), Some(id));
        assert_eq!(connection.client, Some(client_digest(CLIENT)));
        assert_eq!(connection.limit, None);
    }

    /// The daily credit limit chosen on the consent page rides in both
    /// tokens, and in the refreshed ones.
    #[tokio::test]
    async fn a_daily_limit_rides_in_both_tokens_and_through_a_refresh() {
        let oauth = server();
        let code = code_with(&oauth, oauth.settings.code_ttl, |c| {
            c.insert("lim".into(), json!(500));
        });
        let first = token(&oauth, &redeem(&code, VERIFIER)).await;
        granted(&first);
        let second = token(&oauth, &refreshing(first.text("refresh_token"))).await;
        granted(&second);
        for answer in [&first, &second] {
            assert_eq!(access_claims(&oauth, answer).get("lim"), Some(&json!(500)));
            assert_eq!(refresh_claims(&oauth, answer).get("lim"), Some(&json!(500)));
            let (_, _, connection) = oauth.check_bearer(answer.text("access_token")).await.unwrap();
            assert_eq!(connection.limit, Some(500));
        }
    }

    /// A code that names no scope grants read-only access, and no name an
    /// unnamed client.
    #[tokio::test]
    async fn a_code_without_a_scope_grants_read_only() {
        let oauth = server();
        let code = code_with(&oauth, oauth.settings.code_ttl, |c| {
            c.remove("sc");
            c.remove("cn");
        });
        let answer = token(&oauth, &redeem(&code, VERIFIER)).await;
        granted(&answer);
        assert_eq!(answer.body["scope"], SCOPE_READ_ONLY);
        let a = access_claims(&oauth, &answer);
        assert_eq!(text(&a, "cn"), Some("an unnamed client"));
        let (_, access, _) = oauth.check_bearer(answer.text("access_token")).await.unwrap();
        assert_eq!(access, Access::ReadOnly);
    }

    /// Each field left out, or blank, is named; a refused request does not
    /// use the code up, and the whole one is then granted.
    #[tokio::test]
    async fn every_missing_field_is_an_invalid_request() {
        let oauth = server();
        let code = code(&oauth);
        for field in ["code", "client_id", "redirect_uri", "code_verifier"] {
            for value in [None, Some(""), Some("  ")] {
                let answer = token(&oauth, &with(redeem(&code, VERIFIER), field, value)).await;
                refused(
                    &answer,
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    &format!("{field} is missing"),
                );
            }
        }
        let answer = token(&oauth, &with(redeem(&code, VERIFIER), "grant_type", None)).await;
        refused(
            &answer,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "grant_type is missing",
        );
        let answer = token(&oauth, &with(redeem(&code, VERIFIER), "grant_type", Some("password"))).await;
        refused(
            &answer,
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "password is not supported",
        );
        for value in [None, Some(""), Some(" ")] {
            let answer = token(&oauth, &with(refreshing("x"), "refresh_token", value)).await;
            refused(
                &answer,
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "refresh_token is missing",
            );
        }
        granted(&token(&oauth, &redeem(&code, VERIFIER)).await);
    }

    /// A code is exchanged only by its client, with its redirect URI.
    #[tokio::test]
    async fn a_code_of_another_client_or_redirect_uri_is_refused() {
        let oauth = server();
        let code = code(&oauth);
        let answer = token(&oauth, &with(redeem(&code, VERIFIER), "client_id", Some(OTHER_CLIENT))).await;
        refused(
            &answer,
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "issued to another client",
        );
        for other in ["https://client.example/cb/", "https://client.example/other"] {
            let answer = token(&oauth, &with(redeem(&code, VERIFIER), "redirect_uri", Some(other))).await;
            refused(
                &answer,
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                "not the one the code was issued for",
            );
        }
        granted(&token(&oauth, &redeem(&code, VERIFIER)).await);
    }

    /// A verifier has 43 to 128 characters (RFC 7636 §4.1), exactly, and
    /// must be the code's challenge's.
    #[tokio::test]
    async fn the_verifier_has_43_to_128_characters_and_must_match() {
        let oauth = server();
        for (length, accepted) in [(42, false), (43, true), (128, true), (129, false)] {
            let verifier = "v".repeat(length);
            let code = code_with(&oauth, oauth.settings.code_ttl, |c| {
                c.insert("cc".into(), json!(challenge(&verifier)));
            });
            let answer = token(&oauth, &redeem(&code, &verifier)).await;
            if accepted {
                granted(&answer);
            } else {
                refused(
                    &answer,
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "code_verifier must be 43 to 128 characters",
                );
            }
        }
        let code = code(&oauth);
        for wrong in ["w".repeat(43), VERIFIER.to_ascii_lowercase(), CHALLENGE.to_owned()] {
            let answer = token(&oauth, &redeem(&code, &wrong)).await;
            refused(
                &answer,
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                "does not match the code_challenge",
            );
        }
        // A code without a challenge matches no verifier.
        let bare = code_with(&oauth, oauth.settings.code_ttl, |c| {
            c.remove("cc");
        });
        let answer = token(&oauth, &redeem(&bare, VERIFIER)).await;
        refused(&answer, StatusCode::BAD_REQUEST, "invalid_grant", "does not match");
        granted(&token(&oauth, &redeem(&code, VERIFIER)).await);
    }

    /// `resource` (RFC 8707), when given, is this server's `/mcp`, with or
    /// without a trailing slash.
    #[tokio::test]
    async fn a_resource_other_than_this_servers_mcp_is_refused() {
        let oauth = server();
        for other in [
            "https://mcp.example",
            "https://mcp.example/",
            "https://mcp.example/other",
            "https://other.example/mcp",
            "https://mcp.example/mcp/x",
            "",
        ] {
            let code = code(&oauth);
            let answer = token(&oauth, &with(redeem(&code, VERIFIER), "resource", Some(other))).await;
            refused(&answer, StatusCode::BAD_REQUEST, "invalid_target", "its own /mcp only");
        }
        for own in [RESOURCE, "https://mcp.example/mcp/"] {
            let code = code(&oauth);
            granted(&token(&oauth, &with(redeem(&code, VERIFIER), "resource", Some(own))).await);
        }
    }

    /// A code is used once, the second time refused.
    #[tokio::test]
    async fn a_code_is_used_once() {
        let oauth = server();
        let code = code(&oauth);
        granted(&token(&oauth, &redeem(&code, VERIFIER)).await);
        let again = token(&oauth, &redeem(&code, VERIFIER)).await;
        refused(&again, StatusCode::BAD_REQUEST, "invalid_grant", "used already");
        assert_eq!(oauth.store.grants().await.unwrap().len(), 1, "one grant");
    }

    /// An expired code is refused as expired; one that is not a code of
    /// this server as not valid.
    #[tokio::test]
    async fn an_expired_or_forged_code_is_refused_saying_which() {
        let oauth = server();
        // Sealed with no time to live: its `exp` is the whole second it was
        // sealed in, already past when it is opened.
        let expired = code_with(&oauth, Duration::ZERO, |_| {});
        let answer = token(&oauth, &redeem(&expired, VERIFIER)).await;
        refused(
            &answer,
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "the code has expired",
        );
        // Not codes, or codes of another secret or another issuer.
        let tokens = sign_in(&oauth).await;
        let other = |public_url: &str, secret: &str| {
            let settings = OAuthSettings {
                public_url: Url::parse(public_url).unwrap(),
                secret: Secret::new(secret),
                ..oauth.settings.clone()
            };
            OAuth::new(settings, reqwest::Client::new(), None, Arc::new(Store::memory())).unwrap()
        };
        let other_secret = code(&other(
            "https://mcp.example/",
            "another secret, also thirty-two bytes long",
        ));
        let staging = code(&other(
            "https://staging.mcp.example/",
            "a test secret of at least thirty-two bytes",
        ));
        for forged in [
            "not-a-code",
            tokens.text("access_token"),
            tokens.text("refresh_token"),
            &other_secret,
            &staging,
        ] {
            let answer = token(&oauth, &redeem(forged, VERIFIER)).await;
            refused(
                &answer,
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                "the code is not valid",
            );
        }
        // A replica's (the same secret and public URL): accepted.
        let replica = code(&server());
        granted(&token(&oauth, &redeem(&replica, VERIFIER)).await);
    }

    /// The store holds a used code until a second after its `exp` (the
    /// seal opens until `exp` inclusive), as the SQLite file shows.
    #[tokio::test]
    async fn a_used_code_is_held_until_a_second_after_it_expires() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        let oauth = server_on(Store::open(&StoreUrl::Sqlite(path.clone())).await.unwrap());
        let code = code(&oauth);
        let claims = oauth.sealer.open(Purpose::Code, &code, None).unwrap();
        granted(&token(&oauth, &redeem(&code, VERIFIER)).await);
        let held: i64 = rusqlite::Connection::open(&path)
            .unwrap()
            .query_row(
                "SELECT expires_at FROM codes WHERE id = ?1",
                [text(&claims, "jti").unwrap()],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(held, time(&claims, "exp") + 1);
    }

    /// A client holding as many live grants as it may gets no new one;
    /// another client does (grants are counted by the client's digest).
    #[tokio::test]
    async fn a_client_with_too_many_grants_is_refused_another() {
        let oauth = server();
        let now = now();
        for n in 0..MAX_GRANTS_PER_CLIENT {
            let made = oauth
                .store
                .create_grant(&NewGrant {
                    id: format!("g{n}"),
                    client: client_digest(CLIENT),
                    client_name: "Claude".into(),
                    key_id: "k".into(),
                    scope: SCOPE_FULL.into(),
                    created_at: now,
                    expires_at: now + 3600,
                })
                .await
                .unwrap();
            assert_eq!(made, Created::Created);
        }
        let code = code(&oauth);
        let answer = token(&oauth, &redeem(&code, VERIFIER)).await;
        refused(
            &answer,
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "holds too many live grants",
        );
        let theirs = code_with(&oauth, oauth.settings.code_ttl, |c| {
            c.insert("cid".into(), json!(OTHER_CLIENT));
        });
        let answer = token(
            &oauth,
            &with(redeem(&theirs, VERIFIER), "client_id", Some(OTHER_CLIENT)),
        )
        .await;
        granted(&answer);
    }

    /// A client's digest: the first 16 bytes of its id's SHA-256, in hex.
    #[test]
    fn a_client_digest_is_the_first_half_of_its_sha256_in_hex() {
        assert_eq!(client_digest("abc"), "ba7816bf8f01cfea414140de5dae2223");
        assert_eq!(client_digest(""), "e3b0c44298fc1c149afbf4c8996fb924");
        let digest = client_digest(CLIENT);
        assert_eq!(digest.len(), 32);
        assert!(digest.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        assert_ne!(digest, client_digest(OTHER_CLIENT));
    }

    /// A refresh rotates: the next generation, the same grant, lasting
    /// `refresh_ttl` from now; the rotated token used again revokes the
    /// grant, and its newest tokens with it.
    #[tokio::test]
    async fn a_refresh_rotates_and_a_replayed_token_revokes_the_grant() {
        let oauth = server();
        let first = sign_in(&oauth).await;
        let id = text(&refresh_claims(&oauth, &first), "gid").unwrap().to_owned();
        let before = now();
        let second = token(&oauth, &refreshing(first.text("refresh_token"))).await;
        let after = now();
        granted(&second);
        assert_eq!(second.body["expires_in"], json!(1234));
        assert_eq!(second.body["scope"], SCOPE_FULL);
        let r = refresh_claims(&oauth, &second);
        assert_eq!(r.get("gen"), Some(&json!(1)));
        assert_eq!(text(&r, "gid"), Some(id.as_str()));
        assert_eq!(text(&access_claims(&oauth, &second), "gid"), Some(id.as_str()));
        for claims in [&r, &access_claims(&oauth, &second)] {
            assert_eq!(text(claims, "k"), Some(KEY));
            assert_eq!(text(claims, "cid"), Some(CLIENT));
            assert_eq!(text(claims, "cn"), Some("Claude"));
        }
        let g = the_grant(&oauth, &id).await;
        assert_eq!(g.generation, 1);
        assert!(
            (before + 56_789..=after + 56_789).contains(&g.expires_at),
            "{} not {before}..={after} + 56789",
            g.expires_at
        );
        let third = token(&oauth, &refreshing(second.text("refresh_token"))).await;
        granted(&third);
        assert_eq!(refresh_claims(&oauth, &third).get("gen"), Some(&json!(2)));
        assert!(oauth.check_bearer(third.text("access_token")).await.is_ok());
        // The first token again: a replay.
        let replayed = token(&oauth, &refreshing(first.text("refresh_token"))).await;
        refused(
            &replayed,
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "used already (they rotate): the grant is revoked",
        );
        assert!(the_grant(&oauth, &id).await.revoked);
        let newest = token(&oauth, &refreshing(third.text("refresh_token"))).await;
        refused(
            &newest,
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "the grant was revoked",
        );
        assert!(matches!(
            oauth.check_bearer(third.text("access_token")).await,
            Err(Bearer::Invalid("revoked"))
        ));
    }

    /// A refresh may keep its scope or narrow it to read-only, never widen
    /// it; a blank scope is none.
    #[tokio::test]
    async fn a_refresh_may_narrow_the_scope_never_widen_it() {
        let oauth = server();
        let mut latest = sign_in(&oauth).await;
        for asked in [None, Some(""), Some(" "), Some(SCOPE_FULL)] {
            let answer = token(&oauth, &with(refreshing(latest.text("refresh_token")), "scope", asked)).await;
            granted(&answer);
            assert_eq!(answer.body["scope"], SCOPE_FULL, "{asked:?}");
            latest = answer;
        }
        let answer = token(
            &oauth,
            &with(refreshing(latest.text("refresh_token")), "scope", Some(SCOPE_READ_ONLY)),
        )
        .await;
        granted(&answer);
        assert_eq!(answer.body["scope"], SCOPE_READ_ONLY);
        assert_eq!(text(&access_claims(&oauth, &answer), "sc"), Some(SCOPE_READ_ONLY));
        assert_eq!(text(&refresh_claims(&oauth, &answer), "sc"), Some(SCOPE_READ_ONLY));
        let (_, access, _) = oauth.check_bearer(answer.text("access_token")).await.unwrap();
        assert_eq!(access, Access::ReadOnly);
        latest = answer;
        let wider = format!("{SCOPE_READ_ONLY} {SCOPE_FULL}");
        for asked in [SCOPE_FULL, "tokportal:other", wider.as_str()] {
            let answer = token(
                &oauth,
                &with(refreshing(latest.text("refresh_token")), "scope", Some(asked)),
            )
            .await;
            refused(
                &answer,
                StatusCode::BAD_REQUEST,
                "invalid_scope",
                "cannot widen the scope",
            );
        }
        // Refused before the store: the token is still the current one.
        for asked in [None, Some(SCOPE_READ_ONLY)] {
            let answer = token(&oauth, &with(refreshing(latest.text("refresh_token")), "scope", asked)).await;
            granted(&answer);
            assert_eq!(answer.body["scope"], SCOPE_READ_ONLY);
            latest = answer;
        }
        // A full grant asked for something unknown: refused too.
        let full = sign_in(&oauth).await;
        let answer = token(
            &oauth,
            &with(refreshing(full.text("refresh_token")), "scope", Some("tokportal:other")),
        )
        .await;
        refused(&answer, StatusCode::BAD_REQUEST, "invalid_scope", "cannot widen");
    }

    /// A refresh that names a client must name the token's.
    #[tokio::test]
    async fn a_refresh_naming_another_client_is_refused() {
        let oauth = server();
        let tokens = sign_in(&oauth).await;
        let answer = token(
            &oauth,
            &with(
                refreshing(tokens.text("refresh_token")),
                "client_id",
                Some(OTHER_CLIENT),
            ),
        )
        .await;
        refused(
            &answer,
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "issued to another client",
        );
        let named = token(
            &oauth,
            &with(refreshing(tokens.text("refresh_token")), "client_id", Some(CLIENT)),
        )
        .await;
        granted(&named);
        granted(&token(&oauth, &refreshing(named.text("refresh_token"))).await);
    }

    /// Refresh tokens that are expired, forged, of another kind, without
    /// a grant or a generation, or of a grant this store never made.
    #[tokio::test]
    async fn an_expired_forged_or_unknown_refresh_token_is_refused() {
        let oauth = server();
        let tokens = sign_in(&oauth).await;
        let id = text(&refresh_claims(&oauth, &tokens), "gid").unwrap().to_owned();
        let refresh = |ttl: Duration, pairs: &[(&str, Value)]| {
            oauth
                .sealer
                .seal(Purpose::Refresh, claims(pairs), Some(ttl), None)
                .unwrap()
        };
        let whole = [
            ("k", json!(KEY)),
            ("cid", json!(CLIENT)),
            ("gid", json!(id)),
            ("gen", json!(0)),
        ];
        let expired = refresh(Duration::ZERO, &whole);
        let answer = token(&oauth, &refreshing(&expired)).await;
        refused(
            &answer,
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "the refresh token has expired",
        );
        let no_grant = refresh(REFRESH_TTL, &[whole[0].clone(), whole[1].clone(), whole[3].clone()]);
        let no_generation = refresh(REFRESH_TTL, &whole[..3]);
        let words = refresh(REFRESH_TTL, &[whole[2].clone(), ("gen", json!("0"))]);
        let code = code(&oauth);
        for forged in [
            "not-a-token",
            tokens.text("access_token"),
            &code,
            &no_grant,
            &no_generation,
            &words,
        ] {
            let answer = token(&oauth, &refreshing(forged)).await;
            refused(
                &answer,
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                "the refresh token is not valid",
            );
        }
        let unknown = refresh(REFRESH_TTL, &[("gid", json!("never-made")), ("gen", json!(0))]);
        let answer = token(&oauth, &refreshing(&unknown)).await;
        refused(&answer, StatusCode::BAD_REQUEST, "invalid_grant", "the grant has ended");
        // None of that touched the grant.
        assert_eq!(the_grant(&oauth, &id).await.generation, 0);
        granted(&token(&oauth, &refreshing(tokens.text("refresh_token"))).await);
    }

    /// Revokes a fresh grant by its `kind` of token (`refresh_token` or
    /// `access_token`) under `hint`: 200 and no-store, the grant no longer
    /// live, its refresh token and its access token refused.
    async fn revoke_by(oauth: &Arc<OAuth>, kind: &str, hint: Option<&str>) {
        let tokens = sign_in(oauth).await;
        let id = text(&refresh_claims(oauth, &tokens), "gid").unwrap().to_owned();
        let answer = revoking(
            oauth,
            &with(vec![("token", tokens.text(kind))], "token_type_hint", hint),
        )
        .await;
        assert_eq!(
            (answer.status, &answer.body),
            (StatusCode::OK, &Value::Null),
            "{kind} {hint:?}"
        );
        assert!(answer.no_store);
        assert!(!is_live(oauth, &id).await, "{kind} {hint:?}");
        let again = token(oauth, &refreshing(tokens.text("refresh_token"))).await;
        refused(
            &again,
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "the grant was revoked",
        );
        assert!(oauth.check_bearer(tokens.text("access_token")).await.is_err());
    }

    /// A refresh token revokes its grant, whatever the hint says.
    #[tokio::test]
    async fn revoking_a_refresh_token_ends_its_grant() {
        let oauth = server();
        for hint in [None, Some("refresh_token"), Some("access_token"), Some("other")] {
            revoke_by(&oauth, "refresh_token", hint).await;
        }
    }

    /// An access token revokes its grant, whatever the hint says; one
    /// sealed for another resource revokes nothing.
    #[tokio::test]
    async fn revoking_an_access_token_ends_its_grant() {
        let oauth = server();
        for hint in [None, Some("access_token"), Some("refresh_token")] {
            revoke_by(&oauth, "access_token", hint).await;
        }
        let tokens = sign_in(&oauth).await;
        let id = text(&access_claims(&oauth, &tokens), "gid").unwrap().to_owned();
        let elsewhere = oauth
            .sealer
            .seal(
                Purpose::Access,
                claims(&[("gid", json!(id)), ("cid", json!(CLIENT))]),
                Some(ACCESS_TTL),
                Some("https://other.example/mcp"),
            )
            .unwrap();
        for hint in [None, Some("access_token")] {
            let answer = revoking(&oauth, &with(vec![("token", &elsewhere)], "token_type_hint", hint)).await;
            assert_eq!(answer.status, StatusCode::OK);
            assert!(is_live(&oauth, &id).await, "another resource's token: {hint:?}");
        }
    }

    /// A client that names itself revokes only its own tokens: another
    /// client's are left live (and the answer is the same 200).
    #[tokio::test]
    async fn a_client_naming_itself_revokes_only_its_own_tokens() {
        let oauth = server();
        for kind in ["refresh_token", "access_token"] {
            let tokens = sign_in(&oauth).await;
            let id = text(&access_claims(&oauth, &tokens), "gid").unwrap().to_owned();
            let theirs = revoking(&oauth, &[("token", tokens.text(kind)), ("client_id", OTHER_CLIENT)]).await;
            assert_eq!((theirs.status, &theirs.body), (StatusCode::OK, &Value::Null), "{kind}");
            assert!(is_live(&oauth, &id).await, "another client's {kind}");
            let own = revoking(&oauth, &[("token", tokens.text(kind)), ("client_id", CLIENT)]).await;
            assert_eq!(own.status, StatusCode::OK);
            assert!(!is_live(&oauth, &id).await, "its own {kind}");
        }
    }

    /// `/revoke` answers 200 to any token, valid or not, revoked before or
    /// not (RFC 7009 §2.2), and 400 only to no token at all.
    #[tokio::test]
    async fn revoke_answers_200_to_any_token_and_400_to_none() {
        let oauth = server();
        let tokens = sign_in(&oauth).await;
        let id = text(&access_claims(&oauth, &tokens), "gid").unwrap().to_owned();
        let code = code(&oauth);
        for garbage in ["not-a-token", "v4.local.AAAA", code.as_str()] {
            let answer = revoking(&oauth, &[("token", garbage)]).await;
            assert_eq!(
                (answer.status, &answer.body),
                (StatusCode::OK, &Value::Null),
                "{garbage}"
            );
            assert!(answer.no_store);
        }
        assert!(is_live(&oauth, &id).await, "nothing was revoked");
        for missing in [vec![], vec![("token", "")], vec![("token", "  ")]] {
            let answer = revoking(&oauth, &missing).await;
            refused(&answer, StatusCode::BAD_REQUEST, "invalid_request", "token is missing");
        }
        for _ in 0..2 {
            let answer = revoking(&oauth, &[("token", tokens.text("refresh_token"))]).await;
            assert_eq!(answer.status, StatusCode::OK);
        }
        assert!(!is_live(&oauth, &id).await);
    }

    /// The hint decides only which kind is tried first.
    #[test]
    fn the_hinted_kind_is_tried_first() {
        assert_eq!(lookup_order(Some("access_token")), [Purpose::Access, Purpose::Refresh]);
        for hint in [None, Some("refresh_token"), Some("other")] {
            assert_eq!(lookup_order(hint), [Purpose::Refresh, Purpose::Access], "{hint:?}");
        }
    }
}
