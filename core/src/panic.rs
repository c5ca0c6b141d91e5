//! Panics in code xnpu does not own, turned into errors.
//!
//! Some dependencies panic on malformed input where they should return an error (tokenizers
//! `expect`s in its deserialiser when a `tokenizer.json` has a "decoder" it cannot read).
//! [`quiet`] runs such a call: a panic inside it is caught, kept off standard error and
//! returned as its message, which the caller reports as an error about the file. A panic
//! anywhere else — another thread, or this one outside `quiet` — goes to the hook that was
//! installed before (Rust's default one, a host's, or a fuzzer's, which aborts), unchanged.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::panic::{self, PanicHookInfo, UnwindSafe};
use std::sync::Once;

thread_local! {
    /// How many `quiet` calls this thread is inside.
    static DEPTH: Cell<u32> = const { Cell::new(0) };
    /// The message and place of the last panic inside a `quiet` call on this thread.
    static CAUGHT: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Runs `f`; a panic inside it becomes `Err(message)` (the panic's message and where it
/// happened), and nothing is printed. Use it only around calls whose partial state is thrown
/// away on a panic (`f` must be unwind safe).
pub fn quiet<T>(f: impl FnOnce() -> T + UnwindSafe) -> Result<T, String> {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if DEPTH.with(Cell::get) > 0 {
                CAUGHT.with(|c| *c.borrow_mut() = Some(describe(info)));
            } else {
                previous(info);
            }
        }));
    });
    DEPTH.with(|d| d.set(d.get() + 1));
    let result = panic::catch_unwind(f);
    DEPTH.with(|d| d.set(d.get() - 1));
    result.map_err(|payload| {
        CAUGHT
            .with(|c| c.borrow_mut().take())
            .unwrap_or_else(|| payload_message(payload.as_ref()))
    })
}

fn describe(info: &PanicHookInfo<'_>) -> String {
    let message = payload_message(info.payload());
    match info.location() {
        Some(at) => format!("{message} (at {}:{})", short_path(at.file()), at.line()),
        None => message,
    }
}

fn payload_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_string()
    }
}

/// A source path from its crate's folder on (`tokenizers-0.23.2/src/decoders/mod.rs`), not
/// the builder's home folder.
fn short_path(file: &str) -> &str {
    match file.find("/registry/src/") {
        Some(i) => file[i + "/registry/src/".len()..]
            .split_once('/')
            .map_or(file, |(_, rest)| rest),
        None => file,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_inside_becomes_its_message() {
        let err = quiet(|| -> u32 { panic!("bad decoder {}", 7) }).unwrap_err();
        assert!(err.starts_with("bad decoder 7 (at "), "{err}");
        assert!(err.contains("panic.rs:"), "{err}");
        assert_eq!(quiet(|| 5), Ok(5));
    }

    #[test]
    fn nested_calls_and_static_messages() {
        let outer = quiet(|| -> u8 {
            let inner = quiet(|| -> u8 { panic!("inner") });
            assert!(inner.unwrap_err().starts_with("inner (at "));
            panic!("outer")
        });
        let err = outer.unwrap_err();
        assert!(err.starts_with("outer (at "), "{err}");
        // Depth is back to zero: a later panic outside `quiet` would reach the old hook.
        assert_eq!(DEPTH.with(Cell::get), 0);
    }

    #[test]
    fn registry_paths_are_shortened() {
        assert_eq!(
            short_path("/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/tokenizers-0.23.2/src/decoders/mod.rs"),
            "tokenizers-0.23.2/src/decoders/mod.rs"
        );
        assert_eq!(short_path("core/src/panic.rs"), "core/src/panic.rs");
    }
}
