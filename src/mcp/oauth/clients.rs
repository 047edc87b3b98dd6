//! Clients: dynamic registration (RFC 7591) for public clients, whose
//! `client_id` is sealed and carries the client's name and redirect URIs
//! (no store); and Client ID Metadata Documents, which MCP 2025-11-25
//! prefers: a `client_id` that is an `https` URL names a JSON document the
//! server fetches (no redirects, 5 s, 64 KiB) and checks.
//!
//! Redirect URIs are matched exactly, except loopback ones (`http://127.0.0.1`,
//! `http://[::1]`, `http://localhost`), which match on any port, as RFC 8252
//! §7.3 says native apps need. An app's own scheme is accepted only in RFC
//! 8252 §7.1's reverse-domain form (`com.example.app:/callback`), or when the
//! operator allows it by name (`--allow-redirect-scheme cursor`).
//!
//! A metadata document's URL is a stranger's: it is fetched without a proxy,
//! only from an address in IANA's globally reachable ranges (the
//! `ip_network` crate's registry, v4 and v6), at most [`MAX_FETCHES`] at
//! once, and kept in a bounded cache as its `Cache-Control` allows.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

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
/// The most metadata documents fetched at once; past it, a request is
/// refused (busy) rather than queued.
pub(crate) const MAX_FETCHES: usize = 8;
/// The most documents cached.
pub(crate) const MAX_CACHED: usize = 1000;
/// How long a document without `Cache-Control` is kept.
const DEFAULT_CACHE: Duration = Duration::from_secs(300);
/// The longest a document is kept, whatever it says.
const LONGEST_CACHE: Duration = Duration::from_secs(24 * 3600);
/// The longest client name shown.
const MAX_NAME: usize = 100;

/// Client metadata documents: the fetches in flight and the cache.
pub(crate) struct Documents {
    fetches: tokio::sync::Semaphore,
    cache: Mutex<HashMap<String, (Client, Instant)>>,
}

impl Default for Documents {
    fn default() -> Self {
        Self {
            fetches: tokio::sync::Semaphore::new(MAX_FETCHES),
            cache: Mutex::new(HashMap::new()),
        }
    }
}

impl Documents {
    fn cached(&self, id: &str) -> Option<Client> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .get(id)
            .filter(|(_, until)| *until > Instant::now())
            .map(|(client, _)| client.clone())
    }

    fn keep(&self, client: &Client, lasting: Duration) {
        if lasting.is_zero() {
            return;
        }
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= MAX_CACHED {
            let now = Instant::now();
            cache.retain(|_, (_, until)| *until > now);
            if cache.len() >= MAX_CACHED {
                return;
            }
        }
        cache.insert(client.id.clone(), (client.clone(), Instant::now() + lasting));
    }

    /// How many documents are cached.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.cache.lock().map(|c| c.len()).unwrap_or(0)
    }
}

/// How long `Cache-Control` lets a document be kept: zero for `no-store`,
/// `no-cache` or `private`, `max-age` (at most a day), else five minutes.
///
/// Hand-written: the three directives are all a metadata document needs,
/// where a full HTTP cache crate (http-cache-semantics) models requests,
/// revalidation and heuristics this cache never uses.
fn cache_lifetime(cache_control: Option<&str>) -> Duration {
    let Some(value) = cache_control else {
        return DEFAULT_CACHE;
    };
    let mut lifetime = DEFAULT_CACHE;
    for directive in value.split(',').map(|d| d.trim().to_ascii_lowercase()) {
        match directive.split_once('=') {
            None if matches!(directive.as_str(), "no-store" | "no-cache" | "private") => return Duration::ZERO,
            Some(("max-age", n)) => match n.trim_matches('"').parse::<u64>() {
                Ok(n) => lifetime = Duration::from_secs(n).min(LONGEST_CACHE),
                Err(_) => return Duration::ZERO,
            },
            _ => {}
        }
    }
    lifetime
}

