//! APIs defined by OpenAPI (Swagger 2.0 or OpenAPI 3) with API Gateway's
//! extensions, as `DefinitionBody`/`DefinitionUri` of a SAM API and the
//! `Body` of a RestApi or an ApiGatewayV2 Api give them: each operation's
//! `x-amazon-apigateway-integration` (`aws_proxy`, `http_proxy`, `mock`)
//! becomes a route, security schemes with `x-amazon-apigateway-authorizer`
//! (`token`, `request`, `jwt`) the API's authorizers, an `apiKey` scheme the
//! routes' key requirement; `x-amazon-apigateway-binary-media-types`,
//! `x-amazon-apigateway-cors` and `x-amazon-apigateway-api-key-source` the
//! API's settings. Written into the API's table as the SAM resources are.
//!
//! Routes the API's table already has (a SAM function's event) are kept:
//! the definition adds what they do not name.

use crate::cfn::uri_function;
use crate::node::{Node, Value};
use crate::Error;

const METHODS: &[&str] = &["get", "put", "post", "delete", "options", "head", "patch"];

fn text(n: &Node, key: &str) -> Option<String> {
    n.get(key).and_then(Node::scalar_text)
}

/// A list of texts (`[a, b]`) as a project's list.
pub(crate) fn texts(n: Option<&Node>) -> Vec<toml::Value> {
    n.and_then(Node::as_list)
        .unwrap_or(&[])
        .iter()
        .filter_map(Node::scalar_text)
        .map(toml::Value::String)
        .collect()
}

fn boolean(n: &Node, key: &str) -> Option<bool> {
    match n.get(key).map(|v| &v.value) {
        Some(Value::Bool(b)) => Some(*b),
        _ => None,
    }
}

/// `method.request.header.X` (REST's spelling) or `route.request.header.X`
/// (WebSocket's) as the project's `$request.header.X`.
fn source(s: &str) -> String {
    let s = s.trim();
    match s
        .strip_prefix("method.request.")
        .or_else(|| s.strip_prefix("route.request."))
    {
        Some(rest) => format!("$request.{rest}"),
        None => s.to_owned(),
    }
}

/// How a definition's security schemes are used by its operations.
enum Scheme {
    Authorizer,
    ApiKey,
    /// `x-amazon-apigateway-authtype: awsSigv4`: IAM authorization.
    Iam,
}

