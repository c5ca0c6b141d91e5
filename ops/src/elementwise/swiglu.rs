use xnpu_core::{Error, Result, ValueType};

use super::broadcast::like_first;
use crate::infer::input;
use crate::{InferInput, OpDef};

/// SwiGLU (ONNX opset 28): `A * sigmoid(alpha * A) * B` for `A` and `B` of the same float
/// dtype and the same shape (no broadcasting).
#[derive(Clone, Debug, PartialEq)]
pub struct SwiGlu {
    pub alpha: f32,
}

impl OpDef for SwiGlu {
    const NAMES: &'static [&'static str] = &["SwiGLU"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        if let (Some(a), Some(b)) = (
            input(inputs, 0).and_then(|x| x.shape()),
            input(inputs, 1).and_then(|x| x.shape()),
        ) {
            if let (Some(a), Some(b)) = (a.as_known(), b.as_known()) {
                if a != b {
                    return Err(Error::model(format!(
                        "SwiGLU needs A and B of the same shape, got {a:?} and {b:?}"
                    )));
                }
            }
        }
        Ok(vec![like_first(inputs, None)])
    }
}
