//! Plain CloudFormation `AWS::ApiGatewayV2` APIs: HTTP APIs (quick create
//! with `Target`, or `Route`s and `Integration`s) and WebSocket APIs
//! (`RouteSelectionExpression`, `$connect`/`$disconnect`/`$default` and
//! custom routes, `RouteResponse`s making a route two-way), with their
//! `Stage`s, written into the project's `apis` table.

use std::collections::BTreeMap;

use crate::cfn::{uri_function, Part};
use crate::sam::function_of_arn;
use crate::Error;

/// The function an integration's `IntegrationUri` (a function ARN, or the
/// `…/functions/ARN/invocations` form) calls.
fn integration_function(uri: &str) -> String {
    uri_function(uri).unwrap_or_else(|| function_of_arn(uri))
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
        if api.raw_prop("Body").is_some() || api.raw_prop("BodyS3Location").is_some() {
            errors.push(api.error("an API defined by an OpenAPI Body is not served yet: declare its Routes and Integrations"));
            continue;
        }
        let t = apis.entry(api.id.to_owned()).or_default();
        match api.text("ProtocolType").as_deref() {
            Some("HTTP") => {
                t.insert("type".into(), "http".into());
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
    // Integrations by logical id: the function each calls.
    let mut integrations: BTreeMap<&str, String> = BTreeMap::new();
    for i in of("AWS::ApiGatewayV2::Integration") {
        match (i.text("IntegrationType").as_deref(), i.text("IntegrationUri")) {
            (Some("AWS_PROXY"), Some(uri)) => {
                integrations.insert(i.id, integration_function(&uri));
            }
            (ty, _) => errors.push(i.error(format!(
                "an integration of IntegrationType {} is not served yet (AWS_PROXY with an IntegrationUri is)",
                ty.unwrap_or("(none)")
            ))),
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
        let Some(function) = integrations.get(integration).cloned() else {
            errors.push(r.error(format!("the Route's Target names {integration:?}, not an AWS_PROXY Integration of the template")));
            continue;
        };
        let mut t = toml::Table::new();
        t.insert("function".into(), function.into());
        if websocket.contains(&api) && two_way.iter().any(|id| id == r.id) {
            t.insert("respond".into(), true.into());
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
