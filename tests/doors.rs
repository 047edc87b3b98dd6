//! The sandbox's doors (issue 41), each tried as an attacker or a careless
//! user would: a snapshot restored from what `GET` gave, a fixture reading
//! a variable it was not given, state files others can read, a crafted
//! state file, a rebinding `Host` on the API routes, an unknown path's key,
//! and TokPortal's own code for an idempotency key on a secret-bearing
//! operation. Everything runs on 127.0.0.1.
#![cfg(feature = "sandbox")]

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokportal::sandbox::{Sandbox, SandboxOptions};

const KEY: &str = "sk_test_doors";

/// The journal's name of a key: the first 8 hex digits of its SHA-256.
fn fingerprint(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))[..8].to_owned()
}

/// A `tokportal sandbox` process; killed when dropped.
struct Running {
    child: Child,
    url: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `tokportal sandbox ARGS` under `umask 022` (as most shells have it),
/// without the caller's TokPortal settings.
fn sandbox_command(args: &[&str]) -> Command {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg("umask 022 && exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_tokportal"))
        .arg("sandbox")
        .args(["--port", "0"])
        .args(args)
        .env_remove("TOKPORTAL_BASE_URL")
        .env_remove("TOKPORTAL_API_KEY")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// How a sandbox process began: listening, or refused with its stderr.
enum Began {
    Listening(Running),
    Refused(String),
}

/// Spawns `command` and reads its first line: `listening on URL`, or the
/// end of its output when it refused to start.
fn begin(mut command: Command) -> Began {
    let mut child = command.spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    if let Some(url) = line.trim().strip_prefix("listening on ") {
        return Began::Listening(Running {
            url: url.to_owned(),
            child,
        });
    }
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(2), "{stderr}");
    Began::Refused(stderr)
}

fn listening(command: Command) -> Running {
    match begin(command) {
        Began::Listening(running) => running,
        Began::Refused(said) => panic!("the sandbox did not start: {said}"),
    }
}

fn refused(command: Command) -> String {
    match begin(command) {
        Began::Listening(running) => panic!("the sandbox started at {}", running.url),
        Began::Refused(said) => said,
    }
}

async fn send(method: reqwest::Method, url: String, key: Option<&str>, body: Option<Value>) -> (u16, Value) {
    let mut request = reqwest::Client::new().request(method, url);
    if let Some(key) = key {
        request = request.header("x-api-key", key);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let answer = request.send().await.unwrap();
    let status = answer.status().as_u16();
    (status, answer.json().await.unwrap_or(Value::Null))
}

/// Door 1: what `GET /_sandbox/snapshot` answers (`{"data": {…}}`) is what
/// `POST /_sandbox/snapshot` restores, as the bare document is.
#[tokio::test]
async fn a_snapshot_restores_from_what_get_answered() {
    let sandbox = Sandbox::start().await.unwrap();
    let url = sandbox.url().to_owned();
    let (status, made) = send(
        reqwest::Method::POST,
        format!("{url}/bundles"),
        Some(KEY),
        Some(json!({"bundle_type": "account_only", "country": "USA"})),
    )
    .await;
    assert_eq!(status, 201, "{made}");
    let id = made["data"]["id"].as_str().unwrap().to_owned();
    let (status, saved) = send(reqwest::Method::GET, format!("{url}/_sandbox/snapshot"), None, None).await;
    assert_eq!(status, 200);
    assert!(saved["data"]["kind"].is_string(), "{saved}");
    for document in [saved.clone(), saved["data"].clone()] {
        let (status, _) = send(
            reqwest::Method::POST,
            format!("{url}/_sandbox/reset"),
            None,
            Some(json!({"all": true})),
        )
        .await;
        assert_eq!(status, 200);
        let (status, _) = send(reqwest::Method::GET, format!("{url}/bundles/{id}"), Some(KEY), None).await;
        assert_eq!(status, 404, "the reset kept the bundle");
        let (status, answer) = send(
            reqwest::Method::POST,
            format!("{url}/_sandbox/snapshot"),
            None,
            Some(document),
        )
        .await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["data"]["restored"], json!([fingerprint(KEY)]));
        let (status, bundle) = send(reqwest::Method::GET, format!("{url}/bundles/{id}"), Some(KEY), None).await;
        assert_eq!(status, 200, "{bundle}");
    }
    // An envelope around something else is still refused.
    let (status, answer) = send(
        reqwest::Method::POST,
        format!("{url}/_sandbox/snapshot"),
        None,
        Some(json!({"data": {"kind": "something-else"}})),
    )
    .await;
    assert_eq!(status, 400, "{answer}");
}

