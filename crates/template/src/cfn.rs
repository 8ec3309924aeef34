//! Plain CloudFormation REST APIs, as hand-written templates and the CDK
//! declare them: an `AWS::ApiGateway::RestApi`, its `Resource` tree,
//! `Method`s (`AWS_PROXY` to a function, `HTTP_PROXY`, `MOCK`),
//! `Authorizer`s (Lambda `TOKEN`/`REQUEST`), and the `Stage`s or
//! `Deployment`s that name its stages, written into the project's `apis`
//! table as the SAM resources are.
//!
//! How parts point at each other (`ParentId: !Ref Parent`, `ResourceId:
//! !GetAtt Api.RootResourceId`, `AuthorizerId: !Ref Auth`) is read from
//! the template as written, not from evaluated values.

use std::collections::BTreeMap;

use crate::node::{Node, Value};
use crate::sam::function_of_arn;
use crate::Error;

/// One `AWS::ApiGateway::*` resource: its logical id, the resource as
/// written, its type, and its properties evaluated.
pub(crate) struct Part<'a> {
    pub(crate) id: &'a str,
    pub(crate) raw: &'a Node,
    pub(crate) ty: &'a str,
    pub(crate) props: Option<Node>,
}

impl Part<'_> {
    pub(crate) fn path(&self) -> String {
        format!("Resources.{}.Properties", self.id)
    }

    pub(crate) fn text(&self, key: &str) -> Option<String> {
        self.props.as_ref()?.get(key)?.scalar_text()
    }

    /// A property as written (before evaluation).
    pub(crate) fn raw_prop(&self, key: &str) -> Option<&Node> {
        self.raw.get("Properties")?.get(key)
    }

    /// The logical id a property names with `Ref` (or `Fn::GetAtt`'s
    /// first item), as written.
    pub(crate) fn names(&self, key: &str) -> Option<String> {
        let n = self.raw_prop(key)?;
        n.get("Ref")
            .and_then(Node::as_str)
            .or_else(|| n.get("Fn::GetAtt")?.as_list()?.first()?.as_str())
            .map(str::to_owned)
    }

    /// Whether a property is `!GetAtt X.RootResourceId`.
    fn is_root(&self, key: &str) -> bool {
        self.raw_prop(key)
            .and_then(|n| n.get("Fn::GetAtt"))
            .and_then(Node::as_list)
            .is_some_and(|l| l.get(1).and_then(Node::as_str) == Some("RootResourceId"))
    }

    pub(crate) fn error(&self, message: impl Into<String>) -> Error {
        self.raw.error(&self.path(), message)
    }
}

/// The function a Lambda authorizer URI calls
/// (`arn:aws:apigateway:REGION:lambda:path/2015-03-31/functions/ARN/invocations`).
pub(crate) fn uri_function(uri: &str) -> Option<String> {
    uri_target(uri).map(|f| function_of_arn(&f))
}

/// The function a Lambda integration's URI calls, with the qualifier its
/// ARN has (`NAME:live` for an alias's), as a route names it.
pub(crate) fn uri_target(uri: &str) -> Option<String> {
    let arn = uri.split("/functions/").nth(1)?;
    let arn = arn
        .strip_suffix("/response-streaming-invocations")
        .or_else(|| arn.strip_suffix("/invocations"))
        .unwrap_or(arn);
    Some(qualified_function_of_arn(arn))
}

/// `NAME` or `NAME:QUALIFIER` of a function ARN (or of a name).
pub(crate) fn qualified_function_of_arn(arn: &str) -> String {
    arn.rsplit_once(":function:")
        .map_or(arn, |(_, name)| name)
        .to_owned()
}

