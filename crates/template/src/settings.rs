//! Stage settings as templates declare them, written onto the project's
//! stage and route tables:
//!
//! - REST stages (`AWS::Serverless::Api`, `AWS::ApiGateway::Stage`):
//!   `MethodSettings` (throttles and caching, stage-wide as `/*` `*` or
//!   per method), `CacheClusterEnabled`/`CacheClusterSize`,
//!   `AccessLogSetting`; the API's `BinaryMediaTypes`.
//! - HTTP and WebSocket stages (`AWS::Serverless::HttpApi`,
//!   `AWS::ApiGatewayV2::Stage`): `DefaultRouteSettings`, `RouteSettings`,
//!   `AccessLogSettings`.
//!
//! What changes nothing locally (`LoggingLevel`, `MetricsEnabled`,
//! `DataTraceEnabled`, `TracingEnabled`, an access log's
//! `DestinationArn`) is accepted and dropped.

use crate::node::{Node, Value};
use crate::Error;

/// API Gateway's account-level defaults, for a throttle that names one
/// limit only.
const ACCOUNT_RATE: f64 = 10_000.0;
const ACCOUNT_BURST: i64 = 5_000;

/// The table of stage `stage` of `api`, made when missing.
pub(crate) fn stage_table<'a>(api: &'a mut toml::Table, stage: &str) -> &'a mut toml::Table {
    let stages = api
        .entry("stages")
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    let toml::Value::Table(stages) = stages else {
        unreachable!("stages is a table");
    };
    let entry = stages
        .entry(stage)
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    let toml::Value::Table(t) = entry else {
        unreachable!("a stage is a table");
    };
    t
}

fn text(n: &Node, key: &str) -> Option<String> {
    n.get(key).and_then(Node::scalar_text)
}

fn boolean(n: &Node, key: &str) -> Option<bool> {
    match n.get(key).map(|v| &v.value) {
        Some(Value::Bool(b)) => Some(*b),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    }
}

/// `ThrottlingRateLimit`/`ThrottlingBurstLimit` (a method setting's or
/// a route setting's spelling) as `{ rate, burst }`; a limit left out is
/// the account's.
fn throttle_of(n: &Node) -> Option<toml::Table> {
    let rate = text(n, "ThrottlingRateLimit").and_then(|r| r.parse::<f64>().ok());
    let burst = text(n, "ThrottlingBurstLimit").and_then(|b| b.parse::<f64>().ok());
    if rate.is_none() && burst.is_none() {
        return None;
    }
    let mut t = toml::Table::new();
    t.insert("rate".into(), rate.unwrap_or(ACCOUNT_RATE).into());
    let burst = burst.map_or(ACCOUNT_BURST, |b| b as i64);
    t.insert("burst".into(), burst.into());
    Some(t)
}

/// `AccessLogSetting(s)`'s `Format` as the stage's `access_log`.
fn access_log(api: &mut toml::Table, stage: &str, setting: Option<&Node>) {
    if let Some(format) = setting.and_then(|s| text(s, "Format")) {
        let mut t = toml::Table::new();
        t.insert("format".into(), format.into());
        stage_table(api, stage).insert("access_log".into(), toml::Value::Table(t));
    }
}

/// A stage's variables (`Variables`, `StageVariables`): each value as text.
pub(crate) fn variables(api: &mut toml::Table, stage: &str, vars: Option<&Node>) {
    let Some(vars) = vars.and_then(Node::as_map) else {
        return;
    };
    let vars: toml::Table = vars
        .iter()
        .filter_map(|(k, v)| Some((k.clone(), toml::Value::String(v.scalar_text()?))))
        .collect();
    stage_table(api, stage).insert("variables".into(), toml::Value::Table(vars));
}

/// A method setting's `ResourcePath`, `/~1items~1{id}` as CloudFormation
/// escapes it (or `/items/{id}` as written by hand).
fn resource_path(p: &str) -> String {
    match p.strip_prefix('/') {
        Some(rest) if rest.starts_with("~1") => rest.replace("~1", "/"),
        _ => p.to_owned(),
    }
}

/// The keys of `api`'s routes at `path` for `method` (`*`: every method).
fn routes_at(api: &toml::Table, path: &str, method: &str) -> Vec<String> {
    let Some(toml::Value::Table(routes)) = api.get("routes") else {
        return Vec::new();
    };
    routes
        .keys()
        .filter(|k| {
            k.split_once(' ').is_some_and(|(m, p)| {
                p == path && (method == "*" || m.eq_ignore_ascii_case(method))
            })
        })
        .cloned()
        .collect()
}

