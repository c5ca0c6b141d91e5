use xnpu_core::shape::normalize_axis;
use xnpu_core::{Result, ValueType};

use super::shape::same_as_input;
use crate::infer::input;
use crate::{InferInput, OpDef};

/// LpNormalization (ONNX opsets 1, 22).
///
/// Each slice along `axis` (negative counts from the end) is divided by its Lp norm,
/// (sum |x|^p)^(1/p) with p 1 or 2; a slice whose norm is 0 gives zeros. The output has the
/// input's dtype and shape. Computed in f64 and rounded once.
#[derive(Clone, Debug, PartialEq)]
pub struct LpNormalization {
    pub axis: i64,
    pub p: i64,
}

impl OpDef for LpNormalization {
    const NAMES: &'static [&'static str] = &["LpNormalization"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        if let Some(rank) = input(inputs, 0).and_then(|x| x.rank()) {
            normalize_axis(self.axis, rank)?;
        }
        Ok(vec![same_as_input(inputs, 0)])
    }
}
