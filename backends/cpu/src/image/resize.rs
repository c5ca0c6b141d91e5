//! Resize: separable resampling, one axis at a time, in f64.

use xnpu_core::{Error, Result, Tensor};
use xnpu_ops::image::{CoordMode, NearestMode, Resize, ResizeInputs, ResizeMode};

use super::{f64_tensor, strided_axis};
use crate::args::{opt_tensor, tensor};

/// How one output position along an axis is computed.
#[derive(Clone, Debug, PartialEq)]
enum Sample {
    /// A weighted sum of input positions along the axis.
    Weights(Vec<(usize, f64)>),
    /// A constant (the extrapolation value of `tf_crop_and_resize`).
    Constant(f64),
}

pub fn run(op: &Resize, inputs: &[Option<&xnpu_core::Value>]) -> Result<Tensor> {
    let x = tensor(inputs, 0)?;
    if !Resize::supports(x.dtype()) {
        return Err(Error::compute(format!(
            "Resize does not support {} input",
            x.dtype()
        )));
    }
    let in_shape = x.shape().to_vec();
    let rank = in_shape.len();
    let axes = op.resolved_axes(rank)?;
    let mut roi: Option<Vec<f64>> = None;
    let (out_shape, scales) = match &op.inputs {
        ResizeInputs::Fixed(s) => op.output_shape(&in_shape, Some(s), None)?,
        ResizeInputs::Scales => {
            let s = tensor(inputs, 1)?.to_vec::<f32>()?;
            op.output_shape(&in_shape, Some(&s), None)?
        }
        ResizeInputs::RoiScalesSizes => {
            if let Some(r) = opt_tensor(inputs, 1)?.filter(|t| !t.is_empty()) {
                roi = Some(r.to_f64_vec()?);
            }
            let scales = opt_tensor(inputs, 2)?.filter(|t| !t.is_empty());
            let sizes = opt_tensor(inputs, 3)?.filter(|t| !t.is_empty());
            match (scales, sizes) {
                (Some(s), None) => op.output_shape(&in_shape, Some(&s.to_vec::<f32>()?), None)?,
                (None, Some(s)) => op.output_shape(&in_shape, None, Some(&s.to_i64_vec()?))?,
                (Some(_), Some(_)) => {
                    return Err(Error::compute(
                        "only one of scales and sizes may be given, got both",
                    ))
                }
                (None, None) => {
                    return Err(Error::compute(
                        "one of scales and sizes must be given, got neither",
                    ))
                }
            }
        }
    };
    // The region of interest per axis (start, end), for tf_crop_and_resize.
    let mut regions = vec![(0.0f64, 1.0f64); rank];
    if op.coord == CoordMode::TfCropAndResize {
        let r = roi.ok_or_else(|| {
            Error::compute("coordinate_transformation_mode tf_crop_and_resize needs roi")
        })?;
        if r.len() != 2 * axes.len() {
            return Err(Error::compute(format!(
                "roi has {} values, expected {} (start and end per resized axis)",
                r.len(),
                2 * axes.len()
            )));
        }
        for (i, &a) in axes.iter().enumerate() {
            regions[a] = (r[i], r[axes.len() + i]);
        }
    }

    let mut data = x.to_f64_vec()?;
    let mut shape = in_shape.clone();
    for &a in &axes {
        let (len_in, len_out) = (shape[a], out_shape[a]);
        let identity = scales[a] == 1.0
            && len_in == len_out
            && (op.coord != CoordMode::TfCropAndResize || regions[a] == (0.0, 1.0));
        if identity {
            continue;
        }
        let samples = (0..len_out)
            .map(|i| sample(op, i, len_in, len_out, scales[a], regions[a]))
            .collect::<Vec<_>>();
        data = resample_axis(&data, &shape, a, &samples);
        shape[a] = len_out;
    }
    f64_tensor(x.dtype(), shape, data)
}

