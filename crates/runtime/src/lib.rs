//! The function runtime: Lambda's Runtime API and, per function, a pool of
//! warm execution environments (OS processes running the bootstrap).
//!
//! Callers (the gateway, the Invoke API, `stratus invoke`) hand it a payload
//! and get the function's answer or a typed error; it never speaks HTTP to
//! them. It must never serialize calls of one function behind a lock.

mod build;
pub mod deployments;
mod env;
mod launch;
mod memory;
mod peer;
mod pool;
mod runtime_api;
mod sandbox;
pub mod schedules;
pub mod versions;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use stratus_config::App;

pub use launch::{function_arn, ACCOUNT_ID};

/// Milliseconds since the epoch, as Lambda and API Gateway write times.
pub fn epoch_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Synchronous payload limit, each way (6 MB).
pub const MAX_SYNC_PAYLOAD: usize = 6 * 1024 * 1024;

/// A streamed response's limit (Lambda's documented soft limit, 20 MB):
/// past it the stream ends with `Function.ResponseSizeTooLarge`.
pub const MAX_STREAMED_RESPONSE: usize = 20 * 1024 * 1024;

/// How much of a streamed response goes at full speed; past it Lambda
/// streams at most [`STREAM_BANDWIDTH`] bytes a second.
pub const STREAM_BURST: usize = 6 * 1024 * 1024;

/// Bytes a second a streamed response gets past [`STREAM_BURST`] (2 MB/s).
pub const STREAM_BANDWIDTH: usize = 2 * 1024 * 1024;

/// The content type of a streamed answer for an HTTP integration: a JSON
/// prelude (`statusCode`, `headers`, `cookies`), 8 NUL bytes, the body.
pub const HTTP_INTEGRATION_STREAM: &str = "application/vnd.awslambda.http-integration-response";

/// A response the function streams (`Lambda-Runtime-Function-Response-Mode:
/// streaming`), as it writes it: each chunk when it arrives; an error
/// (the function's trailers, its timeout or crash, the size limit) ends it.
#[derive(Debug)]
pub struct ResponseStream {
    pub request_id: String,
    /// The version that ran: `$LATEST` or `N`.
    pub executed_version: String,
    /// The stream's own `Content-Type` (`application/octet-stream` unless
    /// the function set one; [`HTTP_INTEGRATION_STREAM`] with a prelude).
    pub content_type: String,
    /// Dropping it (the client went away) stops the function: its
    /// environment is stopped and freed.
    pub chunks: tokio::sync::mpsc::Receiver<StreamEvent>,
}

/// What a [`ResponseStream`] carries. A stream that closes without `End`
/// or `Failed` was cut (the server is stopping): treat it as failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEvent {
    Data(Bytes),
    /// The function ended its stream.
    End,
    /// The stream broke: the function's error trailers, its timeout or
    /// crash, or the size limit.
    Failed(FunctionError),
}

/// The answer of a call that may stream.
#[derive(Debug)]
pub enum Streamed {
    /// The function answered whole (it did not stream).
    Whole(InvokeResponse),
    /// The function streams: chunks as it writes them.
    Stream(ResponseStream),
}

/// One call of a function.
#[derive(Debug, Clone, Default)]
pub struct InvokeRequest {
    pub payload: Bytes,
    pub client_context: Option<String>,
    pub cognito_identity: Option<String>,
    /// Collect the call's log lines (`X-Amz-Log-Type: Tail`).
    pub tail_logs: bool,
    /// How many invocations of a recursive loop led to this one (the
    /// trace header's `Lineage`; 0: none), as Lambda's recursive-loop
    /// detection counts them.
    pub lineage: u32,
}

