//! The authorizer phase: Lambda authorizers (TOKEN and REQUEST, with their
//! result cache) and JWT authorizers, for HTTP routes and WebSocket
//! `$connect`. What an authorizer let in reaches the integration as
//! `requestContext.authorizer`, shaped for the route's payload format.
//!
//! Answers, as API Gateway gives them: a missing identity source, a token
//! that fails `identity_validation`, or a function failing with exactly
//! `Unauthorized` → 401; a policy's explicit deny / no allow → 403 with
//! AWS's two messages (HTTP APIs: `Forbidden`); a failing function or an
//! answer that is not a valid one → 500.

mod jwt;
pub(crate) mod policy;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;
use serde_json::{Map, Value};
use stratus_config::{
    Api, ApiKind, App, Authorizer, AuthorizerKind, IdentitySource, PayloadFormat, Stage,
};
use tokio::time::Instant;

use crate::error::GatewayError;
use crate::events::{self, EventContext};
use crate::invoke::{call_function, CallError, Invoke};
use crate::router::Matched;

pub(crate) use policy::{wildcard, Verdict};
use policy::{Answer, Expect};

/// Cached answers of one Lambda authorizer at most.
const CACHE_ENTRIES: u64 = 10_000;

/// Every authorizer of an app, with their caches and keys.
pub(crate) struct Authorizers {
    functions: Arc<dyn Invoke>,
    region: String,
    /// By `api/authorizer`.
    slots: HashMap<String, Slot>,
}

struct Slot {
    /// Lambda authorizers with a TTL: answers by identity.
    cache: Option<moka::sync::Cache<String, Arc<Answer>>>,
    /// TOKEN authorizers' `identity_validation`.
    validation: Option<regex::Regex>,
    /// JWT authorizers' keys.
    keys: Option<jwt::KeySet>,
}

/// What an authorizer let in.
#[derive(Debug)]
pub(crate) struct Granted {
    pub(crate) principal: Option<String>,
    /// `requestContext.authorizer` for the route's payload format.
    pub(crate) context: Value,
    /// `usageIdentifierKey`: the API key when the API's source is AUTHORIZER.
    pub(crate) usage_key: Option<String>,
}

/// What an authorizer reads from a request, for any kind of API.
pub(crate) struct Request<'a> {
    pub(crate) api: &'a Api,
    pub(crate) stage: &'a Stage,
    pub(crate) route_key: &'a str,
    pub(crate) method: &'a str,
    /// The path below the stage's mount (`/items/1`).
    pub(crate) path: &'a str,
    pub(crate) headers: &'a HeaderMap,
    pub(crate) query: Option<&'a str>,
    pub(crate) source_ip: String,
    pub(crate) request_id: &'a str,
}

impl Authorizers {
    pub(crate) fn new(app: &App, functions: Arc<dyn Invoke>) -> Authorizers {
        let mut slots = HashMap::new();
        for api in &app.apis {
            for auth in api.authorizers.values() {
                let cache = (auth.function().is_some() && !auth.ttl.is_zero()).then(|| {
                    moka::sync::Cache::builder()
                        .max_capacity(CACHE_ENTRIES)
                        .time_to_live(auth.ttl)
                        .build()
                });
                let validation = match &auth.kind {
                    // Checked when the config was loaded.
                    AuthorizerKind::Token {
                        validation: Some(v),
                        ..
                    } => regex::Regex::new(v).ok(),
                    _ => None,
                };
                let keys = match &auth.kind {
                    AuthorizerKind::Jwt { jwks, .. } => Some(jwt::KeySet::new(
                        jwks.clone(),
                        app.server.data_dir.join("tls").join("ca.pem"),
                    )),
                    _ => None,
                };
                slots.insert(
                    slot_key(&api.name, &auth.name),
                    Slot {
                        cache,
                        validation,
                        keys,
                    },
                );
            }
        }
        Authorizers {
            functions,
            region: app.server.region.clone(),
            slots,
        }
    }

    /// `arn:aws:execute-api:{region}:{account}:{api}/{stage}/{rest}`.
    pub(crate) fn arn(&self, api: &str, stage: &str, rest: &str) -> String {
        format!(
            "arn:aws:execute-api:{}:{}:{api}/{stage}/{rest}",
            self.region,
            events::ACCOUNT_ID
        )
    }

