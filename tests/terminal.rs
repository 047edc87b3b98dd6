//! The CLI for a person at a terminal, and unchanged for a pipe: each test
//! runs the binary in a real pseudo-terminal (portable-pty, the pty crate
//! of the wezterm terminal) and reads its screen back with a terminal
//! emulator's parser (vt100), and runs the same call in a pipe.
//!
//! Every wait is bounded (20 s); a test that times out fails showing the
//! screen it saw. The sandbox is in process, on 127.0.0.1.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portable_pty::{CommandBuilder, PtySize, native_pty_system};
use serde_json::{Value, json};
use tokportal::sandbox::{Sandbox, Verify};

const ROWS: u16 = 40;
const COLS: u16 = 140;
const WAIT: Duration = Duration::from_secs(20);

/// The binary running in a pseudo-terminal of [`ROWS`] x [`COLS`].
struct Terminal {
    child: Box<dyn portable_pty::Child + Send + Sync>,
    writer: Box<dyn Write + Send>,
    output: Arc<Mutex<Vec<u8>>>,
    reader: Option<std::thread::JoinHandle<()>>,
    cols: u16,
}

impl Terminal {
    fn run(args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::sized(args, env, COLS)
    }

    /// The binary in a pseudo-terminal [`ROWS`] high and `cols` wide.
    fn sized(args: &[&str], env: &[(&str, &str)], cols: u16) -> Self {
        let pair = native_pty_system()
            .openpty(PtySize {
                rows: ROWS,
                cols,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("a pty");
        let mut command = CommandBuilder::new(env!("CARGO_BIN_EXE_tokportal"));
        command.args(args);
        for name in [
            "TOKPORTAL_API_KEY",
            "TOKPORTAL_BASE_URL",
            "TOKPORTAL_PROFILE",
            "TOKPORTAL_YES",
            "NO_COLOR",
            "CLICOLOR_FORCE",
            "CI",
        ] {
            command.env_remove(name);
        }
        command.env("TERM", "xterm-256color");
        for (name, value) in env {
            command.env(name, value);
        }
        let child = pair.slave.spawn_command(command).expect("the binary runs in the pty");
        drop(pair.slave);
        let mut reader = pair.master.try_clone_reader().expect("the pty's reader");
        let writer = pair.master.take_writer().expect("the pty's writer");
        let output = Arc::new(Mutex::new(Vec::new()));
        let sink = output.clone();
        let reader = std::thread::spawn(move || {
            // The master stays open in this thread, so the reader sees the
            // child's output to its end (EIO once it has exited).
            let _master = pair.master;
            let mut chunk = [0u8; 8192];
            while let Ok(n) = reader.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&chunk[..n]);
            }
        });
        Self {
            child,
            writer,
            output,
            reader: Some(reader),
            cols,
        }
    }

    fn bytes(&self) -> Vec<u8> {
        self.output.lock().unwrap().clone()
    }

    /// The screen as a terminal shows it.
    fn screen(&self) -> vt100::Parser {
        let rows = std::num::NonZeroU16::new(ROWS).unwrap();
        let cols = std::num::NonZeroU16::new(self.cols).unwrap();
        let mut parser = vt100::Parser::new(rows, cols, 0);
        parser.process(&self.bytes());
        parser
    }

    fn text(&self) -> String {
        self.screen().screen().contents()
    }

