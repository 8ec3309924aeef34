//! The memory limit, enforced by a resident-memory watchdog: an
//! environment is killed when the resident memory of its processes (the
//! bootstrap and everything it started) passes `memory` MB. (cgroups v2
//! would be stricter but need a delegated cgroup, which a user's machine
//! rarely gives.)
//!
//! One thread watches every environment, so sampling costs no task, timer
//! or blocking-pool hop per environment: every 20 ms it reads the
//! environments that are running a call, and the idle ones once a second
//! (they can only grow through background work). A sample reads
//! `/proc/PID/statm` (a few bytes) for each process of the environment,
//! found through `/proc/PID/task/TID/children`. The pool also samples at the
//! end of every call, for `Max Memory Used`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

/// How often running environments are sampled.
const TICK: Duration = Duration::from_millis(20);
/// Idle environments are sampled every this many ticks (1 s).
const IDLE_EVERY: u64 = 50;
/// An environment's descendants are walked every this many samples.
const CHILDREN_EVERY: u64 = 5;

/// Milliseconds on a monotonic clock private to the watchdog.
#[allow(clippy::disallowed_types)] // a plain thread's clock, not async code
fn now_ms() -> u64 {
    static START: OnceLock<std::time::Instant> = OnceLock::new();
    START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_millis() as u64
}

/// What the watchdog knows of one environment.
pub(crate) struct Watched {
    pub(crate) pid: u32,
    pub(crate) limit_kb: u64,
    /// Running a call: sampled every tick.
    pub(crate) busy: AtomicBool,
    /// The most resident memory seen, in KB.
    pub(crate) peak_kb: AtomicU64,
    /// Set once the watchdog killed the environment.
    pub(crate) killed: AtomicBool,
    /// Samples taken; the descendants are walked every `CHILDREN_EVERY`.
    samples: AtomicU64,
    /// The descendants' resident KB at the last walk.
    children_kb: AtomicU64,
    /// When the last sample was taken (ms since the watchdog started).
    last_sample_ms: AtomicU64,
    /// The bootstrap's `/proc/PID/statm`, kept open.
    statm: Option<std::fs::File>,
    /// Called (once) when the limit is passed, with the resident KB.
    on_exceeded: Box<dyn Fn(u64) + Send + Sync>,
}

impl Watched {
    pub(crate) fn new(
        pid: u32,
        limit_mb: u32,
        on_exceeded: impl Fn(u64) + Send + Sync + 'static,
    ) -> Arc<Watched> {
        let w = Arc::new(Watched {
            pid,
            limit_kb: u64::from(limit_mb) * 1024,
            busy: AtomicBool::new(false),
            peak_kb: AtomicU64::new(0),
            killed: AtomicBool::new(false),
            samples: AtomicU64::new(0),
            children_kb: AtomicU64::new(0),
            last_sample_ms: AtomicU64::new(0),
            statm: std::fs::File::open(format!("/proc/{pid}/statm")).ok(),
            on_exceeded: Box::new(on_exceeded),
        });
        watchdog()
            .lock()
            .expect("watchdog lock")
            .push(Arc::downgrade(&w));
        w
    }

    /// Samples now: updates the peak, and enforces the limit. False once
    /// the process is gone.
    pub(crate) fn sample(&self) -> bool {
        let own = match &self.statm {
            Some(f) => read_rss_kb(f),
            None => rss_kb(self.pid),
        };
        let Some(own) = own else {
            return false;
        };
        // The process tree changes rarely: walk it every few samples and
        // reuse the figure in between (a file read per process saved).
        if self.samples.fetch_add(1, Ordering::Relaxed) % CHILDREN_EVERY == 0 {
            let children = descendants_rss_kb(self.pid);
            self.children_kb.store(children, Ordering::Relaxed);
        }
        self.last_sample_ms.store(now_ms(), Ordering::Relaxed);
        let kb = own + self.children_kb.load(Ordering::Relaxed);
        self.peak_kb.fetch_max(kb, Ordering::Relaxed);
        if kb > self.limit_kb && !self.killed.swap(true, Ordering::SeqCst) {
            (self.on_exceeded)(kb);
        }
        true
    }

