//! xnpu's own log messages into ONNX Runtime's log. The library reports what it did not do
//! as asked — a partition that failed on its device and fell back to the CPU, a plugin it
//! skipped, a compile cache it cannot write — as `tracing` warnings, which nothing in ONNX
//! Runtime's process listens to: this module installs a subscriber (once, in
//! `CreateEpFactories`) that hands each one to the default logger ONNX Runtime passed there,
//! from then until the factory is released.
//!
//! Messages come from any thread (ONNX Runtime's and xnpu's workers); ONNX Runtime's logger is
//! thread-safe, and the logger in use is read under a lock that `ReleaseEpFactory` takes to
//! write, so no message reaches a logger after its factory is gone.

use std::sync::{Once, RwLock};

use tracing::level_filters::LevelFilter;
use tracing::Level;

use crate::ort::{Api, OrtEpFactory, OrtLogger, OrtLoggingLevel};

/// A default logger ONNX Runtime gave `CreateEpFactories`, with the factory made beside it
/// and the most verbose level the logger shows.
#[derive(Clone, Copy)]
struct Sink {
    api: Api,
    factory: *mut OrtEpFactory,
    logger: *const OrtLogger,
    max: LevelFilter,
}

// SAFETY: ONNX Runtime's loggers may be used from any thread; the logger is used only while
// its factory lives (`detach` removes it first), and the factory pointer is only compared.
unsafe impl Send for Sink {}
// SAFETY: as for `Send`.
unsafe impl Sync for Sink {}

/// The loggers of the factories alive, the newest last: messages go to the newest.
static SINKS: RwLock<Vec<Sink>> = RwLock::new(Vec::new());

/// Sends xnpu's messages to `logger` (NULL: nowhere) while `factory` lives, installing the
/// subscriber on the first call. A process that already has a global subscriber keeps it.
pub fn attach(api: Api, factory: *mut OrtEpFactory, logger: *const OrtLogger) {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = tracing::subscriber::set_global_default(xnpu::log::LineSubscriber::new(OrtSink));
    });
    if logger.is_null() {
        return;
    }
    let max = shown_level(&api, logger);
    SINKS.write().unwrap_or_else(|p| p.into_inner()).push(Sink {
        api,
        factory,
        logger,
        max,
    });
    tracing::callsite::rebuild_interest_cache();
}

/// Stops sending messages to the logger `factory` was made with. When it returns, no message
/// is being written to that logger.
pub fn detach(factory: *mut OrtEpFactory) {
    SINKS
        .write()
        .unwrap_or_else(|p| p.into_inner())
        .retain(|s| s.factory != factory);
    tracing::callsite::rebuild_interest_cache();
}

/// The most verbose level `logger` shows (ONNX Runtime's severity; warnings when it cannot
/// say).
fn shown_level(api: &Api, logger: *const OrtLogger) -> LevelFilter {
    let mut raw: i32 = OrtLoggingLevel::ORT_LOGGING_LEVEL_WARNING as i32;
    // SAFETY: a logger ONNX Runtime gave us; `raw` is written as the C enum (an int), which
    // is read back as a plain number.
    let status = unsafe {
        (api.ort.Logger_GetLoggingSeverityLevel)(logger, std::ptr::from_mut(&mut raw).cast())
    };
    if !status.0.is_null() {
        api.ignore(status);
        return LevelFilter::WARN;
    }
    match raw {
        0 => LevelFilter::TRACE,
        1 => LevelFilter::INFO,
        2 => LevelFilter::WARN,
        _ => LevelFilter::ERROR,
    }
}

fn ort_level(level: Level) -> OrtLoggingLevel {
    match level {
        Level::ERROR => OrtLoggingLevel::ORT_LOGGING_LEVEL_ERROR,
        Level::WARN => OrtLoggingLevel::ORT_LOGGING_LEVEL_WARNING,
        Level::INFO => OrtLoggingLevel::ORT_LOGGING_LEVEL_INFO,
        Level::DEBUG | Level::TRACE => OrtLoggingLevel::ORT_LOGGING_LEVEL_VERBOSE,
    }
}

/// The newest logger, at the level it shows (off when there is none).
struct OrtSink;

impl xnpu::log::Sink for OrtSink {
    fn max_level(&self) -> LevelFilter {
        SINKS
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .last()
            .map_or(LevelFilter::OFF, |s| s.max)
    }

    fn deliver(&self, level: Level, line: &str) {
        // Under the read lock: `detach` waits for the write to the logger to end.
        let sinks = SINKS.read().unwrap_or_else(|p| p.into_inner());
        if let Some(sink) = sinks.last().filter(|s| level <= s.max) {
            sink.api
                .log(sink.logger, ort_level(level), &format!("xnpu: {line}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_map_to_onnx_runtimes_severities() {
        assert_eq!(
            ort_level(Level::WARN),
            OrtLoggingLevel::ORT_LOGGING_LEVEL_WARNING
        );
        assert_eq!(
            ort_level(Level::ERROR),
            OrtLoggingLevel::ORT_LOGGING_LEVEL_ERROR
        );
        assert_eq!(
            ort_level(Level::TRACE),
            OrtLoggingLevel::ORT_LOGGING_LEVEL_VERBOSE
        );
    }
}
