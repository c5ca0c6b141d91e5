use xnpu_core::{Dim, Error, Result, Shape, ValueType};

use crate::infer::{input, tensor_type};
use crate::{InferInput, OpDef};

/// How GridSample interpolates between input elements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GridMode {
    /// The element at the coordinate rounded half to even.
    Nearest,
    /// Linear interpolation of the 2^r neighbours (bilinear for images).
    Linear,
    /// Cubic convolution (Keys, a = -0.75) of the 4^r neighbours (bicubic for images).
    Cubic,
}

/// What GridSample reads for a coordinate outside the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GridPadding {
    /// Zero.
    Zeros,
    /// The nearest edge element (coordinates are clamped into the input).
    Border,
    /// The element at the coordinate reflected at the borders of the input.
    Reflection,
}

/// GridSample (ONNX opsets 16, 20, 22): samples `X` (`[N, C, D1, ..., Dr]`) at the points of
/// `grid` (`[N, O1, ..., Or, r]`), giving `[N, C, O1, ..., Or]`.
///
/// A grid point holds normalized coordinates in `[-1, 1]`, innermost input axis first (x, then
/// y, ...). With `align_corners`, -1 and 1 are the centres of the first and last elements of
/// an axis of length `d`: `x = (g + 1) / 2 * (d - 1)`; without, they are the outer edges of
/// those elements: `x = ((g + 1) * d - 1) / 2`. Coordinates outside the borders (the edges,
/// or the centres with `align_corners`) are first clamped (`Border`) or reflected
/// (`Reflection`); neighbours outside the input then read per `padding`.
#[derive(Clone, Debug, PartialEq)]
pub struct GridSample {
    pub mode: GridMode,
    pub padding: GridPadding,
    pub align_corners: bool,
}

impl OpDef for GridSample {
    const NAMES: &'static [&'static str] = &["GridSample"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        let x = input(inputs, 0).ok_or_else(|| Error::model("input X is required"))?;
        let grid = input(inputs, 1).ok_or_else(|| Error::model("input grid is required"))?;
        if let (Some(xs), Some(gs)) = (x.shape(), grid.shape()) {
            if xs.rank() < 3 || gs.rank() != xs.rank() {
                return Err(Error::model(format!(
                    "X must have rank >= 3 and grid the same rank; got X rank {} and grid rank {}",
                    xs.rank(),
                    gs.rank()
                )));
            }
            if let Some(k) = gs.0[gs.rank() - 1].known() {
                if k != xs.rank() - 2 {
                    return Err(Error::model(format!(
                        "the last dim of grid must be {} (the spatial rank of X), got {k}",
                        xs.rank() - 2
                    )));
                }
            }
            let mut dims: Vec<Dim> = xs.0[..2].to_vec();
            dims.extend_from_slice(&gs.0[1..gs.rank() - 1]);
            return Ok(vec![tensor_type(x.dtype(), Some(Shape(dims)))]);
        }
        Ok(vec![tensor_type(x.dtype(), None)])
    }
}
