//! AveragePool, MaxPool, LpPool, the global pools, MaxUnpool and MaxRoiPool.

use num_traits::{Float, Zero};
use xnpu_core::num::{load_floats, store_floats};
use xnpu_core::{Error, Num, Result, Tensor, Value};
use xnpu_ops::nn::{GlobalKind, GlobalPool, MaxRoiPool, MaxUnpool, Pool, PoolKind};
use xnpu_ops::OpDef;

use xnpu_linalg::buf;

use super::num::{numel, with_real};
use crate::args::{opt_tensor, tensor};

/// A window tap that falls in the declared padding (counts for `count_include_pad`).
const PAD: i64 = -1;
/// A window tap past the end padding (from `ceil_mode`): never counts.
const OUTSIDE: i64 = -2;

/// For each output position and kernel position, the input position read (row-major
/// spatial index), or [`PAD`] / [`OUTSIDE`]. `[prod(out) * prod(kernel)]` values.
fn taps(op: &Pool, input: &[usize]) -> Result<(Vec<usize>, usize, Vec<i64>)> {
    let kernel = op.window.kernel_shape.clone().unwrap_or_default();
    let g = op.window.geometry(input, &kernel)?;
    let nd = g.rank();
    let sp_out = numel(&g.out)?;
    let kprod = numel(&g.kernel)?;
    let mut taps = buf::reserved(
        buf::count(&[sp_out, kprod], "the pool's window taps")?,
        "the pool's window taps",
    )?;
    // Positions in i128: the geometry checked that the padded input and the dilated kernel
    // fit a usize, so a window's start and its taps (each below the padded size plus a
    // stride) fit an i128 whatever the attributes.
    let mut start = vec![0i128; nd];
    let mut pos = vec![0i128; nd];
    for o in 0..sp_out {
        let mut rem = o;
        for d in (0..nd).rev() {
            start[d] = ((rem % g.out[d]) as i128) * g.strides[d] as i128 - g.pads_begin[d] as i128;
            rem /= g.out[d];
        }
        for r in 0..kprod {
            let mut rem = r;
            for d in (0..nd).rev() {
                pos[d] = start[d] + ((rem % g.kernel[d]) as i128) * g.dilations[d] as i128;
                rem /= g.kernel[d];
            }
            let mut tap = 0i64;
            for d in 0..nd {
                let p = pos[d];
                let size = input[d] as i128;
                if p < -(g.pads_begin[d] as i128) || p >= size + g.pads_end[d] as i128 {
                    tap = OUTSIDE;
                    break;
                }
                if p < 0 || p >= size {
                    tap = PAD;
                } else if tap >= 0 {
                    // Below the input's element count, which a tensor's size bounds.
                    tap = tap * size as i64 + p as i64;
                }
            }
            taps.push(tap);
        }
    }
    Ok((g.out, kprod, taps))
}

/// The column-major spatial index of row-major spatial index `i` of shape `dims`.
fn column_major(i: usize, dims: &[usize]) -> usize {
    let mut rem = i;
    let mut coords = vec![0usize; dims.len()];
    for d in (0..dims.len()).rev() {
        coords[d] = rem % dims[d];
        rem /= dims[d];
    }
    let mut idx = 0;
    for d in (0..dims.len()).rev() {
        idx = idx * dims[d] + coords[d];
    }
    idx
}

fn split_input(x: &Tensor, what: &str) -> Result<(usize, Vec<usize>)> {
    let s = x.shape();
    if s.len() < 3 {
        return Err(Error::compute(format!(
            "{what} needs an input [N, C, spatial...], got shape {s:?}"
        )));
    }
    Ok((numel(&s[..2])?, s[2..].to_vec()))
}

