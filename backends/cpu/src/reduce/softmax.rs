//! Softmax, LogSoftmax and Hardmax.

use xnpu_core::num::round_to;
use xnpu_core::shape::{checked_numel, normalize_axis};
use xnpu_core::{DType, Error, Result, Tensor, Value};
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
    // f16 and bf16: each step rounded to the dtype, as the reference computes in NumPy (an
    // f64 Softmax rounded once differs from it by a step in some probabilities).
    let half = matches!(x.dtype(), DType::F16 | DType::Bf16) && op.kind == SoftmaxKind::Softmax;
    let mut slice = Vec::with_capacity(n);
    for o in 0..outer {
        for i in 0..inner {
            let at = |k: usize| (o * n + k) * inner + i;
            slice.clear();
            slice.extend((0..n).map(|k| v[at(k)]));
            if half {
                rounded_rows(&mut slice, n, x.dtype());
                for (k, &y) in slice.iter().enumerate() {
                    out[at(k)] = y;
                }
                continue;
            }
            let y = apply(op.kind, &slice);
            for (k, y) in y.into_iter().enumerate() {
                out[at(k)] = y;
            }
        }
    }
    float_tensor(x.dtype(), shape.to_vec(), &out)
}

/// Softmax over each row of `s` values, `exp(x - max) / sum`, each step rounded to `dtype`,
/// as ONNX's reference implementation computes it in NumPy on arrays of that dtype (the
/// Softmax op on f16 and bf16, FlexAttention). A row of all -inf is NaN, as in the
/// reference. NumPy sums bfloat16 (ml_dtypes) one
/// element at a time, rounding each partial sum; float16 and wider in float, rounded once.
pub(crate) fn rounded_rows(scores: &mut [f64], s: usize, dtype: DType) {
    let r = |x: f64| round_to(dtype, x);
    let stepwise = dtype == DType::Bf16;
    for row in scores.chunks_exact_mut(s.max(1)) {
        let m = row.iter().copied().fold(f64::NEG_INFINITY, |m, x| {
            if x.is_nan() || m.is_nan() {
                f64::NAN
            } else {
                m.max(x)
            }
        });
        let mut sum = 0.0;
        for x in row.iter_mut() {
            *x = r(r(*x - m).exp());
            sum = if stepwise { r(sum + *x) } else { sum + *x };
        }
        let sum = r(sum);
        for x in row.iter_mut() {
            *x = r(*x / sum);
        }
    }
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

    /// f16 and bf16 round every step as the reference does in NumPy (`x - max`, `exp`, the
    /// sum, the division): these are its outputs for x = [0.5, 1.25, -2, 3, 0.1, 0.7]; an f64
    /// softmax rounded once differs in 4 of the 6 f16 values and 5 of the 6 bf16 ones.
    #[test]
    fn half_precision_softmax_rounds_each_step_as_the_reference() {
        let x = [0.5f32, 1.25, -2.0, 3.0, 0.1, 0.7];
        let op = Softmax {
            kind: SoftmaxKind::Softmax,
            axis: -1,
            coerce_2d: false,
        };
        let f16 = Tensor::from_vec(vec![6], x.map(half::f16::from_f32).to_vec()).unwrap();
        let y = run(&op, &[Some(&Value::Tensor(f16))]).unwrap();
        let want = [
            0.057891845703125,
            0.12261962890625,
            0.004749298095703125,
            0.705078125,
            0.038787841796875,
            0.07061767578125,
        ];
        assert_eq!(y.to_f64_vec().unwrap(), want);
        let bf16 = Tensor::from_vec(vec![6], x.map(half::bf16::from_f32).to_vec()).unwrap();
        let y = run(&op, &[Some(&Value::Tensor(bf16))]).unwrap();
        let want = [
            0.0576171875,
            0.1220703125,
            0.004730224609375,
            0.703125,
            0.03857421875,
            0.07080078125,
        ];
        assert_eq!(y.to_f64_vec().unwrap(), want);
    }

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