fn route_table<'a>(api: &'a mut toml::Table, key: &str) -> Option<&'a mut toml::Table> {
    match api.get_mut("routes")?.as_table_mut()?.get_mut(key)? {
        toml::Value::Table(t) => Some(t),
        _ => None,
    }
}

/// A REST stage's settings: `props` the SAM API's (or the Stage's)
/// properties, at `path` for mistakes.
pub(crate) fn rest_stage(
    api: &mut toml::Table,
    stage: &str,
    props: &[(String, Node)],
    path: &str,
    errors: &mut Vec<Error>,
) {
    let get = |k: &str| props.iter().find(|(n, _)| n == k).map(|(_, v)| v);
    let cluster = get("CacheClusterEnabled").is_some_and(|n| {
        matches!(&n.value, Value::Bool(true)) || n.scalar_text().as_deref() == Some("true")
    });
    if cluster {
        let mut cache = toml::Table::new();
        // The cluster's size in GB, as the cache's bound in MB.
        if let Some(gb) = get("CacheClusterSize")
            .and_then(Node::scalar_text)
            .and_then(|s| s.parse::<f64>().ok())
        {
            cache.insert(
                "size_mb".into(),
                ((gb * 1024.0) as i64).clamp(1, 4096).into(),
            );
        }
        stage_table(api, stage).insert("cache".into(), toml::Value::Table(cache));
    }
    access_log(api, stage, get("AccessLogSetting"));
    for (i, m) in get("MethodSettings")
        .and_then(Node::as_list)
        .unwrap_or(&[])
        .iter()
        .enumerate()
    {
        let at = format!("{path}.MethodSettings[{i}]");
        let resource = resource_path(&text(m, "ResourcePath").unwrap_or_else(|| "/*".into()));
        let method = text(m, "HttpMethod").unwrap_or_else(|| "*".into());
        let throttle = throttle_of(m);
        let caching = boolean(m, "CachingEnabled");
        let ttl = text(m, "CacheTtlInSeconds").and_then(|t| t.parse::<i64>().ok());
        if resource == "/*" && method == "*" {
            let table = stage_table(api, stage);
            if let Some(t) = throttle {
                table.insert("throttle".into(), toml::Value::Table(t));
            }
            if let Some(toml::Value::Table(cache)) = table.get_mut("cache") {
                match (caching, ttl) {
                    (Some(false), _) => {
                        cache.insert("ttl".into(), 0.into());
                    }
                    (_, Some(ttl)) => {
                        cache.insert("ttl".into(), ttl.into());
                    }
                    _ => {}
                }
            }
            continue;
        }
        let keys = routes_at(api, &resource, &method);
        if keys.is_empty() {
            errors.push(m.error(
                &at,
                format!("MethodSettings: the API has no method {method} {resource}"),
            ));
            continue;
        }
        for key in keys {
            let Some(route) = route_table(api, &key) else {
                continue;
            };
            if let Some(t) = &throttle {
                route.insert("throttle".into(), toml::Value::Table(t.clone()));
            }
            if caching.is_some() || ttl.is_some() {
                let mut cache = toml::Table::new();
                if let Some(c) = caching {
                    cache.insert("enabled".into(), c.into());
                }
                if let Some(t) = ttl {
                    cache.insert("ttl".into(), t.into());
                }
                route.insert("cache".into(), toml::Value::Table(cache));
            }
        }
    }
}

/// A REST API's `BinaryMediaTypes` (`image~1png` as CloudFormation escapes
/// it, or `image/png`).
pub(crate) fn binary_media_types(api: &mut toml::Table, types: Option<&Node>) {
    let Some(list) = types.and_then(Node::as_list) else {
        return;
    };
    let types: Vec<toml::Value> = list
        .iter()
        .filter_map(Node::scalar_text)
        .map(|t| toml::Value::String(t.replace("~1", "/")))
        .collect();
    api.insert("binary_media_types".into(), toml::Value::Array(types));
}

/// An HTTP or WebSocket stage's settings: `DefaultRouteSettings`,
/// `RouteSettings` (by route key), `AccessLogSettings`.
pub(crate) fn v2_stage(
    api: &mut toml::Table,
    stage: &str,
    props: &[(String, Node)],
    path: &str,
    errors: &mut Vec<Error>,
) {
    let get = |k: &str| props.iter().find(|(n, _)| n == k).map(|(_, v)| v);
    if let Some(t) = get("DefaultRouteSettings").and_then(throttle_of) {
        stage_table(api, stage).insert("throttle".into(), toml::Value::Table(t));
    }
    access_log(api, stage, get("AccessLogSettings"));
    for (key, setting) in get("RouteSettings").and_then(Node::as_map).unwrap_or(&[]) {
        let Some(t) = throttle_of(setting) else {
            continue;
        };
        // `GET /items/{id}` as the project spells it (methods upper case).
        let key = match key.split_once(' ') {
            Some((m, p)) => format!("{} {p}", m.to_ascii_uppercase()),
            None => key.clone(),
        };
        match route_table(api, &key) {
            Some(route) => {
                route.insert("throttle".into(), toml::Value::Table(t));
            }
            None => errors.push(setting.error(
                &format!("{path}.RouteSettings"),
                format!("RouteSettings: the API has no route {key:?}"),
            )),
        }
    }
}

