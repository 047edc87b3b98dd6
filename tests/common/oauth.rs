//! OAuth helpers shared by the connector's tests: a replica of
//! `tokportal-mcp --oauth`, the `oauth2` crate's HTTP client over reqwest,
//! discovery, registration and the consent page answered over HTTP.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use oauth2::basic::BasicClient;
use oauth2::{AuthUrl, AuthorizationCode, ClientId, CsrfToken, PkceCodeChallenge, RedirectUrl, Scope, TokenUrl};
use serde_json::{Value, json};
use tokportal::sandbox::Sandbox;

pub const PUBLIC: &str = "http://mcp.tokportal.localhost";
pub const SECRET: &str = "a shared sealing secret, 32 bytes or more, for tests";
pub const KEY: &str = "sk_test_oauth_user";
pub const REDIRECT: &str = "http://127.0.0.1:33418/callback";

/// One replica of the server, with `--oauth` and the shared secret,
/// logging at trace.
pub struct Replica {
    server: super::mcp_http::McpHttp,
    pub origin: String,
    pub log: Arc<Mutex<Vec<String>>>,
}

impl Replica {
    pub fn start(sandbox: &Sandbox, public: &str, extra: &[&str]) -> Self {
        let mut args = vec!["--oauth", "--public-url", public];
        args.extend_from_slice(extra);
        let server = super::mcp_http::McpHttp::start(
            sandbox.url(),
            &args,
            &[("TOKPORTAL_MCP_OAUTH_SECRET", SECRET), ("RUST_LOG", "trace")],
        );
        Replica {
            origin: server.origin.clone(),
            log: Arc::clone(&server.log),
            server,
        }
    }

    /// `url` on the public address, sent to this replica instead.
    pub fn here(&self, url: &str) -> String {
        url.replacen(PUBLIC, &self.origin, 1)
    }

    /// Its `/mcp` URL.
    pub fn mcp(&self) -> String {
        self.server.mcp()
    }
}

/// A request's answer as JSON, unwrapped (a test's request always answers).
pub trait JsonAnswer {
    fn json_answer(self) -> impl std::future::Future<Output = Value>;
}

impl JsonAnswer for reqwest::RequestBuilder {
    async fn json_answer(self) -> Value {
        self.send().await.unwrap().json().await.unwrap()
    }
}

/// oauth2's HTTP client: reqwest, with the public address sent to `origin`.
pub async fn send(request: oauth2::HttpRequest, origin: String) -> Result<oauth2::HttpResponse, std::io::Error> {
    let io = |e: reqwest::Error| std::io::Error::other(e.to_string());
    let (parts, body) = request.into_parts();
    let url = parts.uri.to_string().replacen(PUBLIC, &origin, 1);
    let response = reqwest::Client::new()
        .request(parts.method, url)
        .headers(parts.headers)
        .body(body)
        .send()
        .await
        .map_err(io)?;
    let mut answer = http::Response::builder().status(response.status());
    for (name, value) in response.headers() {
        answer = answer.header(name, value);
    }
    let bytes = response.bytes().await.map_err(io)?;
    answer.body(bytes.to_vec()).map_err(std::io::Error::other)
}

