//! The fault matrix: a fault-injecting server on 127.0.0.1 drives the SDK and
//! the CLI through broken, silent, oversized, redirected and compressed
//! answers. Each case asserts what the user gets (variant or exit code), how
//! many requests were sent, and, where the server floods, that the client
//! stopped reading (memory stays bounded).

mod common;

use std::io::Write as _;
use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{KEY, Reply, Scripted, UUID_A, client, json_reply};
use serde_json::{Value, json};
use tokportal::{Error, OperationArgs};

const MIB: u64 = 1024 * 1024;

fn head(status: u16, headers: &[(&str, &str)]) -> String {
    let mut h = format!("HTTP/1.1 {status} X\r\nconnection: close\r\n");
    for (k, v) in headers {
        h.push_str(&format!("{k}: {v}\r\n"));
    }
    h + "\r\n"
}

/// A 200 that announces 100 bytes and sends 10.
fn truncated() -> Reply {
    let mut bytes = head(
        200,
        &[
            ("content-type", "application/json"),
            ("content-length", "100"),
            ("x-tokportal-request-id", "req_cut"),
        ],
    )
    .into_bytes();
    bytes.extend_from_slice(br#"{"data": ["#);
    Reply::Raw(bytes)
}

fn ok() -> Reply {
    json_reply(200, json!({"data": {"id": UUID_A}}))
}

fn limited(base_url: &str, limit: u64) -> tokportal::Client {
    tokportal::Client::builder()
        .api_key(KEY)
        .base_url(base_url)
        .no_retries()
        .max_response_body(limit)
        .build()
        .unwrap()
}

fn reveal() -> OperationArgs {
    OperationArgs::new().path("id", UUID_A)
}

fn create() -> OperationArgs {
    OperationArgs::new().body(json!({"bundle_type": "account_only", "country": "USA"}))
}

#[tokio::test]
async fn a_truncated_body_is_a_failed_attempt() {
    // A GET is retried, and succeeds on the second attempt.
    let server = Scripted::start(vec![truncated(), ok()]).await;
    client(&server.base_url)
        .request_operation("listCountries", OperationArgs::new())
        .await
        .unwrap();
    assert_eq!(server.requests().len(), 2);

    // Cut every time: a transport error after every attempt.
    let server = Scripted::start(vec![truncated(), truncated(), truncated()]).await;
    let err = client(&server.base_url).list_countries().send().await.unwrap_err();
    assert!(matches!(err, Error::Transport { .. }));
    assert_eq!(server.requests().len(), 3);

    // A POST without a key: never sent again, and the error says it may have been applied.
    let server = Scripted::start(vec![truncated(), ok()]).await;
    let err = client(&server.base_url)
        .request_operation("revealAccountCredentials", reveal())
        .await
        .unwrap_err();
    match &err {
        Error::AnswerLost { status, request_id, .. } => {
            assert_eq!((*status, request_id.as_deref()), (Some(200), Some("req_cut")))
        }
        other => panic!("{other:?}"),
    }
    assert!(!err.is_retryable());
    let text = err.to_string();
    assert!(
        text.contains("may have been applied") && text.contains("req_cut"),
        "{text}"
    );
    assert_eq!(server.requests().len(), 1);

    // A keyed POST is sent again with the same key.
    let server = Scripted::start(vec![truncated(), ok()]).await;
    client(&server.base_url)
        .request_operation("createBundle", create().idempotency_key("k-cut"))
        .await
        .unwrap();
    let sent = server.requests();
    assert_eq!(sent.len(), 2);
    assert!(sent.iter().all(|r| r.header("idempotency-key") == Some("k-cut")));
}

/// A server that sends an answer's head (200, `content_type`, 50 bytes
/// announced) and then nothing, and a client with a 300 ms timeout and no
/// retries.
async fn stalled(content_type: &str) -> (Scripted, tokportal::Client) {
    let server = Scripted::start(vec![Reply::HeadThenSilence(head(
        200,
        &[("content-type", content_type), ("content-length", "50")],
    ))])
    .await;
    let client = tokportal::Client::builder()
        .api_key(KEY)
        .base_url(&server.base_url)
        .timeout(Duration::from_millis(300))
        .no_retries()
        .build()
        .unwrap();
    (server, client)
}

#[tokio::test]
async fn headers_then_silence_time_out_clearly() {
    let (server, c) = stalled("application/json").await;
    let err = c
        .request_operation("listCountries", OperationArgs::new())
        .await
        .unwrap_err();
    // The limit that ran out is the client's, and the message says so.
    assert!(
        matches!(err, Error::Timeout { after: Some(after), .. } if after == Duration::from_millis(300)),
        "{err:?}"
    );
    assert!(err.to_string().contains("timed out after 300ms"), "{err}");
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn a_streamed_answer_that_stalls_still_times_out_while_it_is_read() {
    // The attempt returns at the head; the time limit must go on running
    // while the caller reads the body, or a stalled export hangs forever.
    // The server stays silent for 10 s and then hangs up: without the
    // limit, the read would end in a cut-off body, not in a timeout.
    let (_server, c) = stalled("text/csv").await;
    let response = c
        .send_operation("exportAnalyticsVideos", OperationArgs::new())
        .await
        .expect("the head arrives");
    let err = response.bytes().await.unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    // The typed export, the same way.
    let (_server, c) = stalled("text/csv").await;
    let mut stream = c
        .export_analytics_videos()
        .send()
        .await
        .expect("the head arrives")
        .into_inner_stream();
    let read = futures::StreamExt::next(&mut stream).await;
    assert!(matches!(&read, Some(Err(e)) if e.is_timeout()), "{read:?}");
}

#[tokio::test]
async fn undecodable_success_bodies_are_decode_errors() {
    let html = Reply::Http(
        200,
        vec![("content-type", "text/html".into())],
        "<html><body>Gateway login</body></html>".into(),
    );
    let bad_json = Reply::Http(
        200,
        vec![("content-type", "application/json".into())],
        "{not json".into(),
    );
    let server = Scripted::start(vec![bad_json.clone(), html.clone(), bad_json, html]).await;
    let c = client(&server.base_url);
    for _ in 0..2 {
        let err = c
            .request_operation("listCountries", OperationArgs::new())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Decode { status: 200, .. }), "{err:?}");
    }
    for _ in 0..2 {
        let err = c.list_countries().send().await.unwrap_err();
        assert!(matches!(err, Error::Decode { status: 200, .. }), "{err:?}");
    }
    // Decode errors are the server's answer: not retried.
    assert_eq!(server.requests().len(), 4);
}

