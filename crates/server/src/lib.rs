//! Binds Stratus's listeners and runs them until shutdown:
//! - the public gateway (`server.listen`), one hyper connection per client;
//! - the admin listener (`server.admin_listen`): health, readiness, and in
//!   later versions the dashboard and the management APIs.
//!
//! Shutdown is graceful: on the signal both listeners stop accepting,
//! in-flight requests get `server.shutdown_grace` to finish, then the rest
//! are closed. Nothing here decides how a request is answered: that is the
//! gateway's job.

mod listener;
pub mod tls;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context as _;
use hyper::service::service_fn;
use stratus_config::App;
use stratus_gateway::Gateway;
use stratus_runtime::Runtime;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// File descriptors kept out of the connection budget: function pipes,
/// Runtime API sockets, upstream connections, log files.
const FILES_KEPT: u64 = 512;

/// Listeners bound and ready to run.
pub struct Server {
    app: Arc<App>,
    gateway: TcpListener,
    admin: TcpListener,
    functions: Runtime,
    /// API keys and their usage (the data directory's `keys.db`), when
    /// the project has usage plans or keys.
    keys: Option<Arc<stratus_state::ApiKeys>>,
    /// Buckets and objects (the data directory's `objects/`).
    objects: Arc<dyn stratus_state::objects::ObjectStore>,
    databases: Arc<stratus_state::databases::Databases>,
    /// The running template as a stack, for the admin listener.
    stack: Option<Arc<stratus_admin::StackInfo>>,
    /// The local CA and the public listener's TLS (`server.tls`).
    tls: Option<tls::LocalCa>,
    /// The fleet's throttle buckets (`cluster.redis`), else per gateway.
    limiter: Option<Arc<dyn stratus_state::RateLimiter>>,
    /// Objects the buckets' `source` copied in at start: their
    /// notifications are sent once the server runs.
    seeded: Vec<Seeded>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("gateway", &self.gateway_addr())
            .field("admin", &self.admin_addr())
            .finish()
    }
}

impl Server {
    /// Binds both listeners (port 0 picks a free port: see `*_addr`) and
    /// prepares every function (builds, dependencies, warm environments), so
    /// that once this returns, requests are served at once.
    pub async fn bind(app: App) -> anyhow::Result<Server> {
        let gateway = TcpListener::bind(app.server.listen)
            .await
            .with_context(|| format!("cannot listen on {} (server.listen)", app.server.listen))?;
        let admin = TcpListener::bind(app.server.admin_listen)
            .await
            .with_context(|| {
                format!(
                    "cannot listen on {} (server.admin_listen)",
                    app.server.admin_listen
                )
            })?;
        let admin_url = format!("http://{}", admin.local_addr()?);
        // What every function needs to call back: the admin endpoint and
        // credentials its SDK signs with.
        let creds = &app.server.credentials;
        let mut env = vec![
            ("AWS_ENDPOINT_URL_S3".into(), format!("{admin_url}/s3")),
            ("AWS_ENDPOINT_URL_RDS_DATA".into(), admin_url.clone()),
            ("STRATUS_ADMIN_URL".into(), admin_url.clone()),
            ("AWS_ACCESS_KEY_ID".into(), creds.access_key_id.clone()),
            (
                "AWS_SECRET_ACCESS_KEY".into(),
                creds.secret_access_key.clone(),
            ),
        ];
        // Functions call Lambda (an async Invoke of another function) with
        // no endpoint of their own, as on AWS.
        env.push(("AWS_ENDPOINT_URL_LAMBDA".into(), admin_url));
        let tls = if app.server.tls {
            let ca = tls::LocalCa::open(&app.server.data_dir, gateway.local_addr()?)?;
            env.extend(ca.function_env());
            Some(ca)
        } else {
            None
        };
        let keys = open_keys(&app).await?;
        let limiter = open_limiter(&app).await?;
        let (objects, seeded) = open_objects(&app).await?;
        let databases = open_databases(&app).await?;
        stratus_telemetry::logstore::store().set_bytes_per_function(app.server.function_log_bytes);
        for db in &databases.all {
            let var = db.name.to_ascii_uppercase().replace('-', "_");
            env.push((format!("STRATUS_DB_{var}_URL"), db.url.clone()));
            env.push((format!("STRATUS_DB_{var}_ARN"), db.arn.clone()));
        }
        let functions = Runtime::start(&app, env).await?;
        Ok(Server {
            app: Arc::new(app),
            gateway,
            admin,
            functions,
            keys,
            objects,
            databases,
            stack: None,
            tls,
            seeded,
            limiter,
        })
    }