    /// Samples unless the watchdog did within the last tick.
    pub(crate) fn sample_if_stale(&self) {
        let age = now_ms().saturating_sub(self.last_sample_ms.load(Ordering::Relaxed));
        if age >= TICK.as_millis() as u64 {
            self.sample();
        }
    }

    pub(crate) fn peak_mb(&self) -> u64 {
        self.peak_kb.load(Ordering::Relaxed).div_ceil(1024)
    }
}

/// The watched environments; the thread starts with the first one.
fn watchdog() -> &'static Mutex<Vec<Weak<Watched>>> {
    static WATCHED: OnceLock<Mutex<Vec<Weak<Watched>>>> = OnceLock::new();
    WATCHED.get_or_init(|| {
        std::thread::Builder::new()
            .name("stratus-memory".into())
            .spawn(run)
            .expect("spawn the memory watchdog");
        Mutex::new(Vec::new())
    })
}

/// A plain thread with its own clock: it blocks no async worker, and
/// sleeping is its job.
#[allow(clippy::disallowed_methods)]
fn run() {
    for tick in 0u64.. {
        std::thread::sleep(TICK);
        let watched: Vec<Arc<Watched>> = {
            let mut list = watchdog().lock().expect("watchdog lock");
            list.retain(|w| w.strong_count() > 0);
            list.iter().filter_map(Weak::upgrade).collect()
        };
        for w in watched {
            if w.busy.load(Ordering::Relaxed) || tick % IDLE_EVERY == 0 {
                w.sample();
            }
        }
    }
}

fn page_kb() -> u64 {
    static PAGE_KB: OnceLock<u64> = OnceLock::new();
    *PAGE_KB.get_or_init(|| {
        nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
            .ok()
            .flatten()
            .map_or(4, |b| (b as u64 / 1024).max(1))
    })
}

/// Resident memory of all of `pid`'s descendants, in KB.
fn descendants_rss_kb(pid: u32) -> u64 {
    let mut total = 0;
    let mut stack = children(pid);
    let mut seen = 0;
    while let Some(child) = stack.pop() {
        // Bounded: a fork bomb is the memory limit's business, not a hang here.
        seen += 1;
        if seen > 4096 {
            break;
        }
        total += rss_kb(child).unwrap_or(0);
        stack.extend(children(child));
    }
    total
}

fn rss_kb(pid: u32) -> Option<u64> {
    let statm = std::fs::read(format!("/proc/{pid}/statm")).ok()?;
    rss_of_statm(&statm)
}

/// Reads an open `statm` again; `None` once its process is gone (procfs
/// answers ESRCH then).
fn read_rss_kb(f: &std::fs::File) -> Option<u64> {
    use std::os::unix::fs::FileExt;
    let mut buf = [0u8; 128];
    let n = f.read_at(&mut buf, 0).ok()?;
    rss_of_statm(&buf[..n])
}

/// `statm` holds sizes in pages: total, resident, shared, ...
fn rss_of_statm(statm: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(statm).ok()?;
    let pages: u64 = text.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * page_kb())
}

/// The direct children of every thread of `pid`.
fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for task in tasks.flatten() {
        if let Ok(list) = std::fs::read_to_string(task.path().join("children")) {
            out.extend(
                list.split_whitespace()
                    .filter_map(|p| p.parse::<u32>().ok()),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_resident_memory() {
        let kb = rss_kb(std::process::id()).unwrap();
        assert!(kb > 100, "{kb} KB");
        assert_eq!(rss_kb(4_000_000), None);
    }

    #[test]
    fn an_open_statm_reads_again_and_ends_with_its_process() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let f = std::fs::File::open(format!("/proc/{}/statm", child.id())).unwrap();
        assert!(read_rss_kb(&f).unwrap() > 0);
        assert!(
            read_rss_kb(&f).unwrap() > 0,
            "read twice from the same file"
        );
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(read_rss_kb(&f), None, "a reaped process has no statm");
    }
}
