//! Clients: dynamic registration (RFC 7591) for public clients, whose
//! `client_id` is sealed and carries the client's name and redirect URIs
//! (no store); and Client ID Metadata Documents, which MCP 2025-11-25
//! prefers: a `client_id` that is an `https` URL names a JSON document the
//! server fetches (no redirects, 5 s, 64 KiB) and checks.
//!
//! Redirect URIs are matched exactly, except loopback ones (`http://127.0.0.1`,
//! `http://[::1]`, `http://localhost`), which match on any port, as RFC 8252
//! §7.3 says native apps need.

use std::time::Duration;

use serde_json::{Map, Value, json};
use url::Url;

use super::OAuthError;
use super::seal::{Purpose, Sealer, text};

/// At most this many redirect URIs a client.
pub(crate) const MAX_REDIRECTS: usize = 10;
/// The longest redirect URI or client name.
const MAX_FIELD: usize = 2000;
/// The largest metadata document read.
const MAX_DOCUMENT: usize = 64 * 1024;

/// A client, as registered or as its metadata document says.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Client {
    /// Its id as sent.
    pub(crate) id: String,
    /// The name it gives (shown on the consent page).
    pub(crate) name: String,
    /// Its redirect URIs.
    pub(crate) redirect_uris: Vec<String>,
    /// Known through a metadata document (its URL is its id).
    pub(crate) by_document: bool,
}

impl Client {
    /// Whether `uri` is one of this client's redirect URIs.
    pub(crate) fn redirects_to(&self, uri: &str) -> bool {
        self.redirect_uris.iter().any(|r| r == uri || same_loopback(r, uri))
    }
}

/// A loopback redirect registered with one port matches any port.
fn same_loopback(registered: &str, given: &str) -> bool {
    let (Ok(a), Ok(b)) = (Url::parse(registered), Url::parse(given)) else {
        return false;
    };
    a.scheme() == "http"
        && b.scheme() == "http"
        && is_loopback(&a)
        && a.host() == b.host()
        && a.path() == b.path()
        && a.query() == b.query()
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// A redirect URI this server may send a code to: `https`, loopback
/// `http`, or an app's own scheme (`cursor://`, `com.example.app:/cb`);
/// never `http` elsewhere, nor `javascript:`, `data:` or `file:`; no fragment.
fn check_redirect(uri: &str) -> Result<(), String> {
    if uri.len() > MAX_FIELD {
        return Err("a redirect URI is too long".into());
    }
    let url = Url::parse(uri).map_err(|e| format!("`{uri}` is not a URL: {e}"))?;
    if url.fragment().is_some() {
        return Err(format!("`{uri}` has a fragment"));
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(&url) => Ok(()),
        "http" => Err(format!("`{uri}`: http is allowed on loopback only")),
        "javascript" | "data" | "file" | "blob" | "about" | "vbscript" => {
            Err(format!("`{uri}`: not a redirect scheme"))
        }
        _ => Ok(()),
    }
}

/// Registers a client from an RFC 7591 request body: its sealed id and the
/// registration response.
pub(crate) fn register(sealer: &Sealer, body: &Value) -> Result<Value, OAuthError> {
    let bad = |why: String| OAuthError::new("invalid_client_metadata", why);
    let uris: Vec<String> = match body.get("redirect_uris") {
        Some(Value::Array(items)) if !items.is_empty() && items.len() <= MAX_REDIRECTS => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| bad("redirect_uris holds strings".into()))
            })
            .collect::<Result<_, _>>()?,
        _ => {
            return Err(OAuthError::new(
                "invalid_redirect_uri",
                format!("redirect_uris: 1 to {MAX_REDIRECTS} URIs"),
            ));
        }
    };
    for uri in &uris {
        check_redirect(uri).map_err(|why| OAuthError::new("invalid_redirect_uri", why))?;
    }
    match body.get("token_endpoint_auth_method").and_then(Value::as_str) {
        None | Some("none") => {}
        Some(other) => {
            return Err(bad(format!(
                "token_endpoint_auth_method {other}: public clients only (none)"
            )));
        }
    }
    if let Some(Value::Array(grants)) = body.get("grant_types")
        && let Some(other) = grants
            .iter()
            .filter_map(Value::as_str)
            .find(|g| !matches!(*g, "authorization_code" | "refresh_token"))
    {
        return Err(bad(format!(
            "grant_types {other}: authorization_code and refresh_token only"
        )));
    }
    let name: String = body
        .get("client_name")
        .and_then(Value::as_str)
        .unwrap_or("an unnamed client")
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect();
    let mut claims = Map::new();
    claims.insert("n".into(), json!(name));
    claims.insert("r".into(), json!(uris));
    let id = sealer
        .seal(Purpose::Client, claims, None, None)
        .map_err(|e| OAuthError::server(format!("cannot seal the client: {e}")))?;
    Ok(json!({
        "client_id": id,
        "client_id_issued_at": chrono::Utc::now().timestamp(),
        "client_name": name,
        "redirect_uris": uris,
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
    }))
}

