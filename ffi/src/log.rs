//! Logging: where xnpu's messages go when its caller is C. The library reports what it did
//! not do as asked — a device that failed and was replaced by the CPU, a plugin it skipped, a
//! setting it ignored, a compile cache it cannot write — as `tracing` warnings. A C program
//! installs no `tracing` subscriber, so this module installs one, once, on the first call into
//! the C ABI ([`init`], run by `status::guard` and `status::quiet`): it writes
//! `xnpu: warning: …` lines to stderr at the level `XNPU_LOG` chooses (as the command line
//! does), or hands each message to the callback `xnpu_set_log_callback` installed.
//!
//! Messages come from any thread (rayon workers included): the callback and its `user_data`
//! are read under a lock, and the level every call site checks is an atomic.

use std::cell::Cell;
use std::ffi::{c_char, c_void};
use std::io::Write as _;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Once, RwLock};

use tracing::level_filters::LevelFilter;
use tracing::Level;

use crate::status::{c_string, guard, Call, XnpuStatus};

/// How much a log message matters, most severe first: a callback's `level` and
/// `xnpu_set_log_callback`'s `max_level`. The values are ordered: a message is delivered when
/// its level is at most `max_level`.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum XnpuLogLevel {
    /// No message (as a `max_level`: deliver none).
    Off = 0,
    /// Something failed and could not be worked around.
    Error = 1,
    /// Something was not done as asked, and the work went on without it: a device that failed
    /// to compile or run and was replaced by the CPU, a plugin skipped, a setting ignored, a
    /// compile cache that cannot be written. The default level.
    Warn = 2,
    /// What xnpu decided, for a person watching it.
    Info = 3,
    /// Details, for finding a problem.
    Debug = 4,
    /// Everything.
    Trace = 5,
}

impl XnpuLogLevel {
    fn from_u32(v: u32) -> Option<XnpuLogLevel> {
        Some(match v {
            0 => XnpuLogLevel::Off,
            1 => XnpuLogLevel::Error,
            2 => XnpuLogLevel::Warn,
            3 => XnpuLogLevel::Info,
            4 => XnpuLogLevel::Debug,
            5 => XnpuLogLevel::Trace,
            _ => return None,
        })
    }

    fn of(level: Level) -> XnpuLogLevel {
        match level {
            Level::ERROR => XnpuLogLevel::Error,
            Level::WARN => XnpuLogLevel::Warn,
            Level::INFO => XnpuLogLevel::Info,
            Level::DEBUG => XnpuLogLevel::Debug,
            Level::TRACE => XnpuLogLevel::Trace,
        }
    }

    fn filter(self) -> LevelFilter {
        match self {
            XnpuLogLevel::Off => LevelFilter::OFF,
            XnpuLogLevel::Error => LevelFilter::ERROR,
            XnpuLogLevel::Warn => LevelFilter::WARN,
            XnpuLogLevel::Info => LevelFilter::INFO,
            XnpuLogLevel::Debug => LevelFilter::DEBUG,
            XnpuLogLevel::Trace => LevelFilter::TRACE,
        }
    }

    /// The word on a stderr line: `xnpu: warning: …`.
    fn word(self) -> &'static str {
        match self {
            XnpuLogLevel::Off => "off",
            XnpuLogLevel::Error => "error",
            XnpuLogLevel::Warn => "warning",
            XnpuLogLevel::Info => "info",
            XnpuLogLevel::Debug => "debug",
            XnpuLogLevel::Trace => "trace",
        }
    }
}

/// Receives xnpu's log messages (`xnpu_set_log_callback`): `user_data` as it was given,
/// the message's level (never `XNPU_LOG_LEVEL_OFF`), and the message, one line of NUL-terminated
/// UTF-8 without a trailing newline that is valid only during the call (copy it to keep it).
///
/// It may be called from any thread, xnpu's worker threads included, and from several at
/// once: it must be thread-safe, must return (not `longjmp`, not throw), and should be quick,
/// as the work that logged waits for it. Messages that xnpu logs while the callback runs on
/// the same thread (a callback that calls into xnpu) are dropped.
pub type XnpuLogCallback = Option<
    unsafe extern "C" fn(user_data: *mut c_void, level: XnpuLogLevel, message: *const c_char),
>;

