//! Running one operation from its parsed flags: the client, the arguments,
//! the body or file, and where the answer goes.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use clap::ArgMatches;
use futures::TryStreamExt;
use serde_json::{Map, Value};

use super::IDENTIFIER;
use super::commands::flag;
use super::exit::Failure;
use super::flags::CallFlags;
use super::input::read_input;
use super::output::{self, OutputFile, Sink, write_body};
use crate::operations::{IdempotencyKeySupport, Operation, ParamLocation};
use crate::uploads::{UploadOptions, UploadSource};
use crate::{Client, ClientBuilder, Error, OperationArgs, RetryPolicy};

fn client(flags: &CallFlags, op: Option<&Operation>) -> Result<Client, Failure> {
    let mut builder = ClientBuilder::new().client_identifier(IDENTIFIER);
    match &flags.api_key {
        Some(key) => builder = builder.api_key(key.as_str()),
        None if op.is_some_and(|o| o.requires_auth) => return Err(Error::MissingApiKey.into()),
        None => {}
    }
    if let Some(url) = &flags.base_url {
        builder = builder.base_url(url.as_str());
    }
    let mut policy = if flags.no_retry {
        RetryPolicy::disabled()
    } else {
        RetryPolicy::default()
    };
    if let Some(t) = flags.timeout {
        let t = Duration::from_secs(t);
        builder = builder.timeout(t).upload_timeout(t);
        // A longer --timeout also lengthens the overall deadline, so one attempt may use all of it.
        let deadline = policy.overall_deadline().max(t);
        policy = policy.deadline(deadline);
    }
    builder = builder.retry(policy).strict_contract(flags.strict);
    builder.build().map_err(Failure::from)
}

pub(crate) async fn run_operation(
    op: &'static Operation,
    global: &ArgMatches,
    sub: &ArgMatches,
) -> Result<(), Failure> {
    let flags = CallFlags::read(global, sub);
    let client = client(&flags, Some(op))?;
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
    let key = flags.idempotency_key.clone();
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
    for (name, value) in sub.get_many::<(String, String)>(flag::QUERY).into_iter().flatten() {
        let value = Value::String(value.clone());
        match args.query.get_mut(name) {
            Some(Value::Array(values)) => values.push(value),
            Some(first) => *first = Value::Array(vec![first.take(), value]),
            None => {
                args.query.insert(name.clone(), value);
            }
        }
    }
    args.idempotency_key = key.clone();
    args.request_id = flags.request_id.clone();
    args.dry_run = flags.dry_run;
    let compact = flags.compact;
    // Checked before anything is sent: a paid answer must have somewhere to go.
    let sink = Sink::new(flags.output.as_deref().map(OutputFile::open).transpose()?);

    if op.is_multipart() {
        let path = sub
            .get_one::<PathBuf>(flag::FILE)
            .ok_or_else(|| Failure::usage("--file is required"))?;
        let total = crate::uploads::check_readable(path)?;
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
        if args.dry_run {
            options = options.dry_run();
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
        let response = response?;
        print_preview(&response);
        return write_body(response.body, sink, compact);
    }

    {
        let raw = match (
            sub.try_get_one::<String>(flag::BODY).ok().flatten(),
            sub.try_get_one::<PathBuf>(flag::BODY_FILE).ok().flatten(),
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
        } else if op.body.is_some_and(|b| b.required) {
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
        let mut sink = sink;
        let mut items = client.paginate(op.id, args)?.items();
        while let Some(item) = items.try_next().await? {
            sink.write(format!("{item}\n").as_bytes())?;
        }
        return sink.finish();
    }

    // A read-only answer for a file is copied as it comes, whatever its size
    // (a download that breaks off starts again). Everything else is read within
    // the attempt, bounded by the client's limit, so that a body cut off is
    // retried like any dropped connection.
    if op.method.is_read_only() && sink.has_file() {
        let attempts = client.inner.retry_policy().attempts();
        return output::download(&client, op.id, args, sink, attempts).await;
    }
    let response = client.request_operation(op.id, args).await?;
    print_preview(&response);
    write_body(response.body, sink, compact)
}

/// A dry run's preview, on stderr in one line (the answer itself goes to stdout).
fn print_preview(response: &crate::OperationResponse) {
    if let Some(preview) = response.dry_run_preview() {
        eprintln!("{preview}");
    }
}
