//! Softmax, LogSoftmax and Hardmax.

use xnpu_core::shape::{checked_numel, normalize_axis};
use xnpu_core::{Error, Result, Tensor, Value};
use xnpu_ops::reduce::{Softmax, SoftmaxKind};

use super::{float_tensor, split_at_axis};
use crate::args::{floats, tensor};

pub(super) fn run(op: &Softmax, inputs: &[Option<&Value>]) -> Result<Tensor> {
    let x = tensor(inputs, 0)?;
    let shape = x.shape();
    let rank = shape.len();
    let (outer, n, inner) = if op.coerce_2d {
        // [d0 * .. * d(axis-1), d(axis) * .. * dn]; axis may equal the rank.
        let r = rank as i64;
        if op.axis < -r || op.axis > r {
            return Err(Error::compute(format!(
                "axis {} is out of range for rank {rank}",
                op.axis
            )));
        }
        let axis = if op.axis < 0 { op.axis + r } else { op.axis } as usize;
        let rows = checked_numel(&shape[..axis])?;
        (rows, checked_numel(&shape[axis..])?, 1)
    } else {
        split_at_axis(shape, normalize_axis(op.axis, rank)?)?
    };
    let v = floats(x, "the input")?;
    if v.is_empty() {
        // No slice to normalise (an empty input's other dims may be anything).
        return float_tensor(x.dtype(), shape.to_vec(), &[]);
    }
    let mut out = xnpu_linalg::buf::zeroed::<f64>(v.len(), "Softmax's output")?;
    let mut slice = Vec::with_capacity(n);
    for o in 0..outer {
        for i in 0..inner {
            let at = |k: usize| (o * n + k) * inner + i;
            slice.clear();
            slice.extend((0..n).map(|k| v[at(k)]));
            let y = apply(op.kind, &slice);
            for (k, y) in y.into_iter().enumerate() {
                out[at(k)] = y;
            }
        }
    }
    float_tensor(x.dtype(), shape.to_vec(), &out)
}

/// The op on one slice.
pub(super) fn apply(kind: SoftmaxKind, s: &[f64]) -> Vec<f64> {
    if s.is_empty() {
        return vec![];
    }
    let max = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    match kind {
        SoftmaxKind::Softmax => {
            let e: Vec<f64> = s.iter().map(|x| (x - max).exp()).collect();
            let sum: f64 = e.iter().sum();
            e.into_iter().map(|x| x / sum).collect()
        }
        SoftmaxKind::LogSoftmax => {
            let log_sum = s.iter().map(|x| (x - max).exp()).sum::<f64>().ln();
            s.iter().map(|x| x - max - log_sum).collect()
        }
        SoftmaxKind::Hardmax => {
            // The first largest element (or the first NaN), as numpy's argmax picks it.
            let mut best = 0;
            for (k, &x) in s.iter().enumerate() {
                let b = s[best];
                if !b.is_nan() && (x.is_nan() || x > b) {
                    best = k;
                }
            }
            (0..s.len())
                .map(|k| if k == best { 1.0 } else { 0.0 })
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_of_large_numbers_is_finite() {
        let y = apply(SoftmaxKind::Softmax, &[1000.0, 1000.0]);
        assert_eq!(y, vec![0.5, 0.5]);
        let y = apply(SoftmaxKind::LogSoftmax, &[0.0, 0.0]);
        assert!((y[0] + 2f64.ln()).abs() < 1e-12);
    }

    #[test]
    fn hardmax_marks_the_first_largest() {
        assert_eq!(
            apply(SoftmaxKind::Hardmax, &[1.0, 3.0, 3.0]),
            vec![0.0, 1.0, 0.0]
        );
    }

    #[test]
    fn coerced_softmax_runs_over_the_flattened_tail() {
        let x = Tensor::from_vec(vec![1, 2, 2], vec![0f32; 4]).unwrap();
        let op = Softmax {
            kind: SoftmaxKind::Softmax,
            axis: 1,
            coerce_2d: true,
        };
        let y = run(&op, &[Some(&Value::Tensor(x))]).unwrap();
        assert_eq!(y.to_vec::<f32>().unwrap(), vec![0.25; 4]);
    }
}
