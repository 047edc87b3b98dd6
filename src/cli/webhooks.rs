//! `tokportal webhooks verify|sign`: local tools, no request is sent.

use std::path::PathBuf;
use std::time::Duration;

use clap::ArgMatches;

use super::exit::{EXIT_API, Failure};
use super::input::read_input;
use crate::webhooks::{Verifier, sign};

pub(crate) fn run(sub: &ArgMatches) -> Result<(), Failure> {
    match sub.subcommand() {
        Some(("verify", m)) => {
            let body = read_input(m.get_one::<PathBuf>("body_file"))?;
            let mut secrets = m.get_many::<String>("secret").into_iter().flatten();
            let first = secrets.next().ok_or_else(|| Failure::usage("--secret is required"))?;
            let mut verifier = Verifier::new(first.as_str());
            for s in secrets {
                verifier = verifier.with_secret(s.as_str());
            }
            if m.get_flag("no_age_check") {
                verifier = verifier.without_age_check();
            } else if let Some(t) = m.get_one::<u64>("tolerance") {
                verifier = verifier.tolerance(Duration::from_secs(*t));
            }
            let header = m.get_one::<String>("header").map(String::as_str).unwrap_or_default();
            let mut headers = http::HeaderMap::new();
            let value = header.parse().map_err(|_| Failure {
                code: EXIT_API,
                message: "invalid: the header is not a valid header value".into(),
            })?;
            headers.insert(crate::webhooks::SIGNATURE_HEADER, value);
            match verifier.construct_event(&headers, &body) {
                Ok(event) => super::stdout::line(&format!("{} {}", event.event_type, event.id)),
                Err(e) => Err(Failure {
                    code: EXIT_API,
                    message: format!("invalid: {e}"),
                }),
            }
        }
        Some(("sign", m)) => {
            let body = read_input(m.get_one::<PathBuf>("body_file"))?;
            let secret = m.get_one::<String>("secret").map(String::as_str).unwrap_or_default();
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0);
            let timestamp = m.get_one::<i64>("timestamp").copied().unwrap_or(now);
            super::stdout::line(&sign(secret, timestamp, &body))
        }
        _ => Err(Failure::usage("expected `webhooks verify` or `webhooks sign`")),
    }
}