/// Applies `samples` (one per output position) along `axis` of `data` (of `shape`).
fn resample_axis(data: &[f64], shape: &[usize], axis: usize, samples: &[Sample]) -> Vec<f64> {
    let (outer, len_in, inner) = strided_axis(shape, axis);
    let len_out = samples.len();
    let mut out = vec![0.0; outer * len_out * inner];
    for o in 0..outer {
        for (j, s) in samples.iter().enumerate() {
            let dst = &mut out[(o * len_out + j) * inner..(o * len_out + j + 1) * inner];
            match s {
                Sample::Constant(c) => dst.fill(*c),
                Sample::Weights(w) => {
                    for &(idx, wt) in w {
                        let src = &data[(o * len_in + idx) * inner..(o * len_in + idx + 1) * inner];
                        for (d, &v) in dst.iter_mut().zip(src) {
                            *d += wt * v;
                        }
                    }
                }
            }
        }
    }
    out
}

/// The input coordinate of output index `x` along an axis.
fn source_coord(
    coord: CoordMode,
    x: f64,
    len_in: usize,
    len_out: usize,
    scale: f64,
    (r0, r1): (f64, f64),
) -> f64 {
    let len_in_f = len_in as f64;
    let len_out_f = scale * len_in_f;
    match coord {
        CoordMode::HalfPixel => (x + 0.5) / scale - 0.5,
        CoordMode::HalfPixelSymmetric => {
            let adjustment = len_out as f64 / len_out_f;
            let offset = len_in_f / 2.0 * (1.0 - adjustment);
            offset + (x + 0.5) / scale - 0.5
        }
        CoordMode::PytorchHalfPixel => {
            if len_out_f == 1.0 {
                -0.5
            } else {
                (x + 0.5) / scale - 0.5
            }
        }
        CoordMode::AlignCorners => {
            if len_out_f == 1.0 {
                0.0
            } else {
                x * (len_in_f - 1.0) / (len_out_f - 1.0)
            }
        }
        CoordMode::Asymmetric => x / scale,
        CoordMode::TfCropAndResize => {
            let c = if len_out_f == 1.0 {
                (r1 - r0) * (len_in_f - 1.0) / 2.0
            } else {
                x * (r1 - r0) * (len_in_f - 1.0) / (len_out_f - 1.0)
            };
            c + r0 * (len_in_f - 1.0)
        }
    }
}

/// Keys' cubic convolution kernel with coefficient `a`.
fn cubic_kernel(x: f64, a: f64) -> f64 {
    let x = x.abs();
    if x <= 1.0 {
        ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a
    } else {
        0.0
    }
}

/// The filter weights for a point at fraction `ratio` in `(0, 1]` past input position
/// `base`; weight `k` applies to position `base + 1 - n/2 + k`.
fn weights(op: &Resize, ratio: f64, scale: f64) -> Vec<f64> {
    let normalize = |w: Vec<f64>| {
        let sum: f64 = w.iter().sum();
        if sum == 0.0 {
            w
        } else {
            w.into_iter().map(|v| v / sum).collect()
        }
    };
    match op.mode {
        ResizeMode::Nearest(mode) => {
            let take_ceil = ratio == 1.0
                || match mode {
                    NearestMode::RoundPreferFloor => ratio > 0.5,
                    NearestMode::RoundPreferCeil => ratio >= 0.5,
                    NearestMode::Floor => false,
                    NearestMode::Ceil => true,
                };
            if take_ceil {
                vec![0.0, 1.0]
            } else {
                vec![1.0, 0.0]
            }
        }
        ResizeMode::Linear if op.antialias => {
            let s = scale.min(1.0);
            let start = (-1.0 / s).floor() as i64 + 1;
            let n = 2 - 2 * start;
            normalize(
                (start..start + n)
                    .map(|i| (1.0 - ((i as f64 - ratio) * s).abs()).clamp(0.0, 1.0))
                    .collect(),
            )
        }
        ResizeMode::Linear => vec![1.0 - ratio, ratio],
        ResizeMode::Cubic { a } if op.antialias => {
            let s = scale.min(1.0);
            let start = (-2.0 / s).floor() as i64 + 1;
            let end = 2 - start;
            normalize(
                (start..end)
                    .map(|i| cubic_kernel(s * (i as f64 - ratio), a as f64))
                    .collect(),
            )
        }
        ResizeMode::Cubic { a } => {
            let a = a as f64;
            vec![
                cubic_kernel(ratio + 1.0, a),
                cubic_kernel(ratio, a),
                cubic_kernel(1.0 - ratio, a),
                cubic_kernel(2.0 - ratio, a),
            ]
        }
    }
}

