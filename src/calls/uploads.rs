//! The three `multipart/form-data` operations, written by hand from the spec
//! (progenitor 0.15 cannot generate multipart bodies), and upload helpers.
//!
//! Files are streamed from disk in 256 KiB chunks, never read whole into
//! memory, with a known length (so the request has a `Content-Length`), an
//! optional progress callback and the client's upload timeout (30 min by
//! default instead of the ordinary 30 s).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt, TryStreamExt};
use serde_json::{Map, Value};
use tokio::io::AsyncRead;
use tokio_util::io::ReaderStream;
use uuid::Uuid;

use crate::check::form::check_form;
use crate::error::Error;
use crate::generated::{Client, ResponseValue};
use crate::operations::{self, Operation};
use crate::pipeline::decode::{self, Answer, OperationResponse, decode_response};
use crate::pipeline::execute::{self, Body, Replay};
use crate::pipeline::prepare;

const CHUNK: usize = 256 * 1024;

/// A progress callback: `(bytes sent, total bytes)`.
pub type Progress = Arc<dyn Fn(u64, u64) + Send + Sync>;

type BoxedReader = Box<dyn AsyncRead + Send + Unpin>;

/// Where the uploaded file comes from.
pub struct UploadSource {
    kind: SourceKind,
}

enum SourceKind {
    /// Re-opened for each attempt, so a retried upload is sent whole again.
    Path(PathBuf),
    /// Re-sent from memory on a retry.
    Bytes { data: Bytes, filename: String },
    /// Read once: an upload from a reader is not retried once sending began.
    Reader {
        reader: Mutex<Option<BoxedReader>>,
        len: u64,
        filename: String,
    },
}

impl fmt::Debug for UploadSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            SourceKind::Path(p) => f.debug_tuple("UploadSource::Path").field(p).finish(),
            SourceKind::Bytes { data, filename } => f
                .debug_struct("UploadSource::Bytes")
                .field("filename", filename)
                .field("len", &data.len())
                .finish(),
            SourceKind::Reader { len, filename, .. } => f
                .debug_struct("UploadSource::Reader")
                .field("filename", filename)
                .field("len", len)
                .finish(),
        }
    }
}

impl UploadSource {
    /// A file on disk, streamed (and re-opened for each retry).
    pub fn path(path: impl Into<PathBuf>) -> Self {
        Self {
            kind: SourceKind::Path(path.into()),
        }
    }

    /// Bytes in memory, with the file name to report.
    pub fn bytes(data: impl Into<Bytes>, filename: impl Into<String>) -> Self {
        Self {
            kind: SourceKind::Bytes {
                data: data.into(),
                filename: filename.into(),
            },
        }
    }

    /// Any async reader of exactly `len` bytes, with the file name to report.
    pub fn reader(reader: impl AsyncRead + Send + Unpin + 'static, len: u64, filename: impl Into<String>) -> Self {
        Self {
            kind: SourceKind::Reader {
                reader: Mutex::new(Some(Box::new(reader))),
                len,
                filename: filename.into(),
            },
        }
    }

    fn filename(&self) -> String {
        match &self.kind {
            SourceKind::Path(p) => p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "file".into()),
            SourceKind::Bytes { filename, .. } | SourceKind::Reader { filename, .. } => filename.clone(),
        }
    }

    /// Whether the body can be produced again for a retry.
    fn replayable(&self) -> bool {
        !matches!(self.kind, SourceKind::Reader { .. })
    }

    /// The body stream and its length, or `None` when a reader was already used.
    async fn open(&self) -> Result<Option<(BodyStream, u64)>, Error> {
        match &self.kind {
            SourceKind::Path(path) => {
                let io = |source| Error::Io {
                    path: path.display().to_string(),
                    source,
                };
                let file = tokio::fs::File::open(path).await.map_err(io)?;
                let len = file.metadata().await.map_err(io)?.len();
                Ok(Some((file_stream(file.into_std().await), len)))
            }
            SourceKind::Bytes { data, .. } => {
                let data = data.clone();
                let len = data.len() as u64;
                let chunks = (0..data.len()).step_by(CHUNK).map(move |start| {
                    let end = (start + CHUNK).min(data.len());
                    Ok::<_, std::io::Error>(data.slice(start..end))
                });
                Ok(Some((Box::pin(futures::stream::iter(chunks)), len)))
            }
            SourceKind::Reader { reader, len, .. } => {
                let taken = reader.lock().ok().and_then(|mut r| r.take());
                Ok(taken.map(|r| (Box::pin(ReaderStream::with_capacity(r, CHUNK)) as BodyStream, *len)))
            }
        }
    }
}

