//! xnpu-graph: ONNX import and the typed IR.
//!
//! On the path of a model (`core` ← `ops` ← `graph` ← backends ← `xnpu`), this crate turns an
//! ONNX file into the IR (`onnx` → `ir`). Passes, partitioning and the memory planner come
//! here too. It must never depend on a backend or on a vendor library.

pub mod backend;
pub mod ir;
pub mod memory;
pub mod onnx;
pub mod partition;
pub mod passes;
pub mod plugin;

pub use ir::{Graph, Model, Node, Op, ValueId, ValueInfo};
