//! Toolsets: the operation table's tags, kebab-cased (`bundles`,
//! `account-configuration`, ...), and the selection of exposed operations
//! from `--toolsets`, `--tools` and `--read-only`. Derived from the table, so
//! a new spec brings its toolsets with it.

use std::collections::BTreeSet;

use crate::operations::{OPERATIONS, Operation};

/// The name of the toolset that holds every operation.
pub const ALL: &str = "all";

/// The toolset name of a tag: `Account Configuration` → `account-configuration`.
pub fn toolset_name(tag: &str) -> String {
    tag.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
        .collect::<Vec<_>>()
        .join("-")
}

/// Every toolset name, in the table's order.
pub fn toolset_names() -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for op in OPERATIONS {
        let name = toolset_name(op.tag);
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

/// The operations a server exposes.
#[derive(Debug, Clone)]
pub struct Selection {
    ops: Vec<&'static Operation>,
}

impl Selection {
    /// Every operation.
    pub fn all() -> Self {
        Self {
            ops: OPERATIONS.iter().collect(),
        }
    }

    /// The operations of `toolsets` and `tools` together (every operation when
    /// both are empty), less those that change something when `read_only`.
    /// An unknown name is an error that lists the known ones.
    pub fn new(toolsets: &[String], tools: &[String], read_only: bool) -> Result<Self, String> {
        let known = toolset_names();
        for name in toolsets {
            if name != ALL && !known.contains(name) {
                return Err(format!(
                    "unknown toolset `{name}`; the toolsets are {ALL}, {}",
                    known.join(", ")
                ));
            }
        }
        for id in tools {
            if crate::operations::find(id).is_none() {
                return Err(format!("unknown tool `{id}`: not an operationId of the contract"));
            }
        }
        let everything = (toolsets.is_empty() && tools.is_empty()) || toolsets.iter().any(|t| t == ALL);
        let wanted: BTreeSet<&str> = tools.iter().map(String::as_str).collect();
        let ops = OPERATIONS
            .iter()
            .filter(|op| everything || toolsets.contains(&toolset_name(op.tag)) || wanted.contains(op.id))
            .filter(|op| !read_only || op.method.is_read_only())
            .collect();
        Ok(Self { ops })
    }

    /// The exposed operations, in the table's order.
    pub fn operations(&self) -> &[&'static Operation] {
        &self.ops
    }

    /// Whether `op` is exposed.
    pub fn contains(&self, op: &Operation) -> bool {
        self.ops.iter().any(|o| o.id == op.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn toolsets_are_the_kebab_cased_tags() {
        assert_eq!(toolset_name("Account Configuration"), "account-configuration");
        let all = toolset_names();
        assert!(all.contains(&"bundles".to_owned()) && all.contains(&"analytics".to_owned()));
        let covered: usize = all
            .iter()
            .map(|t| Selection::new(&names(&[t]), &[], false).unwrap().operations().len())
            .sum();
        assert_eq!(covered, OPERATIONS.len(), "every operation is in exactly one toolset");
    }

    #[test]
    fn selection_by_toolset_tool_and_read_only() {
        assert_eq!(Selection::new(&[], &[], false).unwrap().operations().len(), 78);
        assert_eq!(
            Selection::new(&names(&["all"]), &[], false).unwrap().operations().len(),
            78
        );
        let bundles = Selection::new(&names(&["bundles"]), &[], false).unwrap();
        assert!(bundles.operations().iter().all(|op| op.tag == "Bundles"));
        let read_only = Selection::new(&[], &[], true).unwrap();
        assert!(read_only.operations().iter().all(|op| op.method.is_read_only()));
        assert!(!read_only.operations().is_empty());
        let picked = Selection::new(&names(&["credits"]), &names(&["createBundle"]), true).unwrap();
        let ids: Vec<&str> = picked.operations().iter().map(|op| op.id).collect();
        assert!(
            ids.contains(&"getCreditBalance") && !ids.contains(&"createBundle"),
            "{ids:?}"
        );
        assert!(
            Selection::new(&names(&["nope"]), &[], false)
                .unwrap_err()
                .contains("bundles")
        );
        assert!(Selection::new(&[], &names(&["noSuchOp"]), false).is_err());
    }
}
