//! One execution environment: an OS process running a function's bootstrap,
//! and the Runtime API endpoint that only this process talks to.
//!
//! Identity: every environment gets its own listener, so
//! `AWS_LAMBDA_RUNTIME_API` names it uniquely; nothing is inferred from the
//! caller's socket address. The environment never decides whether it is
//! reused: the pool does.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use stratus_config::Function;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::launch::Launcher;
use crate::{ErrorKind, FunctionError, MAX_SYNC_PAYLOAD};

/// An invocation handed to the environment, waiting for its `next` call.
pub(crate) struct Pending {
    pub(crate) request_id: String,
    pub(crate) payload: Bytes,
    pub(crate) client_context: Option<String>,
    pub(crate) cognito_identity: Option<String>,
    pub(crate) timeout: Duration,
    picked: oneshot::Sender<()>,
    reply: oneshot::Sender<Reply>,
}

struct InFlight {
    request_id: String,
    reply: oneshot::Sender<Reply>,
}

enum Reply {
    Ok(Bytes),
    Err { error_type: String, body: Bytes },
    TooLarge,
}

/// How the process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    Code(i32),
    Signal(i32),
}

impl Exit {
    /// As AWS words it (Go's `ExitError` text): `exit status 1`, `signal: killed`.
    fn describe(self) -> String {
        match self {
            Exit::Code(c) => format!("exit status {c}"),
            Exit::Signal(s) => {
                let name = match Signal::try_from(s) {
                    Ok(Signal::SIGKILL) => "killed".to_owned(),
                    Ok(Signal::SIGTERM) => "terminated".to_owned(),
                    Ok(Signal::SIGSEGV) => "segmentation fault".to_owned(),
                    Ok(Signal::SIGABRT) => "aborted".to_owned(),
                    Ok(other) => other.as_str().to_lowercase(),
                    Err(_) => format!("signal {s}"),
                };
                format!("signal: {name}")
            }
        }
    }
}

struct Shared {
    function: Arc<Function>,
    arn: String,
    rx: tokio::sync::Mutex<mpsc::Receiver<Pending>>,
    inflight: Mutex<Option<InFlight>>,
    init_error: Mutex<Option<(String, Bytes)>>,
    exit: watch::Sender<Option<Exit>>,
    log: Mutex<LogState>,
    pid: AtomicU64,
    /// Carried by every process of the environment (see `sandbox`).
    mark: String,
}

#[derive(Default)]
struct LogState {
    request_id: Option<String>,
    /// Lines of the current invocation, for `X-Amz-Log-Type: Tail`.
    tail: Option<String>,
}

/// Output of one run of an invocation on an environment.
pub(crate) struct Ran {
    pub(crate) result: Result<Bytes, FunctionError>,
    /// When the runtime took the event (its `next` returned).
    pub(crate) picked_at: Option<Instant>,
    pub(crate) ended_at: Instant,
}

pub(crate) struct Env {
    pub(crate) id: u64,
    /// The memory watchdog's view of this environment.
    memory: Arc<crate::memory::Watched>,
    /// The process's stdout and stderr.
    pumps: Vec<Arc<Pump>>,
    shared: Arc<Shared>,
    tx: mpsc::Sender<Pending>,
    pub(crate) spawned_at: Instant,
    server: JoinHandle<()>,
    pub(crate) last_used: Mutex<Instant>,
}

impl Drop for Env {
    fn drop(&mut self) {
        self.kill();
        self.server.abort();
    }
}

/// The response limit as Lambda's Runtime API words it in its 413 (the
/// 6 MB payload limit plus 100 bytes of allowance).
const RESPONSE_LIMIT_AS_WORDED: usize = MAX_SYNC_PAYLOAD + 100;

/// Init phase limit (AWS: 10 s).
pub(crate) const INIT_TIMEOUT: Duration = Duration::from_secs(10);

