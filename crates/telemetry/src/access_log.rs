//! Access log lines in a stage's own format (`access_log` in
//! `stratus.toml`), written off the serving threads by one writer thread,
//! to standard error or a file. Bounded: past `QUEUE` lines waiting, new
//! lines are dropped and counted (a slow disk never slows a request).

use std::collections::HashMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::LazyLock;

const QUEUE: usize = 16 * 1024;

/// Lines dropped because the writer was behind.
pub static DROPPED: AtomicU64 = AtomicU64::new(0);

fn sender() -> &'static SyncSender<(Option<PathBuf>, String)> {
    static TX: LazyLock<SyncSender<(Option<PathBuf>, String)>> = LazyLock::new(|| {
        let (tx, rx) = sync_channel::<(Option<PathBuf>, String)>(QUEUE);
        std::thread::Builder::new()
            .name("stratus-access-log".into())
            .spawn(move || {
                let mut files: HashMap<PathBuf, std::fs::File> = HashMap::new();
                for (dest, mut line) in rx {
                    line.push('\n');
                    let result = match dest {
                        None => std::io::stderr().lock().write_all(line.as_bytes()),
                        Some(path) => {
                            if !files.contains_key(&path) {
                                if let Some(dir) = path.parent() {
                                    let _ = std::fs::create_dir_all(dir);
                                }
                                match std::fs::OpenOptions::new()
                                    .create(true)
                                    .append(true)
                                    .open(&path)
                                {
                                    Ok(f) => {
                                        files.insert(path.clone(), f);
                                    }
                                    Err(e) => {
                                        tracing::warn!("access log {}: {e}", path.display());
                                        continue;
                                    }
                                }
                            }
                            files
                                .get_mut(&path)
                                .expect("opened above")
                                .write_all(line.as_bytes())
                        }
                    };
                    if let Err(e) = result {
                        tracing::warn!("access log line not written: {e}");
                    }
                }
            })
            .expect("the access log thread starts");
        tx
    });
    &TX
}

/// Queues one line for `file` (or standard error).
pub fn write(file: Option<PathBuf>, line: String) {
    match sender().try_send((file, line)) {
        Ok(()) => {}
        Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
            DROPPED.fetch_add(1, Relaxed);
        }
    }
}
