//! Plain CloudFormation `AWS::ApiGatewayV2` APIs: HTTP APIs (quick create
//! with `Target`, or `Route`s and `Integration`s) and WebSocket APIs
//! (`RouteSelectionExpression`, `$connect`/`$disconnect`/`$default` and
//! custom routes, `RouteResponse`s making a route two-way), with their
//! `Stage`s, written into the project's `apis` table.

use std::collections::BTreeMap;

use crate::cfn::{uri_function, Part};
use crate::node::{Node, Value};
use crate::openapi::texts;
use crate::Error;

/// The function an integration's `IntegrationUri` (a function ARN, or the
/// `…/functions/ARN/invocations` form) calls.
fn integration_function(uri: &str) -> String {
    crate::cfn::uri_target(uri).unwrap_or_else(|| crate::cfn::qualified_function_of_arn(uri))
}

/// Adds the template's `AWS::ApiGatewayV2` APIs to `apis`; their ids to
/// `v2_apis`.
pub(crate) fn apis_v2(
    parts: &[Part<'_>],
    apis: &mut BTreeMap<String, toml::Table>,
    v2_apis: &mut Vec<String>,
    errors: &mut Vec<Error>,
) {
    let of = |ty: &'static str| parts.iter().filter(move |p| p.ty == ty);
    let mut websocket: Vec<String> = Vec::new();
    for api in of("AWS::ApiGatewayV2::Api") {
        if api.raw_prop("BodyS3Location").is_some() {
            errors.push(api.error("an API's BodyS3Location is in S3, which is not local: give the definition as its Body"));
            continue;
        }
        let t = apis.entry(api.id.to_owned()).or_default();
        // An imported HTTP API: its OpenAPI Body (the protocol is HTTP).
        let body = api.props.as_ref().and_then(|p| p.get("Body"));
        let protocol = api
            .text("ProtocolType")
            .or_else(|| body.map(|_| "HTTP".to_owned()));
        match protocol.as_deref() {
            Some("HTTP") => {
                t.insert("type".into(), "http".into());
                if let Some(body) = body {
                    if let Err(e) =
                        crate::openapi::apply(t, body, true, &format!("{}.Body", api.path()))
                    {
                        errors.push(e);
                    }
                }
                // Quick create: every request to the target, `$default` stage.
                if let Some(target) = api.text("Target") {
                    let mut route = toml::Table::new();
                    route.insert("function".into(), integration_function(&target).into());
                    let mut routes = toml::Table::new();
                    let key = api.text("RouteKey").unwrap_or_else(|| "$default".into());
                    routes.insert(key, toml::Value::Table(route));
                    t.insert("routes".into(), toml::Value::Table(routes));
                }
            }
            Some("WEBSOCKET") => {
                t.insert("type".into(), "websocket".into());
                if let Some(expr) = api.text("RouteSelectionExpression") {
                    t.insert("route_selection".into(), expr.into());
                }
                websocket.push(api.id.to_owned());
            }
            other => {
                errors.push(api.error(format!(
                    "ProtocolType is HTTP or WEBSOCKET, not {}",
                    other.unwrap_or("(none)")
                )));
                continue;
            }
        }
        v2_apis.push(api.id.to_owned());
    }
    let api_of = |p: &Part<'_>, errors: &mut Vec<Error>| -> Option<String> {
        match p.names("ApiId") {
            Some(id) if v2_apis.contains(&id) => Some(id),
            other => {
                errors.push(p.error(format!(
                    "ApiId names {}, not an AWS::ApiGatewayV2::Api of the template",
                    other.map_or_else(|| "nothing".to_owned(), |o| format!("{o:?}"))
                )));
                None
            }
        }
    };
    // Integrations by logical id: the route target each makes.
    let mut integrations: BTreeMap<&str, toml::Table> = BTreeMap::new();
    for i in of("AWS::ApiGatewayV2::Integration") {
        let mut target = toml::Table::new();
        match (
            i.text("IntegrationType").as_deref(),
            i.text("IntegrationUri"),
        ) {
            (Some("AWS_PROXY"), Some(uri)) => {
                target.insert("function".into(), integration_function(&uri).into());
            }
            (Some("HTTP_PROXY"), Some(uri)) => {
                target.insert("http".into(), uri.into());
            }
            (ty, _) => {
                errors.push(i.error(format!(
                    "an integration of IntegrationType {} is not served yet (AWS_PROXY and HTTP_PROXY with an IntegrationUri are)",
                    ty.unwrap_or("(none)")
                )));
                continue;
            }
        }
        integrations.insert(i.id, target);
    }
    for a in of("AWS::ApiGatewayV2::Authorizer") {
        let Some(api) = api_of(a, errors) else {
            continue;
        };
        match authorizer(a, websocket.contains(&api)) {
            Ok(t) => {
                if let Some(toml::Value::Table(all)) = apis.get_mut(&api).map(|x| {
                    x.entry("authorizers")
                        .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                }) {
                    all.insert(a.id.to_owned(), toml::Value::Table(t));
                }
            }
            Err(e) => errors.push(e),
        }
    }
    // Two-way routes: a RouteResponse on them.
    let two_way: Vec<String> = of("AWS::ApiGatewayV2::RouteResponse")
        .filter_map(|r| r.names("RouteId"))
        .collect();
    for r in of("AWS::ApiGatewayV2::Route") {
        let Some(api) = api_of(r, errors) else {
            continue;
        };
        let Some(key) = r.text("RouteKey") else {
            errors.push(r.error("a Route needs a RouteKey"));
            continue;
        };
        // `Target: !Join ["/", [integrations, !Ref Integration]]`, as written.
        let target = r.text("Target").unwrap_or_default();
        let Some(integration) = target.strip_prefix("integrations/") else {
            errors.push(r.error(
                "a Route's Target is integrations/ID (!Join [/, [integrations, !Ref Integration]])",
            ));
            continue;
        };
        // The evaluated Ref of an integration is its logical id.
        let Some(mut t) = integrations.get(integration).cloned() else {
            errors.push(r.error(format!(
                "the Route's Target names {integration:?}, not an Integration of the template"
            )));
            continue;
        };
        if websocket.contains(&api) && two_way.iter().any(|id| id == r.id) {
            t.insert("respond".into(), true.into());
        }
        match r.text("AuthorizationType").as_deref() {
            None | Some("NONE") => {}
            Some("JWT" | "CUSTOM") => {
                let Some(auth) = r.names("AuthorizerId") else {
                    errors.push(r.error("a Route with AuthorizationType JWT or CUSTOM names its AuthorizerId (!Ref an Authorizer)"));
                    continue;
                };
                t.insert("authorizer".into(), auth.into());
                let scopes = texts(r.props.as_ref().and_then(|p| p.get("AuthorizationScopes")));
                if !scopes.is_empty() {
                    t.insert("scopes".into(), toml::Value::Array(scopes));
                }
            }
            Some("AWS_IAM") if !websocket.contains(&api) => {
                t.insert("authorizer".into(), "AWS_IAM".into());
            }
            Some(other) => {
                errors.push(r.error(format!(
                    "AuthorizationType {other} is not served yet (NONE, JWT and CUSTOM are; AWS_IAM on HTTP APIs)"
                )));
                continue;
            }
        }
        let key_required = r.props.as_ref().and_then(|p| p.get("ApiKeyRequired"));
        if let Some(Value::Bool(true)) = key_required.map(|n| &n.value) {
            t.insert("api_key_required".into(), true.into());
        }
        if let Some(toml::Value::Table(routes)) = apis.get_mut(&api).map(|x| {
            x.entry("routes")
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
        }) {
            routes.insert(key, toml::Value::Table(t));
        }
    }
    for p in of("AWS::ApiGatewayV2::Stage") {
        let Some(api) = api_of(p, errors) else {
            continue;
        };
        let Some(name) = p.text("StageName") else {
            errors.push(p.error("a Stage needs a StageName"));
            continue;
        };
        let Some(t) = apis.get_mut(&api) else {
            continue;
        };
        if name != "$default" {
            crate::settings::stage_table(t, &name);
        }
        let vars = p.props.as_ref().and_then(|x| x.get("StageVariables"));
        crate::settings::variables(t, &name, vars);
        crate::settings::v2_stage(t, &name, crate::cfn::props_of(p), &p.path(), errors);
    }
}

