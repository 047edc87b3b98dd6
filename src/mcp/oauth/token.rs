//! `/token`: codes for tokens, refresh tokens for new ones.
//!
//! - `authorization_code`: the code opened (sealed, unexpired, 60 s), its
//!   client, redirect URI and PKCE S256 verifier checked, and used once on
//!   this replica (see [`super::used`]).
//! - `refresh_token`: rotated: each use gives a new refresh token and the
//!   old one is used up here.
//! - Access tokens last an hour (`--oauth-access-ttl`), carry the key, the
//!   scope, the client and the audience (this server's `/mcp`), and are
//!   sealed: the key is never readable in them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::seal::{Purpose, text};
use super::used::Redeemed;
use super::{OAuth, OAuthError, no_store};

/// POST `/token` (form-encoded, RFC 6749 §4.1.3 and §6).
pub(crate) async fn exchange(State(oauth): State<Arc<OAuth>>, body: axum::body::Bytes) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let answer = match form.get("grant_type").map(String::as_str) {
        Some("authorization_code") => by_code(&oauth, &form),
        Some("refresh_token") => by_refresh(&oauth, &form),
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

fn by_code(oauth: &OAuth, form: &HashMap<String, String>) -> Result<Value, OAuthError> {
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
    match oauth
        .used
        .redeem(id, Instant::now() + oauth.settings.code_ttl + Duration::from_secs(1))
    {
        Redeemed::First => {}
        Redeemed::Again => return Err(grant("the code has been used already")),
        Redeemed::Full => return Err(OAuthError::server("too many codes in flight; try again in a minute")),
    }
    let (key, scope, client) = (
        text(&claims, "k").unwrap_or_default(),
        text(&claims, "sc").unwrap_or(super::SCOPE_READ_ONLY),
        text(&claims, "cid").unwrap_or_default(),
    );
    tokens(oauth, key, scope, client, &uuid::Uuid::new_v4().to_string())
}

fn by_refresh(oauth: &OAuth, form: &HashMap<String, String>) -> Result<Value, OAuthError> {
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
    let id = text(&claims, "jti").ok_or_else(|| grant("the refresh token is not valid"))?;
    match oauth.used.redeem(id, Instant::now() + oauth.settings.refresh_ttl) {
        Redeemed::First => {}
        Redeemed::Again => return Err(grant("the refresh token has been used already (they rotate)")),
        Redeemed::Full => {
            return Err(OAuthError::server(
                "too many refreshes in flight; try again in a minute",
            ));
        }
    }
    // A narrower scope may be asked for, never a wider one.
    let granted = text(&claims, "sc").unwrap_or(super::SCOPE_READ_ONLY);
    let scope = match form.get("scope").map(|s| s.trim()).filter(|s| !s.is_empty()) {
        None => granted,
        Some(s) if s == granted || s == super::SCOPE_READ_ONLY => s,
        Some(_) => return Err(OAuthError::new("invalid_scope", "a refresh cannot widen the scope")),
    };
    tokens(
        oauth,
        text(&claims, "k").unwrap_or_default(),
        scope,
        text(&claims, "cid").unwrap_or_default(),
        text(&claims, "fam").unwrap_or_default(),
    )
}

/// A new access token and a new refresh token (of the same family).
fn tokens(oauth: &OAuth, key: &str, scope: &str, client: &str, family: &str) -> Result<Value, OAuthError> {
    let mut access = Map::new();
    access.insert("k".into(), json!(key));
    access.insert("sc".into(), json!(scope));
    access.insert("cid".into(), json!(client));
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
    refresh.insert("cid".into(), json!(client));
    refresh.insert("fam".into(), json!(family));
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
