//! Gateway responses (REST APIs): every answer the gateway makes itself
//! (its 4xx and 5xx, not the integration's) goes through the API's
//! `gateway_responses`, by response type, else `DEFAULT_4XX`/`DEFAULT_5XX`:
//! status, headers and a template reading `$context.error.message`,
//! `messageString`, `responseType` and `validationErrorString`. With the
//! `x-amzn-ErrorType` header API Gateway sends on each.

use bytes::Bytes;
use http::{header, HeaderName, HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use stratus_config::{Api, GatewayResponse};
use stratus_vtl::{Input, Value, Vars};

use crate::context::RequestContext;
use crate::error::GatewayError;
use crate::Body;

/// The body of a gateway response without a template (AWS's default),
/// parsed once.
static DEFAULT_TEMPLATE: std::sync::LazyLock<stratus_vtl::Template> =
    std::sync::LazyLock::new(|| {
        stratus_vtl::Template::parse(r#"{"message":$context.error.messageString}"#)
            .expect("the default gateway response template parses")
    });

pub(crate) fn answer(api: &Api, e: GatewayError, cx: &RequestContext<'_>) -> Response<Body> {
    let ty = e.response_type();
    let fallback = if e.status().is_server_error() {
        "DEFAULT_5XX"
    } else {
        "DEFAULT_4XX"
    };
    let custom = api
        .gateway_responses
        .get(ty)
        .or_else(|| api.gateway_responses.get(fallback));
    let mut resp = match custom.and_then(|g| render(g, &e, cx)) {
        Some(r) => r,
        None => e.into_response(),
    };
    resp.headers_mut()
        .insert("x-amzn-errortype", HeaderValue::from_static(error_type(ty)));
    resp
}

fn render(
    g: &GatewayResponse,
    e: &GatewayError,
    cx: &RequestContext<'_>,
) -> Option<Response<Body>> {
    let message = e.message();
    let mut vars = Vars::new();
    let stage = cx.stage;
    vars.insert(
        "context".into(),
        Value::map([
            ("requestId", Value::str(cx.request_id.clone())),
            ("httpMethod", Value::str(cx.method.as_str())),
            ("path", Value::str(cx.path.clone())),
            (
                "stage",
                Value::str(stage.map(|s| s.name.clone()).unwrap_or_default()),
            ),
            (
                "identity",
                Value::map([("sourceIp", Value::str(cx.remote.ip().to_string()))]),
            ),
            (
                "error",
                Value::map([
                    ("message", Value::str(message.to_string())),
                    (
                        "messageString",
                        Value::Str(serde_json::Value::from(message.as_ref()).to_string()),
                    ),
                    ("responseType", Value::str(e.response_type())),
                    (
                        "validationErrorString",
                        Value::str(cx.validation_error.clone().unwrap_or_default()),
                    ),
                ]),
            ),
        ]),
    );
    vars.insert(
        "stageVariables".into(),
        Value::map(
            stage
                .map(|s| s.variables.clone())
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, Value::Str(v))),
        ),
    );
    let (content_type, body) = match g
        .templates
        .iter()
        .find(|(ct, _)| ct == "application/json")
        .or_else(|| g.templates.first())
    {
        Some((ct, t)) => (ct.clone(), t.render(&Input::default(), &mut vars)),
        None => (
            "application/json".to_owned(),
            DEFAULT_TEMPLATE.render(&Input::default(), &mut vars),
        ),
    };
    let body = match body {
        Ok(b) => b,
        Err(why) => {
            tracing::warn!(
                "a gateway response template failed ({why}); the built-in answer is sent"
            );
            return None;
        }
    };
    let status = g
        .status
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or_else(|| e.status());
    let mut resp = Response::new(Full::new(Bytes::from(body)).map_err(Into::into).boxed());
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&content_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    if let GatewayError::Unauthorized { challenge: Some(c) } = e {
        if let Ok(v) = HeaderValue::from_str(c) {
            h.insert(header::WWW_AUTHENTICATE, v);
        }
    }
    let (req_headers, query) = match &cx.request_head {
        Some((h, q)) => (Some(h), q.as_deref()),
        None => (None, None),
    };
    for (name, source) in &g.headers {
        let value = crate::events::method_request_value(source, req_headers, query, &[]);
        if let (Some(v), Ok(k)) = (value, HeaderName::from_bytes(name.as_bytes())) {
            if let Ok(v) = HeaderValue::from_str(&v) {
                h.insert(k, v);
            }
        }
    }
    Some(resp)
}

/// `x-amzn-ErrorType` as API Gateway sends it for each response type.
fn error_type(response_type: &str) -> &'static str {
    match response_type {
        "MISSING_AUTHENTICATION_TOKEN" => "MissingAuthenticationTokenException",
        "ACCESS_DENIED" => "AccessDeniedException",
        "UNAUTHORIZED" => "UnauthorizedException",
        "INVALID_API_KEY" => "ForbiddenException",
        "THROTTLED" => "TooManyRequestsException",
        "QUOTA_EXCEEDED" => "LimitExceededException",
        "BAD_REQUEST_BODY" | "BAD_REQUEST_PARAMETERS" => "BadRequestException",
        "REQUEST_TOO_LARGE" => "RequestEntityTooLargeException",
        "UNSUPPORTED_MEDIA_TYPE" => "UnsupportedMediaTypeException",
        "RESOURCE_NOT_FOUND" => "NotFoundException",
        "AUTHORIZER_FAILURE" | "AUTHORIZER_CONFIGURATION_ERROR" => {
            "AuthorizerConfigurationException"
        }
        "INTEGRATION_TIMEOUT" | "INTEGRATION_FAILURE" | "DEFAULT_5XX" => {
            "InternalServerErrorException"
        }
        _ => "BadRequestException",
    }
}
