//! LpNormalization, LRN and MeanVarianceNormalization.

use xnpu_core::shape::normalize_axes;
use xnpu_core::shape::normalize_axis;
use xnpu_core::{Error, Result, Tensor, Value};
use xnpu_ops::reduce::{LpNormalization, Lrn, MeanVarianceNormalization};

use xnpu_linalg::buf;

use super::{float_tensor, group_index, split_at_axis};
use crate::args::{floats, tensor};

pub(super) fn lp_norm(op: &LpNormalization, inputs: &[Option<&Value>]) -> Result<Tensor> {
    let x = tensor(inputs, 0)?;
    let shape = x.shape();
    let axis = normalize_axis(op.axis, shape.len())?;
    let (outer, n, inner) = split_at_axis(shape, axis)?;
    let v = floats(x, "the input")?;
    // No slice of an empty input to normalise (its other dims may be anything).
    let outer = if v.is_empty() { 0 } else { outer };
    let mut y = buf::zeroed::<f64>(v.len(), "LpNormalization's output")?;
    for o in 0..outer {
        for i in 0..inner {
            let at = |k: usize| (o * n + k) * inner + i;
            let norm = match op.p {
                1 => (0..n).map(|k| v[at(k)].abs()).sum::<f64>(),
                2 => (0..n).map(|k| v[at(k)] * v[at(k)]).sum::<f64>().sqrt(),
                p => {
                    return Err(Error::compute(format!(
                        "LpNormalization supports p = 1 or 2, got {p}"
                    )))
                }
            };
            for k in 0..n {
                y[at(k)] = if norm == 0.0 { 0.0 } else { v[at(k)] / norm };
            }
        }
    }
    float_tensor(x.dtype(), shape.to_vec(), &y)
}

pub(super) fn lrn(op: &Lrn, inputs: &[Option<&Value>]) -> Result<Tensor> {
    let x = tensor(inputs, 0)?;
    let shape = x.shape();
    if shape.len() < 2 {
        return Err(Error::compute(format!(
            "LRN needs an input of shape [N, C, ...], got {shape:?}"
        )));
    }
    if op.size == 0 {
        return Err(Error::compute("LRN size must be at least 1, got 0"));
    }
    let (outer, c, inner) = split_at_axis(shape, 1)?;
    let v = floats(x, "X")?;
    let outer = if v.is_empty() { 0 } else { outer };
    let before = (op.size - 1) / 2;
    let after = op.size / 2; // ceil((size - 1) / 2)
    let (alpha, beta, bias) = (op.alpha as f64, op.beta as f64, op.bias as f64);
    let mut y = buf::zeroed::<f64>(v.len(), "LRN's output")?;
    for o in 0..outer {
        for ch in 0..c {
            let lo = ch.saturating_sub(before);
            let hi = ch.saturating_add(after).min(c - 1);
            for i in 0..inner {
                let at = |k: usize| (o * c + k) * inner + i;
                let square_sum: f64 = (lo..=hi).map(|k| v[at(k)] * v[at(k)]).sum();
                y[at(ch)] = v[at(ch)] / (bias + alpha / op.size as f64 * square_sum).powf(beta);
            }
        }
    }
    float_tensor(x.dtype(), shape.to_vec(), &y)
}

pub(super) fn mvn(op: &MeanVarianceNormalization, inputs: &[Option<&Value>]) -> Result<Tensor> {
    let x = tensor(inputs, 0)?;
    let shape = x.shape();
    let axes = normalize_axes(&op.axes, shape.len())?;
    let reduced: Vec<bool> = (0..shape.len()).map(|d| axes.contains(&d)).collect();
    let (groups, n_groups) = group_index(shape, &reduced)?;
    let v = floats(x, "X")?;
    // Saturating: with any group, the input's element count bounds it.
    let count: usize = axes.iter().fold(1usize, |a, &d| a.saturating_mul(shape[d]));
    let mut sum = buf::zeroed::<f64>(n_groups, "MeanVarianceNormalization's sums")?;
    let mut sum_sq = buf::zeroed::<f64>(n_groups, "MeanVarianceNormalization's sums")?;
    for (&x, &g) in v.iter().zip(&groups) {
        sum[g] += x;
        sum_sq[g] += x * x;
    }
    let y = buf::collected(
        v.iter().zip(&groups).map(|(&x, &g)| {
            let mean = sum[g] / count as f64;
            let var = sum_sq[g] / count as f64 - mean * mean;
            (x - mean) / (var.max(0.0).sqrt() + 1e-9)
        }),
        "MeanVarianceNormalization's output",
    )?;
    float_tensor(x.dtype(), shape.to_vec(), &y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lp_norm_of_a_zero_slice_is_zero() {
        let x = Tensor::from_vec(vec![2, 2], vec![3f32, 4., 0., 0.]).unwrap();
        let op = LpNormalization { axis: 1, p: 2 };
        let y = lp_norm(&op, &[Some(&Value::Tensor(x))]).unwrap();
        assert_eq!(y.to_vec::<f32>().unwrap(), vec![0.6, 0.8, 0.0, 0.0]);
    }

    #[test]
    fn lrn_sums_squares_over_neighbouring_channels() {
        let x = Tensor::from_vec(vec![1, 3, 1, 1], vec![1f32, 2., 3.]).unwrap();
        let op = Lrn {
            alpha: 3.0,
            beta: 1.0,
            bias: 0.0,
            size: 3,
        };
        let y = lrn(&op, &[Some(&Value::Tensor(x))]).unwrap();
        // channel 1 sees 1 + 4 + 9 = 14.
        assert!((y.to_vec::<f32>().unwrap()[1] - 2.0 / 14.0).abs() < 1e-6);
    }

    #[test]
    fn mvn_rejects_axes_out_of_range() {
        let x = Tensor::from_vec(vec![2, 2], vec![1f32; 4]).unwrap();
        let op = MeanVarianceNormalization {
            axes: vec![0, 2, 3],
        };
        assert!(mvn(&op, &[Some(&Value::Tensor(x))]).is_err());
    }
}