#[derive(Debug)]
pub struct InvokeResponse {
    pub request_id: String,
    /// The function's answer, or its error (JSON body as Lambda returns it).
    pub result: Result<Bytes, FunctionError>,
    /// The call's log lines, when asked for.
    pub log_tail: Option<String>,
    pub duration: Duration,
    pub billed_ms: u64,
    /// Set on a cold start.
    pub init_duration: Option<Duration>,
    pub memory_mb: u32,
    /// The version that ran (`x-amz-executed-version`): `$LATEST` or `N`.
    pub executed_version: String,
}

/// A call that ran and failed: Lambda answers these with
/// `X-Amz-Function-Error` and the error JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionError {
    pub kind: ErrorKind,
    pub error_type: String,
    /// `{"errorMessage": ..., "errorType": ..., ...}`.
    pub body: Bytes,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The function reported the error itself: its environment stays warm.
    Handled,
    /// Past the function's timeout: the environment was killed.
    Timeout,
    /// The process exited or was killed (memory) during the call.
    Crash,
    /// The runtime failed to initialize.
    Init,
}

impl FunctionError {
    pub(crate) fn new(kind: ErrorKind, error_type: &str, message: String) -> FunctionError {
        let body = serde_json::json!({ "errorMessage": message, "errorType": error_type });
        FunctionError {
            kind,
            error_type: error_type.to_owned(),
            body: Bytes::from(body.to_string()),
        }
    }

    /// The `errorMessage` of the body, if any.
    pub fn message(&self) -> String {
        serde_json::from_slice::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|v| v.get("errorMessage")?.as_str().map(str::to_owned))
            .unwrap_or_default()
    }
}

/// Why the runtime could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Shipped bootstraps or interpreters: the machine lacks something.
    #[error("{0}")]
    Setup(String),
    /// Installing a function's dependencies or building it failed.
    #[error("function {function:?}: {reason}")]
    Build { function: String, reason: String },
    /// A `warm` environment did not start.
    #[error("function {function:?}: {source}")]
    Warm {
        function: String,
        source: InvokeError,
    },
}

/// A call that could not run at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvokeError {
    #[error("Function not found: {0}")]
    NotFound(String),
    #[error("Rate Exceeded.")]
    TooManyRequests,
    #[error(
        "Request must be smaller than {MAX_SYNC_PAYLOAD} bytes for the InvokeFunction operation"
    )]
    PayloadTooLarge,
    #[error("cannot start an environment: {0}")]
    Start(String),
}

type Pools = HashMap<String, Arc<pool::Pool>>;

/// Where a call that may stream hands its stream, when the function streams.
pub(crate) type StreamTo = tokio::sync::oneshot::Sender<ResponseStream>;

/// Every function of an app. Cheap to clone; every clone sees a reload.
#[derive(Clone)]
pub struct Runtime {
    /// Swapped whole by `reload`: a call takes the pool current when it
    /// starts and finishes on it.
    pools: Arc<ArcSwap<Pools>>,
    /// Given to every function (the admin URL, credentials), again on reload.
    extra_env: Arc<Vec<(String, String)>>,
    reaper: Arc<tokio::task::JoinHandle<()>>,
    /// `[server]`: where versions live, the region of ARNs.
    server: Arc<stratus_config::Server>,
    /// Published versions and aliases (`versions.rs`).
    versions: Arc<versions::Versions>,
    /// Deployments and where stages point (`deployments.rs`).
    deployments: Arc<deployments::Deployments>,
    /// Pools of published versions, `NAME:N`, made at their first call.
    version_pools: Arc<std::sync::Mutex<Pools>>,
    /// One version pool made at a time.
    loading: Arc<tokio::sync::Mutex<()>>,
}

