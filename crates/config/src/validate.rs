//! Step 2 of 3: check the raw file and resolve it into an `App`.
//!
//! Collects every mistake instead of stopping at the first, so one run of
//! `stratus validate` shows them all. The only I/O allowed here is checking
//! that function code directories exist; nothing reads the environment.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use toml::Spanned;

use crate::diag::{key_path, Diagnostic, Source};
use crate::model::*;
use crate::raw::*;

struct Checker<'a> {
    src: Source<'a>,
    errors: Vec<Diagnostic>,
}

impl Checker<'_> {
    fn err<T>(&mut self, at: &Spanned<T>, key: &[&str], message: impl Into<String>) {
        self.err_at(at.span(), key, message);
    }

    fn err_at(&mut self, span: std::ops::Range<usize>, key: &[&str], message: impl Into<String>) {
        let d = self.src.at(Some(span), key_path(key), message);
        self.errors.push(d);
    }

    /// An integer within `range`, or the default when absent.
    fn ranged(
        &mut self,
        v: &Option<Spanned<i64>>,
        key: &[&str],
        range: std::ops::RangeInclusive<i64>,
        unit: &str,
        default: i64,
    ) -> i64 {
        match v {
            None => default,
            Some(s) if range.contains(s.get_ref()) => *s.get_ref(),
            Some(s) => {
                let msg = format!(
                    "{} is out of range: must be {}..={} {unit}",
                    s.get_ref(),
                    range.start(),
                    range.end()
                );
                self.err(s, key, msg);
                default
            }
        }
    }
}

pub(crate) fn resolve(
    raw: RawConfig,
    path: &Path,
    text: &str,
    project_dir: &Path,
) -> Result<App, Vec<Diagnostic>> {
    let mut c = Checker {
        src: Source { path, text },
        errors: Vec::new(),
    };

    let server = server(&mut c, &raw.server, project_dir);

    let mut functions = BTreeMap::new();
    for (name, f) in &raw.functions {
        if let Some(func) = function(&mut c, name, f, project_dir) {
            functions.insert(name.clone(), Arc::new(func));
        }
    }

    // Asynchronous destinations name functions of the project.
    for (name, f) in &raw.functions {
        let Some(a) = &f.get_ref().asynchronous else {
            continue;
        };
        for (key, dest) in [
            ("on_success", &a.get_ref().on_success),
            ("on_failure", &a.get_ref().on_failure),
        ] {
            if let Some(d) = dest {
                let (base, _) = split_qualifier(d.get_ref());
                if !raw.functions.contains_key(base) {
                    c.err(
                        d,
                        &["functions", name, "async", key],
                        c_unknown_function(base),
                    );
                }
            }
        }
    }
    let schedules = schedules(&mut c, &raw.functions, &functions);
    let mut apis = Vec::new();
    for (name, a) in &raw.apis {
        apis.push(Arc::new(api(&mut c, name, a, &raw.functions, project_dir)));
    }
    check_mounts(&mut c, &raw, &apis);
    // Function URLs, each an HTTP API of its own.
    for (name, f) in &raw.functions {
        if let (Some(url), Some(func)) = (&f.get_ref().url, functions.get(name)) {
            apis.push(Arc::new(function_url_api(&mut c, name, url, func)));
        }
    }
    let api_keys = api_keys(&mut c, &raw.api_keys);
    let usage_plans = usage_plans(&mut c, &raw, &apis);
    let pricing = pricing(&mut c, raw.pricing.as_ref());
    let (buckets, sites) = buckets_and_sites(&mut c, &raw, &apis, project_dir);
    let databases = databases(&mut c, &raw, project_dir);
    let cluster = raw.cluster.as_ref().map(|raw| {
        let r = raw.get_ref();
        if let Some(redis) = &r.redis {
            let v = redis.get_ref();
            if !(v.starts_with("redis://") || v.starts_with("rediss://") || v.starts_with("${")) {
                c.err(redis, &["cluster", "redis"], "a Redis url starts with redis:// (or is ${VAR})");
            }
        }
        for (key, v) in [("postgres", &r.postgres), ("objects", &r.objects)] {
            if let Some(v) = v {
                c.err(
                    v,
                    &["cluster", key],
                    format!("cluster.{key} is not served yet: a fleet shares its throttles on Redis today (cluster.redis); keys, queues, deployments and objects stay per node"),
                );
            }
        }
        Cluster {
            node: r.node.as_ref().map(|n| n.get_ref().clone()),
            redis: r.redis.as_ref().map(|n| n.get_ref().clone()),
        }
    });

    if c.errors.is_empty() {
        Ok(App {
            file: path.to_path_buf(),
            text: Arc::from(text),
            project_dir: project_dir.to_path_buf(),
            server,
            functions,
            apis,
            api_keys,
            usage_plans,
            schedules,
            pricing,
            buckets,
            sites,
            databases,
            cluster,
        })
    } else {
        let mut errors = c.errors;
        // File order; place-less mistakes last.
        errors.sort_by_key(|d| (d.line == 0, d.line, d.column));
        Err(errors)
    }
}

fn server(c: &mut Checker<'_>, raw: &RawServer, project_dir: &Path) -> Server {
    let mut addr = |v: &Option<Spanned<String>>, key: &str, default: &str| -> SocketAddr {
        let fallback = default.parse().expect("default address parses");
        match v {
            None => fallback,
            Some(s) => match s.get_ref().parse::<SocketAddr>() {
                Ok(a) => a,
                Err(_) => {
                    c.err(
                        s,
                        &["server", key],
                        format!(
                            "{:?} is not a socket address (expected IP:PORT, e.g. \"127.0.0.1:8080\")",
                            s.get_ref()
                        ),
                    );
                    fallback
                }
            },
        }
    };
    let listen = addr(&raw.listen, "listen", DEFAULT_LISTEN);
    let admin_listen = addr(&raw.admin_listen, "admin_listen", DEFAULT_ADMIN_LISTEN);
    if listen == admin_listen && listen.port() != 0 {
        let msg = format!("{admin_listen} is also server.listen: the gateway and the admin listener need different addresses");
        match &raw.admin_listen {
            Some(s) => c.err(s, &["server", "admin_listen"], msg),
            None => match &raw.listen {
                Some(s) => c.err(s, &["server", "listen"], msg),
                None => unreachable!("the defaults differ"),
            },
        }
    }
    let grace = c.ranged(
        &raw.shutdown_grace,
        &["server", "shutdown_grace"],
        0..=3600,
        "seconds",
        DEFAULT_SHUTDOWN_GRACE_SECS as i64,
    );
    let data_dir = project_dir.join(
        raw.data_dir
            .as_ref()
            .map_or(DEFAULT_DATA_DIR, |d| d.get_ref().as_str()),
    );
    let region = match &raw.region {
        None => DEFAULT_REGION.to_owned(),
        Some(r) => {
            let ok = !r.get_ref().is_empty()
                && r.get_ref()
                    .chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-');
            if !ok {
                c.err(
                    r,
                    &["server", "region"],
                    "a region looks like \"us-east-1\"",
                );
            }
            r.get_ref().clone()
        }
    };
    let credentials = match &raw.credentials {
        None => Credentials {
            access_key_id: DEFAULT_ACCESS_KEY_ID.to_owned(),
            secret_access_key: DEFAULT_SECRET_ACCESS_KEY.to_owned(),
        },
        Some(cred) => {
            let cr = cred.get_ref();
            for (v, key) in [
                (&cr.access_key_id, "access_key_id"),
                (&cr.secret_access_key, "secret_access_key"),
            ] {
                if v.get_ref().is_empty() || v.get_ref().chars().any(char::is_whitespace) {
                    c.err(
                        v,
                        &["server", "credentials", key],
                        "must be non-empty, without spaces",
                    );
                }
            }
            Credentials {
                access_key_id: cr.access_key_id.get_ref().clone(),
                secret_access_key: cr.secret_access_key.get_ref().clone(),
            }
        }
    };
    if raw.credentials.is_none() && !admin_listen.ip().is_loopback() {
        if let Some(s) = &raw.admin_listen {
            c.err(
                s,
                &["server", "admin_listen"],
                format!(
                    "{admin_listen} is reachable from other machines, and without [server.credentials] the admin APIs accept any credentials: set [server.credentials] (every admin API then checks SigV4 signatures) or listen on 127.0.0.1"
                ),
            );
        }
    }
    let header_timeout = c.ranged(
        &raw.header_timeout,
        &["server", "header_timeout"],
        1..=3600,
        "seconds",
        DEFAULT_HEADER_TIMEOUT_SECS as i64,
    );
    let max_connections = c.ranged(
        &raw.max_connections,
        &["server", "max_connections"],
        1..=1_000_000,
        "connections",
        DEFAULT_MAX_CONNECTIONS as i64,
    );
    // hyper's smallest read buffer is 8 KiB.
    let max_header_bytes = c.ranged(
        &raw.max_header_bytes,
        &["server", "max_header_bytes"],
        8192..=1_048_576,
        "bytes",
        DEFAULT_MAX_HEADER_BYTES as i64,
    );
    Server {
        listen,
        admin_listen,
        shutdown_grace: Duration::from_secs(grace as u64),
        data_dir,
        region,
        verify_signatures: raw.credentials.is_some(),
        credentials,
        header_timeout: Duration::from_secs(header_timeout as u64),
        max_connections: max_connections as usize,
        max_header_bytes: max_header_bytes as usize,
        throttle: throttle(c, &raw.throttle, &["server", "throttle"]),
        function_log_bytes: c.ranged(
            &raw.function_log_kb,
            &["server", "function_log_kb"],
            16..=1_048_576,
            "KB",
            DEFAULT_FUNCTION_LOG_KB as i64,
        ) as usize
            * 1024,
        admin_allow_origins: raw
            .admin_allow_origins
            .iter()
            .map(|o| {
                if !is_origin(o.get_ref()) {
                    c.err(
                        o,
                        &["server", "admin_allow_origins"],
                        format!(
                            "{:?} is not an origin: scheme://host[:port], without a path (\"*\" is not allowed: any page could then drive the admin APIs)",
                            o.get_ref()
                        ),
                    );
                }
                o.get_ref().trim_end_matches('/').to_owned()
            })
            .collect(),
        dashboard_streams: c.ranged(
            &raw.dashboard_streams,
            &["server", "dashboard_streams"],
            1..=10_000,
            "streams",
            DEFAULT_DASHBOARD_STREAMS as i64,
        ) as usize,
        tls: raw.tls.as_ref().is_none_or(|t| *t.get_ref()),
    }
}

/// `scheme://host[:port]`, as a browser sends it in `Origin`.
fn is_origin(v: &str) -> bool {
    v.strip_prefix("http://")
        .or_else(|| v.strip_prefix("https://"))
        .is_some_and(|h| !h.is_empty() && !h.contains('/'))
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-')
}

fn parse_runtime(s: &str) -> Option<Language> {
    let digits = |d: &str| !d.is_empty() && d.chars().all(|c| c.is_ascii_digit());
    match s {
        "provided" | "provided.al2" | "provided.al2023" => Some(Language::Provided(s.to_owned())),
        "python3" | "nodejs" => Some(if s == "python3" {
            Language::Python(s.to_owned())
        } else {
            Language::Node(s.to_owned())
        }),
        _ => {
            if let Some(minor) = s.strip_prefix("python3.") {
                digits(minor).then(|| Language::Python(s.to_owned()))
            } else if let Some(major) = s.strip_prefix("nodejs").and_then(|r| r.strip_suffix(".x"))
            {
                digits(major).then(|| Language::Node(s.to_owned()))
            } else {
                None
            }
        }
    }
}

/// Variables Lambda sets itself; a function may not override them.
const RESERVED_ENV: &[&str] = &[
    "STRATUS_ENVIRONMENT_ID",
    "_HANDLER",
    "_X_AMZN_TRACE_ID",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_LAMBDA_RUNTIME_API",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
];

const ENV_TOTAL_LIMIT: usize = 4096;

