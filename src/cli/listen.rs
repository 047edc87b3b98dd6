//! `tokportal listen --forward-to URL`: forwards the sandbox's webhook
//! events to an app on this machine, as `stripe listen` does. Every event an
//! operation produces for the key is sent, whether or not a webhook
//! endpoint is subscribed, signed (`TokPortal-Signature`) with this
//! machine's listen secret: made once, kept in the user's config folder
//! (`tokportal/listen-secret`, readable by the user alone), so an app's
//! configuration survives restarts. `--print-secret` prints it alone.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Arg, ArgAction, ArgMatches, Command};
use serde_json::Value;

use super::exit::Failure;
use super::flags::CallFlags;
use super::workbench::{self, Sandbox, fingerprint, snippet};
use crate::webhooks::{EVENT_TYPES, sign};

/// Where the secret is kept, under the config folder.
const SECRET_FILE: &str = "tokportal/listen-secret";
/// `User-Agent` of a forwarded event.
const USER_AGENT: &str = concat!("tokportal-cli-listen/", env!("CARGO_PKG_VERSION"));

/// The `listen` subcommand.
pub(crate) fn command() -> Command {
    Command::new("listen")
        .about("Forward the sandbox's webhook events to a local app, signed with a stable secret")
        .long_about(
            "Forward each webhook event the sandbox produces for your key to a local app, signed \
             (TokPortal-Signature) with this machine's listen secret, which stays the same across \
             restarts. Without --api-key or TOKPORTAL_API_KEY, every key's events are forwarded.\n\n\
             Each line shows the event, the app's status and the start of its answer.",
        )
        .arg(
            Arg::new("forward_to")
                .long("forward-to")
                .value_name("URL")
                .required_unless_present("print_secret")
                .help("Where to POST each event (http://localhost:3000/webhooks)"),
        )
        .arg(
            Arg::new("events")
                .long("events")
                .value_name("TYPES")
                .value_delimiter(',')
                .action(ArgAction::Append)
                .help("Only these event types, comma-separated (bundle.published,video.published)"),
        )
        .arg(
            Arg::new("print_secret")
                .long("print-secret")
                .action(ArgAction::SetTrue)
                .help("Print the signing secret alone on stdout and exit (for CI)"),
        )
        .args(workbench::link_args())
}

/// Forwards until interrupted (or prints the secret).
pub(crate) async fn run(top: &ArgMatches, m: &ArgMatches) -> Result<(), Failure> {
    let secret_path = secret_path()?;
    if m.get_flag("print_secret") {
        let secret = secret(&secret_path)?;
        return super::stdout::line(&secret);
    }
    let forward_to = m.get_one::<String>("forward_to").cloned().unwrap_or_default();
    match url::Url::parse(&forward_to) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
        _ => {
            return Err(Failure::usage(format!(
                "--forward-to `{forward_to}` is not an http or https URL"
            )));
        }
    }
    let events: Vec<String> = m.get_many::<String>("events").into_iter().flatten().cloned().collect();
    if let Some(unknown) = events.iter().find(|e| !EVENT_TYPES.contains(&e.as_str())) {
        return Err(Failure::usage(format!(
            "--events: `{unknown}` is not an event type; they are {}",
            EVENT_TYPES.join(", ")
        )));
    }
    let secret = secret(&secret_path)?;
    let key = CallFlags::read(top, m).api_key;
    let sandbox = Sandbox::find(top, m, "listen").await?;
    let mut query = vec![("kinds", "webhook".to_owned())];
    if let Some(key) = &key {
        query.push(("key", fingerprint(key)));
    }
    let query = serde_urlencoded::to_string(&query).unwrap_or_default();
    let http = crate::client::http_builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(USER_AGENT)
        .build()
        .map_err(|e| Failure::usage(format!("cannot build an HTTP client: {e}")))?;
    let whose = key
        .as_deref()
        .map_or_else(|| "every key".to_owned(), |k| format!("key {}", fingerprint(k)));
    let ready = format!(
        "Ready: forwarding the webhook events of {whose} at {} to {forward_to}, signed with the secret `tokportal listen --print-secret` prints (Ctrl-C stops)",
        sandbox.base
    );
    workbench::follow_forever(&sandbox, &query, &ready, |_, event| {
        let wanted = events.is_empty() || events.iter().any(|e| event["event_type"].as_str() == Some(e.as_str()));
        let (http, secret, forward_to) = (&http, &secret, &forward_to);
        async move {
            if wanted {
                super::stdout::line_or_exit(&forward(http, secret, forward_to, &event).await);
            }
        }
    })
    .await
}

