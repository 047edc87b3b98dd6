//! `tokportal sandbox --state FILE` as a process: kill -9 in the middle of
//! paid creates loses nothing that was answered and leaves nothing half
//! there; kept idempotent answers and a pending transition survive a
//! restart; bad files are refused and left byte for byte as they were; an
//! older schema is migrated after a copy; one sandbox a file.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// What a webhook receiver got: each delivery's headers and body.
type Received = Arc<Mutex<Vec<(http::HeaderMap, Vec<u8>)>>>;

/// A `tokportal sandbox` on a state file; killed (SIGKILL) when dropped.
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

fn tokportal() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tokportal"));
    command.env_remove("TOKPORTAL_BASE_URL").env_remove("TOKPORTAL_API_KEY");
    command
}

fn start(file: &Path) -> Running {
    let mut command = tokportal();
    command
        .args(["sandbox", "--port", "0", "--rate-limit", "100000", "--state"])
        .arg(file);
    Running::spawn(&mut command)
}

/// `tokportal sandbox --state FILE` that must refuse to start: its stderr.
fn refused(file: &Path) -> String {
    let out = tokportal()
        .args(["sandbox", "--port", "0", "--state"])
        .arg(file)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "it started on {}", file.display());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A POST or GET of the sandbox from a plain test, on a runtime of its own.
fn send(method: reqwest::Method, url: String, key: &str, body: Option<Value>) -> (u16, Value) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (status, body, _) = call(&reqwest::Client::new(), method, url, key, body).await;
        (status, body)
    })
}

fn digest(file: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(file).unwrap()))
}

/// `file` is refused with a message naming it and saying `why`, and is
/// left byte for byte as it was.
fn refused_untouched(file: &Path, why: &[&str]) {
    let before = digest(file);
    let said = refused(file);
    let name = file.file_name().unwrap().to_string_lossy().into_owned();
    assert!(said.contains(&name), "{said}");
    assert!(why.iter().any(|w| said.contains(w)), "{said}");
    assert_eq!(digest(file), before, "{name} was changed");
}

async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    key: &str,
    body: Option<Value>,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let mut request = http.request(method, url).header("x-api-key", key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let answer = request.send().await.unwrap();
    let status = answer.status().as_u16();
    let headers = answer.headers().clone();
    (status, answer.json().await.unwrap_or(Value::Null), headers)
}