fn function(
    c: &mut Checker<'_>,
    name: &str,
    raw: &Spanned<RawFunction>,
    project_dir: &Path,
) -> Option<Function> {
    let key = |field: &'static str| ["functions", name, field];
    let f = raw.get_ref();
    if !is_name(name) {
        c.err(
            raw,
            &["functions", name],
            "a function name is 1 to 64 letters, digits, '-' or '_'",
        );
    }
    let runtime = parse_runtime(f.runtime.get_ref());
    if runtime.is_none() {
        let msg = format!(
            "unknown runtime {:?}: expected provided, provided.al2023, python3[.x] or nodejs[NN.x]",
            f.runtime.get_ref()
        );
        c.err(&f.runtime, &key("runtime"), msg);
    }
    let handler = match (&runtime, &f.handler) {
        (Some(Language::Provided(_)), h) => h
            .as_ref()
            .map_or_else(|| "bootstrap".to_owned(), |h| h.get_ref().clone()),
        (_, Some(h)) => {
            let ok = h
                .get_ref()
                .rsplit_once('.')
                .is_some_and(|(m, f)| !m.is_empty() && !f.is_empty());
            if !ok {
                let msg = format!(
                    "handler {:?} must be module.function, e.g. \"app.handler\"",
                    h.get_ref()
                );
                c.err(h, &key("handler"), msg);
            }
            h.get_ref().clone()
        }
        (Some(_), None) => {
            c.err(
                raw,
                &key("handler"),
                "missing: python and node functions need a handler such as \"app.handler\"",
            );
            String::new()
        }
        (None, None) => String::new(),
    };
    let code = project_dir.join(f.code.get_ref());
    if !code.is_dir() {
        let msg = format!("code directory {:?} does not exist", f.code.get_ref());
        c.err(&f.code, &key("code"), msg);
    } else if matches!(runtime, Some(Language::Provided(_)))
        && !code.join(&handler).is_file()
        && !code.join("Cargo.toml").is_file()
    {
        // What the first call would fail on: nothing to run, nothing to build.
        let msg = format!(
            "a provided function runs ./{handler} from its code directory, or builds one from a Cargo.toml there; {:?} has neither",
            f.code.get_ref()
        );
        c.err(&f.code, &key("code"), msg);
    }
    let timeout = c.ranged(
        &f.timeout,
        &key("timeout"),
        1..=900,
        "seconds",
        DEFAULT_TIMEOUT_SECS as i64,
    );
    let memory = c.ranged(
        &f.memory,
        &key("memory"),
        128..=10240,
        "MB",
        DEFAULT_MEMORY_MB as i64,
    );
    let concurrency = c.ranged(
        &f.concurrency,
        &key("concurrency"),
        1..=i64::from(ACCOUNT_CONCURRENCY),
        "calls (reserved concurrency)",
        i64::from(ACCOUNT_CONCURRENCY),
    );
    // Unset: one environment per reserved call, as on AWS, when a
    // concurrency is reserved; a few that calls queue for otherwise.
    let default_environments = if f.concurrency.is_some() {
        concurrency
    } else {
        i64::from(DEFAULT_ENVIRONMENTS)
    };
    let environments = c.ranged(
        &f.environments,
        &key("environments"),
        1..=concurrency,
        "environments (at most concurrency)",
        default_environments,
    );
    let warm = c.ranged(
        &f.warm,
        &key("warm"),
        0..=environments,
        "environments (at most environments)",
        0,
    );
    let idle_timeout = c.ranged(
        &f.idle_timeout,
        &key("idle_timeout"),
        1..=86_400,
        "seconds",
        DEFAULT_IDLE_TIMEOUT_SECS as i64,
    );
    let asynchronous = async_config(c, name, f.asynchronous.as_ref());
    let mut environment = BTreeMap::new();
    let mut total = 0;
    for (var, value) in &f.environment {
        let well_formed = var.len() >= 2
            && var.starts_with(|ch: char| ch.is_ascii_alphabetic())
            && var
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '_');
        let env_key = ["functions", name, "environment", var.as_str()];
        if !well_formed {
            let msg = format!(
                "variable name {var:?} must match [A-Za-z][A-Za-z0-9_]+ (as in AWS Lambda)"
            );
            c.err(value, &env_key, msg);
        } else if RESERVED_ENV.contains(&var.as_str()) {
            c.err(
                value,
                &env_key,
                format!("{var} is reserved: Stratus sets it for every function"),
            );
        }
        total += var.len() + value.get_ref().len();
        environment.insert(var.clone(), value.get_ref().clone());
    }
    if total > ENV_TOTAL_LIMIT {
        c.err(
            raw,
            &["functions", name, "environment"],
            format!("variables take {total} bytes; the limit is {ENV_TOTAL_LIMIT} (4 KB)"),
        );
    }
    let mut layers = Vec::new();
    for l in &f.layers {
        let dir = project_dir.join(l.get_ref());
        if !dir.is_dir() {
            let msg = format!("layer folder {:?} does not exist", l.get_ref());
            c.err(l, &key("layers"), msg);
        } else {
            layers.push(std::path::absolute(&dir).unwrap_or(dir));
        }
    }
    if f.layers.len() > MAX_LAYERS {
        c.err(
            &f.layers[MAX_LAYERS],
            &key("layers"),
            format!("a function has at most {MAX_LAYERS} layers (as on AWS)"),
        );
    }
    let bundle = f.bundle.as_ref().map(|b| {
        let r = b.get_ref();
        if !matches!(runtime, Some(Language::Node(_)) | None) {
            c.err(b, &key("bundle"), "a bundle is for Node.js functions");
        }
        for e in &r.entry_points {
            if !code.join(e.get_ref()).is_file() {
                let msg = format!(
                    "entry point {:?} is not a file of the code directory",
                    e.get_ref()
                );
                c.err(e, &["functions", name, "bundle", "entry_points"], msg);
            }
        }
        if r.entry_points.is_empty() {
            c.err(
                b,
                &["functions", name, "bundle", "entry_points"],
                "a bundle needs its entry points (e.g. [\"app.ts\"])",
            );
        }
        let esm = match r.format.as_ref().map(|f| f.get_ref().as_str()) {
            None | Some("cjs") => false,
            Some("esm") => true,
            Some(other) => {
                let msg = format!("{other:?} is not cjs or esm");
                c.err(
                    r.format.as_ref().expect("set"),
                    &["functions", name, "bundle", "format"],
                    msg,
                );
                false
            }
        };
        Bundle {
            entry_points: r.entry_points.iter().map(|e| e.get_ref().clone()).collect(),
            esm,
            minify: r.minify,
            sourcemap: r.sourcemap,
            target: r
                .target
                .as_ref()
                .map_or_else(|| "es2020".to_owned(), |t| t.get_ref().clone()),
            external: r.external.iter().map(|e| e.get_ref().clone()).collect(),
        }
    });
    let auto_publish_alias = f.auto_publish_alias.as_ref().map(|a| {
        let alias = a.get_ref();
        if !valid_qualifier(alias) || alias.chars().all(|c| c.is_ascii_digit()) || alias == "$LATEST" {
            let msg = format!("{alias:?} is not an alias name: letters, digits, '-' and '_', starting with a letter");
            c.err(a, &key("auto_publish_alias"), msg);
        }
        alias.clone()
    });
    Some(Function {
        name: name.to_owned(),
        runtime: runtime?,
        handler,
        code,
        timeout: Duration::from_secs(timeout as u64),
        memory_mb: memory as u32,
        concurrency: concurrency as u32,
        environments: environments as u32,
        warm: warm as u32,
        idle_timeout: Duration::from_secs(idle_timeout as u64),
        environment,
        asynchronous,
        version: None,
        layers,
        bundle,
        auto_publish_alias,
    })
}

fn async_config(c: &mut Checker<'_>, name: &str, raw: Option<&Spanned<RawAsync>>) -> AsyncConfig {
    let d = AsyncConfig::default();
    let Some(raw) = raw else { return d };
    let a = raw.get_ref();
    let key = |field: &'static str| ["functions", name, "async", field];
    let secs = |v: i64| Duration::from_secs(v as u64);
    AsyncConfig {
        max_event_age: secs(c.ranged(
            &a.max_event_age,
            &key("max_event_age"),
            60..=21_600,
            "seconds",
            d.max_event_age.as_secs() as i64,
        )),
        max_retries: c.ranged(
            &a.max_retries,
            &key("max_retries"),
            0..=2,
            "retries",
            i64::from(d.max_retries),
        ) as u32,
        retry_delay: secs(c.ranged(
            &a.retry_delay,
            &key("retry_delay"),
            1..=600,
            "seconds",
            d.retry_delay.as_secs() as i64,
        )),
        queue: c.ranged(
            &a.queue,
            &key("queue"),
            1..=1_000_000,
            "events",
            d.queue as i64,
        ) as usize,
        on_success: a.on_success.as_ref().map(|f| f.get_ref().clone()),
        on_failure: a.on_failure.as_ref().map(|f| f.get_ref().clone()),
    }
}

fn normalize_base_path(c: &mut Checker<'_>, api: &str, raw: &Option<Spanned<String>>) -> String {
    let Some(s) = raw else {
        return "/".to_owned();
    };
    let trimmed = s.get_ref().trim_end_matches('/');
    let p = if trimmed.is_empty() { "/" } else { trimmed };
    match PathPattern::parse(p) {
        Ok(pat) if pat.params().next().is_none() => pat.to_string(),
        Ok(_) => {
            c.err(
                s,
                &["apis", api, "base_path"],
                "a base path cannot have parameters",
            );
            "/".to_owned()
        }
        Err(e) => {
            c.err(s, &["apis", api, "base_path"], e);
            "/".to_owned()
        }
    }
}

