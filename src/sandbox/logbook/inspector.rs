//! The inspector page at `GET /_sandbox/`: one page embedded in the binary
//! (`inspector/page.html`, `page.css`, `page.js`, put together here), with no
//! CDN, no build step and no request to any origin but the sandbox's. It
//! reads the journal API of [`crate::sandbox::face::admin`] and follows its live feed over
//! `EventSource`.
//!
//! The page shows what any client sent, so it is served with a Content
//! Security Policy that runs only its own script and style (by hash) and
//! connects only to its own origin, and the script writes data with
//! `textContent`, never as markup.

use std::sync::LazyLock;

use axum::body::Body;
use base64::Engine as _;
use http::{HeaderValue, Response};
use sha2::{Digest, Sha256};

const HTML: &str = include_str!("inspector/page.html");
const STYLE: &str = include_str!("inspector/page.css");
const SCRIPT: &str = include_str!("inspector/page.js");

/// The page, and the policy that allows exactly its script and style.
static PAGE: LazyLock<(String, String)> = LazyLock::new(|| {
    let hash = |text: &str| base64::engine::general_purpose::STANDARD.encode(Sha256::digest(text.as_bytes()));
    let page = HTML.replacen("/*STYLE*/", STYLE, 1).replacen("/*SCRIPT*/", SCRIPT, 1);
    let policy = format!(
        "default-src 'none'; script-src 'sha256-{}'; style-src 'sha256-{}'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        hash(SCRIPT),
        hash(STYLE),
    );
    (page, policy)
});

/// `GET /_sandbox/`.
pub(in crate::sandbox) fn page() -> Response<Body> {
    let (page, policy) = &*PAGE;
    let mut response = Response::new(Body::from(page.clone()));
    let h = response.headers_mut();
    h.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(http::header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    if let Ok(policy) = HeaderValue::from_str(policy) {
        h.insert(http::header::CONTENT_SECURITY_POLICY, policy);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_is_whole_and_its_policy_allows_exactly_its_own_code() {
        let (page, policy) = &*PAGE;
        assert!(page.contains(SCRIPT) && page.contains(STYLE) && !page.contains("/*SCRIPT*/"));
        let hash = |text: &str| base64::engine::general_purpose::STANDARD.encode(Sha256::digest(text.as_bytes()));
        assert!(
            policy.contains(&format!("script-src 'sha256-{}'", hash(SCRIPT))),
            "{policy}"
        );
        assert!(
            policy.contains(&format!("style-src 'sha256-{}'", hash(STYLE))),
            "{policy}"
        );
        // Nothing is fetched from elsewhere: no absolute URL in the page.
        for scheme in ["http://", "https://", "//cdn"] {
            assert!(!page.contains(scheme), "the page names {scheme}");
        }
    }
}
