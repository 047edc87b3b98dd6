//! The call options every operation takes (key, base URL, retries, output,
//! ...), and their reading into [`CallFlags`] before anything is done. They
//! may stand before the command or after it; the environment fills in the
//! key and the base URL (read here, so usage lines never show them as given).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Arg, ArgAction, ArgMatches};

use super::exit::Failure;
use super::render::{Format, Shape};
use crate::{Client, ClientBuilder, Error, RetryPolicy};

/// The call options: on the top-level command (before the command) and on
/// every operation (after it), but not on the local tools.
pub(crate) fn call_flags() -> Vec<Arg> {
    vec![
        Arg::new("api_key")
            .long("api-key")
            .value_name("KEY")
            .help("API key (X-API-Key); default $TOKPORTAL_API_KEY, then the profile's (tokportal login)"),
        Arg::new("base_url")
            .long("base-url")
            .value_name("URL")
            .help("API base URL; default $TOKPORTAL_BASE_URL, the profile's, or https://app.tokportal.com/api/ext"),
        Arg::new("profile")
            .long("profile")
            .value_name("NAME")
            .help("Profile whose key and base URL to use (tokportal login); default $TOKPORTAL_PROFILE or `default`"),
        Arg::new("idempotency_key")
            .long("idempotency-key")
            .value_name("KEY")
            .help("Idempotency-Key for a mutating call"),
        Arg::new("request_id")
            .long("request-id")
            .value_name("ID")
            .help("X-Request-ID to correlate the call"),
        Arg::new("timeout")
            .long("timeout")
            .value_name("SECONDS")
            .value_parser(clap::value_parser!(u64).range(1..))
            .help("Timeout of each attempt, in seconds"),
        Arg::new("no_retry")
            .long("no-retry")
            .action(ArgAction::SetTrue)
            .help("Send once, never retry"),
        Arg::new("strict")
            .long("strict")
            .action(ArgAction::SetTrue)
            .help("Refuse, before sending, what the vendored contract does not know (unknown fields, enum values, query parameters)"),
        Arg::new("dry_run")
            .long("dry-run")
            .action(ArgAction::SetTrue)
            .help("Preview a mutating call (X-TokPortal-Dry-Run): prints what it would charge; changes nothing"),
        Arg::new("compact")
            .long("compact")
            .action(ArgAction::SetTrue)
            .help("Compact JSON output"),
        Arg::new("format")
            .long("format")
            .value_name("FORMAT")
            .value_parser(super::render::Format::NAMES)
            .help("Output format; default: a table for a list and indented JSON at a terminal, compact JSON in a pipe"),
        Arg::new("jq")
            .long("jq")
            .value_name("EXPR")
            .help("Filter the answer with a jq expression (built in); strings print raw, the rest as JSON"),
        Arg::new("yes")
            .long("yes")
            .short('y')
            .action(ArgAction::SetTrue)
            .help("Charge credits without asking at a terminal (or TOKPORTAL_YES=1); a pipe is never asked"),
        Arg::new("verbose")
            .long("verbose")
            .short('v')
            .action(ArgAction::Count)
            .help("Show each attempt on stderr (-v), with headers (-vv), with bodies (-vvv; or TOKPORTAL_DEBUG=api); RUST_LOG overrides"),
        Arg::new("output")
            .long("output")
            .short('o')
            .value_name("FILE")
            .value_parser(clap::value_parser!(PathBuf))
            .help("Write the response body to this file"),
    ]
}