fn api(
    c: &mut Checker<'_>,
    name: &str,
    raw: &Spanned<RawApi>,
    functions: &BTreeMap<String, Spanned<RawFunction>>,
    project_dir: &Path,
) -> Api {
    let a = raw.get_ref();
    if !is_name(name) {
        c.err(
            raw,
            &["apis", name],
            "an API name is 1 to 64 letters, digits, '-' or '_'",
        );
    }
    let kind = match a.kind.get_ref() {
        RawApiType::Http => ApiKind::Http,
        RawApiType::Rest => ApiKind::Rest,
        RawApiType::Websocket => ApiKind::WebSocket,
    };
    let base_path = normalize_base_path(c, name, &a.base_path);

    let mut stages = Vec::new();
    match &a.stages {
        None => stages.push(default_stage(base_path.clone())),
        Some(map) => {
            for (stage, s) in map {
                if stage != DEFAULT_STAGE && !is_name(stage) {
                    c.err(
                        s,
                        &["apis", name, "stages", stage],
                        "a stage name is $default or 1 to 64 letters, digits, '-' or '_'",
                    );
                    continue;
                }
                for var in s.get_ref().variables.keys() {
                    if var.is_empty()
                        || !var
                            .chars()
                            .all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
                    {
                        c.err(
                            s,
                            &["apis", name, "stages", stage, "variables", var],
                            "a stage variable name is letters, digits and '_'",
                        );
                    }
                }
                let mount = stage_mount(&base_path, stage);
                stages.push(Stage {
                    name: stage.clone(),
                    variables: s.get_ref().variables.clone(),
                    mount,
                    throttle: throttle(
                        c,
                        &s.get_ref().throttle,
                        &["apis", name, "stages", stage, "throttle"],
                    ),
                    access_log: s.get_ref().access_log.as_ref().and_then(|a| {
                        access_log(
                            c,
                            a,
                            &["apis", name, "stages", stage, "access_log"],
                            project_dir,
                        )
                    }),
                    cache: s.get_ref().cache.as_ref().and_then(|raw| {
                        stage_cache(c, kind, raw, &["apis", name, "stages", stage, "cache"])
                    }),
                    deployment: deployment_ref(
                        c,
                        &s.get_ref().deployment,
                        &["apis", name, "stages", stage, "deployment"],
                    ),
                    canary: s
                        .get_ref()
                        .canary
                        .as_ref()
                        .and_then(|raw| canary(c, raw, &["apis", name, "stages", stage, "canary"])),
                });
            }
        }
    }

    let route_selection = match (&a.route_selection, kind) {
        (None, ApiKind::WebSocket) => {
            Some(SelectionExpr::parse("$request.body.action").expect("the default parses"))
        }
        (None, _) => None,
        (Some(s), ApiKind::WebSocket) => match SelectionExpr::parse(s.get_ref()) {
            Ok(e) => Some(e),
            Err(e) => {
                c.err(s, &["apis", name, "route_selection"], e);
                None
            }
        },
        (Some(s), _) => {
            c.err(
                s,
                &["apis", name, "route_selection"],
                "route_selection applies to websocket APIs only",
            );
            None
        }
    };

    let authorizers = authorizers(c, name, kind, a, functions, project_dir);
    let models = models(c, name, kind, a);
    let gateway_responses = gateway_responses(c, name, kind, a);
    if let Some(o) = &a.openapi {
        let k = ["apis", name, "openapi"];
        if kind == ApiKind::WebSocket {
            c.err(o, &k, "an OpenAPI document defines REST or HTTP APIs");
        } else if !project_dir.join(o.get_ref()).is_file() {
            c.err(
                o,
                &k,
                format!(
                    "OpenAPI document {:?} does not exist (paths are from the project directory)",
                    o.get_ref()
                ),
            );
        }
    }
    let policy = a.policy.as_ref().and_then(|p| {
        let k = ["apis", name, "policy"];
        if kind != ApiKind::Rest {
            c.err(p, &k, "resource policies are REST APIs' (as on AWS)");
            return None;
        }
        match resource_policy(p.get_ref()) {
            Ok(policy) => Some(Arc::new(policy)),
            Err(why) => {
                c.err(p, &k, why);
                None
            }
        }
    });
    let api_key_source = match &a.api_key_source {
        None => ApiKeySource::Header,
        Some(s) => {
            let k = ["apis", name, "api_key_source"];
            if kind == ApiKind::Http {
                c.err(
                    s,
                    &k,
                    "HTTP APIs have no API keys (on AWS neither): use a rest API, or an authorizer",
                );
            }
            match s.get_ref().as_str() {
                "HEADER" => ApiKeySource::Header,
                "AUTHORIZER" => ApiKeySource::Authorizer,
                other => {
                    c.err(s, &k, format!("{other:?} is not HEADER or AUTHORIZER"));
                    ApiKeySource::Header
                }
            }
        }
    };

    let mut routes = Vec::new();
    // shape (method, path with anonymous parameters) -> route key, for duplicates
    let mut seen: HashMap<(Method, String), String> = HashMap::new();
    for (key, r) in &a.routes {
        let rk = ["apis", name, "routes", key.as_str()];
        let Some(route_key) = parse_route_key(c, kind, key, r, &rk) else {
            continue;
        };
        if let RouteKey::Http { method, path } = &route_key {
            let shape = path
                .segments
                .iter()
                .map(|s| match s {
                    Segment::Static(t) => format!("/{t}"),
                    Segment::Param(_) => "/{}".to_owned(),
                    Segment::Greedy(_) => "/{+}".to_owned(),
                })
                .collect::<String>();
            if let Some(other) = seen.insert((*method, shape), key.clone()) {
                c.err(
                    r,
                    &rk,
                    format!("conflicts with route {other:?}: both match the same requests"),
                );
            }
        }
        if let Some(mut route) = route(c, kind, &route_key, r, &rk, functions, &authorizers) {
            route.validation = validation(c, kind, r.get_ref(), &rk, &models);
            route.request_parameters = request_parameters(c, kind, &route, r.get_ref(), &rk);
            routes.push(route);
        }
    }

    let mut ws_seconds = |v: &Option<Spanned<i64>>, key: &str, max: i64, default: u64| {
        if v.is_some() && kind != ApiKind::WebSocket {
            if let Some(s) = v {
                c.err(
                    s,
                    &["apis", name, key],
                    format!("{key} applies to websocket APIs only"),
                );
            }
        }
        Duration::from_secs(
            c.ranged(v, &["apis", name, key], 1..=max, "seconds", default as i64) as u64,
        )
    };
    let idle_timeout = ws_seconds(
        &a.idle_timeout,
        "idle_timeout",
        86_400,
        DEFAULT_WS_IDLE_TIMEOUT_SECS,
    );
    let max_lifetime = ws_seconds(
        &a.max_lifetime,
        "max_lifetime",
        7 * 86_400,
        DEFAULT_WS_MAX_LIFETIME_SECS,
    );

    let binary_media_types = match &a.binary_media_types {
        None => Vec::new(),
        Some(types) => {
            if kind != ApiKind::Rest {
                c.err(
                    types,
                    &["apis", name, "binary_media_types"],
                    "binary_media_types applies to rest APIs only (HTTP APIs decide by content type and isBase64Encoded)",
                );
            }
            for t in types.get_ref() {
                if !t.contains('/') {
                    c.err(
                        types,
                        &["apis", name, "binary_media_types"],
                        format!("{t:?} is not a media type such as \"image/png\" or \"image/*\" or \"*/*\""),
                    );
                }
            }
            types
                .get_ref()
                .iter()
                .map(|t| t.to_ascii_lowercase())
                .collect()
        }
    };
    let cors = a.cors.as_ref().and_then(|raw| cors(c, name, kind, raw));
    let id = match &a.id {
        None => api_id(name),
        Some(s) => {
            let v = s.get_ref();
            if v.is_empty()
                || v.len() > 63
                || !v
                    .chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit())
            {
                c.err(
                    s,
                    &["apis", name, "id"],
                    "an API id is 1 to 63 lower-case letters and digits (it is a host name's first label)",
                );
            }
            v.clone()
        }
    };
    Api {
        name: name.to_owned(),
        id,
        host_only: a.host_only.as_ref().is_some_and(|b| *b.get_ref()),
        kind,
        base_path,
        stages,
        routes,
        route_selection,
        binary_media_types,
        idle_timeout,
        max_lifetime,
        cors,
        api_key_source,
        authorizers,
        function_url: None,
        gateway_responses,
        policy,
    }
}

/// Every function's `schedules`, each named (unique in the project) and
/// its expression, time zone and input checked.
fn schedules(
    c: &mut Checker<'_>,
    raw: &BTreeMap<String, Spanned<RawFunction>>,
    functions: &BTreeMap<String, Arc<Function>>,
) -> Vec<Arc<Schedule>> {
    let mut out: Vec<Arc<Schedule>> = Vec::new();
    for (fname, f) in raw {
        if !functions.contains_key(fname) {
            continue;
        }
        for (i, s) in f.get_ref().schedules.iter().enumerate() {
            let r = s.get_ref();
            let at = |k: &'static str| ["functions", fname.as_str(), "schedules", k];
            let name = r.name.as_ref().map_or_else(
                || format!("{fname}-schedule-{}", i + 1),
                |n| n.get_ref().clone(),
            );
            if out.iter().any(|o| o.name == name) {
                c.err(
                    s,
                    &at("name"),
                    format!("a schedule named {name:?} is already defined: names are unique"),
                );
                continue;
            }
            let parsed = match crate::parse_expression(r.expression.get_ref()) {
                Ok(p) => p,
                Err(e) => {
                    c.err(&r.expression, &at("expression"), e);
                    continue;
                }
            };
            let timezone = match &r.timezone {
                None => chrono_tz::UTC,
                Some(tz) => match tz.get_ref().parse::<chrono_tz::Tz>() {
                    Ok(t) => t,
                    Err(_) => {
                        c.err(
                            tz,
                            &at("timezone"),
                            format!(
                                "{:?} is not an IANA time zone (e.g. \"Europe/Paris\")",
                                tz.get_ref()
                            ),
                        );
                        chrono_tz::UTC
                    }
                },
            };
            if let Some(input) = &r.input {
                if serde_json::from_str::<serde_json::Value>(input.get_ref()).is_err() {
                    c.err(input, &at("input"), "input is the event as JSON text");
                }
            }
            let kind = match r.kind.as_ref().map(|k| k.get_ref().as_str()) {
                None | Some("rule") => ScheduleKind::Rule,
                Some("scheduler") => ScheduleKind::Scheduler,
                Some(other) => {
                    c.err(
                        r.kind.as_ref().expect("set"),
                        &at("kind"),
                        format!("{other:?} is not rule or scheduler"),
                    );
                    ScheduleKind::Rule
                }
            };
            let target = match &r.qualifier {
                Some(q) if valid_qualifier(q.get_ref()) => format!("{fname}:{}", q.get_ref()),
                Some(q) => {
                    c.err(
                        q,
                        &at("qualifier"),
                        "a qualifier is a version number, an alias name or $LATEST",
                    );
                    fname.clone()
                }
                None => fname.clone(),
            };
            out.push(Arc::new(Schedule {
                name,
                target,
                expression: r.expression.get_ref().clone(),
                parsed,
                timezone,
                input: r.input.as_ref().map(|i| i.get_ref().clone()),
                enabled: r.enabled.as_ref().is_none_or(|e| *e.get_ref()),
                kind,
            }));
        }
    }
    out
}

/// The `$default` stage an API without `stages` has, served at `mount`.
fn default_stage(mount: String) -> Stage {
    Stage {
        name: DEFAULT_STAGE.to_owned(),
        variables: BTreeMap::new(),
        mount,
        throttle: None,
        access_log: None,
        cache: None,
        deployment: DeploymentRef::Latest,
        canary: None,
    }
}

/// A function's URL as an HTTP API of its own: one `$default` stage at
/// `/lambda-url/NAME` (and at its own host), one `$default` route calling
/// the function with payload 2.0, the URL's CORS.
fn function_url_api(
    c: &mut Checker<'_>,
    name: &str,
    raw: &Spanned<RawFunctionUrl>,
    f: &Function,
) -> Api {
    let u = raw.get_ref();
    let at = |k: &'static str| ["functions", name, "url", k];
    let auth = match u.auth.as_ref().map(|a| a.get_ref().as_str()) {
        None | Some("NONE") => UrlAuth::None,
        Some("AWS_IAM") => UrlAuth::AwsIam,
        Some(other) => {
            let msg = format!("{other:?} is not NONE or AWS_IAM");
            c.err(u.auth.as_ref().expect("set"), &at("auth"), msg);
            UrlAuth::None
        }
    };
    let target = match &u.qualifier {
        Some(q) if !valid_qualifier(q.get_ref()) => {
            c.err(
                q,
                &at("qualifier"),
                "a qualifier is a version number, an alias name or $LATEST",
            );
            name.to_owned()
        }
        Some(q) => format!("{name}:{}", q.get_ref()),
        None => name.to_owned(),
    };
    let cors = u
        .cors
        .as_ref()
        .map(|raw| cors_rules(c, &["functions", name, "url", "cors"], raw));
    let stream = match u.invoke_mode.as_ref().map(|m| m.get_ref().as_str()) {
        None | Some("BUFFERED") => false,
        Some("RESPONSE_STREAM") => true,
        Some(other) => {
            let msg = format!("{other:?} is not BUFFERED or RESPONSE_STREAM");
            c.err(
                u.invoke_mode.as_ref().expect("set"),
                &at("invoke_mode"),
                msg,
            );
            false
        }
    };
    let mount = function_url_mount(name);
    Api {
        name: format!("{name}-url"),
        id: url_id(name),
        host_only: false,
        kind: ApiKind::Http,
        base_path: mount.clone(),
        stages: vec![default_stage(mount)],
        routes: vec![Route {
            key: RouteKey::Default,
            integration: Integration::Function {
                name: target.clone(),
            },
            // A URL waits as long as its function may run (no API
            // Gateway cap); the function's own timeout answers first.
            timeout: f.timeout + Duration::from_secs(1),
            respond: false,
            payload: PayloadFormat::V2,
            throttle: None,
            authorizer: None,
            scopes: Vec::new(),
            api_key_required: false,
            cache: RouteCache {
                enabled: None,
                ttl: None,
                keys: None,
            },
            stream,
            mapping: None,
            validation: None,
            iam: false,
            request_parameters: Vec::new(),
        }],
        route_selection: None,
        binary_media_types: Vec::new(),
        idle_timeout: Duration::from_secs(DEFAULT_IDLE_TIMEOUT_SECS),
        max_lifetime: Duration::from_secs(DEFAULT_IDLE_TIMEOUT_SECS),
        cors,
        api_key_source: ApiKeySource::Header,
        authorizers: BTreeMap::new(),
        function_url: Some(FunctionUrl { target, auth }),
        gateway_responses: BTreeMap::new(),
        policy: None,
    }
}