    /// Answers CloudFormation's read calls for `stack` (a template's).
    pub fn set_stack(&mut self, stack: stratus_admin::StackInfo) {
        self.stack = Some(Arc::new(stack));
    }

    pub fn gateway_addr(&self) -> SocketAddr {
        self.gateway
            .local_addr()
            .expect("bound listener has an address")
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin
            .local_addr()
            .expect("bound listener has an address")
    }

    /// Each listener's limits; connections are capped below the open-file
    /// limit (raised to its hard limit first), keeping room for functions.
    fn limits(&self) -> listener::Limits {
        let s = &self.app.server;
        let files = listener::raise_open_file_limit();
        // Each listener may use what is left (the admin listener rarely holds
        // many); past the real limit `accept` fails and the loop backs off.
        let room = usize::try_from(files.saturating_sub(FILES_KEPT)).unwrap_or(usize::MAX);
        let max_connections = s.max_connections.min(room.max(1));
        if max_connections < s.max_connections {
            tracing::info!(
                "at most {max_connections} connections per listener (open-file limit {files}; server.max_connections = {})",
                s.max_connections
            );
        }
        listener::Limits {
            header_timeout: s.header_timeout,
            max_connections,
            max_header_bytes: s.max_header_bytes,
            health_at_cap: false,
        }
    }

