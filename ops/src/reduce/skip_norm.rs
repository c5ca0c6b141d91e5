use xnpu_core::{DType, Dim, Error, Result, Shape, ValueType};

use crate::infer::{input, tensor_type};
use crate::{InferInput, OpDef};

/// SkipLayerNormalization and SkipSimplifiedLayerNormalization (`com.microsoft`): the residual
/// add of a transformer block fused with the normalisation that follows it.
///
/// IR inputs: `input` `[..., H]`, `skip` (input's shape, or `[..., H]` of lower rank that
/// broadcasts toward input, as ONNX Runtime allows `[S, H]` and `[1, S, H]`), `gamma` `[H]`,
/// optional `beta` `[H]` (never given for the simplified form) and optional `bias` `[H]`.
/// `s = input + skip + bias` row by row (rows of H). LayerNorm form:
/// `y = (s - mean(s)) / sqrt(var(s) + epsilon) * gamma + beta`; simplified (RMS) form:
/// `y = s / sqrt(mean(s²) + epsilon) * gamma`. Outputs: `y` (input's shape and dtype),
/// optional `mean` and `inv_std_var` (f32, input's shape with the last dim 1; the
/// simplified form's mean is 0), optional `input_skip_bias_sum` `s`.
#[derive(Clone, Debug, PartialEq)]
pub struct SkipNormalization {
    /// RMS normalisation (SkipSimplifiedLayerNormalization), no mean subtracted, no beta.
    pub simplified: bool,
    pub epsilon: f32,
}

impl SkipNormalization {
    pub fn op_name(&self) -> &'static str {
        if self.simplified {
            "SkipSimplifiedLayerNormalization"
        } else {
            "SkipLayerNormalization"
        }
    }
}

impl OpDef for SkipNormalization {
    const NAMES: &'static [&'static str] =
        &["SkipLayerNormalization", "SkipSimplifiedLayerNormalization"];

    fn name(&self) -> &'static str {
        self.op_name()
    }

    fn infer(&self, inputs: &[Option<InferInput<'_>>], n_outputs: usize) -> Result<Vec<ValueType>> {
        let x = input(inputs, 0).ok_or_else(|| Error::model("input is required"))?;
        let shape = x.shape();
        if let Some(s) = shape {
            if s.rank() < 1 {
                return Err(Error::model(format!(
                    "{} input must have rank >= 1, got a scalar",
                    self.op_name()
                )));
            }
        }
        let stat = shape.map(|s| {
            let mut d = s.0.clone();
            if let Some(l) = d.last_mut() {
                *l = Dim::Known(1);
            }
            Shape(d)
        });
        let y = tensor_type(x.dtype(), shape.cloned());
        let mut out = vec![y.clone()];
        for i in 1..n_outputs.min(4) {
            out.push(if i == 3 {
                y.clone()
            } else {
                tensor_type(Some(DType::F32), stat.clone())
            });
        }
        Ok(out)
    }
}
