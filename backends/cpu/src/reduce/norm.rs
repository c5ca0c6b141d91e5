//! Normalizations: layer, RMS, batch, instance, group, Lp, LRN, mean-variance.

use xnpu_core::{DType, Error, Result, Tensor, Value};
use xnpu_ops::infer::normalize_axis;
use xnpu_ops::reduce::{BatchNorm, GroupNorm, InstanceNorm, LayerNorm, LpNorm, Lrn, Mvn, RmsNorm};

use super::{from_f64, groups, normalize_axes};
use crate::args::{opt_tensor, tensor};

/// `p` (of shape `pshape`) broadcast, numpy style, to every element of `shape`.
fn broadcast_to(p: &Tensor, shape: &[usize], what: &str) -> Result<Vec<f64>> {
    let v = p.to_f64_vec()?;
    let ps = p.shape();
    if ps.len() > shape.len() {
        return Err(Error::compute(format!(
            "{what} of shape {ps:?} has more dims than the input {shape:?}"
        )));
    }
    let off = shape.len() - ps.len();
    for (i, &d) in ps.iter().enumerate() {
        if d != 1 && d != shape[off + i] {
            return Err(Error::compute(format!(
                "{what} of shape {ps:?} does not broadcast to {shape:?}"
            )));
        }
    }
    let n: usize = shape.iter().product();
    let mut out = Vec::with_capacity(n);
    let mut coord = vec![0usize; shape.len()];
    for _ in 0..n {
        let mut k = 0;
        for (i, &d) in ps.iter().enumerate() {
            k = k * d + if d == 1 { 0 } else { coord[off + i] };
        }
        out.push(v[k]);
        for d in (0..shape.len()).rev() {
            coord[d] += 1;
            if coord[d] < shape[d] {
                break;
            }
            coord[d] = 0;
        }
    }
    Ok(out)
}

/// Per-channel parameter of `[C]` elements for an `[N, C, ...]` input.
fn per_channel(p: &Tensor, c: usize, what: &str) -> Result<Vec<f64>> {
    let v = p.to_f64_vec()?;
    if v.len() != c {
        return Err(Error::compute(format!(
            "{what} has {} elements, the input has {c} channels",
            v.len()
        )));
    }
    Ok(v)
}

fn channels(x: &Tensor, op: &str) -> Result<(usize, usize, usize)> {
    let s = x.shape();
    if s.len() < 2 {
        return Err(Error::compute(format!(
            "{op} needs an input of rank ≥ 2 [N, C, ...], got {s:?}"
        )));
    }
    Ok((s[0], s[1], s[2..].iter().product()))
}

fn mean_var(v: impl Iterator<Item = f64> + Clone) -> (f64, f64) {
    let n = v.clone().count() as f64;
    let mean = v.clone().sum::<f64>() / n;
    let var = v.map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
    (mean, var)
}

pub fn layer_norm(op: &LayerNorm, inputs: &[Option<&Value>]) -> Result<Vec<Tensor>> {
    let x = tensor(inputs, 0)?;
    let axis = normalize_axis(op.axis, x.rank())?;
    let axes: Vec<usize> = (axis..x.rank()).collect();
    let data = x.to_f64_vec()?;
    let scale = broadcast_to(tensor(inputs, 1)?, x.shape(), "scale")?;
    let bias = match opt_tensor(inputs, 2)? {
        Some(b) => broadcast_to(b, x.shape(), "bias")?,
        None => vec![0.0; data.len()],
    };
    let (kept, groups) = groups(x.shape(), &axes);
    let mut y = vec![0.0; data.len()];
    let mut means = Vec::with_capacity(groups.len());
    let mut inv_std = Vec::with_capacity(groups.len());
    for g in &groups {
        let (m, var) = mean_var(g.iter().map(|&i| data[i]));
        let is = 1.0 / (var + op.epsilon as f64).sqrt();
        for &i in g {
            y[i] = (data[i] - m) * is * scale[i] + bias[i];
        }
        means.push(m);
        inv_std.push(is);
    }
    let stat_dtype = if op.stash_f32 && x.dtype() != DType::F64 {
        DType::F32
    } else {
        x.dtype()
    };
    Ok(vec![
        from_f64(x.dtype(), x.shape().to_vec(), &y)?,
        from_f64(stat_dtype, kept.clone(), &means)?,
        from_f64(stat_dtype, kept, &inv_std)?,
    ])
}

