//! Conv, ConvInteger and QLinearConv: im2col over tiles of output positions, then a matrix
//! product per group.

use xnpu_core::num::{load_floats, store_floats};
use xnpu_core::Num;
use xnpu_core::{DType, Error, Result, Tensor, Value};
use xnpu_linalg::buf;
use xnpu_ops::nn::{Conv, ConvInteger, Geometry, QLinearConv, Window};

use super::num::{int_range, ints_from_f64, ints_i32, matmul_acc, numel, with_real};
use crate::args::{opt_tensor, tensor};

/// Shapes of a convolution, checked: X `[N, C, in...]`, W `[M, C / group, k...]`.
pub struct ConvShapes {
    pub n: usize,
    pub c: usize,
    pub m: usize,
    pub input: Vec<usize>,
    pub geom: Geometry,
}

impl ConvShapes {
    pub fn new(window: &Window, group: usize, x: &[usize], w: &[usize]) -> Result<ConvShapes> {
        if x.len() < 3 || w.len() != x.len() {
            return Err(Error::compute(format!(
                "convolution needs X [N, C, spatial...] and W [M, C/group, kernel...] of the same rank, got {x:?} and {w:?}"
            )));
        }
        let (n, c, m) = (x[0], x[1], w[0]);
        let need = w[1].checked_mul(group).filter(|_| group > 0);
        if need != Some(c) {
            return Err(Error::compute(format!(
                "X has {c} channels, W {w:?} with group {group} needs {}",
                need.map_or_else(|| "more than a usize counts".into(), |n| n.to_string())
            )));
        }
        if m % group != 0 {
            return Err(Error::compute(format!(
                "W has {m} output channels, not a multiple of group {group}"
            )));
        }
        let geom = window.geometry(&x[2..], &w[2..])?;
        // The kernels index the padded input with i64 positions (a window's start, plus a
        // stride past the last one): refuse a padded size they cannot count.
        for (d, &len) in x[2..].iter().enumerate() {
            let padded = [geom.pads_begin[d], geom.pads_end[d], geom.strides[d]]
                .iter()
                .try_fold(len, |a, &b| a.checked_add(b))
                .filter(|&p| i64::try_from(p).is_ok());
            if padded.is_none() {
                return Err(Error::compute(format!(
                    "spatial dim {d}: an input of {len} with pads {} and {} and stride {} is larger than i64::MAX",
                    geom.pads_begin[d], geom.pads_end[d], geom.strides[d]
                )));
            }
        }
        Ok(ConvShapes {
            n,
            c,
            m,
            input: x[2..].to_vec(),
            geom,
        })
    }

    /// The output shape `[N, M, out...]`.
    pub fn out_shape(&self) -> Vec<usize> {
        let mut s = vec![self.n, self.m];
        s.extend(&self.geom.out);
        s
    }
}

/// Output positions per im2col tile.
fn tile_len(rows: usize) -> usize {
    (256 * 1024 / rows.max(1)).clamp(64, 1024)
}