/// An `AWS::ApiGatewayV2::Authorizer` as the API's authorizer table: `JWT`
/// (`JwtConfiguration.Issuer`, `Audience`; the keys read beside the
/// issuer, at `{Issuer}/.well-known/jwks.json`) or a Lambda `REQUEST`
/// authorizer (`AuthorizerUri`, `IdentitySource`, payload version, simple
/// responses, result ttl).
fn authorizer(a: &Part<'_>, websocket: bool) -> Result<toml::Table, Error> {
    let props = a.props.as_ref();
    let sources: Vec<String> = props
        .and_then(|p| p.get("IdentitySource"))
        .map(|n| match n.as_list() {
            Some(l) => l.iter().filter_map(Node::scalar_text).collect(),
            None => n.scalar_text().into_iter().collect(),
        })
        .unwrap_or_default();
    let mut t = toml::Table::new();
    match a.text("AuthorizerType").as_deref() {
        Some("JWT") => {
            let jwt = props.and_then(|p| p.get("JwtConfiguration"));
            let issuer = jwt
                .and_then(|j| j.get("Issuer"))
                .and_then(Node::scalar_text)
                .ok_or_else(|| a.error("a JWT authorizer's JwtConfiguration needs an Issuer"))?;
            let audience = texts(jwt.and_then(|j| j.get("Audience")));
            t = crate::cfn::jwt_authorizer(issuer, audience, sources.into_iter().next());
        }
        Some("REQUEST") => {
            let function = a
                .text("AuthorizerUri")
                .as_deref()
                .and_then(uri_function)
                .ok_or_else(|| a.error("a REQUEST authorizer's AuthorizerUri names a function (…/functions/ARN/invocations)"))?;
            t.insert("type".into(), "request".into());
            t.insert("function".into(), function.into());
            // WebSocket APIs spell sources `route.request.header.X`.
            let sources: Vec<toml::Value> = sources
                .into_iter()
                .map(|s| match s.strip_prefix("route.request.") {
                    Some(rest) => toml::Value::String(format!("$request.{rest}")),
                    None => toml::Value::String(s),
                })
                .collect();
            if !sources.is_empty() {
                t.insert("identity_source".into(), toml::Value::Array(sources));
            }
            if let Some(ttl) = a
                .text("AuthorizerResultTtlInSeconds")
                .and_then(|t| t.parse::<i64>().ok())
            {
                t.insert("ttl".into(), ttl.into());
            }
            if !websocket {
                let payload = a
                    .text("AuthorizerPayloadFormatVersion")
                    .unwrap_or_else(|| "2.0".into());
                let payload = crate::cfn::payload_version(&payload);
                t.insert("payload".into(), payload.into());
                let simple = props.and_then(|p| p.get("EnableSimpleResponses"));
                if let Some(Value::Bool(b)) = simple.map(|n| &n.value) {
                    t.insert("simple_responses".into(), (*b).into());
                }
            }
        }
        other => {
            return Err(a.error(format!(
                "AuthorizerType is JWT or REQUEST, not {}",
                other.unwrap_or("(none)")
            )))
        }
    }
    Ok(t)
}
