use xnpu_core::{DType, Result, TensorType, ValueType};

use super::string_input;
use crate::{InferInput, OpDef};

/// StringSplit (ONNX opset 20): splits each string of the input `X` on `delimiter` (`None`:
/// on runs of whitespace, ignoring leading and trailing whitespace, as Python's
/// `str.split()`), making at most `maxsplit` splits (`None`: no limit) from the left.
/// Outputs: `Y`, a string tensor of shape `X.shape + [M]` where `M` is the largest number of
/// pieces of any element (shorter rows padded with ""), and `Z`, the int64 number of pieces of
/// each element (shape `X.shape`).
#[derive(Clone, Debug, PartialEq)]
pub struct StringSplit {
    pub delimiter: Option<String>,
    pub maxsplit: Option<usize>,
}

impl OpDef for StringSplit {
    const NAMES: &'static [&'static str] = &["StringSplit"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        let x = string_input(inputs, 0)?;
        Ok(vec![
            ValueType::Tensor(TensorType::unranked(DType::String)),
            ValueType::Tensor(TensorType {
                dtype: DType::I64,
                shape: x.shape().cloned(),
            }),
        ])
    }
}