fn avg_lp<R: Num + Float>(
    kind: &PoolKind,
    x: &[R],
    planes: usize,
    sp_in: usize,
    kprod: usize,
    taps: &[i64],
) -> Result<Vec<R>> {
    let sp_out = taps.len().checked_div(kprod).unwrap_or(0);
    let mut out = buf::reserved(
        buf::count(&[planes, sp_out], "the pool's output")?,
        "the pool's output",
    )?;
    for plane in 0..planes {
        let xp = &x[plane * sp_in..][..sp_in];
        for window in taps.chunks_exact(kprod.max(1)) {
            let v = match *kind {
                PoolKind::Average { count_include_pad } => {
                    let mut sum = R::zero();
                    let mut count = 0usize;
                    for &t in window {
                        if t >= 0 {
                            sum = sum + xp[t as usize];
                            count += 1;
                        } else if t == PAD && count_include_pad {
                            count += 1;
                        }
                    }
                    sum / R::from_f64(count as f64)
                }
                PoolKind::Lp { p } => {
                    let p = R::from_f64(p);
                    let mut sum = R::zero();
                    for &t in window {
                        if t >= 0 {
                            sum = sum + xp[t as usize].abs().powf(p);
                        }
                    }
                    sum.powf(p.recip())
                }
                PoolKind::Max { .. } => R::nan(),
            };
            out.push(v);
        }
    }
    Ok(out)
}

/// Max over each window: values and row-major spatial indices (-1 for an empty window).
fn max_windows<T: Copy + PartialOrd + Default>(
    x: &[T],
    planes: usize,
    sp_in: usize,
    kprod: usize,
    taps: &[i64],
) -> Result<(Vec<T>, Vec<i64>)> {
    let sp_out = taps.len().checked_div(kprod).unwrap_or(0);
    let n = buf::count(&[planes, sp_out], "the pool's output")?;
    let mut out = buf::reserved(n, "the pool's output")?;
    let mut idx = buf::reserved(n, "the pool's indices")?;
    for plane in 0..planes {
        let xp = &x[plane * sp_in..][..sp_in];
        for window in taps.chunks_exact(kprod.max(1)) {
            let mut best: Option<(T, i64)> = None;
            for &t in window {
                if t >= 0 {
                    let v = xp[t as usize];
                    if best.is_none_or(|(b, _)| v > b) {
                        best = Some((v, t));
                    }
                }
            }
            let (v, i) = best.unwrap_or((T::default(), -1));
            out.push(v);
            idx.push(i);
        }
    }
    Ok((out, idx))
}

pub fn pool(op: &Pool, inputs: &[Option<&Value>], n_outputs: usize) -> Result<Vec<Value>> {
    let x = tensor(inputs, 0)?;
    let (planes, spatial) = split_input(x, op.name())?;
    let (out_sp, kprod, taps) = taps(op, &spatial)?;
    let sp_in = numel(&spatial)?;
    let mut shape = x.shape()[..2].to_vec();
    shape.extend(&out_sp);
    let dtype = x.dtype();
    match op.kind {
        PoolKind::Max { column_major: cm } => {
            let (y, idx) = xnpu_core::with_numeric_type!(dtype, T => {
                let (v, idx) = max_windows(&x.as_slice::<T>()?, planes, sp_in, kprod, &taps)?;
                (Tensor::from_vec(shape.clone(), v)?, idx)
            }, _ => return Err(Error::compute(format!("MaxPool does not support {dtype}"))));
            let mut outs = vec![Value::from(y)];
            if n_outputs > 1 {
                let sp_out = numel(&out_sp)?;
                // Each flat index is below the input's element count.
                let flat = buf::collected(
                    idx.iter().enumerate().map(|(k, &i)| {
                        if i < 0 {
                            return -1;
                        }
                        let i = i as usize;
                        let s = if cm { column_major(i, &spatial) } else { i };
                        ((k / sp_out.max(1)) * sp_in + s) as i64
                    }),
                    "the pool's indices",
                )?;
                outs.push(Tensor::from_vec(shape, flat)?.into());
            }
            Ok(outs)
        }
        _ => {
            let y = with_real!(dtype, R => {
                let v = avg_lp::<R>(&op.kind, &load_floats::<R>(x)?, planes, sp_in, kprod, &taps)?;
                store_floats(dtype, shape, v)?
            }, _ => return Err(Error::compute(format!("{} does not support {dtype}", op.name()))));
            Ok(vec![y.into()])
        }
    }
}