/// Writes the definition `body` (at `path`) into `api`, an HTTP API's when
/// `http`.
pub(crate) fn apply(
    api: &mut toml::Table,
    body: &Node,
    http: bool,
    path: &str,
) -> Result<(), Error> {
    if body.get("paths").is_none() {
        return Err(body.error(path, "an OpenAPI definition needs paths"));
    }
    let mut schemes: Vec<(String, Scheme)> = Vec::new();
    let mut authorizers = toml::Table::new();
    let defined = body
        .get("components")
        .and_then(|c| c.get("securitySchemes"))
        .or_else(|| body.get("securityDefinitions"))
        .and_then(Node::as_map)
        .unwrap_or(&[]);
    for (name, scheme) in defined {
        let at = format!("{path}.securitySchemes.{name}");
        match scheme.get("x-amazon-apigateway-authorizer") {
            Some(a) => {
                authorizers.insert(
                    name.clone(),
                    toml::Value::Table(authorizer(scheme, a, http, &at)?),
                );
                schemes.push((name.clone(), Scheme::Authorizer));
            }
            None if text(scheme, "x-amazon-apigateway-authtype")
                .is_some_and(|t| t.eq_ignore_ascii_case("awsSigv4")) =>
            {
                schemes.push((name.clone(), Scheme::Iam));
            }
            None if text(scheme, "type").as_deref() == Some("apiKey") => {
                schemes.push((name.clone(), Scheme::ApiKey));
            }
            // AWS_IAM (sigv4) and others: refused where an operation uses them.
            None => {}
        }
    }
    let default_security = body.get("security");
    // Request validation (REST): the models, the validators, the default.
    let schemas = body
        .get("components")
        .and_then(|c| c.get("schemas"))
        .or_else(|| body.get("definitions"))
        .and_then(Node::as_map)
        .unwrap_or(&[]);
    if !http && !schemas.is_empty() {
        let models = api
            .entry("models")
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if let toml::Value::Table(models) = models {
            for (name, schema) in schemas {
                models
                    .entry(name.clone())
                    .or_insert_with(|| model_text(schema, schemas).into());
            }
        }
    }
    let validators: Vec<(String, &'static str)> = body
        .get("x-amazon-apigateway-request-validators")
        .and_then(Node::as_map)
        .unwrap_or(&[])
        .iter()
        .map(|(name, v)| {
            let b = boolean(v, "validateRequestBody").unwrap_or(false);
            let p = boolean(v, "validateRequestParameters").unwrap_or(false);
            let mode = match (b, p) {
                (true, true) => "all",
                (true, false) => "body",
                (false, true) => "parameters",
                (false, false) => "none",
            };
            (name.clone(), mode)
        })
        .collect();
    let default_validator = text(body, "x-amazon-apigateway-request-validator");
    let mut routes = match api.remove("routes") {
        Some(toml::Value::Table(t)) => t,
        _ => toml::Table::new(),
    };
    for (p, item) in body.get("paths").and_then(Node::as_map).unwrap_or(&[]) {
        let ops: Vec<(String, &Node)> = item
            .as_map()
            .unwrap_or(&[])
            .iter()
            .filter_map(|(m, op)| {
                let method = if m == "x-amazon-apigateway-any-method" {
                    "ANY".to_owned()
                } else if METHODS.contains(&m.to_ascii_lowercase().as_str()) {
                    m.to_ascii_uppercase()
                } else {
                    return None;
                };
                Some((method, op))
            })
            .collect();
        for (method, op) in ops {
            let at = format!("{path}.paths.{p}.{}", method.to_ascii_lowercase());
            // An operation with no integration is one a SAM event fills.
            let Some(integration) = op.get("x-amazon-apigateway-integration") else {
                continue;
            };
            let key = if p == "$default" {
                "$default".to_owned()
            } else {
                format!("{method} {p}")
            };
            if routes.contains_key(&key) {
                continue;
            }
            let mut route = target(integration, http, &at)?;
            if !http {
                let named = text(op, "x-amazon-apigateway-request-validator")
                    .or_else(|| default_validator.clone());
                if let Some(v) = named {
                    let Some((_, mode)) = validators.iter().find(|(n, _)| *n == v) else {
                        return Err(op.error(&at, format!("x-amazon-apigateway-request-validator names {v:?}, not one of x-amazon-apigateway-request-validators")));
                    };
                    route.insert("validate".into(), (*mode).into());
                }
                request_checks(&mut route, item, op);
            }
            let security = op.get("security").or(default_security);
            for requirement in security.and_then(Node::as_list).unwrap_or(&[]) {
                for (name, scopes) in requirement.as_map().unwrap_or(&[]) {
                    match schemes.iter().find(|(n, _)| n == name).map(|(_, s)| s) {
                        Some(Scheme::Authorizer) => {
                            route.insert("authorizer".into(), name.clone().into());
                            let scopes = texts(Some(scopes));
                            if !scopes.is_empty() {
                                route.insert("scopes".into(), toml::Value::Array(scopes));
                            }
                        }
                        Some(Scheme::ApiKey) => {
                            route.insert("api_key_required".into(), true.into());
                        }
                        Some(Scheme::Iam) => {
                            route.insert("authorizer".into(), "AWS_IAM".into());
                        }
                        None => {
                            return Err(requirement.error(
                                &at,
                                format!("security names {name:?}, not a security scheme with an x-amazon-apigateway-authorizer or of type apiKey (Cognito authorization is not served yet)"),
                            ))
                        }
                    }
                }
            }
            routes.insert(key, toml::Value::Table(route));
        }
    }
    api.insert("routes".into(), toml::Value::Table(routes));
    if !authorizers.is_empty() {
        let all = api
            .entry("authorizers")
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if let toml::Value::Table(all) = all {
            for (k, v) in authorizers {
                all.entry(k).or_insert(v);
            }
        }
    }
    if !http {
        crate::settings::policy(api, body.get("x-amazon-apigateway-policy"));
        for (ty, g) in body
            .get("x-amazon-apigateway-gateway-responses")
            .and_then(Node::as_map)
            .unwrap_or(&[])
        {
            crate::settings::gateway_response(
                api,
                ty,
                text(g, "statusCode"),
                crate::settings::gateway_headers(g.get("responseParameters")),
                g.get("responseTemplates"),
            );
        }
    }
    if let Some(types) = body.get("x-amazon-apigateway-binary-media-types") {
        crate::settings::binary_media_types(api, Some(types));
    }
    if let Some(src) = body
        .get("x-amazon-apigateway-api-key-source")
        .and_then(Node::scalar_text)
    {
        api.insert("api_key_source".into(), src.into());
    }
    if let Some(c) = body.get("x-amazon-apigateway-cors") {
        api.insert(
            "cors".into(),
            toml::Value::Table(crate::cfn::cors_table(c, true)),
        );
    }
    Ok(())
}

/// An operation's `x-amazon-apigateway-integration` as a route's target.
fn target(i: &Node, http: bool, at: &str) -> Result<toml::Table, Error> {
    let mut t = toml::Table::new();
    let ty = text(i, "type").unwrap_or_default().to_ascii_lowercase();
    match ty.as_str() {
        "aws_proxy" => {
            let uri = text(i, "uri").unwrap_or_default();
            let f = crate::cfn::uri_target(&uri).ok_or_else(|| {
                i.error(at, "an aws_proxy integration's uri names a function (…/functions/ARN/invocations)")
            })?;
            t.insert("function".into(), f.into());
            if http {
                if let Some(v) = text(i, "payloadFormatVersion") {
                    t.insert("payload".into(), v.into());
                }
            }
        }
        "http_proxy" => {
            let uri = text(i, "uri").ok_or_else(|| i.error(at, "an http_proxy integration needs a uri"))?;
            t.insert("http".into(), uri.into());
        }
        "aws" => {
            let uri = text(i, "uri").unwrap_or_default();
            let f = crate::cfn::uri_target(&uri).ok_or_else(|| {
                i.error(at, "an aws integration's uri names a function (…/functions/ARN/invocations)")
            })?;
            t.insert("function".into(), f.into());
            t.insert("proxy".into(), false.into());
        }
        "http" => {
            let uri = text(i, "uri").ok_or_else(|| i.error(at, "an http integration needs a uri"))?;
            t.insert("http".into(), uri.into());
            t.insert("proxy".into(), false.into());
        }
        "mock" => {
            t.insert("mock".into(), toml::Value::Table(toml::Table::new()));
        }
        other => {
            return Err(i.error(
                at,
                format!("an integration of type {other:?} is not served yet (aws_proxy, http_proxy, aws with a function, http and mock are)"),
            ))
        }
    }
    if matches!(ty.as_str(), "aws" | "http" | "mock") {
        // `responses`: selection pattern → response; `default` has none.
        let responses: Vec<crate::cfn::MappedResponse<'_>> = i
            .get("responses")
            .and_then(Node::as_map)
            .unwrap_or(&[])
            .iter()
            .map(|(pattern, r)| crate::cfn::MappedResponse {
                content_handling: text(r, "contentHandling"),
                pattern: (pattern != "default").then(|| pattern.clone()),
                status: text(r, "statusCode"),
                templates: r.get("responseTemplates"),
                parameters: r.get("responseParameters"),
            })
            .collect();
        crate::cfn::mapping_keys(
            &mut t,
            i.get("requestTemplates"),
            text(i, "passthroughBehavior"),
            &responses,
        );
        if let Some(h) = text(i, "contentHandling") {
            t.insert("content_handling".into(), h.into());
        }
    }
    if let Some(ms) = text(i, "timeoutInMillis").and_then(|m| m.parse::<i64>().ok()) {
        t.insert("timeout_ms".into(), ms.into());
    }
    if matches!(ty.as_str(), "http" | "http_proxy") && !http {
        crate::cfn::request_parameters_key(&mut t, i.get("requestParameters"));
    }
    if let Some(mode) = text(i, "responseTransferMode") {
        t.insert("transfer_mode".into(), mode.into());
    }
    Ok(t)
}

/// A schema as a model's JSON Schema text: its `$ref`s to the
/// definition's other schemas (`#/components/schemas/X`,
/// `#/definitions/X`) resolve within it, each schema carried along.
fn model_text(schema: &Node, all: &[(String, Node)]) -> String {
    let mut v = crate::node::to_json(schema);
    let refs = v.to_string().contains("\"$ref\"");
    if refs {
        let defs: serde_json::Map<String, serde_json::Value> = all
            .iter()
            .map(|(n, s)| (n.clone(), crate::node::to_json(s)))
            .collect();
        if let serde_json::Value::Object(o) = &mut v {
            o.insert("definitions".into(), serde_json::Value::Object(defs));
        }
    }
    v.to_string()
        .replace("#/components/schemas/", "#/definitions/")
}

/// An operation's request models (OpenAPI 3 `requestBody.content`,
/// Swagger 2 `in: body` parameters; `$ref`s to schemas) and its required
/// `query`, `header` and `path` parameters (the path item's too).
fn request_checks(route: &mut toml::Table, item: &Node, op: &Node) {
    let model_of = |schema: &Node| -> Option<String> {
        let r = text(schema, "$ref")?;
        r.rsplit('/').next().map(str::to_owned)
    };
    let mut models = toml::Table::new();
    for (ct, media) in op
        .get("requestBody")
        .and_then(|b| b.get("content"))
        .and_then(Node::as_map)
        .unwrap_or(&[])
    {
        if let Some(m) = media.get("schema").and_then(model_of) {
            models.insert(ct.clone(), m.into());
        }
    }
    let params: Vec<&Node> = item
        .get("parameters")
        .and_then(Node::as_list)
        .unwrap_or(&[])
        .iter()
        .chain(op.get("parameters").and_then(Node::as_list).unwrap_or(&[]))
        .collect();
    let mut required = Vec::new();
    for p in params {
        let place = text(p, "in").unwrap_or_default();
        if place == "body" {
            if let Some(m) = p.get("schema").and_then(model_of) {
                let ct = op
                    .get("consumes")
                    .and_then(Node::as_list)
                    .and_then(|l| l.first())
                    .and_then(Node::scalar_text)
                    .unwrap_or_else(|| "application/json".to_owned());
                models.insert(ct, m.into());
            }
            continue;
        }
        let location = match place.as_str() {
            "query" => "querystring",
            "header" => "header",
            "path" => "path",
            _ => continue,
        };
        if boolean(p, "required") == Some(true) {
            if let Some(name) = text(p, "name") {
                required.push(toml::Value::String(format!("{location}.{name}")));
            }
        }
    }
    if !models.is_empty() {
        route.insert("request_models".into(), toml::Value::Table(models));
    }
    if !required.is_empty() {
        route.insert("required_parameters".into(), toml::Value::Array(required));
    }
}

/// A security scheme's `x-amazon-apigateway-authorizer` as an authorizer
/// table.
fn authorizer(scheme: &Node, a: &Node, http: bool, at: &str) -> Result<toml::Table, Error> {
    let mut t = toml::Table::new();
    let ty = text(a, "type").unwrap_or_default().to_ascii_lowercase();
    let function = || {
        text(a, "authorizerUri")
            .as_deref()
            .and_then(uri_function)
            .ok_or_else(|| {
                a.error(
                    at,
                    "the authorizer's authorizerUri names a function (…/functions/ARN/invocations)",
                )
            })
    };
    let ttl = text(a, "authorizerResultTtlInSeconds").and_then(|t| t.parse::<i64>().ok());
    match ty.as_str() {
        "token" => {
            t.insert("type".into(), "token".into());
            t.insert("function".into(), function()?.into());
            let header = text(scheme, "name").unwrap_or_else(|| "Authorization".into());
            t.insert("identity_source".into(), format!("$request.header.{header}").into());
            if let Some(v) = text(a, "identityValidationExpression") {
                t.insert("identity_validation".into(), v.into());
            }
        }
        "request" => {
            t.insert("type".into(), "request".into());
            t.insert("function".into(), function()?.into());
            let sources: Vec<toml::Value> = text(a, "identitySource")
                .unwrap_or_default()
                .split(',')
                .filter(|s| !s.trim().is_empty())
                .map(|s| toml::Value::String(source(s)))
                .collect();
            if !sources.is_empty() {
                t.insert("identity_source".into(), toml::Value::Array(sources));
            }
            if http {
                let payload = text(a, "authorizerPayloadFormatVersion").unwrap_or_else(|| "2.0".into());
                let payload = crate::cfn::payload_version(&payload);
                t.insert("payload".into(), payload.into());
                if let Some(b) = boolean(a, "enableSimpleResponses") {
                    t.insert("simple_responses".into(), b.into());
                }
            }
        }
        "jwt" => {
            let jwt = a.get("jwtConfiguration");
            let issuer = jwt
                .and_then(|j| text(j, "issuer"))
                .ok_or_else(|| a.error(at, "a jwt authorizer's jwtConfiguration needs an issuer"))?;
            let audience = texts(jwt.and_then(|j| j.get("audience")));
            let src = text(a, "identitySource").map(|s| source(&s));
            return Ok(crate::cfn::jwt_authorizer(issuer, audience, src));
        }
        other => {
            return Err(a.error(
                at,
                format!("an authorizer of type {other:?} is not served yet (token, request and jwt are; Cognito user pools are not)"),
            ))
        }
    }
    if let Some(ttl) = ttl {
        t.insert("ttl".into(), ttl.into());
    }
    Ok(t)
}