fn authorizers(
    c: &mut Checker<'_>,
    api: &str,
    kind: ApiKind,
    a: &RawApi,
    functions: &BTreeMap<String, Spanned<RawFunction>>,
    project_dir: &Path,
) -> BTreeMap<String, Arc<Authorizer>> {
    let mut out = BTreeMap::new();
    for (name, raw) in &a.authorizers {
        let r = raw.get_ref();
        let key = |k: &'static str| -> Vec<&str> {
            let mut v = vec!["apis", api, "authorizers", name.as_str()];
            if !k.is_empty() {
                v.push(k);
            }
            v
        };
        if !is_name(name) {
            c.err(
                raw,
                &key(""),
                "an authorizer name is 1 to 64 letters, digits, '-' or '_'",
            );
        }
        let type_name = r.kind.get_ref().as_str();
        let allowed: &[&str] = match kind {
            ApiKind::Rest => &["token", "request"],
            ApiKind::Http => &["request", "jwt"],
            ApiKind::WebSocket => &["request"],
        };
        if !allowed.contains(&type_name) {
            let msg = if ["token", "request", "jwt"].contains(&type_name) {
                format!(
                    "{kind} APIs take {} authorizers (as on AWS)",
                    allowed.join(" or ")
                )
            } else {
                format!("{type_name:?} is not an authorizer type: token, request or jwt")
            };
            c.err(&r.kind, &key("type"), msg);
            continue;
        }
        // Keys that belong to other types are mistakes, named.
        let jwt = type_name == "jwt";
        let misplaced: [(&str, bool, Option<std::ops::Range<usize>>); 8] = [
            ("function", jwt, r.function.as_ref().map(|v| v.span())),
            ("ttl", jwt, r.ttl.as_ref().map(|v| v.span())),
            (
                "payload",
                type_name != "request" || kind != ApiKind::Http,
                r.payload.as_ref().map(|v| v.span()),
            ),
            (
                "simple_responses",
                type_name != "request" || kind != ApiKind::Http,
                r.simple_responses.as_ref().map(|v| v.span()),
            ),
            (
                "identity_validation",
                type_name != "token",
                r.identity_validation.as_ref().map(|v| v.span()),
            ),
            ("issuer", !jwt, r.issuer.as_ref().map(|v| v.span())),
            ("audience", !jwt, r.audience.as_ref().map(|v| v.span())),
            ("jwks", !jwt, r.jwks.as_ref().map(|v| v.span())),
        ];
        for (k, wrong, span) in misplaced {
            if let (true, Some(span)) = (wrong, span) {
                let at = Spanned::new(span, ());
                c.err(
                    &at,
                    &key(k),
                    format!(
                        "{k} does not apply to {type_name} authorizers{}",
                        if kind == ApiKind::Http || !matches!(k, "payload" | "simple_responses") {
                            ""
                        } else {
                            " (payload and simple_responses: HTTP APIs' request authorizers)"
                        }
                    ),
                );
            }
        }
        let default_source = || vec!["$request.header.Authorization"];
        let sources_raw: Vec<&str> = r
            .identity_source
            .as_ref()
            .map(|s| s.get_ref().items())
            .unwrap_or_else(default_source);
        let mut identity_sources = Vec::new();
        for s in sources_raw {
            match IdentitySource::parse(s) {
                Ok(src) => identity_sources.push(src),
                Err(e) => match &r.identity_source {
                    Some(at) => c.err(at, &key("identity_source"), e),
                    None => c.err(raw, &key("identity_source"), e),
                },
            }
        }
        if matches!(type_name, "token" | "jwt")
            && (identity_sources.len() != 1
                || !matches!(identity_sources[0], IdentitySource::Header(_)))
        {
            if let Some(at) = &r.identity_source {
                c.err(
                    at,
                    &key("identity_source"),
                    format!("a {type_name} authorizer reads one header: $request.header.NAME"),
                );
            }
        }
        if identity_sources.is_empty() {
            if let Some(at) = &r.identity_source {
                c.err(
                    at,
                    &key("identity_source"),
                    "at least one identity source is needed",
                );
            }
        }
        let ttl = c.ranged(
            &r.ttl,
            &key("ttl"),
            0..=MAX_AUTHORIZER_TTL_SECS as i64,
            "seconds",
            DEFAULT_AUTHORIZER_TTL_SECS as i64,
        );
        let function = || -> String {
            match &r.function {
                Some(f) => {
                    if !functions.contains_key(f.get_ref()) {
                        c_unknown_function(f.get_ref())
                    } else {
                        String::new()
                    }
                }
                None => "a Lambda authorizer needs function = \"NAME\"".to_owned(),
            }
        };
        let problem = if jwt { String::new() } else { function() };
        if !problem.is_empty() {
            match &r.function {
                Some(f) => c.err(f, &key("function"), problem),
                None => c.err(raw, &key("function"), problem),
            }
        }
        let function_name = r
            .function
            .as_ref()
            .map(|f| f.get_ref().clone())
            .unwrap_or_default();
        let kind_resolved = match type_name {
            "token" => {
                let validation = r.identity_validation.as_ref().map(|v| {
                    if let Err(e) = regex::Regex::new(v.get_ref()) {
                        c.err(
                            v,
                            &key("identity_validation"),
                            format!("not a regular expression: {e}"),
                        );
                    }
                    v.get_ref().clone()
                });
                AuthorizerKind::Token {
                    function: function_name,
                    validation,
                }
            }
            "request" => {
                let payload = match &r.payload {
                    None if kind == ApiKind::Http => PayloadFormat::V2,
                    None => PayloadFormat::V1,
                    Some(p) => match p.get_ref().as_str() {
                        "1.0" => PayloadFormat::V1,
                        "2.0" => PayloadFormat::V2,
                        _ => {
                            c.err(p, &key("payload"), "payload is \"1.0\" or \"2.0\"");
                            PayloadFormat::V2
                        }
                    },
                };
                let simple_responses = r.simple_responses.as_ref().is_some_and(|b| *b.get_ref());
                if simple_responses && payload == PayloadFormat::V1 {
                    if let Some(b) = &r.simple_responses {
                        c.err(
                            b,
                            &key("simple_responses"),
                            "simple responses need payload \"2.0\" (as on AWS)",
                        );
                    }
                }
                AuthorizerKind::Request {
                    function: function_name,
                    payload,
                    simple_responses,
                }
            }
            _ => {
                let issuer = match &r.issuer {
                    Some(i) => {
                        if !(i.get_ref().starts_with("https://")
                            || i.get_ref().starts_with("http://"))
                        {
                            c.err(
                                i,
                                &key("issuer"),
                                "the issuer is a URL, as the tokens' iss claim holds it",
                            );
                        }
                        i.get_ref().clone()
                    }
                    None => {
                        c.err(
                            raw,
                            &key("issuer"),
                            "a jwt authorizer needs issuer = \"https://...\" (the tokens' iss)",
                        );
                        String::new()
                    }
                };
                let audience = match &r.audience {
                    Some(a) if !a.get_ref().is_empty() => a.get_ref().clone(),
                    Some(a) => {
                        c.err(
                            a,
                            &key("audience"),
                            "a jwt authorizer needs at least one audience",
                        );
                        Vec::new()
                    }
                    None => {
                        c.err(raw, &key("audience"), "a jwt authorizer needs audience = [\"...\"] (the tokens' aud or client_id)");
                        Vec::new()
                    }
                };
                let jwks = match &r.jwks {
                    Some(j) => {
                        let v = j.get_ref();
                        if v.starts_with("http://") || v.starts_with("https://") {
                            Jwks::Url(v.clone())
                        } else {
                            let path = project_dir.join(v);
                            if !path.is_file() {
                                c.err(
                                    j,
                                    &key("jwks"),
                                    format!("JWKS file {v:?} does not exist (paths are from the project directory)"),
                                );
                            }
                            Jwks::File(path)
                        }
                    }
                    None => {
                        c.err(
                            raw,
                            &key("jwks"),
                            "a jwt authorizer needs jwks = \"keys.json\" or an https:// (or http://) URL",
                        );
                        Jwks::File(PathBuf::new())
                    }
                };
                AuthorizerKind::Jwt {
                    issuer,
                    audience,
                    jwks,
                }
            }
        };
        out.insert(
            name.clone(),
            Arc::new(Authorizer {
                name: name.clone(),
                kind: kind_resolved,
                identity_sources,
                ttl: if jwt {
                    Duration::ZERO
                } else {
                    Duration::from_secs(ttl as u64)
                },
            }),
        );
    }
    out
}

fn buckets_and_sites(
    c: &mut Checker<'_>,
    raw: &RawConfig,
    apis: &[Arc<Api>],
    project_dir: &Path,
) -> (Vec<Bucket>, Vec<Arc<Site>>) {
    let mut buckets = Vec::new();
    for (name, b) in &raw.buckets {
        let ok = (3..=63).contains(&name.len())
            && name
                .chars()
                .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-' || ch == '.')
            && name.starts_with(|ch: char| ch.is_ascii_alphanumeric())
            && name.ends_with(|ch: char| ch.is_ascii_alphanumeric());
        if !ok {
            c.err(
                b,
                &["buckets", name],
                "a bucket name is 3 to 63 lower-case letters, digits, '-' and '.', starting and ending with a letter or digit (as on S3)",
            );
        }
        let source = b.get_ref().source.as_ref().map(|s| {
            let path = project_dir.join(s.get_ref());
            if !path.is_dir() {
                c.err(
                    s,
                    &["buckets", name, "source"],
                    format!(
                        "{:?} is not a folder (paths are from the project directory)",
                        s.get_ref()
                    ),
                );
            }
            path
        });
        let cors = b
            .get_ref()
            .cors
            .as_ref()
            .map(|raw| cors_rules(c, &["buckets", name, "cors"], raw));
        let mut notifications = Vec::new();
        for n in &b.get_ref().notifications {
            let r = n.get_ref();
            let at = ["buckets", name.as_str(), "notifications"];
            let (base, _) = split_qualifier(r.function.get_ref());
            if !raw.functions.contains_key(base) {
                c.err(&r.function, &at, c_unknown_function(base));
            }
            for e in &r.events {
                if !S3_EVENTS.contains(&e.get_ref().as_str()) {
                    c.err(
                        e,
                        &at,
                        format!(
                            "{:?} is not an S3 event Stratus sends ({})",
                            e.get_ref(),
                            S3_EVENTS.join(", ")
                        ),
                    );
                }
            }
            if r.events.is_empty() {
                c.err(
                    n,
                    &at,
                    "a notification names its events (e.g. [\"s3:ObjectCreated:*\"])",
                );
            }
            notifications.push(Notification {
                function: r.function.get_ref().clone(),
                events: r.events.iter().map(|e| e.get_ref().clone()).collect(),
                prefix: r.prefix.clone().unwrap_or_default(),
                suffix: r.suffix.clone().unwrap_or_default(),
            });
        }
        buckets.push(Bucket {
            name: name.clone(),
            source,
            cors,
            notifications,
        });
    }
    let mut sites = Vec::new();
    for (name, site) in &raw.sites {
        let r = site.get_ref();
        if !is_name(name) {
            c.err(
                site,
                &["sites", name],
                "a site name is 1 to 64 letters, digits, '-' or '_'",
            );
        }
        if !raw.buckets.contains_key(r.bucket.get_ref()) {
            c.err(
                &r.bucket,
                &["sites", name, "bucket"],
                format!(
                    "unknown bucket {:?} (not defined under [buckets])",
                    r.bucket.get_ref()
                ),
            );
        }
        let base_path = normalize_base_path(c, name, &r.base_path);
        if apis
            .iter()
            .any(|a| a.stages.iter().any(|s| s.mount == base_path))
        {
            let at = r.base_path.as_ref().map_or_else(
                || Spanned::new(site.span(), ()),
                |b| Spanned::new(b.span(), ()),
            );
            c.err(
                &at,
                &["sites", name, "base_path"],
                format!("an API stage is already served at {base_path:?}: give the site or the API another base_path"),
            );
        }
        let mut behaviors = Vec::new();
        for b in &r.behaviors {
            let p = b.get_ref().path.get_ref();
            if !p.starts_with('/') {
                c.err(
                    &b.get_ref().path,
                    &["sites", name, "behaviors", "path"],
                    "a path pattern starts with '/' (e.g. \"/assets/*\")",
                );
            }
            behaviors.push(Behavior {
                path: p.clone(),
                cache_control: b
                    .get_ref()
                    .cache_control
                    .as_ref()
                    .map(|x| x.get_ref().clone()),
            });
        }
        sites.push(Arc::new(Site {
            name: name.clone(),
            bucket: r.bucket.get_ref().clone(),
            base_path,
            index: r.index.as_ref().map_or_else(
                || "index.html".to_owned(),
                |i| i.get_ref().trim_start_matches('/').to_owned(),
            ),
            spa: r.spa.as_ref().is_some_and(|b| *b.get_ref()),
            not_found: r
                .not_found
                .as_ref()
                .map(|n| n.get_ref().trim_start_matches('/').to_owned()),
            cache_control: r.cache_control.as_ref().map(|x| x.get_ref().clone()),
            behaviors,
        }));
    }
    (buckets, sites)
}

