//! Running one operation from its parsed flags: the client, the arguments,
//! the body or file, and where the answer goes.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::ArgMatches;
use futures::TryStreamExt;
use serde_json::{Map, Value};

use super::commands::flag;
use super::exit::{EXIT_INTERRUPTED, Failure};
use super::flags::CallFlags;
use super::input::read_input;
use super::output::{self, OutputFile, Sink, write_body};
use super::render::Shape;
use crate::operations::{IdempotencyKeySupport, Operation, ParamLocation};
use crate::uploads::{UploadOptions, UploadSource};
use crate::{Client, OperationArgs};

/// What a command will do, resolved from its flags and checked, before
/// anything is sent (ripgrep's low-level to high-level arguments).
enum Plan {
    /// One call; its answer printed, or written to `--output`.
    Call(OperationArgs),
    /// A multipart upload of a file checked readable (`total` bytes).
    Upload {
        fields: Map<String, Value>,
        path: PathBuf,
        total: u64,
        options: UploadOptions,
    },
    /// Every page (`--all-pages`), one item a line.
    AllPages(OperationArgs),
    /// A read-only answer streamed into the `--output` file as it comes.
    Download(OperationArgs),
}

/// Runs `op` from its parsed flags: the client, the output, the plan, then
/// the plan carried out.
pub(crate) async fn run_operation(
    op: &'static Operation,
    global: &ArgMatches,
    sub: &ArgMatches,
) -> Result<(), Failure> {
    let flags = CallFlags::read(global, sub);
    let client = flags.client(op.requires_auth)?;
    let args = arguments(op, &flags, sub)?;
    // Checked before anything is sent: a paid answer must have somewhere to
    // go, and a filter that does not compile must not cost a call.
    let sink = Sink::new(flags.output.as_deref().map(OutputFile::open).transpose()?);
    let shape = flags.shape(sink.has_file())?;
    let plan = plan(op, args, sub, sink.has_file() && shape.is_plain())?;
    if let Plan::Call(args) | Plan::AllPages(args) | Plan::Download(args) = &plan {
        super::values::check(op, args, flags.strict)?;
    }
    let plan = match plan {
        Plan::Call(args) => {
            // The preview is made only when a person is to be asked.
            super::confirm::before_spending(
                op,
                args.dry_run,
                flags.yes,
                || async {
                    let mut preview = args.clone();
                    preview.dry_run = true;
                    // The key belongs to the real call; a preview must not take its place.
                    preview.idempotency_key = None;
                    Ok(client.request_operation(op.id, preview).await?.dry_run_preview())
                },
                || super::confirm::balance(&client),
            )
            .await?;
            Plan::Call(args)
        }
        other => other,
    };
    carry_out(&client, op, plan, sink, &shape).await
}

