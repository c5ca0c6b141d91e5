//! RotaryEmbedding (see the op's doc for the contract).

use xnpu_core::{Error, Result, Value};
use xnpu_ops::attention::RotaryEmbedding;

use super::{floats, store};
use crate::args::{opt_tensor, tensor};

pub fn run(op: &RotaryEmbedding, inputs: &[Option<&Value>]) -> Result<Vec<Value>> {
    let _ = (op, inputs, floats, store, opt_tensor, tensor);
    Err(Error::unsupported("RotaryEmbedding is not implemented yet"))
}