type BodyStream = std::pin::Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

/// Chunks read ahead of the connection: bounds memory at about `READ_AHEAD * CHUNK`.
const READ_AHEAD: usize = 4;

/// Reads a file on one blocking thread, in whole chunks, a few ahead of the
/// connection. (`tokio::fs::File` would hand every read to the blocking pool
/// separately, which costs about a sixth of the throughput on a fast link.)
fn file_stream(mut file: std::fs::File) -> BodyStream {
    use std::io::Read;
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(READ_AHEAD);
    tokio::task::spawn_blocking(move || {
        loop {
            // `read_to_end` on a `Take` fills whole chunks into uninitialised capacity (no memset).
            let mut buf = Vec::with_capacity(CHUNK);
            let filled = match (&mut file).take(CHUNK as u64).read_to_end(&mut buf) {
                Ok(0) => return,
                Ok(n) => n,
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            };
            // A closed channel means the request was dropped: stop reading.
            if tx.blocking_send(Ok(Bytes::from(buf))).is_err() || filled < CHUNK {
                return;
            }
        }
    });
    Box::pin(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }))
}

/// Options of an upload.
///
/// ```
/// let options = tokportal::uploads::UploadOptions::new()
///     .content_type("video/mp4")
///     .idempotency_key("video-upload-123")
///     .on_progress(|sent, total| eprintln!("{sent}/{total}"));
/// # let _ = options;
/// ```
#[derive(Clone, Default)]
pub struct UploadOptions {
    content_type: Option<String>,
    filename: Option<String>,
    progress: Option<Progress>,
    idempotency_key: Option<String>,
    request_id: Option<String>,
    timeout: Option<Duration>,
    dry_run: bool,
}

impl fmt::Debug for UploadOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UploadOptions")
            .field("content_type", &self.content_type)
            .field("filename", &self.filename)
            .field("progress", &self.progress.is_some())
            .field("idempotency_key", &self.idempotency_key)
            .field("request_id", &self.request_id)
            .field("timeout", &self.timeout)
            .field("dry_run", &self.dry_run)
            .finish()
    }
}

impl UploadOptions {
    /// Defaults: content type from the file extension, the client's upload timeout.
    pub fn new() -> Self {
        Self::default()
    }
    /// The file part's content type (default: guessed from the file name).
    pub fn content_type(mut self, content_type: impl Into<String>) -> Self {
        self.content_type = Some(content_type.into());
        self
    }
    /// The file name sent with the part (default: the path's, or the source's).
    pub fn filename(mut self, filename: impl Into<String>) -> Self {
        self.filename = Some(filename.into());
        self
    }
    /// Called as bytes are handed to the connection: `(sent, total)`.
    pub fn on_progress(mut self, progress: impl Fn(u64, u64) + Send + Sync + 'static) -> Self {
        self.progress = Some(Arc::new(progress));
        self
    }
    /// An `Idempotency-Key` (with retries on, one is generated when none is given).
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }
    /// An `X-Request-ID`.
    pub fn request_id(mut self, id: impl Into<String>) -> Self {
        self.request_id = Some(id.into());
        self
    }
    /// Timeout of each attempt, instead of the client's upload timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
    /// Makes the upload a dry run (`X-TokPortal-Dry-Run: true`): the API
    /// previews it and stores nothing. No idempotency key is sent with it.
    pub fn dry_run(mut self) -> Self {
        self.dry_run = true;
        self
    }
}

/// `purpose` of a direct image upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ImagePurpose {
    /// A carousel slide (the default).
    #[default]
    Carousel,
    /// The account's profile picture.
    ProfilePicture,
}

impl ImagePurpose {
    fn as_str(self) -> &'static str {
        match self {
            ImagePurpose::Carousel => "carousel",
            ImagePurpose::ProfilePicture => "profile_picture",
        }
    }
}

impl Client {
    /// `POST /upload/video/direct`: uploads a video through TokPortal and returns its public URL.
    ///
    /// ```no_run
    /// # async fn run(client: tokportal::Client, bundle_id: uuid::Uuid) -> Result<(), tokportal::Error> {
    /// use tokportal::uploads::{UploadOptions, UploadSource};
    /// let uploaded = client
    ///     .upload_video_direct(bundle_id, UploadSource::path("./video.mp4"), UploadOptions::new().idempotency_key("video-upload-123"))
    ///     .await?;
    /// println!("{:?}", uploaded.get("data"));
    /// # Ok(()) }
    /// ```
    #[doc(alias = "uploadVideoDirect")]
    pub async fn upload_video_direct(
        &self,
        bundle_id: Uuid,
        file: UploadSource,
        options: UploadOptions,
    ) -> Result<ResponseValue<Value>, Error> {
        let mut fields = Map::new();
        fields.insert("bundle_id".into(), Value::String(bundle_id.to_string()));
        self.typed_upload("uploadVideoDirect", fields, file, options).await
    }