/// Adds the template's plain REST APIs to `apis`; the ids of the APIs
/// added to `cfn_apis`.
pub(crate) fn rest_apis(
    parts: &[Part<'_>],
    apis: &mut BTreeMap<String, toml::Table>,
    cfn_apis: &mut Vec<String>,
    errors: &mut Vec<Error>,
) {
    let of = |ty: &'static str| parts.iter().filter(move |p| p.ty == ty);
    for api in of("AWS::ApiGateway::RestApi") {
        if api.raw_prop("BodyS3Location").is_some() {
            errors.push(api.error("a RestApi's BodyS3Location is in S3, which is not local: give the definition as its Body"));
            continue;
        }
        let t = apis.entry(api.id.to_owned()).or_default();
        t.insert("type".into(), "rest".into());
        if let Some(body) = api.props.as_ref().and_then(|p| p.get("Body")) {
            if let Err(e) = crate::openapi::apply(t, body, false, &format!("{}.Body", api.path())) {
                errors.push(e);
            }
        }
        let types = api.props.as_ref().and_then(|x| x.get("BinaryMediaTypes"));
        crate::settings::binary_media_types(t, types);
        crate::settings::policy(t, api.props.as_ref().and_then(|x| x.get("Policy")));
        cfn_apis.push(api.id.to_owned());
    }
    let api_of = |p: &Part<'_>, errors: &mut Vec<Error>| -> Option<String> {
        match p.names("RestApiId") {
            Some(id) if cfn_apis.contains(&id) => Some(id),
            other => {
                errors.push(p.error(format!(
                    "RestApiId names {}, not an AWS::ApiGateway::RestApi of the template",
                    other.map_or_else(|| "nothing".to_owned(), |o| format!("{o:?}"))
                )));
                None
            }
        }
    };
    // Each Resource's path, from its parents.
    let resources: BTreeMap<&str, &Part<'_>> =
        of("AWS::ApiGateway::Resource").map(|p| (p.id, p)).collect();
    let path_of = |id: &str| -> Result<String, String> {
        let mut segments = Vec::new();
        let mut at = id.to_owned();
        for _ in 0..64 {
            let Some(p) = resources.get(at.as_str()) else {
                return Err(format!(
                    "{at:?} is not an AWS::ApiGateway::Resource of the template"
                ));
            };
            segments.push(p.text("PathPart").ok_or("a Resource needs a PathPart")?);
            if p.is_root("ParentId") {
                segments.reverse();
                return Ok(format!("/{}", segments.join("/")));
            }
            at = p
                .names("ParentId")
                .ok_or("ParentId is !Ref a Resource or !GetAtt Api.RootResourceId")?;
        }
        Err("the Resource tree has a cycle".into())
    };
    // Authorizers, by logical id.
    for a in of("AWS::ApiGateway::Authorizer") {
        let Some(api) = api_of(a, errors) else {
            continue;
        };
        let kind = a.text("Type").unwrap_or_default();
        let mut t = toml::Table::new();
        match kind.as_str() {
            "TOKEN" | "REQUEST" => {}
            other => {
                errors.push(a.error(format!(
                    "an authorizer of Type {other:?} is not served yet (TOKEN and REQUEST are)"
                )));
                continue;
            }
        }
        t.insert("type".into(), kind.to_ascii_lowercase().into());
        let Some(f) = a.text("AuthorizerUri").as_deref().and_then(uri_function) else {
            errors.push(a.error("AuthorizerUri names no function (arn:aws:apigateway:REGION:lambda:path/2015-03-31/functions/ARN/invocations)"));
            continue;
        };
        t.insert("function".into(), f.into());
        if let Some(src) = a.text("IdentitySource") {
            let sources: Vec<toml::Value> =
                src.split(',').map(|s| s.trim().to_owned().into()).collect();
            if kind == "TOKEN" {
                if let Some(first) = sources.into_iter().next() {
                    t.insert("identity_source".into(), first);
                }
            } else {
                t.insert("identity_source".into(), toml::Value::Array(sources));
            }
        }
        if let Some(v) = a.text("IdentityValidationExpression") {
            t.insert("identity_validation".into(), v.into());
        }
        if let Some(ttl) = a
            .text("AuthorizerResultTtlInSeconds")
            .and_then(|t| t.parse::<i64>().ok())
        {
            t.insert("ttl".into(), ttl.into());
        }
        if let Some(toml::Value::Table(all)) = apis.get_mut(&api).map(|x| {
            x.entry("authorizers")
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
        }) {
            all.insert(a.id.to_owned(), toml::Value::Table(t));
        }
    }
    // Models (by their Name, else their logical id) and request validators.
    let mut model_names: BTreeMap<&str, String> = BTreeMap::new();
    for md in of("AWS::ApiGateway::Model") {
        let Some(api) = api_of(md, errors) else {
            continue;
        };
        let name = md.text("Name").unwrap_or_else(|| md.id.to_owned());
        let Some(schema) = md.props.as_ref().and_then(|p| p.get("Schema")) else {
            errors.push(md.error("a Model needs a Schema"));
            continue;
        };
        // A Schema is an object, or its JSON text.
        let text = match schema.scalar_text() {
            Some(t) => t,
            None => crate::node::to_json(schema).to_string(),
        };
        if let Some(toml::Value::Table(all)) = apis.get_mut(&api).map(|x| {
            x.entry("models")
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
        }) {
            all.insert(name.clone(), text.into());
        }
        model_names.insert(md.id, name);
    }
    for g in of("AWS::ApiGateway::GatewayResponse") {
        let Some(api) = api_of(g, errors) else {
            continue;
        };
        let Some(ty) = g.text("ResponseType") else {
            errors.push(g.error("a GatewayResponse needs a ResponseType"));
            continue;
        };
        if let Some(t) = apis.get_mut(&api) {
            let props = g.props.as_ref();
            crate::settings::gateway_response(
                t,
                &ty,
                g.text("StatusCode"),
                crate::settings::gateway_headers(props.and_then(|p| p.get("ResponseParameters"))),
                props.and_then(|p| p.get("ResponseTemplates")),
            );
        }
    }
    let validators: BTreeMap<&str, &Part<'_>> = of("AWS::ApiGateway::RequestValidator")
        .map(|p| (p.id, p))
        .collect();
    // Methods: the routes.
    for m in of("AWS::ApiGateway::Method") {
        let Some(api) = api_of(m, errors) else {
            continue;
        };
        let path = if m.is_root("ResourceId") {
            Ok("/".to_owned())
        } else {
            m.names("ResourceId")
                .ok_or_else(|| {
                    "ResourceId is !Ref a Resource or !GetAtt Api.RootResourceId".to_owned()
                })
                .and_then(|r| path_of(&r))
        };
        let path = match path {
            Ok(p) => p,
            Err(why) => {
                errors.push(m.error(why));
                continue;
            }
        };
        let method = m
            .text("HttpMethod")
            .unwrap_or_else(|| "ANY".into())
            .to_ascii_uppercase();
        let mut target = match integration(m) {
            Ok(t) => t,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        match m.text("AuthorizationType").as_deref() {
            None | Some("NONE") => {}
            Some("CUSTOM") => match m.names("AuthorizerId") {
                Some(a) => {
                    target.insert("authorizer".into(), a.into());
                }
                None => {
                    errors.push(
                        m.error("AuthorizationType CUSTOM needs AuthorizerId: !Ref an Authorizer"),
                    );
                    continue;
                }
            },
            Some("AWS_IAM") => {
                target.insert("authorizer".into(), "AWS_IAM".into());
            }
            Some(other) => {
                errors.push(m.error(format!(
                    "AuthorizationType {other} is not served yet (NONE, CUSTOM and AWS_IAM are)"
                )));
                continue;
            }
        }
        if m.props
            .as_ref()
            .and_then(|p| p.get("ApiKeyRequired"))
            .map(|n| &n.value)
            == Some(&Value::Bool(true))
        {
            target.insert("api_key_required".into(), true.into());
        }
        // Request validation: the validator, the models, the parameters.
        if let Some(v) = m.names("RequestValidatorId") {
            let Some(found) = validators.get(v.as_str()) else {
                errors.push(m.error(format!(
                    "RequestValidatorId names {v:?}, not an AWS::ApiGateway::RequestValidator of the template"
                )));
                continue;
            };
            let flag = |k: &str| {
                found
                    .props
                    .as_ref()
                    .and_then(|p| p.get(k))
                    .map(|n| &n.value)
                    == Some(&Value::Bool(true))
                    || found.text(k).as_deref() == Some("true")
            };
            let validate = match (
                flag("ValidateRequestBody"),
                flag("ValidateRequestParameters"),
            ) {
                (true, true) => "all",
                (true, false) => "body",
                (false, true) => "parameters",
                (false, false) => "none",
            };
            target.insert("validate".into(), validate.into());
        }
        let models: toml::Table = m
            .props
            .as_ref()
            .and_then(|p| p.get("RequestModels"))
            .and_then(Node::as_map)
            .unwrap_or(&[])
            .iter()
            .filter_map(|(ct, v)| {
                let named = v.scalar_text()?;
                let name = model_names.get(named.as_str()).cloned().unwrap_or(named);
                Some((ct.clone(), toml::Value::String(name)))
            })
            .collect();
        if !models.is_empty() {
            target.insert("request_models".into(), toml::Value::Table(models));
        }
        let required = required_parameters(
            m.props
                .as_ref()
                .and_then(|p| p.get("RequestParameters"))
                .and_then(Node::as_map)
                .unwrap_or(&[])
                .iter()
                .map(|(k, v)| {
                    let on = matches!(v.value, Value::Bool(true))
                        || v.scalar_text().as_deref() == Some("true");
                    (k.as_str(), on)
                }),
        );
        if !required.is_empty() {
            target.insert("required_parameters".into(), toml::Value::Array(required));
        }
        if let Some(toml::Value::Table(routes)) = apis.get_mut(&api).map(|x| {
            x.entry("routes")
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
        }) {
            routes.insert(format!("{method} {path}"), toml::Value::Table(target));
        }
    }
    // Stages: a Stage's, or a Deployment's StageName.
    for p in parts
        .iter()
        .filter(|p| p.ty == "AWS::ApiGateway::Stage" || p.ty == "AWS::ApiGateway::Deployment")
    {
        let Some(name) = p.text("StageName") else {
            continue;
        };
        let Some(api) = api_of(p, errors) else {
            continue;
        };
        add_stage(apis, &api, name.clone(), p, "Variables");
        // A Deployment's stage settings are in its StageDescription.
        let settings = if p.ty == "AWS::ApiGateway::Deployment" {
            p.props
                .as_ref()
                .and_then(|x| x.get("StageDescription"))
                .and_then(Node::as_map)
                .unwrap_or(&[])
        } else {
            props_of(p)
        };
        if let Some(t) = apis.get_mut(&api) {
            crate::settings::rest_stage(t, &name, settings, &p.path(), errors);
        }
    }
    for id in cfn_apis.iter() {
        if apis.get(id).is_some_and(|a| !a.contains_key("stages")) {
            if let Some(api) = parts.iter().find(|p| p.id == id) {
                errors.push(api.error("the RestApi has no Stage (nor a Deployment with a StageName): nothing would serve it"));
            }
        }
    }
}

/// Stage `name` of API `api` (merged with what is there), with the
/// variables `part`'s `key` property holds.
pub(crate) fn add_stage(
    apis: &mut BTreeMap<String, toml::Table>,
    api: &str,
    name: String,
    part: &Part<'_>,
    key: &str,
) {
    let Some(t) = apis.get_mut(api) else {
        return;
    };
    crate::settings::stage_table(t, &name);
    crate::settings::variables(t, &name, part.props.as_ref().and_then(|x| x.get(key)));
}

/// A part's evaluated properties, as a list of keys and values.
pub(crate) fn props_of<'a>(part: &'a Part<'_>) -> &'a [(String, Node)] {
    part.props.as_ref().and_then(Node::as_map).unwrap_or(&[])
}

/// A Method's `Integration` as a route's target.
fn integration(m: &Part<'_>) -> Result<toml::Table, Error> {
    let i = m
        .props
        .as_ref()
        .and_then(|p| p.get("Integration"))
        .ok_or_else(|| m.error("a Method needs an Integration"))?;
    let text = |k: &str| i.get(k).and_then(Node::scalar_text);
    let mut t = toml::Table::new();
    match text("Type").as_deref() {
        Some("AWS_PROXY") => {
            let f = text("Uri").as_deref().and_then(uri_target).ok_or_else(|| {
                m.error(
                    "an AWS_PROXY integration's Uri names a function (…/functions/ARN/invocations)",
                )
            })?;
            t.insert("function".into(), f.into());
        }
        Some("HTTP_PROXY") => {
            let uri =
                text("Uri").ok_or_else(|| m.error("an HTTP_PROXY integration needs a Uri"))?;
            t.insert("http".into(), uri.into());
        }
        Some("AWS") => {
            let f = text("Uri").as_deref().and_then(uri_target).ok_or_else(|| {
                m.error("an AWS integration's Uri names a function (…/functions/ARN/invocations)")
            })?;
            t.insert("function".into(), f.into());
            t.insert("proxy".into(), false.into());
        }
        Some("HTTP") => {
            let uri = text("Uri").ok_or_else(|| m.error("an HTTP integration needs a Uri"))?;
            t.insert("http".into(), uri.into());
            t.insert("proxy".into(), false.into());
        }
        Some("MOCK") => {
            t.insert("mock".into(), toml::Value::Table(toml::Table::new()));
        }
        other => {
            return Err(m.error(format!(
                "an integration of Type {} is not served yet (AWS_PROXY, HTTP_PROXY, AWS with a function, HTTP and MOCK are)",
                other.unwrap_or("(none)")
            )))
        }
    }
    if matches!(text("Type").as_deref(), Some("AWS" | "HTTP" | "MOCK")) {
        let responses: Vec<MappedResponse<'_>> = i
            .get("IntegrationResponses")
            .and_then(Node::as_list)
            .unwrap_or(&[])
            .iter()
            .map(|r| MappedResponse {
                content_handling: r.get("ContentHandling").and_then(Node::scalar_text),
                pattern: r.get("SelectionPattern").and_then(Node::scalar_text),
                status: r.get("StatusCode").and_then(Node::scalar_text),
                templates: r.get("ResponseTemplates"),
                parameters: r.get("ResponseParameters"),
            })
            .collect();
        mapping_keys(
            &mut t,
            i.get("RequestTemplates"),
            text("PassthroughBehavior"),
            &responses,
        );
        if let Some(h) = text("ContentHandling") {
            t.insert("content_handling".into(), h.into());
        }
    }
    if matches!(text("Type").as_deref(), Some("HTTP" | "HTTP_PROXY")) {
        request_parameters_key(&mut t, i.get("RequestParameters"));
    }
    if let Some(mode) = text("ResponseTransferMode") {
        t.insert("transfer_mode".into(), mode.into());
    }
    Ok(t)
}

/// `method.request.querystring.NAME` (and `header`, `path`) that are
/// required, as a route's `required_parameters`.
pub(crate) fn required_parameters<'a>(
    params: impl Iterator<Item = (&'a str, bool)>,
) -> Vec<toml::Value> {
    params
        .filter(|(_, required)| *required)
        .filter_map(|(k, _)| k.strip_prefix("method.request."))
        .map(|k| toml::Value::String(k.to_owned()))
        .collect()
}

/// An HTTP integration's `RequestParameters` (`integration.request.*` =
/// source) as a route's `request_parameters`.
pub(crate) fn request_parameters_key(t: &mut toml::Table, params: Option<&Node>) {
    let map: toml::Table = params
        .and_then(Node::as_map)
        .unwrap_or(&[])
        .iter()
        .filter_map(|(k, v)| Some((k.clone(), toml::Value::String(v.scalar_text()?))))
        .collect();
    if !map.is_empty() {
        t.insert("request_parameters".into(), toml::Value::Table(map));
    }
}

/// One integration response of a template, as written.
pub(crate) struct MappedResponse<'a> {
    pub(crate) content_handling: Option<String>,
    pub(crate) pattern: Option<String>,
    pub(crate) status: Option<String>,
    pub(crate) templates: Option<&'a Node>,
    pub(crate) parameters: Option<&'a Node>,
}