    /// Serves until `shutdown` completes, then drains in-flight requests.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
        let (_never, reloads) = tokio::sync::mpsc::channel(1);
        self.run_reloading(shutdown, reloads).await
    }

    /// `run`, reloading the project each time `reloads` delivers (`stratus
    /// dev`'s watcher, SIGHUP): see `reload`.
    pub async fn run_reloading(
        self,
        shutdown: impl Future<Output = ()> + Send,
        mut reloads: tokio::sync::mpsc::Receiver<()>,
    ) -> anyhow::Result<()> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let ready = Arc::new(AtomicBool::new(true));
        let grace = self.app.server.shutdown_grace;
        let limits = self.limits();

        let functions = self.functions.clone();
        // Connections outlive any one gateway (a reload keeps them).
        let connections = stratus_gateway::Connections::in_memory();
        // The gateway of a project: each stage from the deployment it
        // points at, with its canary (stratus_runtime::deployments).
        let gateway_for = {
            let (functions, keys, objects, limiter) = (
                self.functions.clone(),
                self.keys.clone(),
                self.objects.clone(),
                self.limiter.clone(),
            );
            let connections = connections.clone();
            move |app: &App| -> anyhow::Result<(Gateway, Arc<App>)> {
                // AutoPublishAlias: the working tree published, its alias
                // moved, before routes through the alias are served.
                functions
                    .versions()
                    .auto_publish(app)
                    .map_err(|e| anyhow::anyhow!("AutoPublishAlias: {e}"))?;
                let (composed, canaries) = functions
                    .deployments()
                    .compose(app)
                    .map_err(anyhow::Error::msg)?;
                let canaries = canaries
                    .into_iter()
                    .map(|c| stratus_gateway::Canary {
                        api: c.api,
                        stage: c.stage,
                        percent: c.percent,
                        app: c.app,
                    })
                    .collect();
                let gateway = Gateway::with_canaries(
                    &composed,
                    Arc::new(functions.clone()),
                    connections.clone(),
                    keys.clone(),
                    Some(objects.clone()),
                    canaries,
                    limiter.clone(),
                );
                Ok((gateway, Arc::new(composed)))
            }
        };
        let (gateway, served) = gateway_for(&self.app)?;
        // Schedules run from now on; a reload starts the new app's.
        let since = chrono::Utc::now();
        let mut scheduler =
            stratus_runtime::schedules::spawn(self.app.clone(), functions.clone(), since);
        let flusher = self.keys.as_ref().map(|k| k.spawn_flusher());
        let sweeper = self.databases.spawn_sweeper();
        // Every gateway's WebSocket APIs: connections opened under an older
        // configuration stay open, and are closed at shutdown too.
        let mut websockets = vec![gateway.websockets()];
        let live = Arc::new(arc_swap::ArcSwap::from_pointee(stratus_admin::Live {
            app: served,
            websockets: gateway.websockets(),
            sites: gateway.sites(),
            caches: gateway.caches(),
        }));
        // REST events carry header names as the client spelled them.
        let capture_heads = self
            .app
            .apis
            .iter()
            .any(|a| a.kind == stratus_config::ApiKind::Rest);
        let current = Arc::new(arc_swap::ArcSwap::from_pointee(gateway));
        // Stage moves through the admin API reload too, and wait for it.
        let (admin_reload, mut admin_reloads) = tokio::sync::mpsc::channel(4);
        let admin_state = stratus_admin::AdminState {
            ready: ready.clone(),
            functions: functions.clone(),
            region: self.app.server.region.clone(),
            credentials: self.app.server.credentials.clone(),
            verify_signatures: self.app.server.verify_signatures,
            keys: self.keys.clone(),
            objects: self.objects.clone(),
            databases: self.databases.clone(),
            live: live.clone(),
            reload: Some(admin_reload),
            dashboard: Arc::new(stratus_admin::DashboardFeed::new(
                self.app.server.dashboard_streams,
            )),
            stack: self.stack.clone(),
        };
        // A `source` copy is a PutObject: its notifications go out.
        for (bucket, key, meta) in &self.seeded {
            stratus_admin::notify::object_created(&admin_state, bucket, key, meta);
        }
        let gateway_task = tokio::spawn(serve_gateway(
            self.gateway,
            Public {
                gateway: current.clone(),
                admin: admin_state.clone(),
                tls: self.tls.as_ref().map(|t| t.acceptor.clone()),
                capture_heads,
            },
            limits,
            stop_rx.clone(),
            grace,
        ));
        // The admin listener answers /healthz even at its connection cap.
        let admin_limits = listener::Limits {
            health_at_cap: true,
            ..limits
        };
        let admin_task = tokio::spawn(serve_admin(
            self.admin,
            admin_state,
            admin_limits,
            stop_rx,
            grace,
        ));

        tokio::pin!(shutdown);
        loop {
            let ack: Option<tokio::sync::oneshot::Sender<bool>> = tokio::select! {
                () = &mut shutdown => break,
                Some(()) = reloads.recv() => None,
                Some(ack) = admin_reloads.recv() => Some(ack),
            };
            let old = live.load().app.clone();
            let mut done = false;
            if let Some(app) = reload(&old, &functions).await {
                match gateway_for(&app) {
                    Ok((gateway, served)) => {
                        websockets.push(gateway.websockets());
                        live.store(Arc::new(stratus_admin::Live {
                            app: served,
                            websockets: gateway.websockets(),
                            sites: gateway.sites(),
                            caches: gateway.caches(),
                        }));
                        current.store(Arc::new(gateway));
                        scheduler.abort();
                        scheduler = stratus_runtime::schedules::spawn(
                            app.clone(),
                            functions.clone(),
                            since,
                        );
                        done = true;
                    }
                    Err(e) => tracing::error!(
                        "not reloaded: {e:#}; the previous configuration keeps serving"
                    ),
                }
            }
            if let Some(ack) = ack {
                let _ = ack.send(done);
            }
        }
        scheduler.abort();
        tracing::info!("shutting down: no new connections; in-flight requests have {grace:?}");
        ready.store(false, Ordering::SeqCst);
        let _ = stop_tx.send(true);
        // WebSocket connections are closed (1001) and their $disconnect run
        // while the function runtime is still up.
        let open = connections.local_count();
        if open > 0 {
            tracing::info!("closing {open} WebSocket connections");
        }
        futures_util::future::join_all(websockets.iter().map(|w| w.shutdown(grace))).await;
        gateway_task.await.context("gateway task")?;
        admin_task.await.context("admin task")?;
        functions.shutdown();
        sweeper.abort();
        if let Some(k) = &self.keys {
            if let Some(f) = flusher {
                f.abort();
            }
            if let Err(e) = k.flush().await {
                tracing::error!("API key usage of the last second not saved: {e}");
            }
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// Loads the project file again; if it is valid, moves the functions to
/// it (see `Runtime::reload`) and returns it for a new gateway. What it
/// cannot change while serving (`[server]`, databases, buckets, declared
/// API keys) is kept as it was, with a warning. On any error the old
/// configuration keeps serving and the error is logged.
async fn reload(old: &App, functions: &Runtime) -> Option<Arc<App>> {
    let file = &old.file;
    let mut app = match stratus_config::load(file) {
        Ok(app) => app,
        Err(errors) => {
            tracing::error!(
                "{} not reloaded: the previous configuration keeps serving\n{errors}",
                file.display()
            );
            return None;
        }
    };
    let kept: Vec<&str> = [
        (
            "[server]",
            format!("{:?}", app.server) != format!("{:?}", old.server),
        ),
        ("[databases]", app.databases != old.databases),
        ("[buckets]", app.buckets != old.buckets),
        (
            "[api_keys]",
            format!("{:?}", app.api_keys) != format!("{:?}", old.api_keys),
        ),
    ]
    .into_iter()
    .filter(|(_, changed)| *changed)
    .map(|(name, _)| name)
    .collect();
    if !kept.is_empty() {
        tracing::warn!(
            "{}: changes to {} take a restart; the rest is reloaded",
            file.display(),
            kept.join(", ")
        );
    }
    app.server = old.server.clone();
    app.databases = old.databases.clone();
    app.buckets = old.buckets.clone();
    app.api_keys = old.api_keys.clone();
    match functions.reload(&app).await {
        Ok(replaced) => {
            let routes: usize = app.apis.iter().map(|a| a.routes.len()).sum();
            tracing::info!(
                "reloaded {}: {routes} routes; functions replaced: {}",
                file.display(),
                if replaced.is_empty() {
                    "none".to_owned()
                } else {
                    replaced.join(", ")
                }
            );
            Some(Arc::new(app))
        }
        Err(e) => {
            tracing::error!(
                "{} not reloaded: {e}; the previous code keeps serving",
                file.display()
            );
            None
        }
    }
}

/// Opens the databases (`data_dir/databases/NAME.sqlite`, or PostgreSQL
/// at the url with `${VAR}`s replaced from the environment) and applies
/// their migrations; a failing one stops the start, naming its file.
async fn open_databases(app: &App) -> anyhow::Result<Arc<stratus_state::databases::Databases>> {
    let mut all = Vec::new();
    for d in &app.databases {
        let db = open_database(app, d).await?;
        db.migrate(d.migrations.as_deref())
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        if let Some(seed) = &d.seed {
            db.seed(seed).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        all.push(Arc::new(db));
    }
    Ok(Arc::new(stratus_state::databases::Databases { all }))
}

/// Connects to one database of the project (for `serve` and `stratus
/// db`), migrating nothing.
pub async fn open_database(
    app: &App,
    d: &stratus_config::Database,
) -> anyhow::Result<stratus_state::databases::Db> {
    use stratus_state::databases::Location;
    let location = match &d.engine {
        stratus_config::DatabaseEngine::Sqlite => Location::Sqlite(
            app.server
                .data_dir
                .join("databases")
                .join(format!("{}.sqlite", d.name)),
        ),
        stratus_config::DatabaseEngine::Postgres { url } => Location::Postgres(
            expand_env(url).map_err(|e| anyhow::anyhow!("database {:?}: url: {e}", d.name))?,
        ),
    };
    let arn = d.arn(&app.server.region);
    stratus_state::databases::Db::connect(&d.name, arn, &location, d.statement_timeout)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))
}

