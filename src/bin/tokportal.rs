//! `tokportal`: the TokPortal API from the command line, one subcommand per
//! operation of the vendored spec (named by kebab-casing the operationId).
//!
//! Exit codes: 0 success, 1 API error (JSON `{"payload", "diagnostics"}` on
//! stderr), 2 usage error, 3 missing API key, 4 transport failure.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::builder::{PossibleValuesParser, TypedValueParser, ValueParser};
use clap::{Arg, ArgAction, ArgMatches, Command};
use futures::TryStreamExt;
use serde_json::{Map, Value, json};
use tokportal::operations::{IdempotencyKeySupport, OPERATIONS, Operation, ParamLocation};
use tokportal::uploads::{UploadOptions, UploadSource};
use tokportal::webhooks::{Verifier, sign};
use tokportal::{Client, ClientBuilder, Error, OperationArgs, ResponseBody, RetryPolicy};

/// `X-TokPortal-Client` of the CLI.
const IDENTIFIER: &str = concat!("tokportal-rust-cli/", env!("CARGO_PKG_VERSION"));

const EXIT_API: u8 = 1;
const EXIT_USAGE: u8 = 2;
const EXIT_NO_KEY: u8 = 3;
const EXIT_TRANSPORT: u8 = 4;

/// Flags that are not spec parameters; their ids are prefixed so they never
/// clash with a parameter of the same name.
mod flag {
    pub const BODY: &str = "__body";
    pub const BODY_FILE: &str = "__body_file";
    pub const FILE: &str = "__file";
    pub const ALL_PAGES: &str = "__all_pages";
    pub const CONTENT_TYPE: &str = "__content_type";
}

fn global_args() -> Vec<Arg> {
    vec![
        Arg::new("api_key")
            .long("api-key")
            .env(tokportal::API_KEY_ENV)
            .hide_env_values(true)
            .global(true)
            .help("API key (X-API-Key); default $TOKPORTAL_API_KEY"),
        Arg::new("base_url")
            .long("base-url")
            .env(tokportal::BASE_URL_ENV)
            .global(true)
            .help("API base URL; default $TOKPORTAL_BASE_URL or https://app.tokportal.com/api/ext"),
        Arg::new("idempotency_key")
            .long("idempotency-key")
            .global(true)
            .help("Idempotency-Key for a mutating call"),
        Arg::new("request_id")
            .long("request-id")
            .global(true)
            .help("X-Request-ID to correlate the call"),
        Arg::new("timeout")
            .long("timeout")
            .global(true)
            .value_parser(clap::value_parser!(u64).range(1..))
            .help("Timeout of each attempt, in seconds"),
        Arg::new("no_retry")
            .long("no-retry")
            .global(true)
            .action(ArgAction::SetTrue)
            .help("Send once, never retry"),
        Arg::new("compact")
            .long("compact")
            .global(true)
            .action(ArgAction::SetTrue)
            .help("Compact JSON output"),
        Arg::new("output")
            .long("output")
            .short('o')
            .global(true)
            .value_parser(clap::value_parser!(PathBuf))
            .help("Write the response body to this file"),
    ]
}

/// A clap value parser from a parameter's JSON Schema: enums list their
/// values, integers their range, UUIDs and booleans their form.
fn parser_for(schema: &Value) -> ValueParser {
    let schema = match schema.get("type").and_then(Value::as_str) {
        Some("array") => schema.get("items").cloned().unwrap_or(Value::Null),
        _ => schema.clone(),
    };
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        let names: Vec<String> = values.iter().filter_map(Value::as_str).map(str::to_owned).collect();
        return PossibleValuesParser::new(names).into();
    }
    let ty = match schema.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("string")
            .to_owned(),
        _ => "string".into(),
    };
    match ty.as_str() {
        "integer" => {
            let min = schema.get("minimum").and_then(Value::as_i64).unwrap_or(i64::MIN);
            let max = schema.get("maximum").and_then(Value::as_i64).unwrap_or(i64::MAX);
            clap::value_parser!(i64).range(min..=max).map(|v| v.to_string()).into()
        }
        "number" => ValueParser::new(|s: &str| {
            s.parse::<f64>()
                .map(|_| s.to_owned())
                .map_err(|e| format!("not a number: {e}"))
        }),
        "boolean" => clap::builder::BoolishValueParser::new().map(|v| v.to_string()).into(),
        _ if schema.get("format").and_then(Value::as_str) == Some("uuid") => ValueParser::new(|s: &str| {
            uuid::Uuid::parse_str(s)
                .map(|_| s.to_owned())
                .map_err(|e| format!("not a UUID: {e}"))
        }),
        _ => ValueParser::string(),
    }
}