/// A non-proxy integration's mapping as a route's keys: `request_templates`,
/// `passthrough` (CloudFormation's `WHEN_NO_MATCH` or OpenAPI's
/// `when_no_match`), and `responses` (`method.response.header.NAME`
/// parameters as `headers`).
pub(crate) fn mapping_keys(
    t: &mut toml::Table,
    request_templates: Option<&Node>,
    passthrough: Option<String>,
    responses: &[MappedResponse<'_>],
) {
    let templates = |n: Option<&Node>| -> toml::Table {
        n.and_then(Node::as_map)
            .unwrap_or(&[])
            .iter()
            .filter_map(|(ct, v)| Some((ct.clone(), toml::Value::String(v.scalar_text()?))))
            .collect()
    };
    let request = templates(request_templates);
    if !request.is_empty() {
        t.insert("request_templates".into(), toml::Value::Table(request));
    }
    if let Some(p) = passthrough {
        t.insert("passthrough".into(), p.to_ascii_uppercase().into());
    }
    let mut list = Vec::new();
    for r in responses {
        let mut rt = toml::Table::new();
        if let Some(p) = r.pattern.as_ref().filter(|p| !p.is_empty()) {
            rt.insert("pattern".into(), p.clone().into());
        }
        if let Some(h) = &r.content_handling {
            rt.insert("content_handling".into(), h.clone().into());
        }
        let status = r
            .status
            .as_deref()
            .and_then(|s| s.parse::<i64>().ok())
            .unwrap_or(200);
        rt.insert("status".into(), status.into());
        let body = templates(r.templates);
        if !body.is_empty() {
            rt.insert("templates".into(), toml::Value::Table(body));
        }
        let headers: toml::Table = r
            .parameters
            .and_then(Node::as_map)
            .unwrap_or(&[])
            .iter()
            .filter_map(|(k, v)| {
                let name = k.strip_prefix("method.response.header.")?;
                Some((name.to_owned(), toml::Value::String(v.scalar_text()?)))
            })
            .collect();
        if !headers.is_empty() {
            rt.insert("headers".into(), toml::Value::Table(headers));
        }
        list.push(toml::Value::Table(rt));
    }
    if !list.is_empty() {
        t.insert("responses".into(), toml::Value::Array(list));
    }
}

/// A JWT authorizer's table. API Gateway reads the keys from the issuer's
/// discovery document; Stratus takes them at the usual place beside it,
/// `{issuer}/.well-known/jwks.json`.
pub(crate) fn jwt_authorizer(
    issuer: String,
    audience: Vec<toml::Value>,
    identity_source: Option<String>,
) -> toml::Table {
    let mut t = toml::Table::new();
    t.insert("type".into(), "jwt".into());
    t.insert(
        "jwks".into(),
        format!("{}/.well-known/jwks.json", issuer.trim_end_matches('/')).into(),
    );
    t.insert("issuer".into(), issuer.into());
    t.insert("audience".into(), toml::Value::Array(audience));
    if let Some(src) = identity_source {
        t.insert("identity_source".into(), src.into());
    }
    t
}

/// A Lambda authorizer's payload format version as the project spells it
/// (`1.0`, else `2.0`).
pub(crate) fn payload_version(v: &str) -> &'static str {
    if v.starts_with('1') {
        "1.0"
    } else {
        "2.0"
    }
}

