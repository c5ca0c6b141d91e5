//! Statuses: how every fallible call of the C ABI reports failure. A call returns NULL on
//! success, else an [`XnpuStatus`] the caller reads with `xnpu_status_code` and
//! `xnpu_status_message` and frees with `xnpu_status_free`. [`guard`] is the one place that
//! makes them: it runs an entry point's body under `catch_unwind`, so no panic crosses, after
//! installing the log subscriber (`log::init`, once per process).

use std::ffi::{c_char, CString};
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;

use xnpu::core::ErrorKind;
use xnpu::Error;

/// What went wrong. The codes 1–5 are those of `xnpu::core::ErrorKind` (and of the plugin
/// ABI); 6 and 7 belong to the C ABI.
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XnpuCode {
    /// Success (what `xnpu_status_code(NULL)` returns).
    Ok = 0,
    /// The model file is malformed: truncated protobuf, inconsistent sizes, bad references.
    Model = 1,
    /// The model is well formed but uses something xnpu does not support, or a device
    /// refused the work.
    Unsupported = 2,
    /// A value the caller passed is wrong: an unknown input name, a wrong dtype or shape, an
    /// option xnpu does not know.
    InvalidInput = 3,
    /// Computing failed (index out of range, incompatible shapes, a device's failure).
    Compute = 4,
    /// A file could not be read.
    Io = 5,
    /// A bug in xnpu: a panic, caught at the boundary. The message says where.
    Internal = 6,
    /// The call itself is malformed: a NULL pointer, a `struct_size` too small, a length
    /// that overflows, a string that is not UTF-8. The message names the argument.
    InvalidArgument = 7,
    /// The run was cancelled (`xnpu_run_options_terminate`) or passed its time limit.
    Cancelled = 8,
}

/// A failed call's code and message. Opaque: read it with `xnpu_status_code` and
/// `xnpu_status_message`, free it with `xnpu_status_free`.
pub struct XnpuStatus {
    code: XnpuCode,
    message: CString,
}

/// A failure on its way to becoming an [`XnpuStatus`].
#[derive(Debug)]
pub(crate) struct Failure {
    pub code: XnpuCode,
    pub message: String,
}

impl Failure {
    pub fn new(code: XnpuCode, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
        }
    }

    fn into_status(self) -> *mut XnpuStatus {
        Box::into_raw(Box::new(XnpuStatus {
            code: self.code,
            message: c_string(&self.message),
        }))
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        let code = match e.kind() {
            ErrorKind::Model => XnpuCode::Model,
            ErrorKind::Unsupported => XnpuCode::Unsupported,
            ErrorKind::InvalidInput => XnpuCode::InvalidInput,
            ErrorKind::Compute => XnpuCode::Compute,
            ErrorKind::Io => XnpuCode::Io,
            ErrorKind::Cancelled => XnpuCode::Cancelled,
        };
        Failure::new(code, e.to_string())
    }
}

/// A C string of `s` (a NUL inside, which C could not see past, is written `\0`).
pub(crate) fn c_string(s: &str) -> CString {
    CString::new(s.replace('\0', "\\0")).expect("no NUL is left in the string")
}

/// The C function a body runs for: its messages begin with its name.
#[derive(Clone, Copy)]
pub(crate) struct Call(pub &'static str);

impl Call {
    /// A malformed argument: `xnpu_session_run: inputs is NULL`.
    pub fn invalid(self, what: impl fmt::Display) -> Failure {
        Failure::new(XnpuCode::InvalidArgument, format!("{}: {what}", self.0))
    }

    /// A library error, with the function's name in front.
    pub fn error(self, e: Error) -> Failure {
        Failure::from(e.context(self.0))
    }
}

/// Runs an entry point's body: NULL when it succeeds, a status when it fails or panics.
pub(crate) fn guard(call: Call, body: impl FnOnce() -> Result<(), Failure>) -> *mut XnpuStatus {
    let body = || {
        crate::log::init();
        body()
    };
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => ptr::null_mut(),
        Ok(Err(f)) => f.into_status(),
        Err(panic) => Failure::new(
            XnpuCode::Internal,
            format!(
                "{}: internal error (please report it): {}",
                call.0,
                panic_message(panic.as_ref())
            ),
        )
        .into_status(),
    }
}