pub fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Discovery as a client does it: the 401's `resource_metadata`, then the
/// authorization server's metadata.
pub async fn discover(replica: &Replica) -> Value {
    let http = no_redirects();
    let unauthorized = http.post(format!("{}/mcp", replica.origin)).send().await.unwrap();
    assert_eq!(unauthorized.status(), 401);
    let challenge = unauthorized.headers()["www-authenticate"].to_str().unwrap().to_owned();
    let metadata_url = challenge
        .split("resource_metadata=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("resource_metadata in WWW-Authenticate");
    assert_eq!(
        metadata_url,
        format!("{PUBLIC}/.well-known/oauth-protected-resource/mcp")
    );
    assert!(
        challenge.contains("scope=\"tokportal:full tokportal:read_only\""),
        "{challenge}"
    );
    let resource: Value = http.get(replica.here(metadata_url)).json_answer().await;
    assert_eq!(resource["resource"], format!("{PUBLIC}/mcp"));
    let bare: Value = http
        .get(format!("{}/.well-known/oauth-protected-resource", replica.origin))
        .json_answer()
        .await;
    assert_eq!(bare, resource, "the path-suffixed and the bare form agree");
    let issuer = resource["authorization_servers"][0].as_str().unwrap();
    let server: Value = http
        .get(replica.here(&format!("{issuer}/.well-known/oauth-authorization-server")))
        .json_answer()
        .await;
    assert_eq!(server["issuer"], PUBLIC);
    assert_eq!(server["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(
        server["grant_types_supported"],
        json!(["authorization_code", "refresh_token"])
    );
    server
}

pub async fn register(replica: &Replica, server: &Value, redirect: &str) -> String {
    let registered: Value = no_redirects()
        .post(replica.here(server["registration_endpoint"].as_str().unwrap()))
        .json(&json!({"client_name": "A connector <test>", "redirect_uris": [redirect]}))
        .json_answer()
        .await;
    registered["client_id"].as_str().expect("a client_id").to_owned()
}

pub fn client(
    server: &Value,
    client_id: &str,
    redirect: &str,
) -> oauth2::Client<
    oauth2::basic::BasicErrorResponse,
    oauth2::basic::BasicTokenResponse,
    oauth2::basic::BasicTokenIntrospectionResponse,
    oauth2::StandardRevocableToken,
    oauth2::basic::BasicRevocationErrorResponse,
    oauth2::EndpointSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointSet,
> {
    BasicClient::new(ClientId::new(client_id.to_owned()))
        .set_auth_uri(AuthUrl::new(server["authorization_endpoint"].as_str().unwrap().to_owned()).unwrap())
        .set_token_uri(TokenUrl::new(server["token_endpoint"].as_str().unwrap().to_owned()).unwrap())
        .set_redirect_uri(RedirectUrl::new(redirect.to_owned()).unwrap())
}

/// The consent page, answered as a person would with `key` and `access`:
/// the redirect's query (`code`, `state`, `iss`), or the page when refused.
pub async fn consent(
    replica: &Replica,
    authorize_url: &str,
    key: &str,
    access: &str,
) -> Result<HashMap<String, String>, (u16, String)> {
    let http = no_redirects();
    let page = http.get(replica.here(authorize_url)).send().await.unwrap();
    let status = page.status().as_u16();
    let cookie = page
        .headers()
        .get("set-cookie")
        .map(|c| c.to_str().unwrap().split(';').next().unwrap().to_owned());
    let headers = page.headers().clone();
    let html = page.text().await.unwrap();
    if status != 200 {
        return Err((status, html));
    }
    assert!(
        headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    assert_eq!(headers["x-frame-options"], "DENY");
    assert!(
        html.contains("type=\"password\" id=\"api_key\" name=\"api_key\""),
        "{html}"
    );
    assert!(html.contains("name=\"access\" value=\"read_only\""));
    assert!(!html.contains("<test>"), "the client's name is escaped");
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a CSRF token")
        .to_owned();
    let answered = http
        .post(format!("{}/authorize", replica.origin))
        .header("cookie", cookie.expect("the consent cookie"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("csrf", &csrf)
                .append_pair("api_key", key)
                .append_pair("access", access)
                .append_pair("decision", "allow")
                .finish(),
        )
        .send()
        .await
        .unwrap();
    if answered.status() != 303 {
        return Err((answered.status().as_u16(), answered.text().await.unwrap()));
    }
    let location = answered.headers()["location"].to_str().unwrap();
    assert!(location.starts_with(REDIRECT), "{location}");
    Ok(url::Url::parse(location).unwrap().query_pairs().into_owned().collect())
}

/// The whole flow for `access`: the token response.
pub async fn sign_in(
    a: &Replica,
    server: &Value,
    client_id: &str,
    access: &str,
) -> (oauth2::basic::BasicTokenResponse, String) {
    let oauth = client(server, client_id, REDIRECT);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let scope = if access == "full" {
        "tokportal:full"
    } else {
        "tokportal:read_only"
    };
    let (url, state) = oauth
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new(scope.into()))
        .add_extra_param("resource", format!("{PUBLIC}/mcp"))
        .set_pkce_challenge(challenge)
        .url();
    let back = consent(a, url.as_str(), KEY, access).await.expect("consent given");
    assert_eq!(back["state"], *state.secret());
    assert_eq!(back["iss"], PUBLIC, "RFC 9207");
    let origin = a.origin.clone();
    let http = move |r| send(r, origin.clone());
    let tokens = oauth
        .exchange_code(AuthorizationCode::new(back["code"].clone()))
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("the code is exchanged");
    (tokens, back["code"].clone())
}