/// The call options as given, from after the command first, then before it.
#[derive(Debug, Default)]
pub(crate) struct CallFlags {
    pub(crate) api_key: Option<String>,
    pub(crate) base_url: Option<String>,
    /// The profile named (`--profile`, `$TOKPORTAL_PROFILE`, `default`).
    pub(crate) profile: String,
    /// Where the key came from, as `auth status` says it.
    pub(crate) key_from: KeyFrom,
    pub(crate) idempotency_key: Option<String>,
    pub(crate) request_id: Option<String>,
    pub(crate) timeout: Option<u64>,
    pub(crate) no_retry: bool,
    pub(crate) strict: bool,
    pub(crate) dry_run: bool,
    pub(crate) compact: bool,
    /// `--format`, by name (one of `render::Format::NAMES`).
    pub(crate) format: Option<String>,
    /// `--jq`.
    pub(crate) jq: Option<String>,
    /// `--yes` or `TOKPORTAL_YES`: never ask before spending.
    pub(crate) yes: bool,
    pub(crate) output: Option<PathBuf>,
    /// The profile was named (`--profile`, `$TOKPORTAL_PROFILE`) but none
    /// of that name exists: the names that do.
    pub(crate) unknown_profile: Option<Vec<String>>,
}

impl CallFlags {
    pub(crate) fn read(top: &ArgMatches, sub: &ArgMatches) -> Self {
        fn value<T: Clone + Send + Sync + 'static>(top: &ArgMatches, sub: &ArgMatches, id: &str) -> Option<T> {
            let get = |m: &ArgMatches| m.try_get_one::<T>(id).ok().flatten().cloned();
            get(sub).or_else(|| get(top))
        }
        let flag = |id: &str| {
            let get = |m: &ArgMatches| m.try_get_one::<bool>(id).ok().flatten().copied().unwrap_or(false);
            get(sub) || get(top)
        };
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let text = |v: Option<String>| v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
        let named = value::<String>(top, sub, "profile");
        let profile_named = named.is_some() || env(crate::profiles::PROFILE_ENV).is_some();
        let profile = crate::profiles::selected(named.as_deref());
        // A profile named by --profile must exist, whatever else gives the
        // key: a typo must not let another key pay.
        let mut unknown_profile = None;
        if named.is_some() {
            let names = profile_names();
            if !names.contains(&profile) {
                unknown_profile = Some(names);
            }
        }
        // The flag, then the environment, then the profile (read only when
        // one of the two is still missing), then the defaults.
        let (mut api_key, mut key_from) = match (text(value(top, sub, "api_key")), text(env(crate::API_KEY_ENV))) {
            (Some(key), _) => (Some(key), KeyFrom::Flag),
            (None, Some(key)) => (Some(key), KeyFrom::Environment),
            (None, None) => (None, KeyFrom::Nowhere),
        };
        let mut base_url = text(value(top, sub, "base_url")).or_else(|| text(env(crate::BASE_URL_ENV)));
        if api_key.is_none() || base_url.is_none() {
            match crate::profiles::Profiles::open().and_then(|store| store.read(&profile, api_key.is_none())) {
                Ok(Some(found)) => {
                    base_url = base_url.or(found.base_url);
                    if api_key.is_none()
                        && let Some(key) = found.key
                    {
                        api_key = Some(key.expose().to_owned());
                        key_from = KeyFrom::Profile(found.kept_in);
                    }
                }
                Ok(None) if profile_named && unknown_profile.is_none() => unknown_profile = Some(profile_names()),
                Ok(None) => {}
                Err(e) => eprintln!("warning: profile `{profile}` not read: {e}"),
            }
        }
        Self {
            api_key,
            base_url,
            profile,
            key_from,
            idempotency_key: value(top, sub, "idempotency_key"),
            request_id: value(top, sub, "request_id"),
            timeout: value(top, sub, "timeout"),
            no_retry: flag("no_retry"),
            strict: flag("strict"),
            dry_run: flag("dry_run"),
            compact: flag("compact"),
            format: value(top, sub, "format"),
            jq: value(top, sub, "jq"),
            yes: flag("yes") || env("TOKPORTAL_YES").is_some_and(|v| !matches!(v.as_str(), "0" | "false" | "no")),
            output: value(top, sub, "output"),
            unknown_profile,
        }
    }
}