    /// Waits until the screen shows `what`.
    fn wait_for(&self, what: &str) {
        let start = Instant::now();
        while !self.text().contains(what) {
            assert!(
                start.elapsed() < WAIT,
                "`{what}` never showed; the screen:\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn type_line(&mut self, line: &str) {
        self.writer.write_all(format!("{line}\r").as_bytes()).unwrap();
        self.writer.flush().unwrap();
    }

    /// Waits for the exit; its code, and the screen.
    fn finish(mut self) -> (u32, String) {
        let start = Instant::now();
        let code = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status.exit_code();
            }
            if start.elapsed() > WAIT {
                let _ = self.child.kill();
                panic!("the binary did not exit; the screen:\n{}", self.text());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        (code, self.text())
    }
}

/// The binary in a pipe: stdin, stdout and stderr are pipes.
fn piped(args: &[&str], env: &[(&str, &str)], stdin: &str) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tokportal"));
    command
        .args(args)
        .env_remove("TOKPORTAL_API_KEY")
        .env_remove("TOKPORTAL_BASE_URL")
        .env_remove("TOKPORTAL_PROFILE")
        .env_remove("TOKPORTAL_YES")
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE")
        .env_remove("CI")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("the binary runs");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

struct World {
    runtime: tokio::runtime::Runtime,
    sandbox: Sandbox,
    key: String,
    config: tempfile::TempDir,
}

impl World {
    fn new(key: &str) -> Self {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let sandbox = runtime.block_on(Sandbox::start()).unwrap();
        Self {
            runtime,
            sandbox,
            key: key.to_owned(),
            config: tempfile::tempdir().unwrap(),
        }
    }

    /// The environment of a call with this world's key and sandbox.
    fn env(&self) -> Vec<(&str, &str)> {
        vec![
            ("TOKPORTAL_API_KEY", self.key.as_str()),
            ("TOKPORTAL_BASE_URL", self.sandbox.url()),
            ("TOKPORTAL_CONFIG_DIR", self.config.path().to_str().unwrap()),
        ]
    }

    fn create(&self, country: &str) {
        let client = self.sandbox.client(self.key.as_str()).unwrap();
        self.runtime
            .block_on(client.request_operation("createBundle", tokportal::OperationArgs::new().body(bundle(country))))
            .unwrap();
    }

    fn balance(&self) -> f64 {
        let client = self.sandbox.client(self.key.as_str()).unwrap();
        let me = self
            .runtime
            .block_on(client.request_operation("getCurrentUser", tokportal::OperationArgs::new()))
            .unwrap();
        match me.body {
            tokportal::ResponseBody::Json(v) => v["data"]["credits"]["balance"].as_f64().unwrap(),
            other => panic!("{other:?}"),
        }
    }

    /// How many `operation` calls the sandbox answered for this key.
    fn count(&self, operation: &str, dry_run: bool) -> u64 {
        self.runtime
            .block_on(
                self.sandbox.verify(
                    Verify::operation(operation)
                        .key(self.key.as_str())
                        .dry_run(dry_run)
                        .at_least(0),
                ),
            )
            .unwrap()
    }
}

fn bundle(country: &str) -> Value {
    json!({"bundle_type": "account_and_videos", "platform": "tiktok", "country": country, "videos_quantity": 2})
}

#[test]
fn a_list_is_a_table_at_a_terminal_and_the_same_json_as_ever_in_a_pipe() {
    let world = World::new("sk_test_terminal_table");
    for country in ["USA", "FRA", "DEU"] {
        world.create(country);
    }
    let args = ["list-bundles", "--per-page", "2"];
    let terminal = Terminal::run(&args, &world.env());
    let (code, screen) = terminal.finish();
    assert_eq!(code, 0, "{screen}");
    for header in [
        "ID",
        "STATUS",
        "COUNTRY",
        "PLATFORM",
        "ACCOUNT STATUS",
        "VIDEOS",
        "CREATED",
    ] {
        assert!(screen.contains(header), "{header} on the screen:\n{screen}");
    }
    assert!(screen.contains("page 1 of 2 · 2 of 3"), "the footer:\n{screen}");
    assert!(screen.lines().all(|l| l.chars().count() <= COLS as usize));
    let again = Terminal::run(&args, &world.env());
    again.wait_for("page 1 of 2");
    screenshot(&again.screen(), "cli-table.svg");
    again.finish();

    let out = piped(&args, &world.env(), "");
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let value: Value = serde_json::from_str(&stdout).expect("JSON in a pipe");
    assert_eq!(
        stdout,
        format!("{}\n", serde_json::to_string(&value).unwrap()),
        "compact, one line, as ever"
    );
    assert_eq!(value["data"].as_array().unwrap().len(), 2);
    assert!(!stdout.contains('\u{1b}'));
}

#[test]
fn one_resource_is_coloured_indented_json_unless_no_color() {
    let world = World::new("sk_test_terminal_json");
    let terminal = Terminal::run(&["get-current-user"], &world.env());
    let (code, screen) = terminal.finish();
    assert_eq!(code, 0, "{screen}");
    assert!(screen.contains("\n  \"data\": {"), "indented:\n{screen}");
    let coloured = Terminal::run(&["get-current-user"], &world.env());
    coloured.wait_for("developer@sandbox");
    let bytes = String::from_utf8_lossy(&coloured.bytes()).into_owned();
    coloured.finish();
    assert!(bytes.contains("\u{1b}["), "coloured at a terminal");

    let mut env = world.env();
    env.push(("NO_COLOR", "1"));
    let plain = Terminal::run(&["get-current-user"], &env);
    plain.wait_for("developer@sandbox");
    let bytes = String::from_utf8_lossy(&plain.bytes()).into_owned();
    plain.finish();
    assert!(!bytes.contains("\u{1b}["), "NO_COLOR: {bytes:?}");

    let mut env = world.env();
    env.push(("CLICOLOR_FORCE", "1"));
    let out = piped(&["get-current-user"], &env, "");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("\u{1b}["), "CLICOLOR_FORCE colours a pipe");
    assert_eq!(stdout.lines().count(), 1, "still compact in a pipe");
}

#[test]
fn jq_and_format_in_a_pipe_and_at_a_terminal() {
    let world = World::new("sk_test_terminal_jq");
    for country in ["USA", "FRA"] {
        world.create(country);
    }
    let run = |args: &[&str]| {
        let out = piped(args, &world.env(), "");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(
        run(&["list-bundles", "--jq", ".data[].country"]),
        "USA\nFRA\n",
        "strings raw"
    );
    assert_eq!(run(&["list-bundles", "--jq", ".pagination.total"]), "2\n");
    let csv = run(&["list-bundles", "--format", "csv"]);
    assert!(
        csv.starts_with("id,status,country,platform,account_status,videos_quantity,created_at\n"),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 3);
    let ndjson = run(&["list-bundles", "--format", "ndjson"]);
    assert_eq!(ndjson.lines().count(), 2);
    assert!(
        ndjson
            .lines()
            .all(|l| serde_json::from_str::<Value>(l).unwrap()["id"].is_string())
    );
    let all: Value = serde_json::from_str(&run(&[
        "list-bundles",
        "--all-pages",
        "--per-page",
        "1",
        "--format",
        "json",
    ]))
    .unwrap();
    assert_eq!(all.as_array().map(Vec::len), Some(2), "--all-pages as one array");
    let table = run(&["list-bundles", "--format", "table"]);
    assert!(table.contains("ACCOUNT STATUS") && !table.contains('\u{1b}'), "{table}");

    // At a terminal: --format json wins over the table; --jq prints raw strings.
    let (code, screen) = Terminal::run(&["list-bundles", "--format", "json"], &world.env()).finish();
    assert_eq!(code, 0);
    assert!(
        screen.contains("\"pagination\": {") && !screen.contains("ACCOUNT STATUS"),
        "{screen}"
    );
    let (_, screen) = Terminal::run(&["list-bundles", "--jq", ".data[0].country"], &world.env()).finish();
    assert_eq!(screen.trim(), "USA");

    // A filter that does not compile costs nothing: refused before sending.
    let before = world.count("listBundles", false);
    let out = piped(&["list-bundles", "--jq", ".data["], &world.env(), "");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not parse"));
    let out = piped(&["list-bundles", "--jq", ".", "--format", "csv"], &world.env(), "");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(world.count("listBundles", false), before, "nothing was sent");
}

#[test]
fn a_paid_call_asks_first_at_a_terminal() {
    let world = World::new("sk_test_terminal_confirm");
    let body = bundle("USA").to_string();
    let args = ["create-bundle", "--body", body.as_str()];
    let start = world.balance();

    // "n": nothing more is sent, nothing charged.
    let mut terminal = Terminal::run(&args, &world.env());
    terminal.wait_for("[y/N]");
    let screen = terminal.text();
    assert!(screen.contains("create-bundle would charge 14 credits"), "{screen}");
    assert!(screen.contains("Charge 14 credits? [y/N]"), "{screen}");
    terminal.type_line("n");
    let (code, screen) = terminal.finish();
    assert_eq!(code, 5, "{screen}");
    assert!(screen.contains("Nothing was charged."), "{screen}");
    assert_eq!(world.balance(), start, "the balance is unchanged");
    assert_eq!(world.count("createBundle", false), 0, "only the dry run was sent");
    assert_eq!(world.count("createBundle", true), 1);

    // An empty answer is a no as well.
    let mut terminal = Terminal::run(&args, &world.env());
    terminal.wait_for("[y/N]");
    terminal.type_line("");
    assert_eq!(terminal.finish().0, 5);
    assert_eq!(world.count("createBundle", false), 0);

    // "y": charged once.
    let mut terminal = Terminal::run(&args, &world.env());
    terminal.wait_for("[y/N]");
    terminal.type_line("y");
    let (code, screen) = terminal.finish();
    assert_eq!(code, 0, "{screen}");
    assert_eq!(world.balance(), start - 14.0);
    assert_eq!(world.count("createBundle", false), 1);

    // --yes and TOKPORTAL_YES: no question, charged.
    let with_yes: Vec<&str> = args.iter().copied().chain(["--yes"]).collect();
    let (code, screen) = Terminal::run(&with_yes, &world.env()).finish();
    assert_eq!(code, 0, "{screen}");
    assert!(!screen.contains("[y/N]"), "{screen}");
    let mut env = world.env();
    env.push(("TOKPORTAL_YES", "1"));
    let (code, screen) = Terminal::run(&args, &env).finish();
    assert_eq!(code, 0, "{screen}");
    assert!(!screen.contains("[y/N]"), "{screen}");
    assert_eq!(world.count("createBundle", false), 3);
    assert_eq!(world.balance(), start - 42.0);

    // `tokportal api` on a paid path asks the same question.
    let mut terminal = Terminal::run(&["api", "POST", "/bundles", "--body", body.as_str()], &world.env());
    terminal.wait_for("Charge 14 credits? [y/N]");
    terminal.type_line("n");
    assert_eq!(terminal.finish().0, 5);
    assert_eq!(world.count("createBundle", false), 3);
}

#[test]
fn a_pipe_or_ci_is_never_asked() {
    let world = World::new("sk_test_terminal_pipe");
    let body = bundle("USA").to_string();
    let out = piped(&["create-bundle", "--body", body.as_str()], &world.env(), "n\n");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("[y/N]"));
    let mut env = world.env();
    env.push(("CI", "true"));
    let (code, screen) = Terminal::run(&["create-bundle", "--body", body.as_str()], &env).finish();
    assert_eq!(code, 0, "{screen}");
    assert!(!screen.contains("[y/N]"), "{screen}");
    assert_eq!(world.count("createBundle", false), 2);
    assert_eq!(world.count("createBundle", true), 0, "no dry run either");
}

#[test]
fn an_error_at_a_terminal_says_what_to_do_above_its_json() {
    let world = World::new("sk_test_terminal_error");
    let id = "0b9a58d3-6f61-431d-bfd8-69e9496298b7";
    let (code, screen) = Terminal::run(&["get-bundle", "--id", id], &world.env()).finish();
    assert_eq!(code, 1);
    let first = screen.lines().find(|l| !l.trim().is_empty()).unwrap_or_default();
    assert!(
        first.starts_with("NOT_FOUND: ") && first.ends_with("check the id"),
        "{screen}"
    );
    assert!(screen.contains("\"payload\""), "{screen}");
    let out = piped(&["get-bundle", "--id", id], &world.env(), "");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.starts_with('{'), "JSON alone in a pipe: {stderr}");
}