/// Sends one event to the app; the line that says how it went.
async fn forward(http: &reqwest::Client, secret: &str, to: &str, event: &Value) -> String {
    let event_type = event["event_type"].as_str().unwrap_or("?");
    let payload = event["payload"].as_str().unwrap_or_default().to_owned();
    let event_id = serde_json::from_str::<Value>(&payload)
        .ok()
        .and_then(|p| p["id"].as_str().map(str::to_owned))
        .unwrap_or_default();
    let signature = sign(secret, chrono::Utc::now().timestamp(), payload.as_bytes());
    let sent = http
        .post(to)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(crate::headers::SIGNATURE, signature)
        .header("tokportal-event-id", event_id.as_str())
        .header("tokportal-event-type", event_type)
        .body(payload)
        .send()
        .await;
    let now = chrono::Utc::now().format("%H:%M:%S");
    match sent {
        Ok(answer) => {
            let status = answer.status().as_u16();
            // The start of the answer only: an app's page can be large.
            let mut body = Vec::new();
            let mut stream = answer.bytes_stream();
            while let Some(Ok(chunk)) = futures::StreamExt::next(&mut stream).await {
                body.extend_from_slice(&chunk);
                if body.len() >= 512 {
                    break;
                }
            }
            format!(
                "{now}  {event_type:<28} {event_id}  -> {status}  {}",
                snippet(&String::from_utf8_lossy(&body), 80)
            )
        }
        Err(e) => format!(
            "{now}  {event_type:<28} {event_id}  -> error: {}",
            crate::error::one_line(&e)
        ),
    }
}

/// The listen secret's file: `$TOKPORTAL_CONFIG_DIR/listen-secret`, or
/// under `$XDG_CONFIG_HOME`, or `~/.config`.
///
/// Written here rather than with `dirs`: the Stripe CLI keeps its config
/// under `~/.config` on every platform, and so do we, where `dirs` would
/// pick `~/Library/Application Support` on macOS; the rule is four lines.
fn secret_path() -> Result<PathBuf, Failure> {
    let env = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = env("TOKPORTAL_CONFIG_DIR") {
        return Ok(dir.join("listen-secret"));
    }
    let config = env("XDG_CONFIG_HOME")
        .or_else(|| env("HOME").map(|h| h.join(".config")))
        .or_else(|| env("APPDATA"))
        .ok_or_else(|| Failure::usage("no config folder: set TOKPORTAL_CONFIG_DIR, XDG_CONFIG_HOME or HOME"))?;
    Ok(config.join(SECRET_FILE))
}

/// The secret kept at `path`, made on first use (`whsec_` and 32 random
/// bytes in hex), readable by the user alone.
fn secret(path: &std::path::Path) -> Result<String, Failure> {
    let unreadable =
        |e: std::io::Error| Failure::usage(format!("cannot keep the listen secret at {}: {e}", path.display()));
    match std::fs::read_to_string(path) {
        Ok(kept) => {
            let kept = kept.trim();
            if kept.starts_with("whsec_") && kept.len() > 20 {
                return Ok(kept.to_owned());
            }
            return Err(Failure::usage(format!(
                "{} does not hold a listen secret (whsec_...); remove it to make a new one",
                path.display()
            )));
        }
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(unreadable(e)),
        Err(_) => {}
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(unreadable)?;
    }
    let made = format!("whsec_{}", hex::encode(rand::random::<[u8; 32]>()));
    let mut file = std::fs::OpenOptions::new();
    file.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut file, 0o600);
    match file.open(path) {
        Ok(mut f) => {
            f.write_all(format!("{made}\n").as_bytes()).map_err(unreadable)?;
            Ok(made)
        }
        // Another `listen` made it first: use that one.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => secret(path),
        Err(e) => Err(unreadable(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_is_made_once_and_kept_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/listen-secret");
        let first = secret(&path).unwrap();
        assert!(first.starts_with("whsec_") && first.len() == 6 + 64, "{first}");
        assert_eq!(secret(&path).unwrap(), first);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        std::fs::write(&path, "not a secret").unwrap();
        assert!(secret(&path).is_err());
    }
}
