//! Reference kernels of the `rnn` family.

mod recurrent;

use xnpu_core::{Result, Value};
use xnpu_ops::rnn::Op;

/// Runs one op of the family on its inputs (`None` is an absent optional input) and returns
/// at least `n_outputs` values, in op order.
pub fn run(op: &Op, inputs: &[Option<&Value>], _n_outputs: usize) -> Result<Vec<Value>> {
    match op {
        Op::Recurrent(o) => recurrent::run(o, inputs),
    }
}