/// What a call names: `$LATEST`, a version, or an alias.
enum Target<'a> {
    Latest(&'a str),
    Version(&'a str, u32),
    Alias(&'a str, &'a str),
}

fn target(function: &str) -> Target<'_> {
    match stratus_config::split_qualifier(function) {
        (name, None | Some("$LATEST")) => Target::Latest(name),
        (name, Some(q)) => match q.parse::<u32>() {
            Ok(n) => Target::Version(name, n),
            Err(_) => Target::Alias(name, q),
        },
    }
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("functions", &self.pools.load().keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Runtime {
    /// Prepares every function (bootstraps, interpreters) and starts the
    /// `warm` environments. `extra_env` is given to every function (e.g.
    /// the admin URL and credentials).
    pub async fn start(app: &App, extra_env: Vec<(String, String)>) -> Result<Runtime, StartError> {
        sandbox::become_subreaper();
        let pools = Self::pools_for(app, &extra_env, &Pools::new()).await?;
        let pools = Arc::new(ArcSwap::from_pointee(pools));
        let version_pools: Arc<std::sync::Mutex<Pools>> = Arc::default();
        let weak = Arc::downgrade(&pools);
        let weak_versions = Arc::downgrade(&version_pools);
        let reaper = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            for n in 0u64.. {
                tick.tick().await;
                let Some(pools) = weak.upgrade() else { return };
                for pool in pools.load().values() {
                    pool.reap();
                }
                if let Some(v) = weak_versions.upgrade() {
                    let all: Vec<Arc<pool::Pool>> =
                        v.lock().expect("versions lock").values().cloned().collect();
                    for pool in all {
                        pool.reap();
                    }
                }
                if n % 5 == 0 {
                    let _ = tokio::task::spawn_blocking(sandbox::sweep).await;
                }
            }
        });
        Ok(Runtime {
            pools,
            extra_env: Arc::new(extra_env),
            reaper: Arc::new(reaper),
            server: Arc::new(app.server.clone()),
            versions: Arc::new(versions::Versions::new(&app.server.data_dir)),
            deployments: Arc::new(deployments::Deployments::new(&app.server.data_dir)),
            version_pools,
            loading: Arc::default(),
        })
    }

    /// Published versions and aliases.
    pub fn versions(&self) -> &versions::Versions {
        &self.versions
    }

    /// Deployments and where stages point.
    pub fn deployments(&self) -> &deployments::Deployments {
        &self.deployments
    }

    /// A function's current (`$LATEST`) configuration.
    pub fn function(&self, name: &str) -> Option<Arc<stratus_config::Function>> {
        self.pools.load().get(name).map(|p| p.function.clone())
    }

    /// The pool a call to `function` (`NAME`, `NAME:N`, `NAME:ALIAS`) runs
    /// in, made at the first call of a version; and the ARN it was invoked
    /// by, when it is an alias's.
    async fn resolve(
        &self,
        function: &str,
        req: &InvokeRequest,
    ) -> Result<(Arc<pool::Pool>, Option<String>), InvokeError> {
        if req.payload.len() > MAX_SYNC_PAYLOAD {
            return Err(InvokeError::PayloadTooLarge);
        }
        let not_found = || InvokeError::NotFound(function.to_owned());
        match target(function) {
            Target::Latest(name) => {
                let pool = self.pools.load().get(name).cloned().ok_or_else(not_found)?;
                Ok((pool, None))
            }
            Target::Version(name, n) => Ok((self.version_pool(name, n).await?, None)),
            Target::Alias(name, alias) => {
                let a = self.versions.alias(name, alias).ok_or_else(not_found)?;
                let n = versions::Versions::pick(&a, rand::random::<f64>());
                let arn = format!("{}:{alias}", function_arn(&self.server.region, name));
                Ok((self.version_pool(name, n).await?, Some(arn)))
            }
        }
    }

    /// Makes a version's pool ready (its first call would): for callers
    /// that cannot wait later, such as asynchronous invocations.
    pub async fn preload(&self, function: &str) -> Result<(), InvokeError> {
        let probe = InvokeRequest {
            payload: Bytes::new(),
            client_context: None,
            cognito_identity: None,
            tail_logs: false,
            lineage: 0,
        };
        self.resolve(function, &probe).await.map(|_| ())
    }

    async fn version_pool(&self, name: &str, n: u32) -> Result<Arc<pool::Pool>, InvokeError> {
        let key = format!("{name}:{n}");
        let loaded = |pools: &std::sync::Mutex<Pools>| {
            pools.lock().expect("versions lock").get(&key).cloned()
        };
        if let Some(p) = loaded(&self.version_pools) {
            return Ok(p);
        }
        let _one = self.loading.lock().await;
        if let Some(p) = loaded(&self.version_pools) {
            return Ok(p);
        }
        if !self.pools.load().contains_key(name) {
            return Err(InvokeError::NotFound(key));
        }
        let mut app = self.versions.app(name, n).map_err(|e| match e {
            versions::VersionError::NotFound(_) => InvokeError::NotFound(key.clone()),
            // A version that is there but does not load says why.
            other => InvokeError::Start(format!("version {n} of {name} cannot be loaded: {other}")),
        })?;
        app.server = (*self.server).clone();
        let launcher = Arc::new(
            launch::Launcher::new(&app, self.extra_env.to_vec()).map_err(InvokeError::Start)?,
        );
        let f = app
            .functions
            .get(name)
            .cloned()
            .ok_or_else(|| InvokeError::NotFound(key.clone()))?;
        build::prepare(&f, &launcher.build_dir(&f), launcher.interpreter(&f))
            .await
            .map_err(InvokeError::Start)?;
        let pool = Arc::new(pool::Pool::new(f, launcher, 0));
        self.version_pools
            .lock()
            .expect("versions lock")
            .insert(key, pool.clone());
        Ok(pool)
    }

    /// The pools of `app`'s functions: those of `old` whose configuration
    /// and code are unchanged, kept (warm environments and all); the others
    /// prepared (dependencies installed, Rust rebuilt) and provisioned.
    async fn pools_for(
        app: &App,
        extra_env: &[(String, String)],
        old: &Pools,
    ) -> Result<Pools, StartError> {
        let launcher =
            Arc::new(launch::Launcher::new(app, extra_env.to_vec()).map_err(StartError::Setup)?);
        let mut pools = Pools::new();
        let mut fresh: Vec<Arc<pool::Pool>> = Vec::new();
        let undo = |fresh: &[Arc<pool::Pool>]| fresh.iter().for_each(|p| p.shutdown());
        for (name, f) in &app.functions {
            let stamp = pool::code_stamp(f);
            if let Some(p) = old.get(name) {
                if *p.function == **f && p.stamp == stamp {
                    pools.insert(name.clone(), p.clone());
                    continue;
                }
            }
            if let Err(reason) =
                build::prepare(f, &launcher.build_dir(f), launcher.interpreter(f)).await
            {
                undo(&fresh);
                return Err(StartError::Build {
                    function: f.name.clone(),
                    reason,
                });
            }
            let pool = Arc::new(pool::Pool::new(f.clone(), launcher.clone(), stamp));
            if let Err(source) = pool.provision().await {
                pool.shutdown();
                undo(&fresh);
                return Err(StartError::Warm {
                    function: f.name.clone(),
                    source,
                });
            }
            fresh.push(pool.clone());
            pools.insert(name.clone(), pool);
        }
        Ok(pools)
    }

    /// Moves to `app`'s functions: unchanged ones keep their environments;
    /// changed and new ones are prepared first, while the old ones go on
    /// serving, then swapped in; the old environments of changed and
    /// removed ones finish their calls and stop. If anything fails to
    /// prepare, nothing changes. Returns the functions replaced or added.
    pub async fn reload(&self, app: &App) -> Result<Vec<String>, StartError> {
        let old = self.pools.load_full();
        let new = Self::pools_for(app, &self.extra_env, &old).await?;
        let mut replaced: Vec<String> = new
            .iter()
            .filter(|(name, p)| old.get(*name).is_none_or(|o| !Arc::ptr_eq(o, p)))
            .map(|(name, _)| name.clone())
            .collect();
        replaced.sort();
        self.pools.store(Arc::new(new));
        let current = self.pools.load();
        for (name, p) in old.iter() {
            if current.get(name).is_none_or(|n| !Arc::ptr_eq(n, p)) {
                p.drain();
            }
        }
        Ok(replaced)
    }

    pub fn has_function(&self, name: &str) -> bool {
        self.pools.load().contains_key(name)
    }

    pub async fn invoke(
        &self,
        function: &str,
        req: InvokeRequest,
    ) -> Result<InvokeResponse, InvokeError> {
        let (pool, permits, arn) = self.admit(function, &req).await?;
        Self::run(pool, req, permits, arn, None).await
    }

    /// A synchronous call's pool and permits: past the local environments
    /// the call waits (as long as the function may run); past
    /// `concurrency` it is throttled.
    async fn admit(
        &self,
        function: &str,
        req: &InvokeRequest,
    ) -> Result<(Arc<pool::Pool>, pool::Permits, Option<String>), InvokeError> {
        let (pool, arn) = self.resolve(function, req).await?;
        let deadline = tokio::time::Instant::now() + pool.function.timeout;
        let permits = pool.slot_or_throttle(deadline).await?;
        Ok((pool, permits, arn))
    }

    /// Like `invoke`, for callers that pass a streamed response on as it
    /// comes (function URLs in `RESPONSE_STREAM` mode, REST routes that
    /// stream, `InvokeWithResponseStream`): answers as soon as the function
    /// starts streaming, or with its whole answer when it does not stream.
    /// (`invoke` buffers a streamed response, as Lambda's `Invoke` does.)
    pub async fn invoke_stream(
        &self,
        function: &str,
        req: InvokeRequest,
    ) -> Result<Streamed, InvokeError> {
        let (pool, permits, arn) = self.admit(function, &req).await?;
        let (tx, mut rx) = tokio::sync::oneshot::channel();
        let run = Self::run(pool, req, permits, arn, Some(tx));
        tokio::pin!(run);
        tokio::select! {
            biased;
            Ok(stream) = &mut rx => Ok(Streamed::Stream(stream)),
            // A short stream can be sent and ended within one poll of the
            // call: its stream is then waiting here, whole.
            out = &mut run => match rx.try_recv() {
                Ok(stream) => Ok(Streamed::Stream(stream)),
                Err(_) => out.map(Streamed::Whole),
            },
        }
        // Dropped before it ended, the call goes on in a task of its own
        // (`Finish`) while the caller reads the stream.
    }

    /// Like `invoke`, but when every environment is busy the call waits for
    /// one (first come, first served) up to `wait`, instead of being
    /// refused: for work that must not be lost to a momentary limit, such
    /// as WebSocket `$connect`/`$disconnect` events.
    pub async fn invoke_waiting(
        &self,
        function: &str,
        req: InvokeRequest,
        wait: Duration,
    ) -> Result<InvokeResponse, InvokeError> {
        let (pool, arn) = self.resolve(function, &req).await?;
        let permits = pool.slot_by(tokio::time::Instant::now() + wait).await?;
        Self::run(pool, req, permits, arn, None).await
    }

    /// An asynchronous (`Event`) invocation: queued, run as environments
    /// free up, retried after function errors, dropped (and logged) when
    /// too old or out of retries, as Lambda does. Returns the request id at
    /// once; `TooManyRequests` when the function's queue is full.
    pub fn invoke_async(&self, function: &str, req: InvokeRequest) -> Result<String, InvokeError> {
        let pool = self.pool(function, &req)?;
        let cfg = pool.function.asynchronous.clone();
        let queued = pool.async_pending.fetch_add(1, Ordering::SeqCst);
        if queued >= cfg.queue {
            pool.async_pending.fetch_sub(1, Ordering::SeqCst);
            return Err(InvokeError::TooManyRequests);
        }
        let event_id = uuid::Uuid::new_v4().to_string();
        let id = event_id.clone();
        let this = self.clone();
        let invoked = function.to_owned();
        tokio::spawn(async move {
            let expires = tokio::time::Instant::now() + cfg.max_event_age;
            let name = pool.function.name.clone();
            let mut attempt = 0u32;
            // The last answer: the function's payload, or its error.
            let mut outcome: Option<Result<Bytes, FunctionError>> = None;
            let dropped = loop {
                let permits = match pool.slot_by(expires).await {
                    Ok(p) => p,
                    Err(_) => break "it reached the maximum event age",
                };
                let failure = match Self::run(pool.clone(), req.clone(), permits, None, None).await
                {
                    Ok(out) => {
                        let why = out
                            .result
                            .as_ref()
                            .err()
                            .map(|e| format!("{}: {}", e.error_type, e.message()));
                        outcome = Some(out.result);
                        why
                    }
                    Err(e) => Some(e.to_string()),
                };
                let Some(why) = failure else { break "" };
                if attempt >= cfg.max_retries {
                    tracing::warn!(target: "stratus::function", function = %name, event = %id, "asynchronous invocation failed: {why}");
                    break "it failed after its retries";
                }
                // Lambda waits about a minute, then two.
                let delay = cfg.retry_delay * 2u32.pow(attempt);
                attempt += 1;
                tracing::info!(target: "stratus::function", function = %name, event = %id, "asynchronous invocation failed ({why}); retry {attempt} of {} in {delay:?}", cfg.max_retries);
                if tokio::time::Instant::now() + delay >= expires {
                    break "it reached the maximum event age";
                }
                tokio::time::sleep(delay).await;
            };
            let destination = if dropped.is_empty() {
                cfg.on_success.as_deref()
            } else {
                cfg.on_failure.as_deref()
            };
            if let Some(dest) = destination {
                let condition = match dropped {
                    "" => "Success",
                    "it reached the maximum event age" => "EventAgeExceeded",
                    _ => "RetriesExhausted",
                };
                let record = destination_record(
                    &this,
                    &invoked,
                    &id,
                    condition,
                    attempt + 1,
                    &req.payload,
                    outcome.as_ref(),
                );
                let sent = InvokeRequest {
                    payload: record,
                    client_context: None,
                    cognito_identity: None,
                    tail_logs: false,
                    lineage: 0,
                };
                if let Err(e) = this.invoke_async(dest, sent) {
                    tracing::error!(target: "stratus::function", function = %name, event = %id, "destination {dest} not invoked: {e}");
                }
            }
            if !dropped.is_empty() {
                pool.async_dropped.fetch_add(1, Ordering::SeqCst);
                stratus_telemetry::AsyncEventDropped {
                    function: &name,
                    event_id: &id,
                    reason: dropped,
                }
                .emit();
            }
            pool.async_pending.fetch_sub(1, Ordering::SeqCst);
        });
        Ok(event_id)
    }

    /// (accepted and not yet done, dropped) asynchronous events of a function.
    pub fn async_events(&self, function: &str) -> Option<(usize, u64)> {
        self.pools.load().get(function).map(|p| {
            (
                p.async_pending.load(Ordering::SeqCst),
                p.async_dropped.load(Ordering::SeqCst),
            )
        })
    }

    /// The pool of `function` without waiting: `$LATEST`, or a version
    /// already made (`preload`).
    fn pool(&self, function: &str, req: &InvokeRequest) -> Result<Arc<pool::Pool>, InvokeError> {
        let found = match target(function) {
            Target::Latest(name) => self.pools.load().get(name).cloned(),
            Target::Version(name, n) => self
                .version_pools
                .lock()
                .expect("versions lock")
                .get(&format!("{name}:{n}"))
                .cloned(),
            Target::Alias(..) => None,
        };
        let pool = found.ok_or_else(|| InvokeError::NotFound(function.to_owned()))?;
        if req.payload.len() > MAX_SYNC_PAYLOAD {
            return Err(InvokeError::PayloadTooLarge);
        }
        Ok(pool)
    }

    /// The call runs to its end even when the caller stops waiting (an
    /// integration timeout, a closed client), as on Lambda; otherwise its
    /// environment would never return to the pool. It runs in the
    /// caller's task, and moves to a task of its own only if the caller
    /// drops it (a task per call cost a spawn and a cross-thread wake-up
    /// on every call: ~1.5 µs of the ~40 µs Stratus spends on a warm call).
    async fn run(
        pool: Arc<pool::Pool>,
        req: InvokeRequest,
        permits: pool::Permits,
        invoked_arn: Option<String>,
        stream_to: Option<StreamTo>,
    ) -> Result<InvokeResponse, InvokeError> {
        Finish(Some(Box::pin(async move {
            pool.invoke(req, permits, invoked_arn, stream_to).await
        })))
        .await
    }

    /// (live, idle) environments of a function, for tests and the dashboard.
    pub fn environments(&self, function: &str) -> Option<(usize, usize)> {
        self.pools.load().get(function).map(|p| p.counts())
    }

    /// Terminates every environment.
    pub fn shutdown(&self) {
        self.reaper.abort();
        for pool in self.pools.load().values() {
            pool.shutdown();
        }
        for pool in self.version_pools.lock().expect("versions lock").values() {
            pool.shutdown();
        }
    }
}

