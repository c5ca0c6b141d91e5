//! The kernels of this family that compute values: Range, CumSum/CumProd and TopK.

use xnpu_core::num::total_order;
use xnpu_core::shape::checked_numel;
use xnpu_core::shape::normalize_axis;
use xnpu_core::{DType, Error, Num, Result, Tensor, Value};
use xnpu_ops::tensor::{CumKind, Cumulative, Range, TopK};

use super::elems::{scalar_int, try_vec};
use crate::args::tensor;

pub(crate) fn range(inputs: &[Option<&Value>]) -> Result<Tensor> {
    let ts = [tensor(inputs, 0)?, tensor(inputs, 1)?, tensor(inputs, 2)?];
    let dtype = ts[0].dtype();
    if ts.iter().any(|t| t.dtype() != dtype || t.len() != 1) {
        return Err(Error::compute(format!(
            "Range: start, limit and delta must be one-element tensors of one dtype, got {:?}",
            ts.iter()
                .map(|t| (t.dtype(), t.shape().to_vec()))
                .collect::<Vec<_>>()
        )));
    }
    if dtype.is_int() {
        let v: Vec<i64> = ts
            .iter()
            .map(|t| scalar_int(t, "Range"))
            .collect::<Result<_>>()?;
        let n = Range::count_int(v[0], v[1], v[2])
            .ok_or_else(|| Error::compute("Range: delta must not be 0"))?;
        let n = usize::try_from(n)
            .map_err(|_| Error::compute(format!("Range: {n} elements is too many")))?;
        checked_numel(&[n, 8])?;
        return xnpu_core::with_int_type!(dtype, T => {
            let mut vals: Vec<T> = try_vec(n, dtype)?;
            for i in 0..n {
                let x = i128::from(v[0]) + i as i128 * i128::from(v[2]);
                vals.push(T::try_from(x).map_err(|_| Error::compute(format!("Range: {x} does not fit in {dtype}")))?);
            }
            Tensor::from_vec(vec![n], vals)
        }, _ => unreachable!("integer dtype"));
    }
    let v: Vec<f64> = ts
        .iter()
        .map(|t| t.to_f64_vec().map(|x| x[0]))
        .collect::<Result<_>>()?;
    let n = Range::count_f64(v[0], v[1], v[2])
        .filter(|&n| n < (1u64 << 53) as f64)
        .ok_or_else(|| {
            Error::compute(format!(
                "Range: start {}, limit {}, delta {} do not give a finite count",
                v[0], v[1], v[2]
            ))
        })? as usize;
    checked_numel(&[n, 8])?;
    xnpu_core::with_float_type!(dtype, T => {
        let mut vals: Vec<T> = try_vec(n, dtype)?;
        vals.extend((0..n).map(|i| T::from_f64(v[0] + i as f64 * v[2])));
        Tensor::from_vec(vec![n], vals)
    }, _ => Err(Error::compute(format!("Range: unsupported dtype {dtype}"))))
}

pub(crate) fn cumulative(op: &Cumulative, inputs: &[Option<&Value>]) -> Result<Tensor> {
    let x = tensor(inputs, 0)?;
    let a = normalize_axis(scalar_int(tensor(inputs, 1)?, "axis")?, x.rank())?;
    let d = x.shape()[a];
    // An empty input has nothing to add up (and its other dims may multiply past usize).
    let (outer, inner) = if x.is_empty() {
        (0, 0)
    } else {
        (
            x.shape()[..a].iter().product(),
            x.shape()[a + 1..].iter().product(),
        )
    };
    xnpu_core::with_numeric_type!(x.dtype(), T => {
        let src = x.as_slice::<T>()?;
        let mut out: Vec<T> = try_vec(src.len(), x.dtype())?;
        out.resize(src.len(), T::default());
        let start = match op.kind { CumKind::Sum => T::ZERO, CumKind::Prod => T::ONE };
        for o in 0..outer {
            for i in 0..inner {
                let mut acc = start;
                for step in 0..d {
                    let j = if op.reverse { d - 1 - step } else { step };
                    let p = (o * d + j) * inner + i;
                    let v = src[p];
                    let next = match op.kind { CumKind::Sum => acc.plus(v), CumKind::Prod => acc.times(v) };
                    out[p] = if op.exclusive { acc } else { next };
                    acc = next;
                }
            }
        }
        Tensor::from_vec(x.shape().to_vec(), out)
    }, _ => Err(Error::compute(format!("{}: needs numbers, got {}", op_name(op), x.dtype()))))
}

fn op_name(op: &Cumulative) -> &'static str {
    match op.kind {
        CumKind::Sum => "CumSum",
        CumKind::Prod => "CumProd",
    }
}

