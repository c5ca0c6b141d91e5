use xnpu_core::{Result, ValueType};

use crate::infer::input;
use crate::{InferInput, OpDef};

/// Binarizer (ai.onnx.ml opset 1): each element becomes 1 when it is greater than `threshold`
/// and 0 otherwise (NaN gives 0), in the input's dtype (float, double, int32, int64).
#[derive(Clone, Debug, PartialEq)]
pub struct Binarizer {
    pub threshold: f32,
}

impl OpDef for Binarizer {
    const NAMES: &'static [&'static str] = &["Binarizer"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        Ok(vec![
            input(inputs, 0).map_or(ValueType::Unknown, |x| x.ty.clone())
        ])
    }
}
