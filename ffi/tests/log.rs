//! Where xnpu's warnings go when its caller is C: `xnpu_set_log_callback` called from Rust
//! (levels, filtering, threads, a callback replaced while others log, malformed messages), and
//! from C through `libxnpu_ffi.so` (`tests/c/log.c`): stderr by default and after NULL,
//! `XNPU_LOG`, and a plugin that could not be loaded, reported when a session discovers the
//! backends.
//!
//! The warning provoked is a real one: a compile cache folder that cannot be made (below a
//! plain file) is reported once per process and folder by every session made with it.

mod common;
mod status;

use status::{ok, take};

use std::ffi::{c_char, c_void, CStr, CString};
use std::mem::size_of;
use std::path::{Path, PathBuf};
use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use xnpu_ffi::log::xnpu_set_log_callback;
use xnpu_ffi::session::{xnpu_session_create, xnpu_session_free};
use xnpu_ffi::{XnpuCode, XnpuLogLevel, XnpuSessionOptions};

/// The callback is the process's: the tests that set it take turns.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// What a callback received; `user_data` points to one.
#[derive(Default)]
struct Received {
    messages: Mutex<Vec<(XnpuLogLevel, String)>>,
    /// Calls running now, and the most seen at once.
    running: AtomicUsize,
    /// Each call waits this long, so that calls overlap what the test does meanwhile.
    dwell: Duration,
    /// Codes of `xnpu_set_log_callback` called from inside the callback, when asked for.
    reenter: bool,
    reentered: Mutex<Vec<XnpuCode>>,
}

impl Received {
    fn messages(&self) -> Vec<(XnpuLogLevel, String)> {
        self.messages
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn as_user_data(&self) -> *mut c_void {
        ptr::from_ref(self).cast_mut().cast()
    }
}

/// The callback under test: records the message; nothing in it may unwind.
unsafe extern "C" fn record(user_data: *mut c_void, level: XnpuLogLevel, message: *const c_char) {
    // SAFETY: `user_data` is the `Received` the test installed, which outlives the callback
    // (replaced before it is dropped); `message` is NUL-terminated during the call.
    let (r, message) = unsafe { (&*user_data.cast::<Received>(), CStr::from_ptr(message)) };
    r.running.fetch_add(1, Ordering::SeqCst);
    let text = match message.to_str() {
        Ok(s) => s.to_owned(),
        Err(_) => format!("NOT UTF-8: {message:?}"),
    };
    r.messages
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push((level, text));
    if r.reenter {
        // SAFETY: a valid (NULL) callback.
        let status = unsafe { xnpu_set_log_callback(None, ptr::null_mut(), 0) };
        let code = take(status).0;
        r.reentered
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(code);
    }
    std::thread::sleep(r.dwell);
    r.running.fetch_sub(1, Ordering::SeqCst);
}

/// `record` installed with a `Received`; restores the default when dropped (also when a test
/// fails), before the `Received` it points to is.
struct Installed;

impl Installed {
    fn restore(self) {}
}

impl Drop for Installed {
    fn drop(&mut self) {
        // SAFETY: NULL restores the default.
        let status = unsafe { xnpu_set_log_callback(None, ptr::null_mut(), 0) };
        if !std::thread::panicking() {
            ok(status);
        }
    }
}

/// Installs `record` with `r` at `max_level` until the guard is dropped.
fn install(r: &Received, max_level: XnpuLogLevel) -> Installed {
    // SAFETY: `record` is thread-safe; `r` outlives it (the guard restores the default
    // first, as each test declares `r` before it).
    ok(unsafe { xnpu_set_log_callback(Some(record), r.as_user_data(), max_level as u32) });
    Installed
}

/// A plain file: a compile cache folder below it can never be made.
struct Unwritable(tempfile::NamedTempFile);

impl Unwritable {
    fn new() -> Unwritable {
        Unwritable(tempfile::NamedTempFile::new().expect("a temporary file"))
    }