fn databases(c: &mut Checker<'_>, raw: &RawConfig, project_dir: &Path) -> Vec<Database> {
    let mut out = Vec::new();
    for (name, d) in &raw.databases {
        let r = d.get_ref();
        if !is_name(name) {
            c.err(
                d,
                &["databases", name],
                "a database name is 1 to 64 letters, digits, '-' or '_'",
            );
        }
        let engine = match r.engine.as_ref().map(|e| e.get_ref().as_str()) {
            None | Some("sqlite") => {
                if let Some(u) = &r.url {
                    c.err(u, &["databases", name, "url"], "url applies to engine = \"postgres\" (a sqlite database is a file in the data directory)");
                }
                DatabaseEngine::Sqlite
            }
            Some("postgres") => match &r.url {
                Some(u)
                    if u.get_ref().starts_with("postgres://")
                        || u.get_ref().starts_with("postgresql://")
                        || u.get_ref().starts_with("${") =>
                {
                    DatabaseEngine::Postgres {
                        url: u.get_ref().clone(),
                    }
                }
                Some(u) => {
                    c.err(
                        u,
                        &["databases", name, "url"],
                        "a postgres url starts with postgres:// (or is ${VAR})",
                    );
                    DatabaseEngine::Sqlite
                }
                None => {
                    c.err(d, &["databases", name, "url"], "engine = \"postgres\" needs url = \"postgres://...\" (or \"${DATABASE_URL}\")");
                    DatabaseEngine::Sqlite
                }
            },
            Some(other) => {
                if let Some(e) = &r.engine {
                    c.err(
                        e,
                        &["databases", name, "engine"],
                        format!("{other:?} is not an engine: sqlite or postgres"),
                    );
                }
                DatabaseEngine::Sqlite
            }
        };
        let mut path_of = |v: &Option<Spanned<String>>, key: &str, dir: bool| {
            v.as_ref().map(|p| {
                let path = project_dir.join(p.get_ref());
                let ok = if dir { path.is_dir() } else { path.is_file() };
                if !ok {
                    let what = if dir { "folder" } else { "file" };
                    c.err(
                        p,
                        &["databases", name, key],
                        format!(
                            "{:?} is not a {what} (paths are from the project directory)",
                            p.get_ref()
                        ),
                    );
                }
                path
            })
        };
        let migrations = path_of(&r.migrations, "migrations", true);
        let seed = path_of(&r.seed, "seed", false);
        let statement_timeout = c.ranged(
            &r.statement_timeout,
            &["databases", name, "statement_timeout"],
            1..=3600,
            "seconds",
            DEFAULT_STATEMENT_TIMEOUT_SECS,
        );
        out.push(Database {
            name: name.clone(),
            engine,
            migrations,
            seed,
            statement_timeout: Duration::from_secs(statement_timeout as u64),
        });
    }
    out
}

fn pricing(c: &mut Checker<'_>, raw: Option<&Spanned<RawPricing>>) -> Pricing {
    let mut p = Pricing::default();
    let Some(raw) = raw else { return p };
    let r = raw.get_ref();
    let mut set = |v: &Option<Spanned<f64>>, key: &str, slot: &mut f64| {
        if let Some(v) = v {
            let x = *v.get_ref();
            if x.is_finite() && x >= 0.0 {
                *slot = x;
            } else {
                c.err(
                    v,
                    &["pricing", key],
                    "a price is a number of dollars, 0 or more",
                );
            }
        }
    };
    set(
        &r.lambda_requests_per_million,
        "lambda_requests_per_million",
        &mut p.lambda_requests_per_million,
    );
    set(
        &r.lambda_gb_second,
        "lambda_gb_second",
        &mut p.lambda_gb_second,
    );
    set(
        &r.rest_requests_per_million,
        "rest_requests_per_million",
        &mut p.rest_requests_per_million,
    );
    set(
        &r.http_requests_per_million,
        "http_requests_per_million",
        &mut p.http_requests_per_million,
    );
    set(
        &r.websocket_messages_per_million,
        "websocket_messages_per_million",
        &mut p.websocket_messages_per_million,
    );
    set(
        &r.websocket_connection_minutes_per_million,
        "websocket_connection_minutes_per_million",
        &mut p.websocket_connection_minutes_per_million,
    );
    p
}

fn access_log(
    c: &mut Checker<'_>,
    raw: &Spanned<RawAccessLog>,
    key: &[&str],
    project_dir: &Path,
) -> Option<Arc<AccessLog>> {
    let r = raw.get_ref();
    let fkey: Vec<&str> = key.iter().copied().chain(["format"]).collect();
    let format = match AccessLog::parse_format(r.format.get_ref()) {
        Ok(parts) => parts,
        Err((offset, msg)) => {
            // Point at the variable: past the opening quote (exact when no
            // escape comes before it).
            let start = r.format.span().start + 1 + offset;
            c.err(&Spanned::new(start..start + 1, ()), &fkey, msg);
            return None;
        }
    };
    let file = r.file.as_ref().map(|f| project_dir.join(f.get_ref()));
    Some(Arc::new(AccessLog { format, file }))
}

fn c_unknown_function(name: &str) -> String {
    format!("unknown function {name:?} (not defined under [functions])")
}

fn api_keys(c: &mut Checker<'_>, raw: &BTreeMap<String, Spanned<RawApiKey>>) -> Vec<ApiKeyDecl> {
    let mut out = Vec::new();
    let mut values: HashMap<&str, &str> = HashMap::new();
    for (name, k) in raw {
        if !is_name(name) {
            c.err(
                k,
                &["api_keys", name],
                "an API key name is 1 to 64 letters, digits, '-' or '_'",
            );
        }
        let value = k.get_ref().value.as_ref().map(|v| {
            let s = v.get_ref();
            if s.len() < MIN_API_KEY_LEN || s.len() > 128 || !s.chars().all(|ch| ch.is_ascii_graphic()) {
                c.err(v, &["api_keys", name, "value"], format!("an API key value is {MIN_API_KEY_LEN} to 128 printable ASCII characters, without spaces (as on AWS)"));
            }
            if let Some(other) = values.insert(s.as_str(), name.as_str()) {
                c.err(v, &["api_keys", name, "value"], format!("the same value as API key {other:?}"));
            }
            s.clone()
        });
        out.push(ApiKeyDecl {
            name: name.clone(),
            value,
            enabled: k.get_ref().enabled.as_ref().is_none_or(|b| *b.get_ref()),
        });
    }
    out
}

fn usage_plans(c: &mut Checker<'_>, raw: &RawConfig, apis: &[Arc<Api>]) -> Vec<Arc<UsagePlan>> {
    let mut out = Vec::new();
    // (key, api, stage) -> plan: a key may be in one plan per stage.
    let mut claimed: HashMap<(String, String, String), String> = HashMap::new();
    for (name, p) in &raw.usage_plans {
        let r = p.get_ref();
        if !is_name(name) {
            c.err(
                p,
                &["usage_plans", name],
                "a usage plan name is 1 to 64 letters, digits, '-' or '_'",
            );
        }
        let mut stages = Vec::new();
        for s in &r.apis {
            let k = ["usage_plans", name, "apis"];
            let Some((api, stage)) = s.get_ref().split_once('/') else {
                c.err(s, &k, format!("{:?} is not API/STAGE (e.g. \"shop/prod\"; \"shop/$default\" for an API without stages)", s.get_ref()));
                continue;
            };
            match apis.iter().find(|a| a.name == api) {
                None => c.err(s, &k, format!("unknown API {api:?} (not defined under [apis])")),
                Some(a) if a.kind == ApiKind::Http => c.err(s, &k, format!("API {api:?} is an HTTP API: usage plans apply to rest and websocket APIs (as on AWS)")),
                Some(a) if !a.stages.iter().any(|st| st.name == stage) => {
                    let known: Vec<&str> = a.stages.iter().map(|st| st.name.as_str()).collect();
                    c.err(s, &k, format!("API {api:?} has no stage {stage:?} (its stages: {})", known.join(", ")))
                }
                Some(_) => stages.push((api.to_owned(), stage.to_owned())),
            }
        }
        let quota = r.quota.as_ref().map(|q| {
            let q = q.get_ref();
            let limit = c.ranged(
                &Some(q.limit.clone()),
                &["usage_plans", name, "quota", "limit"],
                0..=i64::MAX,
                "calls",
                0,
            );
            let period = match q.period.get_ref().as_str() {
                "DAY" => QuotaPeriod::Day,
                "WEEK" => QuotaPeriod::Week,
                "MONTH" => QuotaPeriod::Month,
                other => {
                    c.err(
                        &q.period,
                        &["usage_plans", name, "quota", "period"],
                        format!("{other:?} is not DAY, WEEK or MONTH"),
                    );
                    QuotaPeriod::Day
                }
            };
            Quota {
                limit: limit as u64,
                period,
            }
        });
        let throttle = throttle(c, &r.throttle, &["usage_plans", name, "throttle"]);
        let mut keys = Vec::new();
        for k in &r.keys {
            let key = k.get_ref();
            if !raw.api_keys.contains_key(key) {
                c.err(
                    k,
                    &["usage_plans", name, "keys"],
                    format!("unknown API key {key:?} (not defined under [api_keys])"),
                );
                continue;
            }
            for (api, stage) in &stages {
                if let Some(other) =
                    claimed.insert((key.clone(), api.clone(), stage.clone()), name.clone())
                {
                    c.err(k, &["usage_plans", name, "keys"], format!("API key {key:?} is already in usage plan {other:?} for {api}/{stage}: a key has one plan per stage (as on AWS)"));
                }
            }
            keys.push(key.clone());
        }
        let mut method_throttles = Vec::new();
        for (at, t) in &r.method_throttles {
            let k = ["usage_plans", name, "method_throttles", at.as_str()];
            let Some((api, stage, route)) = at
                .split_once(' ')
                .and_then(|(stage, route)| Some((stage.split_once('/')?, route)))
                .map(|((a, s), r)| (a, s, r))
            else {
                c.err(t, &k, format!("{at:?} is not \"API/STAGE METHOD PATH\" (e.g. \"shop/prod GET /items/{{id}}\")"));
                continue;
            };
            if !stages.iter().any(|(a, s)| a == api && s == stage) {
                c.err(
                    t,
                    &k,
                    format!("{api}/{stage} is not one of the plan's apis"),
                );
                continue;
            }
            let known = apis
                .iter()
                .find(|a| a.name == api)
                .is_some_and(|a| a.routes.iter().any(|r| r.key.to_string() == route));
            if !known {
                c.err(t, &k, format!("API {api:?} has no route {route:?}"));
                continue;
            }
            if let Some(throttle) = throttle_of(c, t, &k) {
                method_throttles.push(MethodThrottle {
                    api: api.to_owned(),
                    stage: stage.to_owned(),
                    route: route.to_owned(),
                    throttle,
                });
            }
        }
        out.push(Arc::new(UsagePlan {
            name: name.clone(),
            stages,
            throttle,
            quota,
            keys,
            method_throttles,
        }));
    }
    out
}

const CORS_METHODS: &[&str] = &[
    "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "*",
];

fn cors(c: &mut Checker<'_>, api: &str, kind: ApiKind, raw: &Spanned<RawCors>) -> Option<Cors> {
    if kind == ApiKind::WebSocket {
        c.err(
            raw,
            &["apis", api, "cors"],
            "cors applies to http and rest APIs",
        );
        return None;
    }
    Some(cors_rules(c, &["apis", api, "cors"], raw))
}

/// A CORS configuration at `at` (an API's, a bucket's).
fn cors_rules(c: &mut Checker<'_>, at: &[&str], raw: &Spanned<RawCors>) -> Cors {
    let key = |k: &'static str| -> Vec<&str> {
        let mut v = at.to_vec();
        v.push(k);
        v
    };
    let r = raw.get_ref();
    for o in &r.allow_origins {
        let v = o.get_ref();
        if v != "*" && !is_origin(v) {
            c.err(
                o,
                &key("allow_origins"),
                format!("{v:?} is not an origin: \"*\" or scheme://host[:port], without a path"),
            );
        }
    }
    for m in &r.allow_methods {
        if !CORS_METHODS.contains(&m.get_ref().as_str()) {
            c.err(
                m,
                &key("allow_methods"),
                format!(
                    "{:?} is not a method: one of {}",
                    m.get_ref(),
                    CORS_METHODS.join(", ")
                ),
            );
        }
    }
    let max_age = r
        .max_age
        .as_ref()
        .map(|m| c.ranged(&Some(m.clone()), &key("max_age"), 0..=86400, "seconds", 0) as u32);
    let allow_credentials = r.allow_credentials.as_ref().is_some_and(|b| *b.get_ref());
    if allow_credentials && r.allow_origins.iter().any(|o| o.get_ref() == "*") {
        if let Some(b) = &r.allow_credentials {
            c.err(
                b,
                &key("allow_credentials"),
                "allow_credentials cannot go with the origin \"*\" (browsers refuse it): list the origins",
            );
        }
    }
    let lower = |v: &[String]| v.iter().map(|h| h.to_ascii_lowercase()).collect();
    Cors {
        allow_origins: r
            .allow_origins
            .iter()
            .map(|o| o.get_ref().clone())
            .collect(),
        allow_methods: r
            .allow_methods
            .iter()
            .map(|m| m.get_ref().clone())
            .collect(),
        allow_headers: lower(&r.allow_headers),
        expose_headers: lower(&r.expose_headers),
        max_age,
        allow_credentials,
    }
}

