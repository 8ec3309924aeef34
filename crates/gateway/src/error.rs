//! One error type that knows whose fault it is; the status code and the
//! AWS-style body are decided here and nowhere else.

use bytes::Bytes;
use http::{header, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use stratus_config::ApiKind;

use crate::Body;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    /// No API stage or route for the path: REST says 403, HTTP APIs 404.
    #[error("no route")]
    NoRoute(Option<ApiKind>),
    #[error("bad request: {0}")]
    BadRequest(String),
    /// Over a concurrency or rate limit.
    #[error("too many requests")]
    Throttled,
    /// The function is at its concurrency limit (Lambda's 429): API
    /// Gateway reports an integration failure, 500.
    #[error("the function is at its concurrency limit")]
    FunctionThrottled,
    #[error("request body over the {limit} byte limit")]
    PayloadTooLarge { limit: u64 },
    /// The integration (upstream, function) failed or answered nonsense.
    #[error("integration failed: {0}")]
    BadGateway(String),
    /// The integration did not answer within its timeout.
    #[error("integration timed out")]
    Timeout(ApiKind),
    #[error("internal error: {0}")]
    Internal(String),
    /// No identity, a token refused, an authorizer that said `Unauthorized`:
    /// 401. JWT authorizers say why in a `www-authenticate` challenge.
    #[error("unauthorized")]
    Unauthorized { challenge: Option<String> },
    /// An authorizer's policy did not allow the call: 403.
    #[error("denied by the authorizer's policy ({} deny)", if *.explicit { "explicit" } else { "implicit" })]
    Denied { explicit: bool },
    /// No valid API key, or a JWT without a scope the route needs: 403.
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// The key's usage plan quota is spent: 429.
    #[error("usage plan quota exceeded")]
    LimitExceeded,
    /// The authorizer failed or answered nonsense: 500.
    #[error("authorizer failed: {0}")]
    AuthorizerFailed(String),
    /// No mapping template for the request's content type, and the route
    /// does not pass it through: 415.
    #[error("no mapping template for content type {0:?}")]
    UnsupportedMediaType(String),
    /// Required parameters absent (a request validator): 400.
    #[error("missing required request parameters: {0:?}")]
    MissingParameters(Vec<String>),
    /// The body does not match its model (a request validator): 400.
    #[error("the request body does not match its model")]
    InvalidBody,
    /// An `AWS_IAM` route called without a signature: 403.
    #[error("the route takes SigV4-signed requests (AWS_IAM)")]
    MissingSignature,
    /// An `AWS_IAM` route called with a signature that does not hold: 403.
    #[error("the signature was refused: {0}")]
    InvalidSignature(String),
    /// The API's resource policy refused the call: 403 with AWS's words.
    #[error("{0}")]
    PolicyDenied(String),
    /// Shared state the request must be checked against (a fleet's
    /// throttles on Redis) cannot be reached: 503.
    #[error("the shared throttles cannot be reached")]
    StateUnavailable,
}