/// 300 paid creates at once over 10 keys, the sandbox killed with SIGKILL
/// once a third were answered: after a restart on the same file, every
/// answered create is there, each key's balance plus what its bundles were
/// charged is its starting credits (nothing half there), and each answered
/// idempotency key replays its first answer. Ten of the creates are held by
/// the sandbox (`X-Sandbox-Fault: slow=120`) before they are carried out, so
/// that, however fast the machine, the kill comes with calls in flight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_in_the_middle_of_paid_creates_loses_nothing_answered() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("state.db");
    let sandbox = start(&file);
    let http = reqwest::Client::new();
    let answered: Arc<Mutex<Vec<(String, String, String)>>> = Arc::default();
    let count = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for n in 0..300 {
        let (http, url, answered, count) = (http.clone(), sandbox.url.clone(), answered.clone(), count.clone());
        tasks.push(tokio::spawn(async move {
            let key = format!("sk_test_kill_{}", n % 10);
            let idempotency = format!("create-{n}");
            let mut request = http.post(format!("{url}/bundles"));
            if n % 30 == 29 {
                request = request.header("x-sandbox-fault", "slow=120");
            }
            let sent = request
                .header("x-api-key", &key)
                .header("idempotency-key", &idempotency)
                .json(&json!({"bundle_type": "account_and_videos", "country": "USA", "videos_quantity": 1}))
                .send()
                .await;
            if let Ok(answer) = sent
                && answer.status().as_u16() == 201
                && let Ok(body) = answer.json::<Value>().await
            {
                let id = body["data"]["id"].as_str().unwrap_or_default().to_owned();
                answered.lock().unwrap().push((key, idempotency, id));
                count.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    // However long a third takes; the guard only stops a hang, well before
    // the held creates could be answered.
    let a_third = async {
        while count.load(Ordering::SeqCst) < 100 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(90), a_third)
        .await
        .expect("a third of the creates answered (hang guard)");
    drop(sandbox); // SIGKILL, mid-flight
    for task in tasks {
        let _ = task.await;
    }
    let answered = answered.lock().unwrap().clone();
    assert!(answered.len() >= 100, "{} answered before the kill", answered.len());
    let held: Vec<&(String, String, String)> = answered
        .iter()
        .filter(|(_, idempotency, _)| {
            idempotency
                .trim_start_matches("create-")
                .parse::<usize>()
                .is_ok_and(|n| n % 30 == 29)
        })
        .collect();
    assert!(held.is_empty(), "a held create was answered before the kill: {held:?}");

    let sandbox = start(&file);
    let mut by_key: HashMap<String, Vec<(String, String)>> = HashMap::new();
    for (key, idempotency, id) in &answered {
        by_key
            .entry(key.clone())
            .or_default()
            .push((idempotency.clone(), id.clone()));
    }
    for n in 0..10 {
        let key = format!("sk_test_kill_{n}");
        let (_, balance, _) = call(
            &http,
            reqwest::Method::GET,
            format!("{}/credits/balance", sandbox.url),
            &key,
            None,
        )
        .await;
        let (_, bundles, _) = call(
            &http,
            reqwest::Method::GET,
            format!("{}/bundles?per_page=100", sandbox.url),
            &key,
            None,
        )
        .await;
        let listed = bundles["data"].as_array().cloned().unwrap_or_default();
        let charged: f64 = listed
            .iter()
            .map(|b| b["credits_charged"].as_f64().unwrap_or(0.0))
            .sum();
        assert_eq!(
            balance["data"]["balance"].as_f64().unwrap() + charged,
            1000.0,
            "{key}: the balance and the bundles paid for agree (nothing half there)"
        );
        for (idempotency, id) in by_key.get(&key).into_iter().flatten() {
            assert!(
                listed.iter().any(|b| b["id"] == id.as_str()),
                "{key}: answered bundle {id} is there"
            );
            let replay = http
                .post(format!("{}/bundles", sandbox.url))
                .header("x-api-key", &key)
                .header("idempotency-key", idempotency)
                .json(&json!({"bundle_type": "account_and_videos", "country": "USA", "videos_quantity": 1}))
                .send()
                .await
                .unwrap();
            assert_eq!(replay.headers()["idempotent-replayed"], "true");
            let body: Value = replay.json().await.unwrap();
            assert_eq!(body["data"]["id"], id.as_str(), "the first answer, again");
        }
    }
}

/// A transition pending on a key's clock when the sandbox is killed fires
/// after the restart, signed with the endpoint's old secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_transition_fires_after_a_restart_with_the_old_secret() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("state.db");
    let got: Received = Arc::default();
    let seen = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: http::HeaderMap, body: axum::body::Bytes| {
            let seen = seen.clone();
            async move {
                seen.lock().unwrap().push((headers, body.to_vec()));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let key = "sk_test_restart_clock";
    let http = reqwest::Client::new();
    let sandbox = start(&file);
    let u = sandbox.url.clone();
    call(
        &http,
        reqwest::Method::POST,
        format!("{u}/_sandbox/clock"),
        key,
        Some(json!({"frozen_at": "2026-06-01T00:00:00Z"})),
    )
    .await;
    let (_, endpoint, _) = call(
        &http,
        reqwest::Method::POST,
        format!("{u}/webhooks"),
        key,
        Some(json!({"url": hook, "events": ["account.in_review"]})),
    )
    .await;
    let secret = endpoint["data"]["secret"].as_str().unwrap().to_owned();
    let (_, bundle, _) = call(
        &http,
        reqwest::Method::POST,
        format!("{u}/bundles"),
        key,
        Some(json!({"bundle_type": "account_only", "country": "USA"})),
    )
    .await;
    let id = bundle["data"]["id"].as_str().unwrap().to_owned();
    call(
        &http,
        reqwest::Method::PUT,
        format!("{u}/bundles/{id}/account"),
        key,
        Some(json!({"username": "restart_brand", "visible_name": "Restart"})),
    )
    .await;
    let (status, _, _) = call(
        &http,
        reqwest::Method::POST,
        format!("{u}/bundles/{id}/publish"),
        key,
        None,
    )
    .await;
    assert_eq!(status, 200);
    drop(sandbox);

    let sandbox = start(&file);
    let u = sandbox.url.clone();
    let (_, clock, _) = call(&http, reqwest::Method::GET, format!("{u}/_sandbox/clock"), key, None).await;
    assert_eq!(clock["data"]["now"], "2026-06-01T00:00:00Z", "the clock survived");
    assert_eq!(clock["data"]["pending"][0]["step"], "account.in_review");
    let (status, moved, _) = call(
        &http,
        reqwest::Method::POST,
        format!("{u}/_sandbox/clock/advance"),
        key,
        Some(json!({"by": "2d"})),
    )
    .await;
    assert_eq!(status, 200, "{moved}");
    assert_eq!(moved["data"]["transitions"][0]["to"], "in_review");
    let got = got.lock().unwrap();
    assert_eq!(got.len(), 1, "the advance answered after the delivery");
    let event = tokportal::webhooks::Verifier::new(secret.as_str())
        .construct_event(&got[0].0, &got[0].1)
        .unwrap();
    assert_eq!(event.event_type, "account.in_review");
    assert_eq!(event.created_at, "2026-06-03T00:00:00Z");
}

/// Every bad file is refused with a message naming it and what is wrong,
/// and is left byte for byte as it was.
#[test]
fn bad_files_are_refused_and_left_as_they_were() {
    let dir = tempfile::tempdir().unwrap();
    // Not SQLite at all.
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "these are my notes, not a database\n").unwrap();
    refused_untouched(&text, &["not an SQLite database"]);

    // Another program's SQLite database.
    let other = dir.path().join("other.db");
    {
        let conn = rusqlite::Connection::open(&other).unwrap();
        conn.execute_batch("CREATE TABLE todo (item TEXT); INSERT INTO todo VALUES ('milk');")
            .unwrap();
    }
    refused_untouched(&other, &["not a TokPortal sandbox's state"]);

    // A state file of a newer build.
    let newer = dir.path().join("newer.db");
    drop(start(&newer));
    {
        let conn = rusqlite::Connection::open(&newer).unwrap();
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE); PRAGMA user_version = 99; PRAGMA journal_mode = DELETE;")
            .unwrap();
    }
    refused_untouched(&newer, &["schema version 99, newer than this build's"]);

    // A corrupt one: a real state file with its pages overwritten.
    let corrupt = dir.path().join("corrupt.db");
    {
        let sandbox = start(&corrupt);
        for n in 0..20 {
            let (status, _) = send(
                reqwest::Method::POST,
                format!("{}/bundles", sandbox.url),
                &format!("sk_test_corrupt_{n}"),
                Some(json!({"bundle_type": "account_only", "country": "USA"})),
            );
            assert_eq!(status, 201);
        }
    }
    {
        let conn = rusqlite::Connection::open(&corrupt).unwrap();
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE); PRAGMA journal_mode = DELETE;")
            .unwrap();
    }
    let mut bytes = std::fs::read(&corrupt).unwrap();
    assert!(bytes.len() > 4 * 4096, "{} bytes", bytes.len());
    for b in &mut bytes[4096..4096 * 3] {
        *b = 0xA5;
    }
    std::fs::write(&corrupt, &bytes).unwrap();
    refused_untouched(&corrupt, &["is corrupt", "malformed"]);
}

/// Two sandboxes on one file: the second is refused, saying why.
#[test]
fn one_sandbox_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("state.db");
    let first = start(&file);
    let said = refused(&file);
    assert!(said.contains("in use by another sandbox"), "{said}");
    drop(first);
    drop(start(&file));
}

/// A file of schema version 1 is migrated to this build's after a copy of
/// it is kept beside it; what it held is served.
#[test]
fn an_older_schema_is_migrated_after_a_copy() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("v1.db");
    let key = "sk_test_migrated";
    let hash = hex::encode(Sha256::digest(key.as_bytes()));
    {
        // Schema version 1, as the first release with --state wrote it.
        let conn = rusqlite::Connection::open(&file).unwrap();
        conn.execute_batch(
            "CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
             CREATE TABLE keys (key TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, balance REAL NOT NULL,
                 profile TEXT NOT NULL, desk TEXT NOT NULL, created_at TEXT NOT NULL);
             CREATE INDEX keys_by_fingerprint ON keys (fingerprint);
             CREATE TABLE bundles (key TEXT NOT NULL, id TEXT NOT NULL, seq INTEGER NOT NULL, body TEXT NOT NULL, PRIMARY KEY (key, id)) WITHOUT ROWID;
             CREATE TABLE accounts (key TEXT NOT NULL, id TEXT NOT NULL, seq INTEGER NOT NULL, body TEXT NOT NULL, PRIMARY KEY (key, id)) WITHOUT ROWID;
             CREATE TABLE comment_tasks (key TEXT NOT NULL, id TEXT NOT NULL, seq INTEGER NOT NULL, body TEXT NOT NULL, PRIMARY KEY (key, id)) WITHOUT ROWID;
             CREATE TABLE webhook_endpoints (key TEXT NOT NULL, id TEXT NOT NULL, seq INTEGER NOT NULL, body TEXT NOT NULL, secret TEXT NOT NULL, PRIMARY KEY (key, id)) WITHOUT ROWID;
             CREATE TABLE deliveries (key TEXT NOT NULL, id TEXT NOT NULL, seq INTEGER NOT NULL, body TEXT NOT NULL, endpoint_id TEXT NOT NULL, payload BLOB NOT NULL, tries TEXT NOT NULL, PRIMARY KEY (key, id)) WITHOUT ROWID;
             CREATE TABLE records (key TEXT NOT NULL, kind TEXT NOT NULL, id TEXT NOT NULL, seq INTEGER NOT NULL, body TEXT NOT NULL, PRIMARY KEY (key, kind, id)) WITHOUT ROWID;
             PRAGMA application_id = 1414482768; PRAGMA user_version = 1;",
        )
        .unwrap();
        conn.execute(
            "INSERT INTO keys VALUES (?1, ?2, 777.0, '{\"id\":\"7f000000-0000-4000-8000-000000000001\",\"email\":\"developer@sandbox.tokportal.test\",\"created_at\":\"2026-01-01T00:00:00Z\"}', '{\"clock\":null,\"flags\":[],\"held\":[]}', '2026-01-01T00:00:00Z')",
            rusqlite::params![hash, &hash[..8]],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO bundles VALUES (?1, 'b0000000-0000-4000-8000-000000000001', 1, '{\"id\":\"b0000000-0000-4000-8000-000000000001\",\"status\":\"draft\",\"bundle_type\":\"account_only\",\"credits_charged\":10.0,\"account\":null,\"videos\":[]}')",
            [&hash],
        )
        .unwrap();
    }
    let before = std::fs::read(&file).unwrap();
    let sandbox = start(&file);
    let backup = dir.path().join("v1.db.v1.bak");
    assert!(backup.exists(), "a copy is kept beside it");
    {
        let copy = rusqlite::Connection::open_with_flags(&backup, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        let version: i32 = copy.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(version, 1, "the copy is of the old schema");
        let bundles: i64 = copy
            .query_row("SELECT count(*) FROM bundles", [], |r| r.get(0))
            .unwrap();
        assert_eq!(bundles, 1);
    }
    assert!(!before.is_empty());
    let (_, balance) = send(
        reqwest::Method::GET,
        format!("{}/credits/balance", sandbox.url),
        key,
        None,
    );
    assert_eq!(balance["data"]["balance"], 777.0);
    let (status, bundle) = send(
        reqwest::Method::GET,
        format!("{}/bundles/b0000000-0000-4000-8000-000000000001", sandbox.url),
        key,
        None,
    );
    assert_eq!(status, 200, "{bundle}");
    drop(sandbox);
    let conn = rusqlite::Connection::open(&file).unwrap();
    let version: i32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(version, 3);
    let replays: i64 = conn
        .query_row("SELECT count(*) FROM replays", [], |r| r.get(0))
        .unwrap();
    assert_eq!(replays, 0, "the new table is there");
    // Version 3 numbers keys: the bundle is found through its key's number.
    let status: String = conn
        .query_row(
            "SELECT json_extract(body, '$.status') FROM bundles WHERE key_n = (SELECT n FROM keys WHERE fingerprint = ?1)",
            [&hash[..8]],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(status, "draft");
}

/// A snapshot round-trips: saved with the CLI from one sandbox, loaded into
/// another (one key's part, then all), it serves the same bundles, balance,
/// clock and kept answers; a newer snapshot is refused.
#[test]
fn snapshots_round_trip_and_a_newer_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let first = start(&dir.path().join("first.db"));
    let (a, b) = ("sk_test_snap_a", "sk_test_snap_b");
    send(
        reqwest::Method::POST,
        format!("{}/_sandbox/clock", first.url),
        a,
        Some(json!({"frozen_at": "2026-06-01T00:00:00Z"})),
    );
    let (_, made) = send(
        reqwest::Method::POST,
        format!("{}/bundles", first.url),
        a,
        Some(json!({"bundle_type": "account_only", "country": "USA"})),
    );
    let id = made["data"]["id"].as_str().unwrap().to_owned();
    send(
        reqwest::Method::POST,
        format!("{}/bundles", first.url),
        b,
        Some(json!({"bundle_type": "account_only", "country": "USA"})),
    );
    let file = dir.path().join("world.json");
    let cli = |url: &str, args: &[&str]| {
        tokportal()
            .args(["sandbox", "snapshot"])
            .args(args)
            .env("TOKPORTAL_BASE_URL", url)
            .output()
            .unwrap()
    };
    let saved = cli(&first.url, &["save", file.to_str().unwrap()]);
    assert!(saved.status.success(), "{}", String::from_utf8_lossy(&saved.stderr));
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(doc["version"], 1);
    assert_eq!(doc["keys"].as_array().unwrap().len(), 2);
    assert!(
        !std::fs::read_to_string(&file).unwrap().contains(a),
        "keys are named by their hash, never the key"
    );

    // Into an empty sandbox (in memory): one key only, then all.
    let second = Running::spawn_memory();
    let one = tokportal()
        .args(["sandbox", "snapshot", "load", file.to_str().unwrap(), "--api-key", a])
        .env("TOKPORTAL_BASE_URL", &second.url)
        .output()
        .unwrap();
    assert!(one.status.success(), "{}", String::from_utf8_lossy(&one.stderr));
    let (status, got) = send(reqwest::Method::GET, format!("{}/bundles/{id}", second.url), a, None);
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["data"]["created_at"], "2026-06-01T00:00:00Z");
    let (_, clock) = send(reqwest::Method::GET, format!("{}/_sandbox/clock", second.url), a, None);
    assert_eq!(clock["data"]["now"], "2026-06-01T00:00:00Z", "the clock came along");
    let (_, state) = send(reqwest::Method::GET, format!("{}/_sandbox/state", second.url), b, None);
    assert_eq!(
        state["data"].as_array().unwrap().len(),
        1,
        "b was not loaded: only a's part"
    );
    let all = cli(&second.url, &["load", file.to_str().unwrap()]);
    assert!(all.status.success());
    let (_, balance) = send(reqwest::Method::GET, format!("{}/credits/balance", second.url), b, None);
    assert_eq!(balance["data"]["balance"], 990.0);

    let mut newer = doc.clone();
    newer["version"] = json!(2);
    let newer_file = dir.path().join("newer.json");
    std::fs::write(&newer_file, newer.to_string()).unwrap();
    let refused = cli(&second.url, &["load", newer_file.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("version 2, newer than this build's 1"));
}

impl Running {
    /// A sandbox in memory (no state file).
    fn spawn_memory() -> Running {
        Running::spawn(tokportal().args(["sandbox", "--port", "0"]))
    }

    /// Spawns `command` (a `tokportal sandbox`) and waits for its `listening on` line.
    fn spawn(command: &mut Command) -> Running {
        let mut child = command.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("the sandbox did not start: {line:?}"))
            .to_owned();
        Running { child, url }
    }
}