#[tokio::test]
async fn an_html_502_is_an_api_error_with_its_raw_body() {
    let page = || {
        Reply::Http(
            502,
            vec![("content-type", "text/html".into())],
            "<html><h1>502 Bad Gateway</h1></html>".into(),
        )
    };
    let server = Scripted::start(vec![page(), page(), page()]).await;
    let err = client(&server.base_url)
        .request_operation("listCountries", OperationArgs::new())
        .await
        .unwrap_err();
    let api = err.api().expect("an API error");
    assert_eq!((api.status, api.code.as_deref()), (502, None));
    assert!(api.raw_body.as_deref().unwrap_or_default().contains("Bad Gateway"));
    assert_eq!(server.requests().len(), 3, "a GET is retried on a 502");
}

#[tokio::test]
async fn oversized_bodies_are_refused_without_reading_them() {
    // Announced: refused from the head.
    let announced = Reply::Flood {
        head: head(
            200,
            &[("content-type", "application/json"), ("content-length", "1073741824")],
        ),
        total: 1 << 30,
    };
    // Not announced (read to the close): refused at the limit.
    let unannounced = || Reply::Flood {
        head: head(200, &[("content-type", "application/json")]),
        total: 1 << 30,
    };
    for (reply, typed) in [(announced, false), (unannounced(), false), (unannounced(), true)] {
        let server = Scripted::start(vec![reply]).await;
        let c = limited(&server.base_url, MIB);
        let err = if typed {
            c.list_countries().send().await.unwrap_err()
        } else {
            c.request_operation("listCountries", OperationArgs::new())
                .await
                .unwrap_err()
        };
        assert!(
            matches!(err, Error::ResponseTooLarge { status: 200, limit, .. } if limit == MIB),
            "{err:?}"
        );
        assert!(err.to_string().contains("send_operation"), "{err}");
        // The client hung up: the server could not push much past the limit.
        server.served(1).await;
        let flooded = server.flooded.load(Ordering::SeqCst);
        assert!(flooded < 64 * MIB, "the client read {flooded} bytes");
        assert_eq!(server.requests().len(), 1);
    }

    // An error page is read only as far as it is kept (64 KiB).
    let server = Scripted::start(vec![Reply::Flood {
        head: head(502, &[("content-type", "text/html")]),
        total: 1 << 30,
    }])
    .await;
    let err = limited(&server.base_url, MIB)
        .request_operation("listCountries", OperationArgs::new())
        .await
        .unwrap_err();
    let api = err.api().expect("an API error");
    assert_eq!(api.status, 502);
    assert_eq!(api.raw_body.as_deref().map(str::len), Some(64 * 1024));
    server.served(1).await;
    assert!(server.flooded.load(Ordering::SeqCst) < 64 * MIB);
}

