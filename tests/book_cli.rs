//! The book's CLI pages, run: every `$ ` line of a ```` ```console ```` block
//! in `docs/src/cli/*.md` is run with the `tokportal` binary against a
//! sandbox started here, and its output (stdout and stderr, in order) and
//! exit status compared with the page, by trycmd, as clap and cargo test
//! their documentation. `[..]` in a page stands for what changes from run to
//! run (ids, times, balances); `? 2` for an expected exit status.
//!
//! After a deliberate change of output:
//! `TRYCMD=overwrite cargo test --features cli,sandbox --test book_cli`.

use std::path::Path;

use tokportal::sandbox::{Sandbox, Verify};

/// The generated reference holds help text, not commands to run.
const REFERENCE: &str = "docs/src/cli/reference.md";

#[test]
fn the_cli_pages_commands_print_what_the_pages_say() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let commands = console_lines(&root.join("docs/src/cli"));
    // A page whose examples were lost, or fenced so trycmd skips them, would
    // pass with nothing run.
    assert!(
        commands >= 5,
        "the CLI pages have {commands} `$` lines in console blocks; expected at least 5"
    );

    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let sandbox = runtime.block_on(Sandbox::start()).expect("the sandbox starts");
    let config = tempfile::tempdir().expect("a config folder");
    let key = "sk_test_book";

    trycmd::TestCases::new()
        .register_bin("tokportal", Path::new(env!("CARGO_BIN_EXE_tokportal")))
        .env("TOKPORTAL_BASE_URL", sandbox.url())
        .env("TOKPORTAL_API_KEY", key)
        .env("TOKPORTAL_PROFILE", "default")
        .env("TOKPORTAL_CONFIG_DIR", config.path().to_string_lossy())
        .env("TOKPORTAL_NO_KEYRING", "1")
        .env("NO_COLOR", "1")
        .env("CI", "true")
        .case(root.join("docs/src/cli/*.md"))
        .skip(root.join(REFERENCE))
        .run();

    // The pages' calls reached this sandbox, under the key set above.
    runtime
        .block_on(sandbox.verify(Verify::operation("createBundle").key(key).at_least(1)))
        .expect("the pages' create-bundle reached the sandbox");
}

/// How many `$ ` lines the console blocks of the pages in `dir` hold.
fn console_lines(dir: &Path) -> usize {
    let mut count = 0;
    for entry in std::fs::read_dir(dir).expect("docs/src/cli") {
        let path = entry.expect("an entry").path();
        if path.extension().is_none_or(|e| e != "md") || path.ends_with("reference.md") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("a page");
        let mut in_console = false;
        for line in text.lines() {
            if line.starts_with("```") {
                in_console = !in_console && line.trim_start_matches('`').starts_with("console");
            } else if in_console && line.starts_with("$ ") {
                count += 1;
            }
        }
    }
    count
}
