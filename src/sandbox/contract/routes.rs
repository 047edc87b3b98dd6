//! Matching a request to its operation, from the table's path templates.

use std::sync::OnceLock;

use crate::operations::{OPERATIONS, Operation};

/// Path parameters as matched: name and decoded value.
pub(in crate::sandbox) type Params = Vec<(&'static str, String)>;

/// Where a request goes.
pub(in crate::sandbox) enum Route {
    /// An operation, with its path parameters (decoded).
    Operation(&'static Operation, Params),
    /// The path exists with other methods (for `Allow`).
    WrongMethod(Vec<&'static str>),
    /// No operation has this path.
    NotFound,
}

enum Segment {
    Literal(&'static str),
    Param(&'static str),
}

fn templates() -> &'static [(Vec<Segment>, &'static Operation)] {
    static TEMPLATES: OnceLock<Vec<(Vec<Segment>, &'static Operation)>> = OnceLock::new();
    TEMPLATES.get_or_init(|| {
        OPERATIONS
            .iter()
            .map(|op| {
                let segments = op
                    .path
                    .split('/')
                    .filter(|s| !s.is_empty())
                    .map(|s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                        Some(name) => Segment::Param(name),
                        None => Segment::Literal(s),
                    })
                    .collect();
                (segments, op)
            })
            .collect()
    })
}

/// The operation for `method` and `path` (below the base URL, still
/// percent-encoded). Where a literal segment and a parameter both match
/// (`/webhooks/events` and `/webhooks/{id}`), the literal wins, for every
/// method: the path's most literal templates alone decide, so `PATCH
/// /webhooks/events` is 405 with `Allow: GET`, not a `PATCH /webhooks/{id}`
/// whose id is "events".
pub(in crate::sandbox) fn route(method: &str, path: &str) -> Route {
    let segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect();
    // The matching templates with the most literal segments so far.
    let mut most = 0;
    let mut best: Option<(&'static Operation, Params)> = None;
    let mut methods = Vec::new();
    for (template, op) in templates() {
        if template.len() != segments.len() {
            continue;
        }
        let mut literals = 0;
        let mut params = Vec::new();
        let matched = template.iter().zip(&segments).all(|(t, s)| match t {
            Segment::Literal(l) => {
                literals += 1;
                l == s
            }
            Segment::Param(name) => {
                params.push((*name, s.clone()));
                true
            }
        });
        if !matched || literals < most {
            continue;
        }
        if literals > most {
            most = literals;
            best = None;
            methods.clear();
        }
        methods.push(op.method.as_str());
        if op.method.as_str() == method {
            best = Some((op, params));
        }
    }
    match best {
        Some((op, params)) => Route::Operation(op, params),
        None if !methods.is_empty() => {
            methods.sort_unstable();
            methods.dedup();
            Route::WrongMethod(methods)
        }
        None => Route::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(method: &str, path: &str) -> String {
        match route(method, path) {
            Route::Operation(op, params) => format!("{} {params:?}", op.id),
            Route::WrongMethod(m) => format!("405 {m:?}"),
            Route::NotFound => "404".into(),
        }
    }

    #[test]
    fn literals_win_and_methods_are_listed() {
        assert_eq!(id("GET", "/webhooks/events"), "listWebhookEvents []");
        assert_eq!(id("GET", "/webhooks/abc"), r#"getWebhookEndpoint [("id", "abc")]"#);
        assert_eq!(
            id("PUT", "/bundles/b/videos/batch"),
            r#"batchConfigureBundleVideos [("id", "b")]"#
        );
        assert_eq!(
            id("PUT", "/bundles/b/videos/3"),
            r#"configureBundleVideo [("id", "b"), ("position", "3")]"#
        );
        assert_eq!(id("DELETE", "/bundles"), r#"405 ["GET", "POST"]"#);
        assert_eq!(id("GET", "/nope"), "404");
        assert_eq!(id("GET", "/bundles/a%20b"), r#"getBundle [("id", "a b")]"#);
    }

    #[test]
    fn a_literal_route_decides_the_methods_of_its_path() {
        assert_eq!(id("PATCH", "/webhooks/events"), r#"405 ["GET"]"#);
        assert_eq!(id("PATCH", "/bundles/bulk"), r#"405 ["POST"]"#);
        assert_eq!(id("PUT", "/bundles/b/videos/import-csv"), r#"405 ["POST"]"#);
        assert_eq!(id("PATCH", "/webhooks/abc"), r#"updateWebhookEndpoint [("id", "abc")]"#);
    }
}
