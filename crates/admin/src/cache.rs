//! `POST /stratus/cache/flush {"api", "stage"}`: drops a REST stage's
//! cached answers, as API Gateway's FlushStageCache (SigV4 service
//! `apigateway`, the one rule). `stratus cache flush API STAGE` calls it.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use crate::AdminState;

pub(crate) fn router() -> axum::Router<AdminState> {
    axum::Router::new().route("/stratus/cache/flush", axum::routing::post(flush))
}

#[derive(serde::Deserialize)]
struct Flush {
    api: String,
    stage: String,
}

async fn flush(
    State(s): State<AdminState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let f: Flush = match crate::signed_json(
        &s,
        "apigateway",
        (&method, &uri, &headers, &body),
        "BadRequestException",
        "expected {\"api\": \"NAME\", \"stage\": \"NAME\"}",
    ) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let caches = s.live.load().caches.clone();
    if !caches.flush(&f.api, &f.stage) {
        return crate::error::apigw_error(
            StatusCode::NOT_FOUND,
            "NotFoundException",
            &format!(
                "no cache on stage {}/{} (cached stages: {})",
                f.api,
                f.stage,
                caches.stages().join(", ")
            ),
        );
    }
    StatusCode::ACCEPTED.into_response()
}
