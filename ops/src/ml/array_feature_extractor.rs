use xnpu_core::{Dim, Error, Result, Shape, TensorType, ValueType};

use crate::infer::input;
use crate::{InferInput, OpDef};

/// ArrayFeatureExtractor (ai.onnx.ml opset 1): inputs `(X, Y)`. Picks, along the last axis of
/// `X`, the positions listed in the int64 tensor `Y` (flattened; each in `[0, last dim)`). The
/// output has shape `X.shape[..-1] + [len(Y)]`, and `[1, len(Y)]` for a 1-D `X` (as
/// onnxruntime does).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ArrayFeatureExtractor;

impl OpDef for ArrayFeatureExtractor {
    const NAMES: &'static [&'static str] = &["ArrayFeatureExtractor"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        let x = input(inputs, 0).ok_or_else(|| Error::model("input 0 is required"))?;
        let Some(dtype) = x.dtype() else {
            return Ok(vec![ValueType::Unknown]);
        };
        let k = input(inputs, 1)
            .and_then(|y| y.shape())
            .and_then(|s| s.as_known())
            .map(|d| {
                xnpu_core::shape::checked_numel(&d).map_err(|_| {
                    Error::model(format!(
                        "the indices Y of dims {d:?} hold more than usize::MAX values"
                    ))
                })
            })
            .transpose()?;
        let shape = match (x.shape(), k) {
            (Some(s), Some(k)) if s.rank() == 1 => Some(Shape::known(&[1, k])),
            (Some(s), Some(k)) if s.rank() >= 2 => {
                let mut dims = s.0.clone();
                dims.pop();
                dims.push(Dim::Known(k));
                Some(Shape(dims))
            }
            (Some(s), _) if s.rank() == 0 => {
                return Err(Error::model("the input X must have at least one dimension"))
            }
            _ => None,
        };
        Ok(vec![ValueType::Tensor(TensorType { dtype, shape })])
    }
}
