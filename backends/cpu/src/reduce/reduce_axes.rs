//! ReduceMax, ReduceMin, ReduceSum, ReduceMean, ReduceProd, ReduceL1, ReduceL2, ReduceLogSum,
//! ReduceLogSumExp, ReduceSumSquare.

use num_traits::{AsPrimitive, Bounded, ToPrimitive};
use xnpu_core::shape::normalize_axes;
use xnpu_core::{DType, Error, Num, Result, Tensor, Value};
use xnpu_ops::reduce::{Reduce, ReduceKind};

use xnpu_linalg::buf;

use super::{float_tensor, group_index};
use crate::args::{opt_tensor, tensor};

pub(super) fn run(op: &Reduce, inputs: &[Option<&Value>]) -> Result<Tensor> {
    let x = tensor(inputs, 0)?;
    let axes: Vec<i64> = match &op.axes {
        Some(a) => a.clone(),
        None => match opt_tensor(inputs, 1)? {
            Some(t) => t.to_i64_vec().map_err(|e| e.context("axes (input 1)"))?,
            None => vec![],
        },
    };
    let rank = x.rank();
    // With noop_with_empty_axes and no axes nothing is reduced, but each element still goes
    // through the reduction (ReduceSumSquare squares it, ReduceL1 takes its magnitude), as in
    // ONNX Runtime and onnx's reference.
    let reduced: Vec<bool> = if axes.is_empty() && op.noop_with_empty_axes {
        vec![false; rank]
    } else if axes.is_empty() {
        vec![true; rank]
    } else {
        let axes = normalize_axes(&axes, rank)?;
        (0..rank).map(|d| axes.contains(&d)).collect()
    };
    let shape = x.shape();
    let kept_shape: Vec<usize> = shape
        .iter()
        .zip(&reduced)
        .map(|(&d, &r)| if r { 1 } else { d })
        .collect();
    let out_shape: Vec<usize> = if op.keepdims {
        kept_shape
    } else {
        shape
            .iter()
            .zip(&reduced)
            .filter(|(_, &r)| !r)
            .map(|(&d, _)| d)
            .collect()
    };
    let (groups, n_groups) = group_index(shape, &reduced)?;
    // Saturating: it divides the groups' sums, and with at least one group the input's
    // element count (groups x count) bounds it; with none it is not used.
    let count: usize = shape
        .iter()
        .zip(&reduced)
        .filter(|(_, &r)| r)
        .fold(1usize, |a, (&d, _)| a.saturating_mul(d));
    let dtype = x.dtype();
    if dtype.is_float() {
        let v = x.to_f64_vec()?;
        let out = reduce_f64(op.kind, &v, &groups, n_groups, count)?;
        float_tensor(dtype, out_shape, &out)
    } else if dtype == DType::Bool {
        let v = x.to_vec::<bool>()?;
        let out = reduce_bool(op.kind, &v, &groups, n_groups)?;
        Tensor::from_vec(out_shape, out)
    } else {
        xnpu_core::with_int_type!(dtype, T => {
            let v = x.as_slice::<T>()?;
            let out: Vec<T> = reduce_int(op.kind, &v, &groups, n_groups, count)?;
            Tensor::from_vec(out_shape, out)
        }, _ => Err(Error::compute(format!(
            "{} is not defined for {dtype} tensors",
            op.kind.op_name()
        ))))
    }
}

/// Folds every element into its group's accumulator. The groups are the kept dims' product,
/// which an empty input can make anything (a `[2^40, 0]` input summed over its last axis
/// has 2^40 sums of nothing): allocated fallibly.
fn fold<T: Copy, A: Clone>(
    v: &[T],
    groups: &[usize],
    n_groups: usize,
    init: A,
    mut f: impl FnMut(&mut A, T),
) -> Result<Vec<A>> {
    let mut acc = buf::filled(n_groups, init, "a reduction's output")?;
    for (&x, &g) in v.iter().zip(groups) {
        f(&mut acc[g], x);
    }
    Ok(acc)
}

fn max_f64(v: &[f64], groups: &[usize], n_groups: usize) -> Result<Vec<f64>> {
    // NaN wins, like numpy's maximum.
    fold(v, groups, n_groups, f64::NEG_INFINITY, |a, x| {
        if x.is_nan() || x > *a {
            *a = x
        }
    })
}

