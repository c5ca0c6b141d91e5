//! RoiAlign: bilinear pooling of regions of interest.

use xnpu_core::{Error, Result, Tensor, Value};
use xnpu_ops::image::{RoiAlign, RoiPool};

use super::f64_tensor;
use crate::args::tensor;

/// One bilinear sample: four element offsets in an `H x W` plane and their weights.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Sample {
    pos: [usize; 4],
    w: [f64; 4],
}

/// The bilinear sample at `(y, x)` of an `h x w` plane (all-zero weights outside).
fn bilinear(y: f64, x: f64, h: usize, w: usize) -> Sample {
    if y < -1.0 || y > h as f64 || x < -1.0 || x > w as f64 || h == 0 || w == 0 {
        return Sample::default();
    }
    let (mut y, mut x) = (y.max(0.0), x.max(0.0));
    let (mut y_lo, mut x_lo) = (y as usize, x as usize);
    let y_hi = if y_lo >= h - 1 {
        y_lo = h - 1;
        y = y_lo as f64;
        y_lo
    } else {
        y_lo + 1
    };
    let x_hi = if x_lo >= w - 1 {
        x_lo = w - 1;
        x = x_lo as f64;
        x_lo
    } else {
        x_lo + 1
    };
    let (ly, lx) = (y - y_lo as f64, x - x_lo as f64);
    let (hy, hx) = (1.0 - ly, 1.0 - lx);
    Sample {
        pos: [
            y_lo * w + x_lo,
            y_lo * w + x_hi,
            y_hi * w + x_lo,
            y_hi * w + x_hi,
        ],
        w: [hy * hx, hy * lx, ly * hx, ly * lx],
    }
}

pub fn run(op: &RoiAlign, inputs: &[Option<&Value>]) -> Result<Tensor> {
    let x = tensor(inputs, 0)?;
    let rois = tensor(inputs, 1)?;
    let batch_indices = tensor(inputs, 2)?.to_i64_vec()?;
    check_inputs(x, rois, &batch_indices)?;
    let xs = x.shape();
    let (n_batch, channels, h, w) = (xs[0], xs[1], xs[2], xs[3]);
    let (ph, pw) = (op.output_height, op.output_width);
    let n_rois = rois.shape()[0];
    let out_shape = vec![n_rois, channels, ph, pw];
    let total = xnpu_core::shape::checked_numel(&out_shape)?;
    let data = x.to_f64_vec()?;
    let rv = rois.to_f64_vec()?;
    let mut out = xnpu_linalg::buf::reserved(total, "RoiAlign's output")?;
    for r in 0..n_rois {
        let bi = batch_indices[r];
        if bi < 0 || bi as usize >= n_batch {
            return Err(Error::compute(format!(
                "batch index {bi} of roi {r} is out of range for batch size {n_batch}"
            )));
        }
        let (samples, per_bin) = roi_samples(op, r, &rv[r * 4..r * 4 + 4], h, w)?;
        for c in 0..channels {
            if per_bin == 0 {
                out.extend(std::iter::repeat_n(0.0, ph * pw));
                continue;
            }
            let base = (bi as usize * channels + c) * h * w;
            let plane = &data[base..base + h * w];
            for bin in samples.chunks(per_bin).take(ph * pw) {
                out.push(pool_bin(op.mode, bin, plane));
            }
        }
    }
    f64_tensor(x.dtype(), out_shape, out)
}

/// Checks the dtypes and that X is `[N, C, H, W]`, rois `[R, 4]` and batch_indices `[R]`.
fn check_inputs(x: &Tensor, rois: &Tensor, batch_indices: &[i64]) -> Result<()> {
    if !x.dtype().is_float() || rois.dtype() != x.dtype() {
        return Err(Error::compute(format!(
            "X and rois must be float tensors of the same dtype, got {} and {}",
            x.dtype(),
            rois.dtype()
        )));
    }
    let (xs, rs) = (x.shape(), rois.shape());
    if xs.len() != 4 || rs.len() != 2 || rs[1] != 4 || batch_indices.len() != rs[0] {
        return Err(Error::compute(format!(
            "X must be [N, C, H, W], rois [R, 4] and batch_indices [R]; got X {xs:?}, rois {rs:?}, {} batch indices",
            batch_indices.len()
        )));
    }
    Ok(())
}

