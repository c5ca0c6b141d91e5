//! xnpu-core: the vocabulary every other crate speaks.
//!
//! Sits at the start of the path of a model (`core` ← `ops` ← `graph` ← backends ← `xnpu`):
//! dtypes (one table row each) and the one numeric element trait, shapes (numbers or named
//! symbols) and their broadcasting, tensors whose bytes may be zero-copy slices of a
//! memory-mapped model, run-time values (tensors, sequences, optionals) and the error type.
//! It must never depend on the operator set, the IR, or any backend.

pub mod blob;
pub mod broadcast;
pub mod dtype;
pub mod error;
pub mod fs;
pub mod locate;
pub mod narrow;
pub mod num;
pub mod panic;
pub mod plugin;
pub mod recycle;
pub mod run;
pub mod shape;
pub mod tensor;
pub mod value;

pub use dtype::{DType, Elem};
pub use error::{BackendError, Error, ErrorKind, Result};
pub use num::Num;
pub use shape::{Dim, Shape, TensorType, ValueType};
pub use tensor::Tensor;
pub use value::Value;

pub use bytes::Bytes;
pub use half::{bf16, f16};
