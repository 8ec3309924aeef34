//! REST request validation, as a request validator does it: required
//! query strings, headers and path parameters first
//! (`ValidateRequestParameters`: 400 `Missing required request parameters:
//! [a, b]`), then the body against the model of its content type
//! (`ValidateRequestBody`: 400 `Invalid request body`, the schema's
//! complaints in `$context.error.validationErrorString`).

use http::{header, Request};
use http_body_util::{BodyExt, Full};
use stratus_config::{ParameterLocation, Validation};

use crate::context::RequestContext;
use crate::error::GatewayError;
use crate::phases::limits::collect_limited;
use crate::router::Matched;
use crate::Body;

/// The most schema complaints kept for the access log.
const MAX_COMPLAINTS: usize = 10;

pub(crate) async fn check(
    v: &Validation,
    m: &Matched<'_>,
    req: Request<Body>,
    cx: &mut RequestContext<'_>,
) -> Result<Request<Body>, GatewayError> {
    let query = crate::events::query_pairs(req.uri().query());
    let missing: Vec<String> = v
        .parameters
        .iter()
        .filter(|p| match p.location {
            ParameterLocation::Query => !query.iter().any(|(k, _)| *k == p.name),
            ParameterLocation::Header => !req.headers().contains_key(p.name.as_str()),
            ParameterLocation::Path => !m.params.iter().any(|(k, v)| *k == p.name && !v.is_empty()),
        })
        .map(|p| p.name.clone())
        .collect();
    if !missing.is_empty() {
        cx.validation_error = Some(format!(
            "Missing required request parameters: [{}]",
            missing.join(", ")
        ));
        return Err(GatewayError::MissingParameters(missing));
    }
    if v.body.is_empty() {
        return Ok(req);
    }
    let content_type = crate::header_str(req.headers(), header::CONTENT_TYPE)
        .and_then(|t| t.split(';').next())
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "application/json".to_owned());
    let Some((_, model)) = v.body.iter().find(|(ct, _)| *ct == content_type) else {
        return Ok(req);
    };
    let (parts, body) = req.into_parts();
    let bytes = collect_limited(body).await?;
    let complaints: Vec<String> = match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Err(e) => vec![format!("the body is not JSON: {e}")],
        Ok(value) => model
            .schema
            .iter_errors(&value)
            .take(MAX_COMPLAINTS)
            .map(|e| {
                let at = e.instance_path().to_string();
                if at.is_empty() {
                    e.to_string()
                } else {
                    format!("{e} (at {at})")
                }
            })
            .collect(),
    };
    if !complaints.is_empty() {
        cx.validation_error = Some(format!("[{}]", complaints.join(", ")));
        return Err(GatewayError::InvalidBody);
    }
    Ok(Request::from_parts(
        parts,
        Full::new(bytes).map_err(Into::into).boxed(),
    ))
}
