//! The live origin a proxying sandbox sends to, and what it may send.
//!
//! - The origin is checked once: `https`, or `http` to a loopback address
//!   only (a key is never sent in clear over a network).
//! - A request keeps its headers (the caller's own key included) but those
//!   of the hop (`Connection`, `Host`, `Transfer-Encoding`…) and
//!   `Accept-Encoding`: the answer comes back as the origin sent it, and
//!   unencoded so that it can be recorded and checked.
//! - Redirects are not followed: the caller gets them as they are.
//! - [`spend_refusal`]: a paid call (or a change the contract does not
//!   know, which might be one) is refused unless spending was allowed;
//!   dry runs always pass.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName};

use crate::operations::Operation;

/// Headers never passed on: those of one hop (RFC 9110 §7.6.1), those the
/// client sets itself, and method overrides.
const HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "proxy-authenticate",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "host",
    "content-length",
    "accept-encoding",
    // A method other than the one checked: an origin that honours them
    // would turn a free GET into a paid POST past `spend_refusal`.
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

/// Whether `name` is a header of the hop.
pub(in crate::sandbox) fn hop_header(name: &HeaderName) -> bool {
    HOP.contains(&name.as_str())
}

/// The live API.
pub(in crate::sandbox) struct Upstream {
    base: url::Url,
    client: reqwest::Client,
}

impl Upstream {
    /// The origin at `base` (its path is the API's base: `…/api/ext`).
    pub(in crate::sandbox) fn new(base: &str) -> Result<Self, String> {
        let parsed = url::Url::parse(base).map_err(|e| format!("--proxy {base}: {e}"))?;
        let loopback = match parsed.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            None => false,
        };
        match parsed.scheme() {
            "https" => {}
            "http" if loopback => {}
            "http" => {
                return Err(format!(
                    "--proxy {base}: plain http to another machine would send API keys in clear; use https"
                ));
            }
            other => return Err(format!("--proxy {base}: {other} is not http or https")),
        }
        if !parsed.username().is_empty() || parsed.password().is_some() || parsed.query().is_some() {
            return Err(format!(
                "--proxy {base}: give the API's base URL alone (no user, password or query)"
            ));
        }
        let client = crate::client::http_builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(300))
            .tcp_nodelay(true)
            .no_gzip()
            .build()
            .map_err(|e| format!("--proxy {base}: {e}"))?;
        let mut base = parsed;
        let trimmed = base.path().trim_end_matches('/').to_owned();
        base.set_path(&trimmed);
        Ok(Self { base, client })
    }

    /// The origin's base URL.
    pub(in crate::sandbox) fn base(&self) -> &url::Url {
        &self.base
    }

    /// Where a request for `path` (below the API's base) and `query` goes.
    pub(in crate::sandbox) fn url(&self, path: &str, query: Option<&str>) -> url::Url {
        let mut url = self.base.clone();
        url.set_path(&format!("{}{path}", self.base.path()));
        url.set_query(query);
        url
    }

    /// Sends a request: the caller's headers but the hop's.
    pub(in crate::sandbox) async fn send(
        &self,
        method: http::Method,
        url: url::Url,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Result<reqwest::Response, reqwest::Error> {
        let mut sent = HeaderMap::with_capacity(headers.len());
        for (name, value) in headers {
            if !hop_header(name) {
                sent.append(name.clone(), value.clone());
            }
        }
        self.client.request(method, url).headers(sent).body(body).send().await
    }
}

/// Why a request must not be sent without `--allow-spend`: a paid
/// operation that is not a dry run, or a change the contract does not know
/// (which might spend).
pub(in crate::sandbox) fn spend_refusal(
    op: Option<&Operation>,
    method: &http::Method,
    headers: &HeaderMap,
) -> Option<String> {
    if crate::headers::is_dry_run(headers) {
        return None;
    }
    match op {
        Some(op) => op.hints().spends_credits.map(|what| {
            format!(
                "{} spends credits ({what}) on the live API; this proxy sends paid calls only when started with --allow-spend (a dry run, X-TokPortal-Dry-Run: true, always passes)",
                op.id
            )
        }),
        None if !matches!(*method, http::Method::GET | http::Method::HEAD | http::Method::OPTIONS) => Some(format!(
            "{method} on a path the contract does not know might spend credits on the live API; this proxy sends it only when started with --allow-spend"
        )),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        assert!(Upstream::new("https://app.tokportal.com/api/ext").is_ok());
        assert!(Upstream::new("http://127.0.0.1:9/api/ext").is_ok());
        assert!(Upstream::new("http://localhost:9").is_ok());
        assert!(Upstream::new("http://app.tokportal.com/api/ext").is_err());
        assert!(Upstream::new("ftp://x").is_err());
        assert!(Upstream::new("https://u:p@x.example").is_err());
        let up = Upstream::new("https://app.tokportal.com/api/ext/").expect("an origin");
        assert_eq!(
            up.url("/bundles/b", Some("page=2")).as_str(),
            "https://app.tokportal.com/api/ext/bundles/b?page=2"
        );
    }

    #[test]
    fn a_method_override_never_reaches_the_origin() {
        for name in [
            "x-http-method-override",
            "X-HTTP-Method",
            "x-method-override",
            "connection",
            "host",
        ] {
            let name = HeaderName::from_bytes(name.as_bytes()).expect("a header name");
            assert!(hop_header(&name), "{name}");
        }
        assert!(!hop_header(&HeaderName::from_static("x-api-key")));
        assert!(!hop_header(&HeaderName::from_static("x-tokportal-dry-run")));
    }

    #[test]
    fn paid_calls_wait_for_permission() {
        let find = |id| crate::operations::find(id);
        let none = HeaderMap::new();
        let mut preview = HeaderMap::new();
        preview.insert("x-tokportal-dry-run", http::HeaderValue::from_static("true"));
        let mut real = HeaderMap::new();
        real.insert("x-tokportal-dry-run", http::HeaderValue::from_static("false"));
        assert!(spend_refusal(find("createBundle"), &http::Method::POST, &none).is_some());
        assert!(spend_refusal(find("createBundle"), &http::Method::POST, &real).is_some());
        assert!(spend_refusal(find("createBundle"), &http::Method::POST, &preview).is_none());
        assert!(spend_refusal(find("listBundles"), &http::Method::GET, &none).is_none());
        assert!(spend_refusal(None, &http::Method::POST, &none).is_some());
        assert!(spend_refusal(None, &http::Method::GET, &none).is_none());
    }
}
