//! Step 3 of 3: the resolved, immutable `App` the rest of Stratus receives.
//!
//! Nothing after `load` reads the file or the environment: every default is
//! filled in here and every value is already checked.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// A whole project, as loaded from `stratus.toml`.
#[derive(Debug, Clone)]
pub struct App {
    /// The file it was loaded from.
    pub file: PathBuf,
    /// The project file's text as loaded (a template's: the project file
    /// it amounts to), which a published version keeps its function's
    /// table from.
    pub text: Arc<str>,
    /// The directory holding that file; relative paths are resolved from here.
    pub project_dir: PathBuf,
    pub server: Server,
    pub functions: BTreeMap<String, Arc<Function>>,
    pub apis: Vec<Arc<Api>>,
    /// `[api_keys.NAME]`: keys declared in the file (more are created at
    /// run time through the admin API).
    pub api_keys: Vec<ApiKeyDecl>,
    /// `[usage_plans.NAME]`.
    pub usage_plans: Vec<Arc<UsagePlan>>,
    /// Every function's schedules, by name.
    pub schedules: Vec<Arc<Schedule>>,
    /// `[pricing]`: the cost estimate's prices.
    pub pricing: Pricing,
    /// `[buckets.NAME]`: created at start (and seeded from `source`).
    pub buckets: Vec<Bucket>,
    /// `[sites.NAME]`: buckets served on the public listener.
    pub sites: Vec<Arc<Site>>,
    /// `[databases.NAME]`.
    pub databases: Vec<Database>,
    /// `[cluster]`: shared state for a fleet of nodes (none: one node,
    /// in-process state).
    pub cluster: Option<Cluster>,
}

/// `[cluster]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    /// This node's name (default: the host name).
    pub node: Option<String>,
    /// `redis://…` (`${VAR}`s expanded at start): the throttles' buckets.
    pub redis: Option<String>,
}

/// The fake account Stratus uses in ARNs.
pub const ACCOUNT_ID: &str = "000000000000";

/// A database functions use, by driver or through the RDS Data API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Database {
    pub name: String,
    pub engine: DatabaseEngine,
    /// A folder of numbered `.sql` files applied in order, each once.
    pub migrations: Option<PathBuf>,
    /// SQL run after the migrations at every start.
    pub seed: Option<PathBuf>,
    /// How long one statement may run (the Data API's 45 s by default).
    pub statement_timeout: Duration,
}

pub const DEFAULT_STATEMENT_TIMEOUT_SECS: i64 = 45;

impl Database {
    /// Its Data API `resourceArn`, derived from its name.
    pub fn arn(&self, region: &str) -> String {
        format!("arn:aws:rds:{region}:{ACCOUNT_ID}:cluster:{}", self.name)
    }

    pub fn engine_name(&self) -> &'static str {
        match self.engine {
            DatabaseEngine::Sqlite => "sqlite",
            DatabaseEngine::Postgres { .. } => "postgres",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseEngine {
    /// A file in the data directory: `data_dir/databases/NAME.sqlite`.
    Sqlite,
    /// A server, by URL (`${VAR}` replaced from the environment at start).
    Postgres { url: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    pub name: String,
    /// A folder copied in at start (absolute).
    pub source: Option<PathBuf>,
    /// Which web pages may call the S3 API on this bucket (a presigned
    /// upload from a browser), as S3's bucket CORS configuration.
    pub cors: Option<Cors>,
    /// S3 event notifications: a function invoked asynchronously when an
    /// object is created or removed.
    pub notifications: Vec<Notification>,
}

/// An S3 event notification of a bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// `NAME` or `NAME:QUALIFIER`.
    pub function: String,
    /// `s3:ObjectCreated:*`, `s3:ObjectCreated:Put`, `s3:ObjectRemoved:*`, ...
    pub events: Vec<String>,
    pub prefix: String,
    pub suffix: String,
}

/// The S3 event types a notification can name.
pub const S3_EVENTS: &[&str] = &[
    "s3:ObjectCreated:*",
    "s3:ObjectCreated:Put",
    "s3:ObjectCreated:Post",
    "s3:ObjectCreated:Copy",
    "s3:ObjectCreated:CompleteMultipartUpload",
    "s3:ObjectRemoved:*",
    "s3:ObjectRemoved:Delete",
];

impl Notification {
    /// Whether `event` (`ObjectCreated:Put`) on `key` is one to send.
    pub fn matches(&self, event: &str, key: &str) -> bool {
        let (kind, _) = event.split_once(':').unwrap_or((event, ""));
        let named = self.events.iter().any(|e| {
            let e = e.strip_prefix("s3:").unwrap_or(e);
            e == event || e.strip_suffix(":*") == Some(kind)
        });
        named && key.starts_with(&self.prefix) && key.ends_with(&self.suffix)
    }
}

/// A bucket served on the public listener, as CloudFront serves an S3 origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    pub name: String,
    pub bucket: String,
    /// Normalized as an API's.
    pub base_path: String,
    /// The object a directory path (`/`, `/docs/`) serves.
    pub index: String,
    /// Unknown paths without a file extension get the index (200).
    pub spa: bool,
    /// The object served, with 404, for what is not found.
    pub not_found: Option<String>,
    /// For objects without their own `Cache-Control`.
    pub cache_control: Option<String>,
    /// Per path pattern, first match wins.
    pub behaviors: Vec<Behavior>,
}

/// A CloudFront-like cache behaviour: a path pattern (`*` any characters)
/// and the `Cache-Control` objects under it get.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Behavior {
    pub path: String,
    pub cache_control: Option<String>,
}

/// List prices in dollars (us-east-1, x86; AWS's, unless `[pricing]`
/// says otherwise).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pricing {
    pub lambda_requests_per_million: f64,
    pub lambda_gb_second: f64,
    pub rest_requests_per_million: f64,
    pub http_requests_per_million: f64,
    pub websocket_messages_per_million: f64,
    pub websocket_connection_minutes_per_million: f64,
}

impl Default for Pricing {
    fn default() -> Pricing {
        Pricing {
            lambda_requests_per_million: 0.20,
            lambda_gb_second: 0.000_016_666_7,
            rest_requests_per_million: 3.50,
            http_requests_per_million: 1.00,
            websocket_messages_per_million: 1.00,
            websocket_connection_minutes_per_million: 0.25,
        }
    }
}