/// A name a client gave, as a page may show it: without control, format
/// (bidi overrides, zero-width characters), separator, private-use or
/// unassigned characters, spaces folded, at most [`MAX_NAME`] characters.
/// (The page escapes it too.)
pub(crate) fn clean_name(name: &str) -> String {
    use unicode_general_category::{GeneralCategory as G, get_general_category};
    let kept: String = name
        .chars()
        .map(|c| match get_general_category(c) {
            G::Control
            | G::Format
            | G::LineSeparator
            | G::ParagraphSeparator
            | G::PrivateUse
            | G::Surrogate
            | G::Unassigned => ' ',
            G::SpaceSeparator => ' ',
            _ => c,
        })
        .collect();
    let folded: String = kept
        .split(' ')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(MAX_NAME)
        .collect();
    if folded.is_empty() {
        "an unnamed client".into()
    } else {
        folded
    }
}

/// A URL or id a client gave, as a page or an error may show it: cleaned
/// as a name is, at most 200 characters.
pub(crate) fn shown(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .filter(|c| {
            !c.is_control()
                && !matches!(
                    unicode_general_category::get_general_category(*c),
                    unicode_general_category::GeneralCategory::Format
                )
        })
        .take(200)
        .collect();
    cleaned
}

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

/// Whether `scheme` is RFC 8252 §7.1's reverse-domain form
/// (`com.example.app`): two or more dot-separated labels of letters,
/// digits and `-`.
fn reverse_domain(scheme: &str) -> bool {
    let labels: Vec<&str> = scheme.split('.').collect();
    labels.len() >= 2
        && labels
            .iter()
            .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
}

/// A redirect URI this server may send a code to: `https`, loopback
/// `http`, or an app's own scheme in reverse-domain form
/// (`com.example.app:/cb`) or allowed by the operator (`allowed`); never
/// `http` elsewhere, nor `javascript:`, `data:` or `file:`; no fragment.
fn check_redirect(uri: &str, allowed: &[String]) -> Result<(), String> {
    if uri.len() > MAX_FIELD {
        return Err("a redirect URI is too long".into());
    }
    let uri_shown = shown(uri);
    let url = Url::parse(uri).map_err(|e| format!("`{uri_shown}` is not a URL: {e}"))?;
    if url.fragment().is_some() {
        return Err(format!("`{uri_shown}` has a fragment"));
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(&url) => Ok(()),
        "http" => Err(format!("`{uri_shown}`: http is allowed on loopback only")),
        "javascript" | "data" | "file" | "blob" | "about" | "vbscript" => {
            Err(format!("`{uri_shown}`: not a redirect scheme"))
        }
        scheme if reverse_domain(scheme) || allowed.iter().any(|a| a.eq_ignore_ascii_case(scheme)) => Ok(()),
        scheme => Err(format!(
            "`{uri_shown}`: an app's own scheme must be a reverse domain name (RFC 8252 §7.1: \
             `com.example.app:/callback`); `{scheme}` is not one"
        )),
    }
}

/// Registers a client from an RFC 7591 request body: its sealed id and the
/// registration response.
pub(crate) fn register(sealer: &Sealer, allowed: &[String], body: &Value) -> Result<Value, OAuthError> {
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
        check_redirect(uri, allowed).map_err(|why| OAuthError::new("invalid_redirect_uri", why))?;
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
    let name = clean_name(body.get("client_name").and_then(Value::as_str).unwrap_or_default());
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
pub(crate) async fn resolve(
    sealer: &Sealer,
    documents: &Documents,
    local: bool,
    allowed: &[String],
    id: &str,
) -> Result<Client, OAuthError> {
    let unknown = |why: &str| OAuthError::new("invalid_client", format!("unknown client: {why}"));
    if id.starts_with("https://") || id.starts_with("http://") {
        if let Some(client) = documents.cached(id) {
            return Ok(client);
        }
        let _fetching = documents.fetches.try_acquire().map_err(|_| {
            OAuthError::new(
                "temporarily_unavailable",
                "too many client metadata documents are being fetched; try again shortly",
            )
        })?;
        let (client, lasting) = document(local, allowed, id).await?;
        documents.keep(&client, lasting);
        return Ok(client);
    }
    let claims = sealer.open(Purpose::Client, id, None).map_err(unknown)?;
    let redirect_uris = claims
        .get("r")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default();
    Ok(Client {
        id: id.to_owned(),
        name: clean_name(text(&claims, "n").unwrap_or_default()),
        redirect_uris,
        by_document: false,
    })
}

/// A Client ID Metadata Document: fetched from `id` (https; http only on
/// loopback, for local testing), its `client_id` equal to `id`; and how
/// long it may be cached.
async fn document(local: bool, allowed: &[String], id: &str) -> Result<(Client, Duration), OAuthError> {
    let bad = |why: String| {
        OAuthError::new(
            "invalid_client",
            format!("client metadata document {}: {why}", shown(id)),
        )
    };
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
    let http = crate::client::http_builder()
        // HTTPS_PROXY would send the fetch elsewhere, and the checked address would mean nothing.
        .no_proxy()
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
    let lasting = cache_lifetime(
        response
            .headers()
            .get(http::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok()),
    );
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
        check_redirect(uri, allowed).map_err(bad)?;
    }
    let name = doc
        .get("client_name")
        .and_then(Value::as_str)
        .map(clean_name)
        .unwrap_or_else(|| url_host(id));
    let client = Client {
        id: id.to_owned(),
        name,
        redirect_uris: uris,
        by_document: true,
    };
    Ok((client, lasting))
}