#[test]
fn login_at_a_terminal_hides_the_key_and_status_never_shows_it() {
    let world = World::new("sk_test_terminal_login");
    let env = [
        ("TOKPORTAL_CONFIG_DIR", world.config.path().to_str().unwrap()),
        ("TOKPORTAL_NO_KEYRING", "1"),
    ];
    let url = world.sandbox.url().to_owned();
    let key = "sk_test_typed_at_the_prompt";
    let mut terminal = Terminal::run(&["login", "--profile", "sandbox", "--base-url", &url], &env);
    terminal.wait_for("TokPortal API key:");
    terminal.type_line(key);
    let (code, screen) = terminal.finish();
    assert_eq!(code, 0, "{screen}");
    assert!(!screen.contains(key), "the key is not echoed:\n{screen}");
    assert!(screen.contains("developer@sandbox.tokportal.test"), "{screen}");
    assert!(screen.contains("warning: no OS keyring is usable here"), "{screen}");

    let (code, screen) = Terminal::run(&["auth", "status", "--profile", "sandbox"], &env).finish();
    assert_eq!(code, 0, "{screen}");
    assert!(screen.contains("sandbox") && !screen.contains(key), "{screen}");
    let (code, screen) = Terminal::run(&["list-bundles", "--profile", "sandbox"], &env).finish();
    assert_eq!(code, 0, "the stored key pays: {screen}");
    assert!(screen.contains("no items"), "{screen}");

    let (code, screen) = Terminal::run(&["logout", "--profile", "sandbox"], &env).finish();
    assert_eq!(code, 0, "{screen}");
    let (code, screen) = Terminal::run(&["list-bundles", "--profile", "sandbox"], &env).finish();
    assert_eq!(code, 3, "no key once logged out: {screen}");
    assert!(screen.contains("tokportal login"), "exit 3 names login: {screen}");
}