#[tokio::test]
async fn the_stream_stays_available_past_the_limit() {
    let body = vec![b'7'; 3 * MIB as usize];
    let server = Scripted::start(vec![Reply::Http(
        200,
        vec![("content-type", "text/csv".into())],
        String::from_utf8(body).unwrap(),
    )])
    .await;
    let response = limited(&server.base_url, MIB)
        .send_operation("exportAnalyticsVideos", OperationArgs::new())
        .await
        .unwrap();
    assert_eq!(response.bytes().await.unwrap().len(), 3 * MIB as usize);
}

#[tokio::test]
async fn retry_after_as_seconds_as_a_date_and_absurdly_large() {
    let unavailable = |retry_after: String| {
        Reply::Http(
            503,
            vec![
                ("content-type", "application/json".into()),
                ("retry-after", retry_after),
            ],
            json!({"error": {"code": "UNAVAILABLE", "message": "later"}}).to_string(),
        )
    };
    // As seconds: the second attempt leaves at least that long after the
    // first was answered.
    let server = Scripted::start(vec![unavailable("1".into()), ok()]).await;
    client(&server.base_url)
        .request_operation("listCountries", OperationArgs::new())
        .await
        .unwrap();
    let sent = server.requests();
    assert_eq!(sent.len(), 2);
    let gap = sent[1].at.duration_since(sent[0].at).unwrap_or_default();
    assert!(
        gap >= Duration::from_secs(1),
        "Retry-After: 1, sent again after {gap:?}"
    );

    // As a date: the second attempt is not sent before it. The date is
    // whole seconds, one or two ahead of now, and within the client's
    // longest wait (2 s); whatever second the client reads it in, it must
    // not come back before it.
    let date = chrono::DateTime::from_timestamp(chrono::Utc::now().timestamp() + 2, 0).unwrap();
    let server = Scripted::start(vec![unavailable(date.to_rfc2822()), ok()]).await;
    client(&server.base_url)
        .request_operation("listCountries", OperationArgs::new())
        .await
        .unwrap();
    let sent = server.requests();
    assert_eq!(sent.len(), 2);
    let again = chrono::DateTime::<chrono::Utc>::from(sent[1].at);
    assert!(again >= date, "Retry-After: {date}, sent again at {again}");

    // A date too far for the caller: no retry, and the wait it asked for
    // is reported in seconds from when the answer was read.
    let date = chrono::DateTime::from_timestamp(chrono::Utc::now().timestamp() + 3600, 0).unwrap();
    let before = chrono::Utc::now().timestamp();
    let server = Scripted::start(vec![unavailable(date.to_rfc2822()), ok()]).await;
    let err = client(&server.base_url)
        .request_operation("listCountries", OperationArgs::new())
        .await
        .unwrap_err();
    let after = chrono::Utc::now().timestamp();
    let asked = err
        .api()
        .and_then(|a| a.retry_after_seconds)
        .expect("the hint is reported");
    let (least, most) = (date.timestamp() - after, date.timestamp() - before);
    assert!(
        (least..=most).contains(&(asked as i64)),
        "{asked} s, not within {least}..={most}"
    );
    assert_eq!(server.requests().len(), 1);

    // Longer than the caller allows: no retry (the script's 200 is never
    // asked for); the hint is reported.
    let server = Scripted::start(vec![unavailable("999999999".into()), ok()]).await;
    let err = client(&server.base_url)
        .request_operation("listCountries", OperationArgs::new())
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(503));
    assert_eq!(err.api().and_then(|a| a.retry_after_seconds), Some(999_999_999));
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn a_429_with_only_a_rate_limit_reset_waits_for_it() {
    let reset = chrono::Utc::now().timestamp() + 2;
    let server = Scripted::start(vec![
        Reply::Http(
            429,
            vec![
                ("content-type", "application/json".into()),
                ("x-ratelimit-reset", reset.to_string()),
            ],
            json!({"error": {"code": "RATE_LIMIT_EXCEEDED", "message": "slow down"}}).to_string(),
        ),
        ok(),
    ])
    .await;
    client(&server.base_url)
        .request_operation("listCountries", OperationArgs::new())
        .await
        .unwrap();
    // Not sent again before the reset (a Unix time, whole seconds).
    let sent = server.requests();
    assert_eq!(sent.len(), 2);
    let again = sent[1].at.duration_since(std::time::UNIX_EPOCH).unwrap();
    assert!(
        again >= Duration::from_secs(reset as u64),
        "reset at {reset}, sent again at {again:?}"
    );
}

