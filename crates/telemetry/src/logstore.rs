//! Every line a function printed (and Lambda's START/END/REPORT lines),
//! kept in memory per function for `stratus logs`, the dashboard and the
//! admin API: bounded by bytes per function (oldest lines dropped first),
//! each line cut at `MAX_LINE` bytes.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{LazyLock, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

/// A line longer than this is cut (and marked so).
pub const MAX_LINE: usize = 8 * 1024;
/// Bytes kept per function unless configured (`server.function_log_kb`).
pub const DEFAULT_BYTES: usize = 4 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// Increasing across all functions: `after` in a query.
    pub seq: u64,
    pub at_ms: u64,
    pub function: String,
    pub request_id: Option<String>,
    pub line: String,
}

/// What to read.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub function: Option<String>,
    pub request_id: Option<String>,
    /// Lines containing this text.
    pub contains: Option<String>,
    /// Lines at or after this time (epoch ms).
    pub since_ms: Option<u64>,
    /// Lines after this sequence number (to follow).
    pub after: Option<u64>,
    /// The last `limit` matching lines.
    pub limit: usize,
}

#[derive(Debug, Default)]
struct Inner {
    seq: u64,
    functions: HashMap<String, Kept>,
}

#[derive(Debug, Default)]
struct Kept {
    lines: VecDeque<LogRecord>,
    bytes: usize,
}

#[derive(Debug)]
pub struct LogStore {
    inner: Mutex<Inner>,
    bytes_per_function: AtomicUsize,
}

/// The process's store.
pub fn store() -> &'static LogStore {
    static S: LazyLock<LogStore> = LazyLock::new(|| LogStore::new(DEFAULT_BYTES));
    &S
}

impl LogStore {
    pub fn new(bytes_per_function: usize) -> LogStore {
        LogStore {
            inner: Mutex::default(),
            bytes_per_function: AtomicUsize::new(bytes_per_function),
        }
    }

    pub fn set_bytes_per_function(&self, bytes: usize) {
        self.bytes_per_function.store(bytes, Relaxed);
    }

    pub fn push(&self, function: &str, request_id: Option<&str>, line: &str) {
        let line = if line.len() > MAX_LINE {
            let mut cut = MAX_LINE;
            while !line.is_char_boundary(cut) {
                cut -= 1;
            }
            format!("{}… [cut at {MAX_LINE} bytes]", &line[..cut])
        } else {
            line.to_owned()
        };
        let at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let limit = self.bytes_per_function.load(Relaxed);
        let mut inner = self.inner.lock().expect("log store lock");
        inner.seq += 1;
        let seq = inner.seq;
        let kept = inner.functions.entry(function.to_owned()).or_default();
        kept.bytes += line.len();
        kept.lines.push_back(LogRecord {
            seq,
            at_ms,
            function: function.to_owned(),
            request_id: request_id.map(str::to_owned),
            line,
        });
        // The newest line stays, whatever its size.
        while kept.bytes > limit && kept.lines.len() > 1 {
            match kept.lines.pop_front() {
                Some(old) => kept.bytes -= old.line.len(),
                None => break,
            }
        }
    }

    /// Matching lines, oldest first.
    pub fn query(&self, q: &Query) -> Vec<LogRecord> {
        let inner = self.inner.lock().expect("log store lock");
        let mut out: Vec<LogRecord> = inner
            .functions
            .iter()
            .filter(|(name, _)| q.function.as_deref().is_none_or(|f| f == name.as_str()))
            .flat_map(|(_, kept)| kept.lines.iter())
            .filter(|r| q.after.is_none_or(|a| r.seq > a))
            .filter(|r| q.since_ms.is_none_or(|s| r.at_ms >= s))
            .filter(|r| {
                q.request_id
                    .as_deref()
                    .is_none_or(|id| r.request_id.as_deref() == Some(id))
            })
            .filter(|r| q.contains.as_deref().is_none_or(|t| r.line.contains(t)))
            .cloned()
            .collect();
        out.sort_by_key(|r| r.seq);
        if q.limit > 0 && out.len() > q.limit {
            out.drain(..out.len() - q.limit);
        }
        out
    }

    /// The newest sequence number handed out.
    pub fn last_seq(&self) -> u64 {
        self.inner.lock().expect("log store lock").seq
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_bounded_per_function_filtered_and_followed() {
        let s = LogStore::new(100);
        for i in 0..20 {
            s.push("a", Some("r1"), &format!("line {i:02} of a"));
        }
        s.push("b", None, "hello from b");
        s.push("b", Some("r2"), &"x".repeat(MAX_LINE + 10));
        // 100 bytes per function: the oldest of `a` are gone.
        let a = s.query(&Query {
            function: Some("a".into()),
            ..Default::default()
        });
        assert_eq!(a.len(), 8, "{a:?}");
        assert_eq!(a.last().unwrap().line, "line 19 of a");
        // A long line is cut (and then alone over the bound, so kept alone).
        let b = s.query(&Query {
            function: Some("b".into()),
            ..Default::default()
        });
        assert_eq!(b.len(), 1);
        assert!(b[0].line.ends_with("[cut at 8192 bytes]"));
        // Filters: text, request id, after, limit.
        let hits = s.query(&Query {
            contains: Some("line 1".into()),
            request_id: Some("r1".into()),
            limit: 2,
            ..Default::default()
        });
        let lines: Vec<&str> = hits.iter().map(|r| r.line.as_str()).collect();
        assert_eq!(lines, ["line 18 of a", "line 19 of a"]);
        let last = s.last_seq();
        s.push("a", None, "new");
        let new = s.query(&Query {
            after: Some(last),
            ..Default::default()
        });
        assert_eq!(new.len(), 1);
        assert_eq!(new[0].line, "new");
    }
}