fn parse_route_key(
    c: &mut Checker<'_>,
    kind: ApiKind,
    key: &str,
    at: &Spanned<RawRoute>,
    rk: &[&str],
) -> Option<RouteKey> {
    if key == "$default" {
        return Some(RouteKey::Default);
    }
    if kind == ApiKind::WebSocket {
        if key.starts_with('$') && key != "$connect" && key != "$disconnect" {
            c.err(at, rk, "custom WebSocket route keys must not start with '$' (reserved: $connect, $disconnect, $default)");
            return None;
        }
        if key.is_empty() {
            c.err(at, rk, "a route key cannot be empty");
            return None;
        }
        return Some(RouteKey::WebSocket(key.to_owned()));
    }
    let Some((method, path)) = key.split_once(' ') else {
        c.err(at, rk, "malformed route key: expected \"METHOD /path\" (e.g. \"GET /items/{id}\") or \"$default\"");
        return None;
    };
    let Some(method) = Method::parse(method) else {
        c.err(at, rk, format!("unknown method {method:?}: expected GET, POST, PUT, DELETE, PATCH, HEAD, OPTIONS or ANY"));
        return None;
    };
    match PathPattern::parse(path) {
        Ok(path) => Some(RouteKey::Http { method, path }),
        Err(e) => {
            c.err(at, rk, format!("malformed route key: {e}"));
            None
        }
    }
}

fn route(
    c: &mut Checker<'_>,
    kind: ApiKind,
    key: &RouteKey,
    raw: &Spanned<RawRoute>,
    rk: &[&str],
    functions: &BTreeMap<String, Spanned<RawFunction>>,
    authorizers: &BTreeMap<String, Arc<Authorizer>>,
) -> Option<Route> {
    let r = raw.get_ref();
    let set = [r.function.is_some(), r.http.is_some(), r.mock.is_some()]
        .iter()
        .filter(|b| **b)
        .count();
    if set != 1 {
        c.err(
            raw,
            rk,
            "a route needs exactly one integration: function, http or mock",
        );
        return None;
    }
    let integration = if let Some(f) = &r.function {
        // `name`, or `name:3` / `name:alias` (a published version or an alias).
        let (base, qualifier) = split_qualifier(f.get_ref());
        if !functions.contains_key(base) {
            let msg = c_unknown_function(base);
            c.err(f, rk, msg);
        } else if qualifier.is_some_and(|q| !valid_qualifier(q)) {
            c.err(
                f,
                rk,
                "a qualifier is a version number, an alias name (letters, digits, '-', '_') or $LATEST",
            );
        }
        Integration::Function {
            name: f.get_ref().clone(),
        }
    } else if kind == ApiKind::WebSocket {
        c.err(raw, rk, "WebSocket routes take a function integration");
        return None;
    } else if let Some(u) = &r.http {
        Integration::Http {
            url: url_template(c, key, u, rk)?,
        }
    } else {
        let m = r.mock.as_ref().expect("one integration is set").get_ref();
        let status_key: Vec<&str> = rk.iter().copied().chain(["mock", "status"]).collect();
        let status = c.ranged(&m.status, &status_key, 100..=599, "(an HTTP status)", 200);
        Integration::Mock(Mock {
            status: status as u16,
            headers: m.headers.clone(),
            body: m.body.clone(),
        })
    };

    let streams = r
        .transfer_mode
        .as_ref()
        .is_some_and(|m| m.get_ref() == "STREAM");
    let max_ms = match kind {
        // A REST route that streams may wait 15 minutes, as on AWS.
        ApiKind::Rest if streams => 900_000,
        ApiKind::Rest => REST_INTEGRATION_TIMEOUT_MS,
        _ => HTTP_INTEGRATION_TIMEOUT_MS,
    };
    let timeout_key: Vec<&str> = rk.iter().copied().chain(["timeout_ms"]).collect();
    let timeout_ms = c.ranged(
        &r.timeout_ms,
        &timeout_key,
        MIN_INTEGRATION_TIMEOUT_MS as i64..=max_ms as i64,
        "milliseconds",
        max_ms as i64,
    );

    let respond = match &r.respond {
        None => false,
        Some(s) => {
            let what = match (kind, key) {
                (ApiKind::WebSocket, RouteKey::WebSocket(k)) if k.starts_with('$') => {
                    Some(format!("{k} cannot send a route response"))
                }
                (ApiKind::WebSocket, _) => None,
                _ => Some("respond applies to websocket routes only".to_owned()),
            };
            if let Some(msg) = what {
                let k: Vec<&str> = rk.iter().copied().chain(["respond"]).collect();
                c.err(s, &k, msg);
            }
            *s.get_ref()
        }
    };

    let default_payload = match kind {
        ApiKind::Http => PayloadFormat::V2,
        _ => PayloadFormat::V1,
    };
    let payload = match &r.payload {
        None => default_payload,
        Some(p) => {
            let k: Vec<&str> = rk.iter().copied().chain(["payload"]).collect();
            if !matches!(integration, Integration::Function { .. }) {
                c.err(p, &k, "payload applies to function routes only");
                default_payload
            } else {
                match (p.get_ref().as_str(), kind) {
                    ("1.0", _) => PayloadFormat::V1,
                    ("2.0", ApiKind::Http) => PayloadFormat::V2,
                    ("2.0", _) => {
                        c.err(p, &k, "REST and WebSocket APIs send payload 1.0 only");
                        default_payload
                    }
                    _ => {
                        c.err(p, &k, "payload is \"1.0\" or \"2.0\"");
                        default_payload
                    }
                }
            }
        }
    };
    let throttle_key: Vec<&str> = rk.iter().copied().chain(["throttle"]).collect();
    let throttle = throttle(c, &r.throttle, &throttle_key);
    let connect = matches!(key, RouteKey::WebSocket(k) if k == "$connect");
    // `authorizer = "AWS_IAM"`: SigV4-signed callers (IAM authorization).
    let iam = r
        .authorizer
        .as_ref()
        .is_some_and(|a| a.get_ref() == "AWS_IAM" && !authorizers.contains_key("AWS_IAM"));
    if iam && kind == ApiKind::WebSocket {
        let k: Vec<&str> = rk.iter().copied().chain(["authorizer"]).collect();
        c.err(
            r.authorizer.as_ref().expect("set"),
            &k,
            "AWS_IAM authorization is served on REST and HTTP routes",
        );
    }
    let authorizer = r.authorizer.as_ref().filter(|_| !iam).and_then(|a| {
        let k: Vec<&str> = rk.iter().copied().chain(["authorizer"]).collect();
        if kind == ApiKind::WebSocket && !connect {
            c.err(
                a,
                &k,
                "on WebSocket APIs only $connect takes an authorizer (as on AWS)",
            );
            return None;
        }
        match authorizers.get(a.get_ref()) {
            Some(found) => Some(found.clone()),
            None => {
                let known: Vec<&str> = authorizers.keys().map(String::as_str).collect();
                let hint = if known.is_empty() {
                    "; declare it under [apis.NAME.authorizers.AUTH]".to_owned()
                } else {
                    format!(" (this API's: {})", known.join(", "))
                };
                c.err(a, &k, format!("unknown authorizer {:?}{hint}", a.get_ref()));
                None
            }
        }
    });
    let scopes = match &r.scopes {
        None => Vec::new(),
        Some(s) => {
            if !authorizer
                .as_ref()
                .is_some_and(|a| matches!(a.kind, AuthorizerKind::Jwt { .. }))
            {
                let k: Vec<&str> = rk.iter().copied().chain(["scopes"]).collect();
                c.err(s, &k, "scopes apply to routes with a jwt authorizer");
            }
            s.get_ref().clone()
        }
    };
    let api_key_required = match &r.api_key_required {
        None => false,
        Some(b) => {
            let k: Vec<&str> = rk.iter().copied().chain(["api_key_required"]).collect();
            if kind == ApiKind::Http {
                c.err(
                    b,
                    &k,
                    "HTTP APIs have no API keys (on AWS neither): use a rest API, or an authorizer",
                );
            } else if kind == ApiKind::WebSocket && !connect {
                c.err(
                    b,
                    &k,
                    "on WebSocket APIs only $connect checks API keys (as on AWS)",
                );
            }
            *b.get_ref()
        }
    };
    let cache = match &r.cache {
        None => RouteCache::default(),
        Some(raw) => {
            let k: Vec<&str> = rk.iter().copied().chain(["cache"]).collect();
            if kind != ApiKind::Rest {
                c.err(raw, &k, "the response cache is REST stages' (as on AWS)");
            }
            let rc = raw.get_ref();
            let ttl = rc.ttl.as_ref().map(|_| {
                let kt: Vec<&str> = k.iter().copied().chain(["ttl"]).collect();
                Duration::from_secs(
                    c.ranged(&rc.ttl, &kt, 0..=MAX_CACHE_TTL_SECS, "seconds", 0) as u64
                )
            });
            let keys = rc.keys.as_ref().map(|keys| {
                let kk: Vec<&str> = k.iter().copied().chain(["keys"]).collect();
                cache_keys(c, keys, &kk, Some(key))
            });
            RouteCache {
                enabled: rc.enabled.as_ref().map(|b| *b.get_ref()),
                ttl,
                keys,
            }
        }
    };
    let stream = match &r.transfer_mode {
        None => false,
        Some(m) => {
            let k: Vec<&str> = rk.iter().copied().chain(["transfer_mode"]).collect();
            match m.get_ref().as_str() {
                "BUFFERED" => false,
                "STREAM" if kind != ApiKind::Rest => {
                    c.err(
                        m,
                        &k,
                        "responses are streamed on REST routes (and function URLs)",
                    );
                    false
                }
                "STREAM" if !matches!(integration, Integration::Function { .. }) => {
                    c.err(m, &k, "a streamed response comes from a function route");
                    false
                }
                "STREAM" => true,
                other => {
                    c.err(m, &k, format!("{other:?} is not BUFFERED or STREAM"));
                    false
                }
            }
        }
    };
    let mapping = mapping(c, kind, &integration, r, rk);
    Some(Route {
        key: key.clone(),
        integration,
        timeout: Duration::from_millis(timeout_ms as u64),
        respond,
        payload,
        throttle,
        authorizer,
        scopes,
        api_key_required,
        cache,
        stream,
        mapping,
        validation: None,
        iam: iam && kind != ApiKind::WebSocket,
        request_parameters: Vec::new(),
    })
}

