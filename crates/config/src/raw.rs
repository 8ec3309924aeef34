//! Step 1 of 3: the file as written, deserialized with serde.
//!
//! Every struct denies unknown keys, and every value that a later check may
//! complain about is `Spanned`, so that errors can name its line and column.
//! Nothing here checks meaning: that is `validate`'s job.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    #[serde(default)]
    pub(crate) server: RawServer,
    #[serde(default)]
    pub(crate) functions: BTreeMap<String, Spanned<RawFunction>>,
    #[serde(default)]
    pub(crate) apis: BTreeMap<String, Spanned<RawApi>>,
    #[serde(default)]
    pub(crate) api_keys: BTreeMap<String, Spanned<RawApiKey>>,
    #[serde(default)]
    pub(crate) usage_plans: BTreeMap<String, Spanned<RawUsagePlan>>,
    pub(crate) pricing: Option<Spanned<RawPricing>>,
    #[serde(default)]
    pub(crate) buckets: BTreeMap<String, Spanned<RawBucket>>,
    #[serde(default)]
    pub(crate) sites: BTreeMap<String, Spanned<RawSite>>,
    #[serde(default)]
    pub(crate) databases: BTreeMap<String, Spanned<RawDatabase>>,
    pub(crate) cluster: Option<Spanned<RawCluster>>,
}