/// A future that is finished even if its caller drops it: dropped before
/// it is ready, it is handed to a task of its own. (Nothing in tokio or
/// futures does this; `tokio::spawn` does it for every call, at a cost.)
struct Finish<F>(Option<Pin<Box<F>>>)
where
    F: Future + Send + 'static,
    F::Output: Send + 'static;

impl<F> Future for Finish<F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let Some(fut) = self.0.as_mut() else {
            panic!("Finish polled after it was ready");
        };
        let out = std::task::ready!(fut.as_mut().poll(cx));
        self.0 = None;
        Poll::Ready(out)
    }
}

impl<F> Drop for Finish<F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn drop(&mut self) {
        if let (Some(fut), Ok(rt)) = (self.0.take(), tokio::runtime::Handle::try_current()) {
            rt.spawn(fut);
        }
    }
}

/// The invocation record a destination gets, as Lambda shapes it.
fn destination_record(
    rt: &Runtime,
    function: &str,
    request_id: &str,
    condition: &str,
    attempts: u32,
    request: &Bytes,
    outcome: Option<&Result<Bytes, FunctionError>>,
) -> Bytes {
    let json_of = |b: &Bytes| {
        serde_json::from_slice::<serde_json::Value>(b)
            .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(b).into_owned()))
    };
    let (name, qualifier) = stratus_config::split_qualifier(function);
    let mut response = serde_json::json!({
        "statusCode": 200,
        "executedVersion": qualifier.unwrap_or("$LATEST"),
    });
    let payload = match outcome {
        Some(Ok(b)) => json_of(b),
        Some(Err(e)) => {
            response["functionError"] = "Unhandled".into();
            json_of(&e.body)
        }
        None => serde_json::Value::Null,
    };
    let v = serde_json::json!({
        "version": "1.0",
        "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "requestContext": {
            "requestId": request_id,
            "functionArn": format!("arn:aws:lambda:{}:{ACCOUNT_ID}:function:{name}:{}", rt.server.region, qualifier.unwrap_or("$LATEST")),
            "condition": condition,
            "approximateInvokeCount": attempts,
        },
        "requestPayload": json_of(request),
        "responseContext": response,
        "responsePayload": payload,
    });
    Bytes::from(v.to_string())
}
