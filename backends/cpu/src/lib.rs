//! xnpu-backend-cpu: the reference CPU backend.
//!
//! On the path of a model (`core` ← `ops` ← `graph` ← backends ← `xnpu`), this backend runs an
//! IR graph node by node with simple, obviously correct kernels, one module per op family of
//! `xnpu-ops`. It is the oracle every other backend and every fast kernel is tested against,
//! so clarity beats speed here. It must never depend on another backend or a vendor library.

pub mod args;
mod backend;
mod control;
mod exec;
mod prepack;
mod provider;

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

pub use backend::CpuBackend;
pub use exec::{run_graph, run_graph_owned, run_node};
pub use provider::{CpuProvider, PROVIDER};