/// One route of one stage, as `stratus routes` and the dashboard show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteRow {
    pub api: String,
    pub stage: String,
    /// `latest`, a deployment's id, and its canary's.
    pub deployment: String,
    /// `GET`..., `ANY`, or `WS` for a WebSocket route.
    pub method: String,
    /// The full path (mount + route path), or `mount key` for WebSocket routes.
    pub path: String,
    pub integration: String,
    /// The limit that applies: the route's own, else its stage's; `-`.
    pub throttle: String,
    /// `name (type)` or `-`.
    pub authorizer: String,
    /// `required` or `-`.
    pub api_key: String,
}

impl RouteRow {
    pub const HEADER: [&'static str; 9] = [
        "API",
        "STAGE",
        "DEPLOYMENT",
        "METHOD",
        "PATH",
        "INTEGRATION",
        "THROTTLE",
        "AUTHORIZER",
        "API KEY",
    ];

    pub fn cells(self) -> [String; 9] {
        [
            self.api,
            self.stage,
            self.deployment,
            self.method,
            self.path,
            self.integration,
            self.throttle,
            self.authorizer,
            self.api_key,
        ]
    }
}

impl App {
    /// Every route of every stage, in file order.
    pub fn route_rows(&self) -> Vec<RouteRow> {
        let mut rows = Vec::new();
        for api in &self.apis {
            for stage in &api.stages {
                for route in &api.routes {
                    let (method, path) = match &route.key {
                        RouteKey::Http { method, path } => (
                            method.to_string(),
                            join_paths(&stage.mount, &path.to_string()),
                        ),
                        RouteKey::Default if api.kind == ApiKind::WebSocket => {
                            ("WS".to_owned(), format!("{} $default", stage.mount))
                        }
                        RouteKey::Default => {
                            ("ANY".to_owned(), format!("{} ($default)", stage.mount))
                        }
                        RouteKey::WebSocket(k) => ("WS".to_owned(), format!("{} {k}", stage.mount)),
                    };
                    rows.push(RouteRow {
                        api: api.name.clone(),
                        stage: stage.name.clone(),
                        deployment: match &stage.canary {
                            Some(c) => format!(
                                "{} (canary {} at {}%)",
                                stage.deployment, c.deployment, c.percent
                            ),
                            None => stage.deployment.to_string(),
                        },
                        method,
                        path,
                        integration: route.integration.to_string(),
                        // The server-wide limit comes on top.
                        throttle: match route.throttle.or(stage.throttle) {
                            Some(t) => format!("{}/s, burst {}", t.rate, t.burst),
                            None => "-".to_owned(),
                        },
                        authorizer: match &route.authorizer {
                            Some(a) => format!("{} ({})", a.name, a.type_name()),
                            None => "-".to_owned(),
                        },
                        api_key: if route.api_key_required {
                            "required"
                        } else {
                            "-"
                        }
                        .to_owned(),
                    });
                }
            }
        }
        rows
    }
}

/// An API key declared in `stratus.toml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyDecl {
    pub name: String,
    /// The key itself; generated (and kept in the data directory) when absent.
    pub value: Option<String>,
    /// A disabled key is refused like an unknown one.
    pub enabled: bool,
}

/// AWS's lower bound on an API key's length.
pub const MIN_API_KEY_LEN: usize = 20;

/// A usage plan: which API stages its keys open, at what rate, how often.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsagePlan {
    pub name: String,
    /// `(api, stage)` pairs.
    pub stages: Vec<(String, String)>,
    /// Per key: each key of the plan has a bucket of its own.
    pub throttle: Option<Throttle>,
    pub quota: Option<Quota>,
    /// Names of `[api_keys]` in the plan.
    pub keys: Vec<String>,
    /// Per key and method, in place of `throttle` for that method (the
    /// method-level throttles of a usage plan's API stage on AWS).
    pub method_throttles: Vec<MethodThrottle>,
}

/// One method's throttle in a usage plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodThrottle {
    pub api: String,
    pub stage: String,
    /// The route's key, as `[apis.NAME.routes]` spells it (`GET /items/{id}`).
    pub route: String,
    pub throttle: Throttle,
}

impl UsagePlan {
    pub fn covers(&self, api: &str, stage: &str) -> bool {
        self.stages.iter().any(|(a, s)| a == api && s == stage)
    }

    /// The method throttle of `route` (its key) on `api`'s `stage`.
    pub fn method_throttle(
        &self,
        api: &str,
        stage: &str,
        route: &RouteKey,
    ) -> Option<&MethodThrottle> {
        if self.method_throttles.is_empty() {
            return None;
        }
        let route = route.to_string();
        self.method_throttles
            .iter()
            .find(|m| m.api == api && m.stage == stage && m.route == route)
    }
}

/// Calls a key may make per period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub limit: u64,
    pub period: QuotaPeriod,
}

/// Quota periods, in UTC: a day, an ISO week (from Monday), a calendar month.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaPeriod {
    Day,
    Week,
    Month,
}

impl fmt::Display for QuotaPeriod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            QuotaPeriod::Day => "DAY",
            QuotaPeriod::Week => "WEEK",
            QuotaPeriod::Month => "MONTH",
        })
    }
}

/// Where a REST or WebSocket API reads the API key from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ApiKeySource {
    /// The `x-api-key` header.
    #[default]
    Header,
    /// The Lambda authorizer's `usageIdentifierKey`.
    Authorizer,
}

/// `[apis.NAME.authorizers.AUTH]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorizer {
    pub name: String,
    pub kind: AuthorizerKind,
    /// Where the identity comes from; for Lambda authorizers also the
    /// result cache's key. Each must be present, or the answer is 401.
    pub identity_sources: Vec<IdentitySource>,
    /// How long a Lambda authorizer's answer is cached (0: not cached).
    pub ttl: Duration,
}

impl Authorizer {
    /// The function a Lambda authorizer runs.
    pub fn function(&self) -> Option<&str> {
        match &self.kind {
            AuthorizerKind::Token { function, .. } | AuthorizerKind::Request { function, .. } => {
                Some(function)
            }
            AuthorizerKind::Jwt { .. } => None,
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self.kind {
            AuthorizerKind::Token { .. } => "token",
            AuthorizerKind::Request { .. } => "request",
            AuthorizerKind::Jwt { .. } => "jwt",
        }
    }
}

pub const DEFAULT_AUTHORIZER_TTL_SECS: u64 = 300;
pub const MAX_AUTHORIZER_TTL_SECS: u64 = 3600;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizerKind {
    /// REST: the function gets `{type: "TOKEN", authorizationToken, methodArn}`.
    Token {
        function: String,
        /// `identityValidationExpression`: a token that does not match it
        /// is refused (401) without calling the function.
        validation: Option<String>,
    },
    /// REST, HTTP and WebSocket (`$connect`): the function gets the request.
    Request {
        function: String,
        /// HTTP APIs: the event format (REST and WebSocket: 1.0).
        payload: PayloadFormat,
        /// HTTP APIs: `{isAuthorized, context}` answers instead of policies.
        simple_responses: bool,
    },
    /// HTTP APIs: a JWT checked against an issuer's keys.
    Jwt {
        issuer: String,
        audience: Vec<String>,
        jwks: Jwks,
    },
}

/// Where a JWT authorizer's keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Jwks {
    /// An absolute path, read at start.
    File(PathBuf),
    /// Fetched, cached, and fetched again for an unknown `kid`.
    Url(String),
}