fn param_arg(name: &str, schema: &Value, required: bool, help: Option<&str>, repeatable: bool) -> Arg {
    let dashed = name.replace('_', "-");
    let mut arg = Arg::new(name.to_owned())
        .long(name.to_owned())
        .value_name(name.to_uppercase())
        .required(required)
        .value_parser(parser_for(schema));
    if dashed != name {
        arg = arg.visible_alias(dashed);
    }
    if let Some(help) = help {
        arg = arg.help(help.to_owned());
    }
    if repeatable {
        arg = arg
            .action(ArgAction::Append)
            .help(format!("{} (repeatable)", help.unwrap_or("")).trim().to_owned());
    }
    arg
}

fn operation_command(op: &'static Operation) -> Command {
    let mut cmd = Command::new(op.cli_command)
        .about(op.summary)
        .next_help_heading("Parameters");
    let mut long = format!("{}\n\n{} {}", op.summary, op.method.as_str(), op.path);
    if let Some(d) = op.description.filter(|d| *d != op.summary) {
        long = format!("{}\n\n{d}\n\n{} {}", op.summary, op.method.as_str(), op.path);
    }
    cmd = cmd.long_about(long);
    for p in op.params {
        cmd = cmd.arg(param_arg(p.name, &p.schema(), p.required, p.description, p.repeatable));
    }
    if let Some(body) = op.body {
        if op.is_multipart() {
            cmd = cmd.arg(
                Arg::new(flag::FILE)
                    .long("file")
                    .value_name("PATH")
                    .required(true)
                    .value_parser(clap::value_parser!(PathBuf))
                    .help("The file to upload (streamed from disk)"),
            );
            cmd = cmd.arg(
                Arg::new(flag::CONTENT_TYPE)
                    .long("content-type")
                    .help("Content type of the file (default: from its extension)"),
            );
            for field in body.form_fields() {
                let help = field
                    .schema
                    .get("description")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                cmd = cmd.arg(param_arg(
                    &field.name,
                    &field.schema,
                    field.required,
                    help.as_deref(),
                    false,
                ));
            }
        } else {
            cmd = cmd
                .arg(
                    Arg::new(flag::BODY)
                        .long("body")
                        .value_name("JSON")
                        .help("JSON request body, or - to read it from stdin")
                        .conflicts_with(flag::BODY_FILE),
                )
                .arg(
                    Arg::new(flag::BODY_FILE)
                        .long("body-file")
                        .value_name("PATH")
                        .value_parser(clap::value_parser!(PathBuf))
                        .help("Read the JSON request body from a file"),
                )
                .group(
                    clap::ArgGroup::new("request_body")
                        .args([flag::BODY, flag::BODY_FILE])
                        .required(body.required),
                );
        }
    }
    if op.paginated {
        cmd = cmd.arg(
            Arg::new(flag::ALL_PAGES)
                .long("all-pages")
                .action(ArgAction::SetTrue)
                .help("Fetch every page and print each item as one JSON line"),
        );
    }
    cmd
}