/// `cluster.redis`: the throttles' buckets shared by every node of a fleet.
async fn open_limiter(app: &App) -> anyhow::Result<Option<Arc<dyn stratus_state::RateLimiter>>> {
    let Some(url) = app.cluster.as_ref().and_then(|c| c.redis.as_ref()) else {
        return Ok(None);
    };
    let url = expand_env(url).map_err(|e| anyhow::anyhow!("cluster.redis: {e}"))?;
    let limiter = stratus_state::RedisRateLimiter::connect(&url, "stratus:")
        .await
        .map_err(|e| anyhow::anyhow!("cluster.redis: {e}"))?;
    let node = app
        .cluster
        .as_ref()
        .and_then(|c| c.node.clone())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "stratus".to_owned());
    tracing::info!(node = %node, "throttles are shared by the fleet on Redis");
    Ok(Some(Arc::new(limiter)))
}

/// `${VAR}`s replaced by the environment's values; an unset one is an error.
fn expand_env(text: &str) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unclosed ${{ in {text:?}"))?;
        let var = &after[..end];
        let value =
            std::env::var(var).map_err(|_| format!("the environment variable {var} is not set"))?;
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Opens the object store (`data_dir/objects`), creates the declared
/// buckets and copies their `source` folders in.
async fn open_objects(
    app: &App,
) -> anyhow::Result<(Arc<dyn stratus_state::objects::ObjectStore>, Vec<Seeded>)> {
    let mut seeded = Vec::new();
    let root = app.server.data_dir.join("objects");
    let store = stratus_state::objects::FsObjectStore::open(&root)
        .with_context(|| format!("cannot open the object store {}", root.display()))?;
    let store: Arc<dyn stratus_state::objects::ObjectStore> = Arc::new(store);
    for b in &app.buckets {
        if !store.has_bucket(&b.name) {
            store
                .create_bucket(&b.name)
                .await
                .with_context(|| format!("cannot create bucket {:?}", b.name))?;
        }
        if let Some(src) = &b.source {
            let copied = stratus_state::objects::seed(&*store, &b.name, src)
                .await
                .with_context(|| {
                    format!("cannot copy {} into bucket {:?}", src.display(), b.name)
                })?;
            tracing::info!(
                "bucket {}: {} files copied in from {}",
                b.name,
                copied.len(),
                src.display()
            );
            seeded.extend(
                copied
                    .into_iter()
                    .map(|(key, meta)| (b.name.clone(), key, meta)),
            );
        }
    }
    Ok((store, seeded))
}

/// An object a bucket's `source` copied in: (bucket, key, what was stored),
/// for its S3 event notifications once functions run.
type Seeded = (String, String, stratus_state::objects::ObjectMeta);

/// Opens the key store when anything uses keys: usage plans, declared
/// keys, or routes that require one.
async fn open_keys(app: &App) -> anyhow::Result<Option<Arc<stratus_state::ApiKeys>>> {
    let uses_keys = !app.usage_plans.is_empty()
        || !app.api_keys.is_empty()
        || app
            .apis
            .iter()
            .any(|a| a.routes.iter().any(|r| r.api_key_required));
    if !uses_keys {
        return Ok(None);
    }
    let dir = &app.server.data_dir;
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the data directory {}", dir.display()))?;
    let path = dir.join("keys.db");
    let store = stratus_state::SqliteKeyStore::open(&path)
        .await
        .with_context(|| format!("cannot open the API key store {}", path.display()))?;
    let declared: Vec<stratus_state::DeclaredKey> = app
        .api_keys
        .iter()
        .map(|k| stratus_state::DeclaredKey {
            name: k.name.clone(),
            value: k.value.clone(),
            enabled: k.enabled,
        })
        .collect();
    let keys = stratus_state::ApiKeys::open(Arc::new(store), &declared)
        .await
        .with_context(|| format!("cannot load the API keys of {}", path.display()))?;
    Ok(Some(Arc::new(keys)))
}

async fn stopped(mut rx: watch::Receiver<bool>) {
    // An error means the sender is gone, which also means stop.
    let _ = rx.wait_for(|stop| *stop).await;
}

/// What the public listener serves.
struct Public {
    /// The gateway current when a request arrives (a reload applies to
    /// kept-alive connections' next requests too).
    gateway: Arc<arc_swap::ArcSwap<Gateway>>,
    /// For `@connections` at the WebSocket APIs' own paths.
    admin: stratus_admin::AdminState,
    tls: Option<tokio_rustls::TlsAcceptor>,
    capture_heads: bool,
}

async fn serve_gateway(
    listener: TcpListener,
    public: Public,
    limits: listener::Limits,
    stop: watch::Receiver<bool>,
    grace: std::time::Duration,
) {
    let Public {
        gateway,
        admin,
        tls,
        capture_heads,
    } = public;
    let make = move |remote: SocketAddr, head: listener::HeadCapture| {
        let current = gateway.clone();
        let admin = admin.clone();
        service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            if let Some(raw) = head.take() {
                req.extensions_mut()
                    .insert(stratus_gateway::RawRequestHead(raw));
            }
            let gw = current.load_full();
            let admin = admin.clone();
            async move {
                if is_management_call(&gw, &req) {
                    return Ok::<_, Infallible>(management(&admin, req).await);
                }
                match gw.signature_service(
                    req.method(),
                    host_of(req.headers(), req.uri()),
                    req.uri().path(),
                ) {
                    Some("lambda") => {
                        return Ok::<_, Infallible>(signed_url_call(&gw, &admin, req, remote).await)
                    }
                    Some(service) => {
                        return Ok::<_, Infallible>(
                            iam_route_call(&gw, &admin, service, req, remote).await,
                        )
                    }
                    None => {}
                }
                Ok::<_, Infallible>(gw.handle(req, remote).await)
            }
        })
    };
    let options = listener::Options {
        upgrades: true,
        capture_heads,
        tls,
    };
    listener::serve(listener, limits, make, stop, grace, options).await;
}