/// The client `id` names: a sealed registration, or a metadata document.
///
/// `local`: the server itself is on loopback (local testing), so a
/// document may be too; otherwise documents on loopback, private, link-local
/// and other non-public addresses are refused before any connection.
pub(crate) async fn resolve(sealer: &Sealer, local: bool, id: &str) -> Result<Client, OAuthError> {
    let unknown = |why: &str| OAuthError::new("invalid_client", format!("unknown client: {why}"));
    if id.starts_with("https://") || id.starts_with("http://") {
        return document(local, id).await;
    }
    let claims = sealer.open(Purpose::Client, id, None).map_err(unknown)?;
    let redirect_uris = claims
        .get("r")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default();
    Ok(Client {
        id: id.to_owned(),
        name: text(&claims, "n").unwrap_or("an unnamed client").to_owned(),
        redirect_uris,
        by_document: false,
    })
}

/// A Client ID Metadata Document: fetched from `id` (https; http only on
/// loopback, for local testing), its `client_id` equal to `id`.
async fn document(local: bool, id: &str) -> Result<Client, OAuthError> {
    let bad = |why: String| OAuthError::new("invalid_client", format!("client metadata document {id}: {why}"));
    let url = Url::parse(id).map_err(|e| bad(e.to_string()))?;
    if url.scheme() != "https" && !(local && is_loopback(&url)) {
        return Err(bad("must be https".into()));
    }
    if url.path() == "/" || url.fragment().is_some() {
        return Err(bad("must name a document (a path, no fragment)".into()));
    }
    // A stranger names this URL: the server resolves it once, refuses
    // addresses that are not public (unless it is itself on loopback), and
    // connects to exactly the address it checked (no second lookup to
    // rebind), with no redirects.
    let host = url.host_str().ok_or_else(|| bad("has no host".into()))?.to_owned();
    let port = url.port_or_known_default().unwrap_or(443);
    let lookup = host.trim_start_matches('[').trim_end_matches(']').to_owned();
    let addresses: Vec<std::net::SocketAddr> =
        tokio::time::timeout(Duration::from_secs(5), tokio::net::lookup_host((lookup.as_str(), port)))
            .await
            .map_err(|_| bad("its name did not resolve in 5 s".into()))?
            .map_err(|e| bad(format!("its name does not resolve: {e}")))?
            .collect();
    let Some(address) = addresses.iter().copied().find(|a| {
        if local {
            a.ip().is_loopback() || is_public(a.ip())
        } else {
            is_public(a.ip())
        }
    }) else {
        return Err(bad("resolves to no public address".into()));
    };
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .resolve(&lookup, address)
        .build()
        .map_err(|e| OAuthError::server(e.to_string()))?;
    let mut response = http
        .get(url)
        .timeout(Duration::from_secs(5))
        .header(http::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| {
            bad(format!(
                "cannot be fetched: {}",
                crate::error::one_line(&crate::Error::from_reqwest(e))
            ))
        })?;
    if !response.status().is_success() {
        return Err(bad(format!("answered {}", response.status())));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| bad(e.to_string()))? {
        if body.len() + chunk.len() > MAX_DOCUMENT {
            return Err(bad(format!("is over {MAX_DOCUMENT} bytes")));
        }
        body.extend_from_slice(&chunk);
    }
    let doc: Value = serde_json::from_slice(&body).map_err(|e| bad(format!("is not JSON: {e}")))?;
    if doc.get("client_id").and_then(Value::as_str) != Some(id) {
        return Err(bad("its client_id is not its own URL".into()));
    }
    let uris: Vec<String> = doc
        .get("redirect_uris")
        .and_then(Value::as_array)
        .map(|r| {
            r.iter()
                .filter_map(Value::as_str)
                .take(MAX_REDIRECTS)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if uris.is_empty() {
        return Err(bad("lists no redirect_uris".into()));
    }
    for uri in &uris {
        check_redirect(uri).map_err(bad)?;
    }
    let name = doc
        .get("client_name")
        .and_then(Value::as_str)
        .map(|n| n.chars().filter(|c| !c.is_control()).take(200).collect())
        .unwrap_or_else(|| url_host(id));
    Ok(Client {
        id: id.to_owned(),
        name,
        redirect_uris: uris,
        by_document: true,
    })
}

/// An address on the public internet: not loopback, private, link-local,
/// shared (CGNAT), unspecified, broadcast, multicast or documentation space.
fn is_public(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || (a == 100 && (64..128).contains(&b))
                || a == 0
                || a >= 240)
        }
        std::net::IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(std::net::IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || first == 0x2001 && v6.segments()[1] == 0x0db8)
        }
    }
}