    /// An HTTP route's authorizer, if it has one; its decision counted.
    pub(crate) async fn http(
        &self,
        m: &Matched<'_>,
        parts: &http::request::Parts,
        ev: &EventContext<'_>,
    ) -> Result<Option<Granted>, GatewayError> {
        let Some(auth) = &m.route.authorizer else {
            return Ok(None);
        };
        let out = self.http_decide(auth, m, parts, ev).await;
        decided(&m.api.name, auth, &out);
        out.map(|(g, _)| Some(g))
    }

    async fn http_decide(
        &self,
        auth: &Authorizer,
        m: &Matched<'_>,
        parts: &http::request::Parts,
        ev: &EventContext<'_>,
    ) -> Result<(Granted, bool), GatewayError> {
        let route_key = m.route.key.to_string();
        let req = Request {
            api: m.api,
            stage: m.stage,
            route_key: &route_key,
            method: parts.method.as_str(),
            path: &m.path,
            headers: &parts.headers,
            query: parts.uri.query(),
            source_ip: ev.remote.ip().to_string(),
            request_id: ev.request_id,
        };
        let arn = self.arn(
            &m.api.name,
            &m.stage.name,
            &format!("{}{}", parts.method, m.path),
        );
        let format = m.route.payload;
        if let AuthorizerKind::Jwt {
            issuer, audience, ..
        } = &auth.kind
        {
            return self
                .jwt(auth, &req, issuer, audience, &m.route.scopes, format)
                .await
                .map(|g| (g, false));
        }
        let event = |identity: &[String]| -> Result<Value, GatewayError> {
            match (&auth.kind, m.api.kind, format) {
                (AuthorizerKind::Token { .. }, _, _) => Ok(serde_json::json!({
                    "type": "TOKEN",
                    "authorizationToken": identity.first().cloned().unwrap_or_default(),
                    "methodArn": arn,
                })),
                (_, ApiKind::Http, PayloadFormat::V2) => {
                    let mut v = events::v2::v2_value(m, parts, ev)?;
                    if let Some(o) = v.as_object_mut() {
                        o.remove("body");
                        o.remove("isBase64Encoded");
                        o.insert("type".into(), "REQUEST".into());
                        o.insert("routeArn".into(), arn.clone().into());
                        o.insert("identitySource".into(), serde_json::json!(identity));
                    }
                    Ok(v)
                }
                (_, kind, _) => {
                    let mut v = events::v1::v1_value(m, parts, &Bytes::new(), ev)?;
                    if let Some(o) = v.as_object_mut() {
                        o.remove("body");
                        o.remove("isBase64Encoded");
                        o.insert("type".into(), "REQUEST".into());
                        o.insert("methodArn".into(), arn.clone().into());
                        if kind == ApiKind::Http {
                            let joined = identity.join(",");
                            o.insert("version".into(), "1.0".into());
                            o.insert("identitySource".into(), joined.clone().into());
                            o.insert("authorizationToken".into(), joined.into());
                        }
                    }
                    Ok(v)
                }
            }
        };
        let timeout = m.route.timeout;
        let (answer, latency) = self.lambda(auth, &req, event, timeout).await?;
        judge(&answer, &arn, m.api.kind)?;
        Ok((
            grant(&answer, m.api.kind, format, latency.unwrap_or(0)),
            latency.is_none(),
        ))
    }

    /// A WebSocket `$connect`'s REQUEST authorizer: `connect_event` is the
    /// CONNECT event, to which `type` and `methodArn` are added.
    pub(crate) async fn connect(
        &self,
        auth: &Authorizer,
        req: &Request<'_>,
        connect_event: impl FnOnce() -> Value,
        timeout: Duration,
    ) -> Result<Granted, GatewayError> {
        let arn = self.arn(&req.api.name, &req.stage.name, "$connect");
        let event = |_: &[String]| -> Result<Value, GatewayError> {
            let mut v = connect_event();
            if let Some(o) = v.as_object_mut() {
                o.insert("type".into(), "REQUEST".into());
                o.insert("methodArn".into(), arn.clone().into());
            }
            Ok(v)
        };
        let out = async {
            let (answer, latency) = self.lambda(auth, req, event, timeout).await?;
            judge(&answer, &arn, ApiKind::WebSocket)?;
            Ok((
                grant(
                    &answer,
                    ApiKind::WebSocket,
                    PayloadFormat::V1,
                    latency.unwrap_or(0),
                ),
                latency.is_none(),
            ))
        }
        .await;
        decided(&req.api.name, auth, &out);
        out.map(|(g, _)| g)
    }