/// The bilinear samples of roi `r` (`roi` its x0, y0, x1, y1) in an `h x w` plane, bin by
/// bin, and how many each bin has.
fn roi_samples(
    op: &RoiAlign,
    r: usize,
    roi: &[f64],
    h: usize,
    w: usize,
) -> Result<(Vec<Sample>, usize)> {
    let (ph, pw) = (op.output_height, op.output_width);
    let scale = op.spatial_scale as f64;
    let offset = if op.half_pixel { 0.5 } else { 0.0 };
    let (x0, y0) = (roi[0] * scale - offset, roi[1] * scale - offset);
    let (x1, y1) = (roi[2] * scale - offset, roi[3] * scale - offset);
    let (mut rw, mut rh) = (x1 - x0, y1 - y0);
    if !op.half_pixel {
        rw = rw.max(1.0);
        rh = rh.max(1.0);
    }
    let (bin_h, bin_w) = (rh / ph as f64, rw / pw as f64);
    let (gh, gw) = (
        samples_per_side(op, r, bin_h)?,
        samples_per_side(op, r, bin_w)?,
    );
    let n_samples = [ph, pw, gh, gw]
        .iter()
        .try_fold(1usize, |a, &b| a.checked_mul(b))
        .filter(|&n| n <= 1 << 26)
        .ok_or_else(|| {
            Error::compute(format!(
                "roi {r} needs {gh}x{gw} samples in each of {ph}x{pw} bins, too many"
            ))
        })?;
    let mut samples = xnpu_linalg::buf::reserved(n_samples, "RoiAlign's samples")?;
    for py in 0..ph {
        for px in 0..pw {
            for iy in 0..gh {
                let yy = y0 + py as f64 * bin_h + (iy as f64 + 0.5) * bin_h / gh as f64;
                for ix in 0..gw {
                    let xx = x0 + px as f64 * bin_w + (ix as f64 + 0.5) * bin_w / gw as f64;
                    samples.push(bilinear(yy, xx, h, w));
                }
            }
        }
    }
    Ok((samples, gh * gw))
}

/// Samples along one side of a bin of roi `r` that is `bin` long: sampling_ratio, or
/// adaptive (`ceil(bin)`) when it is 0.
fn samples_per_side(op: &RoiAlign, r: usize, bin: f64) -> Result<usize> {
    if op.sampling_ratio > 0 {
        return Ok(op.sampling_ratio);
    }
    let g = bin.ceil();
    if !(0.0..=1e6).contains(&g) {
        return Err(Error::compute(format!(
            "roi {r} needs {g} samples per bin side, which is not supported"
        )));
    }
    Ok(g as usize)
}

/// One output value: the average or maximum of a bin's (non-empty) samples of `plane`.
fn pool_bin(mode: RoiPool, bin: &[Sample], plane: &[f64]) -> f64 {
    let count = bin.len() as f64;
    let terms = bin.iter().map(|s| {
        let t: [f64; 4] = std::array::from_fn(|k| s.w[k] * plane[s.pos[k]]);
        t
    });
    match mode {
        RoiPool::Avg => terms.map(|t| t.iter().sum::<f64>()).sum::<f64>() / count,
        RoiPool::Max => terms
            .map(|t| t.iter().copied().fold(f64::NEG_INFINITY, f64::max))
            .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))))
            .unwrap_or(0.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(mode: RoiPool) -> RoiAlign {
        RoiAlign {
            mode,
            output_height: 1,
            output_width: 1,
            sampling_ratio: 2,
            spatial_scale: 1.0,
            half_pixel: false,
        }
    }

    #[test]
    fn avg_of_a_constant_image_is_the_constant() {
        let x = Tensor::from_vec(vec![1, 1, 3, 3], vec![2.0f32; 9]).unwrap();
        let rois = Tensor::from_vec(vec![1, 4], vec![0.0f32, 0.0, 2.0, 2.0]).unwrap();
        let bi = Tensor::from_vec(vec![1], vec![0i64]).unwrap();
        let v = [x, rois, bi].map(Value::Tensor);
        let out = run(&op(RoiPool::Avg), &[Some(&v[0]), Some(&v[1]), Some(&v[2])]).unwrap();
        assert_eq!(out.to_vec::<f32>().unwrap(), vec![2.0]);
    }

    #[test]
    fn batch_index_out_of_range_is_an_error() {
        let x = Tensor::from_vec(vec![1, 1, 3, 3], vec![2.0f32; 9]).unwrap();
        let rois = Tensor::from_vec(vec![1, 4], vec![0.0f32, 0.0, 2.0, 2.0]).unwrap();
        let bi = Tensor::from_vec(vec![1], vec![1i64]).unwrap();
        let v = [x, rois, bi].map(Value::Tensor);
        let err = run(&op(RoiPool::Max), &[Some(&v[0]), Some(&v[1]), Some(&v[2])]).unwrap_err();
        assert!(err.to_string().contains("out of range"));
    }
}
