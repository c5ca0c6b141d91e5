//! The error type shared by every crate. An error says where (model, node and op, input) and
//! what was expected versus found; context is added on the way up with [`ResultExt::context`].
//!
//! `Display` reads as one sentence for a user, outermost place first
//! (`model.onnx: node "conv_7" (Conv): input 1 has 3 dims, Conv needs 4`), and `Debug` is the
//! same sentence: a program whose `main` returns [`Result`] prints it that way. A failure of a
//! vendor library keeps its parts ([`BackendError`]: backend, vendor code, vendor message) for
//! callers that act on them.

use std::fmt;
use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(thiserror::Error)]
pub enum Error {
    /// The model file is malformed: truncated protobuf, inconsistent sizes, bad references.
    #[error("{0}")]
    Model(String),
    /// The model is well formed but uses something xnpu does not support (op, dtype, opset).
    #[error("{0}")]
    Unsupported(String),
    /// A caller passed something wrong: a missing input, a wrong dtype or shape.
    #[error("{0}")]
    InvalidInput(String),
    /// An op was given values it cannot compute on (index out of range, incompatible shapes).
    #[error("{0}")]
    Compute(String),
    /// A file could not be read.
    #[error("{}: {}", .path.display(), io_words(.source))]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A backend's vendor library refused or failed a call.
    #[error("{0}")]
    Backend(Box<BackendError>),
    /// The run was cancelled from another thread or passed its time limit (`run::check`).
    #[error("{0}")]
    Cancelled(String),
    /// An inner error with the place where it happened.
    #[error("{context}: {source}")]
    Context {
        context: String,
        #[source]
        source: Box<Error>,
    },
}

/// An I/O error in a user's words: the usual ones from the OS without its error number; an
/// error made with its own message keeps it.
fn io_words(e: &std::io::Error) -> String {
    use std::io::ErrorKind as K;
    if e.raw_os_error().is_none() {
        return e.to_string();
    }
    match e.kind() {
        K::NotFound => "no such file or folder".into(),
        K::PermissionDenied => "permission denied".into(),
        K::IsADirectory => "a folder, not a file".into(),
        K::NotADirectory => "a part of the path is a file, not a folder".into(),
        _ => e.to_string(),
    }
}

impl fmt::Debug for Error {
    /// The user's sentence, as `Display`: what `main` returning `Err` prints.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A vendor library's failure, with its own code and message kept apart from xnpu's words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendError {
    /// The backend's device id (`qnn:htp-sim`, `openvino:npu`), or the library's name
    /// (`QNN`, `OpenVINO`) where the call is not tied to one device.
    pub backend: String,
    /// What xnpu asked of the library (`validating ElementWiseMultiply`, `compiling a model`).
    pub action: String,
    /// The library's own status code, when it returned one.
    pub code: Option<i64>,
    /// The library's own message (and log lines), possibly empty.
    pub message: String,
    /// Whether the library refused the work ([`ErrorKind::Unsupported`]) or failed doing it
    /// ([`ErrorKind::Compute`]).
    pub kind: ErrorKind,
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} failed", self.backend, self.action)?;
        if let Some(code) = self.code {
            write!(f, " with error {code}")?;
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

/// What kind of failure an error is, looking through its context.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    Model,
    Unsupported,
    InvalidInput,
    Compute,
    Io,
    Cancelled,
}

impl Error {
    pub fn model(msg: impl Into<String>) -> Self {
        Error::Model(msg.into())
    }
    pub fn unsupported(msg: impl Into<String>) -> Self {
        Error::Unsupported(msg.into())
    }
    pub fn invalid_input(msg: impl Into<String>) -> Self {
        Error::InvalidInput(msg.into())
    }
    pub fn compute(msg: impl Into<String>) -> Self {
        Error::Compute(msg.into())
    }
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// A vendor library's failure: `backend` (device id or library name), what was asked,
    /// the library's code and message; `kind` says whether it refused or failed.
    pub fn backend(
        backend: impl Into<String>,
        action: impl Into<String>,
        code: Option<i64>,
        message: impl Into<String>,
        kind: ErrorKind,
    ) -> Self {
        Error::Backend(Box::new(BackendError {
            backend: backend.into(),
            action: action.into(),
            code,
            message: message.into(),
            kind,
        }))
    }