/// An address IANA's special-purpose registries mark globally reachable
/// (`ip_network`'s `is_global`, which follows them): not loopback,
/// private, shared, link-local, documentation, benchmarking
/// (198.18.0.0/15), IETF protocol assignments (192.0.0.0/24), NAT64
/// (64:ff9b::/96, 64:ff9b:1::/48), 6to4 (2002::/16), site-local
/// (fec0::/10), IPv4-compatible or -mapped v6 of any of those, and so on.
fn is_public(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => ip_network::Ipv4Network::new(v4, 32).is_ok_and(|n| n.is_global()),
        std::net::IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(std::net::IpAddr::V4(v4));
            }
            let segments = v6.segments();
            // Ranges that carry (or once carried) IPv4 inside: their v4 is
            // what would be reached, and none is a global v6 destination.
            let embeds_v4 = segments[..6] == [0; 6] // ::a.b.c.d (IPv4-compatible, deprecated)
                || segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] // 64:ff9b::/96 (NAT64)
                || segments[..2] == [0x64, 0xff9b] && segments[2] == 1 // 64:ff9b:1::/48 (local NAT64)
                || segments[0] == 0x2002; // 2002::/16 (6to4)
            let site_local = (segments[0] & 0xffc0) == 0xfec0;
            !embeds_v4 && !site_local && ip_network::Ipv6Network::new(v6, 128).is_ok_and(|n| n.is_global())
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
        Sealer::new("a test secret of at least thirty-two bytes", "https://mcp.example").unwrap()
    }

    #[test]
    fn a_registration_is_sealed_into_the_client_id() {
        let s = sealer();
        let answer = register(
            &s,
            &[],
            &json!({"client_name": "Claude", "redirect_uris": ["https://claude.ai/api/mcp/auth_callback", "http://127.0.0.1:33418/cb"]}),
        )
        .unwrap();
        let id = answer["client_id"].as_str().unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let client = runtime
            .block_on(resolve(&s, &Documents::default(), false, &[], id))
            .unwrap();
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
            let e = runtime
                .block_on(resolve(&s, &Documents::default(), false, &[], id))
                .unwrap_err();
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
            let e = register(&s, &[], &json!({"redirect_uris": uris})).unwrap_err();
            assert_eq!(e.code, "invalid_redirect_uri", "{uris}: {e:?}");
        }
        // An app's own scheme: a reverse domain name (RFC 8252 §7.1), or one
        // the operator allows by name.
        let cursor = json!({"redirect_uris": ["cursor://anysphere.cursor-retrieval/oauth/callback"]});
        assert_eq!(register(&s, &[], &cursor).unwrap_err().code, "invalid_redirect_uri");
        assert!(register(&s, &["cursor".to_owned()], &cursor).is_ok());
        assert!(register(&s, &[], &json!({"redirect_uris": ["com.example.app:/callback"]})).is_ok());
        for odd in ["x:<h1>hi</h1>", "x:/cb", "com..app:/cb", "-.x:/cb"] {
            let e = register(&s, &[], &json!({"redirect_uris": [odd]})).unwrap_err();
            assert_eq!(e.code, "invalid_redirect_uri", "{odd}: {e:?}");
        }
        let e = register(
            &s,
            &[],
            &json!({"redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "client_secret_basic"}),
        )
        .unwrap_err();
        assert_eq!(e.code, "invalid_client_metadata");
    }
}