/// A route's mapping templates and integration responses (REST routes: a
/// `mock`, or a `function`/`http` route with `proxy = false`); each
/// template parsed here, its mistakes named with the route and the
/// template's own line.
fn mapping(
    c: &mut Checker<'_>,
    kind: ApiKind,
    integration: &Integration,
    r: &RawRoute,
    rk: &[&str],
) -> Option<Arc<Mapping>> {
    let at = |k: &[&str]| -> Vec<String> { rk.iter().chain(k).map(|s| (*s).to_owned()).collect() };
    let non_proxy = match &r.proxy {
        Some(p) if !*p.get_ref() => {
            if matches!(integration, Integration::Mock(_)) {
                c.err(
                    p,
                    &refs(&at(&["proxy"])),
                    "a mock is never a proxy: proxy applies to function and http routes",
                );
            }
            true
        }
        _ => false,
    };
    // The first mapping key the route gives, where a mistake is named.
    let given = [
        (
            "request_templates",
            r.request_templates.as_ref().map(Spanned::span),
        ),
        ("responses", r.responses.as_ref().map(Spanned::span)),
        ("passthrough", r.passthrough.as_ref().map(Spanned::span)),
        (
            "content_handling",
            r.content_handling.as_ref().map(Spanned::span),
        ),
    ]
    .into_iter()
    .find_map(|(k, span)| Some((k, span?)));
    let templated_mock = given.is_some() && matches!(integration, Integration::Mock(_));
    if !(non_proxy || templated_mock) {
        if let Some((key, span)) = given {
            let msg = "mapping templates and responses apply to mock routes and to function and http routes with proxy = false";
            c.err_at(span, &refs(&at(&[key])), msg);
        }
        return None;
    }
    if kind != ApiKind::Rest {
        let msg = "mapping templates are REST APIs' (as on AWS)";
        match (&r.proxy, given) {
            (Some(p), _) => c.err(p, &refs(&at(&["proxy"])), msg),
            (None, Some((key, span))) => c.err_at(span, &refs(&at(&[key])), msg),
            (None, None) => {}
        }
        return None;
    }
    let passthrough = match r.passthrough.as_ref().map(|p| (p, p.get_ref().as_str())) {
        None | Some((_, "WHEN_NO_MATCH")) => Passthrough::WhenNoMatch,
        Some((_, "WHEN_NO_TEMPLATES")) => Passthrough::WhenNoTemplates,
        Some((_, "NEVER")) => Passthrough::Never,
        Some((p, other)) => {
            let msg = format!("{other:?} is not WHEN_NO_MATCH, WHEN_NO_TEMPLATES or NEVER");
            c.err(p, &refs(&at(&["passthrough"])), msg);
            Passthrough::WhenNoMatch
        }
    };
    let templates = |c: &mut Checker<'_>, raw: &BTreeMap<String, Spanned<String>>, k: &[&str]| {
        let mut out = Vec::new();
        for (ct, text) in raw {
            match stratus_vtl::Template::parse(text.get_ref()) {
                Ok(t) => out.push((ct.to_ascii_lowercase(), Arc::new(t))),
                Err(e) => {
                    let key: Vec<String> = at(k).into_iter().chain([ct.clone()]).collect();
                    c.err(text, &refs(&key), format!("the {ct} template: {e}"));
                }
            }
        }
        out
    };
    let request_templates = match &r.request_templates {
        Some(t) => templates(c, t.get_ref(), &["request_templates"]),
        None => Vec::new(),
    };
    let mut responses = Vec::new();
    if let Some(list) = &r.responses {
        for (i, raw) in list.get_ref().iter().enumerate() {
            let n = i.to_string();
            let base = ["responses", n.as_str()];
            let resp = raw.get_ref();
            let pattern = resp.pattern.as_ref().and_then(|p| {
                match regex::Regex::new(&format!("^(?:{})$", p.get_ref())) {
                    Ok(re) => Some(re),
                    Err(e) => {
                        let key = at(&[base[0], base[1], "pattern"]);
                        let why = e.to_string();
                        let why = why
                            .lines()
                            .last()
                            .unwrap_or_default()
                            .trim_start_matches("error: ");
                        c.err(p, &refs(&key), format!("not a regular expression: {why}"));
                        None
                    }
                }
            });
            let status_key = at(&[base[0], base[1], "status"]);
            let status = c.ranged(
                &resp.status,
                &refs(&status_key),
                100..=599,
                "(an HTTP status)",
                200,
            );
            let resp_templates = templates(c, &resp.templates, &[base[0], base[1], "templates"]);
            let mut headers = Vec::new();
            for (h, v) in &resp.headers {
                match mapped_value(v.get_ref(), "integration.response") {
                    Some(mv) => headers.push((h.clone(), mv)),
                    None => {
                        let key: Vec<String> = at(&[base[0], base[1], "headers"])
                            .into_iter()
                            .chain([h.clone()])
                            .collect();
                        c.err(v, &refs(&key), "a header's value is 'text' (quoted), integration.response.header.NAME, integration.response.body or integration.response.body.FIELD");
                    }
                }
            }
            let handling_key = at(&[base[0], base[1], "content_handling"]);
            let content_handling =
                content_handling(c, resp.content_handling.as_ref(), &refs(&handling_key));
            responses.push(IntegrationResponse {
                pattern,
                status: status as u16,
                templates: resp_templates,
                headers,
                content_handling,
            });
        }
    }
    let handling_key = at(&["content_handling"]);
    let content_handling = content_handling(c, r.content_handling.as_ref(), &refs(&handling_key));
    Some(Arc::new(Mapping {
        request_templates,
        passthrough,
        responses,
        content_handling,
    }))
}

fn content_handling(
    c: &mut Checker<'_>,
    raw: Option<&Spanned<String>>,
    key: &[&str],
) -> Option<ContentHandling> {
    let raw = raw?;
    match raw.get_ref().as_str() {
        "CONVERT_TO_TEXT" => Some(ContentHandling::ToText),
        "CONVERT_TO_BINARY" => Some(ContentHandling::ToBinary),
        other => {
            c.err(
                raw,
                key,
                format!("{other:?} is not CONVERT_TO_TEXT or CONVERT_TO_BINARY"),
            );
            None
        }
    }
}

/// `[apis.NAME.models]`: each a JSON Schema (draft 4 as API Gateway's,
/// or the draft its `$schema` names), compiled here.
fn models(
    c: &mut Checker<'_>,
    api: &str,
    kind: ApiKind,
    a: &RawApi,
) -> BTreeMap<String, Arc<Model>> {
    let mut out = BTreeMap::new();
    for (name, text) in &a.models {
        let k = ["apis", api, "models", name.as_str()];
        if kind != ApiKind::Rest {
            c.err(text, &k, "models validate REST requests (as on AWS)");
            continue;
        }
        let schema: serde_json::Value = match serde_json::from_str(text.get_ref()) {
            Ok(v) => v,
            Err(e) => {
                c.err(
                    text,
                    &k,
                    format!("a model is a JSON Schema, and this is not JSON: {e}"),
                );
                continue;
            }
        };
        // API Gateway's models are draft 4 unless they say otherwise.
        let compiled = match schema.get("$schema") {
            Some(_) => jsonschema::validator_for(&schema),
            None => jsonschema::draft4::new(&schema),
        };
        match compiled {
            Ok(v) => {
                out.insert(
                    name.clone(),
                    Arc::new(Model {
                        name: name.clone(),
                        schema: v,
                    }),
                );
            }
            Err(e) => c.err(text, &k, format!("not a valid JSON Schema: {e}")),
        }
    }
    out
}

/// A resource policy document: its statements about `execute-api:Invoke`
/// (others are left out), with `aws:SourceIp` conditions; a condition
/// that cannot hold locally (a VPC, an organization) is refused by name.
pub fn resource_policy(text: &str) -> Result<ResourcePolicy, String> {
    let doc: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| format!("a policy is an IAM JSON document, and this is not JSON: {e}"))?;
    let list = |v: Option<&serde_json::Value>| -> Vec<String> {
        match v {
            Some(serde_json::Value::String(s)) => vec![s.clone()],
            Some(serde_json::Value::Array(a)) => a
                .iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        }
    };
    let statements = match doc.get("Statement") {
        Some(serde_json::Value::Array(a)) => a.clone(),
        Some(one @ serde_json::Value::Object(_)) => vec![one.clone()],
        _ => return Err("a policy needs a Statement".into()),
    };
    let mut out = Vec::new();
    for (i, st) in statements.iter().enumerate() {
        let actions = list(st.get("Action"));
        let invokes = actions.iter().any(|a| {
            let a = a.to_ascii_lowercase();
            a == "*" || a == "execute-api:*" || a == "execute-api:invoke"
        });
        if !invokes {
            continue;
        }
        let allow = match st.get("Effect").and_then(|e| e.as_str()) {
            Some("Allow") => true,
            Some("Deny") => false,
            other => {
                return Err(format!(
                    "statement {i}: Effect is Allow or Deny, not {other:?}"
                ))
            }
        };
        let resources = list(st.get("Resource"));
        let not_resources = list(st.get("NotResource"));
        if resources.is_empty() && not_resources.is_empty() {
            return Err(format!("statement {i} names no Resource"));
        }
        let mut source_ip = None;
        if let Some(serde_json::Value::Object(conds)) = st.get("Condition") {
            for (op, keys) in conds {
                let serde_json::Value::Object(keys) = keys else {
                    return Err(format!("statement {i}: Condition {op} is not an object"));
                };
                for (key, values) in keys {
                    let positive = match op.as_str() {
                        "IpAddress" => true,
                        "NotIpAddress" => false,
                        _ => {
                            return Err(format!(
                                "statement {i}: the condition {op} on {key} is not evaluated locally (IpAddress and NotIpAddress on aws:SourceIp are)"
                            ))
                        }
                    };
                    if !key.eq_ignore_ascii_case("aws:SourceIp") {
                        return Err(format!(
                            "statement {i}: {key} cannot hold locally (there is no VPC or organization here); aws:SourceIp is evaluated"
                        ));
                    }
                    let mut nets = Vec::new();
                    for v in list(Some(values)) {
                        let net = v
                            .parse::<ipnet::IpNet>()
                            .or_else(|_| v.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                            .map_err(|_| {
                                format!("statement {i}: {v:?} is not an IP address or CIDR range")
                            })?;
                        nets.push(net);
                    }
                    source_ip = Some((positive, nets));
                }
            }
        }
        out.push(PolicyStatement {
            allow,
            resources,
            not_resources,
            source_ip,
        });
    }
    Ok(ResourcePolicy { statements: out })
}

/// `[apis.NAME.gateway_responses.TYPE]`: the gateway's own answers.
fn gateway_responses(
    c: &mut Checker<'_>,
    api: &str,
    kind: ApiKind,
    a: &RawApi,
) -> BTreeMap<String, GatewayResponse> {
    let mut out = BTreeMap::new();
    for (ty, raw) in &a.gateway_responses {
        let k = ["apis", api, "gateway_responses", ty.as_str()];
        if kind != ApiKind::Rest {
            c.err(raw, &k, "gateway responses are REST APIs' (as on AWS)");
            continue;
        }
        if !GATEWAY_RESPONSE_TYPES.contains(&ty.as_str()) {
            let msg = format!(
                "{ty:?} is not a gateway response type ({})",
                GATEWAY_RESPONSE_TYPES.join(", ")
            );
            c.err(raw, &k, msg);
            continue;
        }
        let r = raw.get_ref();
        let status = r.status.as_ref().map(|_| {
            let sk: Vec<&str> = k.iter().copied().chain(["status"]).collect();
            c.ranged(&r.status, &sk, 100..=599, "(an HTTP status)", 200) as u16
        });
        let mut headers = Vec::new();
        for (h, v) in &r.headers {
            match mapped_value(v.get_ref(), "method.request") {
                Some(
                    mv @ (MappedValue::Static(_)
                    | MappedValue::Header(_)
                    | MappedValue::Query(_)
                    | MappedValue::Path(_)),
                ) => headers.push((h.clone(), mv)),
                _ => {
                    let hk: Vec<&str> = k.iter().copied().chain(["headers", h.as_str()]).collect();
                    c.err(v, &hk, "a header's value is 'text' (quoted) or method.request.header|querystring|path.NAME");
                }
            }
        }
        let mut templates = Vec::new();
        for (ct, text) in &r.templates {
            match stratus_vtl::Template::parse(text.get_ref()) {
                Ok(t) => templates.push((ct.to_ascii_lowercase(), Arc::new(t))),
                Err(e) => {
                    let tk: Vec<&str> = k
                        .iter()
                        .copied()
                        .chain(["templates", ct.as_str()])
                        .collect();
                    c.err(text, &tk, format!("the {ct} template: {e}"));
                }
            }
        }
        out.insert(
            ty.clone(),
            GatewayResponse {
                status,
                headers,
                templates,
            },
        );
    }
    out
}

/// An `http` route's `request_parameters`: `integration.request.header.X`
/// or `.querystring.X` = `'text'` or `method.request.header|querystring|path.Y`.
fn request_parameters(
    c: &mut Checker<'_>,
    kind: ApiKind,
    route: &Route,
    r: &RawRoute,
    rk: &[&str],
) -> Vec<(MappedTarget, MappedValue)> {
    let Some(raw) = &r.request_parameters else {
        return Vec::new();
    };
    let k: Vec<&str> = rk.iter().copied().chain(["request_parameters"]).collect();
    if kind == ApiKind::WebSocket || !matches!(route.integration, Integration::Http { .. }) {
        c.err(
            raw,
            &k,
            "request_parameters map what an http route sends its upstream",
        );
        return Vec::new();
    }
    let mut out = Vec::new();
    for (target, source) in raw.get_ref() {
        let t = if let Some(n) = target.strip_prefix("integration.request.header.") {
            Some(MappedTarget::Header(n.to_owned()))
        } else {
            target
                .strip_prefix("integration.request.querystring.")
                .map(|n| MappedTarget::Query(n.to_owned()))
        };
        let v = match mapped_value(source.get_ref(), "method.request") {
            Some(
                v @ (MappedValue::Static(_)
                | MappedValue::Header(_)
                | MappedValue::Query(_)
                | MappedValue::Path(_)),
            ) => Some(v),
            _ => None,
        };
        match (t, v) {
            (Some(t), Some(v)) => out.push((t, v)),
            (None, _) => {
                let kk: Vec<&str> = k.iter().copied().chain([target.as_str()]).collect();
                c.err(source, &kk, "a mapping writes integration.request.header.NAME or integration.request.querystring.NAME");
            }
            (_, None) => {
                let kk: Vec<&str> = k.iter().copied().chain([target.as_str()]).collect();
                c.err(source, &kk, "a mapping reads 'text' (quoted) or method.request.header|querystring|path.NAME");
            }
        }
    }
    out
}

