//! The `mock` integration: a fixed answer from the route's config.

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use stratus_config::Mock;

use crate::error::GatewayError;
use crate::phases::limits::collect_limited;
use crate::Body;

pub(crate) async fn answer(mock: &Mock, body: Body) -> Result<Response<Body>, GatewayError> {
    // The body is read (and bounded) even though a mock ignores it: a
    // request over the limit is 413 on every route.
    collect_limited(body).await?;
    let mut resp = Response::new(
        Full::new(Bytes::from(mock.body.clone()))
            .map_err(Into::into)
            .boxed(),
    );
    *resp.status_mut() = StatusCode::from_u16(mock.status).unwrap_or(StatusCode::OK);
    for (k, v) in &mock.headers {
        if let (Ok(k), Ok(v)) = (
            header::HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) {
            resp.headers_mut().append(k, v);
        }
    }
    Ok(resp)
}
