//! What the contract does not say about an operation's effects, reviewed by
//! hand in one place: which operations destroy or undo something, and which
//! spend credits. The MCP tool annotations and descriptions come from here.
//!
//! The tests below tie the table to the spec: every id must exist, and every
//! operation that documents a 402 (insufficient credits) must be listed as
//! spending credits, so a new contract that adds one fails until reviewed.

use super::{HttpMethod, Operation};

/// Operations that undo or cancel something, besides every `DELETE`.
const DESTRUCTIVE: &[&str] = &["unpublishBundle", "resetBundleVideo", "unscheduleBundleVideo"];

/// Operations that spend credits, and what is charged. The prices are the
/// live credit-cost table's (`getCreditCosts`); the contract does not list them.
const SPENDS_CREDITS: &[(&str, &str)] = &[
    ("createBundle", "the bundle's accounts, videos, edits and options"),
    ("createBundlesBulk", "every bundle created"),
    ("publishBundle", "publishing the bundle"),
    ("addVideoSlots", "each video slot added"),
    ("addEditSlots", "each edit slot added"),
    ("retrieveAccountVerificationCode", "each code retrieved"),
    ("revealAccountCredentials", "revealing the credentials"),
    ("createCommentTasks", "each comment task"),
];

/// The reviewed hints of one operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hints {
    /// It may destroy or undo something (a `DELETE`, an unpublish, a reset, a cancel).
    pub destructive: bool,
    /// What it charges credits for, when it spends any.
    pub spends_credits: Option<&'static str>,
}

impl Operation {
    /// The reviewed hints of this operation.
    ///
    /// ```
    /// let op = tokportal::operations::find("unpublishBundle").unwrap();
    /// assert!(op.hints().destructive);
    /// let op = tokportal::operations::find("createBundle").unwrap();
    /// assert!(op.hints().spends_credits.is_some());
    /// ```
    pub fn hints(&self) -> Hints {
        Hints {
            destructive: self.method == HttpMethod::Delete || DESTRUCTIVE.contains(&self.id),
            spends_credits: SPENDS_CREDITS
                .iter()
                .find(|(id, _)| *id == self.id)
                .map(|(_, what)| *what),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operations::{OPERATIONS, find};

    #[test]
    fn every_id_in_the_table_is_an_operation() {
        for id in DESTRUCTIVE.iter().chain(SPENDS_CREDITS.iter().map(|(id, _)| id)) {
            let op = find(id).unwrap_or_else(|| panic!("{id} is not an operation of the contract"));
            assert!(!op.method.is_read_only(), "{id} changes nothing");
        }
    }

    #[test]
    fn every_operation_documenting_a_402_spends_credits() {
        // The spec read as YAML, whatever its quoting: every operation of
        // the table must be found in it, so that none is skipped unchecked.
        use serde_norway::Value;
        let spec: Value = serde_norway::from_str(include_str!("../../spec/openapi.yaml")).expect("the spec is YAML");
        let paths = spec["paths"].as_mapping().expect("the spec's paths");
        // `402` or `"402"`: a status code, quoted or not.
        let is_402 = |k: &Value| k.as_str() == Some("402") || k.as_u64() == Some(402);
        let mut documented = std::collections::BTreeMap::new();
        for item in paths.values() {
            for operation in item.as_mapping().into_iter().flat_map(|o| o.values()) {
                if let Some(id) = operation.get("operationId").and_then(Value::as_str) {
                    let a_402 = operation
                        .get("responses")
                        .and_then(Value::as_mapping)
                        .is_some_and(|r| r.keys().any(is_402));
                    assert!(documented.insert(id.to_owned(), a_402).is_none(), "{id} twice");
                }
            }
        }
        let mut checked = 0;
        let mut with_402 = 0;
        for op in OPERATIONS {
            let a_402 = *documented
                .get(op.id)
                .unwrap_or_else(|| panic!("{} is not found in the spec", op.id));
            if a_402 {
                assert!(op.hints().spends_credits.is_some(), "{} documents a 402", op.id);
                with_402 += 1;
            }
            checked += 1;
        }
        assert_eq!(checked, documented.len(), "every operation of the spec was checked");
        assert!(with_402 > 0, "no operation documents a 402: the spec was not read");
    }
}
