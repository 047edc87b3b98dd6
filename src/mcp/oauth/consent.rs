//! `/authorize`: the consent page, served by the binary, and its answer.
//!
//! The page names the client that asks and what it asks for, and is one
//! HTML form: a password input `api_key` (the user's TokPortal key), a
//! choice `access` (`full` or `read_only`) and a CSRF token. The token is
//! the authorization request itself, sealed with a nonce that is also set
//! as a `SameSite=Strict` cookie: the answer is bound to the page this
//! server drew, in this browser, within 10 minutes, and the request's
//! parameters cannot be changed on the way.
//!
//! The key is checked with `getCurrentUser` before anything is issued; a bad
//! key is refused on the page with TokPortal's message. Then the browser is
//! sent to the client with `code`, `state` and `iss` (RFC 9207). The page
//! uses no external asset or script, works from the keyboard, and refuses
//! to be framed (`frame-ancestors 'none'`, `X-Frame-Options: DENY`).
//!
//! Against an attacker who registers a client (anyone may): every value a
//! client gave is escaped, and its name cleaned of control, format and
//! bidi characters (`clients::clean_name`); the client is shown as
//! unverified, with the host the code will go to; and an error in the
//! request is shown on this server's page, never sent to the redirect URI
//! without the user's action (no open redirect, RFC 9700 §4.11.2). Only
//! the user's Deny, or Allow, sends the browser back.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde_json::{Map, Value, json};
use url::Url;

use super::clients::{self, Client};
use super::seal::{Purpose, text};
use super::{Access, OAuth, SCOPE_FULL, SCOPE_READ_ONLY, no_store};
use crate::Error;

/// How long a consent page may be answered.
const PAGE_TTL: Duration = Duration::from_secs(600);
/// The consent cookie's name.
const COOKIE: &str = "tokportal_consent";
/// The largest daily credit limit the page takes.
const MAX_DAILY_LIMIT: u64 = 1_000_000_000;

/// An authorization request, checked.
struct Asked {
    client: Client,
    redirect_uri: String,
    state: Option<String>,
    challenge: String,
    /// The scopes the client asked for (both when it named none).
    full_allowed: bool,
    resource: Option<String>,
}

/// GET `/authorize`: the page, or an error on this server's page. An
/// error is never sent to the redirect URI without the user's action: any
/// stranger can register a client, so a redirect URI is never trusted
/// enough to be sent to unasked (RFC 9700 §4.11.2, open redirects).
pub(crate) async fn page(State(oauth): State<Arc<OAuth>>, Query(q): Query<HashMap<String, String>>) -> Response {
    match ask(&oauth, &q).await {
        Ok(asked) => draw(&oauth, &asked, None, StatusCode::OK),
        Err(message) => error_page(&message),
    }
}

async fn ask(oauth: &OAuth, q: &HashMap<String, String>) -> Result<Asked, String> {
    let get = |k: &str| q.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    let client_id = get("client_id").ok_or("The request names no client (client_id).")?;
    let client = clients::resolve(
        &oauth.sealer,
        &oauth.documents,
        oauth.is_local(),
        &oauth.settings.redirect_schemes,
        client_id,
    )
    .await
    .map_err(|e| format!("This client is not known: {}", e.description))?;
    let redirect_uri = get("redirect_uri").ok_or("The request names no redirect_uri.")?;
    if !client.redirects_to(redirect_uri) {
        return Err(format!(
            "{} is not a redirect URI registered for {}.",
            clients::shown(redirect_uri),
            client.name
        ));
    }
    let state = get("state").map(str::to_owned);
    let back =
        |error: &str, description: &str| format!("The app's request cannot be answered ({error}): {description}.");
    if get("response_type") != Some("code") {
        return Err(back("unsupported_response_type", "response_type must be code"));
    }
    let challenge = get("code_challenge").ok_or_else(|| back("invalid_request", "PKCE is required: code_challenge"))?;
    if get("code_challenge_method") != Some("S256") {
        return Err(back(
            "invalid_request",
            "PKCE S256 is required: code_challenge_method=S256",
        ));
    }
    if challenge.len() != 43
        || !challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(back("invalid_request", "code_challenge is not an S256 challenge"));
    }
    let scopes: Vec<&str> = get("scope")
        .map(|s| s.split(' ').filter(|s| !s.is_empty()).collect())
        .unwrap_or_default();
    if let Some(other) = scopes.iter().find(|s| **s != SCOPE_FULL && **s != SCOPE_READ_ONLY) {
        return Err(back("invalid_scope", &format!("unknown scope {other}")));
    }
    let resource = get("resource").map(str::to_owned);
    if let Some(r) = &resource
        && r.trim_end_matches('/') != oauth.resource()
    {
        return Err(back(
            "invalid_target",
            "this server issues tokens for its own /mcp only",
        ));
    }
    Ok(Asked {
        client,
        redirect_uri: redirect_uri.to_owned(),
        state,
        challenge: challenge.to_owned(),
        full_allowed: scopes.is_empty() || scopes.contains(&SCOPE_FULL),
        resource,
    })
}

