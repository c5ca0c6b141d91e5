use xnpu_core::{Dim, Error, Result, Shape, ValueType};

use crate::infer::{input, tensor_type};
use crate::{InferInput, OpDef};

/// AffineGrid (ONNX opset 20): the sampling grid of GridSample for affine transforms.
///
/// `theta` is `[N, 2, 3]` (2-D) or `[N, 3, 4]` (3-D); `size` is `[N, C, H, W]` or
/// `[N, C, D, H, W]`. The output is `[N, H, W, 2]` or `[N, D, H, W, 3]`: for each output
/// point, `theta[n]` times the homogeneous normalized coordinates `[x, y, (z,) 1]` of that
/// point (x along W). A normalized coordinate of index `i` on an axis of length `d` is
/// `-1 + 2 i / (d - 1)` with `align_corners` and `-1 + (2 i + 1) / d` without (0 when
/// `d == 1`).
#[derive(Clone, Debug, PartialEq)]
pub struct AffineGrid {
    pub align_corners: bool,
}

impl OpDef for AffineGrid {
    const NAMES: &'static [&'static str] = &["AffineGrid"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        let theta = input(inputs, 0).ok_or_else(|| Error::model("input theta is required"))?;
        let size = input(inputs, 1).ok_or_else(|| Error::model("input size is required"))?;
        let shape = size.value.and_then(|s| s.to_i64_vec().ok()).and_then(|s| {
            if !(s.len() == 4 || s.len() == 5) || s.iter().any(|&d| d < 0) {
                return None;
            }
            let mut dims: Vec<Dim> = vec![Dim::Known(s[0] as usize)];
            dims.extend(s[2..].iter().map(|&d| Dim::Known(d as usize)));
            dims.push(Dim::Known(s.len() - 2));
            Some(Shape(dims))
        });
        Ok(vec![tensor_type(theta.dtype(), shape)])
    }
}
