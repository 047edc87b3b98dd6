//! Automatic pagination of the page/per_page lists.

mod common;

use futures::{StreamExt, TryStreamExt};
use httpmock::prelude::*;
use serde_json::json;
use tokportal::{Error, OperationArgs};

fn page<'s>(server: &'s MockServer, n: u64, total_pages: u64, ids: &[&str]) -> httpmock::Mock<'s> {
    let data: Vec<_> = ids.iter().map(|id| json!({"id": id})).collect();
    server.mock(|when, then| {
        when.method(GET)
            .path("/bundles")
            .query_param("page", n.to_string())
            .query_param("per_page", "2")
            .query_param("status", "draft");
        then.status(200)
            .header("content-type", "application/json")
            .json_body(json!({
                "data": data, "pagination": {"page": n, "per_page": 2, "total": 5, "total_pages": total_pages}
            }));
    })
}

#[tokio::test]
async fn walks_every_page_keeping_the_filters() {
    let server = MockServer::start_async().await;
    let pages = [
        page(&server, 1, 3, &["a", "b"]),
        page(&server, 2, 3, &["c", "d"]),
        page(&server, 3, 3, &["e"]),
    ];
    let client = common::client(&server.base_url());
    // The generated per-operation paginator.
    let items: Vec<_> = client
        .list_bundles_paginator(OperationArgs::new().query("status", "draft").query("per_page", 2))
        .items()
        .try_collect()
        .await
        .unwrap();
    let ids: Vec<_> = items.iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["a", "b", "c", "d", "e"]);
    for p in &pages {
        assert_eq!(p.calls(), 1, "each page is fetched once and no page beyond total_pages");
    }
}

#[tokio::test]
async fn an_empty_list_is_one_empty_page() {
    let server = MockServer::start_async().await;
    let only = page(&server, 1, 0, &[]);
    let client = common::client(&server.base_url());
    let pages: Vec<_> = client
        .paginate(
            "listBundles",
            OperationArgs::new().query("status", "draft").query("per_page", 2),
        )
        .unwrap()
        .pages()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(pages.len(), 1);
    assert!(pages[0].items.is_empty());
    assert_eq!(only.calls(), 1);
}

#[tokio::test]
async fn an_error_in_the_middle_ends_the_stream_with_it() {
    let server = MockServer::start_async().await;
    let first = page(&server, 1, 3, &["a", "b"]);
    let failing = server.mock(|when, then| {
        when.path("/bundles").query_param("page", "2");
        then.status(404)
            .header("content-type", "application/json")
            .json_body(json!({"error": {"code": "NOT_FOUND", "message": "gone"}}));
    });
    let third = page(&server, 3, 3, &["e"]);
    let client = common::client(&server.base_url());
    let results: Vec<Result<serde_json::Value, Error>> = client
        .paginate(
            "listBundles",
            OperationArgs::new().query("status", "draft").query("per_page", 2),
        )
        .unwrap()
        .items()
        .collect()
        .await;
    assert_eq!(results.len(), 3);
    assert!(results[0].is_ok() && results[1].is_ok());
    assert_eq!(
        results[2].as_ref().unwrap_err().api().and_then(|e| e.code.as_deref()),
        Some("NOT_FOUND")
    );
    assert_eq!((first.calls(), failing.calls(), third.calls()), (1, 1, 0));
}

#[test]
fn only_list_operations_paginate() {
    let client = common::client("http://127.0.0.1:9");
    assert!(client.paginate("getCurrentUser", OperationArgs::new()).is_err());
    assert!(client.paginate("noSuchOperation", OperationArgs::new()).is_err());
    let lists: Vec<_> = tokportal::operations::OPERATIONS
        .iter()
        .filter(|o| o.paginated)
        .map(|o| o.id)
        .collect();
    assert!(
        lists.contains(&"listBundles") && lists.contains(&"listCommentTasks"),
        "{lists:?}"
    );
}

/// A list answer without `data` is not an empty last page: the stream ends
/// with an error naming the operation, after the items it did get.
#[tokio::test]
async fn a_page_without_data_is_an_error_naming_the_operation() {
    let server = MockServer::start_async().await;
    let first = page(&server, 1, 3, &["a", "b"]);
    let no_data = server.mock(|when, then| {
        when.path("/bundles").query_param("page", "2");
        then.status(200)
            .header("content-type", "application/json")
            .json_body(json!({"pagination": {"page": 2, "per_page": 2, "total": 5, "total_pages": 3}}));
    });
    let client = common::client(&server.base_url());
    let results: Vec<Result<serde_json::Value, Error>> = client
        .paginate(
            "listBundles",
            OperationArgs::new().query("status", "draft").query("per_page", 2),
        )
        .unwrap()
        .items()
        .collect()
        .await;
    assert_eq!(results.len(), 3, "{results:?}");
    assert!(results[0].is_ok() && results[1].is_ok());
    let err = results[2].as_ref().unwrap_err();
    assert!(matches!(err, Error::Decode { status: 200, .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("listBundles") && text.contains("no `data`"), "{text}");
    assert_eq!((first.calls(), no_data.calls()), (1, 1));
}
