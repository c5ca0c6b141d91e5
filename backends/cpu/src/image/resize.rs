//! Resize: separable resampling, one axis at a time, in f64.

use xnpu_core::shape::checked_numel;
use xnpu_core::{Error, Result, Tensor};
use xnpu_linalg::buf;
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
    // Resampling one axis at a time goes through intermediate shapes (some axes resized,
    // others not) that may hold more values than the input or the output: each is checked
    // and allocated fallibly.
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

    if checked_numel(&out_shape)? == 0 {
        // Nothing to compute (and the scales of an empty input's other axes can be absurd).
        return f64_tensor(x.dtype(), out_shape, Vec::new());
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
        let samples = buf::try_collected(
            len_out,
            (0..len_out).map(|i| sample(op, i, len_in, len_out, scales[a], regions[a])),
            "Resize's sampling positions",
        )?;
        data = resample_axis(&data, &shape, a, &samples)?;
        shape[a] = len_out;
    }
    f64_tensor(x.dtype(), shape, data)
}

/// Applies `samples` (one per output position) along `axis` of `data` (of `shape`).
fn resample_axis(
    data: &[f64],
    shape: &[usize],
    axis: usize,
    samples: &[Sample],
) -> Result<Vec<f64>> {
    let (outer, len_in, inner) = strided_axis(shape, axis)?;
    let len_out = samples.len();
    let n = buf::count(&[outer, len_out, inner], "a resized tensor")?;
    let mut out = buf::zeroed::<f64>(n, "a resized tensor")?;
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
    Ok(out)
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
/// `base`; weight `k` applies to position `base + 1 - n/2 + k`. An antialiasing filter spans
/// about `2 / scale` positions: its length is checked and its buffer allocated fallibly.
fn weights(op: &Resize, ratio: f64, scale: f64) -> Result<Vec<f64>> {
    let normalize = |mut w: Vec<f64>| {
        let sum: f64 = w.iter().sum();
        if sum != 0.0 {
            w.iter_mut().for_each(|v| *v /= sum);
        }
        w
    };
    // The weights of taps `start, start + 1, ...` (`n` of them) from `f(tap)`.
    let filter = |start: f64, n: f64, f: &dyn Fn(f64) -> f64| -> Result<Vec<f64>> {
        if !(n.is_finite() && (0.0..=isize::MAX as f64).contains(&n)) {
            return Err(Error::compute(format!(
                "Resize's antialiasing filter for scale {scale} would have {n} taps"
            )));
        }
        let taps = (0..n as usize).map(|k| f(start + k as f64));
        Ok(normalize(buf::collected(taps, "Resize's filter weights")?))
    };
    Ok(match op.mode {
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
            let start = (-1.0 / s).floor() + 1.0;
            filter(start, 2.0 - 2.0 * start, &|i| {
                (1.0 - ((i - ratio) * s).abs()).clamp(0.0, 1.0)
            })?
        }
        ResizeMode::Linear => vec![1.0 - ratio, ratio],
        ResizeMode::Cubic { a } if op.antialias => {
            let s = scale.min(1.0);
            let start = (-2.0 / s).floor() + 1.0;
            filter(start, 2.0 - 2.0 * start, &|i| {
                cubic_kernel(s * (i - ratio), a as f64)
            })?
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
    })
}

/// How output index `x` along an axis is computed.
fn sample(
    op: &Resize,
    x: usize,
    len_in: usize,
    len_out: usize,
    scale: f64,
    region: (f64, f64),
) -> Result<Sample> {
    let c = source_coord(op.coord, x as f64, len_in, len_out, scale, region);
    if op.coord == CoordMode::TfCropAndResize && (c < 0.0 || c > len_in as f64 - 1.0) {
        return Ok(Sample::Constant(op.extrapolation_value as f64));
    }
    if len_in == 0 || !c.is_finite() {
        return Ok(Sample::Constant(0.0));
    }
    // Prefer the neighbour on the left: an integer coordinate is ratio 1 past `c - 1`.
    let fl = c.floor();
    let (base, ratio) = if c == fl {
        (fl - 1.0, 1.0)
    } else {
        (fl, c - fl)
    };
    let mut w = weights(op, ratio, scale)?;
    // Saturating: a coordinate far outside the input clamps to its edge either way.
    let n = w.len() as i64;
    let first = (base as i64).saturating_add(1).saturating_sub(n / 2);
    let position = |k: usize| first.saturating_add(k as i64);
    if op.exclude_outside {
        for (k, wt) in w.iter_mut().enumerate() {
            let p = position(k);
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
    let taps = w
        .into_iter()
        .enumerate()
        .map(|(k, wt)| (position(k).clamp(0, last) as usize, wt));
    Ok(Sample::Weights(buf::collected(
        taps,
        "Resize's filter taps",
    )?))
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

    #[test]
    fn sizes_of_2_62_are_an_error_not_an_abort() {
        let x = Tensor::from_vec(vec![1, 1], vec![1.0f32]).unwrap();
        let sizes = Tensor::from_vec(vec![2], vec![1i64, 1 << 62]).unwrap();
        let (x, sizes) = (xnpu_core::Value::Tensor(x), xnpu_core::Value::Tensor(sizes));
        let o = Resize {
            inputs: ResizeInputs::RoiScalesSizes,
            ..op(ResizeMode::Linear, CoordMode::HalfPixel)
        };
        let err = run(&o, &[Some(&x), None, None, Some(&sizes)]).unwrap_err();
        assert!(
            err.to_string()
                .contains("cannot allocate 4611686018427387904 values"),
            "{err}"
        );
    }

    #[test]
    fn an_empty_input_with_huge_dims_is_resized_without_overflow() {
        // Axis 0 holds 2^62 positions of nothing: antialiasing it down to 1 would need a
        // filter of 2^63 taps, but the output is empty.
        let x = Tensor::from_vec(vec![1 << 62, 0], Vec::<f32>::new()).unwrap();
        let sizes = Tensor::from_vec(vec![2], vec![1i64, 0]).unwrap();
        let (x, sizes) = (xnpu_core::Value::Tensor(x), xnpu_core::Value::Tensor(sizes));
        let o = Resize {
            antialias: true,
            inputs: ResizeInputs::RoiScalesSizes,
            ..op(ResizeMode::Linear, CoordMode::HalfPixel)
        };
        let out = run(&o, &[Some(&x), None, None, Some(&sizes)]).unwrap();
        assert_eq!(out.shape(), &[1, 0]);
    }
}