#[test]
fn a_bundle_made_with_flags_alone_and_listed_by_noun_and_verb() {
    let world = World::new("sk_test_terminal_flags");
    let args = [
        "create-bundle",
        "--bundle-type",
        "account_and_videos",
        "--country",
        "USA",
        "--videos-quantity",
        "2",
    ];
    let mut terminal = Terminal::run(&args, &world.env());
    terminal.wait_for("Charge 14 credits? [y/N]");
    terminal.type_line("y");
    let (code, screen) = terminal.finish();
    assert_eq!(code, 0, "{screen}");
    assert_eq!(world.count("createBundle", false), 1);
    let (code, screen) = Terminal::run(&["bundles", "list"], &world.env()).finish();
    assert_eq!(code, 0, "{screen}");
    assert!(screen.contains("ACCOUNT STATUS") && screen.contains("USA"), "{screen}");
}

#[test]
fn a_typo_at_a_terminal_gets_one_suggestion() {
    let world = World::new("sk_test_terminal_typo");
    let (code, screen) = Terminal::run(&["list-bundle"], &world.env()).finish();
    assert_eq!(code, 2, "{screen}");
    assert_eq!(screen.matches("did you mean").count(), 1, "{screen}");
    assert!(screen.contains("did you mean `tokportal list-bundles`?"), "{screen}");
}