fn cli() -> Command {
    let mut groups: BTreeMap<&str, Vec<&Operation>> = BTreeMap::new();
    for op in OPERATIONS {
        groups.entry(op.tag).or_default().push(op);
    }
    let mut listing = String::from("Commands (one per API operation, by tag):\n");
    for (tag, ops) in &groups {
        listing.push_str(&format!("\n  {tag}:\n"));
        for op in ops {
            listing.push_str(&format!("    {:<42} {}\n", op.cli_command, op.summary));
        }
    }
    listing.push_str("\n  Local tools:\n    webhooks verify / webhooks sign            Check or sign a TokPortal-Signature\n    completions <shell>                        Shell completions\n");
    let mut cmd = Command::new("tokportal")
        .version(env!("CARGO_PKG_VERSION"))
        .about("The TokPortal API from the command line")
        .subcommand_required(true)
        .arg_required_else_help(true)
        .help_template("{about-with-newline}\n{usage-heading} {usage}\n\n{after-help}\nOptions:\n{options}\n")
        .after_help(listing)
        .args(global_args());
    for op in OPERATIONS {
        cmd = cmd.subcommand(operation_command(op));
    }
    cmd.subcommand(
        Command::new("webhooks")
            .about("Verify or sign webhook deliveries locally")
            .subcommand_required(true)
            .subcommand(
                Command::new("verify")
                    .about("Verify a delivery: prints the event type and id, or why it failed (exit 1)")
                    .arg(
                        Arg::new("secret")
                            .long("secret")
                            .required(true)
                            .action(ArgAction::Append)
                            .help("Signing secret (repeat during a rotation)"),
                    )
                    .arg(
                        Arg::new("header")
                            .long("header")
                            .required(true)
                            .help("The TokPortal-Signature header value"),
                    )
                    .arg(
                        Arg::new("body_file")
                            .long("body-file")
                            .value_parser(clap::value_parser!(PathBuf))
                            .help("The raw body (default: stdin)"),
                    )
                    .arg(
                        Arg::new("tolerance")
                            .long("tolerance")
                            .value_parser(clap::value_parser!(u64))
                            .help("Accepted age in seconds (default 300)"),
                    )
                    .arg(
                        Arg::new("no_age_check")
                            .long("no-age-check")
                            .action(ArgAction::SetTrue)
                            .help("Skip the age check"),
                    ),
            )
            .subcommand(
                Command::new("sign")
                    .about("Print a valid TokPortal-Signature for a body, for local testing")
                    .arg(Arg::new("secret").long("secret").required(true))
                    .arg(
                        Arg::new("timestamp")
                            .long("timestamp")
                            .value_parser(clap::value_parser!(i64))
                            .help("Unix time (default: now)"),
                    )
                    .arg(
                        Arg::new("body_file")
                            .long("body-file")
                            .value_parser(clap::value_parser!(PathBuf))
                            .help("The raw body (default: stdin)"),
                    ),
            ),
    )
    .subcommand(
        Command::new("completions").about("Print shell completions").arg(
            Arg::new("shell")
                .required(true)
                .value_parser(clap::value_parser!(clap_complete::Shell)),
        ),
    )
}

/// A failure with its exit code; the message is already formatted for stderr.
struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    fn usage(message: impl Into<String>) -> Self {
        Self {
            code: EXIT_USAGE,
            message: format!("error: {}", message.into()),
        }
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        match &e {
            Error::Api(api) => Failure {
                code: EXIT_API,
                message: serde_json::to_string_pretty(
                    &json!({"payload": api.payload(), "diagnostics": api.diagnostics()}),
                )
                .unwrap_or_else(|_| api.to_string()),
            },
            Error::MissingApiKey => Failure {
                code: EXIT_NO_KEY,
                message: "error: no API key: pass --api-key or set TOKPORTAL_API_KEY".into(),
            },
            Error::Connect(_) | Error::Timeout(_) | Error::Transport(_) => Failure {
                code: EXIT_TRANSPORT,
                message: format!("error: {}", one_line(&e)),
            },
            Error::InvalidArgument { .. } | Error::Io { .. } | Error::Config(_) => Failure::usage(e.to_string()),
            _ => Failure {
                code: EXIT_API,
                message: format!("error: {e}"),
            },
        }
    }
}

/// The error and its causes on one line.
fn one_line(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let next = s.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = s.source();
    }
    text.replace('\n', " ")
}

fn read_input(path: Option<&PathBuf>) -> Result<Vec<u8>, Failure> {
    let mut buf = Vec::new();
    match path {
        Some(p) if p.as_os_str() != "-" => {
            buf = std::fs::read(p).map_err(|e| Failure::usage(format!("cannot read {}: {e}", p.display())))?
        }
        _ => {
            std::io::stdin()
                .read_to_end(&mut buf)
                .map_err(|e| Failure::usage(format!("cannot read stdin: {e}")))?;
        }
    }
    Ok(buf)
}