#[cfg(test)]
mod more_tests {
    use super::*;

    #[test]
    fn names_lose_control_format_and_bidi_characters() {
        assert_eq!(clean_name("Claude"), "Claude");
        assert_eq!(clean_name("Cl\u{202E}edua\u{202C}"), "Cl edua");
        assert_eq!(clean_name("a\u{200B}b\u{2066}c\u{2069}\u{FEFF}"), "a b c");
        assert_eq!(clean_name("two\nlines\r\tand\u{2028}more"), "two lines and more");
        assert_eq!(clean_name("\u{E000}\u{200F}"), "an unnamed client");
        assert_eq!(clean_name(&"x".repeat(500)).chars().count(), MAX_NAME);
        assert_eq!(shown("a\u{202E}b\nc"), "abc");
    }

    #[test]
    fn an_app_s_own_scheme_is_letters_digits_and_hyphens_in_dotted_labels() {
        assert!(reverse_domain("com.example-app") && reverse_domain("com.example.app2"));
        for odd in [
            "com.example+app",
            "com.exa_mple",
            "com.example app",
            "com",
            "com.",
            ".com",
        ] {
            assert!(!reverse_domain(odd), "{odd}");
        }
    }

    #[test]
    fn a_redirect_uri_may_be_two_thousand_characters_long() {
        let at = |len: usize| {
            let uri = "https://a.example/".to_owned();
            let pad = "x".repeat(len - uri.len());
            uri + &pad
        };
        assert_eq!(check_redirect(&at(MAX_FIELD), &[]), Ok(()));
        assert_eq!(
            check_redirect(&at(MAX_FIELD + 1), &[]),
            Err("a redirect URI is too long".into())
        );
    }

    #[test]
    fn grant_types_are_authorization_code_and_refresh_token_only() {
        let s = Sealer::new("a test secret of at least thirty-two bytes", "https://mcp.example").unwrap();
        let asked = |grants: Value| {
            register(
                &s,
                &[],
                &json!({"redirect_uris": ["https://a.example/cb"], "grant_types": grants}),
            )
        };
        assert!(asked(json!(["authorization_code", "refresh_token"])).is_ok());
        let e = asked(json!(["authorization_code", "client_credentials"])).unwrap_err();
        assert_eq!(e.code, "invalid_client_metadata");
        assert!(e.description.contains("client_credentials"), "{e:?}");
    }

    #[test]
    fn spaces_of_every_kind_fold_into_one() {
        assert_eq!(clean_name("a\u{00A0}\u{3000}\u{2003} b"), "a b");
    }