/// A CORS configuration of HTTP APIs' and function URLs' shape as the
/// project's `cors` table: `AllowOrigins`, `AllowMethods`, `AllowHeaders`,
/// `ExposeHeaders`, `MaxAge`, `AllowCredentials` (camelCase in OpenAPI's
/// `x-amazon-apigateway-cors`); empty lists left out.
pub(crate) fn cors_table(c: &Node, camel: bool) -> toml::Table {
    let key = |k: &str| {
        if camel {
            let mut chars = k.chars();
            chars
                .next()
                .map(|f| f.to_ascii_lowercase().to_string() + chars.as_str())
                .unwrap_or_default()
        } else {
            k.to_owned()
        }
    };
    let mut t = toml::Table::new();
    for (from, to) in [
        ("AllowOrigins", "allow_origins"),
        ("AllowMethods", "allow_methods"),
        ("AllowHeaders", "allow_headers"),
        ("ExposeHeaders", "expose_headers"),
    ] {
        let list = crate::openapi::texts(c.get(&key(from)));
        if !list.is_empty() {
            t.insert(to.into(), toml::Value::Array(list));
        }
    }
    if let Some(age) = c
        .get(&key("MaxAge"))
        .and_then(Node::scalar_text)
        .and_then(|a| a.parse::<i64>().ok())
    {
        t.insert("max_age".into(), age.into());
    }
    if let Some(Value::Bool(b)) = c.get(&key("AllowCredentials")).map(|n| &n.value) {
        t.insert("allow_credentials".into(), (*b).into());
    }
    t
}

