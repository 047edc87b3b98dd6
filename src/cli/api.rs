//! `tokportal api METHOD PATH`: a raw call, as `gh api` and `stripe get|post`
//! make them, for what the vendored contract does not know yet. It goes
//! through the same pipeline as every command ([`crate::raw`]): the stored
//! key, retries, idempotency keys, dry runs, `-v`, the contract's checks
//! where the path is an operation's, and the confirmation before a paid call
//! at a terminal. Where the path is no operation's, a warning says so and
//! the call is sent as given, to the configured origin only.

use std::path::PathBuf;

use clap::{Arg, ArgAction, ArgMatches, Command};
use serde_json::Value;

use super::exit::Failure;
use super::flags::CallFlags;
use super::input::read_input;
use super::output::{OutputFile, Sink, write_body};
use crate::operations::{HttpMethod, OPERATIONS};
use crate::raw::RawRequest;

/// The `api` command.
pub(crate) fn command() -> Command {
    Command::new("api")
        .about("Call any path of the API: checked as its operation where it is one, sent as given (with a warning) where not")
        .long_about(
            "Call any path of the API, through the same pipeline as every command: the stored key, \
             retries, idempotency keys, --dry-run, -v, and the confirmation before a paid call at a \
             terminal. Where METHOD and PATH are an operation of the vendored contract, its checks apply \
             before anything is sent; where they are none, a warning says so and the call is sent as given. \
             The key is only ever sent to the configured base URL's origin.\n\n\
             Examples:\n  tokportal api GET /me\n  tokportal api GET /bundles -q status=published --jq '.data[].id'\n  \
             tokportal api POST /bundles --body @bundle.json --dry-run",
        )
        .arg(
            Arg::new("method")
                .required(true)
                .value_name("METHOD")
                .help("GET, POST, PUT, PATCH, DELETE, ..."),
        )
        .arg(
            Arg::new("path")
                .required(true)
                .value_name("PATH")
                .help("The path below the base URL (`/bundles/ID`), with a query if you like"),
        )
        .arg(
            Arg::new("query")
                .short('q')
                .long("query")
                .value_name("NAME=VALUE")
                .action(ArgAction::Append)
                .value_parser(super::args::name_value)
                .help("A query parameter (repeatable)"),
        )
        .arg(
            Arg::new("body")
                .long("body")
                .value_name("JSON|@FILE|-")
                .help("The JSON body: inline, @FILE to read it from a file, - from stdin"),
        )
        .arg(
            Arg::new("header")
                .short('H')
                .long("header")
                .value_name("NAME:VALUE")
                .action(ArgAction::Append)
                .value_parser(|s: &str| match s.split_once(':') {
                    Some((name, value)) if !name.trim().is_empty() => {
                        Ok((name.trim().to_owned(), value.trim().to_owned()))
                    }
                    _ => Err(format!("`{s}` is not NAME:VALUE")),
                })
                .help("A request header (repeatable); Idempotency-Key, X-Request-ID and X-TokPortal-Dry-Run are the call's own"),
        )
        .arg(
            Arg::new("include")
                .short('i')
                .long("include")
                .action(ArgAction::SetTrue)
                .help("Print the status line and the answer's headers before its body"),
        )
        .args(super::flags::call_flags())
}