    /// The vendor library's failure inside this error, looking through its context.
    pub fn backend_error(&self) -> Option<&BackendError> {
        match self {
            Error::Backend(b) => Some(b),
            Error::Context { source, .. } => source.backend_error(),
            _ => None,
        }
    }

    /// Wraps the error in a place: `model.onnx: node "conv_7" (Conv): ...`.
    pub fn context(self, context: impl Into<String>) -> Self {
        Error::Context {
            context: context.into(),
            source: Box::new(self),
        }
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Model(_) => ErrorKind::Model,
            Error::Unsupported(_) => ErrorKind::Unsupported,
            Error::InvalidInput(_) => ErrorKind::InvalidInput,
            Error::Compute(_) => ErrorKind::Compute,
            Error::Io { .. } => ErrorKind::Io,
            Error::Cancelled(_) => ErrorKind::Cancelled,
            Error::Backend(b) => b.kind,
            Error::Context { source, .. } => source.kind(),
        }
    }
}

pub trait ResultExt<T> {
    /// Adds a place to the error, computed only on failure.
    fn context<C: Into<String>>(self, f: impl FnOnce() -> C) -> Result<T>;
}

impl<T> ResultExt<T> for Result<T> {
    fn context<C: Into<String>>(self, f: impl FnOnce() -> C) -> Result<T> {
        self.map_err(|e| e.context(f()))
    }
}

/// Returns early with an [`Error::Compute`] built from a format string.
#[macro_export]
macro_rules! bail_compute {
    ($($arg:tt)*) => { return Err($crate::Error::Compute(format!($($arg)*))) };
}

/// Returns early with an [`Error::Model`] built from a format string.
#[macro_export]
macro_rules! bail_model {
    ($($arg:tt)*) => { return Err($crate::Error::Model(format!($($arg)*))) };
}

/// Returns early with an [`Error::Unsupported`] built from a format string.
#[macro_export]
macro_rules! bail_unsupported {
    ($($arg:tt)*) => { return Err($crate::Error::Unsupported(format!($($arg)*))) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_reads_outside_in_and_keeps_kind() {
        let e = Error::compute("index 7 out of range for axis of size 3")
            .context("node \"g\" (Gather)")
            .context("model.onnx");
        assert_eq!(
            e.to_string(),
            "model.onnx: node \"g\" (Gather): index 7 out of range for axis of size 3"
        );
        assert_eq!(e.kind(), ErrorKind::Compute);
    }

    /// ENOENT, the same on every Unix and on Windows (ERROR_FILE_NOT_FOUND).
    fn libc_enoent() -> i32 {
        2
    }

    #[test]
    fn debug_prints_the_users_sentence() {
        let e = Error::io(
            "tinycnn.onnx",
            std::io::Error::from_raw_os_error(libc_enoent()),
        )
        .context("loading the model");
        assert_eq!(
            format!("{e:?}"),
            "loading the model: tinycnn.onnx: no such file or folder"
        );
    }

    #[test]
    fn a_vendor_failure_keeps_its_code_and_message() {
        let e = Error::backend(
            "qnn:htp-sim",
            "validating ElementWiseMultiply",
            Some(3110),
            "op config validation failed",
            ErrorKind::Unsupported,
        )
        .context("compiling partition 1");
        assert_eq!(
            e.to_string(),
            "compiling partition 1: qnn:htp-sim: validating ElementWiseMultiply failed with \
             error 3110: op config validation failed"
        );
        assert_eq!(e.kind(), ErrorKind::Unsupported);
        let b = e.backend_error().unwrap();
        assert_eq!((b.backend.as_str(), b.code), ("qnn:htp-sim", Some(3110)));
    }
}