/// A route's request validator: `validate` (`body`, `parameters`, `all`),
/// its `request_models` and `required_parameters`.
fn validation(
    c: &mut Checker<'_>,
    kind: ApiKind,
    r: &RawRoute,
    rk: &[&str],
    models: &BTreeMap<String, Arc<Model>>,
) -> Option<Arc<Validation>> {
    let key = |k: &str| -> Vec<String> {
        rk.iter()
            .map(|s| (*s).to_owned())
            .chain([k.to_owned()])
            .collect()
    };
    let v = r.validate.as_ref()?;
    if kind != ApiKind::Rest {
        c.err(
            v,
            &refs(&key("validate")),
            "request validators are REST APIs' (as on AWS)",
        );
        return None;
    }
    let (body, params) = match v.get_ref().as_str() {
        "body" => (true, false),
        "parameters" => (false, true),
        "all" => (true, true),
        "none" => (false, false),
        other => {
            let msg = format!("{other:?} is not body, parameters, all or none");
            c.err(v, &refs(&key("validate")), msg);
            return None;
        }
    };
    let mut out = Validation {
        body: Vec::new(),
        parameters: Vec::new(),
    };
    if let Some(m) = &r.request_models {
        for (ct, model) in m.get_ref() {
            match models.get(model.get_ref()) {
                Some(found) if body => out.body.push((ct.to_ascii_lowercase(), found.clone())),
                Some(_) => {}
                None => {
                    let k: Vec<String> = key("request_models")
                        .into_iter()
                        .chain([ct.clone()])
                        .collect();
                    let known: Vec<&str> = models.keys().map(String::as_str).collect();
                    let msg = format!(
                        "no model {:?} in the API's models (it has: {})",
                        model.get_ref(),
                        if known.is_empty() {
                            "none".to_owned()
                        } else {
                            known.join(", ")
                        }
                    );
                    c.err(model, &refs(&k), msg);
                }
            }
        }
    }
    if let Some(list) = &r.required_parameters {
        for p in list.get_ref() {
            let parsed = p.get_ref().split_once('.').and_then(|(loc, name)| {
                let location = match loc {
                    "querystring" => ParameterLocation::Query,
                    "header" => ParameterLocation::Header,
                    "path" => ParameterLocation::Path,
                    _ => return None,
                };
                (!name.is_empty()).then(|| RequiredParameter {
                    location,
                    name: name.to_owned(),
                })
            });
            match parsed {
                Some(rp) if params => out.parameters.push(rp),
                Some(_) => {}
                None => c.err(
                    p,
                    &refs(&key("required_parameters")),
                    format!(
                        "{:?} is not querystring.NAME, header.NAME or path.NAME",
                        p.get_ref()
                    ),
                ),
            }
        }
    }
    Some(Arc::new(out))
}

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// `'text'`, or `PREFIX.header.NAME`, `PREFIX.body`, `PREFIX.body.FIELD`
/// (also `method.request.querystring.NAME`/`path.NAME` for requests).
pub(crate) fn mapped_value(v: &str, prefix: &str) -> Option<MappedValue> {
    if let Some(text) = v.strip_prefix('\'').and_then(|t| t.strip_suffix('\'')) {
        return Some(MappedValue::Static(text.to_owned()));
    }
    let rest = v.strip_prefix(prefix)?.strip_prefix('.')?;
    if let Some(name) = rest.strip_prefix("header.") {
        return Some(MappedValue::Header(name.to_owned()));
    }
    if let Some(name) = rest.strip_prefix("querystring.") {
        return Some(MappedValue::Query(name.to_owned()));
    }
    if let Some(name) = rest.strip_prefix("path.") {
        return Some(MappedValue::Path(name.to_owned()));
    }
    if rest == "body" {
        return Some(MappedValue::Body);
    }
    rest.strip_prefix("body.")
        .map(|field| MappedValue::BodyPath(format!("$.{field}")))
}

/// `deployment = "latest" | ID`.
fn deployment_ref(
    c: &mut Checker<'_>,
    raw: &Option<Spanned<toml::Value>>,
    at: &[&str],
) -> DeploymentRef {
    let Some(v) = raw else {
        return DeploymentRef::Latest;
    };
    match v.get_ref() {
        toml::Value::String(s) if s == "latest" => DeploymentRef::Latest,
        toml::Value::Integer(n) if (1..=i64::from(u32::MAX)).contains(n) => {
            DeploymentRef::Id(*n as u32)
        }
        _ => {
            c.err(
                v,
                at,
                "a deployment is \"latest\" or a deployment's id (stratus deployments lists them)",
            );
            DeploymentRef::Latest
        }
    }
}

/// `canary = { deployment, percent, variables }`.
fn canary(c: &mut Checker<'_>, raw: &Spanned<RawCanary>, at: &[&str]) -> Option<Canary> {
    let r = raw.get_ref();
    let key = |k: &'static str| -> Vec<&str> { at.iter().copied().chain([k]).collect() };
    let deployment = *r.deployment.get_ref();
    let percent = *r.percent.get_ref();
    let mut ok = true;
    if !(1..=i64::from(u32::MAX)).contains(&deployment) {
        c.err(
            &r.deployment,
            &key("deployment"),
            "a deployment's id: 1 or more",
        );
        ok = false;
    }
    if !(0.0..=100.0).contains(&percent) {
        c.err(
            &r.percent,
            &key("percent"),
            "a percentage of the requests: 0.0 to 100.0",
        );
        ok = false;
    }
    ok.then(|| Canary {
        deployment: deployment as u32,
        percent,
        variables: r.variables.clone(),
    })
}

/// `cache = { ttl, keys, client_refresh, size_mb }` of a stage.
fn stage_cache(
    c: &mut Checker<'_>,
    kind: ApiKind,
    raw: &Spanned<RawStageCache>,
    at: &[&str],
) -> Option<StageCache> {
    if kind != ApiKind::Rest {
        c.err(raw, at, "the response cache is REST stages' (as on AWS)");
        return None;
    }
    let key = |k: &'static str| -> Vec<&str> { at.iter().copied().chain([k]).collect() };
    let r = raw.get_ref();
    let ttl = c.ranged(
        &r.ttl,
        &key("ttl"),
        0..=MAX_CACHE_TTL_SECS,
        "seconds",
        DEFAULT_CACHE_TTL_SECS as i64,
    );
    let size_mb = c.ranged(&r.size_mb, &key("size_mb"), 1..=65536, "MB", 128);
    let keys = match &r.keys {
        Some(keys) => cache_keys(c, keys, &key("keys"), None),
        None => Vec::new(),
    };
    Some(StageCache {
        ttl: Duration::from_secs(ttl as u64),
        keys,
        client_refresh: r.client_refresh.as_ref().is_some_and(|b| *b.get_ref()),
        max_bytes: size_mb as u64 * 1024 * 1024,
    })
}

fn has_param(key: &RouteKey, name: &str) -> bool {
    match key {
        RouteKey::Http { path, .. } => path
            .segments
            .iter()
            .any(|s| matches!(s, Segment::Param(n) | Segment::Greedy(n) if n == name)),
        _ => false,
    }
}

/// Cache key parameters: `querystring.NAME`, `header.NAME`, `path.NAME`
/// (API Gateway's `method.request.` prefix accepted); a route's path
/// parameters must be its own.
fn cache_keys(
    c: &mut Checker<'_>,
    raw: &[Spanned<String>],
    at: &[&str],
    route: Option<&RouteKey>,
) -> Vec<CacheKey> {
    let mut out = Vec::new();
    for k in raw {
        let text = k.get_ref();
        let bare = text.strip_prefix("method.request.").unwrap_or(text);
        let parsed = match bare.split_once('.') {
            Some(("querystring", n)) if !n.is_empty() => Some(CacheKey::Query(n.to_owned())),
            Some(("header", n)) if !n.is_empty() => Some(CacheKey::Header(n.to_ascii_lowercase())),
            Some(("path", n)) if !n.is_empty() => Some(CacheKey::Path(n.to_owned())),
            _ => None,
        };
        match parsed {
            None => c.err(
                k,
                at,
                format!("{text:?} is not a cache key: querystring.NAME, header.NAME or path.NAME"),
            ),
            Some(CacheKey::Path(n)) if route.is_some_and(|r| !has_param(r, &n)) => {
                c.err(k, at, format!("the route has no path parameter {{{n}}}"));
            }
            Some(p) => out.push(p),
        }
    }
    out
}

/// Largest `rate` and `burst` accepted (far past what one machine serves).
const MAX_THROTTLE: f64 = 1_000_000.0;

fn throttle(
    c: &mut Checker<'_>,
    raw: &Option<Spanned<RawThrottle>>,
    key: &[&str],
) -> Option<Throttle> {
    throttle_of(c, raw.as_ref()?, key)
}

fn throttle_of(c: &mut Checker<'_>, raw: &Spanned<RawThrottle>, key: &[&str]) -> Option<Throttle> {
    let t = raw.get_ref();
    let rate = *t.rate.get_ref();
    let rate_key: Vec<&str> = key.iter().copied().chain(["rate"]).collect();
    if !(0.0..=MAX_THROTTLE).contains(&rate) {
        c.err(
            &t.rate,
            &rate_key,
            format!("{rate} is out of range: must be 0..={MAX_THROTTLE} requests a second"),
        );
    }
    let burst_key: Vec<&str> = key.iter().copied().chain(["burst"]).collect();
    let burst = c.ranged(
        &Some(t.burst.clone()),
        &burst_key,
        0..=MAX_THROTTLE as i64,
        "requests",
        0,
    );
    Some(Throttle {
        rate: if rate.is_nan() {
            0.0
        } else {
            rate.clamp(0.0, MAX_THROTTLE)
        },
        burst: burst as u32,
    })
}

/// Parses an `http` integration's URL once, at load; `{name}` must be a
/// path parameter of the route.
fn url_template(
    c: &mut Checker<'_>,
    key: &RouteKey,
    url: &Spanned<String>,
    rk: &[&str],
) -> Option<UrlTemplate> {
    let u = url.get_ref();
    if u.starts_with("https://") {
        c.err(
            url,
            rk,
            format!("http integration URL {u:?}: https:// upstreams are not supported yet (Stratus has no TLS client); use http://"),
        );
        return None;
    }
    if !u.starts_with("http://") {
        c.err(
            url,
            rk,
            format!("http integration URL {u:?} must start with http://"),
        );
        return None;
    }
    let template = match UrlTemplate::parse(u) {
        Ok(t) => t,
        Err(e) => {
            c.err(url, rk, e);
            return None;
        }
    };
    let params: Vec<&str> = match key {
        RouteKey::Http { path, .. } => path.params().collect(),
        _ => Vec::new(),
    };
    for name in template.params() {
        if !params.contains(&name) {
            c.err(
                url,
                rk,
                format!("URL placeholder {{{name}}} is not a path parameter of this route"),
            );
        }
    }
    Some(template)
}

/// Two stages (of one API or of two) may not be served at the same path of
/// the listener (an API served only at its own host is not at its paths),
/// and two APIs may not have one id (one host).
fn check_mounts(c: &mut Checker<'_>, raw: &RawConfig, apis: &[Arc<Api>]) {
    let mut seen: HashMap<&str, (&str, &str)> = HashMap::new();
    let mut ids: HashMap<&str, &str> = HashMap::new();
    for api in apis {
        if let Some(other) = ids.insert(api.id.as_str(), api.name.as_str()) {
            let at = &raw.apis[&api.name];
            c.err(
                at,
                &["apis", &api.name],
                format!(
                    "API {other:?} has the id {:?} too; give one of them another id",
                    api.id
                ),
            );
        }
        if api.host_only {
            continue;
        }
        for stage in &api.stages {
            if let Some((other_api, other_stage)) = seen.insert(
                stage.mount.as_str(),
                (api.name.as_str(), stage.name.as_str()),
            ) {
                let msg = format!(
                    "stage {:?} is served at {:?}, where API {other_api:?} (stage {other_stage:?}) is already served; give one of them another base_path, or `host_only = true` to serve it only at its own host ({}.execute-api.localhost)",
                    stage.name, stage.mount, api.id
                );
                let at = &raw.apis[&api.name];
                c.err(at, &["apis", &api.name], msg);
            }
        }
    }
}