/// An identity source, as `$request.header.Authorization` (HTTP and
/// WebSocket APIs' syntax) or `method.request.header.Authorization` (REST's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentitySource {
    /// Lower-cased name.
    Header(String),
    Query(String),
    StageVariable(String),
    Context(String),
}

impl IdentitySource {
    pub fn parse(s: &str) -> Result<IdentitySource, String> {
        let rest = s
            .strip_prefix("$request.")
            .or_else(|| s.strip_prefix("method.request."))
            .or_else(|| s.strip_prefix("route.request."));
        let named = |n: &str| -> Result<String, String> {
            if n.is_empty() || n.contains(char::is_whitespace) {
                Err(format!("identity source {s:?} has no name"))
            } else {
                Ok(n.to_owned())
            }
        };
        if let Some(rest) = rest {
            if let Some(h) = rest.strip_prefix("header.") {
                return Ok(IdentitySource::Header(named(h)?.to_ascii_lowercase()));
            }
            if let Some(q) = rest.strip_prefix("querystring.") {
                return Ok(IdentitySource::Query(named(q)?));
            }
        }
        if let Some(v) = s
            .strip_prefix("$stageVariables.")
            .or_else(|| s.strip_prefix("stageVariables."))
        {
            return Ok(IdentitySource::StageVariable(named(v)?));
        }
        if let Some(v) = s
            .strip_prefix("$context.")
            .or_else(|| s.strip_prefix("context."))
        {
            return Ok(IdentitySource::Context(named(v)?));
        }
        Err(format!(
            "identity source {s:?} is not $request.header.NAME, $request.querystring.NAME, $stageVariables.NAME or $context.NAME"
        ))
    }
}

impl fmt::Display for IdentitySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdentitySource::Header(n) => write!(f, "$request.header.{n}"),
            IdentitySource::Query(n) => write!(f, "$request.querystring.{n}"),
            IdentitySource::StageVariable(n) => write!(f, "$stageVariables.{n}"),
            IdentitySource::Context(n) => write!(f, "$context.{n}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    pub listen: SocketAddr,
    pub admin_listen: SocketAddr,
    /// How long in-flight requests may run on after a shutdown signal.
    pub shutdown_grace: Duration,
    /// Where Stratus keeps what it builds and stores (absolute).
    pub data_dir: PathBuf,
    /// The AWS region functions are told they run in.
    pub region: String,
    /// The credentials functions receive (`AWS_ACCESS_KEY_ID` /
    /// `AWS_SECRET_ACCESS_KEY`) for their SDKs to sign admin API calls
    /// with: `[server.credentials]`, or local defaults.
    pub credentials: Credentials,
    /// `[server.credentials]` was given: every admin API then verifies
    /// SigV4 signatures against them. Without it, any well-formed SigV4
    /// credentials (and unsigned requests) are accepted, as LocalStack
    /// accepts them, and the admin listener must be on loopback.
    pub verify_signatures: bool,
    /// How long a client may take to send a request's headers; on a
    /// keep-alive connection counted from the end of the previous response,
    /// so it is also how long an idle connection is kept.
    pub header_timeout: Duration,
    /// Open client connections per listener (WebSockets included); past
    /// it new connections get 503 and are closed.
    pub max_connections: usize,
    /// Request line and headers, in bytes; past it 431.
    pub max_header_bytes: usize,
    /// The server-wide token bucket (AWS's account-level limit).
    pub throttle: Option<Throttle>,
    /// Bytes of function log lines kept in memory per function.
    pub function_log_bytes: usize,
    /// Web origins (`scheme://host[:port]`) whose pages may call the admin
    /// APIs; any other cross-site request is refused (the dashboard's own
    /// origin and a bucket's CORS origins are always allowed).
    pub admin_allow_origins: Vec<String>,
    /// Dashboard streams (`/stratus/dashboard/stream`) open at once, at most.
    pub dashboard_streams: usize,
    /// The public listener also answers TLS on its port (a connection that
    /// opens with a TLS handshake), with a certificate from the local CA in
    /// `data_dir/tls`, which every function trusts.
    pub tls: bool,
}

pub const DEFAULT_DASHBOARD_STREAMS: usize = 16;

pub const DEFAULT_FUNCTION_LOG_KB: usize = 4096;

/// A token bucket, as API Gateway's throttles: `rate` requests a second on
/// average, up to `burst` at once. `0` for either lets nothing through.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Throttle {
    pub rate: f64,
    pub burst: u32,
}

/// `rate` is never NaN (validation maps it to 0).
impl Eq for Throttle {}

pub const DEFAULT_HEADER_TIMEOUT_SECS: u64 = 60;
pub const DEFAULT_MAX_CONNECTIONS: usize = 50_000;
/// API Gateway's limit on the request line and headers (10 KB).
pub const DEFAULT_MAX_HEADER_BYTES: usize = 10 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
}

