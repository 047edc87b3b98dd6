//! `tokportal login`, profiles and `auth`, run as a user would: the binary
//! in a config folder of its own, against an in-process sandbox on 127.0.0.1.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

/// The binary, with no key, base URL or profile from this process's
/// environment, its config folder `dir`, and `env` set.
fn tokportal(dir: &Path, args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tokportal"));
    command
        .args(args)
        .env_remove("TOKPORTAL_API_KEY")
        .env_remove("TOKPORTAL_BASE_URL")
        .env_remove("TOKPORTAL_PROFILE")
        .env_remove("TOKPORTAL_NO_KEYRING")
        .env("TOKPORTAL_CONFIG_DIR", dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("the binary runs");
    if let Some(text) = stdin {
        child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The sandbox names each key's account `sandbox key <fingerprint>`: which
/// key a call used.
fn key_name(out: &Output) -> String {
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    v["data"]["api_key"]["name"].as_str().unwrap_or("").to_owned()
}

fn sandbox() -> (tokio::runtime::Runtime, tokportal::sandbox::Sandbox) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let sandbox = runtime.block_on(tokportal::sandbox::Sandbox::start()).unwrap();
    (runtime, sandbox)
}

#[test]
fn login_keeps_a_key_in_a_0600_file_where_no_keyring_is_usable() {
    let (_rt, sandbox) = sandbox();
    let url = sandbox.url().to_string();
    let dir = tempfile::tempdir().unwrap();
    let no_keyring = [("TOKPORTAL_NO_KEYRING", "1")];
    let out = tokportal(
        dir.path(),
        &["login", "--profile", "sandbox", "--base-url", &url, "--with-key"],
        &no_keyring,
        Some("sk_test_profile_one\n"),
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let file = dir.path().join("credentials.toml");
    assert!(
        stderr.contains("warning: no OS keyring is usable here") && stderr.contains(&file.display().to_string()),
        "the warning names the file: {stderr}"
    );
    assert!(
        stderr.contains("developer@sandbox.tokportal.test (plan sandbox, 1000 credits)"),
        "{stderr}"
    );
    assert!(
        !stdout.contains("sk_test") && !stderr.contains("sk_test"),
        "{stdout}{stderr}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let config = std::fs::read_to_string(dir.path().join("profiles.toml")).unwrap();
    assert!(!config.contains("sk_test"), "profiles.toml holds no key: {config}");

    // The profile serves a call: its key and its base URL.
    let profile = [("TOKPORTAL_PROFILE", "sandbox")];
    let me = tokportal(dir.path(), &["get-current-user"], &profile, None);
    assert!(me.status.success(), "{}", text(&me).1);
    let first = key_name(&me);
    assert!(first.starts_with("sandbox key "), "{first}");
    let flagged = tokportal(dir.path(), &["--profile", "sandbox", "get-current-user"], &[], None);
    assert_eq!(
        key_name(&flagged),
        first,
        "--profile selects it as TOKPORTAL_PROFILE does"
    );

    // auth status: the profile, where the key is kept, the account; never the key.
    let status = tokportal(dir.path(), &["--profile", "sandbox", "auth", "status"], &[], None);
    let (stdout, stderr) = text(&status);
    assert!(status.status.success(), "{stderr}");
    assert!(stdout.contains("Profile:  sandbox"), "{stdout}");
    assert!(stdout.contains(&format!("API:      {url}")), "{stdout}");
    assert!(stdout.contains("credentials.toml (a file, mode 0600)"), "{stdout}");
    assert!(stdout.contains("Status:   the key works"), "{stdout}");
    assert!(
        !stdout.contains("sk_test") && !stderr.contains("sk_test"),
        "{stdout}{stderr}"
    );
    // -vvv shows headers and bodies: the stored key stays redacted.
    let verbose = tokportal(
        dir.path(),
        &["--profile", "sandbox", "get-current-user", "-vvv"],
        &[],
        None,
    );
    let (_, stderr) = text(&verbose);
    assert!(stderr.contains("redacted"), "{stderr}");
    assert!(!stderr.contains("sk_test_profile_one"), "{stderr}");
    // auth token: the key, for a script.
    let token = tokportal(dir.path(), &["--profile", "sandbox", "auth", "token"], &[], None);
    assert_eq!(text(&token).0.trim(), "sk_test_profile_one");

    // logout: forgotten, and a call without a key exits 3 naming login.
    let out = tokportal(dir.path(), &["logout", "--profile", "sandbox"], &[], None);
    assert!(out.status.success(), "{}", text(&out).1);
    assert!(!std::fs::read_to_string(&file).unwrap().contains("sk_test"));
    let out = tokportal(dir.path(), &["--base-url", &url, "get-current-user"], &profile, None);
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out).1.contains("tokportal login"), "{}", text(&out).1);
    let out = tokportal(dir.path(), &["logout", "--profile", "sandbox"], &[], None);
    assert_eq!(out.status.code(), Some(2), "no such profile any more");
}

/// `--api-key`/`--base-url`, then `TOKPORTAL_API_KEY`/`TOKPORTAL_BASE_URL`,
/// then the profile, then the defaults.
#[test]
fn flags_then_the_environment_then_the_profile() {
    let (rt, sandbox) = sandbox();
    let url = sandbox.url().to_string();
    let dir = tempfile::tempdir().unwrap();
    let out = tokportal(
        dir.path(),
        &["login", "--base-url", &url, "--with-key", "--insecure-storage"],
        &[],
        Some("sk_test_from_profile"),
    );
    let (_, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        !stderr.contains("warning"),
        "--insecure-storage asked for the file: {stderr}"
    );
    let name = |args: &[&str], env: &[(&str, &str)]| key_name(&tokportal(dir.path(), args, env, None));
    let from_profile = name(&["get-current-user"], &[]);
    let from_env = name(&["get-current-user"], &[("TOKPORTAL_API_KEY", "sk_test_from_env")]);
    let from_flag = name(
        &["get-current-user", "--api-key", "sk_test_from_flag"],
        &[("TOKPORTAL_API_KEY", "sk_test_from_env")],
    );
    assert!(
        from_profile.starts_with("sandbox key "),
        "the default profile: {from_profile}"
    );
    assert!(
        from_env.starts_with("sandbox key ") && from_env != from_profile,
        "{from_env}"
    );
    assert!(from_flag.starts_with("sandbox key ") && from_flag != from_env && from_flag != from_profile);
    let status = tokportal(
        dir.path(),
        &["auth", "status"],
        &[("TOKPORTAL_API_KEY", "sk_test_from_env")],
        None,
    );
    assert!(
        text(&status)
            .0
            .contains("Key:      from $TOKPORTAL_API_KEY (it overrides the profile)"),
        "{}",
        text(&status).0
    );
    // The environment's base URL over the profile's, a flag's over both:
    // a server there that hangs up on its one request, and then is gone.
    let elsewhere = rt.block_on(common::Scripted::start(vec![common::Reply::Drop]));
    let out = tokportal(
        dir.path(),
        &["get-current-user", "--no-retry"],
        &[("TOKPORTAL_BASE_URL", &elsewhere.base_url)],
        None,
    );
    assert_eq!(out.status.code(), Some(4), "{}", text(&out).1);
    let sent = elsewhere.requests();
    assert_eq!(sent.len(), 1, "sent to the environment's base URL");
    assert_eq!(sent[0].target, "/api/ext/me");
    let out = tokportal(
        dir.path(),
        &["get-current-user", "--base-url", &url],
        &[("TOKPORTAL_BASE_URL", &elsewhere.base_url)],
        None,
    );
    assert!(out.status.success(), "{}", text(&out).1);
    assert_eq!(
        elsewhere.requests().len(),
        1,
        "the flag's base URL, not the environment's"
    );
}

#[test]
fn a_key_that_does_not_work_is_not_kept() {
    let (_rt, sandbox) = sandbox();
    let url = sandbox.url().to_string();
    let dir = tempfile::tempdir().unwrap();
    let out = tokportal(
        dir.path(),
        &["login", "--base-url", &url, "--with-key"],
        &[("TOKPORTAL_NO_KEYRING", "1")],
        Some("not_a_key"),
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out).1);
    assert!(!text(&out).1.contains("not_a_key"), "{}", text(&out).1);
    assert!(!dir.path().join("credentials.toml").exists());
    let out = tokportal(dir.path(), &["login", "--base-url", &url], &[], None);
    assert_eq!(out.status.code(), Some(2), "no terminal, no --with-key");
    assert!(text(&out).1.contains("--with-key"), "{}", text(&out).1);
}

/// With a keyring (the kernel's keyutils, in a session keyring of the
/// test's own, as `keyctl session -` makes one), the key is kept there and
/// not in any file.
#[test]
fn login_keeps_a_key_in_the_keyring() {
    let Some(keyctl) = common::required_program("keyctl", "apt-get install keyutils") else {
        return;
    };
    let (_rt, sandbox) = sandbox();
    let url = sandbox.url().to_string();
    let dir = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_tokportal");
    let script = format!(
        "echo sk_test_in_keyring | '{bin}' login --profile kr --base-url '{url}' --with-key && \
         '{bin}' --profile kr auth status && '{bin}' --profile kr get-current-user"
    );
    let out = Command::new(keyctl)
        .args(["session", "-", "sh", "-c", &script])
        .env_remove("TOKPORTAL_API_KEY")
        .env_remove("TOKPORTAL_BASE_URL")
        .env_remove("TOKPORTAL_NO_KEYRING")
        .env("TOKPORTAL_CONFIG_DIR", dir.path())
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stderr.contains("key kept in the OS keyring"), "{stderr}");
    assert!(stdout.contains("from the profile, kept in the OS keyring"), "{stdout}");
    assert!(stdout.contains("\"api_key\""), "the call went through: {stdout}");
    assert!(!dir.path().join("credentials.toml").exists(), "no file");
    assert!(!stdout.contains("sk_test_in_keyring") && !stderr.contains("sk_test_in_keyring"));
}