#[tokio::test]
async fn a_reset_after_the_request_was_received() {
    // A GET: sent again.
    let server = Scripted::start(vec![Reply::Drop, ok()]).await;
    client(&server.base_url)
        .request_operation("listCountries", OperationArgs::new())
        .await
        .unwrap();
    assert_eq!(server.requests().len(), 2);
    // A POST without a key: never sent again.
    let server = Scripted::start(vec![Reply::Drop, ok()]).await;
    let err = client(&server.base_url)
        .request_operation("revealAccountCredentials", reveal())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::AnswerLost { status: None, .. }), "{err:?}");
    assert_eq!(server.requests().len(), 1);
    // A keyed POST: sent again with the same key.
    let server = Scripted::start(vec![Reply::Drop, ok()]).await;
    client(&server.base_url)
        .request_operation("createBundle", create())
        .await
        .unwrap();
    let sent = server.requests();
    assert_eq!(sent.len(), 2);
    let key = sent[0].header("idempotency-key").expect("a generated key");
    assert_eq!(sent[1].header("idempotency-key"), Some(key));
}

#[tokio::test]
async fn a_reset_before_any_answer_on_a_get_is_retried() {
    // The connection is closed before the request is even read.
    let server = Scripted::start(vec![Reply::Raw(Vec::new()), ok()]).await;
    client(&server.base_url)
        .request_operation("listCountries", OperationArgs::new())
        .await
        .unwrap();
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn a_redirect_to_another_origin_never_carries_the_key() {
    let elsewhere = Scripted::start(vec![ok()]).await;
    let server = Scripted::start(vec![Reply::Http(
        302,
        vec![("location", format!("{}/countries", elsewhere.base_url))],
        String::new(),
    )])
    .await;
    let err = client(&server.base_url)
        .request_operation("listCountries", OperationArgs::new())
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(302));
    assert!(elsewhere.requests().is_empty(), "the other origin was never contacted");
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn gzipped(body: &[u8]) -> Reply {
    let compressed = gzip(body);
    let mut bytes = head(
        200,
        &[
            ("content-type", "application/json"),
            ("content-encoding", "gzip"),
            ("content-length", &compressed.len().to_string()),
        ],
    )
    .into_bytes();
    bytes.extend_from_slice(&compressed);
    Reply::Raw(bytes)
}

#[tokio::test]
async fn gzip_bodies_are_decoded_and_bounded_after_decoding() {
    let body = json!({"data": [{"code": "USA"}, {"code": "FRA"}]});
    let server = Scripted::start(vec![gzipped(body.to_string().as_bytes())]).await;
    let answer = client(&server.base_url)
        .request_operation("listCountries", OperationArgs::new())
        .await
        .unwrap();
    assert_eq!(answer.body, tokportal::ResponseBody::Json(body));
    assert!(
        server.requests()[0]
            .header("accept-encoding")
            .is_some_and(|v| v.contains("gzip"))
    );
    // 32 MiB of zeros in a few KiB: the limit counts decoded bytes.
    let bomb = vec![b'0'; 32 * MIB as usize];
    let server = Scripted::start(vec![gzipped(&bomb)]).await;
    let err = limited(&server.base_url, MIB)
        .request_operation("listCountries", OperationArgs::new())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ResponseTooLarge { .. }), "{err:?}");
}