/// Fixtures seed a key through the contract (references to earlier
/// answers and the environment, an expected error, the clock), once per
/// state file; a failing step stops start-up naming the file, the step and
/// the field, and nothing of the fixtures is kept.
#[test]
fn fixtures_seed_a_key_once_and_fail_whole() {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = dir.path().join("world.yaml");
    std::fs::write(
        &fixtures,
        r#"key: sk_test_fixture
steps:
  - clock: {frozen_at: "2026-06-01T00:00:00Z"}
  - name: launch
    operation: createBundle
    body: {bundle_type: account_only, country: USA, external_ref: "${env:TOKPORTAL_FIXTURE_REF|launch-1}"}
  - name: profile
    operation: configureBundleAccount
    path: {id: "${launch.data.id}"}
    body: {username: fixture_brand, visible_name: Fixture Brand}
  - name: atlantis
    operation: createBundle
    body: {bundle_type: account_only, country: Atlantis}
    expect: {status: 400, code: VALIDATION_ERROR}
  - operation: publishBundle
    path: {id: "${launch.data.id}"}
  - advance: 2d
"#,
    )
    .unwrap();
    let file = dir.path().join("state.db");
    let run = |extra: &[&std::path::Path]| {
        let mut command = tokportal();
        command.args(["sandbox", "--port", "0", "--state"]).arg(&file);
        for f in extra {
            command.arg("--fixtures").arg(f);
        }
        let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        (child, line)
    };
    let (child, line) = run(&[&fixtures]);
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("{line:?}"))
        .to_owned();
    let running = Running { child, url };
    let key = "sk_test_fixture";
    let (_, bundles) = send(reqwest::Method::GET, format!("{}/bundles", running.url), key, None);
    assert_eq!(bundles["data"].as_array().unwrap().len(), 1, "{bundles}");
    let bundle = &bundles["data"][0];
    assert_eq!(bundle["external_ref"], "launch-1", "the environment's default");
    assert_eq!(
        bundle["account_status"], "in_review",
        "published, and two days on the clock"
    );
    drop(running);

    // A restart on the same file does not apply them twice.
    let (child, line) = run(&[&fixtures]);
    let running = Running {
        child,
        url: line.trim().strip_prefix("listening on ").unwrap().to_owned(),
    };
    let (_, bundles) = send(reqwest::Method::GET, format!("{}/bundles", running.url), key, None);
    assert_eq!(bundles["data"].as_array().unwrap().len(), 1, "applied once");
    drop(running);

    // A failing step: start-up stops, naming file, step and field; nothing is kept.
    let broken = dir.path().join("broken.yaml");
    std::fs::write(
        &broken,
        "key: sk_test_broken\nsteps:\n  - name: ok\n    operation: createBundle\n    body: {bundle_type: account_only, country: USA}\n  - name: bad\n    operation: createBundle\n    body: {bundle_type: account_only, country: Atlantis}\n",
    )
    .unwrap();
    let out = tokportal()
        .args(["sandbox", "--port", "0", "--state"])
        .arg(&file)
        .arg("--fixtures")
        .arg(&broken)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("broken.yaml") && said.contains("step `bad`") && said.contains("country"),
        "{said}"
    );
    let conn = rusqlite::Connection::open(&file).unwrap();
    let broken_key = hex::encode(Sha256::digest(b"sk_test_broken"));
    let rows: i64 = conn
        .query_row(
            "SELECT count(*) FROM bundles WHERE key_n = (SELECT n FROM keys WHERE key = ?1)",
            [&broken_key],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(rows, 0, "the first step's bundle was taken back");
    drop(conn);

    // Checked before anything is sent: an unknown operation, a dangling reference.
    for (text, why) in [
        (
            "key: sk_test_x\nsteps:\n  - operation: makeCoffee\n",
            "`makeCoffee` is not an operation",
        ),
        (
            "key: sk_test_x\nsteps:\n  - operation: getBundle\n    path: {id: \"${nowhere.data.id}\"}\n",
            "names no earlier step `nowhere`",
        ),
    ] {
        let f = dir.path().join("check.yaml");
        std::fs::write(&f, text).unwrap();
        let out = tokportal()
            .args(["sandbox", "--port", "0", "--fixtures"])
            .arg(&f)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(why),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