    fn dir(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }
}

fn model_path() -> CString {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/tinycnn.onnx");
    CString::new(p.to_str().expect("a UTF-8 path")).expect("no NUL")
}

/// Makes (and frees) a CPU session whose compile cache is `cache_dir`: the first session with
/// an unwritable one warns.
fn session_with_cache(cache_dir: &Path) {
    let dir = CString::new(cache_dir.to_str().expect("a UTF-8 path")).expect("no NUL");
    let options = XnpuSessionOptions {
        struct_size: size_of::<XnpuSessionOptions>(),
        devices: c"cpu".as_ptr(),
        level: ptr::null(),
        precision: ptr::null(),
        performance: ptr::null(),
        cache_dir: dir.as_ptr(),
        threads: 0,
        no_cache: 0,
        max_memory: 0,
    };
    let mut s = ptr::null_mut();
    let path = model_path();
    // SAFETY: a path, options and an out pointer that live for the call.
    ok(unsafe { xnpu_session_create(path.as_ptr(), &options, &mut s) });
    // SAFETY: the session just made, freed once.
    unsafe { xnpu_session_free(s) };
}

/// The warning a session with an unwritable compile cache `dir` gives.
fn is_cache_warning(message: &str, dir: &Path) -> bool {
    message.starts_with(&format!(
        "the compile cache {} cannot be written",
        dir.display()
    ))
}

#[test]
fn a_fallback_warning_reaches_the_callback_at_warn_with_its_user_data() {
    let _serial = serial();
    let file = Unwritable::new();
    let r = Received::default();
    let installed = install(&r, XnpuLogLevel::Warn);
    session_with_cache(&file.dir("first"));
    // Once per process and folder: the same folder again is not repeated.
    session_with_cache(&file.dir("first"));
    installed.restore();
    let got = r.messages();
    assert_eq!(got.len(), 1, "{got:?}");
    let (level, message) = &got[0];
    assert_eq!(*level, XnpuLogLevel::Warn);
    assert!(is_cache_warning(message, &file.dir("first")), "{message}");
    assert!(
        message.contains(&format!("{} is not a folder", file.0.path().display())),
        "{message}"
    );
    assert!(!message.contains('\n'), "one line: {message:?}");
}

#[test]
fn max_level_filters_what_is_less_severe() {
    let _serial = serial();
    let file = Unwritable::new();
    for (max, delivered) in [
        (XnpuLogLevel::Off, false),
        (XnpuLogLevel::Error, false),
        (XnpuLogLevel::Warn, true),
        (XnpuLogLevel::Trace, true),
    ] {
        let r = Received::default();
        let installed = install(&r, max);
        let dir = file.dir(&format!("{max:?}"));
        session_with_cache(&dir);
        installed.restore();
        let got: Vec<_> = r
            .messages()
            .into_iter()
            .filter(|(_, m)| is_cache_warning(m, &dir))
            .collect();
        assert_eq!(
            got.len(),
            usize::from(delivered),
            "max_level {max:?}: {got:?}"
        );
        // Whatever else a verbose level lets through is no more verbose than asked.
        assert!(r
            .messages()
            .iter()
            .all(|(l, _)| *l <= max && *l != XnpuLogLevel::Off));
    }
}

#[test]
fn a_level_that_is_not_one_is_refused_and_changes_nothing() {
    let _serial = serial();
    let r = Received::default();
    let installed = install(&r, XnpuLogLevel::Warn);
    // SAFETY: `record` is thread-safe; the call fails, installing nothing.
    let (code, message) = take(unsafe { xnpu_set_log_callback(Some(record), ptr::null_mut(), 6) });
    assert_eq!(code, XnpuCode::InvalidArgument);
    assert_eq!(
        message,
        "xnpu_set_log_callback: max_level is 6, not an XnpuLogLevel (0 off to 5 trace)"
    );
    // The callback installed before still gets the messages, with its own user_data.
    let file = Unwritable::new();
    session_with_cache(&file.dir("after"));
    installed.restore();
    assert_eq!(r.messages().len(), 1, "{:?}", r.messages());
}

#[test]
fn sessions_on_several_threads_each_deliver_their_warning() {
    let _serial = serial();
    let file = Unwritable::new();
    let r = Received {
        dwell: Duration::from_millis(20),
        ..Received::default()
    };
    let installed = install(&r, XnpuLogLevel::Warn);
    let dirs: Vec<PathBuf> = (0..4).map(|t| file.dir(&format!("thread{t}"))).collect();
    std::thread::scope(|s| {
        for dir in &dirs {
            s.spawn(|| session_with_cache(dir));
        }
    });
    installed.restore();
    let got = r.messages();
    assert_eq!(got.len(), dirs.len(), "{got:?}");
    for dir in &dirs {
        assert!(
            got.iter()
                .any(|(l, m)| *l == XnpuLogLevel::Warn && is_cache_warning(m, dir)),
            "nothing for {}: {got:?}",
            dir.display()
        );
    }
}

#[test]
fn once_replaced_a_callback_is_neither_running_nor_called_again() {
    let _serial = serial();
    let r = Received {
        dwell: Duration::from_millis(2),
        ..Received::default()
    };
    // At INFO, which stderr does not show once the default is back (XNPU_LOG unset: warnings).
    let installed = install(&r, XnpuLogLevel::Info);
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        for t in 0..3 {
            let stop = &stop;
            s.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    tracing::info!("from thread {t}");
                }
            });
        }
        std::thread::sleep(Duration::from_millis(50));
        installed.restore();
        // `restore` returned: no call of `record` is running, and none starts.
        assert_eq!(r.running.load(Ordering::SeqCst), 0);
        let seen = r.messages().len();
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(r.messages().len(), seen);
        assert!(seen > 0, "the loggers got through");
        stop.store(true, Ordering::Relaxed);
    });
}

