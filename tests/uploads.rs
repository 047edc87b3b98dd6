//! Streaming multipart uploads.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use common::{Reply, Scripted, UUID_A, json_reply};
use serde_json::json;
use tokportal::uploads::{ImagePurpose, UploadOptions, UploadSource};

fn ok() -> Reply {
    json_reply(200, json!({"data": {"url": "https://cdn.example.com/v.mp4"}}))
}

fn file_of(len: usize) -> (tempfile::TempDir, std::path::PathBuf, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clip.mp4");
    let content: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    std::fs::write(&path, &content).unwrap();
    (dir, path, content)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn a_file_is_streamed_whole_with_fields_progress_and_length() {
    let (_dir, path, content) = file_of(5 * 1024 * 1024 + 17);
    let server = Scripted::start(vec![ok()]).await;
    let client = common::client(&server.base_url);
    let seen = Arc::new(AtomicU64::new(0));
    let progress = seen.clone();
    let uploaded = client
        .upload_video_direct(
            UUID_A.parse().unwrap(),
            UploadSource::path(&path),
            UploadOptions::new().on_progress(move |sent, total| {
                assert!(sent <= total);
                progress.store(sent, Ordering::SeqCst);
            }),
        )
        .await
        .expect("uploaded");
    assert_eq!(uploaded["data"]["url"], "https://cdn.example.com/v.mp4");
    assert_eq!(
        seen.load(Ordering::SeqCst),
        content.len() as u64,
        "progress reached the total"
    );
    let sent = server.requests();
    assert_eq!(sent.len(), 1);
    let request = &sent[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.target, "/api/ext/upload/video/direct");
    assert_eq!(request.header("x-api-key"), Some(common::KEY));
    assert!(
        request
            .header("content-type")
            .unwrap()
            .starts_with("multipart/form-data; boundary=")
    );
    let length: usize = request
        .header("content-length")
        .expect("a known length")
        .parse()
        .unwrap();
    assert_eq!(length, request.body.len());
    assert!(contains(&request.body, &content), "the whole file arrived intact");
    assert!(contains(
        &request.body,
        b"name=\"bundle_id\"\r\n\r\n9f3a7b2e-1c4d-4e8f-a5b6-7d9e0f1a2b3c"
    ));
    assert!(contains(
        &request.body,
        b"filename=\"clip.mp4\"\r\nContent-Type: video/mp4"
    ));
}

#[tokio::test]
async fn a_path_upload_is_sent_again_whole_on_a_503() {
    let (_dir, path, content) = file_of(256 * 1024);
    let server = Scripted::start(vec![json_reply(503, json!({})), ok()]).await;
    let client = common::client(&server.base_url);
    client
        .upload_video_direct(UUID_A.parse().unwrap(), UploadSource::path(&path), UploadOptions::new())
        .await
        .expect("second attempt succeeds");
    let sent = server.requests();
    assert_eq!(sent.len(), 2);
    assert!(sent.iter().all(|r| contains(&r.body, &content)));
    let key = sent[0].header("idempotency-key").expect("generated key");
    assert_eq!(sent[1].header("idempotency-key"), Some(key), "same key on the retry");
}

#[tokio::test]
async fn a_reader_upload_is_not_retried_but_bytes_are() {
    let server = Scripted::start(vec![json_reply(503, json!({})), ok()]).await;
    let client = common::client(&server.base_url);
    let data = b"id,description\n1,hello\n".to_vec();
    let reader = std::io::Cursor::new(data.clone());
    let err = client
        .import_bundle_videos_csv(
            UUID_A.parse().unwrap(),
            UploadSource::reader(reader, data.len() as u64, "videos.csv"),
            Some(true),
            UploadOptions::new(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(503));
    let sent = server.requests();
    assert_eq!(sent.len(), 1, "a reader cannot be read twice");
    assert_eq!(sent[0].target, format!("/api/ext/bundles/{UUID_A}/videos/import-csv"));
    assert!(contains(&sent[0].body, b"name=\"auto_publish\"\r\n\r\ntrue"));
    assert!(contains(&sent[0].body, b"Content-Type: text/csv"));

    let server = Scripted::start(vec![json_reply(503, json!({})), ok()]).await;
    let client = common::client(&server.base_url);
    client
        .upload_image_direct(
            UUID_A.parse().unwrap(),
            UploadSource::bytes(vec![7u8; 1000], "pic.png"),
            ImagePurpose::ProfilePicture,
            UploadOptions::new(),
        )
        .await
        .expect("bytes are re-sent");
    let sent = server.requests();
    assert_eq!(sent.len(), 2);
    assert!(
        sent.iter()
            .all(|r| contains(&r.body, b"name=\"purpose\"\r\n\r\nprofile_picture"))
    );
    assert!(sent.iter().all(|r| contains(&r.body, b"Content-Type: image/png")));
}

#[tokio::test]
async fn a_missing_file_is_a_typed_error_and_nothing_is_sent() {
    let server = Scripted::start(vec![ok()]).await;
    let client = common::client(&server.base_url);
    let err = client
        .upload_video_direct(
            UUID_A.parse().unwrap(),
            UploadSource::path("/no/such/file.mp4"),
            UploadOptions::new(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, tokportal::Error::Io { path, .. } if path == "/no/such/file.mp4"),
        "{err}"
    );
    let strict = common::strict_client(client.base_url());
    let err = strict
        .request_upload(
            "uploadImageDirect",
            serde_json::Map::from_iter([
                ("bundle_id".to_string(), json!(UUID_A)),
                ("purpose".to_string(), json!("banner")),
            ]),
            UploadSource::bytes(vec![1u8], "a.png"),
            UploadOptions::new(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, tokportal::Error::InvalidArgument { .. }),
        "a bad enum is refused by a strict client: {err}"
    );
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn upload_helpers_match_the_product_docs() {
    let server = Scripted::start(vec![ok(), ok()]).await;
    let client = common::client(&server.base_url);
    client
        .image_from_url(
            "https://cdn.example.com/photo.jpg",
            UUID_A.parse().unwrap(),
            ImagePurpose::Carousel,
        )
        .await
        .unwrap();
    client
        .fix_video_download(UUID_A.parse().unwrap(), 1, "https://cdn.example.com/replacement.mp4")
        .await
        .unwrap();
    let sent = server.requests();
    assert_eq!(sent[0].target, "/api/ext/upload/image/from-url");
    let body: serde_json::Value = serde_json::from_slice(&sent[0].body).unwrap();
    assert_eq!(
        body,
        json!({"url": "https://cdn.example.com/photo.jpg", "bundle_id": UUID_A, "purpose": "carousel"})
    );
    assert_eq!(
        sent[1].target,
        format!("/api/ext/bundles/{UUID_A}/videos/1/fix-download")
    );
    let body: serde_json::Value = serde_json::from_slice(&sent[1].body).unwrap();
    assert_eq!(body, json!({"video_url": "https://cdn.example.com/replacement.mp4"}));
    assert!(
        client
            .fix_video_download(UUID_A.parse().unwrap(), 0, "https://x.example/v.mp4")
            .await
            .is_err()
    );
}

#[tokio::test]
async fn an_upload_outlasts_the_ordinary_deadline() {
    let slow = Reply::Slow(std::time::Duration::from_millis(600));
    let server = Scripted::start(vec![slow.clone(), slow]).await;
    let client = tokportal::Client::builder()
        .api_key(common::KEY)
        .base_url(&server.base_url)
        .retry(tokportal::RetryPolicy::default().deadline(std::time::Duration::from_millis(100)))
        .build()
        .unwrap();
    client
        .upload_video_direct(
            UUID_A.parse().unwrap(),
            UploadSource::bytes(vec![0u8; 10], "a.mp4"),
            UploadOptions::new(),
        )
        .await
        .expect("the upload timeout, not the 100 ms deadline, bounds an upload");
    // An ordinary call of the same client is cut by the deadline.
    let err = client
        .request_operation("listCountries", Default::default())
        .await
        .unwrap_err();
    assert!(matches!(err, tokportal::Error::Timeout { .. }), "{err}");
}