/// One gateway response as the API's `gateway_responses` entry: its status,
/// headers (`gatewayresponse.header.NAME` parameters, or SAM's
/// `ResponseParameters.Headers`) and templates.
pub(crate) fn gateway_response(
    api: &mut toml::Table,
    ty: &str,
    status: Option<String>,
    headers: Vec<(String, String)>,
    templates: Option<&Node>,
) {
    let mut t = toml::Table::new();
    if let Some(s) = status.and_then(|s| s.parse::<i64>().ok()) {
        t.insert("status".into(), s.into());
    }
    let h: toml::Table = headers
        .into_iter()
        .map(|(k, v)| (k, toml::Value::String(v)))
        .collect();
    if !h.is_empty() {
        t.insert("headers".into(), toml::Value::Table(h));
    }
    let tt: toml::Table = templates
        .and_then(Node::as_map)
        .unwrap_or(&[])
        .iter()
        .filter_map(|(ct, v)| Some((ct.clone(), toml::Value::String(v.scalar_text()?))))
        .collect();
    if !tt.is_empty() {
        t.insert("templates".into(), toml::Value::Table(tt));
    }
    let all = api
        .entry("gateway_responses")
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    if let toml::Value::Table(all) = all {
        all.insert(ty.to_owned(), toml::Value::Table(t));
    }
}

/// `gatewayresponse.header.NAME = VALUE` parameters as (NAME, VALUE).
pub(crate) fn gateway_headers(params: Option<&Node>) -> Vec<(String, String)> {
    params
        .and_then(Node::as_map)
        .unwrap_or(&[])
        .iter()
        .filter_map(|(k, v)| {
            let name = k.strip_prefix("gatewayresponse.header.")?;
            Some((name.to_owned(), v.scalar_text()?))
        })
        .collect()
}

/// A resource policy (an object, or its JSON text) as the API's `policy`.
pub(crate) fn policy(api: &mut toml::Table, doc: Option<&Node>) {
    let Some(doc) = doc else { return };
    let text = match doc.scalar_text() {
        Some(t) => t,
        None => crate::node::to_json(doc).to_string(),
    };
    api.insert("policy".into(), text.into());
}

/// SAM's `Auth.ResourcePolicy`: `CustomStatements`, `IpRangeWhitelist`
/// (only these sources) and `IpRangeBlacklist` (all but these), as a
/// policy document.
pub(crate) fn sam_resource_policy(api: &mut toml::Table, rp: &Node) {
    let mut statements: Vec<serde_json::Value> = rp
        .get("CustomStatements")
        .map(|c| match crate::node::to_json(c) {
            serde_json::Value::Array(a) => a,
            one => vec![one],
        })
        .unwrap_or_default();
    let ranges = |k: &str| -> Vec<serde_json::Value> {
        rp.get(k)
            .and_then(Node::as_list)
            .unwrap_or(&[])
            .iter()
            .filter_map(Node::scalar_text)
            .map(serde_json::Value::String)
            .collect()
    };
    let invoke = |effect: &str, condition: Option<serde_json::Value>| {
        let mut st = serde_json::json!({
            "Effect": effect, "Principal": "*", "Action": "execute-api:Invoke",
            "Resource": "execute-api:/*",
        });
        if let Some(c) = condition {
            st["Condition"] = c;
        }
        st
    };
    let white = ranges("IpRangeWhitelist");
    if !white.is_empty() {
        statements.push(invoke(
            "Allow",
            Some(serde_json::json!({"IpAddress": {"aws:SourceIp": white}})),
        ));
    }
    let black = ranges("IpRangeBlacklist");
    if !black.is_empty() {
        statements.push(invoke("Allow", None));
        statements.push(invoke(
            "Deny",
            Some(serde_json::json!({"IpAddress": {"aws:SourceIp": black}})),
        ));
    }
    if !statements.is_empty() {
        let doc = serde_json::json!({"Version": "2012-10-17", "Statement": statements});
        api.insert("policy".into(), doc.to_string().into());
    }
}
