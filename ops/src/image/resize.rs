use xnpu_core::shape::normalize_axis;
use xnpu_core::{DType, Error, Result, ValueType};

use crate::infer::{input, known, tensor_type};
use crate::{InferInput, OpDef};

/// How an output coordinate maps back to an input coordinate along one resized axis
/// (`x_out` is the output index, `scale` the axis's scale, `len_in`/`len_out` the input and
/// output lengths, `len_out_f = scale * len_in` the unrounded output length).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CoordMode {
    /// `(x_out + 0.5) / scale - 0.5`.
    HalfPixel,
    /// Like `HalfPixel`, shifted so that the centre of the input maps to the centre of the
    /// output when `len_out` was rounded: adds `len_in / 2 * (1 - len_out / len_out_f)`.
    HalfPixelSymmetric,
    /// Like `HalfPixel`, but `-0.5` when the output length is 1.
    PytorchHalfPixel,
    /// `x_out * (len_in - 1) / (len_out - 1)` (0 when the output length is 1).
    AlignCorners,
    /// `x_out / scale`.
    Asymmetric,
    /// Samples the region `roi` (start and end, normalized to `[0, 1]`) of the input:
    /// `roi_start * (len_in - 1) + x_out * (roi_end - roi_start) * (len_in - 1) / (len_out - 1)`
    /// (the centre of the region when the output length is 1). Output points whose input
    /// coordinate falls outside `[0, len_in - 1]` get `extrapolation_value`.
    TfCropAndResize,
}

impl CoordMode {
    pub fn parse(s: &str) -> Option<CoordMode> {
        Some(match s {
            "half_pixel" => CoordMode::HalfPixel,
            "half_pixel_symmetric" => CoordMode::HalfPixelSymmetric,
            "pytorch_half_pixel" => CoordMode::PytorchHalfPixel,
            "align_corners" => CoordMode::AlignCorners,
            "asymmetric" => CoordMode::Asymmetric,
            "tf_crop_and_resize" => CoordMode::TfCropAndResize,
            _ => return None,
        })
    }
}

/// How `Nearest` picks the input index from a fractional input coordinate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NearestMode {
    /// Round, halves down.
    RoundPreferFloor,
    /// Round, halves up.
    RoundPreferCeil,
    Floor,
    Ceil,
}

impl NearestMode {
    pub fn parse(s: &str) -> Option<NearestMode> {
        Some(match s {
            "round_prefer_floor" => NearestMode::RoundPreferFloor,
            "round_prefer_ceil" => NearestMode::RoundPreferCeil,
            "floor" => NearestMode::Floor,
            "ceil" => NearestMode::Ceil,
            _ => return None,
        })
    }
}

/// The interpolation along each resized axis.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ResizeMode {
    /// The input element at the rounded coordinate (clamped into the input).
    Nearest(NearestMode),
    /// Linear interpolation of the two neighbours (edge values repeated outside the input).
    Linear,
    /// Cubic convolution (Keys) over four neighbours with coefficient `a`
    /// (edge values repeated outside the input).
    Cubic { a: f32 },
}

/// How output sizes given by `sizes` keep the aspect ratio of the resized axes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AspectPolicy {
    /// Every axis gets exactly its requested size.
    Stretch,
    /// One scale for all resized axes, the smallest `size / len_in`; sizes are
    /// `round_half_up(scale * len_in)`.
    NotLarger,
    /// Like `NotLarger` with the largest `size / len_in`.
    NotSmaller,
}

/// Where the op finds its target scales or sizes.
#[derive(Clone, Debug, PartialEq)]
pub enum ResizeInputs {
    /// Resize-11 and later: `(X, roi?, scales?, sizes?)`; exactly one of a non-empty
    /// `scales` or `sizes` is given.
    RoiScalesSizes,
    /// Resize-10 and Upsample-9: `(X, scales)`.
    Scales,
    /// Upsample-1/7: the scales are an attribute; the only input is `X`.
    Fixed(Vec<f32>),
}