/// Door 2: a fixture reads only `TOKPORTAL_FIXTURE_*` variables; another
/// name is refused at start-up, naming it and never showing its value.
#[test]
fn a_fixture_reads_only_the_variables_it_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "s3cr3t-oauth-value-7f2c";
    let fixture = |name: &str| {
        let file = dir.path().join(format!("{name}.yaml"));
        std::fs::write(
            &file,
            format!(
                "key: sk_test_fixture_env\nsteps:\n  - name: launch\n    operation: createBundle\n    body: {{bundle_type: account_only, country: USA, external_ref: \"${{env:{name}}}\"}}\n"
            ),
        )
        .unwrap();
        file
    };
    let stolen = fixture("DOORS_OAUTH_SECRET");
    let mut command = sandbox_command(&["--fixtures", stolen.to_str().unwrap()]);
    command.env("DOORS_OAUTH_SECRET", secret);
    let said = refused(command);
    assert!(said.contains("DOORS_OAUTH_SECRET"), "{said}");
    assert!(said.contains("TOKPORTAL_FIXTURE_"), "{said}");
    assert!(!said.contains(secret), "{said}");

    // A name under TOKPORTAL_FIXTURE_ is read.
    let allowed = fixture("TOKPORTAL_FIXTURE_REF");
    let mut command = sandbox_command(&["--fixtures", allowed.to_str().unwrap()]);
    command.env("TOKPORTAL_FIXTURE_REF", "ref-from-env");
    let running = listening(command);
    let state = state_of(&running.url, "sk_test_fixture_env");
    assert!(state.contains("ref-from-env"), "{state}");
    drop(running);

    // Another name is read once `--fixture-env` names it.
    let mut command = sandbox_command(&[
        "--fixtures",
        stolen.to_str().unwrap(),
        "--fixture-env",
        "DOORS_OAUTH_SECRET",
    ]);
    command.env("DOORS_OAUTH_SECRET", "given-on-purpose");
    let running = listening(command);
    let state = state_of(&running.url, "sk_test_fixture_env");
    assert!(state.contains("given-on-purpose"), "{state}");
}

/// `GET /_sandbox/state` of one key, as text.
fn state_of(url: &str, key: &str) -> String {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (status, state) = send(
            reqwest::Method::GET,
            format!("{url}/_sandbox/state?key={}", fingerprint(key)),
            None,
            None,
        )
        .await;
        assert_eq!(status, 200, "{state}");
        state.to_string()
    })
}

fn post_bundle(url: &str, key: &str) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (status, made) = send(
            reqwest::Method::POST,
            format!("{url}/bundles"),
            Some(key),
            Some(json!({"bundle_type": "account_only", "country": "USA"})),
        )
        .await;
        assert_eq!(status, 201, "{made}");
    });
}

/// Door 3: a state file and its `-wal` and `-shm` are the user's alone
/// (0600), whatever the umask (022 here).
#[cfg(unix)]
#[test]
fn state_files_are_the_users_alone() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("state.db");
    let running = listening(sandbox_command(&["--state", file.to_str().unwrap()]));
    post_bundle(&running.url, KEY);
    for name in ["state.db", "state.db-wal", "state.db-shm"] {
        let mode = std::fs::metadata(dir.path().join(name)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{name} is {mode:o}");
    }
}

fn digest(file: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(file).unwrap()))
}