pub fn global_pool(op: &GlobalPool, inputs: &[Option<&Value>]) -> Result<Vec<Value>> {
    let x = tensor(inputs, 0)?;
    let s = x.shape();
    if s.len() < 2 {
        return Err(Error::compute(format!(
            "{} needs an input [N, C, spatial...], got shape {s:?}",
            op.name()
        )));
    }
    let planes = numel(&s[..2])?;
    let sp = numel(&s[2..])?;
    let mut shape = s[..2].to_vec();
    shape.extend(std::iter::repeat_n(1, s.len() - 2));
    let dtype = x.dtype();
    let y = with_real!(dtype, R => {
        let v = load_floats::<R>(x)?;
        let mut out = buf::reserved(planes, "the pool's output")?;
        for plane in 0..planes {
            let xp = &v[plane * sp..][..sp];
            out.push(match op.kind {
                GlobalKind::Average => {
                    xp.iter().fold(R::zero(), |a, &b| a + b) / R::from_f64(sp as f64)
                }
                GlobalKind::Max => xp
                    .iter()
                    .copied()
                    .reduce(|a, b| if b > a { b } else { a })
                    .unwrap_or_else(R::neg_infinity),
                GlobalKind::Lp { p } => {
                    let p = R::from_f64(p);
                    xp.iter()
                        .fold(R::zero(), |a, &b| a + b.abs().powf(p))
                        .powf(p.recip())
                }
            });
        }
        store_floats(dtype, shape, out)?
    }, _ => return Err(Error::compute(format!("{} does not support {dtype}", op.name()))));
    Ok(vec![y.into()])
}

pub fn max_unpool(op: &MaxUnpool, inputs: &[Option<&Value>]) -> Result<Vec<Value>> {
    let x = tensor(inputs, 0)?;
    let ind = tensor(inputs, 1)?;
    let (_, spatial) = split_input(x, "MaxUnpool")?;
    if ind.shape() != x.shape() {
        return Err(Error::compute(format!(
            "the indices have shape {:?}, expected X's shape {:?}",
            ind.shape(),
            x.shape()
        )));
    }
    let mut inferred = x.shape()[..2].to_vec();
    inferred.extend(op.default_out(&spatial)?);
    let out_shape = match opt_tensor(inputs, 2)? {
        None => inferred.clone(),
        Some(t) => {
            let dims = t.to_i64_vec()?;
            let dims: Vec<usize> = dims
                .iter()
                .map(|&d| usize::try_from(d))
                .collect::<std::result::Result<_, _>>()
                .map_err(|_| Error::compute(format!("output_shape {dims:?} has a negative dim")))?;
            if dims.len() != inferred.len() || dims.iter().zip(&inferred).any(|(a, b)| a < b) {
                return Err(Error::compute(format!(
                    "output_shape {dims:?} must have rank {} and be at least the unpooled shape {inferred:?}",
                    inferred.len()
                )));
            }
            dims
        }
    };
    let total_in = numel(&inferred)?;
    let indices = ind.to_i64_vec()?;
    let dtype = x.dtype();
    let y = xnpu_core::with_numeric_type!(dtype, T => {
        let xv = x.as_slice::<T>()?;
        let mut dense = buf::filled(total_in, T::default(), "the unpooled tensor")?;
        for (&i, &v) in indices.iter().zip(xv.iter()) {
            let slot = usize::try_from(i).ok().filter(|&i| i < total_in).ok_or_else(|| {
                Error::compute(format!("index {i} is out of range for an unpooled tensor of {total_in} elements"))
            })?;
            dense[slot] = v;
        }
        // Place the unpooled tensor at the start of the (possibly larger) output.
        let mut out = buf::filled(numel(&out_shape)?, T::default(), "MaxUnpool's output")?;
        for (k, v) in dense.into_iter().enumerate() {
            let mut rem = k;
            let mut off = 0;
            let mut stride = 1;
            for d in (0..inferred.len()).rev() {
                off += (rem % inferred[d]) * stride;
                rem /= inferred[d];
                stride *= out_shape[d];
            }
            out[off] = v;
        }
        Tensor::from_vec(out_shape, out)?
    }, _ => return Err(Error::compute(format!("MaxUnpool does not support {dtype}"))));
    Ok(vec![y.into()])
}

