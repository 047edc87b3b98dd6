//! Running one operation from its parsed flags: the client, the arguments,
//! the body or file, and where the answer goes.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use clap::ArgMatches;
use futures::TryStreamExt;
use serde_json::{Map, Value};

use super::IDENTIFIER;
use super::commands::flag;
use super::exit::{EXIT_API, Failure};
use super::input::read_input;
use super::output::write_body;
use crate::operations::{IdempotencyKeySupport, Operation, ParamLocation};
use crate::uploads::{UploadOptions, UploadSource};
use crate::{Client, ClientBuilder, Error, OperationArgs, RetryPolicy};

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
    builder = builder.retry(policy).strict_contract(matches.get_flag("strict"));
    builder.build().map_err(Failure::from)
}

pub(crate) async fn run_operation(
    op: &'static Operation,
    global: &ArgMatches,
    sub: &ArgMatches,
) -> Result<(), Failure> {
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
    args.request_id = global.get_one::<String>("request_id").cloned();
    args.dry_run = global.get_flag("dry_run");
    let compact = global.get_flag("compact");
    let output = global.get_one::<PathBuf>("output");

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
        return write_body(response.body, output, compact);
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

    if let Some(path) = output.filter(|_| !args.dry_run) {
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
    print_preview(&response);
    write_body(response.body, output, compact)
}

/// A dry run's preview, on stderr in one line (the answer itself goes to stdout).
fn print_preview(response: &crate::OperationResponse) {
    if let Some(preview) = response.dry_run_preview() {
        eprintln!("{preview}");
    }
}
