//! `tokportal login`, `logout`, `auth status` and `auth token`: keys kept
//! in named profiles (`crate::profiles`), as `gh auth` and `stripe login`
//! keep theirs.
//!
//! `login` reads the key (hidden input at a terminal, or stdin with
//! `--with-key`), checks it with `getCurrentUser` against the profile's base
//! URL before anything is kept, prints the account it belongs to, and keeps
//! it. `auth status` says which profile and account would pay, where the key
//! is kept and whether it still works, never the key; `auth token` prints
//! the key, for scripts.

use std::io::{BufRead, IsTerminal};

use clap::{Arg, ArgAction, ArgMatches, Command};
use serde_json::Value;

use super::IDENTIFIER;
use super::exit::{EXIT_NO_KEY, Failure};
use super::flags::{CallFlags, KeyFrom};
use crate::profiles::{KeptIn, Profiles};
use crate::{ClientBuilder, OperationArgs, ResponseBody, Secret};

/// `login`, `logout` and `auth`.
pub(crate) fn commands() -> [Command; 3] {
    let profile = || {
        Arg::new("profile")
            .long("profile")
            .value_name("NAME")
            .help("The profile (default $TOKPORTAL_PROFILE or `default`)")
    };
    [
        Command::new("login")
            .about("Check an API key and keep it in a profile (the OS keyring, or a 0600 file)")
            .arg(profile())
            .arg(
                Arg::new("base_url")
                    .long("base-url")
                    .value_name("URL")
                    .help("The profile's API base URL (e.g. a sandbox's: http://127.0.0.1:8787)"),
            )
            .arg(
                Arg::new("with_key")
                    .long("with-key")
                    .action(ArgAction::SetTrue)
                    .help("Read the key from stdin (one line) instead of asking for it"),
            )
            .arg(
                Arg::new("insecure_storage")
                    .long("insecure-storage")
                    .action(ArgAction::SetTrue)
                    .help("Keep the key in a 0600 file of the config folder, not the OS keyring"),
            ),
        Command::new("logout")
            .about("Forget a profile and its key")
            .arg(profile()),
        Command::new("auth")
            .about("Which profile and account a call would use, or its key for a script")
            .subcommand_required(true)
            .subcommand(
                Command::new("status")
                    .about("The profile, the account that would pay, where its key is kept, and whether it works")
                    .arg(profile()),
            )
            .subcommand(
                Command::new("token")
                    .about("Print the key a call would use (for scripts: it is a secret)")
                    .arg(profile()),
            ),
    ]
}

fn profile_flag(top: &ArgMatches, sub: &ArgMatches) -> String {
    let flag = sub
        .get_one::<String>("profile")
        .or_else(|| top.try_get_one::<String>("profile").ok().flatten());
    crate::profiles::selected(flag.map(String::as_str))
}

fn store() -> Result<Profiles, Failure> {
    Profiles::open().map_err(|e| Failure::usage(e.to_string()))
}

/// `tokportal login`.
pub(crate) async fn login(top: &ArgMatches, sub: &ArgMatches) -> Result<(), Failure> {
    let name = profile_flag(top, sub);
    let store = store()?;
    let known = store.get(&name).map_err(|e| Failure::usage(e.to_string()))?;
    let given_url = sub
        .get_one::<String>("base_url")
        .or_else(|| top.try_get_one::<String>("base_url").ok().flatten())
        .map(|u| u.trim().to_owned())
        .filter(|u| !u.is_empty());
    let base_url = given_url
        .clone()
        .or_else(|| known.as_ref().and_then(|p| p.base_url.clone()));
    let key = read_key(sub.get_flag("with_key"))?;
    let account = check(&key, base_url.as_deref()).await.map_err(|mut f| {
        if f.code == super::exit::EXIT_API {
            f.message.push_str("; nothing was kept");
        }
        f
    })?;
    let kept = store
        .save(&name, base_url.as_deref(), &key, sub.get_flag("insecure_storage"))
        .map_err(|e| Failure::usage(e.to_string()))?;
    if let KeptIn::File(path) = &kept
        && !sub.get_flag("insecure_storage")
    {
        eprintln!(
            "warning: no OS keyring is usable here: the key is kept in {}, readable by you only (mode 0600)",
            path.display()
        );
    }
    eprintln!(
        "Logged in to {} as {account}",
        base_url.as_deref().unwrap_or(crate::DEFAULT_BASE_URL)
    );
    eprintln!("Profile `{name}`, key kept in {kept}");
    Ok(())
}

/// The key: one line of stdin with `--with-key`, else asked for, hidden, at
/// a terminal.
fn read_key(with_key: bool) -> Result<Secret, Failure> {
    let line = if with_key {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .take_line(&mut line)
            .map_err(|e| Failure::usage(format!("cannot read the key from stdin: {e}")))?;
        line
    } else if std::io::stdin().is_terminal() {
        rpassword::prompt_password("TokPortal API key: ")
            .map_err(|e| Failure::usage(format!("cannot read the key: {e}")))?
    } else {
        return Err(Failure::usage(
            "no terminal to ask for the key at: pass it on stdin with --with-key",
        ));
    };
    let key = line.trim();
    if key.is_empty() {
        return Err(Failure::usage("no key given"));
    }
    Ok(Secret::new(key))
}

