use xnpu_core::broadcast::broadcast_dims;
use xnpu_core::{DType, Result, TensorType, ValueType};

use super::string_input;
use crate::{InferInput, OpDef};

/// StringConcat (ONNX opset 20): the element-wise concatenation `X + Y` of two string
/// tensors, broadcast as numpy does.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StringConcat;

impl OpDef for StringConcat {
    const NAMES: &'static [&'static str] = &["StringConcat"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        let x = string_input(inputs, 0)?;
        let y = string_input(inputs, 1)?;
        let shape = match (x.shape(), y.shape()) {
            (Some(a), Some(b)) => Some(broadcast_dims(a, b)?),
            _ => None,
        };
        Ok(vec![ValueType::Tensor(TensorType {
            dtype: DType::String,
            shape,
        })])
    }
}