/// Convolution of `x` by `w` (shapes as in `s`, `group` groups) in type `T`, padding with
/// `T::default()`. Returns `[N, M, out...]` values.
pub fn conv_core<T: Num>(s: &ConvShapes, group: usize, x: &[T], w: &[T]) -> Result<Vec<T>> {
    let g = &s.geom;
    let nd = g.rank();
    let sp_in = numel(&s.input)?;
    let sp_out = numel(&g.out)?;
    let kprod = numel(&g.kernel)?;
    let (cg, mg) = (s.c / group, s.m / group);
    // The weight holds `M * rows` values: no overflow.
    let rows = cg * kprod;
    let mut out = buf::filled(
        numel(&s.out_shape())?,
        T::default(),
        "the convolution's output",
    )?;
    if sp_out == 0 || s.n == 0 || s.m == 0 {
        return Ok(out);
    }
    // Per kernel position, the offset along each spatial dim (below the dilated kernel's
    // extent, which ConvShapes checked fits an i64).
    let mut koff = buf::zeroed::<i64>(kprod * nd, "the kernel offsets")?;
    for r in 0..kprod {
        let mut rem = r;
        for d in (0..nd).rev() {
            koff[r * nd + d] = ((rem % g.kernel[d]) * g.dilations[d]) as i64;
            rem /= g.kernel[d];
        }
    }
    let tile = tile_len(rows);
    let mut base = vec![0i64; tile * nd];
    let mut col = buf::filled(
        buf::count(&[rows, tile], "the im2col tile")?,
        T::default(),
        "the im2col tile",
    )?;
    let mut start = 0;
    while start < sp_out {
        let t = tile.min(sp_out - start);
        // Input position of the window's first element, per output position of the tile.
        for p in 0..t {
            let mut rem = start + p;
            for d in (0..nd).rev() {
                let o = rem % g.out[d];
                rem /= g.out[d];
                base[p * nd + d] = (o * g.strides[d]) as i64 - g.pads_begin[d] as i64;
            }
        }
        for n in 0..s.n {
            for gi in 0..group {
                // im2col: col[(c, r), p] = x[n, gi * cg + c, base[p] + koff[r]] or padding.
                for c in 0..cg {
                    let plane = &x[(n * s.c + gi * cg + c) * sp_in..][..sp_in];
                    for r in 0..kprod {
                        let crow = &mut col[(c * kprod + r) * t..][..t];
                        let ko = &koff[r * nd..][..nd];
                        for (p, v) in crow.iter_mut().enumerate() {
                            let bp = &base[p * nd..][..nd];
                            let mut idx = 0usize;
                            let mut inside = true;
                            for d in 0..nd {
                                let pos = bp[d] + ko[d];
                                if pos < 0 || pos >= s.input[d] as i64 {
                                    inside = false;
                                    break;
                                }
                                idx = idx * s.input[d] + pos as usize;
                            }
                            *v = if inside { plane[idx] } else { T::default() };
                        }
                    }
                }
                // out[n, gi * mg + m, tile] += w[gi * mg + m, :] @ col
                for mi in 0..mg {
                    let oc = gi * mg + mi;
                    let orow = &mut out[(n * s.m + oc) * sp_out + start..][..t];
                    let wrow = &w[oc * rows..][..rows];
                    matmul_acc(wrow, &col[..rows * t], orow, 1, rows, t);
                }
            }
        }
        start += t;
    }
    Ok(out)
}

/// Adds `bias[m]` to every element of output channel m of `[N, M, sp]` values.
fn add_bias<T: Num>(out: &mut [T], bias: &[T], m: usize, sp: usize) {
    if sp == 0 || m == 0 {
        return;
    }
    for (i, chunk) in out.chunks_exact_mut(sp).enumerate() {
        let b = bias[i % m];
        for v in chunk {
            *v = v.plus(b);
        }
    }
}

fn check_bias(b: &Tensor, m: usize) -> Result<()> {
    if b.len() != m {
        return Err(Error::compute(format!(
            "the bias has shape {:?}, expected [{m}]",
            b.shape()
        )));
    }
    Ok(())
}

pub fn conv(op: &Conv, inputs: &[Option<&Value>]) -> Result<Vec<Value>> {
    let x = tensor(inputs, 0)?;
    let w = tensor(inputs, 1)?;
    let b = opt_tensor(inputs, 2)?;
    let s = ConvShapes::new(&op.window, op.group, x.shape(), w.shape())?;
    let dtype = x.dtype();
    let out = with_real!(dtype, R => {
        let mut y = conv_core::<R>(&s, op.group, &load_floats::<R>(x)?, &load_floats::<R>(w)?)?;
        if let Some(b) = b {
            check_bias(b, s.m)?;
            add_bias(&mut y, &load_floats::<R>(b)?, s.m, numel(&s.geom.out)?);
        }
        store_floats(dtype, s.out_shape(), y)?
    }, _ => return Err(Error::compute(format!("Conv does not support {dtype}"))));
    Ok(vec![out.into()])
}

