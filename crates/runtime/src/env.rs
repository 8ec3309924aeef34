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
    /// The ARN the call named (an alias's), when not the environment's own.
    pub(crate) invoked_arn: Option<String>,
    pub(crate) timeout: Duration,
    /// The recursive-loop count its trace header carries.
    pub(crate) lineage: u32,
    pub(crate) reply: oneshot::Sender<Answer>,
}

/// The invocation the runtime took (its `next` returned), until it answers.
pub(crate) struct InFlight {
    pub(crate) request_id: String,
    pub(crate) picked_at: Instant,
    pub(crate) reply: oneshot::Sender<Answer>,
}

/// The runtime's answer to an invocation, and when it had taken it.
pub(crate) struct Answer {
    pub(crate) picked_at: Instant,
    pub(crate) reply: Reply,
}

pub(crate) enum Reply {
    Ok(Bytes),
    Err {
        error_type: String,
        body: Bytes,
    },
    TooLarge,
    /// A streamed response: its content type, and its body as the runtime
    /// writes it (ending with an error when its trailers say so).
    Stream {
        content_type: String,
        frames: mpsc::Receiver<Result<Bytes, FunctionError>>,
    },
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

/// What the environment and its Runtime API share.
pub(crate) struct Shared {
    pub(crate) function: Arc<Function>,
    pub(crate) arn: String,
    pub(crate) rx: tokio::sync::Mutex<mpsc::Receiver<Pending>>,
    pub(crate) inflight: Mutex<Option<InFlight>>,
    pub(crate) init_error: Mutex<Option<(String, Bytes)>>,
    exit: watch::Sender<Option<Exit>>,
    log: Mutex<LogState>,
    pub(crate) pid: AtomicU64,
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
            arn: launcher.function_arn(&function),
            function: function.clone(),
            rx: tokio::sync::Mutex::new(rx),
            inflight: Mutex::new(None),
            init_error: Mutex::new(None),
            exit: watch::channel(None).0,
            log: Mutex::new(LogState::default()),
            pid: AtomicU64::new(0),
            mark: launcher.mark(&function.name, id),
        });

        let server = tokio::spawn(crate::runtime_api::serve(listener, shared.clone()));

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
        req: crate::InvokeRequest,
        invoked_arn: Option<String>,
        pickup_limit: Duration,
        mut stream_to: Option<(crate::StreamTo, String)>,
    ) -> Ran {
        let crate::InvokeRequest {
            payload,
            client_context,
            cognito_identity,
            lineage,
            ..
        } = req;
        let _busy = Busy::mark(&self.memory);
        let timeout = self.shared.function.timeout;
        let (reply_tx, mut reply_rx) = oneshot::channel();
        let pending = Pending {
            request_id: request_id.to_owned(),
            payload,
            client_context,
            cognito_identity,
            invoked_arn,
            timeout,
            lineage,
            reply: reply_tx,
        };
        let handed = Instant::now();
        if self.tx.send(pending).await.is_err() {
            return self.ended(None, Err(self.exit_error(request_id).await));
        }
        let mut exit = self.shared.exit.subscribe();
        // One timer, no wake-up when the runtime takes the call: until it
        // is known to have taken it, the timer fires at the earliest the
        // call could time out, and each firing looks at what happened.
        let mut picked_at = None;
        let mut deadline = handed + pickup_limit.min(timeout);
        let result = loop {
            tokio::select! {
                r = &mut reply_rx => match r {
                    Ok(answer) => {
                        picked_at = Some(answer.picked_at);
                        match answer.reply {
                            Reply::Stream { content_type, frames } => {
                                let until = answer.picked_at + timeout;
                                let to = stream_to.take();
                                break self
                                    .relay(request_id, content_type, frames, to, until, &mut exit)
                                    .await;
                            }
                            other => break other.into_result(),
                        }
                    }
                    Err(_) => break Err(self.exit_error(request_id).await),
                },
                () = exited(&mut exit) => {
                    picked_at = picked_at.or_else(|| self.picked_at(request_id));
                    break Err(self.exit_error(request_id).await);
                }
                () = tokio::time::sleep_until(deadline) => {
                    picked_at = picked_at.or_else(|| self.picked_at(request_id));
                    let now = Instant::now();
                    match picked_at {
                        Some(at) if now < at + timeout => deadline = at + timeout,
                        Some(_) => {
                            self.kill();
                            break Err(timed_out(request_id, timeout));
                        }
                        None if now < handed + pickup_limit => deadline = handed + pickup_limit,
                        None => {
                            self.kill();
                            break Err(timed_out(request_id, pickup_limit));
                        }
                    }
                }
            }
        };
        self.ended(picked_at, result)
    }

    /// Passes a streamed response on as the runtime writes it, to the
    /// caller's stream (bounded: a slow reader slows the function, as a
    /// socket would), or gathers it for a caller that wants it whole (up to
    /// the synchronous limit, as Lambda's `Invoke` buffers a stream). The
    /// function's timeout covers the whole stream; a caller that goes away
    /// stops the environment, which frees it at once.
    async fn relay(
        &self,
        request_id: &str,
        content_type: String,
        mut frames: mpsc::Receiver<Result<Bytes, FunctionError>>,
        stream_to: Option<(crate::StreamTo, String)>,
        until: Instant,
        exit: &mut watch::Receiver<Option<Exit>>,
    ) -> Result<Bytes, FunctionError> {
        let timeout = self.shared.function.timeout;
        let out = match stream_to {
            None => None,
            Some((tx, executed_version)) => {
                let (otx, orx) = mpsc::channel(STREAM_QUEUE);
                let stream = crate::ResponseStream {
                    request_id: request_id.to_owned(),
                    executed_version,
                    content_type,
                    chunks: orx,
                };
                if tx.send(stream).is_err() {
                    return Err(self.abandoned(request_id));
                }
                Some(otx)
            }
        };
        let limit = if out.is_some() {
            crate::MAX_STREAMED_RESPONSE
        } else {
            MAX_SYNC_PAYLOAD
        };
        let mut gathered = bytes::BytesMut::new();
        let mut total = 0usize;
        let mut paced_from: Option<Instant> = None;
        let failed = loop {
            let frame = tokio::select! {
                f = frames.recv() => f,
                () = caller_gone(out.as_ref()) => return Err(self.abandoned(request_id)),
                () = exited(exit) => break self.exit_error(request_id).await,
                () = tokio::time::sleep_until(until) => {
                    self.kill();
                    break timed_out(request_id, timeout);
                }
            };
            let chunk = match frame {
                None => {
                    finish(out.as_ref(), crate::StreamEvent::End).await;
                    return Ok(gathered.freeze());
                }
                Some(Err(e)) => break e,
                Some(Ok(chunk)) => chunk,
            };
            total += chunk.len();
            if total > limit {
                // The function is still writing: it is stopped.
                self.kill();
                break FunctionError {
                    kind: ErrorKind::Crash,
                    ..too_large(limit)
                };
            }
            let Some(otx) = &out else {
                gathered.extend_from_slice(&chunk);
                continue;
            };
            // Past the burst, Lambda's bandwidth: the chunk goes when the
            // bytes before it would have at that rate.
            let mut due = None;
            if total > crate::STREAM_BURST {
                let from = *paced_from.get_or_insert_with(Instant::now);
                let paced = (total - crate::STREAM_BURST) as f64 / crate::STREAM_BANDWIDTH as f64;
                due = Some(from + Duration::from_secs_f64(paced));
            }
            let sent = async {
                if let Some(due) = due {
                    tokio::time::sleep_until(due).await;
                }
                otx.send(crate::StreamEvent::Data(chunk)).await
            };
            tokio::select! {
                r = sent => if r.is_err() {
                    return Err(self.abandoned(request_id));
                },
                () = tokio::time::sleep_until(until) => {
                    self.kill();
                    break timed_out(request_id, timeout);
                }
            }
        };
        finish(out.as_ref(), crate::StreamEvent::Failed(failed.clone())).await;
        Err(failed)
    }

    /// The caller of a streamed call went away: the function is stopped
    /// (its environment freed now rather than at its timeout).
    fn abandoned(&self, request_id: &str) -> FunctionError {
        self.log("Stratus: the caller went away during the streamed response; the environment is stopped");
        self.kill();
        FunctionError::new(
            ErrorKind::Crash,
            "Stratus.CallerGone",
            format!("RequestId: {request_id} Error: the caller closed the stream"),
        )
    }

    /// When the runtime took `request_id`, if it is running it.
    fn picked_at(&self, request_id: &str) -> Option<Instant> {
        let inflight = self.shared.inflight.lock().expect("lock");
        inflight
            .as_ref()
            .filter(|f| f.request_id == request_id)
            .map(|f| f.picked_at)
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

impl Reply {
    fn into_result(self) -> Result<Bytes, FunctionError> {
        match self {
            Reply::Ok(body) => Ok(body),
            Reply::Err { error_type, body } => Err(FunctionError {
                kind: ErrorKind::Handled,
                error_type,
                body,
            }),
            Reply::TooLarge => Err(too_large(MAX_SYNC_PAYLOAD)),
            // Streams are relayed before they get here (`Env::relay`).
            Reply::Stream { .. } => Ok(Bytes::new()),
        }
    }
}

/// Chunks a streamed response queues ahead of a slow reader.
const STREAM_QUEUE: usize = 8;

/// Resolves when the caller of a streamed call has dropped its stream.
async fn caller_gone(out: Option<&mpsc::Sender<crate::StreamEvent>>) {
    match out {
        Some(tx) => tx.closed().await,
        None => std::future::pending().await,
    }
}

/// Tells a streamed call's caller how the stream ended (waiting a little
/// for room: the end is what tells a whole stream from a cut one).
async fn finish(out: Option<&mpsc::Sender<crate::StreamEvent>>, last: crate::StreamEvent) {
    if let Some(tx) = out {
        let _ = tx.send_timeout(last, Duration::from_secs(2)).await;
    }
}

fn too_large(limit: usize) -> FunctionError {
    FunctionError::new(
        ErrorKind::Handled,
        "Function.ResponseSizeTooLarge",
        format!("Response payload size exceeded maximum allowed payload size ({limit} bytes)."),
    )
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

pub(crate) fn kill_group(pid: u32) {
    if pid > 0 {
        let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
    }
}

pub(crate) fn log_line(shared: &Shared, line: &str) {
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
