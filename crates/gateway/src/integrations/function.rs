//! The Lambda proxy integration: event in, function, response out.

use bytes::Bytes;
use http::{header, Request, Response};
use stratus_config::PayloadFormat;

use crate::context::RequestContext;
use crate::error::GatewayError;
use crate::events;
use crate::invoke::{call_function, Invoke};
use crate::phases::limits::collect_limited;
use crate::router::Matched;
use crate::Body;

pub(crate) async fn call(
    functions: &dyn Invoke,
    m: &Matched<'_>,
    function: &str,
    req: Request<Body>,
    cx: &RequestContext<'_>,
) -> Result<Response<Body>, GatewayError> {
    let (parts, body) = req.into_parts();
    let accept = crate::header_str(&parts.headers, header::ACCEPT).map(str::to_owned);
    let body = collect_limited(body).await?;
    let ev = cx.event_context();
    let event = events::proxy_event(m, &parts, &body, &ev)?;
    let payload = call_function(
        functions,
        function,
        Bytes::from(event),
        // The gateway bounds the whole integration (body included) by the
        // route's timeout.
        None,
        None,
    )
    .await
    .map_err(|e| e.into_gateway_error(m.api.kind))?;
    match m.route.payload {
        PayloadFormat::V1 => {
            events::v1::v1_response(&payload, accept.as_deref(), &m.api.binary_media_types)
        }
        PayloadFormat::V2 => events::v2::v2_response(&payload),
    }
}
