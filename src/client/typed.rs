//! The typed calls' way into the pipeline. Every generated builder's `send()`
//! builds its request with progenitor's code and ends here (the rewrite is in
//! `src/codegen/postprocess.rs`): the same checks and request pipeline as the
//! hand-written calls, and a success body decoded straight from the bytes the
//! attempt read, with nothing rebuilt around them.

use progenitor_client::{ByteStream, ResponseValue};
use serde::de::DeserializeOwned;

use crate::error::Error;
use crate::generated::Client;
use crate::operations::{self, Operation};
use crate::pipeline::decode::{Answer, Read};
use crate::pipeline::execute::{self, Body};
use crate::pipeline::{decode, prepare};

/// The query of a request a generated builder is building.
pub(crate) struct QueryPairs<'a>(url::form_urlencoded::Serializer<'a, url::UrlQuery<'a>>);

impl QueryPairs<'_> {
    /// Adds one of progenitor's `QueryParam`s (nothing when it is unset).
    pub(crate) fn add<T: serde::Serialize + ?Sized>(&mut self, param: &T) -> Result<(), String> {
        param
            .serialize(serde_urlencoded::Serializer::new(&mut self.0))
            .map(|_| ())
            .map_err(|e| format!("cannot be sent as a query parameter: {e}"))
    }
}

/// Adds the query parameters of a generated builder to its request, as
/// reqwest's `RequestBuilder::query` adds one (the same serializer, and no
/// `?` left behind when none is set), but all through one serializer.
pub(crate) fn query(
    request: &mut reqwest::Request,
    params: impl FnOnce(&mut QueryPairs<'_>) -> Result<(), String>,
) -> Result<(), String> {
    let added = params(&mut QueryPairs(request.url_mut().query_pairs_mut()));
    if request.url().query() == Some("") {
        request.url_mut().set_query(None);
    }
    added
}

/// What a generated builder's `request()` returns: the request it built,
/// or why it could not build one.
type Built<'a, E> = Result<(&'a Client, reqwest::Request), progenitor_client::Error<E>>;

/// The operation a generated builder names by its Rust method
/// (`list_bundles`), and the request it built; a value the builder could not
/// convert is an [`Error::InvalidArgument`] naming the operation and field.
fn operation<'a, E>(
    built: Built<'a, E>,
    rust_method: &str,
) -> Result<(&'static Operation, &'a Client, reqwest::Request), Error> {
    let op = operations::find_by_rust_method(rust_method)
        .ok_or_else(|| Error::Config(format!("no operation of the table is generated as `{rust_method}`")))?;
    let (client, request) = built.map_err(|e| Error::from_generated(e, op.id))?;
    Ok((op, client, request))
}

/// Checks, prepares and sends `request`, the request of `op` a generated
/// builder built, and returns its success answer.
async fn answer(
    client: &Client,
    mut request: reqwest::Request,
    op: &'static Operation,
    body: Body,
) -> Result<Answer, Error> {
    let settings = client.inner.settings();
    // The hand-written calls check their arguments as JSON before building
    // the request; the generated ones are checked here, from the built request.
    crate::check::request::check_request(op, &request, settings.strict)?;
    prepare::prepare(settings, op, &mut request)?;
    let replay = execute::replay_for(settings, &request);
    execute::send(&client.client, settings, op, request, replay, body).await
}

/// [`answer`], with the success body read whole within the attempt (bounded).
async fn read(client: &Client, request: reqwest::Request, op: &'static Operation) -> Result<Read, Error> {
    let limit = client.inner.settings().max_body;
    answer(client, request, op, Body::Buffer(limit))
        .await?
        .read(limit)
        .await
}

/// Sends a typed call whose success answer is JSON, decoded as `T`.
pub(crate) async fn json<T: DeserializeOwned, E>(
    built: Built<'_, E>,
    rust_method: &str,
) -> Result<ResponseValue<T>, Error> {
    let (op, client, request) = operation(built, rust_method)?;
    let read = read(client, request, op).await?;
    let inner = decode::json(op, read.status.as_u16(), &read.body)
        .map_err(|e| e.with_idempotency_key(read.headers.get(crate::headers::names::IDEMPOTENCY_KEY)))?;
    Ok(ResponseValue::new(inner, read.status, read.headers))
}

/// Sends a typed call whose success answer (a CSV or HTML export) reaches
/// the caller as a stream.
pub(crate) async fn stream<E>(built: Built<'_, E>, rust_method: &str) -> Result<ResponseValue<ByteStream>, Error> {
    let (op, client, request) = operation(built, rust_method)?;
    let mut response = answer(client, request, op, Body::Stream).await?.into_response();
    let (status, headers) = (response.status(), std::mem::take(response.headers_mut()));
    Ok(ResponseValue::new(
        ByteStream::new(Box::pin(response.bytes_stream())),
        status,
        headers,
    ))
}

/// Sends a typed call whose success answer has no body.
pub(crate) async fn empty<E>(built: Built<'_, E>, rust_method: &str) -> Result<ResponseValue<()>, Error> {
    let (op, client, request) = operation(built, rust_method)?;
    let read = read(client, request, op).await?;
    Ok(ResponseValue::new((), read.status, read.headers))
}

/// A value the generated types refused (`"USA".parse::<Country>()`, a
/// builder's `TryFrom`) as an [`Error::InvalidArgument`], so that `?` works
/// in a function returning `tokportal::Error`. Here rather than in `error`,
/// which sits below the generated code.
///
/// ```
/// fn country(code: &str) -> Result<tokportal::types::CreateBundleRequestCountry, tokportal::Error> {
///     Ok(code.parse()?)
/// }
/// assert!(country("USA").is_ok());
/// assert!(matches!(country("Atlantis"), Err(tokportal::Error::InvalidArgument { .. })));
/// ```
impl From<crate::generated::types::error::ConversionError> for Error {
    fn from(e: crate::generated::types::error::ConversionError) -> Self {
        Error::invalid(None, None, e.to_string())
    }
}