fn client(matches: &ArgMatches, op: Option<&Operation>) -> Result<Client, Failure> {
    let mut builder = ClientBuilder::new().client_identifier(IDENTIFIER);
    match matches.get_one::<String>("api_key").filter(|k| !k.trim().is_empty()) {
        Some(key) => builder = builder.api_key(key.trim()),
        None if op.is_some_and(|o| o.requires_auth) => return Err(Error::MissingApiKey.into()),
        None => {}
    }
    if let Some(url) = matches.get_one::<String>("base_url").filter(|u| !u.trim().is_empty()) {
        builder = builder.base_url(url.trim());
    }
    let mut policy = if matches.get_flag("no_retry") {
        RetryPolicy::disabled()
    } else {
        RetryPolicy::default()
    };
    if let Some(t) = matches.get_one::<u64>("timeout") {
        let t = Duration::from_secs(*t);
        builder = builder.timeout(t).upload_timeout(t);
        // A longer --timeout also lengthens the overall deadline, so one attempt may use all of it.
        let deadline = policy.overall_deadline().max(t);
        policy = policy.deadline(deadline);
    }
    builder = builder.retry(policy);
    builder.build().map_err(Failure::from)
}

fn print_json(value: &Value, compact: bool) -> Result<(), Failure> {
    let pretty = !compact && std::io::stdout().is_terminal();
    let text = if pretty {
        serde_json::to_string_pretty(value)
    } else {
        serde_json::to_string(value)
    }
    .map_err(|e| Failure {
        code: EXIT_API,
        message: format!("error: {e}"),
    })?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}").map_err(|e| Failure {
        code: EXIT_API,
        message: format!("error: stdout: {e}"),
    })
}

async fn run_operation(op: &'static Operation, global: &ArgMatches, sub: &ArgMatches) -> Result<(), Failure> {
    let client = client(global, Some(op))?;
    let mut args = OperationArgs::new();
    for p in op.params {
        let values: Vec<Value> = sub
            .get_many::<String>(p.name)
            .into_iter()
            .flatten()
            .map(|s| Value::String(s.clone()))
            .collect();
        let value = match (p.repeatable, values.len()) {
            (_, 0) => continue,
            (true, _) => Value::Array(values),
            (false, _) => values.into_iter().next().unwrap_or(Value::Null),
        };
        match p.location {
            ParamLocation::Path => args.path.insert(p.name.to_owned(), value),
            ParamLocation::Query => args.query.insert(p.name.to_owned(), value),
        };
    }
    let key = global.get_one::<String>("idempotency_key").cloned();
    if key.is_some() && op.idempotency_key != IdempotencyKeySupport::Accepted {
        return Err(Failure::usage(format!(
            "{} does not take --idempotency-key ({})",
            op.cli_command,
            if op.idempotency_key == IdempotencyKeySupport::Refused {
                "its answer holds a secret or one-time value"
            } else {
                "it changes nothing"
            }
        )));
    }
    args.idempotency_key = key.clone();
    args.request_id = global.get_one::<String>("request_id").cloned();
    let compact = global.get_flag("compact");
    let output = global.get_one::<PathBuf>("output");

    if op.is_multipart() {
        let path = sub
            .get_one::<PathBuf>(flag::FILE)
            .ok_or_else(|| Failure::usage("--file is required"))?;
        let total = tokportal::uploads::check_readable(path)?;
        let mut fields: Map<String, Value> = args.path.clone();
        for field in op.body.map(|b| b.form_fields()).unwrap_or_default() {
            if let Some(v) = sub.get_one::<String>(&field.name) {
                fields.insert(field.name.clone(), Value::String(v.clone()));
            }
        }
        let mut options = UploadOptions::new();
        if let Some(k) = key {
            options = options.idempotency_key(k);
        }
        if let Some(r) = &args.request_id {
            options = options.request_id(r.clone());
        }
        if let Some(ct) = sub.get_one::<String>(flag::CONTENT_TYPE) {
            options = options.content_type(ct.clone());
        }
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(total);
            bar.set_style(
                indicatif::ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} {eta}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar
        });
        if let Some(bar) = bar.clone() {
            options = options.on_progress(move |sent, _| bar.set_position(sent));
        }
        let response = client
            .request_upload(op.id, fields, UploadSource::path(path), options)
            .await;
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        return write_body(response?.body, output, compact);
    }

    if let Some(body) = op.body {
        let raw = match (
            sub.get_one::<String>(flag::BODY),
            sub.get_one::<PathBuf>(flag::BODY_FILE),
        ) {
            (Some(text), _) if text == "-" => Some(read_input(None)?),
            (Some(text), _) => Some(text.as_bytes().to_vec()),
            (None, Some(path)) => Some(read_input(Some(path))?),
            (None, None) => None,
        };
        if let Some(raw) = raw {
            let value: Value =
                serde_json::from_slice(&raw).map_err(|e| Failure::usage(format!("--body is not JSON: {e}")))?;
            args.body = Some(value);
        } else if body.required {
            return Err(Failure::usage("this command needs --body, --body-file or --body -"));
        }
    }

    if op.paginated
        && sub
            .try_get_one::<bool>(flag::ALL_PAGES)
            .ok()
            .flatten()
            .copied()
            .unwrap_or(false)
    {
        let mut items = client.paginate(op.id, args)?.items();
        let mut out = std::io::stdout().lock();
        while let Some(item) = items.try_next().await? {
            writeln!(out, "{item}").map_err(|e| Failure {
                code: EXIT_API,
                message: format!("error: stdout: {e}"),
            })?;
        }
        return Ok(());
    }

    if let Some(path) = output {
        // Stream the body to the file as it arrives (a large CSV export).
        let response = client.send_operation(op.id, args).await?;
        let mut file = tokio::fs::File::create(path)
            .await
            .map_err(|e| Failure::usage(format!("cannot create {}: {e}", path.display())))?;
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream
            .try_next()
            .await
            .map_err(|e| Failure::from(Error::Transport(e)))?
        {
            tokio::io::AsyncWriteExt::write_all(&mut file, &chunk)
                .await
                .map_err(|e| Failure::usage(format!("cannot write {}: {e}", path.display())))?;
        }
        return Ok(());
    }
    let response = client.request_operation(op.id, args).await?;
    write_body(response.body, None, compact)
}

