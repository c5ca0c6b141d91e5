//! Helpers for reading a kernel's inputs with errors that say which input is wrong.

use xnpu_core::num::load_floats;
use xnpu_core::{Error, Result, Tensor, Value};

/// Input `i`, which the op requires.
pub fn input<'a>(inputs: &[Option<&'a Value>], i: usize) -> Result<&'a Value> {
    inputs
        .get(i)
        .copied()
        .flatten()
        .ok_or_else(|| Error::compute(format!("input {i} is required but absent")))
}

/// Input `i` as a tensor, which the op requires.
pub fn tensor<'a>(inputs: &[Option<&'a Value>], i: usize) -> Result<&'a Tensor> {
    input(inputs, i)?
        .as_tensor()
        .map_err(|e| e.context(format!("input {i}")))
}

/// Input `i` as a tensor when present.
pub fn opt_tensor<'a>(inputs: &[Option<&'a Value>], i: usize) -> Result<Option<&'a Tensor>> {
    match inputs.get(i).copied().flatten() {
        None => Ok(None),
        Some(v) => v
            .as_tensor()
            .map(Some)
            .map_err(|e| e.context(format!("input {i}"))),
    }
}

/// The values of a float tensor (any float dtype) as f64, or an error naming it `what` when
/// it is not a float tensor.
pub fn floats(t: &Tensor, what: &str) -> Result<Vec<f64>> {
    if !t.dtype().is_float() {
        return Err(Error::compute(format!(
            "{what} must be a float tensor, got {}",
            t.dtype()
        )));
    }
    load_floats::<f64>(t)
}