/// Where messages go: the caller's callback with its `user_data`, or stderr; and the most
/// verbose level that goes there.
#[derive(Clone, Copy)]
struct Sink {
    callback: XnpuLogCallback,
    user_data: *mut c_void,
    level: XnpuLogLevel,
}

// SAFETY: `user_data` is only passed back to the callback, which `xnpu_set_log_callback`'s
// caller promised may be called with it from any thread.
unsafe impl Send for Sink {}
// SAFETY: as for `Send`; the pointer is never dereferenced here.
unsafe impl Sync for Sink {}

/// The callback (or none: stderr). Callbacks run under its read lock, so that once
/// `xnpu_set_log_callback` has it written no call of the previous callback is running.
static SINK: RwLock<Sink> = RwLock::new(Sink {
    callback: None,
    user_data: std::ptr::null_mut(),
    level: XnpuLogLevel::Warn,
});

/// [`SINK`]'s level, which every call site checks without taking the lock (the lock's is
/// checked again under it: a message that passed this one while the sink changed).
static MAX_LEVEL: AtomicU32 = AtomicU32::new(XnpuLogLevel::Warn as u32);

/// The level stderr gets without a callback: `XNPU_LOG`'s, read by [`init`].
static DEFAULT_LEVEL: AtomicU32 = AtomicU32::new(XnpuLogLevel::Warn as u32);

thread_local! {
    /// Set while this thread runs the caller's callback.
    static IN_CALLBACK: Cell<bool> = const { Cell::new(false) };
}

/// Whether this thread is running the caller's callback (false while its thread-locals are
/// torn down, where a message may still be logged).
fn in_callback() -> bool {
    IN_CALLBACK.try_with(Cell::get).unwrap_or(false)
}

/// Installs the subscriber, once per process: every entry point of the C ABI calls it before
/// its body. Reads `XNPU_LOG` (`off`, `error`, `warn`, `info`, `debug`, `trace`; unset or
/// empty: `warn`). A process that already has a global subscriber keeps it.
pub(crate) fn init() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let setting = std::env::var("XNPU_LOG").ok();
        let level = parse_level(setting.as_deref());
        let start = level.unwrap_or(XnpuLogLevel::Warn);
        DEFAULT_LEVEL.store(start as u32, Ordering::Relaxed);
        set_sink(Sink {
            callback: None,
            user_data: std::ptr::null_mut(),
            level: start,
        });
        // A Rust host linking this crate may have set its own: that one gets the messages.
        let _ = tracing::subscriber::set_global_default(xnpu::log::LineSubscriber::new(CSink));
        if level.is_none() {
            tracing::warn!("{}", xnpu::log::bad_setting(&setting.unwrap_or_default()));
        }
    });
}

/// `XNPU_LOG`'s level, as the command line reads it (unset or blank: `warn`): `None` when it
/// names none.
fn parse_level(setting: Option<&str>) -> Option<XnpuLogLevel> {
    let filter = xnpu::log::parse_level(setting, LevelFilter::WARN).ok()?;
    Some(match filter.into_level() {
        None => XnpuLogLevel::Off,
        Some(level) => XnpuLogLevel::of(level),
    })
}

/// Sets where messages go and the level they are filtered to (the call sites are told).
fn set_sink(sink: Sink) {
    // The write lock waits for callbacks running on other threads to return.
    let mut current = SINK.write().unwrap_or_else(|p| p.into_inner());
    *current = sink;
    MAX_LEVEL.store(sink.level as u32, Ordering::Relaxed);
    drop(current);
    // Call sites cache whether they are enabled, and `tracing` the most verbose level any
    // subscriber wants (`max_level_hint`): both are worked out again.
    tracing::callsite::rebuild_interest_cache();
}