/// The page for `asked`, with `problem` above the form.
fn draw(oauth: &OAuth, asked: &Asked, problem: Option<&str>, status: StatusCode) -> Response {
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    let mut claims = Map::new();
    claims.insert("cid".into(), json!(asked.client.id));
    claims.insert("ru".into(), json!(asked.redirect_uri));
    claims.insert("st".into(), json!(asked.state));
    claims.insert("cc".into(), json!(asked.challenge));
    claims.insert("full".into(), json!(asked.full_allowed));
    claims.insert("res".into(), json!(asked.resource));
    claims.insert("cn".into(), json!(asked.client.name));
    claims.insert("n".into(), json!(nonce));
    let Ok(csrf) = oauth.sealer.seal(Purpose::Consent, claims, Some(PAGE_TTL), None) else {
        return error_page("The consent page could not be made.");
    };
    let name = escape(&clients::clean_name(&asked.client.name));
    let host = escape(&destination(&asked.redirect_uri));
    let problem = problem
        .map(|p| format!("<p class=\"problem\" role=\"alert\" id=\"problem\">{}</p>", escape(p)))
        .unwrap_or_default();
    let described = if problem.is_empty() {
        ""
    } else {
        " aria-describedby=\"problem\""
    };
    let full = if asked.full_allowed {
        "<label><input type=\"radio\" name=\"access\" value=\"full\" checked> <b>Full access</b>: read, create and change; \
         calls that spend credits are charged to your account</label>"
    } else {
        ""
    };
    let read_checked = if asked.full_allowed { "" } else { " checked" };
    let known = if asked.client.by_document {
        format!(
            "<p class=\"unverified\"><b>Unverified client.</b> It describes itself at <code>{}</code>; \
             TokPortal has not checked who runs it. The code goes to <b>{host}</b>.</p>",
            escape(&clients::shown(&asked.client.id))
        )
    } else {
        format!(
            "<p class=\"unverified\"><b>Unverified client.</b> It registered itself with this server, \
             and chose its own name: TokPortal has not checked who runs it. The code goes to <b>{host}</b>. \
             Allow it only if you started this from an app you trust.</p>"
        )
    };
    let action = format!("{}/authorize", escape(&oauth.path_prefix()));
    let server_limit = oauth
        .settings
        .daily_credit_limit
        .map(|l| format!(" beyond this server's own, {l} credits a day"))
        .unwrap_or_default();
    let body = format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Connect {name} to TokPortal</title>
<style>
body{{font:16px/1.5 system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;color:#1d1d1f}}
h1{{font-size:1.4rem}} fieldset{{border:1px solid #ccc;border-radius:6px;margin:1rem 0}}
label{{display:block;margin:.5rem 0}} input[type=password]{{width:100%;padding:.5rem;font:inherit;box-sizing:border-box}}
button{{font:inherit;padding:.5rem 1.2rem;margin-right:.5rem}} .problem{{color:#a00;font-weight:600}}
small{{color:#555}} :focus-visible{{outline:3px solid #1a73e8;outline-offset:2px}}
.unverified{{border-left:4px solid #b26a00;padding:.25rem .75rem;background:#fff8e6}}
</style></head>
<body><main>
<h1>Connect <span id="client">{name}</span> to TokPortal</h1>
<p><b>{name}</b> asks to use the TokPortal API on your behalf. After you allow it, you go back to <b>{host}</b>.</p>
{known}{problem}
<form method="post" action="{action}">
<input type="hidden" name="csrf" value="{csrf}">
<label for="api_key">Your TokPortal API key</label>
<input type="password" id="api_key" name="api_key" autocomplete="off" required autofocus{described}>
<small>Your API key is in your TokPortal dashboard (app.tokportal.com), where API keys are made. It is checked with TokPortal now, then kept only inside the tokens this server gives {name}, never shown to it.</small>
<fieldset><legend>What {name} may do</legend>
{full}
<label><input type="radio" name="access" value="read_only"{read_checked}> <b>Read only</b>: look, never change or spend</label>
</fieldset>
<label for="daily_credit_limit">Daily credit limit</label>
<input type="number" id="daily_credit_limit" name="daily_credit_limit" min="0" max="{MAX_DAILY_LIMIT}" step="1" inputmode="numeric" placeholder="no limit">
<small>The most credits {name} may spend in one day (UTC); a call over it is refused before it is sent. Empty: no limit{server_limit}.</small>
<button type="submit" name="decision" value="allow">Allow</button>
<button type="submit" name="decision" value="deny" formnovalidate>Deny</button>
</form>
</main></body></html>"#
    );
    let mut response = (status, Html(body)).into_response();
    let secure = if oauth.secure_cookies() { "; Secure" } else { "" };
    if let Ok(cookie) = HeaderValue::from_str(&format!(
        "{COOKIE}={nonce}; Path={}/authorize; Max-Age={}; HttpOnly; SameSite=Strict{secure}",
        oauth.path_prefix(),
        PAGE_TTL.as_secs()
    )) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    guard_page(&mut response, Some(&asked.redirect_uri));
    response
}

/// POST `/authorize`: the user's answer.
pub(crate) async fn decide(State(oauth): State<Arc<OAuth>>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let Some(claims) = form
        .get("csrf")
        .and_then(|csrf| oauth.sealer.open(Purpose::Consent, csrf, None).ok())
    else {
        return error_page("This form has expired or did not come from this server: start again from your app.");
    };
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_owned());
    if cookie.as_deref() != text(&claims, "n") {
        return error_page("This form did not come from this browser's session: start again from your app.");
    }
    let (Some(client_id), Some(redirect_uri), Some(challenge)) =
        (text(&claims, "cid"), text(&claims, "ru"), text(&claims, "cc"))
    else {
        return error_page("This form is incomplete: start again from your app.");
    };
    let state = text(&claims, "st");
    if form.get("decision").map(String::as_str) == Some("deny") {
        return see_other(&redirect_with(
            redirect_uri,
            &[
                ("error", "access_denied"),
                ("error_description", "the user denied access"),
            ],
            state,
            &oauth.issuer(),
        ));
    }
    let full_allowed = claims.get("full").and_then(Value::as_bool).unwrap_or(false);
    let asked = Asked {
        client: Client {
            id: client_id.to_owned(),
            name: text(&claims, "cn").unwrap_or("this client").to_owned(),
            redirect_uris: vec![redirect_uri.to_owned()],
            by_document: false,
        },
        redirect_uri: redirect_uri.to_owned(),
        state: state.map(str::to_owned),
        challenge: challenge.to_owned(),
        full_allowed,
        resource: text(&claims, "res").map(str::to_owned),
    };
    let access = match form.get("access").map(String::as_str) {
        Some("full") if full_allowed => Access::Full,
        Some("read_only") => Access::ReadOnly,
        Some("full") => {
            return draw(
                &oauth,
                &asked,
                Some("This client asked for read-only access only."),
                StatusCode::BAD_REQUEST,
            );
        }
        _ => {
            return draw(
                &oauth,
                &asked,
                Some("Choose what the client may do."),
                StatusCode::BAD_REQUEST,
            );
        }
    };
    let limit = match form
        .get("daily_credit_limit")
        .map(|l| l.trim())
        .filter(|l| !l.is_empty())
    {
        None => None,
        Some(text) => match text.parse::<u64>() {
            Ok(n) if n <= MAX_DAILY_LIMIT => Some(n),
            _ => {
                return draw(
                    &oauth,
                    &asked,
                    Some("The daily credit limit is a whole number of credits (or empty, for none)."),
                    StatusCode::BAD_REQUEST,
                );
            }
        },
    };
    let key = form.get("api_key").map(|k| k.trim()).unwrap_or_default();
    if key.is_empty() {
        return draw(
            &oauth,
            &asked,
            Some("Enter your TokPortal API key."),
            StatusCode::BAD_REQUEST,
        );
    }
    // The key is checked with TokPortal before anything is issued.
    let mut builder = crate::ClientBuilder::new()
        .http_client(oauth.upstream.clone())
        .client_identifier(super::super::IDENTIFIER)
        .api_key(key);
    if let Some(url) = &oauth.base_url {
        builder = builder.base_url(url.as_str());
    }
    let checked = match builder.build() {
        Ok(client) => {
            client
                .request_operation("getCurrentUser", crate::OperationArgs::new())
                .await
        }
        Err(e) => Err(e),
    };
    match checked {
        Ok(_) => {}
        Err(Error::Api(api)) => {
            let status = if api.status == 401 || api.status == 403 {
                StatusCode::UNAUTHORIZED
            } else {
                StatusCode::BAD_REQUEST
            };
            let message = format!("TokPortal refused this key: {}", api.message);
            return draw(&oauth, &asked, Some(&message), status);
        }
        Err(e) => {
            tracing::warn!(error = %crate::error::one_line(&e), "the consent page could not check a key");
            return draw(
                &oauth,
                &asked,
                Some("TokPortal could not be reached to check the key; try again."),
                StatusCode::BAD_GATEWAY,
            );
        }
    }
    let mut code = Map::new();
    code.insert("cid".into(), json!(client_id));
    code.insert("ru".into(), json!(redirect_uri));
    code.insert("cc".into(), json!(challenge));
    code.insert("sc".into(), json!(access.scope()));
    code.insert("cn".into(), json!(asked.client.name));
    if let Some(limit) = limit {
        code.insert("lim".into(), json!(limit));
    }
    code.insert("k".into(), json!(key));
    let Ok(code) = oauth
        .sealer
        .seal(Purpose::Code, code, Some(oauth.settings.code_ttl), None)
    else {
        return error_page("The code could not be made.");
    };
    tracing::info!(client = %asked.client.name, scope = access.scope(), "a code was issued");
    see_other(&redirect_with(redirect_uri, &[("code", &code)], state, &oauth.issuer()))
}

/// Where a redirect URI sends the browser, for a person: its host, or for
/// an app's own scheme, the scheme (`com.example.app`).
fn destination(redirect_uri: &str) -> String {
    match Url::parse(redirect_uri) {
        Ok(url) => match url.host_str() {
            Some(host) => host.to_owned(),
            None => format!("the app {}", url.scheme()),
        },
        Err(_) => clients::shown(redirect_uri),
    }
}

/// `redirect_uri` with `pairs`, `state` and `iss` added to its query.
fn redirect_with(redirect_uri: &str, pairs: &[(&str, &str)], state: Option<&str>, issuer: &str) -> String {
    let Ok(mut url) = Url::parse(redirect_uri) else {
        return redirect_uri.to_owned();
    };
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in pairs {
            q.append_pair(k, v);
        }
        if let Some(state) = state {
            q.append_pair("state", state);
        }
        q.append_pair("iss", issuer);
    }
    url.to_string()
}

fn see_other(to: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(location) = HeaderValue::from_str(to) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    no_store(&mut response);
    response
        .headers_mut()
        .insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

fn error_page(message: &str) -> Response {
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>TokPortal: cannot connect</title></head>\
         <body style=\"font:16px/1.5 system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem\">\
         <main><h1>This connection cannot go on</h1><p role=\"alert\">{}</p></main></body></html>",
        escape(message)
    );
    let mut response = (StatusCode::BAD_REQUEST, Html(body)).into_response();
    guard_page(&mut response, None);
    response
}

/// Headers every page gets: no framing, no outside content, no caching,
/// no referrer; the form may post here and be redirected to the client.
fn guard_page(response: &mut Response, redirect_uri: Option<&str>) {
    let target = redirect_uri
        .and_then(|r| Url::parse(r).ok())
        .map(|u| match u.origin() {
            url::Origin::Tuple(..) => u.origin().ascii_serialization(),
            // An app's own scheme (`cursor://...`): the scheme is the source.
            url::Origin::Opaque(_) => format!("{}:", u.scheme()),
        })
        .unwrap_or_default();
    let csp = format!(
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' {target}; frame-ancestors 'none'; base-uri 'none'"
    );
    let headers = response.headers_mut();
    if let Ok(csp) = HeaderValue::from_str(csp.trim()) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// HTML text and attribute escaping.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_escaped_and_redirects_carry_state_and_iss() {
        assert_eq!(escape("<b>\"x\" & 'y'"), "&lt;b&gt;&quot;x&quot; &amp; &#39;y&#39;");
        let to = redirect_with(
            "https://c.example/cb?a=1",
            &[("code", "C")],
            Some("s t"),
            "https://mcp.example",
        );
        assert_eq!(
            to,
            "https://c.example/cb?a=1&code=C&state=s+t&iss=https%3A%2F%2Fmcp.example"
        );
    }
}