impl Env {
    pub(crate) async fn start(
        id: u64,
        function: Arc<Function>,
        launcher: &Launcher,
        provisioned: bool,
    ) -> Result<Arc<Env>, String> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("cannot bind a Runtime API listener: {e}"))?;
        let addr: SocketAddr = listener.local_addr().map_err(|e| e.to_string())?;
        let (tx, rx) = mpsc::channel(1);
        let shared = Arc::new(Shared {
            arn: launcher.function_arn(&function.name),
            function: function.clone(),
            rx: tokio::sync::Mutex::new(rx),
            inflight: Mutex::new(None),
            init_error: Mutex::new(None),
            exit: watch::channel(None).0,
            log: Mutex::new(LogState::default()),
            pid: AtomicU64::new(0),
            mark: launcher.mark(&function.name, id),
        });

        let router = axum::Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .layer(axum::extract::DefaultBodyLimit::disable())
            .with_state(shared.clone());
        let server = tokio::spawn(serve_runtime_api(listener, router, shared.clone()));

        let log_stream = format!(
            "{}/[$LATEST]{}",
            chrono::Utc::now().format("%Y/%m/%d"),
            uuid::Uuid::new_v4().simple()
        );
        let mut cmd = launcher.command(&function, addr, &log_stream, provisioned, &shared.mark)?;
        let spawned_at = Instant::now();
        let mut child = cmd.spawn().map_err(|e| {
            server.abort();
            format!("cannot start function {:?}: {e}", function.name)
        })?;
        let pid = child.id().unwrap_or(0);
        shared.pid.store(u64::from(pid), Ordering::SeqCst);
        crate::sandbox::leader_started(pid);

        let mut pumps = Vec::new();
        let pipes = [
            child.stdout.take().map(|p| p.into_owned_fd()),
            child.stderr.take().map(|p| p.into_owned_fd()),
        ];
        for fd in pipes.into_iter().flatten() {
            let pump = fd
                .and_then(Pump::new)
                .map_err(|e| format!("cannot read function {:?}'s output: {e}", function.name))?;
            tokio::spawn(pump_lines(shared.clone(), pump.clone()));
            pumps.push(pump);
        }
        let watcher = shared.clone();
        tokio::spawn(async move {
            let status = child.wait().await;
            let exit = match status {
                Ok(st) => {
                    use std::os::unix::process::ExitStatusExt;
                    match (st.code(), st.signal()) {
                        (Some(c), _) => Exit::Code(c),
                        (None, Some(s)) => Exit::Signal(s),
                        (None, None) => Exit::Code(-1),
                    }
                }
                Err(_) => Exit::Code(-1),
            };
            crate::sandbox::leader_ended(pid);
            // Whatever else is left of the environment goes with it.
            end_environment(pid, watcher.mark.clone());
            watcher.exit.send_replace(Some(exit));
        });
        let limit_mb = function.memory_mb;
        let killer = shared.clone();
        let memory = crate::memory::Watched::new(pid, limit_mb, move |kb| {
            log_line(
                &killer,
                &format!(
                    "Stratus: killed: memory {} MB over the limit of {limit_mb} MB",
                    kb.div_ceil(1024)
                ),
            );
            kill_group(pid);
        });

        Ok(Arc::new(Env {
            id,
            memory,
            pumps,
            shared,
            tx,
            spawned_at,
            server,
            last_used: Mutex::new(Instant::now()),
        }))
    }

    pub(crate) fn is_alive(&self) -> bool {
        self.shared.exit.borrow().is_none()
    }

    /// Kills the process group; the exit watcher then ends what is left
    /// of the environment (marked processes that left the group).
    pub(crate) fn kill(&self) {
        let pid = self.shared.pid.load(Ordering::SeqCst) as u32;
        if self.is_alive() {
            kill_group(pid);
        }
    }

    /// Kills the environment and everything it started, before returning
    /// (at shutdown, when the process is about to exit).
    pub(crate) fn kill_now(&self) {
        let pid = self.shared.pid.load(Ordering::SeqCst) as u32;
        crate::sandbox::end_environment(pid, &self.shared.mark);
    }

    /// The most memory its processes held, sampled once more now (the
    /// call just ended) unless the watchdog just did, for `Max Memory Used`.
    pub(crate) fn peak_memory_mb(&self) -> u64 {
        self.memory.sample_if_stale();
        self.memory.peak_mb()
    }

    /// Writes a line to this environment's log (and the tail, if collected).
    pub(crate) fn log(&self, line: &str) {
        log_line(&self.shared, line);
    }

    /// Logs everything the function has written so far (see `Pump`).
    pub(crate) fn drain_logs(&self) {
        for pump in &self.pumps {
            pump.drain(&self.shared);
        }
    }

    pub(crate) fn begin_logs(&self, request_id: &str, tail: bool) {
        let mut log = self.shared.log.lock().expect("log lock");
        log.request_id = Some(request_id.to_owned());
        log.tail = tail.then(String::new);
    }

    pub(crate) fn end_logs(&self) -> Option<String> {
        let mut log = self.shared.log.lock().expect("log lock");
        log.request_id = None;
        log.tail.take()
    }

    /// Runs one invocation: waits for the runtime to take it (bounded by
    /// `pickup_limit`), then for its answer (bounded by the function timeout).
    pub(crate) async fn run(
        &self,
        request_id: &str,
        payload: Bytes,
        client_context: Option<String>,
        cognito_identity: Option<String>,
        pickup_limit: Duration,
    ) -> Ran {
        let _busy = Busy::mark(&self.memory);
        let timeout = self.shared.function.timeout;
        let (picked_tx, picked_rx) = oneshot::channel();
        let (reply_tx, reply_rx) = oneshot::channel();
        let pending = Pending {
            request_id: request_id.to_owned(),
            payload,
            client_context,
            cognito_identity,
            timeout,
            picked: picked_tx,
            reply: reply_tx,
        };
        if self.tx.send(pending).await.is_err() {
            return self.ended(None, Err(self.exit_error(request_id).await));
        }
        let mut exit = self.shared.exit.subscribe();
        let picked = tokio::select! {
            r = picked_rx => r.is_ok(),
            () = exited(&mut exit) => false,
            () = tokio::time::sleep(pickup_limit) => {
                self.kill();
                return self.ended(None, Err(timed_out(request_id, pickup_limit)));
            }
        };
        if !picked {
            return self.ended(None, Err(self.exit_error(request_id).await));
        }
        let picked_at = Instant::now();
        let mut exit = self.shared.exit.subscribe();
        let result = tokio::select! {
            r = reply_rx => match r {
                Ok(Reply::Ok(body)) => Ok(body),
                Ok(Reply::Err { error_type, body }) => Err(FunctionError {
                    kind: ErrorKind::Handled,
                    error_type,
                    body,
                }),
                Ok(Reply::TooLarge) => Err(FunctionError::new(
                    ErrorKind::Handled,
                    "Function.ResponseSizeTooLarge",
                    format!("Response payload size exceeded maximum allowed payload size ({MAX_SYNC_PAYLOAD} bytes)."),
                )),
                Err(_) => Err(self.exit_error(request_id).await),
            },
            () = exited(&mut exit) => Err(self.exit_error(request_id).await),
            () = tokio::time::sleep_until(picked_at + timeout) => {
                self.kill();
                Err(timed_out(request_id, timeout))
            }
        };
        self.ended(Some(picked_at), result)
    }

    fn ended(&self, picked_at: Option<Instant>, result: Result<Bytes, FunctionError>) -> Ran {
        Ran {
            result,
            picked_at,
            ended_at: Instant::now(),
        }
    }

    /// The error for a process that is gone (or going): init error, out of
    /// memory or plain exit.
    async fn exit_error(&self, request_id: &str) -> FunctionError {
        let mut exit = self.shared.exit.subscribe();
        let _ = tokio::time::timeout(Duration::from_secs(2), exited(&mut exit)).await;
        let code = (*exit.borrow()).unwrap_or(Exit::Signal(Signal::SIGKILL as i32));
        if let Some((error_type, body)) = self.shared.init_error.lock().expect("lock").clone() {
            return FunctionError {
                kind: ErrorKind::Init,
                error_type,
                body,
            };
        }
        let why = code.describe();
        if self.memory.killed.load(Ordering::SeqCst) {
            return FunctionError::new(
                ErrorKind::Crash,
                "Runtime.OutOfMemory",
                format!("RequestId: {request_id} Error: Runtime exited with error: {why}"),
            );
        }
        FunctionError::new(
            ErrorKind::Crash,
            "Runtime.ExitError",
            format!("RequestId: {request_id} Error: Runtime exited with error: {why}"),
        )
    }
}

