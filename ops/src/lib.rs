//! xnpu-ops: the operator set, the contract every backend is tested against.
//!
//! Sits after `core` on the path of a model (`core` ← `ops` ← `graph` ← backends ← `xnpu`).
//! Each op is a struct of typed attributes (parsed once at import, never looked up by string
//! at run time) with a doc comment that states its semantics, and a shape function. Ops are
//! grouped in families, one module each; each family has an `Op` enum over its op structs.
//! This crate must never depend on the IR, the ONNX importer, or any backend.

pub mod infer;

pub mod attention;
pub mod elementwise;
pub mod image;
pub mod ml;
pub mod nn;
pub mod reduce;
pub mod rnn;
pub mod sequence;
pub mod signal;
pub mod tensor;
pub mod text;

pub use infer::InferInput;
