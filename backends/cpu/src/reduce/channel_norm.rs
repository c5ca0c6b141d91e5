//! BatchNormalization, InstanceNormalization and GroupNormalization: inputs [N, C, D1, ...]
//! normalized with statistics per channel, per (sample, channel) or per (sample, group).

use xnpu_core::{Error, Result, Tensor, Value};
use xnpu_ops::reduce::{BatchNormalization, GroupNormalization, InstanceNormalization};

use xnpu_linalg::buf;

use super::{check_len, float_tensor};
use crate::args::{floats, tensor};

/// N, C and the number of elements per (n, c) of an input [N, C, D1, ...]. N is 0 for an
/// empty input, whose other dims may be anything: no loop walks its rows of nothing.
fn ncs(x: &Tensor) -> Result<(usize, usize, usize)> {
    let s = x.shape();
    if s.len() < 2 {
        return Err(Error::compute(format!(
            "the input must have shape [N, C, ...] (rank at least 2), got {s:?}"
        )));
    }
    if x.is_empty() {
        return Ok((0, s[1], 0));
    }
    Ok((s[0], s[1], s[2..].iter().product()))
}

/// Mean and population variance of values.
fn mean_var(v: impl Iterator<Item = f64> + Clone) -> (f64, f64) {
    let n = v.clone().count() as f64;
    let mean = v.clone().sum::<f64>() / n;
    let var = v.map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
    (mean, var)
}

pub(super) fn batch_norm(
    op: &BatchNormalization,
    inputs: &[Option<&Value>],
    n_outputs: usize,
) -> Result<Vec<Tensor>> {
    let x = tensor(inputs, 0)?;
    let (n, c, s) = ncs(x)?;
    let xv = floats(x, "X")?;
    let scale = floats(tensor(inputs, 1)?, "scale")?;
    let bias = floats(tensor(inputs, 2)?, "B")?;
    let mean_t = tensor(inputs, 3)?;
    let mean_in = floats(mean_t, "input_mean")?;
    let var_t = tensor(inputs, 4)?;
    let var_in = floats(var_t, "input_var")?;
    for (v, what) in [
        (&scale, "scale"),
        (&bias, "B"),
        (&mean_in, "input_mean"),
        (&var_in, "input_var"),
    ] {
        check_len(v, c, what)?;
    }
    let at = |i: usize, ch: usize, j: usize| (i * c + ch) * s + j;
    let (mean, var): (Vec<f64>, Vec<f64>) = if op.training_mode {
        (0..c)
            .map(|ch| {
                let channel: Vec<f64> = (0..n)
                    .flat_map(|i| (0..s).map(move |j| at(i, ch, j)))
                    .map(|k| xv[k])
                    .collect();
                mean_var(channel.iter().copied())
            })
            .unzip()
    } else {
        (mean_in.clone(), var_in.clone())
    };
    let eps = op.epsilon as f64;
    let mut y = buf::zeroed::<f64>(xv.len(), "BatchNormalization's output")?;
    for i in 0..n {
        for ch in 0..c {
            let inv = 1.0 / (var[ch] + eps).sqrt();
            for j in 0..s {
                let k = at(i, ch, j);
                y[k] = scale[ch] * (xv[k] - mean[ch]) * inv + bias[ch];
            }
        }
    }
    let mut out = vec![float_tensor(x.dtype(), x.shape().to_vec(), &y)?];
    if op.training_mode && n_outputs > 1 {
        let m = op.momentum as f64;
        let run = |input: &[f64], batch: &[f64]| -> Vec<f64> {
            input
                .iter()
                .zip(batch)
                .map(|(a, b)| a * m + b * (1.0 - m))
                .collect()
        };
        out.push(float_tensor(
            mean_t.dtype(),
            vec![c],
            &run(&mean_in, &mean),
        )?);
        out.push(float_tensor(var_t.dtype(), vec![c], &run(&var_in, &var))?);
        out.push(float_tensor(x.dtype(), vec![c], &mean)?);
        out.push(float_tensor(x.dtype(), vec![c], &var)?);
    }
    Ok(out)
}

