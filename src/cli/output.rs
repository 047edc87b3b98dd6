//! Where answers go: stdout (pretty JSON on a terminal) or an `--output`
//! file that is checked before anything is sent, written beside its target
//! and moved into place when whole. A paid answer is never thrown away: if it
//! cannot be written where asked, it goes to stdout, and stderr says so.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use futures::TryStreamExt;

use super::exit::{EXIT_API, EXIT_TRANSPORT, Failure};
use super::render::Shape;
use crate::pipeline::retry;
use crate::{Error, ResponseBody};

/// An `--output` target, checked before the request: not a folder, in a
/// folder that exists and takes a new file. The answer is written to a
/// `.part` file beside it and moved into place by [`OutputFile::commit`];
/// dropped before that, the `.part` file is removed.
pub(crate) struct OutputFile {
    target: PathBuf,
    part: PathBuf,
    file: Option<File>,
    keep: bool,
}

impl OutputFile {
    /// Checks `target` by creating the `.part` file it will be written through.
    pub(crate) fn open(target: &Path) -> Result<Self, Failure> {
        let refuse = |why: String| Failure::usage(format!("--output {}: {why}; nothing was sent", target.display()));
        if target.is_dir() {
            return Err(refuse("is a folder".into()));
        }
        let name = target
            .file_name()
            .ok_or_else(|| refuse("names no file".into()))?
            .to_string_lossy()
            .into_owned();
        let dir = target
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let part = dir.join(format!(".{name}.{}.part", std::process::id()));
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&part)
            .map_err(|e| refuse(format!("cannot write there ({e})")))?;
        Ok(Self {
            target: target.to_owned(),
            part,
            file: Some(file),
            keep: false,
        })
    }

    /// Moves the whole answer into place.
    pub(crate) fn commit(mut self) -> Result<(), Failure> {
        let flushed = self.file.take().map(|mut f| f.flush().and_then(|()| f.sync_all()));
        if let Some(Err(e)) = flushed {
            self.keep = true;
            return Err(kept_elsewhere(&self.target, &self.part, &e));
        }
        std::fs::rename(&self.part, &self.target).map_err(|e| {
            self.keep = true;
            kept_elsewhere(&self.target, &self.part, &e)
        })
    }
}

impl Drop for OutputFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.part);
        }
    }
}

fn kept_elsewhere(target: &Path, part: &Path, e: &std::io::Error) -> Failure {
    Failure {
        code: EXIT_API,
        message: format!(
            "error: cannot write {}: {e}; the answer was received whole and is kept in {}",
            target.display(),
            part.display()
        ),
    }
}

/// Where the bytes of an answer go: the `--output` file or stdout. Once the
/// file fails, the rest goes to stdout, so that nothing of a paid answer is lost.
pub(crate) struct Sink {
    output: Option<OutputFile>,
    failed: Option<String>,
}

impl Sink {
    /// A sink writing to `output`, or to stdout without one.
    pub(crate) fn new(output: Option<OutputFile>) -> Self {
        Self { output, failed: None }
    }

    /// Whether an `--output` file is the destination.
    pub(crate) fn has_file(&self) -> bool {
        self.output.is_some()
    }

    /// Empties the `--output` file to write the answer again; false when it cannot.
    fn restart(&mut self) -> bool {
        use std::io::Seek;
        self.output
            .as_mut()
            .and_then(|o| o.file.as_mut())
            .is_some_and(|f| f.set_len(0).is_ok() && f.rewind().is_ok())
    }

    pub(crate) fn write(&mut self, bytes: &[u8]) -> Result<(), Failure> {
        if bytes.is_empty() {
            return Ok(());
        }
        if self.failed.is_none()
            && let Some(output) = self.output.as_mut()
            && let Some(file) = output.file.as_mut()
        {
            match file.write_all(bytes) {
                Ok(()) => return Ok(()),
                Err(e) => {
                    output.keep = true;
                    self.failed = Some(format!(
                        "error: cannot write {} ({e}); what came before is in {}, the rest went to stdout",
                        output.target.display(),
                        output.part.display()
                    ));
                }
            }
        }
        super::stdout::write(bytes)
    }

    /// Moves a whole `--output` file into place, or reports where the answer went.
    pub(crate) fn finish(self) -> Result<(), Failure> {
        let Sink { output, failed, .. } = self;
        match (failed, output) {
            (Some(message), _) => Err(Failure {
                code: EXIT_API,
                message,
            }),
            (None, Some(output)) => output.commit(),
            (None, None) => Ok(()),
        }
    }
}

/// Downloads a read-only operation's answer into the `--output` file as it
/// comes, without parsing it (memory stays at one chunk, whatever the size).
/// A body that breaks off starts the file again when the client's retry
/// policy says so ([`retry::decide`], as for any broken answer: with its
/// backoff, its number of attempts and its deadline). It is a second loop
/// beside the pipeline's because the answer is streamed to the file after
/// the call has returned, where the pipeline's attempts have ended.
pub(crate) async fn download(
    client: &crate::Client,
    operation_id: &str,
    args: crate::OperationArgs,
    mut sink: Sink,
) -> Result<(), Failure> {
    let policy = client.inner.retry_policy().clone();
    let deadline = tokio::time::Instant::now() + policy.overall_deadline();
    let mut waits = policy.backoff();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let response = client.send_operation(operation_id, args.clone()).await?;
        let mut body = response.bytes_stream();
        let broke = loop {
            match body.try_next().await {
                Ok(Some(chunk)) => sink.write(&chunk)?,
                Ok(None) => break None,
                Err(e) => break Some(e),
            }
        };
        let Some(e) = broke else { return sink.finish() };
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        // A read-only request: safe to send again.
        let wait = retry::decide(retry::Outcome::Failed, true, waits.next(), None, &policy, remaining);
        match wait {
            Some(wait) if sink.failed.is_none() && sink.restart() => {
                tracing::info!(
                    operation = operation_id,
                    attempt,
                    wait_ms = wait.as_millis() as u64,
                    error = %e,
                    "the download broke off; starting again"
                );
                tokio::time::sleep(wait).await;
            }
            _ => {
                return Err(Failure {
                    code: EXIT_TRANSPORT,
                    message: format!("error: {}", Error::from_reqwest(e)),
                });
            }
        }
    }
}

/// Writes a decoded answer: JSON as [`Shape`] shows it, text as it came.
pub(crate) fn write_body(op: &str, body: ResponseBody, mut sink: Sink, shape: &Shape) -> Result<(), Failure> {
    let bytes = match &body {
        ResponseBody::Json(v) if sink.has_file() && shape.is_plain() => {
            serde_json::to_vec_pretty(v).unwrap_or_default()
        }
        ResponseBody::Json(v) => match shape.answer(op, v) {
            Ok(text) => text.into_bytes(),
            // A filter that fails on the answer does not lose it: the
            // answer is written whole, and the failure said after it.
            Err(failure) => {
                let mut whole = serde_json::to_vec(v).unwrap_or_default();
                whole.push(b'\n');
                sink.write(&whole)?;
                sink.finish()?;
                return Err(failure);
            }
        },
        ResponseBody::Text(t) => t.clone().into_bytes(),
        ResponseBody::Empty => Vec::new(),
    };
    sink.write(&bytes)?;
    sink.finish()
}
