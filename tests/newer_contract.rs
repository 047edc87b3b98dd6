//! A newer contract, vendored the documented way (`cargo xtask regen
//! --spec`), is served at once: a copy of this repository gets a contract with
//! one more operation and one more field, is built in its own target folder
//! (a copy must not share `OUT_DIR`), and its `tokportal sandbox` routes,
//! checks and answers the new operation from its success schema, with no hand
//! edit, while its CLI calls it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Value, json};

const UUID: &str = "9f3a7b2e-1c4d-4e8f-a5b6-7d9e0f1a2b3c";

/// Copies the repository (everything but build output and VCS data).
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let name = entry.file_name();
        if [".git", "target", "node_modules"].iter().any(|n| name == *n) {
            continue;
        }
        let (source, dest) = (entry.path(), to.join(&name));
        if source.is_dir() {
            copy_tree(&source, &dest);
        } else {
            std::fs::copy(&source, &dest).unwrap();
        }
    }
}

/// The vendored contract with a new operation (`getAccountWarming`, `GET
/// /accounts/{id}/warming`, made from `getAccount`) and a new field on
/// `createBundle`'s body (`wants_advanced_warming`).
fn newer_contract(spec: &Path) -> Value {
    let text = std::fs::read_to_string(spec).unwrap();
    let mut contract: Value = serde_norway::from_str(&text).unwrap();
    let mut get = contract["paths"]["/accounts/{id}"]["get"].clone();
    get["operationId"] = json!("getAccountWarming");
    get["summary"] = json!("Get an account's warming progress");
    // A typed answer, as the contract types them: a named component schema.
    get["responses"]["200"]["content"]["application/json"]["schema"] =
        json!({"$ref": "#/components/schemas/AccountWarmingResponse"});
    contract["components"]["schemas"]["AccountWarmingResponse"] = json!({
        "type": "object",
        "required": ["data"],
        "properties": {"data": {
            "type": "object",
            "required": ["account_id", "warming_level"],
            "properties": {
                "account_id": {"type": "string", "format": "uuid"},
                "warming_level": {"type": "integer", "minimum": 0, "maximum": 5},
                "advanced": {"type": "boolean"}
            }
        }}
    });
    contract["paths"]["/accounts/{id}/warming"] = json!({"get": get});
    let body = &mut contract["paths"]["/bundles"]["post"]["requestBody"]["content"]["application/json"]["schema"];
    let target = match body.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let name = reference.rsplit('/').next().unwrap().to_owned();
            &mut contract["components"]["schemas"][name]
        }
        None => body,
    };
    target["properties"]["wants_advanced_warming"] = json!({"type": "boolean"});
    contract
}

fn run(command: &mut Command) -> std::process::Output {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn a_newer_contract_is_routed_checked_and_answered_with_no_hand_edit() {
    let work = tempfile::tempdir().unwrap();
    let repo = work.path().join("repo");
    copy_tree(Path::new(env!("CARGO_MANIFEST_DIR")), &repo);
    let newer = work.path().join("newer.yaml");
    let contract = newer_contract(&repo.join("spec/openapi.yaml"));
    std::fs::write(&newer, serde_norway::to_string(&contract).unwrap()).unwrap();
    let target: PathBuf = work.path().join("target");
    let cargo = || {
        let mut command = Command::new(env!("CARGO"));
        command
            .current_dir(&repo)
            .env("CARGO_TARGET_DIR", &target)
            .env_remove("RUSTFLAGS")
            .stdin(Stdio::null());
        command
    };
    // Vendored the documented way; the inventories follow.
    run(cargo().args(["xtask", "regen", "--spec"]).arg(&newer));
    let inventory = std::fs::read_to_string(repo.join("spec/operations.md")).unwrap();
    assert!(inventory.contains("`getAccountWarming`"), "the inventory lists it");
    run(cargo().args(["build", "--quiet", "--features", "cli", "--bin", "tokportal"]));
    let tokportal = target.join("debug").join("tokportal");

    // Its sandbox serves the new operation at once.
    let mut sandbox = Command::new(&tokportal)
        .args(["sandbox", "--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(sandbox.stdout.take().unwrap()), &mut line).unwrap();
    let url = line.trim().trim_start_matches("listening on ").to_owned();
    let cli = |args: &[&str]| {
        Command::new(&tokportal)
            .args(args)
            .env("TOKPORTAL_BASE_URL", &url)
            .env("TOKPORTAL_API_KEY", "sk_test_newer_contract")
            .output()
            .unwrap()
    };
    let answered = cli(&["get-account-warming", "--id", UUID]);
    let stdout = String::from_utf8_lossy(&answered.stdout);
    assert!(
        answered.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&answered.stderr)
    );
    let body: Value = serde_json::from_str(&stdout).unwrap();
    let level = body["data"]["warming_level"]
        .as_f64()
        .unwrap_or_else(|| panic!("a number from its schema: {body}"));
    assert!((0.0..=5.0).contains(&level) && level.fract() == 0.0, "{body}");
    // Checked: the CLI refuses a malformed id before sending, and the sandbox
    // answers the documented 404 for one sent anyway.
    let refused = cli(&["get-account-warming", "--id", "not-a-uuid"]);
    assert_eq!(refused.status.code(), Some(2));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let status = runtime.block_on(async {
        reqwest::Client::new()
            .get(format!("{url}/accounts/not-a-uuid/warming"))
            .header("x-api-key", "sk_test_newer_contract")
            .send()
            .await
            .unwrap()
            .status()
    });
    assert_eq!(status, 404);
    // The new field is part of the contract now: accepted by the strict sandbox.
    let created = cli(&[
        "create-bundle",
        "--body",
        r#"{"bundle_type": "account_only", "country": "USA", "wants_advanced_warming": true}"#,
    ]);
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    let _ = sandbox.kill();
    let _ = sandbox.wait();
}
