//! The payload limit: API Gateway's 10 MB, checked from `content-length`
//! before anything runs, and while reading a body that declares none.

use bytes::Bytes;
use http::header;
use http_body_util::BodyExt;

use crate::error::GatewayError;
use crate::{Body, MAX_REQUEST_BODY};

/// 413 at once for a request that says it is too large.
pub(crate) fn check_declared<B>(req: &http::Request<B>) -> Result<(), GatewayError> {
    let too_long = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        .is_some_and(|n| n > MAX_REQUEST_BODY);
    if too_long {
        return Err(GatewayError::PayloadTooLarge {
            limit: MAX_REQUEST_BODY,
        });
    }
    Ok(())
}

/// Reads a whole request body, up to the payload limit.
///
/// Written as a function returning `impl Future + Send + 'static` rather
/// than an `async fn`: with an `async fn` here rustc cannot prove the
/// gateway's request future `Send` for every lifetime (rust-lang/rust#96865),
/// and hyper's connection task needs it.
#[allow(clippy::manual_async_fn)]
pub(crate) fn collect_limited(
    body: Body,
) -> impl std::future::Future<Output = Result<Bytes, GatewayError>> + Send + 'static {
    async move {
        let mut body = body;
        let mut buf = bytes::BytesMut::new();
        while let Some(frame) = body.frame().await {
            let frame = frame
                .map_err(|e| GatewayError::BadRequest(format!("reading the request body: {e}")))?;
            if let Some(data) = frame.data_ref() {
                if buf.len() + data.len() > MAX_REQUEST_BODY as usize {
                    return Err(GatewayError::PayloadTooLarge {
                        limit: MAX_REQUEST_BODY,
                    });
                }
                buf.extend_from_slice(data);
            }
        }
        Ok(buf.freeze())
    }
}
