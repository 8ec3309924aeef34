//! AWS service errors, as the SDKs read them: the type in
//! `x-amzn-ErrorType` (where they look first) and the details in a JSON
//! body. (S3's XML errors will be the other shape here.)

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// A JSON-protocol AWS error.
pub(crate) fn aws_error(status: StatusCode, error_type: &str, body: serde_json::Value) -> Response {
    let mut resp = (status, axum::Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(error_type) {
        resp.headers_mut().insert("x-amzn-ErrorType", v);
    }
    resp
}

/// An error as the Lambda API words it.
pub(crate) fn lambda_error(status: StatusCode, error_type: &str, message: &str) -> Response {
    let body = serde_json::json!({ "Type": "User", "message": message, "Message": message });
    aws_error(status, error_type, body)
}

/// An error as API Gateway's management API words it.
pub(crate) fn apigw_error(status: StatusCode, error_type: &str, message: &str) -> Response {
    aws_error(
        status,
        error_type,
        serde_json::json!({ "message": message }),
    )
}
