use xnpu_core::{Result, ValueType};

use super::shape::same_as_input;
use crate::{InferInput, OpDef};

/// LRN, local response normalization across channels (ONNX opsets 1, 13).
///
/// For X [N, C, D1, ...]: square_sum[n, c, ...] is the sum of x[n, c', ...]^2 over
/// c' in [c - floor((size-1)/2), c + ceil((size-1)/2)] clipped to [0, C-1], and
/// y = x / (bias + alpha / size * square_sum)^beta. The output has X's dtype and shape.
/// Computed in f64 and rounded once.
#[derive(Clone, Debug, PartialEq)]
pub struct Lrn {
    pub alpha: f32,
    pub beta: f32,
    pub bias: f32,
    pub size: usize,
}

impl OpDef for Lrn {
    const NAMES: &'static [&'static str] = &["LRN"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        Ok(vec![same_as_input(inputs, 0)])
    }
}