pub fn rms_norm(op: &RmsNorm, inputs: &[Option<&Value>]) -> Result<Tensor> {
    let x = tensor(inputs, 0)?;
    let axis = normalize_axis(op.axis, x.rank())?;
    let axes: Vec<usize> = (axis..x.rank()).collect();
    let data = x.to_f64_vec()?;
    let scale = broadcast_to(tensor(inputs, 1)?, x.shape(), "scale")?;
    let (_, groups) = groups(x.shape(), &axes);
    let mut y = vec![0.0; data.len()];
    for g in &groups {
        let ms = g.iter().map(|&i| data[i] * data[i]).sum::<f64>() / g.len() as f64;
        let inv = 1.0 / (ms + op.epsilon as f64).sqrt();
        for &i in g {
            y[i] = data[i] * inv * scale[i];
        }
    }
    from_f64(x.dtype(), x.shape().to_vec(), &y)
}

pub fn batch_norm(op: &BatchNorm, inputs: &[Option<&Value>]) -> Result<Vec<Tensor>> {
    let x = tensor(inputs, 0)?;
    let (n, c, inner) = channels(x, "BatchNormalization")?;
    let data = x.to_f64_vec()?;
    let scale = per_channel(tensor(inputs, 1)?, c, "scale")?;
    let bias = per_channel(tensor(inputs, 2)?, c, "B")?;
    let rmean = per_channel(tensor(inputs, 3)?, c, "input_mean")?;
    let rvar = per_channel(tensor(inputs, 4)?, c, "input_var")?;
    let idx = |b: usize, ch: usize, k: usize| (b * c + ch) * inner + k;
    let (mean, var) = if op.training {
        (0..c)
            .map(|ch| {
                mean_var(
                    (0..n)
                        .flat_map(|b| (0..inner).map(move |k| idx(b, ch, k)))
                        .map(|i| data[i]),
                )
            })
            .unzip()
    } else {
        (rmean.clone(), rvar.clone())
    };
    let mut y = vec![0.0; data.len()];
    for b in 0..n {
        for ch in 0..c {
            let is = 1.0 / (var[ch] + op.epsilon as f64).sqrt();
            for k in 0..inner {
                let i = idx(b, ch, k);
                y[i] = (data[i] - mean[ch]) * is * scale[ch] + bias[ch];
            }
        }
    }
    let mut out = vec![from_f64(x.dtype(), x.shape().to_vec(), &y)?];
    if op.training {
        let m = op.momentum as f64;
        let run_mean: Vec<f64> = (0..c)
            .map(|ch| rmean[ch] * m + mean[ch] * (1.0 - m))
            .collect();
        let run_var: Vec<f64> = (0..c)
            .map(|ch| rvar[ch] * m + var[ch] * (1.0 - m))
            .collect();
        let dt = tensor(inputs, 3)?.dtype();
        out.push(from_f64(dt, vec![c], &run_mean)?);
        out.push(from_f64(dt, vec![c], &run_var)?);
    }
    Ok(out)
}

pub fn instance_norm(op: &InstanceNorm, inputs: &[Option<&Value>]) -> Result<Tensor> {
    let x = tensor(inputs, 0)?;
    let (n, c, inner) = channels(x, "InstanceNormalization")?;
    let data = x.to_f64_vec()?;
    let scale = per_channel(tensor(inputs, 1)?, c, "scale")?;
    let bias = per_channel(tensor(inputs, 2)?, c, "B")?;
    let mut y = vec![0.0; data.len()];
    for b in 0..n {
        for ch in 0..c {
            let start = (b * c + ch) * inner;
            let (m, var) = mean_var(data[start..start + inner].iter().copied());
            let is = 1.0 / (var + op.epsilon as f64).sqrt();
            for i in start..start + inner {
                y[i] = (data[i] - m) * is * scale[ch] + bias[ch];
            }
        }
    }
    from_f64(x.dtype(), x.shape().to_vec(), &y)
}

