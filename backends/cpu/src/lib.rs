//! xnpu-backend-cpu: the CPU backend.
//!
//! On the path of a model (`core` ← `ops` ← `graph` ← backends ← `xnpu`), this backend runs an
//! IR graph node by node. Every op has a reference kernel here: simple and obviously correct,
//! one module per op family of `xnpu-ops`, the oracle every other backend and every fast
//! kernel is tested against, so clarity beats speed in them. When a graph is compiled, the
//! nodes that `xnpu-linalg` computes fast (fp32 GEMM and convolution) get a fast kernel with
//! their weights packed once (`fast`); device `cpu:reference` runs the reference kernels alone.
//! It must never depend on another backend or a vendor library.

use xnpu_core::{Result, Tensor, Value};

/// A reference kernel: what the CPU backend computes for one op. Every op the families
/// declare has one (the dispatch is made from the declarations, `xnpu_ops::all_ops!`), so an
/// op without a kernel does not compile.
pub trait Kernel {
    /// Runs the op on its inputs (`None` is an absent optional input) and returns at least
    /// `n_outputs` values, in op order.
    fn run(&self, inputs: &[Option<&Value>], n_outputs: usize) -> Result<Vec<Value>>;
}

/// `kernel!(Op, |op, inputs, n_outputs| body)` implements [`Kernel`] for `Op` with `body`
/// (a `Result<Vec<Value>>`, in which `?` returns from `run`).
macro_rules! kernel {
    ($op:ty, |$o:pat_param, $inputs:pat_param, $n:pat_param| $body:expr) => {
        impl $crate::Kernel for $op {
            fn run(
                &self,
                $inputs: &[Option<&xnpu_core::Value>],
                n_outputs: usize,
            ) -> xnpu_core::Result<Vec<xnpu_core::Value>> {
                let $o = self;
                let $n = n_outputs;
                $body
            }
        }
    };
}

/// A family enum's kernel: its op's own (a callback of `xnpu_ops::all_ops!`).
macro_rules! kernel_family {
    ($family:ident: $($op:ident)*) => {
        impl Kernel for xnpu_ops::$family::Op {
            fn run(&self, inputs: &[Option<&Value>], n_outputs: usize) -> Result<Vec<Value>> {
                match self {
                    $(xnpu_ops::$family::Op::$op(o) => o.run(inputs, n_outputs),)*
                }
            }
        }
    };
}

xnpu_ops::all_ops!(kernel_family!());

/// One tensor as a kernel's outputs.
fn one(t: Tensor) -> Vec<Value> {
    vec![Value::Tensor(t)]
}

/// Tensors as a kernel's outputs.
fn tensors(ts: Vec<Tensor>) -> Vec<Value> {
    ts.into_iter().map(Value::Tensor).collect()
}

pub mod args;
mod backend;
mod control;
mod exec;
mod fast;
mod prepack;
pub mod profile;
mod provider;
pub mod rng;

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

pub use backend::{CpuBackend, REFERENCE_ID};
pub use exec::{run_graph, run_graph_owned, run_node};
pub use fast::describe as fast_path;
pub use provider::{CpuProvider, PROVIDER};
