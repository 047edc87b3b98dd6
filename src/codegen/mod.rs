//! Build-time code shared by `build.rs`, `cargo xtask` and the unit tests.
//!
//! Hand-written. It reads the vendored contract as JSON (`serde_json::Value`)
//! and knows nothing of progenitor: [`lower`] rewrites OpenAPI 3.1 to 3.0,
//! [`prepare`] shapes the document that progenitor sees, and [`model`]
//! extracts the operation table that the SDK, the CLI and the MCP server share.
#![allow(dead_code)] // Each includer (build.rs, xtask, tests) uses a different part.

pub mod lower;
pub mod model;
pub mod prepare;

use std::fmt;

/// A problem with the spec, located by a JSON pointer (and an operation where known).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    /// JSON pointer into the document, e.g. `/paths/~1me/get/parameters/0`.
    pub pointer: String,
    /// What is wrong, in one sentence.
    pub message: String,
}

impl SpecError {
    /// Creates an error at `pointer`.
    pub fn new(pointer: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            pointer: pointer.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.pointer.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "at {}: {}", self.pointer, self.message)
        }
    }
}

/// Escapes one JSON pointer segment.
pub fn pointer_segment(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

/// Parses the YAML text of a spec into JSON.
pub fn parse_yaml(text: &str) -> Result<serde_json::Value, SpecError> {
    serde_norway::from_str::<serde_json::Value>(text).map_err(|e| SpecError::new("", format!("not valid YAML: {e}")))
}

/// `getCurrentUser` -> `get_current_user` (the Rust method name progenitor gives).
pub fn snake_case(id: &str) -> String {
    split_words(id).join("_")
}

/// `getCurrentUser` -> `get-current-user` (the CLI command name).
pub fn kebab_case(id: &str) -> String {
    split_words(id).join("-")
}

/// Splits camelCase / PascalCase / snake_case / kebab-case into lower-case words.
fn split_words(id: &str) -> Vec<String> {
    let chars: Vec<char> = id.chars().collect();
    let mut words = Vec::new();
    let mut current = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c == '_' || c == '-' || c == ' ' {
            if !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
            continue;
        }
        let boundary = c.is_uppercase()
            && !current.is_empty()
            && (chars[i - 1].is_lowercase()
                || chars[i - 1].is_ascii_digit()
                || chars.get(i + 1).is_some_and(|n| n.is_lowercase()));
        if boundary {
            words.push(std::mem::take(&mut current));
        }
        current.extend(c.to_lowercase());
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(snake_case("getCurrentUser"), "get_current_user");
        assert_eq!(kebab_case("importBundleVideosCsv"), "import-bundle-videos-csv");
        assert_eq!(kebab_case("exportAnalyticsReportHtml"), "export-analytics-report-html");
        assert_eq!(snake_case("getHTTPStatus"), "get_http_status");
        assert_eq!(snake_case("per_page"), "per_page");
    }

    #[test]
    fn spec_error_display_names_pointer() {
        let e = SpecError::new("/paths/~1me", "bad");
        assert_eq!(e.to_string(), "at /paths/~1me: bad");
    }
}
