use xnpu_core::{DType, Result, ValueType};

use super::util::{out, same_as, shape};
use crate::{InferInput, OpDef};

/// Dropout (ONNX opsets 1, 6, 7, 10, 12, 13, 22). In inference (no training-mode input, or
/// the optional bool input 2 false, or a ratio of 0) output 0 is input 0 and the optional
/// output 1 (the mask) is all true, of input 0's dims. In training mode (opset ≥ 12, input 2
/// true) with a ratio `r` in `(0, 1)` (optional scalar input 1, default 0.5; the `ratio`
/// attribute before opset 12, which has no training mode) each element is kept when its
/// uniform draw `u` in `[0, 1)` is at least `r`: output 0 is `x * (1 / (1 - r))` where kept
/// (the scale computed in the ratio's dtype, the product in x's), 0 elsewhere, and the mask
/// says which were kept. A ratio outside `[0, 1)` is an error.
///
/// The draws: NumPy's legacy `RandomState(seed).uniform(0, 1, x.shape)` (see
/// `elementwise::Random`), the values ONNX's reference implementation draws, so a seeded
/// training Dropout drops the same elements in every run and as the reference does; without
/// `seed` every run draws anew. `is_test` of opsets < 7 is ignored, as inference runtimes do.
#[derive(Clone, Debug, PartialEq)]
pub struct Dropout {
    /// The ratio given as an attribute (opsets < 12).
    pub ratio: Option<f32>,
    pub seed: Option<i64>,
}

impl OpDef for Dropout {
    const NAMES: &'static [&'static str] = &["Dropout"];

    fn infer(&self, inputs: &[Option<InferInput<'_>>], n_outputs: usize) -> Result<Vec<ValueType>> {
        let mut v = vec![same_as(inputs, 0)];
        if n_outputs > 1 {
            v.push(out(Some(DType::Bool), shape(inputs, 0).cloned()));
        }
        Ok(v)
    }
}