pub(super) fn instance_norm(
    op: &InstanceNormalization,
    inputs: &[Option<&Value>],
) -> Result<Tensor> {
    let x = tensor(inputs, 0)?;
    let (n, c, s) = ncs(x)?;
    let xv = floats(x, "input")?;
    let scale = floats(tensor(inputs, 1)?, "scale")?;
    let bias = floats(tensor(inputs, 2)?, "B")?;
    check_len(&scale, c, "scale")?;
    check_len(&bias, c, "B")?;
    let eps = op.epsilon as f64;
    let mut y = buf::zeroed::<f64>(xv.len(), "InstanceNormalization's output")?;
    for i in 0..n {
        for ch in 0..c {
            let start = (i * c + ch) * s;
            let slice = &xv[start..start + s];
            let (mean, var) = mean_var(slice.iter().copied());
            let inv = 1.0 / (var + eps).sqrt();
            for (j, v) in slice.iter().enumerate() {
                y[start + j] = scale[ch] * (v - mean) * inv + bias[ch];
            }
        }
    }
    float_tensor(x.dtype(), x.shape().to_vec(), &y)
}

pub(super) fn group_norm(op: &GroupNormalization, inputs: &[Option<&Value>]) -> Result<Tensor> {
    let x = tensor(inputs, 0)?;
    let (n, c, s) = ncs(x)?;
    let g = usize::try_from(op.num_groups).unwrap_or(0);
    if g == 0 || c % g != 0 {
        return Err(Error::compute(format!(
            "the number of channels {c} must be a multiple of num_groups {}",
            op.num_groups
        )));
    }
    let xv = floats(x, "X")?;
    let scale = floats(tensor(inputs, 1)?, "scale")?;
    let bias = floats(tensor(inputs, 2)?, "bias")?;
    let params = if op.scale_per_group { g } else { c };
    let what = if op.scale_per_group {
        "(one per group)"
    } else {
        "(one per channel)"
    };
    for (v, name) in [(&scale, "scale"), (&bias, "bias")] {
        if v.len() != params {
            return Err(Error::compute(format!(
                "{name} must have {params} elements {what}, got {}",
                v.len()
            )));
        }
    }
    let per_group = c / g;
    let group_len = per_group * s;
    let eps = op.epsilon as f64;
    let mut y = buf::zeroed::<f64>(xv.len(), "GroupNormalization's output")?;
    for i in 0..n {
        for gi in 0..g {
            let start = (i * g + gi) * group_len;
            let slice = &xv[start..start + group_len];
            let (mean, var) = mean_var(slice.iter().copied());
            let inv = 1.0 / (var + eps).sqrt();
            for (j, v) in slice.iter().enumerate() {
                let ch = gi * per_group + j / s.max(1);
                let p = if op.scale_per_group { gi } else { ch };
                y[start + j] = scale[p] * (v - mean) * inv + bias[p];
            }
        }
    }
    float_tensor(x.dtype(), x.shape().to_vec(), &y)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(shape: &[usize], v: Vec<f32>) -> Value {
        Value::Tensor(Tensor::from_vec(shape.to_vec(), v).unwrap())
    }

    #[test]
    fn batch_norm_inference_uses_the_given_statistics() {
        let op = BatchNormalization {
            epsilon: 0.0,
            momentum: 0.9,
            training_mode: false,
        };
        let ins = [
            t(&[1, 2, 1], vec![3.0, 5.0]),
            t(&[2], vec![1.0, 2.0]),
            t(&[2], vec![0.0, 1.0]),
            t(&[2], vec![1.0, 1.0]),
            t(&[2], vec![4.0, 16.0]),
        ];
        let refs: Vec<Option<&Value>> = ins.iter().map(Some).collect();
        let y = batch_norm(&op, &refs, 1).unwrap();
        assert_eq!(y[0].to_vec::<f32>().unwrap(), vec![1.0, 3.0]);
    }

    #[test]
    fn group_norm_needs_channels_divisible_by_groups() {
        let op = GroupNormalization {
            num_groups: 2,
            epsilon: 1e-5,
            scale_per_group: false,
        };
        let ins = [
            t(&[1, 3, 1], vec![1.0; 3]),
            t(&[3], vec![1.0; 3]),
            t(&[3], vec![0.0; 3]),
        ];
        let refs: Vec<Option<&Value>> = ins.iter().map(Some).collect();
        assert!(group_norm(&op, &refs).is_err());
    }
}