#[test]
fn setting_the_callback_from_inside_it_is_refused_not_a_deadlock() {
    let _serial = serial();
    let r = Received {
        reenter: true,
        ..Received::default()
    };
    let installed = install(&r, XnpuLogLevel::Warn);
    tracing::warn!("call back into xnpu");
    installed.restore();
    assert_eq!(
        *r.reentered.lock().unwrap_or_else(|p| p.into_inner()),
        vec![XnpuCode::InvalidArgument]
    );
    // The status made inside the callback logged nothing back into it.
    assert_eq!(r.messages().len(), 1, "{:?}", r.messages());
}

#[test]
fn a_message_is_one_line_of_utf8_even_when_formatting_it_panics() {
    struct Panics;
    impl std::fmt::Debug for Panics {
        fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            panic!("a Debug that panics")
        }
    }
    let _serial = serial();
    let r = Received::default();
    let installed = install(&r, XnpuLogLevel::Info);
    tracing::warn!("two\nlines with a \0 inside, é");
    tracing::info!(folder = "/tmp/x", tries = 3, "with fields");
    tracing::warn!(value = ?Panics, "never shown");
    tracing::debug!("too verbose");
    installed.restore();
    assert_eq!(
        r.messages(),
        vec![
            (
                XnpuLogLevel::Warn,
                "two lines with a \\0 inside, é".to_string()
            ),
            (
                XnpuLogLevel::Info,
                "with fields folder=/tmp/x tries=3".to_string()
            ),
            (
                XnpuLogLevel::Warn,
                "(a log message that could not be formatted)".to_string()
            ),
        ]
    );
}

/// `tests/c/log.c`, built against the shared library (its own copy of `tracing`).
#[cfg(target_os = "linux")]
mod from_c {
    use super::common;
    use std::path::PathBuf;
    use std::process::Output;
    use std::sync::OnceLock;