/// Marks an environment as running a call (sampled every tick) while alive.
struct Busy<'a>(&'a crate::memory::Watched);

impl<'a> Busy<'a> {
    fn mark(w: &'a crate::memory::Watched) -> Busy<'a> {
        w.busy.store(true, Ordering::Relaxed);
        Busy(w)
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.busy.store(false, Ordering::Relaxed);
    }
}

/// Lambda's error for a call past its time.
fn timed_out(request_id: &str, limit: Duration) -> FunctionError {
    let secs = limit.as_secs_f64();
    FunctionError::new(
        ErrorKind::Timeout,
        "Sandbox.Timedout",
        format!("RequestId: {request_id} Error: Task timed out after {secs:.2} seconds"),
    )
}

/// Resolves once the process has exited (the watch guard never crosses an await).
async fn exited(rx: &mut watch::Receiver<Option<Exit>>) {
    let _ = rx.wait_for(Option::is_some).await;
}

/// Kills what is left of an environment off the async threads (it reads
/// `/proc`), or right here outside a runtime.
fn end_environment(pid: u32, mark: String) {
    match tokio::runtime::Handle::try_current() {
        Ok(h) => {
            h.spawn_blocking(move || crate::sandbox::end_environment(pid, &mark));
        }
        Err(_) => crate::sandbox::end_environment(pid, &mark),
    }
}

fn kill_group(pid: u32) {
    if pid > 0 {
        let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
    }
}

fn log_line(shared: &Shared, line: &str) {
    let mut log = shared.log.lock().expect("log lock");
    stratus_telemetry::FunctionOutput {
        function: &shared.function.name,
        request_id: log.request_id.as_deref(),
        line,
    }
    .emit();
    if let Some(tail) = log.tail.as_mut() {
        tail.push_str(line);
        tail.push('\n');
        // Only the last 4 KB are ever returned; keep a bit more than that.
        if tail.len() > 16 * 1024 {
            let cut = tail.len() - 8 * 1024;
            let cut = (cut..tail.len())
                .find(|i| tail.is_char_boundary(*i))
                .unwrap_or(0);
            tail.drain(..cut);
        }
    }
}

/// Lambda splits log events at 256 KB; a longer line is logged in pieces.
pub(crate) const MAX_LOG_LINE: usize = 256 * 1024;

/// One of a function's output pipes, read line by line: a line is cut at
/// `MAX_LOG_LINE` (never buffered whole) and decoded lossily, so no byte a
/// function writes can end the reader and close its pipe.
///
/// A task reads it as output arrives; the pool also drains it (a
/// non-blocking read to the end of what is there) when a call ends, so
/// that everything the function printed before answering is logged before
/// `END` and `REPORT`, whatever the scheduler did.
struct Pump {
    pipe: tokio::net::unix::pipe::Receiver,
    /// The line being gathered; the lock also keeps reads in order.
    line: Mutex<Vec<u8>>,
}

impl Pump {
    fn new(fd: std::os::fd::OwnedFd) -> std::io::Result<Arc<Pump>> {
        Ok(Arc::new(Pump {
            pipe: tokio::net::unix::pipe::Receiver::from_owned_fd(fd)?,
            line: Mutex::new(Vec::new()),
        }))
    }