    /// `POST /upload/image/direct`: uploads an image (HEIF/HEIC may be converted to JPEG).
    #[doc(alias = "uploadImageDirect")]
    pub async fn upload_image_direct(
        &self,
        bundle_id: Uuid,
        file: UploadSource,
        purpose: ImagePurpose,
        options: UploadOptions,
    ) -> Result<ResponseValue<Value>, Error> {
        let mut fields = Map::new();
        fields.insert("bundle_id".into(), Value::String(bundle_id.to_string()));
        fields.insert("purpose".into(), Value::String(purpose.as_str().into()));
        self.typed_upload("uploadImageDirect", fields, file, options).await
    }

    /// `POST /bundles/{id}/videos/import-csv`: configures a bundle's videos from a CSV file.
    #[doc(alias = "importBundleVideosCsv")]
    pub async fn import_bundle_videos_csv(
        &self,
        bundle_id: Uuid,
        csv: UploadSource,
        auto_publish: Option<bool>,
        options: UploadOptions,
    ) -> Result<ResponseValue<Value>, Error> {
        let mut fields = Map::new();
        fields.insert("id".into(), Value::String(bundle_id.to_string()));
        if let Some(auto_publish) = auto_publish {
            fields.insert("auto_publish".into(), Value::Bool(auto_publish));
        }
        let options = UploadOptions {
            content_type: options.content_type.clone().or_else(|| Some("text/csv".into())),
            ..options
        };
        self.typed_upload("importBundleVideosCsv", fields, csv, options).await
    }

    /// Calls a multipart operation by operationId: `fields` holds its path
    /// parameters and form fields by their spec names (checked against the
    /// spec), `file` the `file` part.
    pub async fn request_upload(
        &self,
        operation_id: &str,
        fields: Map<String, Value>,
        file: UploadSource,
        options: UploadOptions,
    ) -> Result<OperationResponse, Error> {
        let op = operations::lookup(operation_id)?;
        let answer = self.send_upload(op, fields, file, options).await?;
        decode_response(op, answer, self.inner.settings().max_body).await
    }

