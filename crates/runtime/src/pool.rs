//! Per function: a pool of environments, each starting, idle or busy.
//!
//! A call first takes one of `concurrency` call slots (Lambda's reserved
//! concurrency, or the account's 1,000): a synchronous call that finds
//! none is refused at once (as Lambda throttles); queued work
//! (asynchronous events, WebSocket lifecycle events) waits for one,
//! bounded by its deadline. Then it takes one of `environments` local
//! environment permits, waiting for one (first come, first served) when
//! all are busy: a burst past what this machine runs is queued, never
//! refused. With both, the call takes an idle environment or starts one
//! (a cold start): the permits guarantee there is room. Both semaphores are
//! fair and FIFO. Calls never wait for each other beyond
//! that. The lock guards only the bookkeeping and is never held across an
//! await.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use stratus_config::Function;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::env::{Env, INIT_TIMEOUT};
use crate::launch::Launcher;
use crate::{InvokeError, InvokeRequest, InvokeResponse};

pub(crate) struct Pool {
    pub(crate) function: Arc<Function>,
    launcher: Arc<Launcher>,
    state: Mutex<State>,
    next_id: AtomicU64,
    /// One permit per call in progress, `concurrency` in all.
    slots: Arc<Semaphore>,
    /// One permit per call running in an environment, `environments` in all.
    envs: Arc<Semaphore>,
    /// Asynchronous events accepted and not yet done (queued or running).
    pub(crate) async_pending: AtomicUsize,
    /// Asynchronous events dropped: too old, or failed after their retries.
    pub(crate) async_dropped: AtomicU64,
    /// The function's code when the pool was made (`code_stamp`).
    pub(crate) stamp: u64,
    /// Replaced by a reload: environments stop as their calls end.
    draining: AtomicBool,
}

/// A fingerprint of a function's code folder: every file's path, size and
/// modification time (build outputs and caches left out), so a reload
/// knows which functions changed.
pub(crate) fn code_stamp(f: &Function) -> u64 {
    use std::hash::{Hash, Hasher};
    fn walk(dir: &std::path::Path, h: &mut std::collections::hash_map::DefaultHasher, depth: u32) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let mut entries: Vec<_> = entries.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name();
            if matches!(
                name.to_str(),
                Some("target" | "__pycache__" | "node_modules" | ".git" | ".stratus")
            ) {
                continue;
            }
            let Ok(meta) = e.metadata() else { continue };
            if meta.is_dir() {
                // Deep trees (a vendored dependency) are bounded.
                if depth < 8 {
                    walk(&e.path(), h, depth + 1);
                }
                continue;
            }
            e.path().hash(h);
            meta.len().hash(h);
            meta.modified().ok().hash(h);
        }
    }
    let mut h = std::collections::hash_map::DefaultHasher::new();
    walk(&f.code, &mut h, 0);
    h.finish()
}

#[derive(Default)]
struct State {
    /// Most recently used last: taken first, so the rest can go cold.
    idle: Vec<Arc<Env>>,
    /// Every live environment, starting, idle or busy.
    live: HashMap<u64, Arc<Env>>,
    /// Slots reserved by environments being started.
    starting: u32,
}

/// A call slot and an environment permit, held for one call.
pub(crate) struct Permits {
    _slot: OwnedSemaphorePermit,
    _env: OwnedSemaphorePermit,
}

enum Checkout {
    Warm(Arc<Env>),
    Start,
    Full,
}

impl Pool {
    pub(crate) fn new(function: Arc<Function>, launcher: Arc<Launcher>, stamp: u64) -> Pool {
        Pool {
            stamp,
            draining: AtomicBool::new(false),
            launcher,
            state: Mutex::new(State::default()),
            next_id: AtomicU64::new(1),
            slots: Arc::new(Semaphore::new(function.concurrency as usize)),
            envs: Arc::new(Semaphore::new(function.environments as usize)),
            async_pending: AtomicUsize::new(0),
            async_dropped: AtomicU64::new(0),
            function,
        }
    }