/// Local-use defaults, documented in docs/config.md.
pub const DEFAULT_ACCESS_KEY_ID: &str = "stratus";
pub const DEFAULT_SECRET_ACCESS_KEY: &str = "stratus-local-secret";

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:8081";
pub const DEFAULT_SHUTDOWN_GRACE_SECS: u64 = 10;
pub const DEFAULT_DATA_DIR: &str = ".stratus";
pub const DEFAULT_REGION: &str = "us-east-1";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Function {
    pub name: String,
    pub runtime: Language,
    /// `module.function`; for `provided` runtimes it is passed on as `_HANDLER` only.
    pub handler: String,
    /// Absolute path of the code directory.
    pub code: PathBuf,
    pub timeout: Duration,
    pub memory_mb: u32,
    /// Calls at once before Lambda throttles: the reserved concurrency,
    /// or the account's limit (1,000) when none is reserved.
    pub concurrency: u32,
    /// Environments (processes) at most on this machine; calls past them
    /// wait for one, first come first served, instead of being refused.
    pub environments: u32,
    /// Environments started at boot and kept (provisioned concurrency).
    pub warm: u32,
    /// An idle environment above `warm` is stopped after this long.
    pub idle_timeout: Duration,
    pub environment: BTreeMap<String, String>,
    /// Asynchronous (`Event`) invocations: queue, retries, event age.
    pub asynchronous: AsyncConfig,
    /// A published version (frozen code and settings); `None`: `$LATEST`,
    /// the working tree.
    pub version: Option<u32>,
    /// Layer folders, in order (what Lambda extracts into `/opt`, a later
    /// layer's files over an earlier one's), absolute.
    pub layers: Vec<PathBuf>,
    /// Node functions: bundled with esbuild at start (TypeScript too), and
    /// run from the bundle (SAM's `BuildMethod: esbuild`).
    pub bundle: Option<Bundle>,
    /// Published at every start and reload when its code or settings
    /// changed, and this alias pointed at the new version (SAM's
    /// `AutoPublishAlias`).
    pub auto_publish_alias: Option<String>,
}

/// How a function's code is bundled (esbuild's options, as SAM's
/// `BuildProperties` name them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    /// Files of the code directory, each bundled to `NAME.js` (`.mjs` for
    /// `esm`) at the same place in the bundle.
    pub entry_points: Vec<String>,
    /// `true`: ES modules (`.mjs`); else CommonJS.
    pub esm: bool,
    pub minify: bool,
    pub sourcemap: bool,
    /// esbuild's `--target` (`es2020`, `node20`).
    pub target: String,
    /// Packages left out of the bundle (found at run time).
    pub external: Vec<String>,
}

/// At most five layers per function, as on AWS.
pub const MAX_LAYERS: usize = 5;

/// `name`, or `name:qualifier` (a version number, an alias, `$LATEST`):
/// the function's name and the qualifier.
pub fn split_qualifier(target: &str) -> (&str, Option<&str>) {
    match target.split_once(':') {
        Some((name, q)) => (name, Some(q)),
        None => (target, None),
    }
}

/// Whether `q` is a qualifier Lambda accepts: `$LATEST`, a version number,
/// or an alias name (letters, digits, `-`, `_`, not all digits).
pub fn valid_qualifier(q: &str) -> bool {
    q == "$LATEST"
        || (!q.is_empty()
            && q.len() <= 128
            && q.chars().all(|c| c.is_ascii_digit())
            && !q.starts_with('0'))
        || (!q.is_empty()
            && q.len() <= 128
            && q.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            && q.starts_with(|c: char| c.is_ascii_alphabetic()))
}

pub const DEFAULT_TIMEOUT_SECS: u64 = 3;
pub const DEFAULT_MEMORY_MB: u32 = 128;
/// Lambda's default account concurrency: the limit of a function with no
/// reserved concurrency.
pub const ACCOUNT_CONCURRENCY: u32 = 1000;
/// Local environments of a function that names neither `concurrency` nor
/// `environments`.
pub const DEFAULT_ENVIRONMENTS: u32 = 10;
pub const DEFAULT_IDLE_TIMEOUT_SECS: u64 = 300;

/// A Lambda runtime identifier as AWS spells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Language {
    /// `provided` or `provided.al2023`: runs `./bootstrap`.
    Provided(String),
    /// `python3` or `python3.x`.
    Python(String),
    /// `nodejs` or `nodejsNN.x`.
    Node(String),
}

impl Language {
    pub fn id(&self) -> &str {
        match self {
            Language::Provided(s) | Language::Python(s) | Language::Node(s) => s,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiKind {
    /// HTTP API, payload format 2.0.
    Http,
    /// REST API, payload format 1.0.
    Rest,
    WebSocket,
}

impl fmt::Display for ApiKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ApiKind::Http => "http",
            ApiKind::Rest => "rest",
            ApiKind::WebSocket => "websocket",
        })
    }
}

#[derive(Debug, Clone)]
pub struct Api {
    pub name: String,
    /// The API's id (`[apis.NAME] id`, else `api_id(name)`): its own host
    /// `{id}.execute-api.localhost` serves its stages at `/{stage}` (and
    /// `$default` at `/`), whatever other API shares the listener's paths.
    pub id: String,
    /// Served only at its own host, not at the listener's paths
    /// (`[apis.NAME] host_only`): two APIs may then share a path, as two
    /// APIs of one AWS account do.
    pub host_only: bool,
    pub kind: ApiKind,
    /// Normalized: starts with `/`, no trailing `/` unless it is exactly `/`.
    pub base_path: String,
    pub stages: Vec<Stage>,
    pub routes: Vec<Route>,
    /// WebSocket APIs only: the parsed route selection expression.
    pub route_selection: Option<SelectionExpr>,
    /// REST APIs: content types treated as binary (`binaryMediaTypes`):
    /// such request bodies reach functions base64-encoded, and base64
    /// answers are decoded only when one of them matches.
    pub binary_media_types: Vec<String>,
    /// WebSocket APIs: a connection with no message for this long is closed.
    pub idle_timeout: Duration,
    /// WebSocket APIs: a connection is closed after this long in any case.
    pub max_lifetime: Duration,
    /// HTTP and REST APIs: CORS answered by the gateway.
    pub cors: Option<Cors>,
    /// REST and WebSocket APIs: where API keys are read from.
    pub api_key_source: ApiKeySource,
    /// The API's authorizers, by name (routes hold theirs too).
    pub authorizers: BTreeMap<String, Arc<Authorizer>>,
    /// A function's URL (`[functions.NAME.url]`), served as this API:
    /// its `$default` route calls the function.
    pub function_url: Option<FunctionUrl>,
    /// REST APIs: the gateway's own answers, by response type
    /// (`UNAUTHORIZED`, `DEFAULT_4XX`, ...), as customized.
    pub gateway_responses: BTreeMap<String, GatewayResponse>,
    /// REST APIs: the resource policy (`execute-api:Invoke` statements).
    pub policy: Option<Arc<ResourcePolicy>>,
}

/// A REST API's resource policy: its `execute-api:Invoke` statements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourcePolicy {
    pub statements: Vec<PolicyStatement>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyStatement {
    pub allow: bool,
    /// ARN patterns (`*`, `?`); `execute-api:/STAGE/METHOD/PATH` is this
    /// API's.
    pub resources: Vec<String>,
    /// `NotResource`: the statement applies to what these do not match.
    pub not_resources: Vec<String>,
    /// `IpAddress` (true) or `NotIpAddress` (false) on `aws:SourceIp`.
    pub source_ip: Option<(bool, Vec<ipnet::IpNet>)>,
}