/// Runs an entry point that cannot report a status (an accessor, a free function): `default`
/// when it panics.
pub(crate) fn quiet<T>(default: T, body: impl FnOnce() -> T) -> T {
    let body = || {
        crate::log::init();
        body()
    };
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(default)
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// The status's code; `XNPU_CODE_OK` for NULL (a call that succeeded).
///
/// # Safety
/// `status` is NULL or a status from this library that was not freed.
#[no_mangle]
pub unsafe extern "C" fn xnpu_status_code(status: *const XnpuStatus) -> XnpuCode {
    quiet(XnpuCode::Internal, || {
        // SAFETY: NULL or a live status (the caller's contract).
        unsafe { status.as_ref() }.map_or(XnpuCode::Ok, |s| s.code)
    })
}

/// The status's message, one sentence naming what is wrong and where (`""` for NULL). The
/// string belongs to the status: it is valid until `xnpu_status_free(status)`.
///
/// # Safety
/// `status` is NULL or a status from this library that was not freed.
#[no_mangle]
pub unsafe extern "C" fn xnpu_status_message(status: *const XnpuStatus) -> *const c_char {
    quiet(c"".as_ptr(), || {
        // SAFETY: NULL or a live status (the caller's contract).
        match unsafe { status.as_ref() } {
            Some(s) => s.message.as_ptr(),
            None => c"".as_ptr(),
        }
    })
}

/// Frees a status (NULL is ignored).
///
/// # Safety
/// `status` is NULL or a status from this library that was not freed before.
#[no_mangle]
pub unsafe extern "C" fn xnpu_status_free(status: *mut XnpuStatus) {
    quiet((), || {
        if !status.is_null() {
            // SAFETY: made by `Box::into_raw` in `Failure::into_status`, freed once (the
            // caller's contract).
            drop(unsafe { Box::from_raw(status) });
        }
    })
}

/// Frees a string this library returned (the explanation's JSON; NULL is ignored).
///
/// # Safety
/// `s` is NULL or a string this library returned to be freed with this function, not freed
/// before.
#[no_mangle]
pub unsafe extern "C" fn xnpu_string_free(s: *mut c_char) {
    quiet((), || {
        if !s.is_null() {
            // SAFETY: made by `CString::into_raw` in this library, freed once (the caller's
            // contract).
            drop(unsafe { CString::from_raw(s) });
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    fn read(status: *mut XnpuStatus) -> (XnpuCode, String) {
        // SAFETY: a status `guard` just made.
        let out = unsafe {
            (
                xnpu_status_code(status),
                CStr::from_ptr(xnpu_status_message(status))
                    .to_string_lossy()
                    .into_owned(),
            )
        };
        // SAFETY: as above, freed once.
        unsafe { xnpu_status_free(status) };
        out
    }

    #[test]
    fn a_panic_becomes_an_internal_status_naming_the_function() {
        let status = guard(Call("xnpu_test"), || panic!("index out of bounds"));
        let (code, message) = read(status);
        assert_eq!(code, XnpuCode::Internal);
        assert_eq!(
            message,
            "xnpu_test: internal error (please report it): index out of bounds"
        );
    }

    #[test]
    fn an_error_keeps_its_kind_and_sentence() {
        let status = guard(Call("xnpu_test"), || {
            Err(Call("xnpu_test").error(Error::invalid_input("input \"x\" is missing")))
        });
        assert_eq!(
            read(status),
            (
                XnpuCode::InvalidInput,
                "xnpu_test: input \"x\" is missing".into()
            )
        );
    }

    #[test]
    fn success_is_null_and_reads_as_ok() {
        let status = guard(Call("xnpu_test"), || Ok(()));
        assert!(status.is_null());
        assert_eq!(read(status), (XnpuCode::Ok, String::new()));
    }

    #[test]
    fn a_nul_inside_a_message_is_written_out() {
        assert_eq!(c_string("a\0b").to_bytes(), b"a\\0b");
    }
}
