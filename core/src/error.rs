//! The error type shared by every crate. An error says where (model, node and op, input) and
//! what was expected versus found; context is added on the way up with [`ResultExt::context`].

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
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
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// An inner error with the place where it happened.
    #[error("{context}: {source}")]
    Context {
        context: String,
        #[source]
        source: Box<Error>,
    },
}

/// What kind of failure an error is, looking through its context.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    Model,
    Unsupported,
    InvalidInput,
    Compute,
    Io,
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
}
