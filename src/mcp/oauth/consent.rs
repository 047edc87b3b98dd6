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
    //! The page and the answer driven directly, on an `OAuth` built in this
    //! process; the key is checked with an httpmock TokPortal.

    use httpmock::Method::GET;
    use httpmock::MockServer;

    use super::*;
    use crate::mcp::oauth::OAuthSettings;
    use crate::mcp::store::Store;
    use crate::secret::Secret;

    const REDIRECT: &str = "https://client.example/cb";
    /// RFC 7636 appendix B's S256 challenge.
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    const KEY: &str = "sk_test_the_users_key";

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

    /// The page says where the code goes: a host, or an app's own scheme.
    #[test]
    fn the_destination_is_the_host_or_the_app_s_scheme() {
        assert_eq!(destination("https://client.example:8443/cb?x=1"), "client.example");
        assert_eq!(destination("com.example.app:/cb"), "the app com.example.app");
        assert_eq!(destination("not a url\u{202e}"), "not a url");
    }

    fn server_at(public_url: &str, upstream: Option<String>) -> Arc<OAuth> {
        let settings = OAuthSettings {
            public_url: Url::parse(public_url).unwrap(),
            secret: Secret::new("a test secret of at least thirty-two bytes"),
            access_ttl: super::super::ACCESS_TTL,
            refresh_ttl: super::super::REFRESH_TTL,
            code_ttl: super::super::CODE_TTL,
            redirect_schemes: Vec::new(),
            daily_credit_limit: Some(250),
        };
        let oauth = OAuth::new(settings, reqwest::Client::new(), upstream, Arc::new(Store::memory()));
        Arc::new(oauth.unwrap())
    }

    fn server() -> Arc<OAuth> {
        server_at("https://mcp.example/", None)
    }

    /// A client registered with `name`, redirecting to [`REDIRECT`] or to
    /// an app's own scheme.
    fn client(oauth: &OAuth, name: &str) -> String {
        let body = json!({"client_name": name, "redirect_uris": [REDIRECT, "com.example.app:/cb"]});
        let answer = clients::register(&oauth.sealer, &[], &body).unwrap();
        answer["client_id"].as_str().unwrap().to_owned()
    }

    /// A whole authorization request of `client_id` (no scope).
    fn request(client_id: &str) -> HashMap<String, String> {
        [
            ("client_id", client_id),
            ("redirect_uri", REDIRECT),
            ("response_type", "code"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
            ("state", "st-1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    /// `q` with `name` set to `value` (`None`: left out).
    fn with(mut q: HashMap<String, String>, name: &str, value: Option<&str>) -> HashMap<String, String> {
        match value {
            Some(v) => q.insert(name.to_owned(), v.to_owned()),
            None => q.remove(name),
        };
        q
    }

    /// A page, or a redirect.
    #[derive(Debug)]
    struct Seen {
        status: StatusCode,
        headers: HeaderMap,
        body: String,
    }

    impl Seen {
        fn header(&self, name: header::HeaderName) -> &str {
            self.headers.get(&name).map_or("", |v| v.to_str().unwrap())
        }

        /// The form's CSRF token.
        fn csrf(&self) -> &str {
            let after = self.body.split("name=\"csrf\" value=\"").nth(1).expect("a form");
            after.split('"').next().unwrap()
        }

        /// The consent cookie's value.
        fn nonce(&self) -> &str {
            let cookie = self.header(header::SET_COOKIE);
            let value = cookie.strip_prefix("tokportal_consent=").expect("the consent cookie");
            value.split(';').next().unwrap()
        }

        /// A page that shows `problem`, framed by nobody, uncached, and
        /// that sent nobody anywhere.
        #[track_caller]
        fn shows(&self, status: StatusCode, problem: &str) {
            assert_eq!(self.status, status, "{self:?}");
            assert!(self.body.contains(problem), "{problem:?} not in {}", self.body);
            assert!(self.headers.get(header::LOCATION).is_none(), "{self:?}");
            assert_eq!(self.header(header::X_FRAME_OPTIONS), "DENY");
            assert_eq!(self.header(header::X_CONTENT_TYPE_OPTIONS), "nosniff");
            assert_eq!(self.header(header::REFERRER_POLICY), "no-referrer");
            assert_eq!(self.header(header::CACHE_CONTROL), "no-store");
            let csp = self.header(header::CONTENT_SECURITY_POLICY);
            assert!(
                csp.starts_with("default-src 'none'; style-src 'unsafe-inline'; form-action 'self' ")
                    && csp.ends_with("; frame-ancestors 'none'; base-uri 'none'"),
                "{csp}"
            );
        }

        /// Where a redirect sends the browser: its URL and query.
        #[track_caller]
        fn sent_to(&self) -> (String, HashMap<String, String>) {
            assert_eq!(self.status, StatusCode::SEE_OTHER, "{self:?}");
            assert_eq!(self.header(header::CACHE_CONTROL), "no-store");
            assert_eq!(self.header(header::REFERRER_POLICY), "no-referrer");
            let to = Url::parse(self.header(header::LOCATION)).unwrap();
            let query = to.query_pairs().into_owned().collect();
            (to[..url::Position::AfterPath].to_owned(), query)
        }
    }

    async fn seen(response: Response) -> Seen {
        let (status, headers) = (response.status(), response.headers().clone());
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        let body = String::from_utf8(bytes.to_vec()).unwrap();
        Seen { status, headers, body }
    }

    /// GET `/authorize?q`.
    async fn get(oauth: &Arc<OAuth>, q: HashMap<String, String>) -> Seen {
        seen(page(State(Arc::clone(oauth)), Query(q)).await).await
    }

    /// POST `/authorize` with `form`, and `cookie` as the `Cookie` header.
    async fn post(oauth: &Arc<OAuth>, form: &[(&str, &str)], cookie: Option<&str>) -> Seen {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let mut headers = HeaderMap::new();
        if let Some(cookie) = cookie {
            headers.insert(header::COOKIE, HeaderValue::from_str(cookie).unwrap());
        }
        seen(decide(State(Arc::clone(oauth)), headers, body.into()).await).await
    }

    /// The page of a good request: the client named, where the code goes,
    /// both choices with full access checked, the server's limit, a form
    /// posting to this server under its path, a CSRF token bound to a
    /// `SameSite=Strict`, `HttpOnly`, `Secure` cookie, and the client's
    /// origin as the only other place a form may go.
    #[tokio::test]
    async fn a_good_request_draws_the_page_with_its_cookie_and_guards() {
        let oauth = server_at("https://mcp.example/base/", None);
        let page = get(&oauth, request(&client(&oauth, "Claude"))).await;
        page.shows(
            StatusCode::OK,
            "<h1>Connect <span id=\"client\">Claude</span> to TokPortal</h1>",
        );
        assert!(page.body.contains("you go back to <b>client.example</b>"));
        assert!(page.body.contains("<form method=\"post\" action=\"/base/authorize\">"));
        assert!(page.body.contains("name=\"access\" value=\"full\" checked>"));
        assert!(page.body.contains("name=\"access\" value=\"read_only\">"));
        assert!(page.body.contains("beyond this server's own, 250 credits a day"));
        assert!(!page.body.contains("id=\"problem\""));
        assert_eq!(
            page.header(header::CONTENT_SECURITY_POLICY),
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' https://client.example; \
             frame-ancestors 'none'; base-uri 'none'"
        );
        let nonce = page.nonce().to_owned();
        assert_eq!(nonce.len(), 32, "{nonce}");
        assert_eq!(
            page.header(header::SET_COOKIE),
            format!("tokportal_consent={nonce}; Path=/base/authorize; Max-Age=600; HttpOnly; SameSite=Strict; Secure")
        );
        let claims = oauth.sealer.open(Purpose::Consent, page.csrf(), None).unwrap();
        assert_eq!(text(&claims, "n"), Some(nonce.as_str()));
        assert_eq!(text(&claims, "ru"), Some(REDIRECT));
        assert_eq!(text(&claims, "st"), Some("st-1"));
        assert_eq!(text(&claims, "cc"), Some(CHALLENGE));
        assert_eq!(claims.get("full"), Some(&json!(true)));
        // On plain http (loopback), the cookie cannot be Secure.
        let local = server_at("http://127.0.0.1:8080", None);
        let page = get(&local, request(&client(&local, "Claude"))).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.header(header::SET_COOKIE).ends_with("SameSite=Strict"), "{page:?}");
        // An app's own scheme: the page names the app; the form may go there.
        let q = with(
            request(&client(&oauth, "Claude")),
            "redirect_uri",
            Some("com.example.app:/cb"),
        );
        let page = get(&oauth, q).await;
        page.shows(StatusCode::OK, "you go back to <b>the app com.example.app</b>");
        assert!(
            page.header(header::CONTENT_SECURITY_POLICY)
                .contains("form-action 'self' com.example.app:;")
        );
    }

    /// A client's name is cleaned of control and bidi characters and
    /// escaped wherever the page shows it.
    #[tokio::test]
    async fn a_hostile_client_name_is_cleaned_and_escaped() {
        let oauth = server();
        let name = "<script>alert(\"x\")</script> & 'co'\u{202e}\u{7}";
        let page = get(&oauth, request(&client(&oauth, name))).await;
        page.shows(
            StatusCode::OK,
            "<title>Connect &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;co&#39; to TokPortal</title>",
        );
        assert!(!page.body.contains("<script>"), "{}", page.body);
        assert!(!page.body.contains('\u{202e}') && !page.body.contains('\u{7}'));
    }

    /// Every fault of a request is said on this server's page, never sent
    /// to the redirect URI; and what it quotes is escaped.
    #[tokio::test]
    async fn a_bad_request_is_said_on_this_server_s_page() {
        let oauth = server();
        let good = request(&client(&oauth, "Claude"));
        for (name, value, says) in [
            ("client_id", None, "The request names no client (client_id)."),
            ("client_id", Some("  "), "The request names no client (client_id)."),
            (
                "client_id",
                Some("v4.local.forged"),
                "This client is not known: unknown client",
            ),
            ("redirect_uri", None, "The request names no redirect_uri."),
            (
                "redirect_uri",
                Some("https://client.example/<b>"),
                "https://client.example/&lt;b&gt; is not a redirect URI registered for Claude.",
            ),
            (
                "response_type",
                None,
                "(unsupported_response_type): response_type must be code.",
            ),
            ("response_type", Some("token"), "(unsupported_response_type)"),
            (
                "code_challenge",
                None,
                "(invalid_request): PKCE is required: code_challenge.",
            ),
            ("code_challenge_method", None, "code_challenge_method=S256"),
            ("code_challenge_method", Some("plain"), "code_challenge_method=S256"),
            (
                "code_challenge",
                Some(&CHALLENGE[1..]),
                "code_challenge is not an S256 challenge",
            ),
            (
                "code_challenge",
                Some(&format!("{CHALLENGE}A")),
                "code_challenge is not an S256 challenge",
            ),
            (
                "code_challenge",
                Some(&format!(".{}", &CHALLENGE[1..])),
                "code_challenge is not an S256 challenge",
            ),
            (
                "scope",
                Some("tokportal:admin"),
                "(invalid_scope): unknown scope tokportal:admin.",
            ),
            (
                "scope",
                Some("tokportal:full <i>"),
                "(invalid_scope): unknown scope &lt;i&gt;.",
            ),
            (
                "resource",
                Some("https://other.example/mcp"),
                "(invalid_target): this server issues tokens for its own /mcp only.",
            ),
        ] {
            let page = get(&oauth, with(good.clone(), name, value)).await;
            page.shows(StatusCode::BAD_REQUEST, says);
            assert!(
                page.header(header::CONTENT_SECURITY_POLICY)
                    .contains("form-action 'self' ;")
            );
            assert!(page.headers.get(header::SET_COOKIE).is_none(), "{name}: {page:?}");
            assert!(
                !page.body.contains("<b>") && !page.body.contains("<i>"),
                "{}",
                page.body
            );
        }
    }

    /// What a good request may hold: a challenge of every allowed
    /// character, either scope or both, its own resource; the scopes
    /// decide whether full access is offered.
    #[tokio::test]
    async fn the_scopes_asked_for_decide_whether_full_access_is_offered() {
        let oauth = server();
        let good = request(&client(&oauth, "Claude"));
        let underscored = format!("_-{}", &CHALLENGE[2..]);
        for (name, value, full) in [
            ("code_challenge", Some(underscored.as_str()), true),
            ("scope", None, true),
            ("scope", Some(SCOPE_FULL), true),
            ("scope", Some("tokportal:read_only  tokportal:full"), true),
            ("scope", Some(SCOPE_READ_ONLY), false),
            ("resource", Some("https://mcp.example/mcp"), true),
            ("resource", Some("https://mcp.example/mcp/"), true),
        ] {
            let page = get(&oauth, with(good.clone(), name, value)).await;
            assert_eq!(page.status, StatusCode::OK, "{name}={value:?}: {}", page.body);
            assert_eq!(page.body.contains("value=\"full\" checked"), full, "{name}={value:?}");
            assert_eq!(page.body.contains("value=\"full\""), full, "{name}={value:?}");
            assert_eq!(
                page.body.contains("value=\"read_only\" checked"),
                !full,
                "{name}={value:?}"
            );
            let claims = oauth.sealer.open(Purpose::Consent, page.csrf(), None).unwrap();
            assert_eq!(claims.get("full"), Some(&json!(full)));
        }
    }

    /// A page for `q` on `oauth`: its CSRF token and cookie.
    async fn consent(oauth: &Arc<OAuth>, q: HashMap<String, String>) -> (String, String) {
        let page = get(oauth, q).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        (page.csrf().to_owned(), format!("tokportal_consent={}", page.nonce()))
    }

    /// Deny sends the user back with `access_denied`, the state and the
    /// issuer; the cookie is found among others.
    #[tokio::test]
    async fn deny_sends_the_user_back_with_access_denied() {
        let oauth = server();
        let (csrf, cookie) = consent(&oauth, request(&client(&oauth, "Claude"))).await;
        let cookies = format!("theme=dark; {cookie}; other=1");
        let answer = post(&oauth, &[("csrf", &csrf), ("decision", "deny")], Some(&cookies)).await;
        let (to, query) = answer.sent_to();
        assert_eq!(to, REDIRECT);
        assert_eq!(
            query,
            [
                ("error", "access_denied"),
                ("error_description", "the user denied access"),
                ("state", "st-1"),
                ("iss", "https://mcp.example"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
        );
    }

    /// An answer counts only with a form this server drew and the cookie
    /// of the same page, in the same browser.
    #[tokio::test]
    async fn an_answer_without_its_page_s_seal_and_cookie_is_refused() {
        let oauth = server();
        let q = request(&client(&oauth, "Claude"));
        let (csrf, cookie) = consent(&oauth, q.clone()).await;
        let (_, other_cookie) = consent(&oauth, q).await;
        // The very claims of the page, sealed with another secret.
        let mut claims = oauth.sealer.open(Purpose::Consent, &csrf, None).unwrap();
        claims.retain(|k, _| !matches!(k.as_str(), "exp" | "iat" | "nbf" | "jti"));
        let other = super::super::seal::Sealer::new("another secret, also of thirty-two bytes", "https://mcp.example");
        let forged = other
            .unwrap()
            .seal(Purpose::Consent, claims, Some(PAGE_TTL), None)
            .unwrap();
        let expired = "This form has expired or did not come from this server";
        let elsewhere = "This form did not come from this browser&#39;s session";
        let renamed = cookie.replacen('=', "_x=", 1);
        for (csrf, cookie, says) in [
            (None, Some(cookie.as_str()), expired),
            (Some("v4.local.nope"), Some(cookie.as_str()), expired),
            (Some(forged.as_str()), Some(cookie.as_str()), expired),
            (Some(csrf.as_str()), None, elsewhere),
            (Some(csrf.as_str()), Some(other_cookie.as_str()), elsewhere),
            (Some(csrf.as_str()), Some(renamed.as_str()), elsewhere),
        ] {
            let mut form = vec![("decision", "deny")];
            form.extend(csrf.map(|c| ("csrf", c)));
            post(&oauth, &form, cookie).await.shows(StatusCode::BAD_REQUEST, says);
        }
        // A sealed form that lacks what it must hold.
        let mut claims = Map::new();
        claims.insert("n".into(), json!("n1"));
        let incomplete = oauth
            .sealer
            .seal(Purpose::Consent, claims, Some(PAGE_TTL), None)
            .unwrap();
        post(&oauth, &[("csrf", &incomplete)], Some("tokportal_consent=n1"))
            .await
            .shows(StatusCode::BAD_REQUEST, "This form is incomplete");
    }

    /// A TokPortal whose `/me` accepts [`KEY`] only, refusing the keys
    /// `sk_401`, `sk_403` and `sk_400` with those statuses.
    async fn tokportal() -> MockServer {
        let server = MockServer::start_async().await;
        server
            .mock_async(|when, then| {
                when.method(GET).path("/me").header("x-api-key", KEY);
                then.status(200).json_body(json!({"data": {
                    "id": "6f1c1e9e-7b7a-4d7e-9d8e-2f8f1c1e9e7b",
                    "email": "user@example.com",
                    "credits": {"balance": 10},
                    "api_key": {"id": "7f1c1e9e-7b7a-4d7e-9d8e-2f8f1c1e9e7b", "name": "mine"},
                }}));
            })
            .await;
        for status in [401, 403, 400] {
            server
                .mock_async(|when, then| {
                    when.method(GET).path("/me").header("x-api-key", format!("sk_{status}"));
                    then.status(status)
                        .json_body(json!({"error": {"code": "REFUSED", "message": format!("Refused {status}.")}}));
                })
                .await;
        }
        server
    }

    /// The code's claims, from where the browser is sent (with the state
    /// and the issuer).
    #[track_caller]
    fn code_of(oauth: &OAuth, answer: &Seen) -> Map<String, Value> {
        let (to, query) = answer.sent_to();
        assert_eq!(to, REDIRECT);
        assert_eq!(query["state"], "st-1");
        assert_eq!(query["iss"], "https://mcp.example");
        oauth.sealer.open(Purpose::Code, &query["code"], None).unwrap()
    }

    /// Allow, with a key TokPortal accepts: a code for this client, its
    /// redirect URI and challenge, the access and limit chosen, and the
    /// key (trimmed); a limit is a whole number up to a billion, or none.
    #[tokio::test]
    async fn allow_with_a_good_key_issues_a_code_of_the_choices() {
        let tokportal = tokportal().await;
        let oauth = server_at("https://mcp.example/", Some(tokportal.base_url()));
        let client_id = client(&oauth, "Claude");
        for (access, limit, scope, lim) in [
            ("full", "500", SCOPE_FULL, Some(500)),
            ("read_only", "", SCOPE_READ_ONLY, None),
            ("full", "  ", SCOPE_FULL, None),
            ("full", "1000000000", SCOPE_FULL, Some(1_000_000_000)),
        ] {
            let (csrf, cookie) = consent(&oauth, request(&client_id)).await;
            let form = [
                ("csrf", csrf.as_str()),
                ("decision", "allow"),
                ("access", access),
                ("daily_credit_limit", limit),
                ("api_key", &format!(" {KEY} ")),
            ];
            let code = code_of(&oauth, &post(&oauth, &form, Some(&cookie)).await);
            assert_eq!(text(&code, "cid"), Some(client_id.as_str()));
            assert_eq!(text(&code, "ru"), Some(REDIRECT));
            assert_eq!(text(&code, "cc"), Some(CHALLENGE));
            assert_eq!(text(&code, "cn"), Some("Claude"));
            assert_eq!(text(&code, "k"), Some(KEY));
            assert_eq!(text(&code, "sc"), Some(scope), "{access} {limit:?}");
            assert_eq!(code.get("lim").and_then(Value::as_u64), lim, "{limit:?}");
        }
    }

    /// Each answer the page cannot take is said on a new page of the same
    /// request (with a new cookie), before TokPortal is asked anything.
    #[tokio::test]
    async fn a_wrong_choice_limit_or_missing_key_redraws_the_page() {
        let tokportal = MockServer::start_async().await;
        let asked = tokportal
            .mock_async(|when, then| {
                when.any_request();
                then.status(500);
            })
            .await;
        let oauth = server_at("https://mcp.example/", Some(tokportal.base_url()));
        let client_id = client(&oauth, "Claude");
        let read_only = with(request(&client_id), "scope", Some(SCOPE_READ_ONLY));
        let whole = "The daily credit limit is a whole number of credits (or empty, for none).";
        for (q, access, limit, key, says) in [
            (
                &read_only,
                Some("full"),
                "",
                KEY,
                "This client asked for read-only access only.",
            ),
            (&read_only, None, "", KEY, "Choose what the client may do."),
            (&read_only, Some("admin"), "", KEY, "Choose what the client may do."),
            (&read_only, Some("read_only"), "1000000001", KEY, whole),
            (&read_only, Some("read_only"), "-1", KEY, whole),
            (&read_only, Some("read_only"), "ten", KEY, whole),
            (&read_only, Some("read_only"), "", "  ", "Enter your TokPortal API key."),
        ] {
            let (csrf, cookie) = consent(&oauth, q.clone()).await;
            let mut form = vec![
                ("csrf", csrf.as_str()),
                ("decision", "allow"),
                ("daily_credit_limit", limit),
                ("api_key", key),
            ];
            form.extend(access.map(|a| ("access", a)));
            let page = post(&oauth, &form, Some(&cookie)).await;
            page.shows(
                StatusCode::BAD_REQUEST,
                &format!("role=\"alert\" id=\"problem\">{}</p>", escape(says)),
            );
            assert!(page.body.contains("aria-describedby=\"problem\""));
            assert!(!page.body.contains("value=\"full\""), "still read-only");
            assert_ne!(format!("tokportal_consent={}", page.nonce()), cookie);
        }
        let (csrf, cookie) = consent(&oauth, read_only).await;
        let page = post(&oauth, &[("csrf", &csrf), ("access", "read_only")], Some(&cookie)).await;
        page.shows(StatusCode::BAD_REQUEST, "Enter your TokPortal API key.");
        asked.assert_calls_async(0).await;
    }

    /// A key TokPortal refuses is said on the page: 401 when TokPortal
    /// says it is not a key (401) or not allowed (403), else 400; no code.
    #[tokio::test]
    async fn a_key_tokportal_refuses_is_said_on_the_page() {
        let tokportal = tokportal().await;
        let oauth = server_at("https://mcp.example/", Some(tokportal.base_url()));
        let client_id = client(&oauth, "Claude");
        for (key, status) in [
            ("sk_401", StatusCode::UNAUTHORIZED),
            ("sk_403", StatusCode::UNAUTHORIZED),
            ("sk_400", StatusCode::BAD_REQUEST),
        ] {
            let (csrf, cookie) = consent(&oauth, request(&client_id)).await;
            let form = [("csrf", csrf.as_str()), ("access", "full"), ("api_key", key)];
            let page = post(&oauth, &form, Some(&cookie)).await;
            page.shows(status, "TokPortal refused this key: ");
            assert!(page.body.contains("Refused"), "{key}: {}", page.body);
        }
    }

    #[tokio::test]
    async fn an_error_page_escapes_its_message() {
        let page = seen(error_page("<img src=x onerror=alert(1)>")).await;
        page.shows(
            StatusCode::BAD_REQUEST,
            "<p role=\"alert\">&lt;img src=x onerror=alert(1)&gt;</p>",
        );
    }
}
