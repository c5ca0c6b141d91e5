use xnpu_core::shape::normalize_axes;
use xnpu_core::{Dim, Error, Result, Shape, ValueType};

use super::util::{const_ints, dtype, out, shape, unknown, unknown_dims};
use crate::infer::input;
use crate::{InferInput, OpDef};

/// How Pad fills the new border.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PadMode {
    /// With the constant value.
    #[default]
    Constant,
    /// Mirrored without repeating the edge (`abc` → `cb|abc|ba`).
    Reflect,
    /// Repeating the edge element.
    Edge,
    /// Wrapping around (`abc` → `bc|abc|ab`).
    Wrap,
}

/// Pad (ONNX opsets 1, 2, 11, 13, 18, 19, 21, 23, 24, 25): adds `pads[i]` elements before
/// and `pads[n + i]` after each padded axis `i` (negative pads remove elements). Pads come
/// from the `pads`/`paddings` attribute (opsets < 11, kept in `pads`, with `value` the
/// constant) or from i64 input 1, with the constant as optional input 2 (a scalar of the
/// data's dtype, default 0) and the padded axes as optional input 3 (default all).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Pad {
    pub mode: PadMode,
    pub pads: Option<Vec<i64>>,
    pub value: f32,
}

impl Pad {
    /// `(before, after)` per axis of an input of rank `rank`.
    pub fn per_axis(pads: &[i64], axes_: Option<&[i64]>, rank: usize) -> Result<Vec<(i64, i64)>> {
        let all: Vec<i64> = (0..rank as i64).collect();
        let ax = axes_.unwrap_or(&all);
        let ax = normalize_axes(ax, rank)?;
        if pads.len() != 2 * ax.len() {
            return Err(Error::compute(format!(
                "Pad: pads {pads:?} must have 2 × {} entries (one before and one after each padded axis)",
                ax.len()
            )));
        }
        let mut out = vec![(0, 0); rank];
        for (i, &a) in ax.iter().enumerate() {
            out[a] = (pads[i], pads[i + ax.len()]);
        }
        Ok(out)
    }

    /// The padded length of a dim, or an error when it would be negative.
    pub fn padded(dim: usize, (before, after): (i64, i64)) -> Result<usize> {
        let n = (dim as i128) + i128::from(before) + i128::from(after);
        usize::try_from(n).map_err(|_| {
            Error::compute(format!(
                "Pad: pads ({before}, {after}) on a dim of {dim} give the length {n}"
            ))
        })
    }
}

impl OpDef for Pad {
    const NAMES: &'static [&'static str] = &["Pad"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        let dt = dtype(inputs, 0);
        let Some(s) = shape(inputs, 0) else {
            return Ok(vec![out(dt, None)]);
        };
        let pads = self.pads.clone().or_else(|| const_ints(inputs, 1));
        let ax = const_ints(inputs, 3);
        let axes_unknown = self.pads.is_none() && input(inputs, 3).is_some() && ax.is_none();
        let dims = match pads {
            Some(p) if !axes_unknown => {
                let per = Self::per_axis(&p, ax.as_deref(), s.rank())?;
                Shape(
                    s.0.iter()
                        .zip(per)
                        .map(|(d, pa)| match (d, pa) {
                            (d, (0, 0)) => Ok(d.clone()),
                            (Dim::Known(n), pa) => Ok(Dim::Known(Self::padded(*n, pa)?)),
                            (Dim::Sym(n), (b, a)) => {
                                Ok(unknown(format!("({n}{:+})", i128::from(b) + i128::from(a))))
                            }
                        })
                        .collect::<Result<Vec<_>>>()?,
                )
            }
            _ => unknown_dims("Pad", s.rank())?,
        };
        Ok(vec![out(dt, Some(dims))])
    }
}

/// CenterCropPad (ONNX opset 18): for each listed axis (default all), crops or zero-pads
/// input 0 symmetrically to the length in input 1 (i64); when the difference is odd, the
/// extra element is cropped from / padded at the end.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CenterCropPad {
    pub axes: Option<Vec<i64>>,
}

impl CenterCropPad {
    /// The target length of every axis of an input of dims `dims`.
    pub fn target(&self, dims: &[usize], shape_: &[i64]) -> Result<Vec<usize>> {
        let all: Vec<i64> = (0..dims.len() as i64).collect();
        let ax = normalize_axes(self.axes.as_deref().unwrap_or(&all), dims.len())?;
        if shape_.len() != ax.len() {
            return Err(Error::compute(format!(
                "CenterCropPad: shape {shape_:?} must have one length per axis ({} axes)",
                ax.len()
            )));
        }
        let mut out = dims.to_vec();
        for (&a, &s) in ax.iter().zip(shape_) {
            out[a] = usize::try_from(s)
                .map_err(|_| Error::compute(format!("CenterCropPad: length {s} is negative")))?;
        }
        Ok(out)
    }
}

impl OpDef for CenterCropPad {
    const NAMES: &'static [&'static str] = &["CenterCropPad"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        let dt = dtype(inputs, 0);
        let dims = match (shape(inputs, 0), const_ints(inputs, 1)) {
            (Some(s), Some(t)) => match s.as_known() {
                Some(k) => Some(Shape::known(&self.target(&k, &t)?)),
                None => Some(unknown_dims("CenterCropPad", s.rank())?),
            },
            (Some(s), None) => Some(unknown_dims("CenterCropPad", s.rank())?),
            _ => None,
        };
        Ok(vec![out(dt, dims)])
    }
}
