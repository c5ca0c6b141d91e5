//! xnpu-linalg: the CPU's fast kernels.
//!
//! The reference kernels of `xnpu-backend-cpu` say what every op computes; the kernels here
//! compute the heavy ones fast — matrix products, convolutions and their epilogues — and are
//! held to the reference by differential tests (`proptest`, odd and tiny shapes). The
//! instruction set is detected once per process ([`isa::Features`]); the GEMM micro-kernels
//! are chosen from it at run time, the rest is portable code.
//!
//! Nothing here knows the IR or the op set: the CPU backend decides, when it compiles a
//! graph, which node runs on which kernel, and packs the weights once.

pub mod act;
pub mod conv;
pub mod elementwise;
pub mod isa;
pub mod packed;
pub mod pool;
pub mod sgemm;

pub use act::Act;
pub use conv::{Geometry, PackedConv, Path};
pub use elementwise::{binary, transpose, BinOp};
pub use isa::{Features, Isa};
pub use packed::{PackedA, PackedB};
pub use pool::max_pool;
pub use sgemm::{sgemm, MatRef};
