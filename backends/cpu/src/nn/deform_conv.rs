//! DeformConv: im2col with samples taken at offset (fractional) positions.

use num_traits::Float;
use xnpu_core::num::{load_floats, store_floats};
use xnpu_core::Num;
use xnpu_core::{Error, Result, Value};
use xnpu_linalg::buf;
use xnpu_ops::nn::DeformConv;

use super::conv::ConvShapes;
use super::num::{matmul_acc, numel, with_real};
use crate::args::{opt_tensor, tensor};

/// The most spatial dims DeformConv interpolates in (2^n corners a sample).
const MAX_SPATIAL: usize = 8;

/// The multilinear interpolation of `plane` (shape `dims`) at `pos`, zeros outside.
fn sample<R: Num + Float>(plane: &[R], dims: &[usize], pos: &[R]) -> R {
    let nd = dims.len();
    let mut acc = R::zero();
    for corner in 0..(1usize << nd) {
        let mut weight = R::one();
        let mut idx = 0usize;
        let mut inside = true;
        for d in 0..nd {
            let f = pos[d].floor();
            let frac = pos[d] - f;
            let up = (corner >> d) & 1 == 1;
            let c = f.to_i64().unwrap_or(i64::MIN) + up as i64;
            if c < 0 || c >= dims[d] as i64 {
                inside = false;
                break;
            }
            weight = weight * if up { frac } else { R::one() - frac };
            idx = idx * dims[d] + c as usize;
        }
        if inside {
            acc = acc + weight * plane[idx];
        }
    }
    acc
}

struct Inputs<'a, R> {
    x: &'a [R],
    w: &'a [R],
    offset: &'a [R],
    mask: Option<&'a [R]>,
    bias: Option<&'a [R]>,
}

fn typed<R: Num + Float>(op: &DeformConv, s: &ConvShapes, t: Inputs<'_, R>) -> Result<Vec<R>> {
    let g = &s.geom;
    let nd = g.rank();
    let sp_in = numel(&s.input)?;
    let sp_out = numel(&g.out)?;
    let kprod = numel(&g.kernel)?;
    let group = op.group;
    let (cg, mg) = (s.c / group, s.m / group);
    let og = op.offset_group;
    let c_per_og = s.c / og;
    let rows = cg * kprod;
    let mut out = buf::filled(numel(&s.out_shape())?, R::zero(), "DeformConv's output")?;
    let mut col = buf::filled(
        buf::count(&[rows, sp_out], "DeformConv's columns")?,
        R::zero(),
        "DeformConv's columns",
    )?;
    let mut pos = vec![R::zero(); nd];
    for n in 0..s.n {
        for gi in 0..group {
            for c in 0..cg {
                let ci = gi * cg + c;
                let ogi = ci / c_per_og;
                let plane = &t.x[(n * s.c + ci) * sp_in..][..sp_in];
                for r in 0..kprod {
                    for o in 0..sp_out {
                        let (mut orem, mut krem) = (o, r);
                        for d in (0..nd).rev() {
                            let od = orem % g.out[d];
                            orem /= g.out[d];
                            let kd = krem % g.kernel[d];
                            krem /= g.kernel[d];
                            let off =
                                t.offset[(((n * og + ogi) * kprod + r) * nd + d) * sp_out + o];
                            let base = (od * g.strides[d]) as f64 - g.pads_begin[d] as f64
                                + (kd * g.dilations[d]) as f64;
                            pos[d] = R::from_f64(base) + off;
                        }
                        let mut v = sample(plane, &s.input, &pos);
                        if let Some(m) = t.mask {
                            v = v * m[((n * og + ogi) * kprod + r) * sp_out + o];
                        }
                        col[(c * kprod + r) * sp_out + o] = v;
                    }
                }
            }
            for mi in 0..mg {
                let oc = gi * mg + mi;
                let orow = &mut out[(n * s.m + oc) * sp_out..][..sp_out];
                matmul_acc(&t.w[oc * rows..][..rows], &col, orow, 1, rows, sp_out);
                if let Some(b) = t.bias {
                    orow.iter_mut().for_each(|v| *v = *v + b[oc]);
                }
            }
        }
    }
    Ok(out)
}

pub fn run(op: &DeformConv, inputs: &[Option<&Value>]) -> Result<Vec<Value>> {
    let x = tensor(inputs, 0)?;
    let w = tensor(inputs, 1)?;
    let offset = tensor(inputs, 2)?;
    let bias = opt_tensor(inputs, 3)?;
    let mask = opt_tensor(inputs, 4)?;
    let s = ConvShapes::new(&op.window, op.group, x.shape(), w.shape())?;
    let nd = s.geom.rank();
    // Each sample interpolates between 2^nd corners.
    if nd > MAX_SPATIAL {
        return Err(Error::compute(format!(
            "DeformConv interpolates in at most {MAX_SPATIAL} spatial dims, the input has {nd}"
        )));
    }
    let kprod = numel(&s.geom.kernel)?;
    if op.offset_group == 0 || s.c % op.offset_group != 0 {
        return Err(Error::compute(format!(
            "{} input channels are not a multiple of offset_group {}",
            s.c, op.offset_group
        )));
    }
    let mut want = vec![
        s.n,
        buf::count(&[op.offset_group, kprod, nd], "DeformConv's offsets")?,
    ];
    want.extend(&s.geom.out);
    if offset.shape() != want.as_slice() {
        return Err(Error::compute(format!(
            "offset has shape {:?}, expected {want:?}",
            offset.shape()
        )));
    }
    if let Some(m) = mask {
        want[1] = buf::count(&[op.offset_group, kprod], "DeformConv's mask")?;
        if m.shape() != want.as_slice() {
            return Err(Error::compute(format!(
                "mask has shape {:?}, expected {want:?}",
                m.shape()
            )));
        }
    }
    if let Some(b) = bias {
        if b.len() != s.m {
            return Err(Error::compute(format!(
                "the bias has shape {:?}, expected [{}]",
                b.shape(),
                s.m
            )));
        }
    }
    let dtype = x.dtype();
    let y = with_real!(dtype, R => {
        let (xv, wv, ov) = (load_floats::<R>(x)?, load_floats::<R>(w)?, load_floats::<R>(offset)?);
        let mv = mask.map(load_floats::<R>).transpose()?;
        let bv = bias.map(load_floats::<R>).transpose()?;
        let v = typed::<R>(op, &s, Inputs { x: &xv, w: &wv, offset: &ov, mask: mv.as_deref(), bias: bv.as_deref() })?;
        store_floats(dtype, s.out_shape(), v)?
    }, _ => return Err(Error::compute(format!("DeformConv does not support {dtype}"))));
    Ok(vec![y.into()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bilinear_samples_and_zero_outside() {
        let plane = [1.0f64, 2.0, 3.0, 4.0];
        assert_eq!(sample(&plane, &[2, 2], &[0.5, 0.5]), 2.5);
        assert_eq!(sample(&plane, &[2, 2], &[1.0, 1.0]), 4.0);
        // Half of the weight falls outside.
        assert_eq!(sample(&plane, &[2, 2], &[-0.5, 0.0]), 0.5);
    }
}