/// Door 4: a state file whose schema holds what the sandbox never makes (a
/// view, a trigger, a table or an index of its own) is refused, named, and
/// left byte for byte as it was.
#[test]
fn a_crafted_state_file_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base.db");
    {
        let running = listening(sandbox_command(&["--state", base.to_str().unwrap()]));
        post_bundle(&running.url, KEY);
    }
    {
        let conn = rusqlite::Connection::open(&base).unwrap();
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE); PRAGMA journal_mode = DELETE;")
            .unwrap();
    }
    // The untouched file still opens (the check refuses only what is foreign).
    drop(listening(sandbox_command(&["--state", base.to_str().unwrap()])));
    {
        let conn = rusqlite::Connection::open(&base).unwrap();
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE); PRAGMA journal_mode = DELETE;")
            .unwrap();
    }
    let crafted = [
        ("view.db", "CREATE VIEW everything AS SELECT * FROM keys;"),
        (
            "trigger.db",
            "CREATE TABLE loot (body TEXT); \
             CREATE TRIGGER steal AFTER INSERT ON bundles BEGIN INSERT INTO loot VALUES (new.body); END;",
        ),
        ("table.db", "CREATE TABLE notes (body TEXT);"),
        ("index.db", "CREATE INDEX bundles_by_body ON bundles (body);"),
    ];
    for (name, sql) in crafted {
        let file = dir.path().join(name);
        std::fs::copy(&base, &file).unwrap();
        {
            let conn = rusqlite::Connection::open(&file).unwrap();
            conn.execute_batch(sql).unwrap();
        }
        let before = digest(&file);
        let said = refused(sandbox_command(&["--state", file.to_str().unwrap()]));
        assert!(said.contains(name), "{said}");
        assert!(said.contains("not the sandbox's own"), "{said}");
        assert_eq!(digest(&file), before, "{name} was changed");
    }
}

/// Door 5: on loopback, every route refuses a `Host` that is not a
/// loopback name (DNS rebinding), with the sandbox's error envelope.
#[tokio::test]
async fn every_route_refuses_a_rebinding_host() {
    let sandbox = Sandbox::start().await.unwrap();
    let url = sandbox.url().to_owned();
    let http = reqwest::Client::new();
    for path in ["/api/ext/me", "/me", "/api/ext/no/such/path", "/_sandbox/health"] {
        let answer = http
            .get(format!("{url}{path}"))
            .header("host", "evil.example")
            .header("x-api-key", KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 403, "{path}");
        let body: Value = answer.json().await.unwrap();
        assert_eq!(body["error"]["code"], "FORBIDDEN", "{path}: {body}");
        let port = sandbox.addr().port();
        let answer = http
            .get(format!("{url}{path}"))
            .header("host", format!("localhost:{port}"))
            .header("x-api-key", KEY)
            .send()
            .await
            .unwrap();
        assert_ne!(answer.status(), 403, "{path}");
    }
}

/// Door 6: a request to a path the contract does not know is journaled
/// with its key's fingerprint, so filtering by key shows it.
#[tokio::test]
async fn an_unknown_path_keeps_its_key_in_the_journal() {
    let sandbox = Sandbox::start().await.unwrap();
    let url = sandbox.url().to_owned();
    let (status, _) = send(reqwest::Method::GET, format!("{url}/no/such/path"), Some(KEY), None).await;
    assert_eq!(status, 404);
    let (status, listed) = send(
        reqwest::Method::GET,
        format!("{url}/_sandbox/requests?key={}", fingerprint(KEY)),
        None,
        None,
    )
    .await;
    assert_eq!(status, 200, "{listed}");
    let entries = listed["data"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{listed}");
    assert_eq!(entries[0]["key"], fingerprint(KEY), "{listed}");
    assert_eq!(entries[0]["path"], "/no/such/path", "{listed}");
}

/// Door 5, for containers and remote use: `allow_hosts` (`--allow-host`)
/// names a `Host` every route answers; others are still refused.
#[tokio::test]
async fn an_allowed_host_is_answered() {
    let mut options = SandboxOptions::default();
    options.allow_hosts = vec!["sandbox.internal".into()];
    let sandbox = Sandbox::start_with(options).await.unwrap();
    let url = sandbox.url().to_owned();
    let http = reqwest::Client::new();
    for path in ["/api/ext/me", "/_sandbox/health"] {
        for (host, status) in [
            ("sandbox.internal:8787", 200),
            ("SANDBOX.internal", 200),
            ("sandbox.internal.evil.example", 403),
        ] {
            let answer = http
                .get(format!("{url}{path}"))
                .header("host", host)
                .header("x-api-key", KEY)
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status(), status, "{path} as {host}");
        }
    }
}