/// The response types of API Gateway's gateway responses.
pub const GATEWAY_RESPONSE_TYPES: &[&str] = &[
    "ACCESS_DENIED",
    "API_CONFIGURATION_ERROR",
    "AUTHORIZER_CONFIGURATION_ERROR",
    "AUTHORIZER_FAILURE",
    "BAD_REQUEST_BODY",
    "BAD_REQUEST_PARAMETERS",
    "DEFAULT_4XX",
    "DEFAULT_5XX",
    "EXPIRED_TOKEN",
    "INTEGRATION_FAILURE",
    "INTEGRATION_TIMEOUT",
    "INVALID_API_KEY",
    "INVALID_SIGNATURE",
    "MISSING_AUTHENTICATION_TOKEN",
    "QUOTA_EXCEEDED",
    "REQUEST_TOO_LARGE",
    "RESOURCE_NOT_FOUND",
    "THROTTLED",
    "UNAUTHORIZED",
    "UNSUPPORTED_MEDIA_TYPE",
    "WAF_FILTERED",
];

/// A customized gateway response.
#[derive(Debug, Clone)]
pub struct GatewayResponse {
    /// The answer's status (else the one the gateway would give).
    pub status: Option<u16>,
    /// Header → `'text'` or `method.request.header|querystring|path.NAME`.
    pub headers: Vec<(String, MappedValue)>,
    /// Content type → template (`$context.error.message`, `messageString`,
    /// `responseType`, `validationErrorString`).
    pub templates: Vec<(String, Arc<stratus_vtl::Template>)>,
}

/// A schedule that invokes a function asynchronously (an EventBridge rule
/// or an EventBridge Scheduler schedule).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// Unique in the project: the rule's or the schedule's name.
    pub name: String,
    /// `NAME` or `NAME:QUALIFIER`.
    pub target: String,
    /// As written (`rate(5 minutes)`).
    pub expression: String,
    pub parsed: crate::ScheduleExpr,
    pub timezone: chrono_tz::Tz,
    /// The event, as JSON text; none: the kind's own event.
    pub input: Option<String>,
    pub enabled: bool,
    pub kind: ScheduleKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScheduleKind {
    /// An EventBridge rule: its event is `{"detail-type": "Scheduled Event", ...}`.
    Rule,
    /// An EventBridge Scheduler schedule: its event is its `input`, or `{}`.
    Scheduler,
}

/// A Lambda function URL: the function (with its qualifier) it calls, and
/// who may call it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionUrl {
    /// `NAME` or `NAME:QUALIFIER`.
    pub target: String,
    pub auth: UrlAuth,
}

/// A function URL's `AuthType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlAuth {
    /// Anyone.
    None,
    /// SigV4-signed requests (service `lambda`), under the admin APIs'
    /// one credentials rule.
    AwsIam,
}

/// Where a function's URL is served at the listener: `/lambda-url/NAME`
/// (its own host, `{url_id}.lambda-url.localhost`, serves it at `/`).
pub fn function_url_mount(function: &str) -> String {
    format!("/lambda-url/{function}")
}

/// A function URL's stable 32-character id, shaped as Lambda's are.
pub fn url_id(function: &str) -> String {
    // Three ids of distinct seeds, to make AWS's 32 characters.
    let mut id = String::with_capacity(32);
    for seed in ["url", "lambda", "stratus", "id"] {
        id.push_str(&api_id(&format!("{seed}:{function}")));
    }
    id.truncate(32);
    id
}

/// A stable ten-character id for an API named `name`, shaped as API
/// Gateway's are (lower-case letters and digits); a template's API gets the
/// id of its logical id, so `Ref` and the served host agree.
pub fn api_id(name: &str) -> String {
    // FNV-1a: stable across runs and builds (std's hasher is not).
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    const DIGITS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..10)
        .map(|i| DIGITS[((h >> (i * 6)) % 36) as usize] as char)
        .collect()
}

/// Where a stage is served under `base_path`: `base_path/{stage}`, or the
/// base path itself for `$default` (an API's own host has the base path `/`).
pub fn stage_mount(base_path: &str, stage: &str) -> String {
    if stage == DEFAULT_STAGE {
        base_path.to_owned()
    } else {
        join_paths(base_path, &format!("/{stage}"))
    }
}

/// `[apis.NAME.cors]`: preflights answered by the gateway, and CORS headers
/// on every answer to an allowed origin (the gateway's own errors too).
/// Header names lowercased; `*` allowed in origins, methods and headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cors {
    pub allow_origins: Vec<String>,
    pub allow_methods: Vec<String>,
    pub allow_headers: Vec<String>,
    pub expose_headers: Vec<String>,
    pub max_age: Option<u32>,
    pub allow_credentials: bool,
}

pub const DEFAULT_WS_IDLE_TIMEOUT_SECS: u64 = 600;
pub const DEFAULT_WS_MAX_LIFETIME_SECS: u64 = 7200;

/// A route selection expression, parsed once at load:
/// `$request.body.a.b`, or a template such as
/// `${request.body.service}/${request.body.action}` (`\$` is a literal `$`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectionExpr {
    pub source: String,
    pub parts: Vec<SelectionPart>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SelectionPart {
    Literal(String),
    /// A dotted path into the JSON body.
    Body(Vec<String>),
}

