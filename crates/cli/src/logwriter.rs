//! Log output for `stratus serve`: lines are gathered in a buffer and
//! written to stderr in batches, at most 50 ms late, by a thread of their
//! own. Logging never blocks serving: when stderr is not being read (a full
//! pipe), lines past `MAX_PENDING` bytes are dropped and counted, and the
//! count is written once stderr drains.
//!
//! Written by hand rather than with `tracing_appender::non_blocking`: that
//! writer hands every line to a thread through a channel, wakes it, and
//! makes one `write` per line. With one access log line per request, a mock
//! route cost ~11.7 µs of CPU per request with it and ~10.6 µs with this
//! (bare hyper: ~7.8 µs; see docs/benchmarks.md). Here a line costs an
//! uncontended lock and a copy, and the syscalls are batched.

use std::io::{self, Write};
use std::sync::{Arc, Mutex};
use std::thread::Thread;
use std::time::Duration;

/// Wake the writer thread when this much is buffered, or on the timer.
const FLUSH_AT: usize = 64 * 1024;
const FLUSH_EVERY: Duration = Duration::from_millis(50);
/// At most this much waits for stderr; past it lines are dropped.
const MAX_PENDING: usize = 4 * 1024 * 1024;
/// How long the last flush at exit may block on stderr.
const FINAL_FLUSH: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub(crate) struct BatchedStderr {
    shared: Arc<Shared>,
}

struct Shared {
    pending: Mutex<Pending>,
    /// The writer thread, to wake it early.
    thread: Mutex<Option<Thread>>,
}

#[derive(Default)]
struct Pending {
    buf: Vec<u8>,
    dropped: u64,
}

/// Flushes what is left when dropped (at the end of `main`), waiting on
/// stderr for at most `FINAL_FLUSH`.
pub(crate) struct FlushGuard(BatchedStderr);

impl Drop for FlushGuard {
    fn drop(&mut self) {
        let w = self.0.clone();
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("stratus-log-final".into())
            .spawn(move || {
                w.flush_now();
                let _ = done_tx.send(());
            });
        if spawned.is_ok() {
            let _ = done_rx.recv_timeout(FINAL_FLUSH);
        }
    }
}

impl BatchedStderr {
    pub(crate) fn start() -> (BatchedStderr, FlushGuard) {
        let writer = BatchedStderr {
            shared: Arc::new(Shared {
                pending: Mutex::new(Pending {
                    buf: Vec::with_capacity(FLUSH_AT),
                    dropped: 0,
                }),
                thread: Mutex::new(None),
            }),
        };
        let flusher = writer.clone();
        let handle = std::thread::Builder::new()
            .name("stratus-log".into())
            .spawn(move || loop {
                std::thread::park_timeout(FLUSH_EVERY);
                flusher.flush_now();
            })
            .expect("spawn the log flusher");
        *writer
            .shared
            .thread
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(handle.thread().clone());
        (writer.clone(), FlushGuard(writer))
    }

    /// Writes what is pending to stderr (blocking this thread only).
    fn flush_now(&self) {
        let (pending, dropped) = {
            let mut p = self
                .shared
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if p.buf.is_empty() && p.dropped == 0 {
                return;
            }
            (
                std::mem::replace(&mut p.buf, Vec::with_capacity(FLUSH_AT)),
                std::mem::take(&mut p.dropped),
            )
        };
        let mut err = io::stderr().lock();
        let _ = err.write_all(&pending);
        if dropped > 0 {
            let _ = writeln!(
                err,
                "stratus: {dropped} log lines were dropped: stderr was not read fast enough"
            );
        }
    }
}

impl Write for BatchedStderr {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let wake = {
            let mut p = self
                .shared
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if p.buf.len() + data.len() > MAX_PENDING {
                p.dropped += 1;
                false
            } else {
                p.buf.extend_from_slice(data);
                p.buf.len() >= FLUSH_AT
            }
        };
        if wake {
            if let Some(t) = &*self.shared.thread.lock().unwrap_or_else(|e| e.into_inner()) {
                t.unpark();
            }
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for BatchedStderr {
    type Writer = BatchedStderr;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}