/// Sends xnpu's log messages to `callback`, with `user_data`, from now on: those whose
/// level is at most `max_level` (an `XnpuLogLevel`; `XNPU_LOG_LEVEL_OFF` delivers none). When
/// it returns, the previous callback is not running on any thread and is not called again, so
/// its `user_data` may be freed.
///
/// A NULL `callback` restores the default, which `max_level` does not change: messages go to
/// stderr as lines `xnpu: warning: …`, at the level the environment variable `XNPU_LOG` sets
/// (`off`, `error`, `warn`, `info`, `debug`, `trace`; read on the first call into the
/// library; unset: `warn`).
///
/// The setting is the process's: it applies to every session and thread. It fails with
/// `XNPU_CODE_INVALID_ARGUMENT` for a `max_level` that is not an `XnpuLogLevel`, or when
/// called from inside the callback.
///
/// # Safety
/// `callback` is NULL or a function that may be called, as `XnpuLogCallback` says, with
/// `user_data` from any thread until this function is next called.
#[no_mangle]
pub unsafe extern "C" fn xnpu_set_log_callback(
    callback: XnpuLogCallback,
    user_data: *mut c_void,
    max_level: u32,
) -> *mut XnpuStatus {
    let call = Call("xnpu_set_log_callback");
    guard(call, || {
        let Some(level) = XnpuLogLevel::from_u32(max_level) else {
            return Err(call.invalid(format!(
                "max_level is {max_level}, not an XnpuLogLevel (0 off to 5 trace)"
            )));
        };
        if in_callback() {
            // The callback runs under the lock this call takes to write.
            return Err(call.invalid("called from inside the log callback"));
        }
        set_sink(match callback {
            Some(_) => Sink {
                callback,
                user_data,
                level,
            },
            None => Sink {
                callback: None,
                user_data: std::ptr::null_mut(),
                level: XnpuLogLevel::from_u32(DEFAULT_LEVEL.load(Ordering::Relaxed))
                    .unwrap_or(XnpuLogLevel::Warn),
            },
        });
        Ok(())
    })
}

/// The sink of a C host: the callback or stderr, at [`MAX_LEVEL`].
struct CSink;

impl xnpu::log::Sink for CSink {
    fn max_level(&self) -> LevelFilter {
        XnpuLogLevel::from_u32(MAX_LEVEL.load(Ordering::Relaxed))
            .unwrap_or(XnpuLogLevel::Warn)
            .filter()
    }

    fn deliver(&self, level: Level, line: &str) {
        if !in_callback() {
            deliver(XnpuLogLevel::of(level), line);
        }
    }
}

/// Hands a message to the callback, or writes it to stderr.
fn deliver(level: XnpuLogLevel, message: &str) {
    let sink = SINK.read().unwrap_or_else(|p| p.into_inner());
    if level > sink.level {
        return;
    }
    match sink.callback {
        Some(callback) => {
            let text = c_string(message);
            let _ = IN_CALLBACK.try_with(|c| c.set(true));
            // SAFETY: the caller of `xnpu_set_log_callback` promised that the callback may be
            // called with its `user_data` from any thread; `text` is NUL-terminated UTF-8 that
            // lives through the call. The read lock held keeps the pair installed until it
            // returns.
            unsafe { callback(sink.user_data, level, text.as_ptr()) };
            let _ = IN_CALLBACK.try_with(|c| c.set(false));
        }
        None => {
            drop(sink);
            // One write per line, so that lines from several threads do not mix.
            let line = format!("xnpu: {}: {message}\n", level.word());
            let _ = std::io::stderr().lock().write_all(line.as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xnpu_log_reads_as_the_command_line_reads_it() {
        assert_eq!(parse_level(None), Some(XnpuLogLevel::Warn));
        assert_eq!(parse_level(Some(" ")), Some(XnpuLogLevel::Warn));
        assert_eq!(parse_level(Some("off")), Some(XnpuLogLevel::Off));
        assert_eq!(parse_level(Some("ERROR")), Some(XnpuLogLevel::Error));
        assert_eq!(parse_level(Some("debug ")), Some(XnpuLogLevel::Debug));
        assert_eq!(parse_level(Some("trace")), Some(XnpuLogLevel::Trace));
        assert_eq!(parse_level(Some("loud")), None);
    }

    #[test]
    fn levels_are_ordered_as_tracing_orders_them() {
        for v in 0..=5 {
            let l = XnpuLogLevel::from_u32(v).expect("a level");
            assert_eq!(l as u32, v);
        }
        assert_eq!(XnpuLogLevel::from_u32(6), None);
        assert!(XnpuLogLevel::of(Level::ERROR) < XnpuLogLevel::of(Level::WARN));
        assert!(XnpuLogLevel::Warn.filter() < XnpuLogLevel::Debug.filter());
        assert_eq!(XnpuLogLevel::Off.filter(), LevelFilter::OFF);
    }
}
