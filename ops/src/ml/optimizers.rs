//! The optimizer update rules of `ai.onnx.preview.training` (opset 1). Each is a pure function
//! of its inputs `(R, T, tensors...)`: `R` is the learning rate (a float/double scalar), `T`
//! the update count (an int64 scalar), followed by `n >= 1` groups of float/double tensors of
//! one shape per group. The new values are computed element-wise in f64 and returned in the
//! dtype of the optimized tensor.

use xnpu_core::{Error, Result, ValueType};

use crate::infer::input;
use crate::{InferInput, OpDef};

/// Output types: `groups_out` groups of `n` outputs, group `k` typed like input group
/// `input_groups[k]` (input group `g` is inputs `2 + g*n .. 2 + (g+1)*n`).
fn group_types(
    inputs: &[Option<InferInput<'_>>],
    n_groups_in: usize,
    input_groups: &[usize],
) -> Result<Vec<ValueType>> {
    let rest = inputs.len().saturating_sub(2);
    if rest == 0 || !rest.is_multiple_of(n_groups_in) {
        return Err(Error::model(format!(
            "expected R, T and {n_groups_in} groups of tensors of one length, got {} inputs",
            inputs.len()
        )));
    }
    let n = rest / n_groups_in;
    Ok(input_groups
        .iter()
        .flat_map(|&g| (0..n).map(move |i| 2 + g * n + i))
        .map(|i| input(inputs, i).map_or(ValueType::Unknown, |x| x.ty.clone()))
        .collect())
}

/// Adagrad: inputs `(R, T, X_1..X_n, G_1..G_n, H_1..H_n)`, outputs
/// `(X_1_new..X_n_new, H_1_new..H_n_new)` with
/// `r = R / (1 + T * decay_factor)`, `g = norm_coefficient * X + G`, `H_new = H + g * g`,
/// `X_new = X - r * g / (sqrt(H_new) + epsilon)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Adagrad {
    pub decay_factor: f32,
    pub epsilon: f32,
    pub norm_coefficient: f32,
}

impl OpDef for Adagrad {
    const NAMES: &'static [&'static str] = &["Adagrad"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        group_types(inputs, 3, &[0, 2])
    }
}

/// Adam: inputs `(R, T, X_1..X_n, G_1..G_n, V_1..V_n, H_1..H_n)`, outputs
/// `(X_new.., V_new.., H_new..)` with `g = norm_coefficient * X + G`,
/// `V_new = alpha * V + (1 - alpha) * g`, `H_new = beta * H + (1 - beta) * g * g`,
/// `r = R * sqrt(1 - beta^T) / (1 - alpha^T)` when `T > 0` (else `R`),
/// `X_new = (1 - norm_coefficient_post) * (X - r * V_new / (sqrt(H_new) + epsilon))`.
#[derive(Clone, Debug, PartialEq)]
pub struct Adam {
    pub alpha: f32,
    pub beta: f32,
    pub epsilon: f32,
    pub norm_coefficient: f32,
    pub norm_coefficient_post: f32,
}

impl OpDef for Adam {
    const NAMES: &'static [&'static str] = &["Adam"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        group_types(inputs, 4, &[0, 2, 3])
    }
}

/// Momentum: inputs `(R, T, X_1..X_n, G_1..G_n, V_1..V_n)`, outputs `(X_new.., V_new..)` with
/// `g = norm_coefficient * X + G`, `V_new = alpha * V + b * g` where `b = beta` when `T > 0`
/// and 1 otherwise, and `X_new = X - R * V_new` (standard) or
/// `X_new = X - R * (g + alpha * V_new)` (`nesterov`).
#[derive(Clone, Debug, PartialEq)]
pub struct Momentum {
    pub alpha: f32,
    pub beta: f32,
    pub norm_coefficient: f32,
    pub nesterov: bool,
}

impl OpDef for Momentum {
    const NAMES: &'static [&'static str] = &["Momentum"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        group_types(inputs, 3, &[0, 2])
    }
}