/// How output index `x` along an axis is computed.
fn sample(
    op: &Resize,
    x: usize,
    len_in: usize,
    len_out: usize,
    scale: f64,
    region: (f64, f64),
) -> Sample {
    let c = source_coord(op.coord, x as f64, len_in, len_out, scale, region);
    if op.coord == CoordMode::TfCropAndResize && (c < 0.0 || c > len_in as f64 - 1.0) {
        return Sample::Constant(op.extrapolation_value as f64);
    }
    if len_in == 0 || !c.is_finite() {
        return Sample::Constant(0.0);
    }
    // Prefer the neighbour on the left: an integer coordinate is ratio 1 past `c - 1`.
    let fl = c.floor();
    let (base, ratio) = if c == fl {
        (fl - 1.0, 1.0)
    } else {
        (fl, c - fl)
    };
    let mut w = weights(op, ratio, scale);
    let n = w.len() as i64;
    let first = base as i64 + 1 - n / 2;
    let positions: Vec<i64> = (first..first + n).collect();
    if op.exclude_outside {
        for (wt, &p) in w.iter_mut().zip(&positions) {
            if p < 0 || p >= len_in as i64 {
                *wt = 0.0;
            }
        }
        let sum: f64 = w.iter().sum();
        if sum != 0.0 {
            w.iter_mut().for_each(|v| *v /= sum);
        }
    }
    let last = len_in as i64 - 1;
    Sample::Weights(
        positions
            .into_iter()
            .zip(w)
            .map(|(p, wt)| (p.clamp(0, last) as usize, wt))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use xnpu_ops::image::AspectPolicy;

    fn op(mode: ResizeMode, coord: CoordMode) -> Resize {
        Resize {
            mode,
            coord,
            antialias: false,
            exclude_outside: false,
            extrapolation_value: 0.0,
            axes: None,
            keep_aspect_ratio: AspectPolicy::Stretch,
            inputs: ResizeInputs::Fixed(vec![1.0, 2.0]),
        }
    }

    fn run1(op: &Resize, x: Tensor) -> Vec<f32> {
        let v = xnpu_core::Value::Tensor(x);
        run(op, &[Some(&v)]).unwrap().to_vec::<f32>().unwrap()
    }

    #[test]
    fn nearest_asymmetric_repeats_elements() {
        let x = Tensor::from_vec(vec![1, 2], vec![1.0f32, 2.0]).unwrap();
        let o = op(
            ResizeMode::Nearest(NearestMode::Floor),
            CoordMode::Asymmetric,
        );
        assert_eq!(run1(&o, x), vec![1.0, 1.0, 2.0, 2.0]);
    }

    #[test]
    fn linear_half_pixel_clamps_at_the_edges() {
        let x = Tensor::from_vec(vec![1, 2], vec![1.0f32, 2.0]).unwrap();
        let o = op(ResizeMode::Linear, CoordMode::HalfPixel);
        assert_eq!(run1(&o, x), vec![1.0, 1.25, 1.75, 2.0]);
    }

    #[test]
    fn integer_output_is_rounded() {
        let x = Tensor::from_vec(vec![1, 2], vec![1u8, 2]).unwrap();
        let v = xnpu_core::Value::Tensor(x);
        let o = op(ResizeMode::Linear, CoordMode::HalfPixel);
        let out = run(&o, &[Some(&v)]).unwrap().to_vec::<u8>().unwrap();
        // 1.25 -> 1, 1.75 -> 2
        assert_eq!(out, vec![1, 1, 2, 2]);
    }

    #[test]
    fn tf_crop_and_resize_without_roi_is_an_error() {
        let x = Tensor::from_vec(vec![1, 2], vec![1.0f32, 2.0]).unwrap();
        let v = xnpu_core::Value::Tensor(x);
        let o = op(ResizeMode::Linear, CoordMode::TfCropAndResize);
        assert!(run(&o, &[Some(&v)]).is_err());
    }
}
