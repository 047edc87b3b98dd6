//! Turns checked arguments into a request, and sets what every request
//! carries: the origin check, the client headers, the API key and the
//! idempotency-key rules. (The time limit of each attempt is the attempt
//! loop's, in `execute`.)

use http::HeaderValue;
use url::Url;

use super::Settings;
use crate::check::OperationArgs;
use crate::check::args::check;
use crate::error::Error;
use crate::headers;
use crate::operations::{IdempotencyKeySupport, Operation};

/// Checks a dynamic call's path and query arguments and builds its request
/// (no body yet) against `base_url`.
pub(crate) fn build_request(
    base_url: &str,
    op: &'static Operation,
    args: &OperationArgs,
    strict: bool,
) -> Result<reqwest::Request, Error> {
    let checked = check(op, args, strict)?;
    let mut url = Url::parse(base_url).map_err(|e| Error::Config(format!("base URL: {e}")))?;
    {
        let mut segments = url
            .path_segments_mut()
            .map_err(|_| Error::Config("the base URL cannot take a path".into()))?;
        segments.pop_if_empty();
        for segment in op.path.split('/').filter(|s| !s.is_empty()) {
            match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) => {
                    segments.push(checked.path_value(name).unwrap_or_default());
                }
                None => {
                    segments.push(segment);
                }
            }
        }
    }
    if !checked.query.is_empty() || !checked.extra_query.is_empty() {
        let mut q = url.query_pairs_mut();
        for (k, v) in &checked.query {
            q.append_pair(k, v);
        }
        for (k, v) in &checked.extra_query {
            q.append_pair(k, v);
        }
    }
    new_request(op, url, args)
}

/// A request to `url` with what a call's arguments put in headers: the
/// accepted types, the dry run (or the idempotency key), the request id and
/// the time limit. Built here for checked calls, and by `calls/raw.rs` for
/// a path the contract does not know.
pub(crate) fn new_request(op: &'static Operation, url: Url, args: &OperationArgs) -> Result<reqwest::Request, Error> {
    let mut request = reqwest::Request::new(op.method.to_reqwest(), url);
    let request_headers = request.headers_mut();
    request_headers.insert(
        http::header::ACCEPT,
        HeaderValue::from_static("application/json, text/csv, text/html;q=0.9, */*;q=0.5"),
    );
    if args.dry_run {
        request_headers.insert(headers::names::DRY_RUN, HeaderValue::from_static("true"));
    } else if let Some(key) = &args.idempotency_key {
        request_headers.insert(
            headers::names::IDEMPOTENCY_KEY,
            header_value(op, "idempotency_key", key)?,
        );
    }
    if let Some(id) = &args.request_id {
        request_headers.insert(headers::names::REQUEST_ID, header_value(op, "request_id", id)?);
    }
    if let Some(t) = args.timeout {
        *request.timeout_mut() = Some(t);
    }
    Ok(request)
}

fn header_value(op: &Operation, field: &str, value: &str) -> Result<HeaderValue, Error> {
    HeaderValue::from_str(value).map_err(|_| Error::invalid(Some(op.id), Some(field), "not a valid header value"))
}