    #[test]
    fn only_globally_reachable_addresses_are_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "100.64.0.1",
            "169.254.169.254",
            "192.0.0.8",
            "198.18.0.1",
            "198.19.255.255",
            "192.0.2.1",
            "0.1.2.3",
            "240.0.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "fec0::1",
            "64:ff9b::a00:1",
            "64:ff9b::8.8.8.8",
            "64:ff9b:1::1",
            "2002:a00:1::1",
            "::10.0.0.1",
            "::8.8.8.8",
            "::ffff:192.168.1.1",
            "2001:db8::1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.215.14", "8.8.8.8", "2606:4700::1", "::ffff:8.8.8.8"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    /// The ranges are IANA's, not a pattern of segments: 64:ff9b:1::/48 is
    /// local NAT64, 2606:4700:1::/48 is not; fec0::/10 is site-local,
    /// 100::/16 (beside 100::/64) is not.
    #[test]
    fn only_the_registry_s_ranges_are_refused() {
        for ip in ["2606:4700:1::1", "100:0:0:1::1"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["64:ff9b:1::1", "fef0::1", "feff::1"] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn cache_control_is_honoured_and_the_cache_bounded() {
        assert_eq!(cache_lifetime(None), DEFAULT_CACHE);
        assert_eq!(cache_lifetime(Some("public, max-age=60")), Duration::from_secs(60));
        assert_eq!(cache_lifetime(Some("max-age=99999999")), LONGEST_CACHE);
        assert_eq!(LONGEST_CACHE, Duration::from_secs(86_400), "a day");
        assert_eq!(cache_lifetime(Some("max-age=86401")), Duration::from_secs(86_400));
        for none in ["no-store", "no-cache", "private, max-age=60", "max-age=x"] {
            assert_eq!(cache_lifetime(Some(none)), Duration::ZERO, "{none}");
        }
        let docs = Documents::default();
        let client = |n: usize| Client {
            id: format!("https://c{n}.example/client.json"),
            name: "c".into(),
            redirect_uris: vec![],
            by_document: true,
        };
        docs.keep(&client(0), Duration::ZERO);
        assert!(docs.cached(&client(0).id).is_none(), "no-store is not kept");
        for n in 0..MAX_CACHED + 10 {
            docs.keep(&client(n), Duration::from_secs(60));
        }
        assert_eq!(docs.len(), MAX_CACHED);
        assert!(docs.cached(&client(1).id).is_some());
    }

    #[tokio::test]
    async fn fetches_in_flight_are_bounded() {
        let s = Sealer::new("a test secret of at least thirty-two bytes", "https://mcp.example").unwrap();
        let docs = Documents::default();
        let held: Vec<_> = (0..MAX_FETCHES).map(|_| docs.fetches.try_acquire().unwrap()).collect();
        let e = resolve(&s, &docs, false, &[], "https://example.com/client.json")
            .await
            .unwrap_err();
        assert_eq!(e.code, "temporarily_unavailable", "{e:?}");
        drop(held);
    }
}

#[cfg(test)]
mod document_tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    const REDIRECT: &str = "http://127.0.0.1:4321/callback";

    /// A page: its path, status, `Cache-Control` and body.
    type Page = (&'static str, u16, Option<&'static str>, String);
    /// A page's status, `Cache-Control` and body.
    type Answer = (u16, Option<&'static str>, String);

    /// Serves `pages` (given the server's origin) on 127.0.0.1: its origin
    /// and how many requests it answered.
    async fn serve(pages: impl FnOnce(&str) -> Vec<Page>) -> (String, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let pages: Arc<HashMap<&'static str, Answer>> = Arc::new(
            pages(&origin)
                .into_iter()
                .map(|(path, status, cache, body)| (path, (status, cache, body)))
                .collect(),
        );
        let fetches = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&fetches);
        let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
            let (pages, counted) = (Arc::clone(&pages), Arc::clone(&counted));
            async move {
                counted.fetch_add(1, Ordering::SeqCst);
                let mut headers = axum::http::HeaderMap::new();
                let Some((status, cache, body)) = pages.get(uri.path()).cloned() else {
                    return (axum::http::StatusCode::NOT_FOUND, headers, String::new());
                };
                if let Some(cache) = cache {
                    headers.insert(
                        axum::http::header::CACHE_CONTROL,
                        axum::http::HeaderValue::from_static(cache),
                    );
                }
                (axum::http::StatusCode::from_u16(status).unwrap(), headers, body)
            }
        });
        tokio::spawn(async move { axum::serve(listener, app).await });
        (origin, fetches)
    }

    /// A document naming itself `origin` + `path`, with `fields` added.
    fn doc(origin: &str, path: &str, fields: Value) -> String {
        let mut doc = json!({"client_id": format!("{origin}{path}"), "redirect_uris": [REDIRECT]});
        if let (Some(doc), Value::Object(fields)) = (doc.as_object_mut(), fields) {
            doc.extend(fields);
        }
        doc.to_string()
    }

    /// `doc`, padded with spaces (still JSON) to `len` bytes.
    fn padded(origin: &str, path: &str, len: usize) -> String {
        let mut body = doc(origin, path, json!({}));
        body.push_str(&" ".repeat(len - body.len()));
        body
    }

    async fn fetch(documents: &Documents, local: bool, id: &str) -> Result<Client, OAuthError> {
        let sealer = Sealer::new("a test secret of at least thirty-two bytes", "https://mcp.example").unwrap();
        resolve(&sealer, documents, local, &[], id).await
    }

    async fn refusal(documents: &Documents, id: &str) -> String {
        let e = fetch(documents, true, id).await.unwrap_err();
        assert_eq!(e.code, "invalid_client", "{id}: {e:?}");
        e.description
    }

    #[tokio::test]
    async fn a_document_is_fetched_checked_and_kept_as_it_says() {
        let (origin, fetches) = serve(|o| {
            let eleven: Vec<String> = (0..=MAX_REDIRECTS).map(|n| format!("http://127.0.0.1/cb{n}")).collect();
            vec![
                (
                    "/good.json",
                    200,
                    Some("max-age=60"),
                    doc(o, "/good.json", json!({"client_name": "A\u{202E}documented client"})),
                ),
                (
                    "/nameless.json",
                    200,
                    Some("no-store"),
                    doc(o, "/nameless.json", json!({})),
                ),
                (
                    "/eleven.json",
                    200,
                    None,
                    doc(o, "/eleven.json", json!({"redirect_uris": eleven})),
                ),
                ("/exact.json", 200, None, padded(o, "/exact.json", MAX_DOCUMENT)),
                ("/over.json", 200, None, padded(o, "/over.json", MAX_DOCUMENT + 1)),
                (
                    "/liar.json",
                    200,
                    None,
                    doc("https://someone.else", "/client.json", json!({})),
                ),
                ("/gone.json", 404, None, doc(o, "/gone.json", json!({}))),
                (
                    "/no-redirects.json",
                    200,
                    None,
                    json!({"client_id": format!("{o}/no-redirects.json")}).to_string(),
                ),
                (
                    "/elsewhere.json",
                    200,
                    None,
                    doc(
                        o,
                        "/elsewhere.json",
                        json!({"redirect_uris": ["http://example.com/cb"]}),
                    ),
                ),
                ("/page.json", 200, None, "<html></html>".into()),
            ]
        })
        .await;
        let documents = Documents::default();
        let good = format!("{origin}/good.json");
        let expected = Client {
            id: good.clone(),
            name: "A documented client".into(),
            redirect_uris: vec![REDIRECT.into()],
            by_document: true,
        };
        assert_eq!(fetch(&documents, true, &good).await.unwrap(), expected);
        assert_eq!(fetch(&documents, true, &good).await.unwrap(), expected, "kept");
        assert_eq!(fetches.load(Ordering::SeqCst), 1, "max-age=60: fetched once");

        let nameless = format!("{origin}/nameless.json");
        assert_eq!(
            fetch(&documents, true, &nameless).await.unwrap().name,
            "127.0.0.1",
            "its host"
        );
        fetch(&documents, true, &nameless).await.unwrap();
        assert_eq!(fetches.load(Ordering::SeqCst), 3, "no-store: fetched each time");

        let eleven = fetch(&documents, true, &format!("{origin}/eleven.json")).await.unwrap();
        assert_eq!(eleven.redirect_uris.len(), MAX_REDIRECTS);
        assert_eq!(eleven.redirect_uris[0], "http://127.0.0.1/cb0");
        fetch(&documents, true, &format!("{origin}/exact.json")).await.unwrap();
        assert_eq!(documents.len(), 3, "good, eleven and exact are kept; nameless is not");

        for (path, why) in [
            ("/over.json", "is over 65536 bytes"),
            ("/liar.json", "its client_id is not its own URL"),
            ("/gone.json", "answered 404 Not Found"),
            ("/no-redirects.json", "lists no redirect_uris"),
            ("/elsewhere.json", "http is allowed on loopback only"),
            ("/page.json", "is not JSON"),
            ("/", "must name a document"),
            ("/good.json#top", "must name a document"),
        ] {
            let said = refusal(&Documents::default(), &format!("{origin}{path}")).await;
            assert!(said.contains(why), "{path}: {said}");
        }
        // A server that is not itself on loopback reads no http document,
        // on loopback or not.
        let e = fetch(&Documents::default(), false, &good).await.unwrap_err();
        assert!(e.description.contains("must be https"), "{e:?}");
    }
}
