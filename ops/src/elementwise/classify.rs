use xnpu_core::{DType, Result, ValueType};

use super::broadcast::like_first;
use crate::{InferInput, OpDef};

/// IsNaN (ONNX opsets 9–20): whether each element is NaN (floats); the output is bool.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IsNaN;

impl OpDef for IsNaN {
    const NAMES: &'static [&'static str] = &["IsNaN"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        Ok(vec![like_first(inputs, Some(DType::Bool))])
    }
}

/// IsInf (ONNX opsets 10, 20): whether each element is +infinity (when `detect_positive`) or
/// -infinity (when `detect_negative`); the output is bool.
#[derive(Clone, Debug, PartialEq)]
pub struct IsInf {
    pub detect_positive: bool,
    pub detect_negative: bool,
}

impl OpDef for IsInf {
    const NAMES: &'static [&'static str] = &["IsInf"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        Ok(vec![like_first(inputs, Some(DType::Bool))])
    }
}