    fn checkout(&self) -> Checkout {
        let mut st = self.state.lock().expect("pool lock");
        while let Some(env) = st.idle.pop() {
            if env.is_alive() {
                return Checkout::Warm(env);
            }
            st.live.remove(&env.id);
        }
        self.reserve(&mut st)
    }

    /// Takes a slot for a new environment when `environments` allows.
    fn reserve(&self, st: &mut State) -> Checkout {
        if (st.live.len() as u32 + st.starting) < self.function.environments {
            st.starting += 1;
            Checkout::Start
        } else {
            Checkout::Full
        }
    }

    async fn start_env(&self, provisioned: bool) -> Result<Arc<Env>, InvokeError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let started = Env::start(id, self.function.clone(), &self.launcher, provisioned).await;
        let mut st = self.state.lock().expect("pool lock");
        st.starting -= 1;
        match started {
            Ok(env) => {
                st.live.insert(env.id, env.clone());
                Ok(env)
            }
            Err(e) => Err(InvokeError::Start(e)),
        }
    }

    fn checkin(&self, env: Arc<Env>) {
        *env.last_used.lock().expect("lock") = Instant::now();
        if self.draining.load(Ordering::SeqCst) {
            self.retire(&env);
            return;
        }
        let mut st = self.state.lock().expect("pool lock");
        if env.is_alive() {
            st.idle.push(env);
        } else {
            st.live.remove(&env.id);
        }
    }

    fn retire(&self, env: &Env) {
        env.kill();
        self.state.lock().expect("pool lock").live.remove(&env.id);
    }

    /// Starts `warm` environments ahead of calls (provisioned concurrency).
    pub(crate) async fn provision(&self) -> Result<(), InvokeError> {
        for _ in 0..self.function.warm {
            let Checkout::Start = self.reserve(&mut self.state.lock().expect("pool lock")) else {
                break;
            };
            let env = self.start_env(true).await?;
            self.checkin(env);
        }
        Ok(())
    }

    /// Stops idle environments unused for `idle_timeout`, keeping `warm`.
    pub(crate) fn reap(&self) {
        let now = Instant::now();
        let idle_timeout = self.function.idle_timeout;
        let mut st = self.state.lock().expect("pool lock");
        let keep = self.function.warm as usize;
        let mut stale = Vec::new();
        // idle is oldest-used first
        let mut i = 0;
        while i < st.idle.len() && st.live.len() - stale.len() > keep {
            let last = *st.idle[i].last_used.lock().expect("lock");
            if now.duration_since(last) >= idle_timeout {
                stale.push(st.idle.remove(i));
            } else {
                i += 1;
            }
        }
        for env in &stale {
            st.live.remove(&env.id);
        }
        drop(st);
        for env in stale {
            tracing::debug!(function = %self.function.name, "stopping an idle environment");
            env.kill();
        }
    }

    /// Replaced by a reload: idle environments stop now, busy ones when
    /// their call ends.
    pub(crate) fn drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
        let idle: Vec<Arc<Env>> = {
            let mut st = self.state.lock().expect("pool lock");
            let idle = std::mem::take(&mut st.idle);
            for env in &idle {
                st.live.remove(&env.id);
            }
            idle
        };
        for env in idle {
            env.kill();
        }
    }

    pub(crate) fn shutdown(&self) {
        let mut st = self.state.lock().expect("pool lock");
        st.idle.clear();
        for (_, env) in st.live.drain() {
            env.kill_now();
        }
    }

    /// A call refused at the function's concurrency: counted, and the error.
    fn throttled(&self) -> InvokeError {
        stratus_telemetry::FunctionThrottled {
            function: &self.function.name,
        }
        .emit();
        InvokeError::TooManyRequests
    }

    pub(crate) fn counts(&self) -> (usize, usize) {
        let st = self.state.lock().expect("pool lock");
        (st.live.len(), st.idle.len())
    }

    /// A call slot now, or `TooManyRequests`; then an environment, waiting
    /// for one until `deadline`.
    pub(crate) async fn slot_or_throttle(&self, deadline: Instant) -> Result<Permits, InvokeError> {
        let slot = self
            .slots
            .clone()
            .try_acquire_owned()
            .map_err(|_| self.throttled())?;
        self.env_by(slot, deadline).await
    }

    /// A call slot and an environment as soon as they free up, but not
    /// after `deadline`.
    pub(crate) async fn slot_by(&self, deadline: Instant) -> Result<Permits, InvokeError> {
        let slot = match tokio::time::timeout_at(deadline, self.slots.clone().acquire_owned()).await
        {
            Ok(Ok(permit)) => permit,
            _ => return Err(self.throttled()),
        };
        self.env_by(slot, deadline).await
    }

    async fn env_by(
        &self,
        slot: OwnedSemaphorePermit,
        deadline: Instant,
    ) -> Result<Permits, InvokeError> {
        let env = match self.envs.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                match tokio::time::timeout_at(deadline, self.envs.clone().acquire_owned()).await {
                    Ok(Ok(p)) => p,
                    _ => return Err(self.throttled()),
                }
            }
        };
        Ok(Permits {
            _slot: slot,
            _env: env,
        })
    }

    /// Runs one call with the permits it holds (released when it ends).
    pub(crate) async fn invoke(
        &self,
        req: InvokeRequest,
        _permits: Permits,
        invoked_arn: Option<String>,
        stream_to: Option<crate::StreamTo>,
    ) -> Result<InvokeResponse, InvokeError> {
        let request_id = uuid::Uuid::new_v4().to_string();
        let (env, cold) = match self.checkout() {
            Checkout::Warm(env) => (env, false),
            Checkout::Start => (self.start_env(false).await?, true),
            Checkout::Full => return Err(self.throttled()),
        };
        stratus_telemetry::InvocationStarted {
            function: &self.function.name,
            cold,
        }
        .emit();
        env.begin_logs(&request_id, req.tail_logs);
        env.log(&stratus_telemetry::start_line(&request_id));
        let pickup_limit = if cold {
            INIT_TIMEOUT
        } else {
            self.function.timeout
        };
        let executed_version = self
            .function
            .version
            .map_or_else(|| "$LATEST".to_owned(), |v| v.to_string());
        let stream_to = stream_to.map(|tx| (tx, executed_version.clone()));
        let ran = env
            .run(&request_id, req, invoked_arn, pickup_limit, stream_to)
            .await;
        // Everything the function printed before answering is logged now,
        // before END and REPORT.
        env.drain_logs();
        let start = ran.picked_at.unwrap_or(ran.ended_at);
        let duration = ran.ended_at.duration_since(start);
        let billed = ((duration.as_secs_f64() * 1000.0).ceil() as u64).max(1);
        let init = (cold && ran.picked_at.is_some()).then(|| start.duration_since(env.spawned_at));
        let finished = stratus_telemetry::InvocationFinished {
            function: &self.function.name,
            request_id: &request_id,
            duration,
            billed_ms: billed,
            memory_mb: self.function.memory_mb,
            max_memory_mb: env.peak_memory_mb(),
            init_duration: init,
            error_type: ran.result.as_ref().err().map(|e| e.error_type.as_str()),
        };
        if let Err(e) = &ran.result {
            env.log(&format!(
                "{}: {}",
                e.error_type,
                String::from_utf8_lossy(&e.body)
            ));
        }
        env.log(&stratus_telemetry::end_line(&request_id));
        env.log(&finished.report_line());
        finished.emit();
        let tail = env.end_logs();

        let reusable = match &ran.result {
            Ok(_) => true,
            Err(e) => e.kind == crate::ErrorKind::Handled,
        };
        if reusable && env.is_alive() {
            self.checkin(env);
        } else {
            self.retire(&env);
        }
        Ok(InvokeResponse {
            request_id,
            result: ran.result,
            log_tail: tail,
            duration,
            billed_ms: billed,
            init_duration: init,
            memory_mb: self.function.memory_mb,
            executed_version,
        })
    }
}