    /// Runs (or finds in the cache) a Lambda authorizer's answer.
    async fn lambda(
        &self,
        auth: &Authorizer,
        req: &Request<'_>,
        event: impl FnOnce(&[String]) -> Result<Value, GatewayError>,
        timeout: Duration,
    ) -> Result<(Arc<Answer>, Option<u64>), GatewayError> {
        let slot = self.slot(req.api, auth)?;
        let identity = identity(auth, req);
        let token = matches!(auth.kind, AuthorizerKind::Token { .. });
        // REST REQUEST authorizers without a cache may go without their
        // identity sources; everything else needs them.
        let optional = !token && req.api.kind == ApiKind::Rest && slot.cache.is_none();
        let identity = match identity {
            Some(values) => values,
            None if optional => Vec::new(),
            None => return Err(GatewayError::Unauthorized { challenge: None }),
        };
        if let (Some(re), Some(token)) = (&slot.validation, identity.first()) {
            if !re.is_match(token) {
                return Err(GatewayError::Unauthorized { challenge: None });
            }
        }
        let cache_key = identity.join("\u{1f}");
        if let Some(hit) = slot.cache.as_ref().and_then(|c| c.get(&cache_key)) {
            return Ok((hit, None));
        }
        let function = auth.function().expect("a Lambda authorizer");
        let payload = serde_json::to_vec(&event(&identity)?)
            .map_err(|e| GatewayError::Internal(e.to_string()))?;
        let started = Instant::now();
        let out = call_function(
            &*self.functions,
            function,
            Bytes::from(payload),
            Some(timeout),
            None,
        )
        .await;
        let latency = started.elapsed().as_millis() as u64;
        let payload = match out {
            Ok(p) => p,
            Err(CallError::Failed { error_message, .. }) if error_message == "Unauthorized" => {
                return Err(GatewayError::Unauthorized { challenge: None })
            }
            Err(e) => {
                let why = format!("authorizer {:?} (function {function:?}): {e:?}", auth.name);
                tracing::warn!("{why}");
                return Err(GatewayError::AuthorizerFailed(why));
            }
        };
        let expect = Expect {
            simple: matches!(
                auth.kind,
                AuthorizerKind::Request {
                    simple_responses: true,
                    ..
                }
            ),
            strict: req.api.kind != ApiKind::Http,
        };
        let answer = Arc::new(policy::parse(&payload, expect).map_err(|e| {
            let why = format!("authorizer {:?} answered badly: {e}", auth.name);
            tracing::warn!("{why}");
            GatewayError::AuthorizerFailed(why)
        })?);
        if let Some(c) = &slot.cache {
            c.insert(cache_key, answer.clone());
        }
        Ok((answer, Some(latency)))
    }

    async fn jwt(
        &self,
        auth: &Authorizer,
        req: &Request<'_>,
        issuer: &str,
        audience: &[String],
        scopes: &[String],
        format: PayloadFormat,
    ) -> Result<Granted, GatewayError> {
        let slot = self.slot(req.api, auth)?;
        let keys = slot
            .keys
            .as_ref()
            .ok_or_else(|| GatewayError::Internal("jwt authorizer without keys".into()))?;
        let token = identity(auth, req)
            .and_then(|v| v.into_iter().next())
            .ok_or(GatewayError::Unauthorized { challenge: None })?;
        let found = jwt::check(keys, issuer, audience, scopes, &token).await?;
        let jwt = serde_json::json!({
            "claims": jwt::claims_as_strings(&found.claims),
            "scopes": found.scopes,
        });
        let context = match format {
            PayloadFormat::V2 => serde_json::json!({ "jwt": jwt }),
            PayloadFormat::V1 => jwt,
        };
        Ok(Granted {
            principal: found
                .claims
                .get("sub")
                .and_then(Value::as_str)
                .map(str::to_owned),
            context,
            usage_key: None,
        })
    }