pub(crate) fn top_k(op: &TopK, inputs: &[Option<&Value>]) -> Result<Vec<Value>> {
    let x = tensor(inputs, 0)?;
    let a = normalize_axis(op.axis, x.rank())?;
    let k = match op.k {
        Some(k) => k,
        None => scalar_int(tensor(inputs, 1)?, "TopK: k")?,
    };
    let d = x.shape()[a];
    let k = usize::try_from(k).ok().filter(|&k| k <= d).ok_or_else(|| {
        Error::compute(format!(
            "TopK: k = {k} must lie in [0, {d}] (the axis length)"
        ))
    })?;
    // As in CumSum: an empty input has no rows to sort.
    let (outer, inner) = if x.is_empty() {
        (0, 0)
    } else {
        (
            x.shape()[..a].iter().product(),
            x.shape()[a + 1..].iter().product(),
        )
    };
    let mut dims = x.shape().to_vec();
    dims[a] = k;
    let n = checked_numel(&dims)?;
    let mut indices: Vec<i64> = try_vec(n, DType::I64)?;
    indices.resize(n, 0);
    let values = xnpu_core::with_numeric_type!(x.dtype(), T => {
        let src = x.as_slice::<T>()?;
        let mut vals: Vec<T> = try_vec(n, x.dtype())?;
        vals.resize(n, T::default());
        // The axis of an empty input may be any length: room only for rows that exist.
        let rows = if outer * inner == 0 { 0 } else { d };
        let mut order: Vec<usize> = xnpu_linalg::buf::reserved(rows, "TopK's order")?;
        for o in 0..outer {
            for i in 0..inner {
                let at = |j: usize| src[(o * d + j) * inner + i];
                order.clear();
                order.extend(0..d);
                // Stable: equal values keep the lower index first.
                order.sort_by(|&p, &q| {
                    let c = total_order(&at(p), &at(q));
                    if op.largest { c.reverse() } else { c }
                });
                for (r, &j) in order.iter().take(k).enumerate() {
                    let p = (o * k + r) * inner + i;
                    vals[p] = at(j);
                    indices[p] = j as i64;
                }
            }
        }
        Tensor::from_vec(dims.clone(), vals)?
    }, _ => return Err(Error::compute(format!("TopK: needs numbers, got {}", x.dtype()))));
    Ok(vec![
        Value::Tensor(values),
        Value::Tensor(Tensor::from_vec(dims, indices)?),
    ])
}

#[cfg(test)]
mod tests {
    use super::super::elems::run_test;
    use super::*;

    fn t<T: xnpu_core::Elem>(dims: &[usize], v: Vec<T>) -> Option<Tensor> {
        Some(Tensor::from_vec(dims.to_vec(), v).unwrap())
    }

    #[test]
    fn top_k_keeps_lower_index_first_on_ties() {
        let x = t(&[5], vec![1.0f32, 3.0, 3.0, f32::NAN, 0.0]);
        let op = TopK {
            axis: 0,
            largest: true,
            sorted: true,
            k: None,
        };
        let out = run_test(|i| top_k(&op, i), vec![x.clone(), t(&[1], vec![3i64])]).unwrap();
        let idx = out[1].as_tensor().unwrap().to_vec::<i64>().unwrap();
        assert_eq!(idx, vec![3, 1, 2]);
        let small = TopK {
            largest: false,
            ..op
        };
        let out = run_test(|i| top_k(&small, i), vec![x.clone(), t(&[1], vec![2i64])]).unwrap();
        assert_eq!(
            out[1].as_tensor().unwrap().to_vec::<i64>().unwrap(),
            vec![4, 0]
        );
        assert!(run_test(|i| top_k(&small, i), vec![x, t(&[1], vec![6i64])]).is_err());
    }

    #[test]
    fn cumulative_exclusive_reverse() {
        let x = t(&[4], vec![1i64, 2, 3, 4]);
        let op = Cumulative {
            kind: CumKind::Prod,
            exclusive: true,
            reverse: true,
        };
        let y = run_test(|i| cumulative(&op, i), vec![x, t(&[], vec![0i32])]).unwrap();
        assert_eq!(y.to_vec::<i64>().unwrap(), vec![24, 12, 4, 1]);
    }

    #[test]
    fn range_counts_and_refuses_zero_delta() {
        let s = |v: i32| t(&[], vec![v]);
        let y = run_test(range, vec![s(10), s(4), s(-2)]).unwrap();
        assert_eq!(y.to_vec::<i32>().unwrap(), vec![10, 8, 6]);
        assert!(run_test(range, vec![s(0), s(4), s(0)]).is_err());
        let f = |v: f32| t(&[], vec![v]);
        assert!(run_test(range, vec![f(0.0), f(f32::INFINITY), f(1.0)]).is_err());
        assert!(run_test(range, vec![f(0.0), f(1e15), f(1.0)]).is_err());
        let y = run_test(range, vec![f(1.0), f(2.0), f(0.25)]).unwrap();
        assert_eq!(y.to_vec::<f32>().unwrap(), vec![1.0, 1.25, 1.5, 1.75]);
    }
}