impl SelectionExpr {
    /// The route key of a static expression (one without a body path).
    pub fn constant(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [SelectionPart::Literal(l)] => Some(l),
            _ => None,
        }
    }

    pub fn parse(source: &str) -> Result<SelectionExpr, String> {
        let path = |p: &str| -> Result<Vec<String>, String> {
            let parts: Vec<String> = p.split('.').map(str::to_owned).collect();
            if parts.iter().any(String::is_empty) {
                return Err(format!("{source:?}: empty segment in body path {p:?}"));
            }
            if p.contains(['$', '{', '}']) {
                return Err(format!(
                    "{source:?}: body path {p:?} holds '$', '{{' or '}}'"
                ));
            }
            Ok(parts)
        };
        if let Some(p) = source.strip_prefix("$request.body.") {
            return Ok(SelectionExpr {
                source: source.to_owned(),
                parts: vec![SelectionPart::Body(path(p)?)],
            });
        }
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = source;
        while !rest.is_empty() {
            if let Some(r) = rest.strip_prefix("\\$") {
                literal.push('$');
                rest = r;
            } else if let Some(r) = rest.strip_prefix("${") {
                let close = r
                    .find('}')
                    .ok_or_else(|| format!("{source:?}: unclosed ${{"))?;
                let inner = &r[..close];
                let body = inner.strip_prefix("request.body.").ok_or_else(|| {
                    format!("{source:?}: ${{{inner}}} is not ${{request.body.<path>}}")
                })?;
                if !literal.is_empty() {
                    parts.push(SelectionPart::Literal(std::mem::take(&mut literal)));
                }
                parts.push(SelectionPart::Body(path(body)?));
                rest = &r[close + 1..];
            } else {
                let ch = rest.chars().next().expect("not empty");
                literal.push(ch);
                rest = &rest[ch.len_utf8()..];
            }
        }
        if !literal.is_empty() {
            parts.push(SelectionPart::Literal(literal));
        }
        // No body path at all is a static expression (AWS accepts
        // `\$default` or a plain `action`): every message selects it.
        if parts.is_empty() {
            return Err(format!("{source:?} is empty"));
        }
        Ok(SelectionExpr {
            source: source.to_owned(),
            parts,
        })
    }
}

/// How `Event` invocations of a function are queued and retried (Lambda's
/// asynchronous invocation configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsyncConfig {
    /// Events older than this are dropped (Lambda: 60 s to 6 h, default 6 h).
    pub max_event_age: Duration,
    /// Retries after a function error (Lambda: 0 to 2, default 2).
    pub max_retries: u32,
    /// Delay before the first retry; the second waits twice as long
    /// (Lambda: about 1 and 2 minutes).
    pub retry_delay: Duration,
    /// Events waiting at most; past it `Event` invocations get 429.
    pub queue: usize,
    /// Destinations (`DestinationConfig`): a function invoked
    /// asynchronously with the invocation record, after a success...
    pub on_success: Option<String>,
    /// ...or once the event is dropped (retries exhausted, too old).
    pub on_failure: Option<String>,
}

impl Default for AsyncConfig {
    fn default() -> AsyncConfig {
        AsyncConfig {
            max_event_age: Duration::from_secs(6 * 3600),
            max_retries: 2,
            retry_delay: Duration::from_secs(60),
            queue: 100_000,
            on_success: None,
            on_failure: None,
        }
    }
}

pub const DEFAULT_STAGE: &str = "$default";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    pub name: String,
    pub variables: BTreeMap<String, String>,
    /// Where the stage is served: base path + `/{stage}` (or the base path
    /// alone for `$default`). Normalized like `Api::base_path`.
    pub mount: String,
    /// The stage's default throttle, for routes without their own.
    pub throttle: Option<Throttle>,
    /// The stage's access log, in its own format (besides Stratus's line).
    pub access_log: Option<Arc<AccessLog>>,
    /// The stage's response cache (REST stages).
    pub cache: Option<StageCache>,
    /// What the stage serves: the working tree, or a deployment.
    pub deployment: DeploymentRef,
    /// A share of the stage's requests served by another deployment.
    pub canary: Option<Canary>,
}

/// `deployment = "latest" | ID` of a stage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DeploymentRef {
    /// The working tree, as it is now (reloads follow it).
    #[default]
    Latest,
    Id(u32),
}

impl fmt::Display for DeploymentRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeploymentRef::Latest => f.write_str("latest"),
            DeploymentRef::Id(n) => write!(f, "{n}"),
        }
    }
}

/// `canary = { deployment = ID, percent = 10, variables = {...} }`: that
/// share of the stage's requests, chosen per request, is served by the
/// canary deployment, with these stage variables over the stage's.
#[derive(Debug, Clone, PartialEq)]
pub struct Canary {
    pub deployment: u32,
    /// 0.0 to 100.0.
    pub percent: f64,
    pub variables: BTreeMap<String, String>,
}

impl Eq for Canary {}

/// A REST stage's response cache, as API Gateway's stage cache: GET
/// answers kept for `ttl`, keyed by the route and the chosen parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageCache {
    /// Default 300 s, at most 3600; 0 turns caching off (routes may turn
    /// it on with their own ttl).
    pub ttl: Duration,
    /// Request parameters in the key, besides the route.
    pub keys: Vec<CacheKey>,
    /// `Cache-Control: max-age=0` from a client refreshes the entry
    /// (otherwise it is ignored).
    pub client_refresh: bool,
    /// Most bytes the stage's cache holds.
    pub max_bytes: u64,
}

pub const DEFAULT_CACHE_TTL_SECS: u64 = 300;
pub const MAX_CACHE_TTL_SECS: i64 = 3600;

/// A request parameter in a cache key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheKey {
    Query(String),
    /// Lower-cased.
    Header(String),
    Path(String),
}

/// A route's override of its stage's cache: on or off (GET routes are on
/// by default, others off), its own ttl and keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteCache {
    pub enabled: Option<bool>,
    pub ttl: Option<Duration>,
    pub keys: Option<Vec<CacheKey>>,
}

/// `access_log = { format = "...", file = "..." }`: one line per request
/// (WebSocket: per connect and message) with `$context` variables
/// substituted, as API Gateway's access logging writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessLog {
    pub format: Vec<AccessPart>,
    /// Absolute path; `None`: standard error.
    pub file: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessPart {
    Literal(String),
    /// A `$context` variable, by its name after `$context.`.
    Var(&'static str),
}

/// The `$context` variables an access log format may use.
pub const ACCESS_LOG_VARIABLES: &[&str] = &[
    "apiId",
    "authorizer.principalId",
    "connectionId",
    "domainName",
    "error.message",
    "error.responseType",
    "error.validationErrorString",
    "eventType",
    "extendedRequestId",
    "httpMethod",
    "identity.apiKey",
    "identity.sourceIp",
    "identity.userAgent",
    "integrationErrorMessage",
    "integrationLatency",
    "integrationStatus",
    "messageId",
    "path",
    "protocol",
    "requestId",
    "requestTime",
    "requestTimeEpoch",
    "resourcePath",
    "responseLatency",
    "responseLength",
    "routeKey",
    "stage",
    "status",
];

impl AccessLog {
    /// One line: each variable's value, or `-` when it has none.
    pub fn render<'v>(&self, value: impl Fn(&str) -> Option<std::borrow::Cow<'v, str>>) -> String {
        let mut out = String::with_capacity(256);
        for p in &self.format {
            match p {
                AccessPart::Literal(l) => out.push_str(l),
                AccessPart::Var(v) => match value(v) {
                    Some(x) => out.push_str(&x),
                    None => out.push('-'),
                },
            }
        }
        out
    }

    /// Splits a format into literals and variables; an unknown variable is
    /// an error naming it and its byte offset in the format.
    pub fn parse_format(format: &str) -> Result<Vec<AccessPart>, (usize, String)> {
        const PREFIX: &str = "$context.";
        let mut parts = Vec::new();
        let mut rest = format;
        let mut offset = 0;
        while let Some(at) = rest.find(PREFIX) {
            if at > 0 {
                parts.push(AccessPart::Literal(rest[..at].to_owned()));
            }
            let after = &rest[at + PREFIX.len()..];
            let len = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '_'))
                .unwrap_or(after.len());
            let name = after[..len].trim_end_matches('.');
            match ACCESS_LOG_VARIABLES.iter().find(|v| **v == name) {
                Some(v) => parts.push(AccessPart::Var(v)),
                None => {
                    let hint = ACCESS_LOG_VARIABLES
                        .iter()
                        .min_by_key(|v| strsim::levenshtein(v, name))
                        .filter(|v| strsim::levenshtein(v, name) <= 3)
                        .map(|v| format!("; did you mean $context.{v}?"))
                        .unwrap_or_default();
                    return Err((
                        offset + at,
                        format!("unknown variable $context.{name} in the access log format{hint}"),
                    ));
                }
            }
            let used = at + PREFIX.len() + name.len();
            offset += used;
            rest = &rest[used..];
        }
        if !rest.is_empty() {
            parts.push(AccessPart::Literal(rest.to_owned()));
        }
        Ok(parts)
    }
}

