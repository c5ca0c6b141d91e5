use xnpu_core::{DType, Result, ValueType};

use super::seq_of;
use crate::{InferInput, OpDef};

/// SequenceEmpty (ONNX opset 11): an empty sequence whose tensors have dtype `dtype`
/// (ONNX default: float).
#[derive(Clone, Debug, PartialEq)]
pub struct SequenceEmpty {
    pub dtype: DType,
}

impl OpDef for SequenceEmpty {
    const NAMES: &'static [&'static str] = &["SequenceEmpty"];

    fn infer(
        &self,
        _inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        Ok(vec![seq_of(Some(self.dtype))])
    }
}