#[test]
fn ids_stay_whole_at_80_and_200_columns() {
    let world = World::new("sk_test_terminal_widths");
    for country in ["USA", "FRA"] {
        world.create(country);
    }
    let client = world.sandbox.client(world.key.as_str()).unwrap();
    let listed = world
        .runtime
        .block_on(client.request_operation("listBundles", tokportal::OperationArgs::new()))
        .unwrap();
    let ids: Vec<String> = match listed.body {
        tokportal::ResponseBody::Json(v) => v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["id"].as_str().unwrap().to_owned())
            .collect(),
        other => panic!("{other:?}"),
    };
    let (code, narrow) = Terminal::sized(&["list-bundles"], &world.env(), 80).finish();
    assert_eq!(code, 0, "{narrow}");
    for id in &ids {
        assert!(
            narrow.lines().any(|l| l.contains(id.as_str())),
            "{id} whole on one line at 80:\n{narrow}"
        );
    }
    assert!(narrow.lines().all(|l| l.chars().count() <= 80), "{narrow}");
    let dropped = narrow
        .lines()
        .find(|l| l.starts_with("hidden at this width: "))
        .unwrap_or_default();
    assert!(dropped.contains("CREATED"), "the time goes first:\n{narrow}");
    assert!(
        !narrow.lines().any(|l| l.starts_with(" ID ") && l.contains("CREATED")),
        "{narrow}"
    );
    let (code, wide) = Terminal::sized(&["list-bundles"], &world.env(), 200).finish();
    assert_eq!(code, 0, "{wide}");
    for header in ["ID", "STATUS", "ACCOUNT STATUS", "VIDEOS", "CREATED"] {
        assert!(wide.contains(header), "{header} at 200:\n{wide}");
    }
    for id in &ids {
        assert!(wide.lines().any(|l| l.contains(id.as_str())), "{wide}");
    }
    assert!(!wide.contains("hidden at this width"), "{wide}");
    // A list that does not page is a table too.
    let (code, countries) = Terminal::sized(&["list-countries"], &world.env(), 80).finish();
    assert_eq!(code, 0, "{countries}");
    assert!(!countries.contains("\"data\""), "a table, not JSON:\n{countries}");
}