#[derive(Debug, Clone)]
pub struct Route {
    pub key: RouteKey,
    pub integration: Integration,
    /// Integration timeout.
    pub timeout: Duration,
    /// WebSocket two-way response.
    pub respond: bool,
    /// The event format a function integration receives.
    pub payload: PayloadFormat,
    /// The route's own throttle, in place of the stage's default.
    pub throttle: Option<Throttle>,
    /// Who may call it (REST and HTTP routes, WebSocket `$connect`).
    pub authorizer: Option<Arc<Authorizer>>,
    /// JWT authorizers: scopes of which the token must hold one.
    pub scopes: Vec<String>,
    /// A valid API key of a usage plan on this stage is required
    /// (REST routes, WebSocket `$connect`).
    pub api_key_required: bool,
    /// The route's override of the stage cache.
    pub cache: RouteCache,
    /// The function's answer is streamed to the client as it is written
    /// (a REST integration's `ResponseTransferMode: STREAM`, a function
    /// URL's `InvokeMode: RESPONSE_STREAM`).
    pub stream: bool,
    /// A REST integration that is not a proxy: its mapping templates and
    /// integration responses (non-proxy `function`/`http` routes, `mock`s
    /// with templates).
    pub mapping: Option<Arc<Mapping>>,
    /// REST request validation (a request validator with its models and
    /// required parameters).
    pub validation: Option<Arc<Validation>>,
    /// `authorizer = "AWS_IAM"`: callers sign with SigV4 (service
    /// `execute-api`).
    pub iam: bool,
    /// An `http` route's `requestParameters`: what the upstream request
    /// gets, and from where.
    pub request_parameters: Vec<(MappedTarget, MappedValue)>,
}

/// Where a request parameter mapping writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MappedTarget {
    /// `integration.request.header.NAME`.
    Header(String),
    /// `integration.request.querystring.NAME`.
    Query(String),
}

/// What a REST route checks before its integration runs, as a request
/// validator does.
#[derive(Debug, Clone)]
pub struct Validation {
    /// `ValidateRequestBody`: content type → model.
    pub body: Vec<(String, Arc<Model>)>,
    /// `ValidateRequestParameters`: required parameters, in order.
    pub parameters: Vec<RequiredParameter>,
}

/// A JSON Schema model of an API.
pub struct Model {
    pub name: String,
    pub schema: jsonschema::Validator,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model").field("name", &self.name).finish()
    }
}

/// `method.request.querystring.NAME` (or `header`, `path`) required.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequiredParameter {
    pub location: ParameterLocation,
    pub name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParameterLocation {
    Query,
    Header,
    Path,
}

/// How a REST integration's request and answer are mapped (API Gateway's
/// `requestTemplates`, `passthroughBehavior` and integration responses).
#[derive(Debug, Clone)]
pub struct Mapping {
    /// Content type → template, in the order given.
    pub request_templates: Vec<(String, Arc<stratus_vtl::Template>)>,
    pub passthrough: Passthrough,
    /// Tried in order: the first whose `pattern` matches; then the one
    /// without a pattern (the default).
    pub responses: Vec<IntegrationResponse>,
    /// `contentHandling` of the integration request.
    pub content_handling: Option<ContentHandling>,
}

/// `contentHandling`: a body turned into base64 text, or back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentHandling {
    /// `CONVERT_TO_TEXT`: a binary body becomes its base64 text.
    ToText,
    /// `CONVERT_TO_BINARY`: a base64 text body becomes its bytes.
    ToBinary,
}

/// `passthroughBehavior`: what a request whose content type has no
/// template does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Passthrough {
    /// Passed through as it is (the default).
    WhenNoMatch,
    /// Passed through only when the route has no templates at all; else 415.
    WhenNoTemplates,
    /// 415.
    Never,
}

/// One integration response.
#[derive(Debug, Clone)]
pub struct IntegrationResponse {
    /// `selectionPattern`, matched against the whole Lambda
    /// `errorMessage`, or the HTTP / mock status code; `None`: the default.
    pub pattern: Option<regex::Regex>,
    pub status: u16,
    /// Content type → template.
    pub templates: Vec<(String, Arc<stratus_vtl::Template>)>,
    /// `responseParameters`: header → where its value comes from.
    pub headers: Vec<(String, MappedValue)>,
    /// `contentHandling` of the answer.
    pub content_handling: Option<ContentHandling>,
}

/// A mapped header's value (`responseParameters`, `requestParameters`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MappedValue {
    /// `'text'`.
    Static(String),
    /// `integration.response.header.NAME` / `method.request.header.NAME`.
    Header(String),
    /// `method.request.querystring.NAME`.
    Query(String),
    /// `method.request.path.NAME`.
    Path(String),
    /// `integration.response.body`.
    Body,
    /// `integration.response.body.FIELD...`: a JSONPath into the body.
    BodyPath(String),
}

/// Lambda proxy event formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadFormat {
    /// REST APIs' format (and HTTP APIs' when asked for).
    V1,
    /// HTTP APIs' format.
    V2,
}