impl GatewayError {
    pub fn status(&self) -> StatusCode {
        match self {
            GatewayError::NoRoute(Some(ApiKind::Rest)) => StatusCode::FORBIDDEN,
            GatewayError::NoRoute(_) => StatusCode::NOT_FOUND,
            GatewayError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            GatewayError::BadRequest(_) => StatusCode::BAD_REQUEST,
            GatewayError::Throttled => StatusCode::TOO_MANY_REQUESTS,
            GatewayError::FunctionThrottled => StatusCode::INTERNAL_SERVER_ERROR,
            GatewayError::BadGateway(_) => StatusCode::BAD_GATEWAY,
            GatewayError::Timeout(ApiKind::Rest) => StatusCode::GATEWAY_TIMEOUT,
            GatewayError::Timeout(_) => StatusCode::SERVICE_UNAVAILABLE,
            GatewayError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            GatewayError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            GatewayError::Denied { .. } | GatewayError::Forbidden(_) => StatusCode::FORBIDDEN,
            GatewayError::LimitExceeded => StatusCode::TOO_MANY_REQUESTS,
            GatewayError::AuthorizerFailed(_) => StatusCode::INTERNAL_SERVER_ERROR,
            GatewayError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            GatewayError::MissingParameters(_) | GatewayError::InvalidBody => {
                StatusCode::BAD_REQUEST
            }
            GatewayError::MissingSignature
            | GatewayError::InvalidSignature(_)
            | GatewayError::PolicyDenied(_) => StatusCode::FORBIDDEN,
            GatewayError::StateUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The `message` AWS puts in the JSON body for this error.
    pub fn aws_message(&self) -> &'static str {
        match self {
            GatewayError::NoRoute(Some(ApiKind::Rest)) => "Missing Authentication Token",
            GatewayError::NoRoute(_) => "Not Found",
            GatewayError::PayloadTooLarge { .. } => "Request Entity Too Large",
            GatewayError::BadRequest(_) => "Bad Request",
            GatewayError::Throttled => "Too Many Requests",
            GatewayError::FunctionThrottled => "Internal server error",
            GatewayError::BadGateway(_) | GatewayError::Internal(_) => "Internal server error",
            GatewayError::Timeout(ApiKind::Rest) => "Endpoint request timed out",
            GatewayError::Timeout(_) => "Service Unavailable",
            GatewayError::Unauthorized { .. } => "Unauthorized",
            GatewayError::Denied { explicit: true } => {
                "User is not authorized to access this resource with an explicit deny"
            }
            GatewayError::Denied { explicit: false } => {
                "User is not authorized to access this resource"
            }
            GatewayError::Forbidden(_) => "Forbidden",
            GatewayError::LimitExceeded => "Limit Exceeded",
            GatewayError::AuthorizerFailed(_) => "Internal Server Error",
            GatewayError::UnsupportedMediaType(_) => "Unsupported Media Type",
            GatewayError::MissingParameters(_) => "Missing required request parameters",
            GatewayError::InvalidBody => "Invalid request body",
            GatewayError::MissingSignature => "Missing Authentication Token",
            GatewayError::PolicyDenied(_) => "Forbidden",
            GatewayError::StateUnavailable => "Service Unavailable",
            GatewayError::InvalidSignature(_) => "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
        }
    }

    /// `$context.error.responseType`: API Gateway's gateway response type.
    pub fn response_type(&self) -> &'static str {
        match self {
            GatewayError::NoRoute(Some(ApiKind::Rest)) => "MISSING_AUTHENTICATION_TOKEN",
            GatewayError::NoRoute(_) => "RESOURCE_NOT_FOUND",
            GatewayError::BadRequest(_) => "BAD_REQUEST_BODY",
            GatewayError::Throttled => "THROTTLED",
            GatewayError::FunctionThrottled | GatewayError::BadGateway(_) => "INTEGRATION_FAILURE",
            GatewayError::PayloadTooLarge { .. } => "REQUEST_TOO_LARGE",
            GatewayError::Timeout(_) => "INTEGRATION_TIMEOUT",
            GatewayError::Internal(_) => "DEFAULT_5XX",
            GatewayError::Unauthorized { .. } => "UNAUTHORIZED",
            GatewayError::Denied { .. } => "ACCESS_DENIED",
            GatewayError::Forbidden(_) => "INVALID_API_KEY",
            GatewayError::LimitExceeded => "QUOTA_EXCEEDED",
            GatewayError::AuthorizerFailed(_) => "AUTHORIZER_FAILURE",
            GatewayError::UnsupportedMediaType(_) => "UNSUPPORTED_MEDIA_TYPE",
            GatewayError::MissingParameters(_) => "BAD_REQUEST_PARAMETERS",
            GatewayError::InvalidBody => "BAD_REQUEST_BODY",
            GatewayError::MissingSignature => "MISSING_AUTHENTICATION_TOKEN",
            GatewayError::InvalidSignature(_) => "INVALID_SIGNATURE",
            GatewayError::PolicyDenied(_) => "ACCESS_DENIED",
            GatewayError::StateUnavailable => "DEFAULT_5XX",
        }
    }

    /// The message of the answer's body (`aws_message`, with the names of
    /// missing parameters where AWS lists them).
    pub fn message(&self) -> std::borrow::Cow<'static, str> {
        match self {
            GatewayError::MissingParameters(names) => std::borrow::Cow::Owned(format!(
                "Missing required request parameters: [{}]",
                names.join(", ")
            )),
            GatewayError::PolicyDenied(words) => std::borrow::Cow::Owned(words.clone()),
            other => std::borrow::Cow::Borrowed(other.aws_message()),
        }
    }

    pub fn into_response(self) -> Response<Body> {
        // A resource policy's refusal is IAM's: `Message`, capitalized.
        if let GatewayError::PolicyDenied(words) = &self {
            let body = serde_json::json!({ "Message": words }).to_string();
            return Response::builder()
                .status(StatusCode::FORBIDDEN)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Full::new(Bytes::from(body)).map_err(Into::into).boxed())
                .expect("static response parts are valid");
        }
        let mut resp = json_message(self.status(), &self.message());
        if let GatewayError::Unauthorized { challenge: Some(c) } = &self {
            if let Ok(v) = http::HeaderValue::from_str(c) {
                resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
            }
        }
        resp
    }
}

/// `{"message": "..."}` with the given status, as API Gateway answers.
pub(crate) fn json_message(status: StatusCode, message: &str) -> Response<Body> {
    let body = serde_json::json!({ "message": message }).to_string();
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)).map_err(Into::into).boxed())
        .expect("static response parts are valid")
}
