use xnpu_core::{Dim, Error, Result, Shape, ValueType};

use crate::infer::{input, tensor_type};
use crate::{InferInput, OpDef};

/// How RoiAlign pools the samples of one output bin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoiPool {
    Avg,
    /// The maximum over the samples, where a sample is the largest of its four weighted
    /// bilinear terms (as ONNX Runtime computes it).
    Max,
}

/// RoiAlign (ONNX opsets 10, 16, 22): pools `X` (`[N, C, H, W]`) over each region of
/// `rois` (`[R, 4]`, `[x1, y1, x2, y2]` in input coordinates times `spatial_scale`) of the
/// image `batch_indices[r]`, giving `[R, C, output_height, output_width]`.
///
/// Each region is split into `output_height x output_width` bins; each bin is sampled at a
/// regular `sampling_ratio x sampling_ratio` grid (`ceil(bin size)` per side when
/// `sampling_ratio` is 0) by bilinear interpolation, and the samples are averaged or
/// maximized. With `half_pixel` the region is shifted by -0.5 (pixel centres); without it
/// (`output_half_pixel`, and opset 10) regions are at least 1x1. Samples more than one
/// element outside the input count as 0.
#[derive(Clone, Debug, PartialEq)]
pub struct RoiAlign {
    pub mode: RoiPool,
    pub output_height: usize,
    pub output_width: usize,
    pub sampling_ratio: usize,
    pub spatial_scale: f32,
    pub half_pixel: bool,
}

impl OpDef for RoiAlign {
    const NAMES: &'static [&'static str] = &["RoiAlign"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        let x = input(inputs, 0).ok_or_else(|| Error::model("input X is required"))?;
        let rois = input(inputs, 1).ok_or_else(|| Error::model("input rois is required"))?;
        if let Some(r) = x.rank() {
            if r != 4 {
                return Err(Error::model(format!("X must have rank 4, got {r}")));
            }
        }
        let shape = match (x.shape(), rois.shape()) {
            (Some(xs), Some(rs)) if rs.rank() == 2 => Some(Shape(vec![
                rs.0[0].clone(),
                xs.0[1].clone(),
                Dim::Known(self.output_height),
                Dim::Known(self.output_width),
            ])),
            _ => None,
        };
        Ok(vec![tensor_type(x.dtype(), shape)])
    }
}