/// `W - w_zero_point` with a scalar or per-output-channel zero point.
fn shift_weight(w: &Tensor, zp: Option<&Tensor>) -> Result<Vec<i32>> {
    let mut v = ints_i32(w)?;
    let Some(zp) = zp else { return Ok(v) };
    let z = ints_i32(zp)?;
    let m = w.shape().first().copied().unwrap_or(1);
    let per = v.len().checked_div(m).unwrap_or(0);
    if z.len() == 1 {
        v.iter_mut().for_each(|x| *x = x.wrapping_sub(z[0]));
    } else if z.len() == m {
        for (i, x) in v.iter_mut().enumerate() {
            *x = x.wrapping_sub(z[i / per]);
        }
    } else {
        return Err(Error::compute(format!(
            "the weight zero point has shape {:?}, expected a scalar or [{m}]",
            zp.shape()
        )));
    }
    Ok(v)
}

/// `X - x_zero_point` with a scalar zero point.
fn shift_input(x: &Tensor, zp: Option<&Tensor>) -> Result<Vec<i32>> {
    let mut v = ints_i32(x)?;
    if let Some(zp) = zp {
        let z = ints_i32(zp)?;
        if z.len() != 1 {
            return Err(Error::compute(format!(
                "the input zero point must be a scalar, got shape {:?}",
                zp.shape()
            )));
        }
        v.iter_mut().for_each(|x| *x = x.wrapping_sub(z[0]));
    }
    Ok(v)
}

pub fn conv_integer(op: &ConvInteger, inputs: &[Option<&Value>]) -> Result<Vec<Value>> {
    let x = tensor(inputs, 0)?;
    let w = tensor(inputs, 1)?;
    let s = ConvShapes::new(&op.window, op.group, x.shape(), w.shape())?;
    let xv = shift_input(x, opt_tensor(inputs, 2)?)?;
    let wv = shift_weight(w, opt_tensor(inputs, 3)?)?;
    let y = conv_core::<i32>(&s, op.group, &xv, &wv)?;
    Ok(vec![Tensor::from_vec(s.out_shape(), y)?.into()])
}

pub fn qlinear_conv(op: &QLinearConv, inputs: &[Option<&Value>]) -> Result<Vec<Value>> {
    let x = tensor(inputs, 0)?;
    let x_scale = tensor(inputs, 1)?;
    let w = tensor(inputs, 3)?;
    let w_scale = tensor(inputs, 4)?;
    let y_scale = tensor(inputs, 6)?;
    let y_zp = opt_tensor(inputs, 7)?;
    let b = opt_tensor(inputs, 8)?;
    let s = ConvShapes::new(&op.window, op.group, x.shape(), w.shape())?;
    let xv = shift_input(x, opt_tensor(inputs, 2)?)?;
    let wv = shift_weight(w, opt_tensor(inputs, 5)?)?;
    let mut y = conv_core::<i32>(&s, op.group, &xv, &wv)?;
    let sp = numel(&s.geom.out)?;
    if let Some(b) = b {
        check_bias(b, s.m)?;
        add_bias(&mut y, &b.to_vec::<i32>()?, s.m, sp);
    }
    let out_dtype = y_zp.map_or(x.dtype(), |z| z.dtype());
    let (lo, hi) = int_range(out_dtype)?;
    let one = |t: &Tensor, what: &str| -> Result<f32> {
        match t.to_f64_vec()?.as_slice() {
            [v] => Ok(*v as f32),
            _ => Err(Error::compute(format!(
                "{what} must be a scalar, got shape {:?}",
                t.shape()
            ))),
        }
    };
    let xs = one(x_scale, "x_scale")?;
    let ys = one(y_scale, "y_scale")?;
    let yz = match y_zp {
        Some(z) => ints_i32(z)?.first().copied().unwrap_or(0) as f64,
        None => 0.0,
    };
    let ws: Vec<f32> = w_scale.to_f64_vec()?.iter().map(|&v| v as f32).collect();
    if !(ws.len() == 1 || ws.len() == s.m) {
        return Err(Error::compute(format!(
            "w_scale has shape {:?}, expected a scalar or [{}]",
            w_scale.shape(),
            s.m
        )));
    }
    let vals = buf::collected(
        y.iter().enumerate().map(|(i, &acc)| {
            let m = i.checked_div(sp).unwrap_or(0) % s.m.max(1);
            let f = xs * ws[if ws.len() == 1 { 0 } else { m }] / ys;
            (acc as f64 * f as f64 + yz).clamp(lo, hi).round_ties_even()
        }),
        "QLinearConv's output",
    )?;
    if !matches!(out_dtype, DType::U8 | DType::I8) {
        return Err(Error::compute(format!(
            "QLinearConv output must be u8 or i8, got {out_dtype}"
        )));
    }
    Ok(vec![ints_from_f64(out_dtype, s.out_shape(), &vals)?.into()])
}