fn url_host(id: &str) -> String {
    Url::parse(id)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| id.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer() -> Sealer {
        Sealer::new("a test secret of at least thirty-two bytes").unwrap()
    }

    #[test]
    fn a_registration_is_sealed_into_the_client_id() {
        let s = sealer();
        let answer = register(
            &s,
            &json!({"client_name": "Claude", "redirect_uris": ["https://claude.ai/api/mcp/auth_callback", "http://127.0.0.1:33418/cb"]}),
        )
        .unwrap();
        let id = answer["client_id"].as_str().unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let client = runtime.block_on(resolve(&s, false, id)).unwrap();
        assert_eq!(client.name, "Claude");
        assert!(client.redirects_to("https://claude.ai/api/mcp/auth_callback"));
        assert!(
            !client.redirects_to("https://claude.ai/api/mcp/auth_callback/x"),
            "exactly"
        );
        assert!(
            client.redirects_to("http://127.0.0.1:50123/cb"),
            "a loopback redirect on any port"
        );
        assert!(!client.redirects_to("http://127.0.0.1:50123/other"));
    }

    #[test]
    fn documents_on_addresses_that_are_not_public_are_refused_unfetched() {
        let s = sealer();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        for id in [
            "https://127.0.0.1:9/client.json",
            "https://10.0.0.7/client.json",
            "https://[::1]/client.json",
            "https://169.254.169.254/latest/meta-data",
            "http://127.0.0.1:9/client.json",
        ] {
            let e = runtime.block_on(resolve(&s, false, id)).unwrap_err();
            assert!(
                e.description.contains("no public address") || e.description.contains("must be https"),
                "{id}: {e:?}"
            );
        }
        assert!(is_public("93.184.215.14".parse().unwrap()));
        assert!(!is_public("100.64.0.1".parse().unwrap()) && !is_public("::ffff:192.168.1.1".parse().unwrap()));
        assert!(!is_public("fd00::1".parse().unwrap()) && is_public("2606:4700::1".parse().unwrap()));
    }

    #[test]
    fn bad_redirects_are_refused() {
        let s = sealer();
        for uris in [
            json!([]),
            json!(["http://example.com/cb"]),
            json!(["javascript:alert(1)"]),
            json!(["https://a.example/cb#frag"]),
            json!(vec!["https://a.example/cb"; MAX_REDIRECTS + 1]),
        ] {
            let e = register(&s, &json!({"redirect_uris": uris})).unwrap_err();
            assert_eq!(e.code, "invalid_redirect_uri", "{uris}: {e:?}");
        }
        assert!(
            register(
                &s,
                &json!({"redirect_uris": ["cursor://anysphere.cursor-retrieval/oauth/callback"]})
            )
            .is_ok()
        );
        let e = register(
            &s,
            &json!({"redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "client_secret_basic"}),
        )
        .unwrap_err();
        assert_eq!(e.code, "invalid_client_metadata");
    }
}