pub fn max_roi_pool(op: &MaxRoiPool, inputs: &[Option<&Value>]) -> Result<Vec<Value>> {
    let x = tensor(inputs, 0)?;
    let rois = tensor(inputs, 1)?;
    let s = x.shape();
    if s.len() != 4 {
        return Err(Error::compute(format!(
            "MaxRoiPool needs X [N, C, H, W], got shape {s:?}"
        )));
    }
    let rs = rois.shape();
    if rs.len() != 2 || rs[1] != 5 {
        return Err(Error::compute(format!(
            "rois must be [R, 5], got shape {rs:?}"
        )));
    }
    let (n, c, h, w) = (s[0], s[1], s[2], s[3]);
    let [ph, pw] = op.pooled_shape;
    let shape = vec![rs[0], c, ph, pw];
    let dtype = x.dtype();
    let y = with_real!(dtype, R => {
        let xv = load_floats::<R>(x)?;
        let rv = load_floats::<R>(rois)?;
        // Region coordinates are computed in f32, like the reference implementations.
        let scale = op.spatial_scale;
        let mut out = buf::reserved(numel(&shape)?, "MaxRoiPool's output")?;
        for roi in rv.chunks_exact(5) {
            let f = |v: R| v.to_f64() as f32;
            let b = f(roi[0]);
            if !(b >= 0.0 && (b as usize) < n) {
                return Err(Error::compute(format!("roi batch index {b} is out of range for {n} images")));
            }
            let b = b as usize;
            let x1 = (f(roi[1]) * scale).round() as i64;
            let y1 = (f(roi[2]) * scale).round() as i64;
            let x2 = (f(roi[3]) * scale).round() as i64;
            let y2 = (f(roi[4]) * scale).round() as i64;
            let rh = (y2 - y1 + 1).max(1) as f32;
            let rw = (x2 - x1 + 1).max(1) as f32;
            let (bh, bw) = (rh / ph as f32, rw / pw as f32);
            for ci in 0..c {
                let plane = &xv[(b * c + ci) * h * w..][..h * w];
                for i in 0..ph {
                    let hs = ((i as f32 * bh).floor() as i64 + y1).clamp(0, h as i64) as usize;
                    let he = (((i + 1) as f32 * bh).ceil() as i64 + y1).clamp(0, h as i64) as usize;
                    for j in 0..pw {
                        let ws = ((j as f32 * bw).floor() as i64 + x1).clamp(0, w as i64) as usize;
                        let we = (((j + 1) as f32 * bw).ceil() as i64 + x1).clamp(0, w as i64) as usize;
                        let mut best: Option<R> = None;
                        for yy in hs..he {
                            for xx in ws..we {
                                let v = plane[yy * w + xx];
                                if best.is_none_or(|m| v > m) {
                                    best = Some(v);
                                }
                            }
                        }
                        out.push(best.unwrap_or_else(R::zero));
                    }
                }
            }
        }
        store_floats(dtype, shape, out)?
    }, _ => return Err(Error::compute(format!("MaxRoiPool does not support {dtype}"))));
    Ok(vec![y.into()])
}

#[cfg(test)]
mod tests {
    use super::*;
    use xnpu_ops::nn::Window;

    fn pool_op(kind: PoolKind, k: usize, s: usize, pads: [usize; 2], ceil: bool) -> Pool {
        Pool {
            kind,
            window: Window {
                kernel_shape: Some(vec![k]),
                strides: vec![s],
                pads: pads.to_vec(),
                ceil_mode: ceil,
                ..Window::default()
            },
        }
    }

