//! The HTTP server's refusals: a status with a JSON body
//! `{"error": {"code", "message"}}`, shared by the key guard (`http`) and the
//! session gate (`sessions`).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// A refusal with a JSON body `{"error": {"code", "message"}}` (and
/// `WWW-Authenticate` on a 401).
pub fn refuse(status: StatusCode, code: &str, message: &str) -> Response {
    let mut response = (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        json!({"error": {"code": code, "message": message}}).to_string(),
    )
        .into_response();
    if status == StatusCode::UNAUTHORIZED {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}