/// `tokportal-mcp` over stdio, with no key in its environment, uses the
/// profile's key and base URL (`TOKPORTAL_PROFILE`).
#[test]
fn the_mcp_server_over_stdio_reads_the_profile() {
    use std::io::{BufRead, BufReader};
    let (_rt, sandbox) = sandbox();
    let url = sandbox.url().to_string();
    let dir = tempfile::tempdir().unwrap();
    let out = tokportal(
        dir.path(),
        &[
            "login",
            "--profile",
            "agent",
            "--base-url",
            &url,
            "--with-key",
            "--insecure-storage",
        ],
        &[],
        Some("sk_test_for_the_agent"),
    );
    assert!(out.status.success(), "{}", text(&out).1);
    let expected = key_name(&tokportal(
        dir.path(),
        &["--profile", "agent", "get-current-user"],
        &[],
        None,
    ));
    let mut child = Command::new(env!("CARGO_BIN_EXE_tokportal-mcp"))
        .env_remove("TOKPORTAL_API_KEY")
        .env_remove("TOKPORTAL_BASE_URL")
        .env("TOKPORTAL_CONFIG_DIR", dir.path())
        .env("TOKPORTAL_PROFILE", "agent")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for message in [
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"test","version":"1"}}}"#,
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"getCurrentUser","arguments":{}}}"#,
    ] {
        writeln!(stdin, "{message}").unwrap();
    }
    let mut answer = Value::Null;
    for line in lines.by_ref().map_while(Result::ok) {
        let message: Value = serde_json::from_str(&line).unwrap();
        if message["id"] == 2 {
            answer = message;
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let text = answer["result"]["content"][0]["text"].as_str().unwrap_or_default();
    let body: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    let name = body["data"]["api_key"]["name"]
        .as_str()
        .or(body["api_key"]["name"].as_str());
    assert_eq!(name, Some(expected.as_str()), "{answer}");
}
