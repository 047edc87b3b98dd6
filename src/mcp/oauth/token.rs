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
    let expires = claims
        .get("exp")
        .and_then(Value::as_str)
        .and_then(|e| chrono::DateTime::parse_from_rfc3339(e).ok())
        .map_or(now() + oauth.settings.code_ttl.as_secs() as i64, |e| e.timestamp())
        + 1;
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
    let order = if form.get("token_type_hint").map(String::as_str) == Some("access_token") {
        [Purpose::Access, Purpose::Refresh]
    } else {
        [Purpose::Refresh, Purpose::Access]
    };
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