/// `[cluster]`: the engines a fleet of nodes shares.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCluster {
    pub(crate) node: Option<Spanned<String>>,
    pub(crate) redis: Option<Spanned<String>>,
    pub(crate) postgres: Option<Spanned<String>>,
    pub(crate) objects: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDatabase {
    pub(crate) engine: Option<Spanned<String>>,
    pub(crate) url: Option<Spanned<String>>,
    pub(crate) migrations: Option<Spanned<String>>,
    pub(crate) seed: Option<Spanned<String>>,
    pub(crate) statement_timeout: Option<Spanned<i64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBucket {
    pub(crate) source: Option<Spanned<String>>,
    /// S3's bucket CORS configuration, in the APIs' spelling.
    pub(crate) cors: Option<Spanned<RawCors>>,
    #[serde(default)]
    pub(crate) notifications: Vec<Spanned<RawNotification>>,
}

/// One of `[buckets.NAME] notifications`: S3 event notifications to a
/// function.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNotification {
    pub(crate) function: Spanned<String>,
    #[serde(default)]
    pub(crate) events: Vec<Spanned<String>>,
    pub(crate) prefix: Option<String>,
    pub(crate) suffix: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSite {
    pub(crate) bucket: Spanned<String>,
    pub(crate) base_path: Option<Spanned<String>>,
    pub(crate) index: Option<Spanned<String>>,
    pub(crate) spa: Option<Spanned<bool>>,
    pub(crate) not_found: Option<Spanned<String>>,
    pub(crate) cache_control: Option<Spanned<String>>,
    #[serde(default)]
    pub(crate) behaviors: Vec<Spanned<RawBehavior>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBehavior {
    pub(crate) path: Spanned<String>,
    pub(crate) cache_control: Option<Spanned<String>>,
}

/// `[pricing]`: list prices for the dashboard's cost estimate, in dollars.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPricing {
    pub(crate) lambda_requests_per_million: Option<Spanned<f64>>,
    pub(crate) lambda_gb_second: Option<Spanned<f64>>,
    pub(crate) rest_requests_per_million: Option<Spanned<f64>>,
    pub(crate) http_requests_per_million: Option<Spanned<f64>>,
    pub(crate) websocket_messages_per_million: Option<Spanned<f64>>,
    pub(crate) websocket_connection_minutes_per_million: Option<Spanned<f64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawApiKey {
    pub(crate) value: Option<Spanned<String>>,
    pub(crate) enabled: Option<Spanned<bool>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawUsagePlan {
    #[serde(default)]
    pub(crate) apis: Vec<Spanned<String>>,
    pub(crate) throttle: Option<Spanned<RawThrottle>>,
    pub(crate) quota: Option<Spanned<RawQuota>>,
    #[serde(default)]
    pub(crate) keys: Vec<Spanned<String>>,
    /// `"API/STAGE METHOD PATH" = { rate, burst }`.
    #[serde(default)]
    pub(crate) method_throttles: BTreeMap<String, Spanned<RawThrottle>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawQuota {
    pub(crate) limit: Spanned<i64>,
    pub(crate) period: Spanned<String>,
}

/// `[apis.NAME.authorizers.AUTH]`; which keys apply depends on `type`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAuthorizer {
    #[serde(rename = "type")]
    pub(crate) kind: Spanned<String>,
    pub(crate) function: Option<Spanned<String>>,
    pub(crate) identity_source: Option<Spanned<OneOrMany>>,
    pub(crate) ttl: Option<Spanned<i64>>,
    pub(crate) payload: Option<Spanned<String>>,
    pub(crate) simple_responses: Option<Spanned<bool>>,
    pub(crate) identity_validation: Option<Spanned<String>>,
    pub(crate) issuer: Option<Spanned<String>>,
    pub(crate) audience: Option<Spanned<Vec<String>>>,
    pub(crate) jwks: Option<Spanned<String>>,
}

/// A string or a list of strings.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub(crate) fn items(&self) -> Vec<&str> {
        match self {
            OneOrMany::One(s) => vec![s.as_str()],
            OneOrMany::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawServer {
    pub(crate) listen: Option<Spanned<String>>,
    pub(crate) admin_listen: Option<Spanned<String>>,
    pub(crate) shutdown_grace: Option<Spanned<i64>>,
    pub(crate) data_dir: Option<Spanned<String>>,
    pub(crate) region: Option<Spanned<String>>,
    pub(crate) credentials: Option<Spanned<RawCredentials>>,
    pub(crate) header_timeout: Option<Spanned<i64>>,
    pub(crate) max_connections: Option<Spanned<i64>>,
    pub(crate) max_header_bytes: Option<Spanned<i64>>,
    pub(crate) throttle: Option<Spanned<RawThrottle>>,
    pub(crate) function_log_kb: Option<Spanned<i64>>,
    #[serde(default)]
    pub(crate) admin_allow_origins: Vec<Spanned<String>>,
    pub(crate) dashboard_streams: Option<Spanned<i64>>,
    pub(crate) tls: Option<Spanned<bool>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCredentials {
    pub(crate) access_key_id: Spanned<String>,
    pub(crate) secret_access_key: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFunction {
    pub(crate) runtime: Spanned<String>,
    pub(crate) handler: Option<Spanned<String>>,
    pub(crate) code: Spanned<String>,
    pub(crate) timeout: Option<Spanned<i64>>,
    pub(crate) memory: Option<Spanned<i64>>,
    pub(crate) concurrency: Option<Spanned<i64>>,
    pub(crate) environments: Option<Spanned<i64>>,
    pub(crate) warm: Option<Spanned<i64>>,
    pub(crate) idle_timeout: Option<Spanned<i64>>,
    #[serde(default)]
    pub(crate) environment: BTreeMap<String, Spanned<String>>,
    #[serde(rename = "async")]
    pub(crate) asynchronous: Option<Spanned<RawAsync>>,
    #[serde(default)]
    pub(crate) layers: Vec<Spanned<String>>,
    pub(crate) bundle: Option<Spanned<RawBundle>>,
    pub(crate) auto_publish_alias: Option<Spanned<String>>,
    pub(crate) url: Option<Spanned<RawFunctionUrl>>,
    #[serde(default)]
    pub(crate) schedules: Vec<Spanned<RawSchedule>>,
}

/// One of `[functions.NAME] schedules`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSchedule {
    pub(crate) name: Option<Spanned<String>>,
    pub(crate) expression: Spanned<String>,
    pub(crate) timezone: Option<Spanned<String>>,
    pub(crate) input: Option<Spanned<String>>,
    pub(crate) enabled: Option<Spanned<bool>>,
    /// `rule` (EventBridge, the default) or `scheduler`.
    pub(crate) kind: Option<Spanned<String>>,
    pub(crate) qualifier: Option<Spanned<String>>,
}

/// `[functions.NAME.url]`: a function URL.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFunctionUrl {
    pub(crate) auth: Option<Spanned<String>>,
    /// `BUFFERED` (the default) or `RESPONSE_STREAM`.
    pub(crate) invoke_mode: Option<Spanned<String>>,
    pub(crate) qualifier: Option<Spanned<String>>,
    pub(crate) cors: Option<Spanned<RawCors>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBundle {
    pub(crate) entry_points: Vec<Spanned<String>>,
    pub(crate) format: Option<Spanned<String>>,
    #[serde(default)]
    pub(crate) minify: bool,
    #[serde(default)]
    pub(crate) sourcemap: bool,
    pub(crate) target: Option<Spanned<String>>,
    #[serde(default)]
    pub(crate) external: Vec<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAsync {
    pub(crate) max_event_age: Option<Spanned<i64>>,
    pub(crate) max_retries: Option<Spanned<i64>>,
    pub(crate) retry_delay: Option<Spanned<i64>>,
    pub(crate) queue: Option<Spanned<i64>>,
    pub(crate) on_success: Option<Spanned<String>>,
    pub(crate) on_failure: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RawApiType {
    Http,
    Rest,
    Websocket,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawApi {
    #[serde(rename = "type")]
    pub(crate) kind: Spanned<RawApiType>,
    pub(crate) base_path: Option<Spanned<String>>,
    pub(crate) id: Option<Spanned<String>>,
    pub(crate) host_only: Option<Spanned<bool>>,
    pub(crate) stages: Option<BTreeMap<String, Spanned<RawStage>>>,
    pub(crate) route_selection: Option<Spanned<String>>,
    pub(crate) binary_media_types: Option<Spanned<Vec<String>>>,
    pub(crate) cors: Option<Spanned<RawCors>>,
    pub(crate) api_key_source: Option<Spanned<String>>,
    #[serde(default)]
    pub(crate) authorizers: BTreeMap<String, Spanned<RawAuthorizer>>,
    /// `NAME = 'JSON Schema'`: REST models for request validation.
    #[serde(default)]
    pub(crate) models: BTreeMap<String, Spanned<String>>,
    /// A resource policy (IAM JSON), REST APIs.
    pub(crate) policy: Option<Spanned<String>>,
    /// An OpenAPI document whose operations add routes (the CLI expands
    /// it; here its file is checked).
    pub(crate) openapi: Option<Spanned<String>>,
    /// `TYPE = { status, headers, templates }`: REST gateway responses.
    #[serde(default)]
    pub(crate) gateway_responses: BTreeMap<String, Spanned<RawGatewayResponse>>,
    pub(crate) idle_timeout: Option<Spanned<i64>>,
    pub(crate) max_lifetime: Option<Spanned<i64>>,
    #[serde(default)]
    pub(crate) routes: BTreeMap<String, Spanned<RawRoute>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStage {
    #[serde(default)]
    pub(crate) variables: BTreeMap<String, String>,
    pub(crate) throttle: Option<Spanned<RawThrottle>>,
    pub(crate) access_log: Option<Spanned<RawAccessLog>>,
    pub(crate) cache: Option<Spanned<RawStageCache>>,
    /// `"latest"` or a deployment's id.
    pub(crate) deployment: Option<Spanned<toml::Value>>,
    pub(crate) canary: Option<Spanned<RawCanary>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCanary {
    pub(crate) deployment: Spanned<i64>,
    pub(crate) percent: Spanned<f64>,
    #[serde(default)]
    pub(crate) variables: BTreeMap<String, String>,
}

/// A REST stage's response cache.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStageCache {
    pub(crate) ttl: Option<Spanned<i64>>,
    pub(crate) keys: Option<Vec<Spanned<String>>>,
    pub(crate) client_refresh: Option<Spanned<bool>>,
    pub(crate) size_mb: Option<Spanned<i64>>,
}

/// A route's override of its stage's cache.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRouteCache {
    pub(crate) enabled: Option<Spanned<bool>>,
    pub(crate) ttl: Option<Spanned<i64>>,
    pub(crate) keys: Option<Vec<Spanned<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAccessLog {
    pub(crate) format: Spanned<String>,
    pub(crate) file: Option<Spanned<String>>,
}

/// `[apis.NAME.cors]`, as HTTP APIs' `CorsConfiguration`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCors {
    #[serde(default)]
    pub(crate) allow_origins: Vec<Spanned<String>>,
    #[serde(default)]
    pub(crate) allow_methods: Vec<Spanned<String>>,
    #[serde(default)]
    pub(crate) allow_headers: Vec<String>,
    #[serde(default)]
    pub(crate) expose_headers: Vec<String>,
    pub(crate) max_age: Option<Spanned<i64>>,
    pub(crate) allow_credentials: Option<Spanned<bool>>,
}

/// A token bucket: `rate` requests a second, `burst` at once.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawThrottle {
    pub(crate) rate: Spanned<f64>,
    pub(crate) burst: Spanned<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRoute {
    pub(crate) function: Option<Spanned<String>>,
    pub(crate) http: Option<Spanned<String>>,
    pub(crate) mock: Option<Spanned<RawMock>>,
    pub(crate) timeout_ms: Option<Spanned<i64>>,
    pub(crate) respond: Option<Spanned<bool>>,
    pub(crate) payload: Option<Spanned<String>>,
    pub(crate) throttle: Option<Spanned<RawThrottle>>,
    pub(crate) authorizer: Option<Spanned<String>>,
    pub(crate) scopes: Option<Spanned<Vec<String>>>,
    pub(crate) api_key_required: Option<Spanned<bool>>,
    pub(crate) cache: Option<Spanned<RawRouteCache>>,
    /// `BUFFERED` (the default) or `STREAM` (REST function routes).
    pub(crate) transfer_mode: Option<Spanned<String>>,
    /// `false`: a non-proxy (`AWS`/`HTTP`) REST integration.
    pub(crate) proxy: Option<Spanned<bool>>,
    pub(crate) request_templates: Option<Spanned<BTreeMap<String, Spanned<String>>>>,
    pub(crate) passthrough: Option<Spanned<String>>,
    pub(crate) responses: Option<Spanned<Vec<Spanned<RawIntegrationResponse>>>>,
    /// `body`, `parameters`, `all` (API Gateway's request validators).
    pub(crate) validate: Option<Spanned<String>>,
    /// Content type → a model of the API.
    pub(crate) request_models: Option<Spanned<BTreeMap<String, Spanned<String>>>>,
    /// `querystring.NAME`, `header.NAME`, `path.NAME`.
    pub(crate) required_parameters: Option<Spanned<Vec<Spanned<String>>>>,
    /// `CONVERT_TO_TEXT` or `CONVERT_TO_BINARY` (non-proxy integrations).
    pub(crate) content_handling: Option<Spanned<String>>,
    /// `integration.request.header|querystring.NAME` → its source.
    pub(crate) request_parameters: Option<Spanned<BTreeMap<String, Spanned<String>>>>,
}

/// `[apis.NAME.gateway_responses.TYPE]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGatewayResponse {
    pub(crate) status: Option<Spanned<i64>>,
    #[serde(default)]
    pub(crate) headers: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    pub(crate) templates: BTreeMap<String, Spanned<String>>,
}

/// One of a route's `responses` (an integration response).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawIntegrationResponse {
    pub(crate) content_handling: Option<Spanned<String>>,
    pub(crate) pattern: Option<Spanned<String>>,
    pub(crate) status: Option<Spanned<i64>>,
    #[serde(default)]
    pub(crate) templates: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    pub(crate) headers: BTreeMap<String, Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMock {
    pub(crate) status: Option<Spanned<i64>>,
    #[serde(default)]
    pub(crate) headers: BTreeMap<String, String>,
    #[serde(default)]
    pub(crate) body: String,
}
