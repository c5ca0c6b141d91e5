//! What every front end shares of logging — the CLI, the C ABI, the ONNX Runtime execution
//! provider and Python each deliver xnpu's `tracing` events their own way, but read the same
//! `XNPU_LOG` setting and print an event as the same one line.

use std::fmt::{self, Write as _};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};

use tracing::field::{Field, Visit};
pub use tracing::level_filters::LevelFilter;
use tracing::subscriber::Interest;
use tracing::{span, Event, Level, Metadata, Subscriber};

/// The levels a setting of `XNPU_LOG` asks for (`off`, `error`, `warn`, `info`, `debug`,
/// `trace`, any case; unset or empty: `default`), or the setting itself when it names no
/// level, for the warning that says so.
pub fn parse_level(setting: Option<&str>, default: LevelFilter) -> Result<LevelFilter, String> {
    match setting.map(str::trim) {
        None | Some("") => Ok(default),
        Some(s) => s.parse::<LevelFilter>().map_err(|_| s.to_string()),
    }
}

/// [`parse_level`] of the process's `XNPU_LOG`.
pub fn env_level(default: LevelFilter) -> Result<LevelFilter, String> {
    parse_level(std::env::var("XNPU_LOG").ok().as_deref(), default)
}

/// The warning for an `XNPU_LOG` that names no level (control characters escaped).
pub fn bad_setting(setting: &str) -> String {
    format!(
        "XNPU_LOG={}: not a level (off, error, warn, info, debug, trace); showing warnings",
        setting.escape_debug()
    )
}

/// An event as one line: its message, then ` name=value` for each other field, newlines
/// turned to spaces. A field whose formatting panics gives a placeholder instead: nothing
/// unwinds into the code that logged (nor, through it, into C or Python).
pub fn event_line(event: &tracing::Event<'_>) -> String {
    catch_unwind(AssertUnwindSafe(|| {
        let mut line = Line::default();
        event.record(&mut line);
        let Line {
            mut message,
            fields,
        } = line;
        if message.is_empty() {
            message = fields.trim_start().to_string();
        } else {
            message.push_str(&fields);
        }
        message.replace(['\n', '\r'], " ")
    }))
    .unwrap_or_else(|_| "(a log message that could not be formatted)".to_string())
}

#[derive(Default)]
struct Line {
    message: String,
    fields: String,
}

impl Visit for Line {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={value}", field.name());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }
}

/// Where a library front end (the C ABI, the ONNX Runtime EP) sends xnpu's events.
pub trait Sink: Send + Sync + 'static {
    /// The most verbose level it takes now (it may change at any time).
    fn max_level(&self) -> LevelFilter;
    /// Takes one event at or under [`Sink::max_level`], as one line ([`event_line`]).
    fn deliver(&self, level: Level, line: &str);
}

/// The `tracing` subscriber of a library front end: events only (xnpu makes no spans), each
/// at or under the sink's level formatted to one line and handed to the sink. Call sites ask
/// again on each event, since the level may change.
pub struct LineSubscriber<S> {
    sink: S,
    next_span: AtomicU64,
}

impl<S: Sink> LineSubscriber<S> {
    pub fn new(sink: S) -> LineSubscriber<S> {
        LineSubscriber {
            sink,
            next_span: AtomicU64::new(0),
        }
    }
}

impl<S: Sink> Subscriber for LineSubscriber<S> {
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        if metadata.is_event() {
            Interest::sometimes()
        } else {
            Interest::never()
        }
    }

    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.is_event() && *metadata.level() <= self.sink.max_level()
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(self.sink.max_level())
    }

    fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
        span::Id::from_u64(self.next_span.fetch_add(1, Ordering::Relaxed) + 1)
    }

    fn record(&self, _: &span::Id, _: &span::Record<'_>) {}

    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}

    fn event(&self, event: &Event<'_>) {
        let level = *event.metadata().level();
        if level <= self.sink.max_level() {
            self.sink.deliver(level, &event_line(event));
        }
    }

    fn enter(&self, _: &span::Id) {}

    fn exit(&self, _: &span::Id) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xnpu_log_names_a_level_or_is_refused() {
        let warn = LevelFilter::WARN;
        assert_eq!(parse_level(None, warn), Ok(warn));
        assert_eq!(parse_level(Some(" "), warn), Ok(warn));
        assert_eq!(parse_level(Some("off"), warn), Ok(LevelFilter::OFF));
        assert_eq!(parse_level(Some("DEBUG "), warn), Ok(LevelFilter::DEBUG));
        assert_eq!(parse_level(Some("loud"), warn), Err("loud".to_string()));
    }
}