    /// Reads what the pipe holds now and logs every complete line; true at
    /// the end of output (the process is gone).
    fn drain(&self, shared: &Shared) -> bool {
        let mut line = self.line.lock().expect("pump lock");
        let mut buf = [0u8; 8 * 1024];
        loop {
            match self.pipe.try_read(&mut buf) {
                Ok(0) => {
                    if !line.is_empty() {
                        emit_line(shared, &mut line);
                    }
                    return true;
                }
                Ok(n) => feed(shared, &mut line, &buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
                Err(_) => return true,
            }
        }
    }
}

/// Adds bytes to the line being gathered, logging each line completed (by
/// a newline or by reaching `MAX_LOG_LINE`).
fn feed(shared: &Shared, line: &mut Vec<u8>, mut data: &[u8]) {
    while !data.is_empty() {
        let room = MAX_LOG_LINE - line.len();
        let window = &data[..data.len().min(room)];
        let (take, complete) = match memchr_newline(window) {
            Some(i) => (i + 1, true),
            None => (window.len(), line.len() + window.len() >= MAX_LOG_LINE),
        };
        line.extend_from_slice(&data[..take]);
        data = &data[take..];
        if complete {
            emit_line(shared, line);
        }
    }
}

async fn pump_lines(shared: Arc<Shared>, pump: Arc<Pump>) {
    loop {
        if pump.pipe.readable().await.is_err() || pump.drain(&shared) {
            return;
        }
    }
}

fn memchr_newline(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == b'\n')
}

fn emit_line(shared: &Shared, line: &mut Vec<u8>) {
    if line.last() == Some(&b'\n') {
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
    }
    log_line(shared, &String::from_utf8_lossy(line));
    line.clear();
    // A huge line's buffer is not kept for the next, short one.
    if line.capacity() > 64 * 1024 {
        line.shrink_to(8 * 1024);
    }
}

/// Serves the Runtime API to the environment's own processes only: a
/// connection from any other process is refused and logged (see `peer`).
async fn serve_runtime_api(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    shared: Arc<Shared>,
) {
    let Ok(local) = listener.local_addr() else {
        return;
    };
    let service = hyper_util::service::TowerToHyperService::new(router);
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let pgid = shared.pid.load(Ordering::SeqCst) as u32;
        tracing::debug!(function = %shared.function.name, %peer, "Runtime API: new connection");
        let own =
            tokio::task::spawn_blocking(move || crate::peer::held_by_group(peer, local, pgid))
                .await
                .unwrap_or(false);
        if !own {
            tracing::warn!(
                target: "stratus::function",
                function = %shared.function.name,
                %peer,
                "Runtime API: refused a connection from a process outside the environment"
            );
            continue;
        }
        let service = service.clone();
        tokio::spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}

// ---- The Runtime API, as the function's bootstrap sees it ----

async fn next(State(s): State<Arc<Shared>>) -> Response {
    // One `next` at a time: an environment runs one invocation at a time.
    let mut rx = s.rx.lock().await;
    loop {
        let Some(p) = rx.recv().await else {
            // The environment is being retired: never answer.
            drop(rx);
            return std::future::pending().await;
        };
        let Pending {
            request_id,
            payload,
            client_context,
            cognito_identity,
            timeout,
            picked,
            reply,
        } = p;
        if picked.send(()).is_err() {
            continue; // the caller gave up before the runtime was ready
        }
        let deadline = crate::epoch_ms() + timeout.as_millis() as i64;
        *s.inflight.lock().expect("lock") = Some(InFlight {
            request_id: request_id.clone(),
            reply,
        });
        let mut headers = HeaderMap::new();
        let mut set = |k: &'static str, v: &str| {
            if let Ok(v) = HeaderValue::from_str(v) {
                headers.insert(k, v);
            }
        };
        set("content-type", "application/json");
        set("lambda-runtime-aws-request-id", &request_id);
        set("lambda-runtime-deadline-ms", &deadline.to_string());
        set("lambda-runtime-invoked-function-arn", &s.arn);
        set("lambda-runtime-trace-id", &trace_id());
        if let Some(c) = &client_context {
            set("lambda-runtime-client-context", c);
        }
        if let Some(c) = &cognito_identity {
            set("lambda-runtime-cognito-identity", c);
        }
        return (StatusCode::OK, headers, Body::from(payload)).into_response();
    }
}

