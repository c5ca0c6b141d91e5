use xnpu_core::{DType, Result, TensorType, ValueType};

use super::string_input;
use crate::{InferInput, OpDef};

/// RegexFullMatch (ONNX opset 20): for each string of the input, whether the whole string
/// matches `pattern` (RE2 syntax; `\w`, `\d`, `\s` and `\b` are ASCII-only as in RE2). The
/// output is a bool tensor of the input's shape.
#[derive(Clone, Debug, PartialEq)]
pub struct RegexFullMatch {
    pub pattern: String,
}

impl OpDef for RegexFullMatch {
    const NAMES: &'static [&'static str] = &["RegexFullMatch"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        let x = string_input(inputs, 0)?;
        Ok(vec![ValueType::Tensor(TensorType {
            dtype: DType::Bool,
            shape: x.shape().cloned(),
        })])
    }
}