/// Resize (ONNX opsets 10, 11, 13, 18, 19; also Upsample 1, 7, 9): resamples `X` along
/// `axes` (all axes by default) to a new size.
///
/// Per resized axis, the output length is `sizes[i]` (see `keep_aspect_ratio_policy`) or
/// `floor(len_in * scales[i])`; the scale used to map coordinates is `scales[i]` or
/// `len_out / len_in`. Every output coordinate is mapped back to a (fractional) input
/// coordinate with `coord`, and the value is interpolated from the input neighbours with
/// `mode`. The resize is separable: it is applied one axis at a time, in `f64`.
///
/// With `antialias` (linear and cubic only) a downscaling axis (`scale < 1`) uses a filter
/// stretched by `1 / scale` (and normalized), so that every input element contributes.
/// With `exclude_outside`, weights of neighbours outside the input are set to 0 and the rest
/// renormalized. Integer outputs are rounded half to even and saturated.
#[derive(Clone, Debug, PartialEq)]
pub struct Resize {
    pub mode: ResizeMode,
    pub coord: CoordMode,
    pub antialias: bool,
    pub exclude_outside: bool,
    pub extrapolation_value: f32,
    /// The resized axes, as given (may be negative); `None` means all axes.
    pub axes: Option<Vec<i64>>,
    pub keep_aspect_ratio: AspectPolicy,
    pub inputs: ResizeInputs,
}

impl Resize {
    /// The dtypes `X` may have.
    pub fn supports(dtype: DType) -> bool {
        dtype.is_numeric()
    }

    /// The axes resized, normalized against `rank`, in the order given (all axes when none
    /// were given). Errors when an axis is out of range or repeated.
    pub fn resolved_axes(&self, rank: usize) -> Result<Vec<usize>> {
        match &self.axes {
            None => Ok((0..rank).collect()),
            Some(axes) => {
                let mut out = Vec::with_capacity(axes.len());
                for &a in axes {
                    let a = normalize_axis(a, rank)?;
                    if out.contains(&a) {
                        return Err(Error::model(format!("axis {a} is repeated in axes")));
                    }
                    out.push(a);
                }
                Ok(out)
            }
        }
    }

    /// Output lengths and per-axis scales (for all axes of `in_shape`) from the scales or
    /// sizes given for the resized axes (`scales` and `sizes` have one entry per resized
    /// axis; exactly one of them is `Some`).
    pub fn output_shape(
        &self,
        in_shape: &[usize],
        scales: Option<&[f32]>,
        sizes: Option<&[i64]>,
    ) -> Result<(Vec<usize>, Vec<f64>)> {
        let axes = self.resolved_axes(in_shape.len())?;
        let mut out = in_shape.to_vec();
        let mut scale = vec![1.0f64; in_shape.len()];
        match (scales, sizes) {
            (Some(s), None) => lengths_from_scales(&axes, in_shape, s, &mut out, &mut scale)?,
            (None, Some(s)) => self.lengths_from_sizes(&axes, in_shape, s, &mut out, &mut scale)?,
            _ => {
                return Err(Error::compute(
                    "exactly one of scales and sizes must be given",
                ))
            }
        }
        for &a in &axes {
            if out[a] > 0 && scale[a] <= 0.0 {
                return Err(Error::compute(format!("axis {a} has scale 0")));
            }
        }
        xnpu_core::shape::checked_numel(&out)?;
        Ok((out, scale))
    }

    /// Sets the lengths and scales of the resized `axes` from the sizes `s` (one per axis),
    /// keeping the aspect ratio as `keep_aspect_ratio` says.
    fn lengths_from_sizes(
        &self,
        axes: &[usize],
        in_shape: &[usize],
        s: &[i64],
        out: &mut [usize],
        scale: &mut [f64],
    ) -> Result<()> {
        if s.len() != axes.len() {
            return Err(Error::compute(format!(
                "sizes has {} values, expected one per resized axis ({})",
                s.len(),
                axes.len()
            )));
        }
        for (&a, &v) in axes.iter().zip(s) {
            if v < 0 {
                return Err(Error::compute(format!("size {v} for axis {a} is negative")));
            }
            if in_shape[a] == 0 && v != 0 {
                return Err(Error::compute(format!(
                    "cannot resize axis {a} of length 0 to {v}"
                )));
            }
        }
        let ratio = |a: usize, v: i64| {
            if in_shape[a] == 0 {
                1.0
            } else {
                v as f64 / in_shape[a] as f64
            }
        };
        match self.keep_aspect_ratio {
            AspectPolicy::Stretch => {
                for (&a, &v) in axes.iter().zip(s) {
                    out[a] = v as usize;
                    scale[a] = ratio(a, v);
                }
            }
            policy => {
                let ratios = axes.iter().zip(s).map(|(&a, &v)| ratio(a, v));
                let one = if policy == AspectPolicy::NotLarger {
                    ratios.fold(f64::INFINITY, f64::min)
                } else {
                    ratios.fold(0.0, f64::max)
                };
                for &a in axes {
                    let len = (one * in_shape[a] as f64 + 0.5).floor();
                    if len > (isize::MAX as f64) {
                        return Err(Error::compute(format!(
                            "axis {a} would be too long ({len})"
                        )));
                    }
                    out[a] = len as usize;
                    scale[a] = one;
                }
            }
        }
        Ok(())
    }
}

