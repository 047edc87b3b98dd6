//! `tokportal sandbox snapshot save FILE | load FILE`: a running sandbox's
//! state (or one key's, with `--api-key`) to a JSON file, and back.

use clap::{Arg, ArgMatches, Command};
use serde_json::Value;

use super::exit::Failure;
use super::flags::CallFlags;
use super::workbench::{self, Sandbox};

/// The largest snapshot loaded.
const MAX_SNAPSHOT: u64 = 256 * 1024 * 1024;

/// The `snapshot` subcommand of `sandbox`.
pub(crate) fn command() -> Command {
    let file = || {
        Arg::new("file")
            .value_name("FILE")
            .required(true)
            .value_parser(clap::value_parser!(std::path::PathBuf))
    };
    Command::new("snapshot")
        .about("Save a running sandbox's state to a file, or load one into it")
        .long_about(
            "A snapshot is one JSON document: the keys (named by their SHA-256, never the API \
             key) and what each owns, clocks and pending work included, webhook secrets too (keep \
             it as you would keep a state file). With --api-key, only that key's part is saved or \
             loaded. Loading replaces each key the snapshot names and leaves the others alone.",
        )
        .subcommand_required(true)
        .subcommand(
            Command::new("save")
                .about("Write the sandbox's state (or --api-key's) to FILE")
                .arg(file().help("Where to write it (replaced)"))
                .args(workbench::link_args()),
        )
        .subcommand(
            Command::new("load")
                .about("Replace the keys FILE names with what it holds")
                .arg(file().help("A snapshot `save` wrote"))
                .args(workbench::link_args()),
        )
}

/// Runs `sandbox snapshot ...`.
pub(crate) async fn run(top: &ArgMatches, m: &ArgMatches) -> Result<(), Failure> {
    let Some((name, sub)) = m.subcommand() else {
        return Err(Failure::usage("`sandbox snapshot` takes `save FILE` or `load FILE`"));
    };
    let Some(file) = sub.get_one::<std::path::PathBuf>("file") else {
        return Err(Failure::usage("a FILE is required"));
    };
    let key = CallFlags::read(top, sub).api_key;
    let write_error = |e: std::io::Error| Failure::usage(format!("cannot write {}: {e}", file.display()));
    match name {
        "save" => {
            let sandbox = Sandbox::find(top, sub, "sandbox snapshot save").await?;
            let doc = sandbox.snapshot(key.as_deref()).await?;
            let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
            std::fs::write(file, text + "\n").map_err(write_error)?;
            eprintln!(
                "saved {} keys to {}",
                doc["keys"].as_array().map_or(0, Vec::len),
                file.display()
            );
        }
        _ => {
            // The file is read and parsed before the sandbox is asked anything.
            let size = std::fs::metadata(file)
                .map_err(|e| Failure::usage(format!("cannot read {}: {e}", file.display())))?
                .len();
            if size > MAX_SNAPSHOT {
                return Err(Failure::usage(format!(
                    "{} is larger than {MAX_SNAPSHOT} bytes",
                    file.display()
                )));
            }
            let text = std::fs::read_to_string(file)
                .map_err(|e| Failure::usage(format!("cannot read {}: {e}", file.display())))?;
            let doc: Value = serde_json::from_str(&text)
                .map_err(|e| Failure::usage(format!("{} is not JSON: {e}", file.display())))?;
            let sandbox = Sandbox::find(top, sub, "sandbox snapshot load").await?;
            let done = sandbox.restore(key.as_deref(), doc).await?;
            eprintln!(
                "loaded {} keys from {}",
                done["restored"].as_array().map_or(0, Vec::len),
                file.display()
            );
        }
    }
    Ok(())
}