/// The path and query arguments, the idempotency key (refused where the
/// operation takes none), the request id and the dry run.
fn arguments(op: &Operation, flags: &CallFlags, sub: &ArgMatches) -> Result<OperationArgs, Failure> {
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
    if flags.idempotency_key.is_some() && op.idempotency_key != IdempotencyKeySupport::Accepted {
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
    args.idempotency_key = flags.idempotency_key.clone();
    args.request_id = flags.request_id.clone();
    args.dry_run = flags.dry_run;
    Ok(args)
}

/// The plan for `args`: an upload (its file checked), all pages, a
/// download, or one call (its body read and parsed).
fn plan(op: &Operation, mut args: OperationArgs, sub: &ArgMatches, to_file: bool) -> Result<Plan, Failure> {
    if op.is_multipart() {
        return upload_plan(op, &args, sub);
    }
    args.body = body(op, sub)?;
    let all_pages = op.paginated
        && sub
            .try_get_one::<bool>(flag::ALL_PAGES)
            .ok()
            .flatten()
            .copied()
            .unwrap_or(false);
    Ok(if all_pages {
        Plan::AllPages(args)
    } else if op.method.is_read_only() && to_file {
        // A read-only answer for a file is copied as it comes, whatever its
        // size. Everything else is read within the attempt, bounded by the
        // client's limit, so that a body cut off is retried like any dropped
        // connection.
        Plan::Download(args)
    } else {
        Plan::Call(args)
    })
}

/// An upload's plan: the file checked readable, its form fields, its options.
fn upload_plan(op: &Operation, args: &OperationArgs, sub: &ArgMatches) -> Result<Plan, Failure> {
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
    if let Some(k) = &args.idempotency_key {
        options = options.idempotency_key(k.clone());
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
    Ok(Plan::Upload {
        fields,
        path: path.clone(),
        total,
        options,
    })
}

/// The JSON body: `--body`, `--body-file` or `--body -`, parsed, with the
/// body's field flags merged over it (`cli::body`); a usage error naming
/// the flags of the required fields when they are missing.
fn body(op: &Operation, sub: &ArgMatches) -> Result<Option<Value>, Failure> {
    let raw = match (
        sub.try_get_one::<String>(flag::BODY).ok().flatten(),
        sub.try_get_one::<PathBuf>(flag::BODY_FILE).ok().flatten(),
    ) {
        (Some(text), _) if text == "-" => Some(read_input(None)?),
        (Some(text), _) => Some(text.as_bytes().to_vec()),
        (None, Some(path)) => Some(read_input(Some(path))?),
        (None, None) => None,
    };
    let base = match raw {
        Some(raw) => {
            Some(serde_json::from_slice(&raw).map_err(|e| Failure::usage(format!("--body is not JSON: {e}")))?)
        }
        None => None,
    };
    let body = super::body::merge(op, sub, base)?;
    let needed = op.body.is_some_and(|b| b.required);
    let missing = match &body {
        None if needed => {
            let mut flags = super::body::missing(op, None);
            if flags.is_empty() {
                flags.push("a body".into());
            }
            flags
        }
        Some(b) => super::body::missing(op, Some(b)),
        None => Vec::new(),
    };
    if !missing.is_empty() {
        return Err(Failure::usage(format!(
            "{} needs {} (or the whole body as --body JSON or --body-file PATH)\n\nExample:\n  {}\n\nThe body's fields: tokportal schema {}",
            op.cli_command,
            missing.join(", "),
            super::schema::example_line(op),
            op.cli_command
        )));
    }
    Ok(body)
}

/// Carries `plan` out: the only place a request is sent.
async fn carry_out(
    client: &Client,
    op: &'static Operation,
    plan: Plan,
    mut sink: Sink,
    shape: &Shape,
) -> Result<(), Failure> {
    match plan {
        Plan::Upload {
            fields,
            path,
            total,
            mut options,
        } => {
            let bar = std::io::stderr().is_terminal().then(|| {
                let bar = indicatif::ProgressBar::new(total);
                bar.set_style(
                    indicatif::ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} {eta}")
                        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
                );
                bar
            });
            // Set on Ctrl-C: the body may still be read a moment after, and
            // must not draw the bar again.
            let stopped = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            if let Some(bar) = bar.clone() {
                let stopped = stopped.clone();
                options = options.on_progress(move |sent, _| {
                    if !stopped.load(std::sync::atomic::Ordering::SeqCst) {
                        bar.set_position(sent);
                    }
                });
            }
            let upload = client.request_upload(op.id, fields, UploadSource::path(&path), options);
            // Ctrl-C while the file streams: the bar is cleared and one line
            // says where things stand. The answer had not come, so TokPortal
            // kept no upload (a multipart body cut off is no request) and
            // uploads charge nothing.
            let response = tokio::select! {
                response = upload => response,
                _ = tokio::signal::ctrl_c() => {
                    stopped.store(true, std::sync::atomic::Ordering::SeqCst);
                    if let Some(bar) = &bar {
                        bar.finish_and_clear();
                        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
                        // indicatif leaves the cursor at the right end of the
                        // bar's line, so the `^C` the terminal echoes lands on
                        // the line below: that line is wiped, then the bar's.
                        eprint!("\r\x1b[2K\x1b[1A\r\x1b[2K");
                    }
                    return Err(Failure {
                        code: EXIT_INTERRUPTED,
                        message: format!(
                            "interrupted: {} stopped before TokPortal answered; nothing was recorded or charged",
                            op.cli_command
                        ),
                    });
                }
            };
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
            let response = response?;
            print_preview(&response);
            write_body(op.id, response.body, sink, shape)
        }
        Plan::AllPages(args) => {
            let mut pages = client.paginate(op.id, args)?.pages();
            let mut shown = shape.pages(op.id);
            while let Some(page) = pages.try_next().await? {
                sink.write(shown.page(page)?.as_bytes())?;
            }
            sink.write(shown.finish().as_bytes())?;
            sink.finish()
        }
        Plan::Download(args) => output::download(client, op.id, args, sink).await,
        Plan::Call(args) => {
            let response = client.request_operation(op.id, args).await?;
            print_preview(&response);
            write_body(op.id, response.body, sink, shape)
        }
    }
}

/// A dry run's preview, on stderr in one line (the answer itself goes to stdout).
fn print_preview(response: &crate::OperationResponse) {
    if let Some(preview) = response.dry_run_preview() {
        eprintln!("{}", super::confirm::without_empty_breakdown(preview));
    }
}