#[test]
fn a_free_call_is_not_asked_and_an_unpayable_one_is_refused_first() {
    let world = World::new("sk_test_terminal_free");
    let client = world.sandbox.client(world.key.as_str()).unwrap();
    let made = world
        .runtime
        .block_on(client.request_operation(
            "createBundle",
            tokportal::OperationArgs::new().body(json!({"bundle_type": "account_only", "country": "USA"})),
        ))
        .unwrap();
    let id = match made.body {
        tokportal::ResponseBody::Json(v) => v["data"]["id"].as_str().unwrap().to_owned(),
        other => panic!("{other:?}"),
    };
    world
        .runtime
        .block_on(
            client.request_operation(
                "configureBundleAccount",
                tokportal::OperationArgs::new()
                    .path("id", id.as_str())
                    .body(json!({"username": "free_call", "visible_name": "Free Call"})),
            ),
        )
        .unwrap();
    let before = world.balance();
    let (code, screen) = Terminal::run(&["publish-bundle", "--id", &id], &world.env()).finish();
    assert_eq!(code, 0, "{screen}");
    assert!(
        !screen.contains("[y/N]") && !screen.contains("({})"),
        "not asked:\n{screen}"
    );
    assert_eq!(world.balance(), before, "it cost nothing");

    // A key with 5 credits: refused before the question, nothing sent.
    let poor = Poor::new();
    let (code, screen) = Terminal::run(
        &[
            "create-bundle",
            "--bundle-type",
            "account_and_videos",
            "--country",
            "USA",
            "--videos-quantity",
            "2",
        ],
        &poor.env(),
    )
    .finish();
    assert_eq!(code, 5, "{screen}");
    assert!(!screen.contains("[y/N]"), "{screen}");
    assert!(
        screen.contains("costs 14 credits and the balance is 5") && screen.contains("Nothing was sent or charged"),
        "{screen}"
    );
    let sent = poor.runtime.block_on(
        poor.sandbox.verify(
            Verify::operation("createBundle")
                .key("sk_test_poor")
                .dry_run(false)
                .at_least(0),
        ),
    );
    assert_eq!(sent.unwrap(), 0, "nothing but the preview was sent");
}

/// A sandbox whose keys start with 5 credits.
struct Poor {
    runtime: tokio::runtime::Runtime,
    sandbox: Sandbox,
    config: tempfile::TempDir,
}

impl Poor {
    fn new() -> Self {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let mut options = tokportal::sandbox::SandboxOptions::default();
        options.initial_credits = 5.0;
        let sandbox = runtime.block_on(Sandbox::start_with(options)).unwrap();
        Self {
            runtime,
            sandbox,
            config: tempfile::tempdir().unwrap(),
        }
    }

    fn env(&self) -> Vec<(&str, &str)> {
        vec![
            ("TOKPORTAL_API_KEY", "sk_test_poor"),
            ("TOKPORTAL_BASE_URL", self.sandbox.url()),
            ("TOKPORTAL_CONFIG_DIR", self.config.path().to_str().unwrap()),
        ]
    }
}

