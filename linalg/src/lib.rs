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
pub mod attention;
pub mod buf;
pub mod conv;
pub mod elementwise;
pub mod isa;
pub mod math;
pub mod packed;
pub mod pool;
pub mod quant;
pub mod sgemm;
mod winograd;

pub use act::Act;
pub use conv::{Geometry, PackedConv, Path};
pub use elementwise::{binary, transpose, transpose_into, BinOp};
pub use isa::{Features, Isa};
pub use math::{layer_norm, softmax, SoftmaxOut};
pub use packed::{PackedA, PackedB};
pub use pool::max_pool;
pub use sgemm::{sgemm, MatRef};

/// Seeded values in [-1, 1) for the kernels' tests.
#[cfg(test)]
pub(crate) fn test_values(n: usize, seed: u64) -> Vec<f32> {
    use rand::{Rng, SeedableRng};
    let mut r = rand::rngs::StdRng::seed_from_u64(seed);
    (0..n).map(|_| r.random_range(-1.0f32..1.0)).collect()
}
