use xnpu_core::shape::normalize_axis;
use xnpu_core::{DType, Dim, Result, Shape, ValueType};

use super::shape::same_as_input;
use crate::infer::{input, tensor_type};
use crate::{InferInput, OpDef};

/// LayerNormalization (ONNX opset 17).
///
/// Inputs `X`, `Scale`, optional `B`; outputs `Y`, optional `Mean`, optional `InvStdDev`.
/// Each slice X[i0, .., i(axis-1), :, .., :] (all dims from `axis` on; negative axis counts
/// from the end) is normalized: mean = avg(x), var = avg((x - mean)^2),
/// inv = 1 / sqrt(var + epsilon), Y = (x - mean) * inv * Scale + B, where Scale and B
/// broadcast to X's shape (numpy rules, toward X). Y has X's dtype and shape; Mean and
/// InvStdDev have dtype `stash_type` and shape X.shape[..axis] followed by ones. Computed
/// in f64 and rounded once.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerNormalization {
    pub axis: i64,
    pub epsilon: f32,
    /// The dtype of the Mean and InvStdDev outputs (f32 or bf16).
    pub stash_type: DType,
}

/// The shape of LayerNormalization's Mean / InvStdDev outputs.
fn stat_shape(x: &Shape, axis: usize) -> Shape {
    Shape(
        x.0.iter()
            .enumerate()
            .map(|(i, d)| if i < axis { d.clone() } else { Dim::Known(1) })
            .collect(),
    )
}

impl OpDef for LayerNormalization {
    const NAMES: &'static [&'static str] = &["LayerNormalization"];

    fn infer(&self, inputs: &[Option<InferInput<'_>>], n_outputs: usize) -> Result<Vec<ValueType>> {
        let stat = match input(inputs, 0).and_then(|x| x.shape()) {
            Some(s) => Some(stat_shape(s, normalize_axis(self.axis, s.rank())?)),
            None => None,
        };
        let mut out = vec![same_as_input(inputs, 0)];
        for _ in 1..n_outputs.min(3) {
            out.push(tensor_type(Some(self.stash_type), stat.clone()));
        }
        Ok(out)
    }
}

/// RMSNormalization (ONNX opset 23).
///
/// Inputs `X`, `scale`; output `Y` (and, for ONNX Runtime's SimplifiedLayerNormalization,
/// an optional f32 `inv_std_var`: X's shape with the normalised dims 1). Each slice over the dims from `axis` on (negative axis
/// counts from the end) is scaled by 1 / sqrt(avg(x^2) + epsilon) and multiplied by
/// `scale` (which broadcasts to X's shape). Y has X's shape and the dtype of `scale`.
/// Computed in f64 and rounded once (`stash_type` only names the precision asked for).
#[derive(Clone, Debug, PartialEq)]
pub struct RmsNormalization {
    pub axis: i64,
    pub epsilon: f32,
    pub stash_type: DType,
}

impl OpDef for RmsNormalization {
    const NAMES: &'static [&'static str] = &["RMSNormalization"];

    fn infer(&self, inputs: &[Option<InferInput<'_>>], n_outputs: usize) -> Result<Vec<ValueType>> {
        let shape = input(inputs, 0).and_then(|x| x.shape());
        let mut stat = None;
        if let Some(s) = shape {
            stat = Some(stat_shape(s, normalize_axis(self.axis, s.rank())?));
        }
        let dtype = input(inputs, 1)
            .and_then(|x| x.dtype())
            .or_else(|| input(inputs, 0).and_then(|x| x.dtype()));
        let mut out = vec![tensor_type(dtype, shape.cloned())];
        if n_outputs > 1 {
            out.push(tensor_type(Some(DType::F32), stat));
        }
        Ok(out)
    }
}