#[test]
fn a_misspelt_enum_gets_one_human_line() {
    let world = World::new("sk_test_terminal_enum");
    let args = ["list-bundles", "--bundle-type", "acount_only"];
    let (code, screen) = Terminal::run(&args, &world.env()).finish();
    assert!(
        screen
            .contains("`acount_only` is not a --bundle-type value this contract knows (did you mean `account_only`?)"),
        "{screen}"
    );
    assert!(
        !screen.contains("WARN") && !screen.contains("name="),
        "no tracing line:\n{screen}"
    );
    assert_eq!(screen.matches("did you mean").count(), 1, "said once:\n{screen}");
    let _ = code;
    let mut strict: Vec<&str> = args.to_vec();
    strict.push("--strict");
    let (code, screen) = Terminal::run(&strict, &world.env()).finish();
    assert_eq!(code, 2, "{screen}");
    assert!(screen.contains("--strict refuses it"), "{screen}");
}

#[test]
fn ctrl_c_during_an_upload_clears_the_bar_and_says_nothing_was_recorded() {
    // A server that takes the connection and never answers: the upload
    // stays in flight until Ctrl-C.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let held = std::thread::spawn(move || {
        let mut kept = Vec::new();
        for stream in listener.incoming().take(1).flatten() {
            kept.push(stream);
            std::thread::sleep(Duration::from_secs(30));
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let video = dir.path().join("video.mp4");
    std::fs::write(&video, vec![0u8; 8 << 20]).unwrap();
    let env = [
        ("TOKPORTAL_API_KEY", "sk_test_ctrl_c"),
        ("TOKPORTAL_BASE_URL", url.as_str()),
    ];
    let mut terminal = Terminal::run(
        &[
            "upload-video-direct",
            "--file",
            video.to_str().unwrap(),
            "--bundle-id",
            "0b9a58d3-6f61-431d-bfd8-69e9496298b7",
        ],
        &env,
    );
    terminal.wait_for("MiB");
    terminal.writer.write_all(b"\x03").unwrap();
    terminal.writer.flush().unwrap();
    let (code, screen) = terminal.finish();
    assert_eq!(code, 130, "{screen}");
    assert!(
        screen.contains("stopped before TokPortal answered; nothing was recorded or charged"),
        "{screen}"
    );
    assert!(!screen.contains("MiB"), "the bar is cleared:\n{screen}");
    drop(held);
}

/// The screen as an SVG: monospace text in its colours, bold where bold.
/// No crate draws a vt100 screen as SVG, so this is hand-rolled: a `<text>`
/// per run of cells with the same style. Written into the test's target
/// folder, and into `docs/` with `TOKPORTAL_SCREENSHOTS=docs` (how the
/// README's picture is taken).
fn screenshot(parser: &vt100::Parser, name: &str) {
    let screen = parser.screen();
    let used = (0..ROWS)
        .filter(|&r| {
            (0..COLS).any(|c| {
                screen
                    .cell(r, c)
                    .is_some_and(|cell| cell.has_contents() && cell.contents() != " ")
            })
        })
        .max()
        .map_or(1, |r| r + 1);
    let wide = (0..used)
        .filter_map(|r| {
            (0..COLS).rev().find(|&c| {
                screen
                    .cell(r, c)
                    .is_some_and(|cell| cell.has_contents() && cell.contents() != " ")
            })
        })
        .max()
        .map_or(1, |c| c + 1);
    let (cw, ch) = (8.4_f64, 18.0_f64);
    let width = f64::from(wide) * cw + 24.0;
    let height = f64::from(used) * ch + 24.0;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" font-family=\"DejaVu Sans Mono, Menlo, Consolas, monospace\" font-size=\"14\">\n<rect width=\"100%\" height=\"100%\" rx=\"6\" fill=\"#1e1e1e\"/>\n"
    );
    for row in 0..used {
        let mut col = 0;
        while col < COLS {
            let Some(cell) = screen.cell(row, col) else { break };
            let style = (cell.fgcolor(), cell.bold());
            let mut text = String::new();
            let start = col;
            while col < COLS {
                let Some(c) = screen.cell(row, col) else { break };
                if (c.fgcolor(), c.bold()) != style {
                    break;
                }
                text.push_str(if c.has_contents() { c.contents() } else { " " });
                col += 1;
            }
            if text.trim().is_empty() {
                continue;
            }
            let fill = match style.0 {
                vt100::Color::Idx(i) => [
                    "#1e1e1e", "#f14c4c", "#23d18b", "#f5f543", "#3b8eea", "#d670d6", "#29b8db", "#e5e5e5",
                ][usize::from(i % 8)]
                .to_owned(),
                vt100::Color::Rgb(r, g, b) => format!("#{r:02x}{g:02x}{b:02x}"),
                vt100::Color::Default => "#d4d4d4".to_owned(),
            };
            let escaped = text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
            // Each run exactly as wide as its cells, bold or not, so that columns stay aligned.
            svg.push_str(&format!(
                "<text x=\"{:.1}\" y=\"{:.1}\" textLength=\"{:.1}\" lengthAdjust=\"spacingAndGlyphs\" fill=\"{fill}\"{} xml:space=\"preserve\">{escaped}</text>\n",
                12.0 + f64::from(start) * cw,
                12.0 + f64::from(row + 1) * ch - 4.0,
                f64::from(col - start) * cw,
                if style.1 { " font-weight=\"bold\"" } else { "" },
            ));
        }
    }
    svg.push_str("</svg>\n");
    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&target, &svg).unwrap();
    if std::env::var("TOKPORTAL_SCREENSHOTS").as_deref() == Ok("docs") {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs").join(name);
        std::fs::write(docs, &svg).unwrap();
    }
    assert!(svg.contains("ACCOUNT STATUS"), "the screenshot shows the table");
}