fn write_body(body: ResponseBody, output: Option<&PathBuf>, compact: bool) -> Result<(), Failure> {
    let bytes = match (&body, output) {
        (ResponseBody::Json(v), None) => return print_json(v, compact),
        (ResponseBody::Empty, None) => return Ok(()),
        (ResponseBody::Json(v), Some(_)) => serde_json::to_vec_pretty(v).unwrap_or_default(),
        (ResponseBody::Text(t), _) => t.clone().into_bytes(),
        (ResponseBody::Empty, Some(_)) => Vec::new(),
    };
    match output {
        Some(path) => {
            std::fs::write(path, bytes).map_err(|e| Failure::usage(format!("cannot write {}: {e}", path.display())))
        }
        None => std::io::stdout().lock().write_all(&bytes).map_err(|e| Failure {
            code: EXIT_API,
            message: format!("error: stdout: {e}"),
        }),
    }
}

fn webhooks(sub: &ArgMatches) -> Result<(), Failure> {
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
            headers.insert(tokportal::webhooks::SIGNATURE_HEADER, value);
            match verifier.construct_event(&headers, &body) {
                Ok(event) => {
                    println!("{} {}", event.event_type, event.id);
                    Ok(())
                }
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
            println!("{}", sign(secret, timestamp, &body));
            Ok(())
        }
        _ => Err(Failure::usage("expected `webhooks verify` or `webhooks sign`")),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let matches = match cli().try_get_matches() {
        Ok(m) => m,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { 0 });
        }
    };
    let result = match matches.subcommand() {
        Some(("webhooks", sub)) => webhooks(sub),
        Some(("completions", sub)) => {
            if let Some(shell) = sub.get_one::<clap_complete::Shell>("shell") {
                clap_complete::generate(*shell, &mut cli(), "tokportal", &mut std::io::stdout());
            }
            Ok(())
        }
        Some((name, sub)) => match OPERATIONS.iter().find(|o| o.cli_command == name) {
            Some(op) => run_operation(op, &matches, sub).await,
            None => Err(Failure::usage(format!("unknown command {name}"))),
        },
        None => Err(Failure::usage("a command is required")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("{}", f.message);
            ExitCode::from(f.code)
        }
    }
}