pub fn group_norm(op: &GroupNorm, inputs: &[Option<&Value>]) -> Result<Tensor> {
    let x = tensor(inputs, 0)?;
    let (n, c, inner) = channels(x, "GroupNormalization")?;
    let g = op.num_groups;
    if c % g != 0 {
        return Err(Error::compute(format!(
            "{c} channels do not split into {g} groups"
        )));
    }
    let per = c / g;
    let affine_len = if op.per_group_affine { g } else { c };
    let scale = per_channel(tensor(inputs, 1)?, affine_len, "scale")?;
    let bias = per_channel(tensor(inputs, 2)?, affine_len, "bias")?;
    let data = x.to_f64_vec()?;
    let mut y = vec![0.0; data.len()];
    for b in 0..n {
        for grp in 0..g {
            let start = (b * c + grp * per) * inner;
            let end = start + per * inner;
            let (m, var) = mean_var(data[start..end].iter().copied());
            let is = 1.0 / (var + op.epsilon as f64).sqrt();
            for i in start..end {
                let ch = (i / inner) % c;
                let a = if op.per_group_affine { grp } else { ch };
                y[i] = (data[i] - m) * is * scale[a] + bias[a];
            }
        }
    }
    from_f64(x.dtype(), x.shape().to_vec(), &y)
}

pub fn lp_norm(op: &LpNorm, x: &Tensor) -> Result<Tensor> {
    let axis = normalize_axis(op.axis, x.rank())?;
    let data = x.to_f64_vec()?;
    let (_, groups) = groups(x.shape(), &[axis]);
    let mut y = vec![0.0; data.len()];
    for g in &groups {
        let norm = if op.p == 1 {
            g.iter().map(|&i| data[i].abs()).sum::<f64>()
        } else {
            g.iter().map(|&i| data[i] * data[i]).sum::<f64>().sqrt()
        };
        for &i in g {
            y[i] = if norm == 0.0 { 0.0 } else { data[i] / norm };
        }
    }
    from_f64(x.dtype(), x.shape().to_vec(), &y)
}

pub fn lrn(op: &Lrn, x: &Tensor) -> Result<Tensor> {
    let (n, c, inner) = channels(x, "LRN")?;
    let data = x.to_f64_vec()?;
    let before = (op.size - 1) / 2;
    let after = op.size - 1 - before;
    let mut y = vec![0.0; data.len()];
    for b in 0..n {
        for ch in 0..c {
            let lo = ch.saturating_sub(before);
            let hi = (ch + after).min(c - 1);
            for k in 0..inner {
                let sq: f64 = (lo..=hi)
                    .map(|j| data[(b * c + j) * inner + k].powi(2))
                    .sum();
                let i = (b * c + ch) * inner + k;
                let d = op.bias as f64 + op.alpha as f64 / op.size as f64 * sq;
                y[i] = data[i] / d.powf(op.beta as f64);
            }
        }
    }
    from_f64(x.dtype(), x.shape().to_vec(), &y)
}

pub fn mvn(op: &Mvn, x: &Tensor) -> Result<Tensor> {
    let axes = normalize_axes(&op.axes, x.rank())?;
    let data = x.to_f64_vec()?;
    let (_, groups) = groups(x.shape(), &axes);
    let mut y = vec![0.0; data.len()];
    for g in &groups {
        let (m, var) = mean_var(g.iter().map(|&i| data[i]));
        for &i in g {
            y[i] = (data[i] - m) / (var.sqrt() + 1e-9);
        }
    }
    from_f64(x.dtype(), x.shape().to_vec(), &y)
}