fn reduce_f64(
    kind: ReduceKind,
    v: &[f64],
    groups: &[usize],
    n_groups: usize,
    count: usize,
) -> Result<Vec<f64>> {
    let sum = |f: fn(f64) -> f64| fold(v, groups, n_groups, 0.0, |a, x| *a += f(x));
    let map = |acc: Vec<f64>, f: &dyn Fn(f64) -> f64| -> Vec<f64> {
        let mut acc = acc;
        acc.iter_mut().for_each(|a| *a = f(*a));
        acc
    };
    Ok(match kind {
        ReduceKind::Max => max_f64(v, groups, n_groups)?,
        ReduceKind::Min => fold(v, groups, n_groups, f64::INFINITY, |a, x| {
            if x.is_nan() || x < *a {
                *a = x
            }
        })?,
        ReduceKind::Sum => sum(|x| x)?,
        ReduceKind::Mean => map(sum(|x| x)?, &|s| s / count as f64),
        ReduceKind::Prod => fold(v, groups, n_groups, 1.0, |a, x| *a *= x)?,
        ReduceKind::L1 => sum(f64::abs)?,
        ReduceKind::L2 => map(sum(|x| x * x)?, &f64::sqrt),
        ReduceKind::LogSum => map(sum(|x| x)?, &f64::ln),
        ReduceKind::LogSumExp => {
            // Shift by the largest finite element of each group so that exp cannot overflow.
            let shift = map(
                fold(v, groups, n_groups, f64::NEG_INFINITY, |a, x| {
                    if x.is_finite() && x > *a {
                        *a = x
                    }
                })?,
                &|m| if m.is_finite() { m } else { 0.0 },
            );
            let mut acc = buf::zeroed::<f64>(n_groups, "a reduction's output")?;
            for (&x, &g) in v.iter().zip(groups) {
                acc[g] += (x - shift[g]).exp();
            }
            acc.iter_mut()
                .zip(&shift)
                .for_each(|(s, m)| *s = s.ln() + m);
            acc
        }
        ReduceKind::SumSquare => sum(|x| x * x)?,
    })
}

fn reduce_bool(
    kind: ReduceKind,
    v: &[bool],
    groups: &[usize],
    n_groups: usize,
) -> Result<Vec<bool>> {
    match kind {
        ReduceKind::Max => fold(v, groups, n_groups, false, |a, x| *a |= x),
        ReduceKind::Min => fold(v, groups, n_groups, true, |a, x| *a &= x),
        _ => Err(Error::compute(format!(
            "{} is not defined for bool tensors",
            kind.op_name()
        ))),
    }
}

