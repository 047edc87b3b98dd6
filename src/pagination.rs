//! Automatic pagination of the `page`/`per_page` list operations.

use futures::StreamExt;
use futures::stream::{self, BoxStream};
use serde_json::Value;

use crate::error::Error;
use crate::generated::Client;
use crate::meta::ResponseMeta;
use crate::operations::{self, Operation, OperationArgs, ResponseBody};

/// One page of a list.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// The page number (from 1).
    pub page: u64,
    /// The items of this page (`data`).
    pub items: Vec<Value>,
    /// `pagination.total`, when given.
    pub total: Option<u64>,
    /// `pagination.total_pages`, when given.
    pub total_pages: Option<u64>,
    /// Response metadata of this page.
    pub meta: ResponseMeta,
}

/// Walks a list operation page by page, keeping its filters. Every list
/// operation has one: `client.list_bundles_paginator(filters)`, or by
/// operationId, `client.paginate("listBundles", filters)`.
///
/// ```no_run
/// # async fn run(client: tokportal::Client) -> Result<(), tokportal::Error> {
/// use futures::TryStreamExt;
/// let bundles: Vec<serde_json::Value> = client
///     .paginate("listBundles", tokportal::OperationArgs::new().query("status", "published").query("per_page", 100))?
///     .items()
///     .try_collect()
///     .await?;
/// println!("{} bundles", bundles.len());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Paginator<'a> {
    client: &'a Client,
    op: &'static Operation,
    args: OperationArgs,
}

impl Client {
    /// A [`Paginator`] over a list operation (one with `page` and `per_page`).
    /// `args` holds its filters; a `page` in it is the first page to fetch.
    pub fn paginate(&self, operation_id: &str, args: OperationArgs) -> Result<Paginator<'_>, Error> {
        let op = operations::lookup(operation_id)?;
        if !op.paginated {
            return Err(Error::invalid(
                Some(op.id),
                None,
                format!("{} is not a page/per_page list", op.id),
            ));
        }
        Ok(Paginator::new(self, op, args))
    }
}

impl<'a> Paginator<'a> {
    /// A paginator over `op` (a page/per_page list) with the filters in `args`.
    pub(crate) fn new(client: &'a Client, op: &'static Operation, args: OperationArgs) -> Self {
        Paginator { client, op, args }
    }
}

struct State<'a> {
    paginator: Paginator<'a>,
    page: u64,
    done: bool,
}

impl<'a> Paginator<'a> {
    /// The pages (a boxed, `Unpin` stream), until `pagination.total_pages` or an empty page; the first
    /// error is yielded and ends the stream.
    pub fn pages(self) -> BoxStream<'a, Result<Page, Error>> {
        let first = self.args.query.get("page").and_then(Value::as_u64).unwrap_or(1).max(1);
        let state = State {
            paginator: self,
            page: first,
            done: false,
        };
        stream::unfold(state, |mut state| async move {
            if state.done {
                return None;
            }
            let result = state.paginator.fetch(state.page).await;
            match &result {
                Ok(page) => {
                    // The requested number decides, so a server echoing a wrong `page` cannot loop us.
                    let last = page.items.is_empty() || page.total_pages.is_some_and(|t| state.page >= t);
                    state.done = last;
                    state.page += 1;
                }
                Err(_) => state.done = true,
            }
            Some((result, state))
        })
        .boxed()
    }

    /// The items of every page, in order; the first error ends the stream.
    pub fn items(self) -> BoxStream<'a, Result<Value, Error>> {
        self.pages()
            .flat_map(|page| match page {
                Ok(page) => stream::iter(page.items.into_iter().map(Ok)).left_stream(),
                Err(e) => stream::once(async { Err(e) }).right_stream(),
            })
            .boxed()
    }

    async fn fetch(&self, page: u64) -> Result<Page, Error> {
        let mut args = self.args.clone();
        args.query.insert("page".into(), Value::from(page));
        let response = self.client.request_operation(self.op.id, args).await?;
        let status = response.meta.status;
        let ResponseBody::Json(body) = response.body else {
            return Err(Error::decode(status, "a list answer must be JSON", b""));
        };
        let items = match body.get("data") {
            Some(Value::Array(items)) => items.clone(),
            Some(Value::Null) | None => Vec::new(),
            Some(_) => {
                return Err(Error::decode(
                    status,
                    "`data` of a list answer must be an array",
                    body.to_string().as_bytes(),
                ));
            }
        };
        let number = |key: &str| body.pointer(&format!("/pagination/{key}")).and_then(Value::as_u64);
        Ok(Page {
            page: number("page").unwrap_or(page),
            items,
            total: number("total"),
            total_pages: number("total_pages"),
            meta: response.meta,
        })
    }
}
