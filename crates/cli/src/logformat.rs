//! The text log line, as tracing-subscriber's default format writes it
//! (`2026-11-25T05:34:11.529837Z  INFO message key="value" ...`, no target,
//! no spans: Stratus opens none), at a fraction of its cost.
//!
//! A warm function call logs four lines (START, END, REPORT and the access
//! line), and with tracing-subscriber's `Format` they cost ~7.5 µs of the
//! ~45 µs of CPU Stratus spends on the call (docs/benchmarks.md): the
//! timestamp is formatted field by field every time, and every string
//! value goes through `Debug`'s escaping writer. Here the date and time
//! are formatted once a second per thread, and a string that needs no
//! escaping is copied between quotes. The output is the same, byte for
//! byte (a test compares the two). The JSON format stays
//! tracing-subscriber's own.

use std::cell::RefCell;
use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

pub(crate) struct TextLine;

impl<S, N> FormatEvent<S, N> for TextLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let ansi = w.has_ansi_escapes();
        if ansi {
            w.write_str("\x1b[2m")?;
        }
        write_timestamp(&mut w)?;
        if ansi {
            w.write_str("\x1b[0m")?;
        }
        let level = *event.metadata().level();
        let (name, color) = match level {
            Level::TRACE => ("TRACE", "\x1b[35m"),
            Level::DEBUG => ("DEBUG", "\x1b[34m"),
            Level::INFO => (" INFO", "\x1b[32m"),
            Level::WARN => (" WARN", "\x1b[33m"),
            Level::ERROR => ("ERROR", "\x1b[31m"),
        };
        w.write_char(' ')?;
        if ansi {
            w.write_str(color)?;
            w.write_str(name)?;
            w.write_str("\x1b[0m ")?;
        } else {
            w.write_str(name)?;
            w.write_char(' ')?;
        }
        let mut fields = Fields {
            w: &mut w,
            ansi,
            first: true,
            result: Ok(()),
        };
        event.record(&mut fields);
        fields.result?;
        w.write_char('\n')
    }
}

/// `2026-11-25T05:34:11.529837Z`, the date and time made once a second.
fn write_timestamp(w: &mut Writer<'_>) -> fmt::Result {
    thread_local! {
        static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    SECOND.with(|cell| {
        let mut cached = cell.borrow_mut();
        if cached.0 != secs {
            let t = chrono::DateTime::from_timestamp(secs as i64, 0).unwrap_or_default();
            cached.1.clear();
            let _ = write!(cached.1, "{}", t.format("%Y-%m-%dT%H:%M:%S"));
            cached.0 = secs;
        }
        write!(w, "{}.{:06}Z", cached.1, now.subsec_micros())
    })
}

/// Writes the message, then ` name=value` for every other field.
struct Fields<'a, 'w> {
    w: &'a mut Writer<'w>,
    ansi: bool,
    first: bool,
    result: fmt::Result,
}

impl Fields<'_, '_> {
    fn name(&mut self, field: &Field) -> fmt::Result {
        if !self.first {
            self.w.write_char(' ')?;
        }
        self.first = false;
        let name = field.name();
        // As tracing writes `r#type`: without the raw prefix.
        let name = name.strip_prefix("r#").unwrap_or(name);
        if self.ansi {
            write!(self.w, "\x1b[3m{name}\x1b[0m\x1b[2m=\x1b[0m")
        } else {
            write!(self.w, "{name}=")
        }
    }

    fn message(&mut self, write: impl FnOnce(&mut Writer<'_>) -> fmt::Result) -> fmt::Result {
        if !self.first {
            self.w.write_char(' ')?;
        }
        self.first = false;
        write(self.w)
    }
}

impl Visit for Fields<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if self.result.is_err() {
            return;
        }
        self.result = if field.name() == "message" {
            self.message(|w| w.write_str(value))
        } else {
            self.name(field).and_then(|()| write_quoted(self.w, value))
        };
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.result.is_err() {
            return;
        }
        self.result = if field.name() == "message" {
            self.message(|w| write!(w, "{value:?}"))
        } else {
            self.name(field).and_then(|()| write!(self.w, "{value:?}"))
        };
    }
}

/// `"value"`, escaped as `Debug` escapes it; copied as it is when nothing
/// in it needs escaping (the common case: ids, names, paths).
fn write_quoted(w: &mut Writer<'_>, s: &str) -> fmt::Result {
    if s.bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
    {
        w.write_char('"')?;
        w.write_str(s)?;
        w.write_char('"')
    } else {
        write!(w, "{s:?}")
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().write(b)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn events() {
        tracing::info!(
            request_id = "5b1d-42",
            api = "web",
            route = "GET /items/{id}",
            status = 200u16,
            latency_ms = 0.25f64,
            ok = true,
            count = -3i64,
            "GET /items/1 200"
        );
        tracing::warn!(
            line = "a \"quoted\" \\ tab\t and é and \u{7}",
            "odd strings"
        );
        tracing::error!(r#type = "x", "raw name");
        tracing::info!("only a message");
        tracing::info!(field = %"displayed", "a {} message", "formatted");
    }

    /// Every line with its timestamp cut off.
    fn lines(out: &[u8]) -> Vec<String> {
        String::from_utf8(out.to_vec())
            .unwrap()
            .lines()
            .map(|l| {
                let l = l.strip_prefix("\x1b[2m").unwrap_or(l);
                let (stamp, rest) = l.split_at(l.find('Z').unwrap() + 1);
                assert_eq!(stamp.len(), "2026-11-25T05:34:11.529837Z".len(), "{l}");
                assert!(chrono::DateTime::parse_from_rfc3339(stamp).is_ok(), "{l}");
                rest.to_owned()
            })
            .collect()
    }

    #[test]
    fn lines_are_tracing_subscribers_default_lines() {
        for ansi in [false, true] {
            let ours = Buf::default();
            let theirs = Buf::default();
            let make = |buf: &Buf| {
                let buf = buf.clone();
                move || buf.clone()
            };
            let sub = tracing_subscriber::fmt()
                .with_ansi(ansi)
                .event_format(TextLine)
                .with_writer(make(&ours))
                .finish();
            tracing::subscriber::with_default(sub, events);
            let sub = tracing_subscriber::fmt()
                .with_ansi(ansi)
                .with_target(false)
                .with_writer(make(&theirs))
                .finish();
            tracing::subscriber::with_default(sub, events);
            let (ours, theirs) = (ours.0.lock().unwrap(), theirs.0.lock().unwrap());
            let ours = lines(&ours);
            assert_eq!(ours, lines(&theirs), "ansi: {ansi}");
            assert_eq!(ours.len(), 5);
            if !ansi {
                assert_eq!(
                    ours[0],
                    r#"  INFO GET /items/1 200 request_id="5b1d-42" api="web" route="GET /items/{id}" status=200 latency_ms=0.25 ok=true count=-3"#
                );
            }
        }
        let _ = std::io::sink().flush();
    }
}
