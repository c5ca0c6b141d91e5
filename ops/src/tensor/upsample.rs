use xnpu_core::{Result, Shape, ValueType};

use super::util::{dtype, out, shape, unknown_dims};
use crate::{InferInput, OpDef};

/// Upsample (ONNX opsets 7, 9; deprecated in 10), nearest mode only: output dim
/// `floor(d × scale)` per axis and output element `x[floor(i / scale)]` per axis. Scales are
/// the `scales` attribute (opset 7, kept in `scales`) or the f32 input 1 (opset 9), one per
/// axis, each ≥ 1.
#[derive(Clone, Debug, PartialEq)]
pub struct Upsample {
    pub scales: Option<Vec<f32>>,
}

impl Upsample {
    pub fn output_dims(dims: &[usize], scales: &[f32]) -> Result<Vec<usize>> {
        if scales.len() != dims.len() {
            return Err(xnpu_core::Error::compute(format!(
                "Upsample: scales {scales:?} must have one entry per input axis ({})",
                dims.len()
            )));
        }
        dims.iter()
            .zip(scales)
            .map(|(&d, &s)| {
                let v = (d as f64 * f64::from(s)).floor();
                if !(s >= 1.0 && v.is_finite() && v < 1e15) {
                    return Err(xnpu_core::Error::compute(format!(
                        "Upsample: scale {s} must be finite and ≥ 1"
                    )));
                }
                Ok(v as usize)
            })
            .collect()
    }
}

impl OpDef for Upsample {
    const NAMES: &'static [&'static str] = &["Upsample"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        let dims = match (shape(inputs, 0), &self.scales) {
            (Some(s), Some(sc)) => match s.as_known() {
                Some(k) => Some(Shape::known(&Self::output_dims(&k, sc)?)),
                None => Some(unknown_dims("Upsample", s.rank())?),
            },
            (Some(s), None) => Some(unknown_dims("Upsample", s.rank())?),
            _ => None,
        };
        Ok(vec![out(dtype(inputs, 0), dims)])
    }
}
