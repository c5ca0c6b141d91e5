use xnpu_core::{Error, Result, ValueType};

use super::util::{same_as, shape};
use crate::{InferInput, OpDef};

/// ReverseSequence (ONNX opsets 10, 28): for each batch entry `b` (along `batch_axis`),
/// reverses the first `sequence_lens[b]` elements along `time_axis` (input 1: i64 per batch,
/// each in `[0, time dim]`); the rest are copied. The two axes are 0 and 1 in some order.
#[derive(Clone, Debug, PartialEq)]
pub struct ReverseSequence {
    pub batch_axis: usize,
    pub time_axis: usize,
}

impl OpDef for ReverseSequence {
    const NAMES: &'static [&'static str] = &["ReverseSequence"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        if let Some(s) = shape(inputs, 0) {
            if s.rank() < 2 {
                return Err(Error::model(format!(
                    "ReverseSequence: the input must have rank 2 or more, got {s}"
                )));
            }
        }
        Ok(vec![same_as(inputs, 0)])
    }
}