/// An X-Ray style trace header, as Lambda passes it.
fn trace_id() -> String {
    let secs = crate::epoch_ms() / 1000;
    let id = uuid::Uuid::new_v4().simple().to_string();
    let parent = uuid::Uuid::new_v4().simple().to_string();
    format!(
        "Root=1-{secs:08x}-{};Parent={};Sampled=0",
        &id[..24],
        &parent[..16]
    )
}

fn accepted() -> Response {
    (
        StatusCode::ACCEPTED,
        [("content-type", "application/json")],
        r#"{"status":"OK"}"#,
    )
        .into_response()
}

fn runtime_api_error(status: StatusCode, error_type: &str, message: &str) -> Response {
    let body = serde_json::json!({ "errorMessage": message, "errorType": error_type });
    (status, axum::Json(body)).into_response()
}

/// Reads a body up to the synchronous payload limit; `None` when over it.
async fn read_limited(req: Request) -> Option<Bytes> {
    axum::body::to_bytes(req.into_body(), MAX_SYNC_PAYLOAD)
        .await
        .ok()
}

/// 400 for a response or error about an invocation this environment does not run.
fn invalid_request_id() -> Response {
    runtime_api_error(
        StatusCode::BAD_REQUEST,
        "InvalidRequestID",
        "Invalid request ID",
    )
}