/// A CloudFormation throttle (`{RateLimit, BurstLimit}`) as a project's
/// `{ rate, burst }`; what is missing is left for the project's checks
/// to name.
pub(crate) fn throttle_table(n: &Node) -> toml::Table {
    let mut t = toml::Table::new();
    let text = |k: &str| n.get(k).and_then(Node::scalar_text);
    if let Some(r) = text("RateLimit").and_then(|r| r.parse::<f64>().ok()) {
        t.insert("rate".into(), r.into());
    }
    if let Some(b) = text("BurstLimit").and_then(|b| b.parse::<i64>().ok()) {
        t.insert("burst".into(), b.into());
    }
    t
}

/// A CloudFormation quota (`{Limit, Period}`; `Offset` is not kept) as a
/// project's `{ limit, period }`.
pub(crate) fn quota_table(n: &Node) -> toml::Table {
    let mut t = toml::Table::new();
    if let Some(l) = n
        .get("Limit")
        .and_then(Node::scalar_text)
        .and_then(|l| l.parse::<i64>().ok())
    {
        t.insert("limit".into(), l.into());
    }
    if let Some(p) = n.get("Period").and_then(Node::scalar_text) {
        t.insert("period".into(), p.into());
    }
    t
}

/// `AWS::ApiGateway::ApiKey`, `UsagePlan` (its `ApiStages`, with their
/// method throttles, `Throttle`, `Quota`) and `UsagePlanKey`, added to the
/// project's `api_keys` and `usage_plans` under their logical ids.
pub(crate) fn usage_plans(
    parts: &[Part<'_>],
    apis: &BTreeMap<String, toml::Table>,
    plans: &mut toml::Table,
    keys: &mut toml::Table,
    errors: &mut Vec<Error>,
) {
    let of = |ty: &'static str| parts.iter().filter(move |p| p.ty == ty);
    for k in of("AWS::ApiGateway::ApiKey") {
        let mut t = toml::Table::new();
        if let Some(v) = k.text("Value") {
            t.insert("value".into(), v.into());
        }
        let enabled = k.props.as_ref().and_then(|p| p.get("Enabled"));
        if let Some(Value::Bool(b)) = enabled.map(|n| &n.value) {
            t.insert("enabled".into(), (*b).into());
        }
        keys.insert(k.id.to_owned(), toml::Value::Table(t));
    }
    for p in of("AWS::ApiGateway::UsagePlan") {
        let props = p.props.as_ref();
        let mut t = toml::Table::new();
        let mut stages = Vec::new();
        let mut methods = toml::Table::new();
        let listed = props
            .and_then(|x| x.get("ApiStages"))
            .and_then(Node::as_list)
            .unwrap_or(&[]);
        for s in listed {
            // `ApiId: !Ref Api` gives the API's id; which of the template's
            // APIs has it.
            let id = s.get("ApiId").and_then(Node::scalar_text);
            let Some(api) = apis
                .keys()
                .find(|a| id.as_deref() == Some(crate::sam::api_id(a).as_str()))
            else {
                errors.push(p.error(format!(
                    "ApiStages: ApiId {} is not a REST API of the template",
                    id.map_or_else(|| "(none)".to_owned(), |i| format!("{i:?}"))
                )));
                continue;
            };
            let Some(stage) = s.get("Stage").and_then(Node::scalar_text) else {
                errors.push(p.error("ApiStages: each names its Stage"));
                continue;
            };
            for (key, limits) in s.get("Throttle").and_then(Node::as_map).unwrap_or(&[]) {
                // `/items/{id}/GET` is the route `GET /items/{id}`.
                let Some((path, method)) = key.rsplit_once('/') else {
                    errors.push(p.error(format!(
                        "ApiStages: a method throttle's key is /PATH/METHOD (e.g. /items/{{id}}/GET), not {key:?}"
                    )));
                    continue;
                };
                let path = if path.is_empty() { "/" } else { path };
                let method = match method.to_ascii_uppercase().as_str() {
                    "*" => "ANY".to_owned(),
                    m => m.to_owned(),
                };
                methods.insert(
                    format!("{api}/{stage} {method} {path}"),
                    toml::Value::Table(throttle_table(limits)),
                );
            }
            stages.push(toml::Value::String(format!("{api}/{stage}")));
        }
        t.insert("apis".into(), toml::Value::Array(stages));
        if let Some(th) = props.and_then(|x| x.get("Throttle")) {
            t.insert("throttle".into(), toml::Value::Table(throttle_table(th)));
        }
        if let Some(q) = props.and_then(|x| x.get("Quota")) {
            t.insert("quota".into(), toml::Value::Table(quota_table(q)));
        }
        if !methods.is_empty() {
            t.insert("method_throttles".into(), toml::Value::Table(methods));
        }
        t.insert("keys".into(), toml::Value::Array(Vec::new()));
        plans.insert(p.id.to_owned(), toml::Value::Table(t));
    }
    for k in of("AWS::ApiGateway::UsagePlanKey") {
        if k.text("KeyType").is_some_and(|t| t != "API_KEY") {
            errors.push(k.error("KeyType is API_KEY"));
            continue;
        }
        // `Ref` of a key and of a plan give their logical ids here.
        let (Some(key), Some(plan)) = (k.text("KeyId"), k.text("UsagePlanId")) else {
            errors.push(k.error("a UsagePlanKey names its KeyId and UsagePlanId"));
            continue;
        };
        if !keys.contains_key(&key) {
            errors.push(k.error(format!(
                "KeyId {key:?} is not an AWS::ApiGateway::ApiKey of the template"
            )));
            continue;
        }
        match plans.get_mut(&plan) {
            Some(toml::Value::Table(t)) => {
                if let Some(toml::Value::Array(listed)) = t.get_mut("keys") {
                    listed.push(key.into());
                }
            }
            _ => errors.push(k.error(format!(
                "UsagePlanId {plan:?} is not an AWS::ApiGateway::UsagePlan of the template"
            ))),
        }
    }
}
