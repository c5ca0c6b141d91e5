use xnpu_core::{Result, ValueType};

use super::seq_elem;
use crate::infer::input;
use crate::{InferInput, OpDef};

/// SequenceAt (ONNX opset 11): inputs `(S, position)`. The output is the tensor at index
/// `position` (a scalar int32/int64 in `[-n, n-1]`; negative counts from the back).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SequenceAt;

impl OpDef for SequenceAt {
    const NAMES: &'static [&'static str] = &["SequenceAt"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        Ok(vec![
            input(inputs, 0).map_or(ValueType::Unknown, |s| seq_elem(s.ty))
        ])
    }
}
