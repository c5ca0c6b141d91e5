use xnpu_core::{DType, Result, Shape, TensorType, ValueType};

use crate::{InferInput, OpDef};

/// SequenceLength (ONNX opset 11): the number of tensors in the input sequence, as an int64
/// scalar.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SequenceLength;

impl OpDef for SequenceLength {
    const NAMES: &'static [&'static str] = &["SequenceLength"];

    fn infer(
        &self,
        _inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        Ok(vec![ValueType::Tensor(TensorType::new(
            DType::I64,
            Shape::known(&[]),
        ))])
    }
}