/// `POST`/`GET`/`DELETE {prefix}/@connections/{id}` where a WebSocket API
/// is served (see `WebSockets::management_call`).
fn is_management_call<B>(gw: &Gateway, req: &hyper::Request<B>) -> bool {
    use hyper::Method;
    matches!(*req.method(), Method::POST | Method::GET | Method::DELETE)
        && req.uri().path().contains("/@connections/")
        && gw
            .websockets()
            .management_call(host_of(req.headers(), req.uri()), req.uri().path())
            .is_some()
}

/// The host a request names: `Host`, or the URI's authority (HTTP/2).
fn host_of<'a>(headers: &'a http::HeaderMap, uri: &'a http::Uri) -> Option<&'a str> {
    headers
        .get(hyper::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()))
}

/// Answers an `@connections` call on the public listener. The body is at
/// most a WebSocket message (128 KB, as API Gateway's `PostToConnection`);
/// more is 413.
async fn management(
    admin: &stratus_admin::AdminState,
    req: hyper::Request<hyper::body::Incoming>,
) -> hyper::Response<stratus_gateway::Body> {
    use http_body_util::BodyExt;
    let (parts, body) = req.into_parts();
    let body = match read_limited(
        body,
        stratus_gateway::MAX_MESSAGE,
        "Request entity too large: at most 128 KB",
    )
    .await
    {
        Ok(b) => b,
        Err(answer) => return answer,
    };
    let ws = admin.websockets();
    let Some(call) = ws.management_call(host_of(&parts.headers, &parts.uri), parts.uri.path())
    else {
        return json_answer(404, "Not Found");
    };
    let answer = stratus_admin::connections::public_call(
        admin,
        &call,
        parts.method.clone(),
        &parts.uri,
        &parts.headers,
        body,
    )
    .await;
    // The answer is a short JSON or empty body made in memory; collecting it
    // gives the gateway's `Sync` body type (axum's is not `Sync`).
    let (parts, body) = answer.into_parts();
    let bytes = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    hyper::Response::from_parts(
        parts,
        http_body_util::Full::new(bytes)
            .map_err(|never| match never {})
            .boxed(),
    )
}