/// Integer reductions: sums and products wrap like the dtype's arithmetic (computed in i128,
/// whose wrap-around agrees with every narrower type's); Mean divides exactly and truncates
/// toward zero; L2, LogSum and LogSumExp go through f64 and truncate toward zero.
fn reduce_int<T>(
    kind: ReduceKind,
    v: &[T],
    groups: &[usize],
    n_groups: usize,
    count: usize,
) -> Result<Vec<T>>
where
    T: Num + ToPrimitive + Bounded,
    i128: AsPrimitive<T>,
{
    let wide = |x: T| x.to_i128().unwrap_or(0);
    let sum = |f: &dyn Fn(i128) -> i128| {
        fold(v, groups, n_groups, 0i128, |a, x| {
            *a = a.wrapping_add(f(wide(x)))
        })
    };
    const WHAT: &str = "a reduction's output";
    let narrow = |acc: Result<Vec<i128>>| buf::collected(acc?.into_iter().map(|a| a.as_()), WHAT);
    let via_f64 = |acc: Vec<f64>| buf::collected(acc.into_iter().map(T::from_f64), WHAT);
    match kind {
        ReduceKind::Max => fold(v, groups, n_groups, T::min_value(), |a, x| {
            if x > *a {
                *a = x
            }
        }),
        ReduceKind::Min => fold(v, groups, n_groups, T::max_value(), |a, x| {
            if x < *a {
                *a = x
            }
        }),
        ReduceKind::Sum => narrow(sum(&|x| x)),
        ReduceKind::Mean => narrow(sum(&|x| x).map(|mut acc| {
            acc.iter_mut()
                .for_each(|s| *s = if count == 0 { 0 } else { *s / count as i128 });
            acc
        })),
        ReduceKind::Prod => narrow(fold(v, groups, n_groups, 1i128, |a, x| {
            *a = a.wrapping_mul(wide(x))
        })),
        ReduceKind::L1 => narrow(sum(&|x| x.wrapping_abs())),
        ReduceKind::SumSquare => narrow(sum(&|x| x.wrapping_mul(x))),
        ReduceKind::L2 | ReduceKind::LogSum | ReduceKind::LogSumExp => {
            let f = buf::collected(v.iter().map(|&x| x.to_f64()), "the input as f64")?;
            via_f64(reduce_f64(kind, &f, groups, n_groups, count)?)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reduce(kind: ReduceKind, x: Tensor, axes: &[i64], keepdims: bool) -> Result<Tensor> {
        let op = Reduce {
            kind,
            axes: Some(axes.to_vec()),
            keepdims,
            noop_with_empty_axes: false,
        };
        run(&op, &[Some(&Value::Tensor(x))])
    }

    #[test]
    fn noop_with_empty_axes_still_transforms_each_element() {
        let x = || Tensor::from_vec(vec![3], vec![-0.5f32, 2., 3.]).unwrap();
        let noop = |kind| Reduce {
            kind,
            axes: None,
            keepdims: true,
            noop_with_empty_axes: true,
        };
        let run1 = |kind| {
            run(&noop(kind), &[Some(&Value::Tensor(x()))])
                .unwrap()
                .to_vec::<f32>()
                .unwrap()
        };
        assert_eq!(run1(ReduceKind::SumSquare), vec![0.25, 4., 9.]);
        assert_eq!(run1(ReduceKind::L1), vec![0.5, 2., 3.]);
        assert_eq!(run1(ReduceKind::Sum), vec![-0.5, 2., 3.]);
        assert_eq!(
            run(&noop(ReduceKind::Max), &[Some(&Value::Tensor(x()))])
                .unwrap()
                .shape(),
            &[3]
        );
    }

    #[test]
    fn sum_over_one_axis_drops_it_without_keepdims() {
        let x = Tensor::from_vec(vec![2, 3], vec![1f32, 2., 3., 4., 5., 6.]).unwrap();
        let y = reduce(ReduceKind::Sum, x, &[1], false).unwrap();
        assert_eq!(y.shape(), &[2]);
        assert_eq!(y.to_vec::<f32>().unwrap(), vec![6., 15.]);
    }

    #[test]
    fn min_of_an_empty_set_is_the_highest_value() {
        let x = Tensor::from_vec(vec![2, 0], Vec::<f32>::new()).unwrap();
        let y = reduce(ReduceKind::Min, x, &[1], true).unwrap();
        assert_eq!(y.shape(), &[2, 1]);
        assert_eq!(y.to_vec::<f32>().unwrap(), vec![f32::INFINITY; 2]);
        let x = Tensor::from_vec(vec![0], Vec::<i32>::new()).unwrap();
        let y = reduce(ReduceKind::Min, x, &[0], false).unwrap();
        assert_eq!(y.to_vec::<i32>().unwrap(), vec![i32::MAX]);
    }

    #[test]
    fn integer_sums_wrap_like_the_dtype() {
        let x = Tensor::from_vec(vec![2], vec![100i8, 100]).unwrap();
        let y = reduce(ReduceKind::Sum, x, &[], false).unwrap();
        assert_eq!(y.to_vec::<i8>().unwrap(), vec![-56]);
    }

    #[test]
    fn log_sum_exp_does_not_overflow() {
        let x = Tensor::from_vec(vec![2], vec![1000f64, 1000.]).unwrap();
        let y = reduce(ReduceKind::LogSumExp, x, &[0], false).unwrap();
        let v = y.to_vec::<f64>().unwrap()[0];
        assert!((v - (1000.0 + 2f64.ln())).abs() < 1e-9);
    }

    #[test]
    fn bool_max_is_any() {
        let x = Tensor::from_vec(vec![2, 2], vec![true, false, false, false]).unwrap();
        let y = reduce(ReduceKind::Max, x, &[1], false).unwrap();
        assert_eq!(y.to_vec::<bool>().unwrap(), vec![true, false]);
    }

    #[test]
    fn repeated_axis_is_an_error() {
        let x = Tensor::from_vec(vec![2, 2], vec![1f32; 4]).unwrap();
        assert!(reduce(ReduceKind::Sum, x, &[0, -2], true).is_err());
    }
}