/// Sets the headers and the idempotency key, and checks the key rules,
/// before a request is sent. Used by the typed calls (`client::typed`) and
/// by the hand-written ones alike.
pub(crate) fn prepare(
    settings: &Settings,
    op: &'static Operation,
    request: &mut reqwest::Request,
) -> Result<(), Error> {
    if !settings.same_origin(request.url()) {
        return Err(Error::Config(format!(
            "refusing to send the API key to {}, which is not the configured API origin",
            request.url().origin().ascii_serialization()
        )));
    }
    let request_headers = request.headers_mut();
    // Room for the client, the key and an idempotency key, grown once.
    request_headers.reserve(3);
    request_headers.insert(headers::names::CLIENT, settings.identifier.clone());
    match &settings.api_key {
        Some(key) => {
            request_headers.insert(headers::names::API_KEY, key.clone());
        }
        None if op.requires_auth => return Err(Error::MissingApiKey),
        None => {}
    }
    match headers::dry_run(request_headers) {
        headers::DryRun::Preview => {
            // A preview never sends, generates or uses up an idempotency key.
            request_headers.insert(headers::names::DRY_RUN, HeaderValue::from_static("true"));
            request_headers.remove(headers::names::IDEMPOTENCY_KEY);
            Ok(())
        }
        headers::DryRun::Real => {
            // `false` is a real call (a typed builder's
            // `.x_tok_portal_dry_run(false)`): sent as one, without the
            // header, and with an idempotency key like any other.
            request_headers.remove(headers::names::DRY_RUN);
            idempotency_key_rules(settings, op, request_headers)
        }
        headers::DryRun::Absent => idempotency_key_rules(settings, op, request_headers),
        headers::DryRun::Unreadable => Err(Error::invalid(
            Some(op.id),
            Some("dry_run"),
            "X-TokPortal-Dry-Run must be `true` (a preview) or `false` (a real call)",
        )),
    }
}