/// A destructive call (the table's `destructive` hint) is confirmed at a
/// terminal, without a dry run: "n" sends nothing, "y" sends it once, and
/// `--yes` skips the question.
#[test]
fn a_destructive_call_asks_first_at_a_terminal() {
    let world = World::new("sk_test_terminal_destroy");
    let client = world.sandbox.client(world.key.as_str()).unwrap();
    let endpoint = || {
        let made = world
            .runtime
            .block_on(
                client.request_operation(
                    "createWebhookEndpoint",
                    tokportal::OperationArgs::new()
                        .body(serde_json::json!({"url": "http://127.0.0.1:9/hook", "events": ["bundle.created"]})),
                ),
            )
            .unwrap();
        match made.body {
            tokportal::ResponseBody::Json(v) => v["data"]["id"].as_str().unwrap().to_owned(),
            other => panic!("{other:?}"),
        }
    };
    let id = endpoint();
    let args = ["delete-webhook-endpoint", "--id", id.as_str()];
    let mut terminal = Terminal::run(&args, &world.env());
    terminal.wait_for("delete-webhook-endpoint cannot be undone. Go ahead? [y/N]");
    terminal.type_line("n");
    let (code, screen) = terminal.finish();
    assert_eq!(code, 5, "{screen}");
    assert!(screen.contains("Nothing was sent."), "{screen}");
    assert_eq!(world.count("deleteWebhookEndpoint", false), 0);

    let mut terminal = Terminal::run(&args, &world.env());
    terminal.wait_for("[y/N]");
    terminal.type_line("y");
    let (code, screen) = terminal.finish();
    assert_eq!(code, 0, "{screen}");
    assert_eq!(world.count("deleteWebhookEndpoint", false), 1);

    let other = endpoint();
    let (code, screen) = Terminal::run(
        &["delete-webhook-endpoint", "--id", other.as_str(), "--yes"],
        &world.env(),
    )
    .finish();
    assert_eq!(code, 0, "{screen}");
    assert!(!screen.contains("[y/N]"), "{screen}");
    assert_eq!(world.count("deleteWebhookEndpoint", false), 2);
}
