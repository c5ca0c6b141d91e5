use xnpu_core::{DType, Result, ValueType};

use super::seq_of;
use crate::InferInput;

/// SequenceEmpty (ONNX opset 11): an empty sequence whose tensors have dtype `dtype`
/// (ONNX default: float).
#[derive(Clone, Debug, PartialEq)]
pub struct SequenceEmpty {
    pub dtype: DType,
}

impl SequenceEmpty {
    pub fn infer(
        &self,
        _inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        Ok(vec![seq_of(Some(self.dtype))])
    }
}
