use xnpu_core::shape::normalize_axes;
use xnpu_core::{Result, ValueType};

use super::shape::same_as_input;
use crate::infer::input;
use crate::{InferInput, OpDef};

/// MeanVarianceNormalization (ONNX opsets 9, 13).
///
/// Over the dims in `axes` (default [0, 2, 3]; negative counts from the end):
/// y = (x - mean) / (sqrt(mean(x^2) - mean^2) + 1e-9). The output has the input's dtype and
/// shape. Computed in f64 and rounded once.
#[derive(Clone, Debug, PartialEq)]
pub struct MeanVarianceNormalization {
    pub axes: Vec<i64>,
}

impl OpDef for MeanVarianceNormalization {
    const NAMES: &'static [&'static str] = &["MeanVarianceNormalization"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        if let Some(rank) = input(inputs, 0).and_then(|x| x.rank()) {
            normalize_axes(&self.axes, rank)?;
        }
        Ok(vec![same_as_input(inputs, 0)])
    }
}
