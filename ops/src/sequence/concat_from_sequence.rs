use xnpu_core::{Result, TensorType, ValueType};

use super::seq_elem_dtype;
use crate::infer::input;
use crate::{InferInput, OpDef};

/// ConcatFromSequence (ONNX opset 11): concatenates the tensors of a non-empty sequence along
/// `axis`. With `new_axis == false` the tensors must agree on every dim but `axis` (in
/// `[-r, r-1]`); with `new_axis == true` they must have one shape and are stacked along a new
/// axis inserted at `axis` (in `[-r-1, r]`), as numpy `stack` does.
#[derive(Clone, Debug, PartialEq)]
pub struct ConcatFromSequence {
    pub axis: i64,
    pub new_axis: bool,
}

impl OpDef for ConcatFromSequence {
    const NAMES: &'static [&'static str] = &["ConcatFromSequence"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        let dtype = input(inputs, 0).and_then(|s| seq_elem_dtype(s.ty));
        Ok(vec![dtype.map_or(ValueType::Unknown, |d| {
            ValueType::Tensor(TensorType::unranked(d))
        })])
    }
}