impl OpDef for Resize {
    const NAMES: &'static [&'static str] = &["Resize"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        let x = input(inputs, 0).ok_or_else(|| Error::model("input X is required"))?;
        let dtype = x.dtype();
        if let Some(d) = dtype {
            if !Resize::supports(d) {
                return Err(Error::model(format!("Resize does not support {d} input")));
            }
        }
        let in_shape = x.shape().and_then(|s| s.as_known());
        let shape = in_shape.and_then(|in_shape| {
            let const_of = |i: usize| input(inputs, i).and_then(|v| v.value);
            match &self.inputs {
                ResizeInputs::Fixed(s) => self.output_shape(&in_shape, Some(s), None).ok(),
                ResizeInputs::Scales => {
                    let s = const_of(1)?.to_vec::<f32>().ok()?;
                    self.output_shape(&in_shape, Some(&s), None).ok()
                }
                ResizeInputs::RoiScalesSizes => {
                    // A non-empty `scales` wins; an absent or empty one means `sizes`.
                    let scales = match input(inputs, 2) {
                        None => None,
                        Some(v) => {
                            let t = v.value?;
                            if t.is_empty() {
                                None
                            } else {
                                Some(t.to_vec::<f32>().ok()?)
                            }
                        }
                    };
                    match scales {
                        Some(s) => self.output_shape(&in_shape, Some(&s), None).ok(),
                        None => {
                            let s = const_of(3)?.to_i64_vec().ok()?;
                            self.output_shape(&in_shape, None, Some(&s)).ok()
                        }
                    }
                }
            }
        });
        Ok(vec![tensor_type(dtype, shape.map(|(s, _)| known(&s)))])
    }
}

/// Sets the lengths and scales of the resized `axes` from the scales `s` (one per axis,
/// each positive and finite): `floor(scale * length)`.
fn lengths_from_scales(
    axes: &[usize],
    in_shape: &[usize],
    s: &[f32],
    out: &mut [usize],
    scale: &mut [f64],
) -> Result<()> {
    if s.len() != axes.len() {
        return Err(Error::compute(format!(
            "scales has {} values, expected one per resized axis ({})",
            s.len(),
            axes.len()
        )));
    }
    for (&a, &v) in axes.iter().zip(s) {
        let v = v as f64;
        if !(v > 0.0 && v.is_finite()) {
            return Err(Error::compute(format!(
                "scale {v} for axis {a} must be positive and finite"
            )));
        }
        let len = (v * in_shape[a] as f64).floor();
        if len > (isize::MAX as f64) {
            return Err(Error::compute(format!(
                "scale {v} makes axis {a} too long ({len})"
            )));
        }
        out[a] = len as usize;
        scale[a] = v;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(policy: AspectPolicy, axes: Option<Vec<i64>>) -> Resize {
        Resize {
            mode: ResizeMode::Linear,
            coord: CoordMode::HalfPixel,
            antialias: false,
            exclude_outside: false,
            extrapolation_value: 0.0,
            axes,
            keep_aspect_ratio: policy,
            inputs: ResizeInputs::RoiScalesSizes,
        }
    }

    #[test]
    fn scales_floor_the_output_length() {
        let (out, scale) = op(AspectPolicy::Stretch, None)
            .output_shape(&[1, 1, 4, 4], Some(&[1.0, 1.0, 0.6, 0.6]), None)
            .unwrap();
        assert_eq!(out, vec![1, 1, 2, 2]);
        assert!((scale[2] - 0.6f32 as f64).abs() < 1e-12);
    }

    #[test]
    fn not_larger_keeps_the_aspect_ratio() {
        let (out, _) = op(AspectPolicy::NotLarger, Some(vec![2, 3]))
            .output_shape(&[1, 1, 2, 2], None, Some(&[7, 8]))
            .unwrap();
        assert_eq!(out, vec![1, 1, 7, 7]);
    }

    #[test]
    fn wrong_number_of_scales_is_an_error() {
        let err = op(AspectPolicy::Stretch, None)
            .output_shape(&[1, 4], Some(&[2.0]), None)
            .unwrap_err();
        assert!(err.to_string().contains("one per resized axis"));
    }
}
