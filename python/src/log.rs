//! The runtime's `tracing` events (fallbacks, skipped plugins and settings, an unwritable
//! cache) as records of Python's `logging`, logger `xnpu`: what the CLI prints on stderr, a
//! Python program sees where its logging configuration sends it (warnings reach stderr even
//! when logging is not configured, through `logging.lastResort`).
//!
//! `XNPU_LOG` (off, error, warn, info, debug, trace; default warn) says which levels are
//! forwarded, as for the CLI. Events may come from any thread (rayon workers, a plugin's
//! threads): each takes the GIL for its record, and is dropped when the interpreter is shutting
//! down. Nothing here raises into Rust or panics: a failing handler loses its record.

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

/// The levels of Python's `logging`.
const DEBUG: i32 = 10;
const INFO: i32 = 20;
const WARNING: i32 = 30;
const ERROR: i32 = 40;

/// Python's level for a tracing level (trace is below anything `logging` names: DEBUG).
fn python_level(l: Level) -> i32 {
    match l {
        Level::ERROR => ERROR,
        Level::WARN => WARNING,
        Level::INFO => INFO,
        Level::DEBUG | Level::TRACE => DEBUG,
    }
}

/// Forwards each event to the `xnpu` logger.
struct ToLogging;

thread_local! {
    /// Set while this thread hands a record to `logging`: an event that a handler's own call
    /// into xnpu logs meanwhile is dropped, not forwarded again (and again).
    static IN_LOGGING: Cell<bool> = const { Cell::new(false) };
}

impl<S: Subscriber> Layer<S> for ToLogging {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        // While this thread's locals are torn down, the event is dropped.
        if IN_LOGGING
            .try_with(|busy| busy.replace(true))
            .unwrap_or(true)
        {
            return;
        }
        // A panic must not unwind into the code that logged (nor through Python).
        let _ = catch_unwind(AssertUnwindSafe(|| {
            let text = xnpu::log::event_line(event);
            let level = python_level(*event.metadata().level());
            // None while the interpreter shuts down (or is not there): the record is dropped.
            Python::try_attach(|py| emit(py, level, &text));
        }));
        let _ = IN_LOGGING.try_with(|busy| busy.set(false));
    }
}

/// `logging.getLogger("xnpu").log(level, text)`. An exception Python had pending is put back
/// afterwards, and one the logging call raises is dropped.
fn emit(py: Python<'_>, level: i32, text: &str) {
    static LOGGER: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let pending = PyErr::take(py);
    let logged = LOGGER
        .get_or_try_init(py, || {
            Ok::<_, PyErr>(
                py.import("logging")?
                    .call_method1("getLogger", ("xnpu",))?
                    .unbind(),
            )
        })
        .and_then(|logger| logger.bind(py).call_method1("log", (level, text)));
    drop(logged);
    if let Some(e) = pending {
        e.restore(py);
    }
}

/// Installs the forwarding for this process (once: a second call, or a subscriber set before,
/// leaves things as they are). Reads `XNPU_LOG`; a value that names no level is warned about
/// (through the forwarding) and warnings are forwarded.
pub fn install() {
    let level = xnpu::log::env_level(LevelFilter::WARN);
    let subscriber = tracing_subscriber::registry()
        .with(level.clone().unwrap_or(LevelFilter::WARN))
        .with(ToLogging);
    if tracing::subscriber::set_global_default(subscriber).is_err() {
        return;
    }
    if let Err(s) = level {
        tracing::warn!("{}", xnpu::log::bad_setting(&s));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_map_onto_python_logging() {
        assert_eq!(python_level(Level::WARN), WARNING);
        assert_eq!(python_level(Level::TRACE), DEBUG);
        assert_eq!(python_level(Level::ERROR), ERROR);
        assert_eq!(python_level(Level::INFO), INFO);
    }
}
