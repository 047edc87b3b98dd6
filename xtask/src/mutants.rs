//! `cargo xtask mutants [--in-diff DIFF]`: mutation testing of the
//! money-and-security core.
//!
//! Runs cargo-mutants over the set `.cargo/mutants.toml` names (the five
//! files, the features and the test selection live there, so that this
//! command and `.ci/run`'s in-diff step test the same mutants the same way),
//! then reads its `outcomes.json` and prints the counts. Fails when a viable
//! mutant survives (missed) or a mutant's tests ran out of time, naming
//! each. `--in-diff DIFF` tests only the mutants on the lines a diff
//! changes; what follows `--` goes to cargo-mutants as it is.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// Where `.cargo/mutants.toml`'s `output` puts cargo-mutants' results.
const OUTCOMES: &str = "target/mutants/mutants.out/outcomes.json";

/// Runs the mutants (all of them, or those in `in_diff`) and says how they
/// came out.
pub fn run(root: &Path, in_diff: Option<&str>, extra: &[&str]) -> Result<String, String> {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command
        .current_dir(root)
        .args(["mutants", "--jobs", "1", "--no-shuffle"]);
    if let Some(diff) = in_diff {
        command.args(["--in-diff", diff]);
    }
    command.args(extra);
    // A previous run's outcomes must not stand for this one's.
    let _ = std::fs::remove_file(root.join(OUTCOMES));
    let status = command.status().map_err(|e| {
        format!("cannot run cargo mutants ({e}): install it with `cargo install cargo-mutants --locked`")
    })?;
    let text = std::fs::read_to_string(root.join(OUTCOMES));
    let outcomes: Value = match text {
        Ok(text) => serde_json::from_str(&text).map_err(|e| format!("{OUTCOMES} is not JSON: {e}"))?,
        // cargo-mutants found nothing to test in the diff: it writes no outcomes.
        Err(_) if status.success() => return Ok("mutants: none to test".into()),
        Err(e) => return Err(format!("cargo mutants failed ({status}) and wrote no {OUTCOMES}: {e}")),
    };
    let count = |name: &str| outcomes.get(name).and_then(Value::as_u64).unwrap_or(0);
    let survivors = named(&outcomes, &["MissedMutant", "Timeout"]);
    let summary = format!(
        "mutants: {} in all: {} caught, {} missed, {} unviable, {} timeouts",
        count("total_mutants"),
        count("caught"),
        count("missed"),
        count("unviable"),
        count("timeout"),
    );
    if !survivors.is_empty() {
        return Err(format!(
            "{summary}\nnot killed (kill each with a test, or list an equivalent one in .cargo/mutants.toml with why):\n{}",
            survivors.join("\n")
        ));
    }
    if !status.success() {
        return Err(format!("{summary}\ncargo mutants failed: {status}"));
    }
    Ok(summary)
}

/// The mutants whose outcome is one of `summaries`, as cargo-mutants names
/// them (`file:line:col: replace ...`).
fn named(outcomes: &Value, summaries: &[&str]) -> Vec<String> {
    let Some(list) = outcomes.get("outcomes").and_then(Value::as_array) else {
        return Vec::new();
    };
    list.iter()
        .filter(|o| {
            o.get("summary")
                .and_then(Value::as_str)
                .is_some_and(|s| summaries.contains(&s))
        })
        .map(|o| {
            let mutant = &o["scenario"]["Mutant"];
            let file = mutant["file"].as_str().unwrap_or("?");
            let line = mutant["span"]["start"]["line"].as_u64().unwrap_or(0);
            let name = mutant["name"]
                .as_str()
                .or_else(|| mutant["replacement"].as_str())
                .unwrap_or("?");
            format!("  {file}:{line}: {name} ({})", o["summary"].as_str().unwrap_or("?"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn survivors_are_named() {
        let outcomes = serde_json::json!({
            "outcomes": [
                {"scenario": "Baseline", "summary": "Success"},
                {"scenario": {"Mutant": {"file": "src/idempotency.rs", "span": {"start": {"line": 20}},
                    "name": "replace validate_request_id -> Result<(), String> with Ok(())"}}, "summary": "MissedMutant"},
                {"scenario": {"Mutant": {"file": "src/webhooks.rs", "span": {"start": {"line": 9}},
                    "name": "replace now -> i64 with 0"}}, "summary": "CaughtMutant"}
            ]
        });
        assert_eq!(
            named(&outcomes, &["MissedMutant", "Timeout"]),
            vec![
                "  src/idempotency.rs:20: replace validate_request_id -> Result<(), String> with Ok(()) (MissedMutant)"
            ]
        );
    }
}