fn take_inflight(s: &Shared, id: &str) -> Option<InFlight> {
    let mut slot = s.inflight.lock().expect("lock");
    if slot.as_ref().is_some_and(|f| f.request_id == id) {
        slot.take()
    } else {
        None
    }
}

async fn response(State(s): State<Arc<Shared>>, Path(id): Path<String>, req: Request) -> Response {
    let Some(flight) = take_inflight(&s, &id) else {
        return invalid_request_id();
    };
    match read_limited(req).await {
        Some(body) => {
            let _ = flight.reply.send(Reply::Ok(body));
            accepted()
        }
        None => {
            let _ = flight.reply.send(Reply::TooLarge);
            runtime_api_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLarge",
                &format!(
                    "Exceeded maximum allowed payload size ({RESPONSE_LIMIT_AS_WORDED} bytes)."
                ),
            )
        }
    }
}

fn error_type_of(headers: &HeaderMap, body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("errorType")?.as_str().map(str::to_owned))
        .or_else(|| {
            headers
                .get("lambda-runtime-function-error-type")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "Unhandled".to_owned())
}

async fn error(State(s): State<Arc<Shared>>, Path(id): Path<String>, req: Request) -> Response {
    let Some(flight) = take_inflight(&s, &id) else {
        return invalid_request_id();
    };
    let headers = req.headers().clone();
    let body = read_limited(req).await.unwrap_or_default();
    let error_type = error_type_of(&headers, &body);
    let _ = flight.reply.send(Reply::Err { error_type, body });
    accepted()
}

async fn init_error(State(s): State<Arc<Shared>>, req: Request) -> Response {
    let headers = req.headers().clone();
    let body = read_limited(req).await.unwrap_or_default();
    let error_type = error_type_of(&headers, &body);
    let line = format!(
        "INIT_REPORT Init error: {error_type}: {}",
        String::from_utf8_lossy(&body)
    );
    log_line(&s, &line);
    *s.init_error.lock().expect("lock") = Some((error_type, body));
    // An environment whose init failed is never used again.
    let pid = s.pid.load(Ordering::SeqCst) as u32;
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        kill_group(pid);
    });
    accepted()
}