/// Runs `tokportal api`.
pub(crate) async fn run(global: &ArgMatches, sub: &ArgMatches) -> Result<(), Failure> {
    let flags = CallFlags::read(global, sub);
    let method_name = sub.get_one::<String>("method").map(String::as_str).unwrap_or_default();
    let method = HttpMethod::parse(method_name)
        .ok_or_else(|| Failure::usage(format!("`{method_name}` is not an HTTP method")))?;
    let path = sub.get_one::<String>("path").cloned().unwrap_or_default();
    let path = below_base(&path, flags.base_url.as_deref().unwrap_or(crate::DEFAULT_BASE_URL))?;
    let mut raw = RawRequest::new(method, path);
    for (name, value) in sub.get_many::<(String, String)>("query").into_iter().flatten() {
        raw = raw.query(name.clone(), value.clone());
    }
    for (name, value) in sub.get_many::<(String, String)>("header").into_iter().flatten() {
        raw = raw.header(name.clone(), value.clone());
    }
    if let Some(body) = sub.get_one::<String>("body") {
        raw = raw.body(body_of(body)?);
    }
    if flags.idempotency_key.is_some() {
        raw.idempotency_key = flags.idempotency_key.clone();
    }
    if flags.request_id.is_some() {
        raw.request_id = flags.request_id.clone();
    }
    raw.dry_run |= flags.dry_run;
    let op = raw.operation();
    if op.is_none() {
        eprintln!(
            "warning: {} {} is no operation of the vendored contract ({} operations, spec {}): sent as given, unchecked",
            method.as_str(),
            raw.path,
            OPERATIONS.len(),
            crate::operations::SPEC_VERSION
        );
    }
    // Checked before anything is sent: where the answer goes, and the filter.
    let sink = Sink::new(flags.output.as_deref().map(OutputFile::open).transpose()?);
    let shape = flags.shape(sink.has_file())?;
    let client = flags.client(op.is_none_or(|op| op.requires_auth))?;
    if let Some(op) = op {
        let (client, raw) = (&client, &raw);
        // The preview is made only when a person is to be asked.
        super::confirm::before_spending(
            op,
            raw.dry_run,
            flags.yes,
            || async move {
                let mut preview = raw.clone();
                preview.dry_run = true;
                // The key belongs to the real call; a preview must not take its place.
                preview.idempotency_key = None;
                let answer = client.request_raw(preview).await?;
                Ok(match &answer.body {
                    crate::ResponseBody::Json(v) => crate::DryRunPreview::from_body(v),
                    _ => None,
                })
            },
            || super::confirm::balance(client),
        )
        .await?;
    }
    let include = sub.get_flag("include");
    let answer = client.request_raw(raw).await?;
    if let crate::ResponseBody::Json(v) = &answer.body
        && let Some(preview) = crate::DryRunPreview::from_body(v)
    {
        eprintln!("{preview}");
    }
    if include {
        let mut head = format!(
            "HTTP {} {}\n",
            answer.status,
            http::StatusCode::from_u16(answer.status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or_default()
        );
        for (name, value) in &answer.headers {
            head.push_str(&format!("{name}: {}\n", String::from_utf8_lossy(value.as_bytes())));
        }
        head.push('\n');
        super::stdout::write(head.as_bytes())?;
    }
    write_body(answer.operation.unwrap_or("unlisted"), answer.body, sink, &shape)
}

/// PATH as a path below the base URL: a whole URL is accepted only on the
/// configured origin (the key goes nowhere else), and the base URL's own
/// path, when PATH repeats it, is taken off.
fn below_base(path: &str, base_url: &str) -> Result<String, Failure> {
    let base = url::Url::parse(base_url).map_err(|e| Failure::usage(format!("base URL: {e}")))?;
    let base_path = base.path().trim_end_matches('/');
    let path = if path.contains("://") {
        let url = url::Url::parse(path).map_err(|e| Failure::usage(format!("`{path}`: {e}")))?;
        if url.origin() != base.origin() {
            return Err(Failure::usage(format!(
                "{} is not the configured API origin ({}): the key is sent nowhere else; give a path, or --base-url",
                url.origin().ascii_serialization(),
                base.origin().ascii_serialization()
            )));
        }
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        }
    } else if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    };
    Ok(match path.strip_prefix(base_path) {
        Some(rest) if !base_path.is_empty() && (rest.starts_with('/') || rest.starts_with('?')) => rest.to_owned(),
        _ => path,
    })
}

/// `--body`: inline JSON, `@FILE`, or `-` for stdin.
fn body_of(body: &str) -> Result<Value, Failure> {
    let bytes = match body {
        "-" => read_input(None)?,
        _ => match body.strip_prefix('@') {
            Some(file) => read_input(Some(&PathBuf::from(file)))?,
            None => body.as_bytes().to_vec(),
        },
    };
    serde_json::from_slice(&bytes).map_err(|e| Failure::usage(format!("--body is not JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_below_the_base_url() {
        let base = "https://app.tokportal.com/api/ext";
        assert_eq!(below_base("/bundles", base).unwrap(), "/bundles");
        assert_eq!(below_base("bundles?x=1", base).unwrap(), "/bundles?x=1");
        assert_eq!(below_base("/api/ext/bundles", base).unwrap(), "/bundles");
        assert_eq!(
            below_base("https://app.tokportal.com/api/ext/me?a=b", base).unwrap(),
            "/me?a=b"
        );
        assert_eq!(below_base("/api/extra", base).unwrap(), "/api/extra");
    }

    #[test]
    fn another_origin_never_gets_the_key() {
        let e = below_base("https://evil.example/api/ext/me", "https://app.tokportal.com/api/ext").unwrap_err();
        assert!(e.message.contains("https://evil.example"), "{}", e.message);
        assert_eq!(e.code, super::super::exit::EXIT_USAGE);
    }
}