// The same faults through the CLI.

async fn cli(base_url: &str, args: &[&str]) -> std::process::Output {
    let (base_url, args): (String, Vec<String>) = (base_url.into(), args.iter().map(|a| a.to_string()).collect());
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_tokportal"))
            .args(&args)
            .env("TOKPORTAL_BASE_URL", base_url)
            .env("TOKPORTAL_API_KEY", KEY)
            .output()
            .expect("the binary runs")
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn the_cli_through_the_faults() {
    // A truncated GET, every time: exit 4 after three attempts.
    let server = Scripted::start(vec![truncated(), truncated(), truncated()]).await;
    let out = cli(&server.base_url, &["list-countries"]).await;
    assert_eq!(out.status.code(), Some(4), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(server.requests().len(), 3);

    // A reset on a POST without a key: exit 4, sent once, and says so.
    let server = Scripted::start(vec![Reply::Drop, ok()]).await;
    let out = cli(&server.base_url, &["reveal-account-credentials", "--id", UUID_A]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("may have been applied"), "{stderr}");
    assert_eq!(server.requests().len(), 1);

    // An HTML 502: exit 1 with the page in the payload.
    let page = || {
        Reply::Http(
            502,
            vec![("content-type", "text/html".into())],
            "<html>Bad Gateway</html>".into(),
        )
    };
    let server = Scripted::start(vec![page(), page(), page()]).await;
    let out = cli(&server.base_url, &["list-countries", "--no-retry"]).await;
    assert_eq!(out.status.code(), Some(1));
    let error: Value = serde_json::from_slice(&out.stderr).unwrap();
    assert!(error["payload"]["raw_body"].as_str().unwrap().contains("Bad Gateway"));
    assert_eq!(server.requests().len(), 1);

    // A download to --output that breaks off starts again, and the file holds the whole answer.
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("countries.json");
    let server = Scripted::start(vec![truncated(), ok()]).await;
    let out = cli(
        &server.base_url,
        &["list-countries", "--output", target.to_str().unwrap()],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let saved: Value = serde_json::from_slice(&std::fs::read(&target).unwrap()).unwrap();
    assert_eq!(saved["data"]["id"], UUID_A);
    assert_eq!(server.requests().len(), 2);

    // A large answer is streamed to --output, whatever its size.
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("countries.json");
    let server = Scripted::start(vec![Reply::Flood {
        head: head(
            200,
            &[
                ("content-type", "application/json"),
                ("content-length", &(80 * MIB).to_string()),
            ],
        ),
        total: 80 * MIB,
    }])
    .await;
    let out = cli(
        &server.base_url,
        &["list-countries", "--output", target.to_str().unwrap()],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::metadata(&target).unwrap().len(), 80 * MIB);
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no .part file is left"
    );
}

#[tokio::test]
async fn the_cli_checks_output_before_it_spends() {
    let dir = tempfile::tempdir().unwrap();
    let server = Scripted::start(vec![ok(), ok()]).await;
    let body = r#"{"bundle_type":"account_only","country":"USA"}"#;
    for target in [
        "/proc/nope/out.json".to_owned(),
        dir.path().display().to_string(),
        dir.path().join("missing-folder/out.json").display().to_string(),
    ] {
        let out = cli(
            &server.base_url,
            &["create-bundle", "--body", body, "--output", &target],
        )
        .await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{target}: {stderr}");
        assert!(stderr.contains("nothing was sent"), "{stderr}");
    }
    assert!(server.requests().is_empty(), "nothing was sent, nothing was charged");
    // A good target gets the answer, and nothing else is left beside it.
    let target = dir.path().join("bundle.json");
    let out = cli(
        &server.base_url,
        &["create-bundle", "--body", body, "--output", target.to_str().unwrap()],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let saved: Value = serde_json::from_slice(&std::fs::read(&target).unwrap()).unwrap();
    assert_eq!(saved["data"]["id"], UUID_A);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}