/// REST APIs time integrations out after 29 s, HTTP APIs after 30 s.
pub const REST_INTEGRATION_TIMEOUT_MS: u64 = 29_000;
pub const HTTP_INTEGRATION_TIMEOUT_MS: u64 = 30_000;
pub const MIN_INTEGRATION_TIMEOUT_MS: u64 = 50;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Integration {
    Function { name: String },
    Http { url: UrlTemplate },
    Mock(Mock),
}

impl fmt::Display for Integration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Integration::Function { name } => write!(f, "function {name}"),
            Integration::Http { url } => write!(f, "http {url}"),
            Integration::Mock(m) => write!(f, "mock {}", m.status),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mock {
    pub status: u16,
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

/// `"METHOD /path"`, `$default`, or a WebSocket route key.
/// An `http` integration's URL, parsed once at load: literal text,
/// `{param}` (a path parameter) and `${stageVariables.x}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlTemplate {
    pub source: String,
    pub parts: Vec<UrlPart>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlPart {
    Literal(String),
    Param(String),
    StageVariable(String),
}

impl UrlTemplate {
    pub fn parse(source: &str) -> Result<UrlTemplate, String> {
        let mut parts = Vec::new();
        let mut rest = source;
        while let Some(open) = rest.find('{') {
            let close = rest[open..]
                .find('}')
                .map(|c| open + c)
                .ok_or("unclosed '{' in http integration URL")?;
            let name = &rest[open + 1..close];
            let stage_var = open > 0 && rest.as_bytes()[open - 1] == b'$';
            let literal_end = if stage_var { open - 1 } else { open };
            if literal_end > 0 {
                parts.push(UrlPart::Literal(rest[..literal_end].to_owned()));
            }
            if stage_var {
                let var = name
                    .strip_prefix("stageVariables.")
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| {
                        format!("unknown variable ${{{name}}}: expected ${{stageVariables.NAME}}")
                    })?;
                parts.push(UrlPart::StageVariable(var.to_owned()));
            } else {
                parts.push(UrlPart::Param(name.to_owned()));
            }
            rest = &rest[close + 1..];
        }
        if !rest.is_empty() {
            parts.push(UrlPart::Literal(rest.to_owned()));
        }
        Ok(UrlTemplate {
            source: source.to_owned(),
            parts,
        })
    }

    /// The path parameters it names.
    pub fn params(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            UrlPart::Param(n) => Some(n.as_str()),
            _ => None,
        })
    }
}

impl fmt::Display for UrlTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteKey {
    Http {
        method: Method,
        path: PathPattern,
    },
    /// The catch-all `$default` route.
    Default,
    /// A WebSocket route: `$connect`, `$disconnect` or a custom key.
    WebSocket(String),
}

impl fmt::Display for RouteKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteKey::Http { method, path } => write!(f, "{method} {path}"),
            RouteKey::Default => f.write_str("$default"),
            RouteKey::WebSocket(k) => f.write_str(k),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Method {
    Get,
    Post,
    Put,
    Delete,
    Patch,
    Head,
    Options,
    Any,
}

impl Method {
    pub const ALL: [Method; 8] = [
        Method::Get,
        Method::Post,
        Method::Put,
        Method::Delete,
        Method::Patch,
        Method::Head,
        Method::Options,
        Method::Any,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Patch => "PATCH",
            Method::Head => "HEAD",
            Method::Options => "OPTIONS",
            Method::Any => "ANY",
        }
    }

    pub fn parse(s: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A route path such as `/items/{id}` or `/files/{proxy+}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPattern {
    pub segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Static(String),
    /// `{name}`: exactly one segment.
    Param(String),
    /// `{name+}`: one or more segments; always last.
    Greedy(String),
}

impl PathPattern {
    /// Parses a route path; the error says what is wrong in words.
    pub fn parse(path: &str) -> Result<PathPattern, String> {
        let Some(rest) = path.strip_prefix('/') else {
            return Err(format!("path {path:?} must start with '/'"));
        };
        if path.contains(['?', '#']) {
            return Err(format!(
                "path {path:?} has a query string: a route matches the path alone (the query string reaches the integration whatever it is)"
            ));
        }
        let mut segments = Vec::new();
        if rest.is_empty() {
            return Ok(PathPattern { segments });
        }
        let parts: Vec<&str> = rest.split('/').collect();
        for (i, part) in parts.iter().enumerate() {
            if part.is_empty() {
                return Err(format!("path {path:?} has an empty segment"));
            }
            if let Some(inner) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                let (name, greedy) = match inner.strip_suffix('+') {
                    Some(n) => (n, true),
                    None => (inner, false),
                };
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(format!("path parameter {part:?} must be {{name}} or {{name+}} with a name of letters, digits and '_'"));
                }
                if segments
                    .iter()
                    .any(|s| matches!(s, Segment::Param(n) | Segment::Greedy(n) if n == name))
                {
                    return Err(format!(
                        "path parameter {{{name}}} appears twice: each parameter needs its own name"
                    ));
                }
                if greedy {
                    if i != parts.len() - 1 {
                        return Err(format!(
                            "greedy parameter {part:?} must be the last segment"
                        ));
                    }
                    segments.push(Segment::Greedy(name.to_owned()));
                } else {
                    segments.push(Segment::Param(name.to_owned()));
                }
            } else if part.contains(['{', '}']) {
                return Err(format!(
                    "segment {part:?} mixes a parameter with text; a parameter must be a whole segment"
                ));
            } else {
                segments.push(Segment::Static((*part).to_owned()));
            }
        }
        Ok(PathPattern { segments })
    }

    /// The names of the path parameters, in order.
    pub fn params(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Param(n) | Segment::Greedy(n) => Some(n.as_str()),
            Segment::Static(_) => None,
        })
    }
}

impl fmt::Display for PathPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.segments.is_empty() {
            return f.write_str("/");
        }
        for s in &self.segments {
            match s {
                Segment::Static(t) => write!(f, "/{t}")?,
                Segment::Param(n) => write!(f, "/{{{n}}}")?,
                Segment::Greedy(n) => write!(f, "/{{{n}+}}")?,
            }
        }
        Ok(())
    }
}

/// Joins two normalized paths: `/` + `/x` = `/x`, `/a` + `/x` = `/a/x`.
pub fn join_paths(a: &str, b: &str) -> String {
    match (a, b) {
        ("/", b) => b.to_owned(),
        (a, "/") => a.to_owned(),
        (a, b) => format!("{a}{b}"),
    }
}