/// Refuses a key where the operation refuses one, generates one (with
/// retries on) where it accepts one, and checks the key's form.
fn idempotency_key_rules(
    settings: &Settings,
    op: &'static Operation,
    request_headers: &mut http::HeaderMap,
) -> Result<(), Error> {
    match op.idempotency_key {
        IdempotencyKeySupport::Refused if request_headers.contains_key(headers::names::IDEMPOTENCY_KEY) => {
            return Err(Error::invalid(
                Some(op.id),
                Some("idempotency_key"),
                format!(
                    "{} returns a secret or one-time value, which the server would store for 24 hours \
                     under an idempotency key; send it without one",
                    op.id
                ),
            ));
        }
        IdempotencyKeySupport::Accepted
            if settings.retry.enabled() && !request_headers.contains_key(headers::names::IDEMPOTENCY_KEY) =>
        {
            // Generated once here and reused by every attempt, so a retried create never creates twice.
            let key = crate::idempotency::generate_key();
            request_headers.insert(
                headers::IDEMPOTENCY_KEY,
                HeaderValue::from_str(&key).map_err(|e| Error::Config(e.to_string()))?,
            );
        }
        _ => {}
    }
    if let Some(value) = request_headers.get(headers::names::IDEMPOTENCY_KEY) {
        crate::idempotency::validate_key(value.as_bytes())
            .map_err(|m| Error::invalid(Some(op.id), Some("idempotency_key"), m))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::operations::{HttpMethod, ParamLocation, Parameter};

    /// An operation with a free-text path parameter between two fixed
    /// segments (the spec's own are UUIDs and integers, refused earlier).
    static OP: Operation = Operation {
        id: "getThing",
        method: HttpMethod::Get,
        path: "/things/{name}/detail",
        tag: "Test",
        summary: "",
        description: None,
        requires_auth: true,
        rust_method: "get_thing",
        cli_command: "get-thing",
        idempotency_key: IdempotencyKeySupport::NotApplicable,
        paginated: false,
        handwritten: false,
        params: &[Parameter {
            name: "name",
            location: ParamLocation::Path,
            required: true,
            repeatable: false,
            description: None,
            schema_json: r#"{"type":"string"}"#,
        }],
        body: None,
        success_status: 200,
        success_content_type: Some("application/json"),
        success_schema: None,
        success_schema_json: None,
        error_statuses: &[],
    };

    fn segments(request: &reqwest::Request) -> Vec<String> {
        request
            .url()
            .path_segments()
            .map(|s| s.map(str::to_owned).collect())
            .unwrap_or_default()
    }

    fn value_strategy() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "[./%?#a-z\\r\\n\\x00]{0,12}",
            Just("..".to_owned()),
            Just("%2F".to_owned()),
            Just("a/../b".to_owned()),
            Just("x?y#z".to_owned()),
        ]
    }

    proptest! {
        #[test]
        fn a_path_value_stays_one_segment_or_is_refused(value in value_strategy()) {
            let args = OperationArgs::new().path("name", value.clone());
            match build_request("http://127.0.0.1:9/api/ext", &OP, &args, true) {
                Err(e) => {
                    let invalid = matches!(e, Error::InvalidArgument { .. });
                    prop_assert!(invalid, "{e:?}");
                }
                Ok(request) => {
                    let parts = segments(&request);
                    prop_assert_eq!(parts.len(), 5, "{}", request.url().as_str());
                    prop_assert_eq!((&parts[0], &parts[1], &parts[2], &parts[4]), (&"api".to_owned(), &"ext".to_owned(), &"things".to_owned(), &"detail".to_owned()));
                    let decoded = percent_encoding::percent_decode_str(&parts[3]).decode_utf8_lossy();
                    prop_assert_eq!(decoded.as_ref(), value.as_str());
                    prop_assert!(request.url().query().is_none() && request.url().fragment().is_none());
                }
            }
        }
    }

    fn settings(retries: bool) -> Settings {
        Settings {
            api_key: Some(HeaderValue::from_static("sk_test_prepare")),
            identifier: HeaderValue::from_static("tokportal-rust/test"),
            origin: Url::parse("http://127.0.0.1:9").unwrap().origin(),
            timeout: std::time::Duration::from_secs(1),
            upload_timeout: std::time::Duration::from_secs(1),
            retry: if retries {
                crate::RetryPolicy::default()
            } else {
                crate::RetryPolicy::disabled()
            },
            max_body: 1024,
            strict: false,
            version_warned: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Every way a request can ask, or not ask, for a preview: the header's
    /// value (absent, a typed builder's `true`/`false`, another spelling, a
    /// value neither client nor server should guess at), and
    /// `OperationArgs::dry_run`.
    fn dry_run_strategy() -> impl Strategy<Value = (Option<&'static str>, bool)> {
        (
            prop_oneof![
                Just(None),
                Just(Some("true")),
                Just(Some("false")),
                Just(Some(" TRUE ")),
                Just(Some("False")),
                Just(Some("1")),
                Just(Some("0")),
                Just(Some("yes")),
                Just(Some("")),
            ],
            any::<bool>(),
        )
    }

    fn mutating() -> Vec<&'static Operation> {
        crate::operations::OPERATIONS
            .iter()
            .filter(|op| !op.method.is_read_only())
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        /// For every mutating operation, however a preview is asked for:
        /// the request is a preview exactly when it says `true`, and then
        /// sends `true` and no key; otherwise it is a real call that sends
        /// no dry-run header and, where the operation takes a key and
        /// retries are on, a key, so that a retry (which `replay_safe`
        /// allows only with a key or a preview) can never charge twice. A
        /// value that is neither is refused unsent.
        #[test]
        fn a_request_is_a_preview_exactly_when_it_says_true(
            index in 0usize..1000,
            (header, args_dry_run) in dry_run_strategy(),
            user_key in proptest::option::of("[a-z0-9-]{1,20}"),
            retries in any::<bool>(),
        ) {
            let ops = mutating();
            prop_assert!(ops.len() > 40, "the table has its mutating operations");
            let op = ops[index % ops.len()];
            let mut args = OperationArgs::new();
            args.dry_run = args_dry_run;
            args.idempotency_key = user_key.clone();
            let url = Url::parse("http://127.0.0.1:9/api/ext/x").unwrap();
            let mut request = new_request(op, url, &args).unwrap();
            if let Some(value) = header {
                // A typed builder's setter, or `api -H`, may add its own.
                request.headers_mut().append(headers::names::DRY_RUN, HeaderValue::from_static(value));
            }
            let result = prepare(&settings(retries), op, &mut request);
            let said = |v: &str| v.trim().eq_ignore_ascii_case("true");
            let unreadable = header.is_some_and(|v| !said(v) && !v.trim().eq_ignore_ascii_case("false"));
            let conflicting = args_dry_run && header.is_some_and(|v| !said(v));
            let sent = request.headers();
            if unreadable || conflicting {
                let refused = matches!(&result, Err(Error::InvalidArgument { field: Some(f), .. }) if f == "dry_run");
                prop_assert!(refused, "{}: {header:?} {args_dry_run}: {result:?}", op.id);
                return Ok(());
            }
            let preview = args_dry_run || header.is_some_and(said);
            if preview {
                prop_assert!(result.is_ok(), "{}: {result:?}", op.id);
                prop_assert_eq!(sent.get(headers::names::DRY_RUN).map(|v| v.as_bytes()), Some(&b"true"[..]));
                prop_assert!(!sent.contains_key(headers::names::IDEMPOTENCY_KEY));
                prop_assert!(crate::headers::is_dry_run(sent));
                return Ok(());
            }
            match (op.idempotency_key, &user_key) {
                (IdempotencyKeySupport::Refused, Some(_)) => {
                    prop_assert!(result.is_err(), "{}: a key is refused", op.id);
                    return Ok(());
                }
                _ => prop_assert!(result.is_ok(), "{}: {result:?}", op.id),
            }
            prop_assert!(!sent.contains_key(headers::names::DRY_RUN), "{}: `false` is not sent", op.id);
            prop_assert!(!crate::headers::is_dry_run(sent));
            let has_key = sent.contains_key(headers::names::IDEMPOTENCY_KEY);
            if op.idempotency_key == IdempotencyKeySupport::Accepted && (retries || user_key.is_some()) {
                prop_assert!(has_key, "{}: a real call carries a key", op.id);
            }
            // What the attempt loop asks before sending again.
            let safe = crate::pipeline::retry::replay_safe(
                &op.method.to_reqwest(),
                has_key,
                crate::headers::is_dry_run(sent),
            );
            if matches!(op.method, crate::operations::HttpMethod::Post | crate::operations::HttpMethod::Patch) {
                prop_assert_eq!(safe, has_key, "{}: sent again only under a key", op.id);
            }
        }
    }

    #[test]
    fn query_parameters_reach_the_url() {
        let op = crate::operations::find("listBundles").unwrap();
        let args = OperationArgs::new().query("per_page", 5);
        let request = build_request("http://127.0.0.1:9/api/ext", op, &args, true).unwrap();
        assert_eq!(request.url().query(), Some("per_page=5"));
        let none = build_request("http://127.0.0.1:9/api/ext", op, &OperationArgs::new(), true).unwrap();
        assert_eq!(none.url().query(), None);
    }

    /// Without a key, an operation that needs one is refused unsent; one
    /// that does not is sent without it.
    #[test]
    fn a_key_is_required_exactly_where_the_contract_says() {
        let mut keyless = settings(true);
        keyless.api_key = None;
        let url = Url::parse("http://127.0.0.1:9/api/ext/x").unwrap();
        let needs = crate::operations::OPERATIONS
            .iter()
            .find(|op| op.requires_auth)
            .unwrap();
        let mut request = new_request(needs, url.clone(), &OperationArgs::new()).unwrap();
        assert!(matches!(
            prepare(&keyless, needs, &mut request),
            Err(Error::MissingApiKey)
        ));
        let open = crate::operations::OPERATIONS
            .iter()
            .find(|op| !op.requires_auth)
            .expect("the contract has an operation without a key");
        let mut request = new_request(open, url.clone(), &OperationArgs::new()).unwrap();
        assert!(prepare(&keyless, open, &mut request).is_ok());
        assert!(!request.headers().contains_key(headers::names::API_KEY));
        let mut request = new_request(needs, url, &OperationArgs::new()).unwrap();
        prepare(&settings(true), needs, &mut request).unwrap();
        assert_eq!(request.headers()[headers::names::API_KEY], "sk_test_prepare");
    }

    #[test]
    fn dot_segments_and_empty_values_are_refused() {
        for value in ["", ".", ".."] {
            let args = OperationArgs::new().path("name", value);
            assert!(
                build_request("http://127.0.0.1:9/api/ext", &OP, &args, true).is_err(),
                "{value:?}"
            );
        }
        let args = OperationArgs::new().path("name", json!("a/b"));
        let request = build_request("http://127.0.0.1:9/api/ext", &OP, &args, true).unwrap();
        assert_eq!(request.url().path(), "/api/ext/things/a%2Fb/detail");
    }
}