    async fn send_upload(
        &self,
        op: &'static Operation,
        fields: Map<String, Value>,
        file: UploadSource,
        options: UploadOptions,
    ) -> Result<Answer, Error> {
        let settings = self.inner.settings();
        let form = check_form(op, fields, settings.strict)?;
        let (mut args, file_field, checked) = (form.args, form.file_field, form.fields);
        args.request_id = options.request_id.clone();
        args.timeout = options.timeout;
        args.idempotency_key = options.idempotency_key.clone();
        // Every attempt copies the template's URL and headers, so the headers
        // (a generated idempotency key among them) are set once, here.
        args.dry_run = options.dry_run;
        let mut template = prepare::build_request(&self.baseurl, op, &args, settings.strict)?;
        prepare::prepare(settings, op, &mut template)?;
        let filename = options.filename.clone().unwrap_or_else(|| file.filename());
        let content_type = options.content_type.clone().unwrap_or_else(|| {
            mime_guess::from_path(&filename)
                .first_or_octet_stream()
                .essence_str()
                .to_owned()
        });
        let file = Arc::new(file);
        let parts = Arc::new(FormParts {
            file_field,
            fields: checked,
            filename,
            content_type,
            progress: options.progress.clone(),
        });

        let first = self
            .upload_request(op, &template, &file, &parts)
            .await?
            .ok_or_else(|| {
                Error::invalid(
                    Some(op.id),
                    Some("file"),
                    "the reader of this upload source was already used",
                )
            })?;
        let replay: Replay<'_> = if file.replayable() {
            let (client, template, file, parts) = (self.clone(), template, file.clone(), parts.clone());
            Replay::Build(Box::new(move || {
                let (client, template, file, parts) =
                    (client.clone(), template.try_clone(), file.clone(), parts.clone());
                Box::pin(async move {
                    let template = template?;
                    match client.upload_request(op, &template, &file, &parts).await {
                        Ok(request) => request,
                        Err(e) => {
                            tracing::warn!(operation = op.id, error = %e, "cannot produce the upload again; not retrying");
                            None
                        }
                    }
                })
            }))
        } else {
            Replay::Never
        };
        execute::send(
            &self.client,
            settings,
            op,
            first,
            replay,
            Body::Buffer(settings.max_body),
        )
        .await
    }

    async fn typed_upload(
        &self,
        operation_id: &'static str,
        fields: Map<String, Value>,
        file: UploadSource,
        options: UploadOptions,
    ) -> Result<ResponseValue<Value>, Error> {
        let op = operations::lookup(operation_id)?;
        let answer = self.send_upload(op, fields, file, options).await?;
        let read = answer.read(self.inner.settings().max_body).await?;
        let map = decode::json(op, read.status.as_u16(), &read.body)
            .map_err(|e| e.with_idempotency_key(read.headers.get(crate::headers::names::IDEMPOTENCY_KEY)))?;
        Ok(ResponseValue::new(map, read.status, read.headers))
    }

    /// Builds one attempt's request: the template's URL and headers, a fresh multipart body.
    async fn upload_request(
        &self,
        op: &'static Operation,
        template: &reqwest::Request,
        file: &UploadSource,
        parts: &FormParts,
    ) -> Result<Option<reqwest::Request>, Error> {
        let Some((stream, len)) = file.open().await? else {
            return Ok(None);
        };
        let stream: BodyStream = match &parts.progress {
            Some(progress) => {
                let progress = progress.clone();
                let mut sent = 0u64;
                progress(0, len);
                Box::pin(stream.inspect_ok(move |chunk| {
                    sent += chunk.len() as u64;
                    progress(sent, len);
                }))
            }
            None => stream,
        };
        let part = reqwest::multipart::Part::stream_with_length(reqwest::Body::wrap_stream(stream.boxed()), len)
            .file_name(parts.filename.clone())
            .mime_str(&parts.content_type)
            .map_err(|_| {
                Error::invalid(
                    Some(op.id),
                    Some("content_type"),
                    format!("`{}` is not a MIME type", parts.content_type),
                )
            })?;
        let mut form = reqwest::multipart::Form::new();
        for (name, value) in &parts.fields {
            let text = match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            form = form.text(name.clone(), text);
        }
        form = form.part(parts.file_field.clone(), part);
        let mut request = self
            .client
            .request(template.method().clone(), template.url().clone())
            .headers(template.headers().clone())
            .multipart(form)
            .build()
            .map_err(Error::from_reqwest)?;
        *request.timeout_mut() = template.timeout().copied();
        Ok(Some(request))
    }

    /// `POST /upload/image/from-url` (the product docs' `uploads.imageFromUrl`):
    /// TokPortal fetches the image at `url` into the bundle.
    pub async fn image_from_url(
        &self,
        url: impl Into<String>,
        bundle_id: Uuid,
        purpose: ImagePurpose,
    ) -> Result<ResponseValue<Value>, Error> {
        use crate::generated::types::UploadImageFromUrlRequestPurpose as P;
        let purpose = match purpose {
            ImagePurpose::Carousel => P::Carousel,
            ImagePurpose::ProfilePicture => P::ProfilePicture,
        };
        let body = crate::generated::types::UploadImageFromUrlRequest::builder()
            .url(url.into())
            .bundle_id(bundle_id)
            .purpose(purpose);
        self.upload_image_from_url().body(body).send().await
    }

    /// `POST /bundles/{id}/videos/{position}/fix-download` (the product docs'
    /// `bundles.fixVideoDownload`): replaces a video whose download failed.
    pub async fn fix_video_download(
        &self,
        bundle_id: Uuid,
        position: u64,
        video_url: impl Into<String>,
    ) -> Result<ResponseValue<Value>, Error> {
        let position = std::num::NonZeroU64::new(position)
            .ok_or_else(|| Error::invalid(Some("fixBundleVideoDownload"), Some("position"), "positions start at 1"))?;
        let body = crate::generated::types::FixVideoDownloadRequest::Variant0 {
            video_url: video_url.into(),
        };
        self.fix_bundle_video_download()
            .id(bundle_id)
            .position(position)
            .body(body)
            .send()
            .await
    }
}

struct FormParts {
    file_field: String,
    fields: Map<String, Value>,
    filename: String,
    content_type: String,
    progress: Option<Progress>,
}

/// Whether `path` names a readable regular file (for early, clear errors in front-ends).
pub fn check_readable(path: &Path) -> Result<u64, Error> {
    let io = |source| Error::Io {
        path: path.display().to_string(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.is_file() {
        return Err(io(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        )));
    }
    Ok(meta.len())
}
