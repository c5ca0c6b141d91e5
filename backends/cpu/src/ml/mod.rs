//! Reference kernels of the `ml` family. See `tensor/mod.rs` for the shape of a kernel.

use xnpu_core::{Result, Value};
use xnpu_ops::ml::Op;

/// Runs one op of the family on its inputs (`None` is an absent optional input) and returns
/// at least `n_outputs` values, in op order.
pub fn run(op: &Op, _inputs: &[Option<&Value>], _n_outputs: usize) -> Result<Vec<Value>> {
    match *op {}
}