/// A call to an `AWS_IAM` function URL: its body read (at most Lambda's
/// 6 MB request payload; more is 413), its SigV4 signature checked
/// (service `lambda`), then served with the caller it names; unsigned or
/// badly signed is 403, as Lambda answers.
async fn signed_url_call(
    gw: &Gateway,
    admin: &stratus_admin::AdminState,
    req: hyper::Request<hyper::body::Incoming>,
    remote: SocketAddr,
) -> hyper::Response<stratus_gateway::Body> {
    const MAX_URL_PAYLOAD: usize = 6 * 1024 * 1024;
    let (mut parts, body) = req.into_parts();
    let body = match read_limited(
        body,
        MAX_URL_PAYLOAD,
        "Request must be smaller than 6291456 bytes for the InvokeFunction operation",
    )
    .await
    {
        Ok(b) => b,
        Err(answer) => return answer,
    };
    match stratus_admin::sigv4::function_url_caller(
        admin,
        &parts.method,
        &parts.uri,
        &parts.headers,
        &body,
    ) {
        Ok(key) => {
            parts.extensions.insert(stratus_gateway::UrlCaller(key));
        }
        Err(why) => {
            tracing::warn!("function URL request refused: {why}");
            let mut answer = forbidden();
            answer.headers_mut().insert(
                "x-amzn-errortype",
                hyper::header::HeaderValue::from_static("AccessDeniedException"),
            );
            return answer;
        }
    }
    let req = hyper::Request::from_parts(parts, http_body_util::Full::new(body));
    gw.handle(req, remote).await
}