/// The names of the profiles kept (`profiles.toml`'s), sorted.
fn profile_names() -> Vec<String> {
    let Ok(store) = crate::profiles::Profiles::open() else {
        return Vec::new();
    };
    let text = std::fs::read_to_string(store.dir().join("profiles.toml")).unwrap_or_default();
    let table: toml::Table = toml::from_str(&text).unwrap_or_default();
    let mut names: Vec<String> = table
        .get("profiles")
        .and_then(toml::Value::as_table)
        .map(|t| t.keys().cloned().collect())
        .unwrap_or_default();
    names.sort();
    names
}

/// A base URL must say its scheme: `127.0.0.1:8787` gets the hint of the
/// one it most likely means (`http://` on this machine, else `https://`).
pub(crate) fn check_base_url(url: &str) -> Result<(), Failure> {
    if url.contains("://") {
        return Ok(());
    }
    let local = ["127.", "localhost", "[::1]", "0.0.0.0"]
        .iter()
        .any(|l| url.starts_with(l));
    let scheme = if local { "http" } else { "https" };
    Err(Failure::usage(format!(
        "the base URL `{url}` has no scheme: did you mean `{scheme}://{url}`?"
    )))
}

impl CallFlags {
    /// The client of a call from these flags; `needs_key`: refused without a key.
    pub(crate) fn client(&self, needs_key: bool) -> Result<Client, Failure> {
        let mut builder = ClientBuilder::new().client_identifier(super::IDENTIFIER);
        if let Some(names) = &self.unknown_profile {
            return Err(Failure {
                code: super::exit::EXIT_NO_KEY,
                message: unknown_profile(&self.profile, names),
            });
        }
        match &self.api_key {
            Some(key) => builder = builder.api_key(key.as_str()),
            None if needs_key => return Err(Error::MissingApiKey.into()),
            None => {}
        }
        if let Some(url) = &self.base_url {
            check_base_url(url)?;
            builder = builder.base_url(url.as_str());
        }
        let mut policy = if self.no_retry {
            RetryPolicy::disabled()
        } else {
            RetryPolicy::default()
        };
        if let Some(t) = self.timeout {
            let t = Duration::from_secs(t);
            builder = builder.timeout(t).upload_timeout(t);
            // A longer --timeout also lengthens the overall deadline, so one attempt may use all of it.
            let deadline = policy.overall_deadline().max(t);
            policy = policy.deadline(deadline);
        }
        builder = builder.retry(policy).strict_contract(self.strict);
        builder.build().map_err(Failure::from)
    }

    /// How the answer is shown, from `--format`, `--jq` and `--compact`,
    /// checked (the filter compiled) before anything is sent.
    pub(crate) fn shape(&self, to_file: bool) -> Result<Shape, Failure> {
        let format = self.format.as_deref().and_then(Format::named);
        Shape::new(format, self.jq.as_deref(), self.compact, to_file)
    }
}

/// "no profile `nope`", with the ones there are.
pub(crate) fn unknown_profile(name: &str, names: &[String]) -> String {
    let known = if names.is_empty() {
        "there is none yet".to_owned()
    } else {
        format!(
            "the profiles are {}",
            names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
        )
    };
    format!("error: no profile `{name}`: {known}; `tokportal login --profile {name}` makes it")
}

/// Where a call's key came from.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) enum KeyFrom {
    /// `--api-key`.
    Flag,
    /// `$TOKPORTAL_API_KEY`.
    Environment,
    /// The profile, kept there.
    Profile(crate::profiles::KeptIn),
    /// No key.
    #[default]
    Nowhere,
}

impl std::fmt::Display for KeyFrom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyFrom::Flag => f.write_str("--api-key"),
            KeyFrom::Environment => write!(f, "${}", crate::API_KEY_ENV),
            KeyFrom::Profile(kept) => write!(f, "the profile, kept in {kept}"),
            KeyFrom::Nowhere => f.write_str("nowhere"),
        }
    }
}

/// How many `-v` were given, before the command and after it.
pub(crate) fn verbosity(global: &ArgMatches) -> u8 {
    let count = |m: &ArgMatches| m.try_get_one::<u8>("verbose").ok().flatten().copied().unwrap_or(0);
    let after = global.subcommand().map_or(0, |(_, sub)| count(sub));
    count(global).saturating_add(after)
}