    fn run1(op: &Pool, x: &[f32]) -> Vec<f32> {
        let t = Tensor::from_vec(vec![1, 1, x.len()], x.to_vec()).unwrap();
        let v = Value::from(t);
        let out = pool(op, &[Some(&v)], 1).unwrap();
        out[0].as_tensor().unwrap().to_vec::<f32>().unwrap()
    }

    #[test]
    fn average_counts_pads_only_when_asked() {
        let x = [1.0, 2.0, 3.0];
        let ex = pool_op(
            PoolKind::Average {
                count_include_pad: false,
            },
            2,
            1,
            [1, 0],
            false,
        );
        assert_eq!(run1(&ex, &x), vec![1.0, 1.5, 2.5]);
        let inc = pool_op(
            PoolKind::Average {
                count_include_pad: true,
            },
            2,
            1,
            [1, 0],
            false,
        );
        assert_eq!(run1(&inc, &x), vec![0.5, 1.5, 2.5]);
    }

    #[test]
    fn ceil_mode_windows_past_the_pads_do_not_count() {
        // in 4, k 3, s 2, ceil: windows [0..3) and [2..5); the second has one tap outside.
        let op = pool_op(
            PoolKind::Average {
                count_include_pad: true,
            },
            3,
            2,
            [0, 0],
            true,
        );
        assert_eq!(run1(&op, &[1.0, 2.0, 3.0, 4.0]), vec![2.0, 3.5]);
    }

    #[test]
    fn max_indices_follow_storage_order() {
        assert_eq!(column_major(5, &[2, 3]), 1 + 2 * 2);
        let op = pool_op(
            PoolKind::Max {
                column_major: false,
            },
            2,
            2,
            [0, 0],
            false,
        );
        let t = Tensor::from_vec(
            vec![1, 2, 4],
            vec![1.0f32, 5.0, 3.0, 2.0, 0.0, 1.0, 9.0, 9.0],
        )
        .unwrap();
        let v = Value::from(t);
        let out = pool(&op, &[Some(&v)], 2).unwrap();
        assert_eq!(
            out[1].as_tensor().unwrap().to_vec::<i64>().unwrap(),
            vec![1, 2, 5, 6]
        );
    }

    #[test]
    fn roi_bins_cover_the_scaled_region() {
        // One 4x4 image 0..16, one region (1, 1)-(2, 3) pooled to 2x1.
        let x: Vec<f32> = (0..16).map(|v| v as f32).collect();
        let x = Value::from(Tensor::from_vec(vec![1, 1, 4, 4], x).unwrap());
        let r =
            Value::from(Tensor::from_vec(vec![1, 5], vec![0.0f32, 1.0, 1.0, 2.0, 3.0]).unwrap());
        let op = MaxRoiPool {
            pooled_shape: [2, 1],
            spatial_scale: 1.0,
        };
        let out = max_roi_pool(&op, &[Some(&x), Some(&r)]).unwrap();
        // Region rows 1..=3 (height 3), bins of 1.5 rows: rows [1, 3) and [2, 4); columns
        // 1..=2.
        assert_eq!(
            out[0].as_tensor().unwrap().to_vec::<f32>().unwrap(),
            vec![10.0, 14.0]
        );
    }

    #[test]
    fn unpool_index_out_of_range_is_an_error() {
        let op = MaxUnpool {
            kernel_shape: vec![2],
            strides: vec![2],
            pads: vec![],
        };
        let x = Value::from(Tensor::from_vec(vec![1, 1, 1], vec![1.0f32]).unwrap());
        let i = Value::from(Tensor::from_vec(vec![1, 1, 1], vec![7i64]).unwrap());
        let err = max_unpool(&op, &[Some(&x), Some(&i)]).unwrap_err();
        assert!(err.to_string().contains("out of range"), "{err}");
    }
}
