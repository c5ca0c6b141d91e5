use xnpu_core::{Result, ValueType};

use crate::infer::input;
use crate::{InferInput, OpDef};

/// SequenceErase (ONNX opset 11): inputs `(S, position?)`. The output is `S` without the tensor
/// at index `position` (a scalar int32/int64 in `[-n, n-1]`; negative counts from the back;
/// absent means the last one).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SequenceErase;

impl OpDef for SequenceErase {
    const NAMES: &'static [&'static str] = &["SequenceErase"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        Ok(vec![
            input(inputs, 0).map_or(ValueType::Unknown, |s| s.ty.clone())
        ])
    }
}