/// A request to an `AWS_IAM` route: its signature checked over the whole
/// body (10 MB, API Gateway's limit), the outcome handed to the gateway,
/// which answers a refusal as API Gateway does (through the API's gateway
/// responses).
async fn iam_route_call(
    gw: &Gateway,
    admin: &stratus_admin::AdminState,
    service: &str,
    req: hyper::Request<hyper::body::Incoming>,
    remote: SocketAddr,
) -> hyper::Response<stratus_gateway::Body> {
    let (mut parts, body) = req.into_parts();
    let body = match read_limited(
        body,
        stratus_gateway::MAX_REQUEST_BODY as usize,
        "Request Entity Too Large",
    )
    .await
    {
        Ok(b) => b,
        Err(answer) => return answer,
    };
    use stratus_admin::sigv4::CallerRefused;
    let caller = match stratus_admin::sigv4::signed_caller(
        admin,
        service,
        &parts.method,
        &parts.uri,
        &parts.headers,
        &body,
    ) {
        Ok(key) => stratus_gateway::IamCaller::Signed(key),
        Err(CallerRefused::Unsigned) => stratus_gateway::IamCaller::Unsigned,
        Err(CallerRefused::Refused(why)) => {
            tracing::warn!("AWS_IAM route request refused: {why}");
            stratus_gateway::IamCaller::Refused(why)
        }
    };
    parts.extensions.insert(caller);
    let req = hyper::Request::from_parts(parts, http_body_util::Full::new(body));
    gw.handle(req, remote).await
}

/// A request body of at most `limit` bytes; past it 413 with
/// `too_large`, unreadable 400.
async fn read_limited(
    body: hyper::body::Incoming,
    limit: usize,
    too_large: &str,
) -> Result<bytes::Bytes, hyper::Response<stratus_gateway::Body>> {
    use http_body_util::BodyExt;
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(b) => Ok(b.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(json_answer(413, too_large))
        }
        Err(_) => Err(json_answer(400, "The request body could not be read")),
    }
}

/// Lambda's answer to a function URL call it does not let in.
fn forbidden() -> hyper::Response<stratus_gateway::Body> {
    json_body(
        403,
        bytes::Bytes::from_static(br#"{"Message":"Forbidden"}"#),
    )
}

/// `{"message": message}` with `status`.
fn json_answer(status: u16, message: &str) -> hyper::Response<stratus_gateway::Body> {
    json_body(
        status,
        bytes::Bytes::from(serde_json::json!({ "message": message }).to_string()),
    )
}

fn json_body(status: u16, body: bytes::Bytes) -> hyper::Response<stratus_gateway::Body> {
    use http_body_util::BodyExt;
    hyper::Response::builder()
        .status(status)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(
            http_body_util::Full::new(body)
                .map_err(|never| match never {})
                .boxed(),
        )
        .expect("a valid answer")
}

async fn serve_admin(
    listener: TcpListener,
    state: stratus_admin::AdminState,
    limits: listener::Limits,
    stop: watch::Receiver<bool>,
    grace: std::time::Duration,
) {
    let router = stratus_admin::router(state);
    let make = move |_remote: SocketAddr, _head: listener::HeadCapture| {
        hyper_util::service::TowerToHyperService::new(router.clone())
    };
    let options = listener::Options {
        upgrades: false,
        capture_heads: false,
        tls: None,
    };
    listener::serve(listener, limits, make, stop, grace, options).await;
}

#[cfg(test)]
mod tests {
    #[test]
    fn env_references_are_replaced_and_unset_ones_named() {
        let path = std::env::var("PATH").unwrap();
        assert_eq!(
            super::expand_env("a${PATH}b${PATH}").unwrap(),
            format!("a{path}b{path}")
        );
        assert_eq!(super::expand_env("plain").unwrap(), "plain");
        assert_eq!(
            super::expand_env("x${STRATUS_SURELY_UNSET_VAR}").unwrap_err(),
            "the environment variable STRATUS_SURELY_UNSET_VAR is not set"
        );
        assert!(super::expand_env("x${OPEN")
            .unwrap_err()
            .contains("unclosed"));
    }
}