    fn program() -> &'static PathBuf {
        static EXE: OnceLock<PathBuf> = OnceLock::new();
        EXE.get_or_init(|| common::cc(&common::repo().join("ffi/tests/c/log.c"), "log"))
    }

    fn text(output: &Output) -> (String, String) {
        let (out, err) = (
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        );
        assert!(
            output.status.success(),
            "log exited with {}:\n{out}{err}",
            output.status
        );
        (out, err)
    }

    /// `log sessions` with `XNPU_LOG` set to `level` (None: unset).
    fn sessions(level: Option<&str>) -> (super::Unwritable, String, String) {
        let file = super::Unwritable::new();
        let mut c = common::command(program());
        c.arg("sessions")
            .arg(super::model_path().to_str().expect("UTF-8"))
            .arg(file.0.path());
        if let Some(l) = level {
            c.env("XNPU_LOG", l);
        }
        let (out, err) = text(&c.output().expect("running log"));
        (file, out, err)
    }

    fn warning(file: &super::Unwritable, name: &str) -> String {
        format!(
            "the compile cache {} cannot be written",
            file.dir(name).display()
        )
    }

    #[test]
    fn stderr_by_default_the_callback_once_set_and_stderr_again_after_null() {
        let (file, out, err) = sessions(None);
        println!("stdout:\n{out}stderr:\n{err}");
        let lines: Vec<&str> = err.lines().collect();
        let on_stderr = |name: &str| {
            lines
                .iter()
                .filter(|l| l.starts_with(&format!("xnpu: warning: {}", warning(&file, name))))
                .count()
        };
        assert_eq!(on_stderr("default"), 1, "{err}");
        assert_eq!(on_stderr("restored"), 1, "{err}");
        assert_eq!(on_stderr("callback"), 0, "{err}");
        assert_eq!(on_stderr("filtered"), 0, "{err}");
        // Every message is one line.
        assert!(lines.iter().all(|l| l.starts_with("xnpu: ")), "{err}");
        let received: Vec<&str> = out.lines().filter(|l| !l.starts_with("step ")).collect();
        assert_eq!(
            received.len(),
            1,
            "only the session with the callback at WARN: {out}"
        );
        assert!(
            received[0].starts_with(&format!("warn 2 {}", warning(&file, "callback"))),
            "{out}"
        );
        assert!(
            out.contains("step bad level: code 7: xnpu_set_log_callback: max_level is 9"),
            "{out}"
        );
    }

    #[test]
    fn xnpu_log_sets_the_level_of_stderr() {
        for level in ["off", "error", "ERROR "] {
            let (_file, out, err) = sessions(Some(level));
            assert!(!err.contains("xnpu: "), "XNPU_LOG={level:?}: {err}");
            // The callback's own max_level is not XNPU_LOG's.
            assert_eq!(out.lines().filter(|l| l.starts_with("warn 2 ")).count(), 1);
        }
        let (_file, _, err) = sessions(Some("debug"));
        assert_eq!(
            err.matches("xnpu: warning: the compile cache").count(),
            2,
            "{err}"
        );
        let (_file, _, err) = sessions(Some("loud"));
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(
            lines.first().copied(),
            Some(
                "xnpu: warning: XNPU_LOG=loud: not a level (off, error, warn, info, debug, \
                 trace); showing warnings"
            ),
            "{err}"
        );
        assert_eq!(lines.len(), 3, "{err}");
    }

    #[test]
    fn a_plugin_that_cannot_be_loaded_is_reported_to_the_callback() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let plugin = dir.path().join(xnpu::plugins::plugin_file_name("broken"));
        std::fs::write(&plugin, b"not a shared library").expect("writing the plugin");
        let output = common::command(program())
            .arg("plugins")
            .arg(super::model_path().to_str().expect("UTF-8"))
            .env("XNPU_PLUGIN_PATH", dir.path())
            .output()
            .expect("running log");
        let (out, err) = text(&output);
        println!("stdout:\n{out}stderr:\n{err}");
        let skipped: Vec<&str> = out
            .lines()
            .filter(|l| l.starts_with(&format!("warn 2 skipped {}", plugin.display())))
            .collect();
        assert_eq!(skipped.len(), 1, "{out}");
        assert!(!err.contains("xnpu: warning"), "{err}");
    }
}