    fn slot(&self, api: &Api, auth: &Authorizer) -> Result<&Slot, GatewayError> {
        self.slots
            .get(&slot_key(&api.name, &auth.name))
            .ok_or_else(|| GatewayError::Internal(format!("no authorizer {:?}", auth.name)))
    }
}

/// Counts a decision (`stratus_authorizer_results_total`).
fn decided(api: &str, auth: &Authorizer, out: &Result<(Granted, bool), GatewayError>) {
    let (result, cached) = match out {
        Ok((_, cached)) => ("allow", *cached),
        Err(GatewayError::Unauthorized { .. }) => ("unauthorized", false),
        Err(GatewayError::Denied { .. } | GatewayError::Forbidden(_)) => ("deny", false),
        Err(_) => ("error", false),
    };
    stratus_telemetry::AuthorizerDecided {
        api,
        authorizer: &auth.name,
        result,
        cached,
    }
    .emit();
}

fn slot_key(api: &str, auth: &str) -> String {
    format!("{api}/{auth}")
}

/// The identity sources' values, each present and non-empty; or `None`.
fn identity(auth: &Authorizer, req: &Request<'_>) -> Option<Vec<String>> {
    let query = || events::query_pairs(req.query);
    auth.identity_sources
        .iter()
        .map(|src| {
            let v = match src {
                IdentitySource::Header(name) => {
                    let all: Vec<&str> = req
                        .headers
                        .get_all(name.as_str())
                        .iter()
                        .filter_map(|v| v.to_str().ok())
                        .collect();
                    all.join(",")
                }
                IdentitySource::Query(name) => {
                    let all: Vec<String> = query()
                        .into_iter()
                        .filter(|(k, _)| k == name)
                        .map(|(_, v)| v)
                        .collect();
                    all.join(",")
                }
                IdentitySource::StageVariable(name) => {
                    req.stage.variables.get(name).cloned().unwrap_or_default()
                }
                IdentitySource::Context(name) => match name.as_str() {
                    "routeKey" => req.route_key.to_owned(),
                    "stage" => req.stage.name.clone(),
                    "httpMethod" | "http.method" => req.method.to_owned(),
                    "path" | "http.path" => req.path.to_owned(),
                    "identity.sourceIp" | "http.sourceIp" => req.source_ip.clone(),
                    "requestId" => req.request_id.to_owned(),
                    "apiId" => req.api.name.clone(),
                    _ => String::new(),
                },
            };
            (!v.is_empty()).then_some(v)
        })
        .collect()
}

/// The policy's verdict on `arn`, as the client's answer.
fn judge(answer: &Answer, arn: &str, kind: ApiKind) -> Result<(), GatewayError> {
    match (answer.judge(arn), kind) {
        (Verdict::Allow, _) => Ok(()),
        (_, ApiKind::Http) => Err(GatewayError::Forbidden(
            "the authorizer did not allow the call",
        )),
        (Verdict::ExplicitDeny, _) => Err(GatewayError::Denied { explicit: true }),
        (Verdict::ImplicitDeny, _) => Err(GatewayError::Denied { explicit: false }),
    }
}

/// `requestContext.authorizer`: HTTP APIs' 2.0 events get the context as
/// `lambda`; 1.0 events (REST, WebSocket, HTTP with 1.0) get
/// `principalId`, `integrationLatency` and the context keys (REST and
/// WebSocket: values as strings).
fn grant(answer: &Answer, kind: ApiKind, format: PayloadFormat, latency_ms: u64) -> Granted {
    let context = if kind == ApiKind::Http && format == PayloadFormat::V2 {
        serde_json::json!({ "lambda": answer.context })
    } else {
        let mut m = Map::new();
        if let Some(p) = &answer.principal {
            m.insert("principalId".into(), p.clone().into());
        }
        m.insert("integrationLatency".into(), latency_ms.into());
        for (k, v) in &answer.context {
            let v = match v {
                Value::String(_) => v.clone(),
                other if kind != ApiKind::Http => Value::String(other.to_string()),
                other => other.clone(),
            };
            m.insert(k.clone(), v);
        }
        Value::Object(m)
    };
    Granted {
        principal: answer.principal.clone(),
        context,
        usage_key: answer.usage_key.clone(),
    }
}