#[cfg(test)]
mod tests {
    use super::*;
    use xnpu_ops::nn::AutoPad;

    /// A direct 2-D convolution, for checking the im2col path.
    #[allow(clippy::too_many_arguments)]
    fn naive_conv2d(
        x: &[f32],
        xs: [usize; 4],
        w: &[f32],
        ws: [usize; 4],
        group: usize,
        stride: usize,
        pad: usize,
        dil: usize,
    ) -> (Vec<f32>, [usize; 4]) {
        let [n, c, h, wd] = xs;
        let [m, cg, kh, kw] = ws;
        let oh = (h + 2 * pad - (kh - 1) * dil - 1) / stride + 1;
        let ow = (wd + 2 * pad - (kw - 1) * dil - 1) / stride + 1;
        let mg = m / group;
        let mut out = vec![0.0f32; n * m * oh * ow];
        for b in 0..n {
            for o in 0..m {
                let gi = o / mg;
                for y in 0..oh {
                    for xo in 0..ow {
                        let mut acc = 0.0f32;
                        for ci in 0..cg {
                            for i in 0..kh {
                                for j in 0..kw {
                                    let iy = (y * stride + i * dil) as i64 - pad as i64;
                                    let ix = (xo * stride + j * dil) as i64 - pad as i64;
                                    if iy < 0 || ix < 0 || iy >= h as i64 || ix >= wd as i64 {
                                        continue;
                                    }
                                    let xv = x[((b * c + gi * cg + ci) * h + iy as usize) * wd
                                        + ix as usize];
                                    acc += xv * w[((o * cg + ci) * kh + i) * kw + j];
                                }
                            }
                        }
                        out[((b * m + o) * oh + y) * ow + xo] = acc;
                    }
                }
            }
        }
        (out, [n, m, oh, ow])
    }

    #[test]
    fn im2col_matches_a_direct_convolution() {
        let xs = [2, 6, 37, 29];
        let ws = [8, 3, 3, 5];
        let x: Vec<f32> = (0..xs.iter().product::<usize>())
            .map(|i| ((i * 7919) % 101) as f32 / 50.0 - 1.0)
            .collect();
        let w: Vec<f32> = (0..ws.iter().product::<usize>())
            .map(|i| ((i * 104729) % 97) as f32 / 48.0 - 1.0)
            .collect();
        let window = Window {
            kernel_shape: None,
            strides: vec![2, 2],
            pads: vec![1, 1, 1, 1],
            dilations: vec![2, 2],
            auto_pad: AutoPad::NotSet,
            ceil_mode: false,
        };
        let s = ConvShapes::new(&window, 2, &xs, &ws).unwrap();
        let got = conv_core::<f32>(&s, 2, &x, &w).unwrap();
        let (want, wshape) = naive_conv2d(&x, xs, &w, ws, 2, 2, 1, 2);
        assert_eq!(s.out_shape(), wshape.to_vec());
        for (a, b) in got.iter().zip(&want) {
            assert!((a - b).abs() <= 1e-4 * (1.0 + b.abs()), "{a} vs {b}");
        }
    }

    #[test]
    fn channel_mismatch_is_an_error() {
        let err = ConvShapes::new(&Window::default(), 1, &[1, 3, 5, 5], &[2, 2, 3, 3])
            .err()
            .unwrap();
        assert!(err.to_string().contains("3 channels"), "{err}");
    }
}