/// A bounded line reader: a key is short, and stdin may be anything.
trait TakeLine {
    fn take_line(&mut self, line: &mut String) -> std::io::Result<usize>;
}

impl<R: BufRead> TakeLine for R {
    fn take_line(&mut self, line: &mut String) -> std::io::Result<usize> {
        use std::io::Read;
        self.take(4096).read_line(line)
    }
}

/// Checks `key` with `getCurrentUser`; the account as one line (email,
/// plan, balance).
async fn check(key: &Secret, base_url: Option<&str>) -> Result<String, Failure> {
    let mut builder = ClientBuilder::new().client_identifier(IDENTIFIER).api_key(key.expose());
    if let Some(url) = base_url {
        super::flags::check_base_url(url)?;
        builder = builder.base_url(url);
    }
    let client = builder.build().map_err(Failure::from)?;
    let answer = client
        .request_operation("getCurrentUser", OperationArgs::new())
        .await
        .map_err(refused)?;
    let user = match &answer.body {
        ResponseBody::Json(v) => v.get("data").unwrap_or(v).clone(),
        _ => Value::Null,
    };
    Ok(account_line(&user))
}

/// A key the API refused, in one line (`login` keeps nothing then); any
/// other failure as every command says it.
fn refused(e: crate::Error) -> Failure {
    match &e {
        crate::Error::Api(api) => Failure {
            code: super::exit::EXIT_API,
            message: format!(
                "error: TokPortal refused the key ({} {}: {})",
                api.status,
                api.code.as_deref().unwrap_or("HTTP"),
                api.message.trim_end_matches('.')
            ),
        },
        _ => Failure::from(e),
    }
}

/// `email (plan PLAN, N credits)`, from what the answer holds.
fn account_line(user: &Value) -> String {
    let email = user.get("email").and_then(Value::as_str).unwrap_or("an account");
    let mut parts = Vec::new();
    if let Some(plan) = user.pointer("/subscription/plan").and_then(Value::as_str) {
        parts.push(format!("plan {plan}"));
    }
    if let Some(balance) = user.pointer("/credits/balance").and_then(Value::as_f64) {
        parts.push(format!("{balance} credits"));
    }
    if parts.is_empty() {
        email.to_owned()
    } else {
        format!("{email} ({})", parts.join(", "))
    }
}

/// `tokportal logout`.
pub(crate) fn logout(top: &ArgMatches, sub: &ArgMatches) -> Result<(), Failure> {
    let name = profile_flag(top, sub);
    if store()?.forget(&name).map_err(|e| Failure::usage(e.to_string()))? {
        eprintln!("Profile `{name}` and its key forgotten");
        Ok(())
    } else {
        Err(Failure::usage(format!("there is no profile `{name}`")))
    }
}

/// `tokportal auth status|token`.
pub(crate) async fn auth(top: &ArgMatches, sub: &ArgMatches) -> Result<(), Failure> {
    let Some((what, m)) = sub.subcommand() else {
        return Err(Failure::usage("auth status or auth token"));
    };
    // The call options a call would use, with this --profile.
    let mut flags = CallFlags::read(top, m);
    if m.get_one::<String>("profile").is_some() {
        flags.profile = profile_flag(top, m);
    }
    let Some(key) = flags.api_key.clone().map(Secret::new) else {
        return Err(Failure {
            code: EXIT_NO_KEY,
            message: format!(
                "error: no API key for profile `{}`: run `tokportal login`, pass --api-key or set TOKPORTAL_API_KEY",
                flags.profile
            ),
        });
    };
    match what {
        "token" => super::stdout::line(key.expose()),
        _ => {
            let url = flags.base_url.as_deref().unwrap_or(crate::DEFAULT_BASE_URL);
            super::stdout::line(&format!(
                "Profile:  {}\nAPI:      {url}\nKey:      from {}{}",
                flags.profile,
                flags.key_from,
                match flags.key_from {
                    KeyFrom::Profile(_) | KeyFrom::Nowhere => String::new(),
                    _ => " (it overrides the profile)".into(),
                }
            ))?;
            match check(&key, flags.base_url.as_deref()).await {
                Ok(account) => super::stdout::line(&format!("Account:  {account}\nStatus:   the key works")),
                Err(f) => {
                    super::stdout::line("Status:   the key does not work")?;
                    Err(f)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_account_in_one_line() {
        let user =
            serde_json::json!({"email": "a@b.test", "subscription": {"plan": "pro"}, "credits": {"balance": 12.5}});
        assert_eq!(account_line(&user), "a@b.test (plan pro, 12.5 credits)");
        assert_eq!(account_line(&serde_json::json!({"email": "a@b.test"})), "a@b.test");
    }
}
