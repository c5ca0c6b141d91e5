//! ArgMax and ArgMin.

use xnpu_core::shape::normalize_axis;
use xnpu_core::{Elem, Error, Result, Tensor, Value};
use xnpu_ops::reduce::{ArgKind, ArgReduce};

use super::split_at_axis;
use crate::args::tensor;

pub(super) fn run(op: &ArgReduce, inputs: &[Option<&Value>]) -> Result<Tensor> {
    let x = tensor(inputs, 0)?;
    let rank = x.rank();
    let axis = normalize_axis(op.axis, rank)?;
    let shape = x.shape();
    let (outer, n, inner) = split_at_axis(shape, axis)?;
    let n_out = outer.checked_mul(inner).ok_or_else(|| {
        Error::compute(format!(
            "the output of dims {shape:?} less axis {axis} has more than usize::MAX elements"
        ))
    })?;
    if n == 0 && n_out > 0 {
        return Err(Error::compute(format!(
            "cannot take the index of an extreme along axis {axis}, which has size 0"
        )));
    }
    let mut out_shape = shape.to_vec();
    if rank > 0 {
        if op.keepdims {
            out_shape[axis] = 1;
        } else {
            out_shape.remove(axis);
        }
    }
    let dtype = x.dtype();
    let idx = xnpu_core::with_numeric_type!(dtype, T => {
        let v = x.as_slice::<T>()?;
        arg_extreme(&v, outer, n, inner, op.kind, op.select_last_index)?
    }, _ => return Err(Error::compute(format!(
        "ArgMax/ArgMin are not defined for {dtype} tensors"
    ))));
    Tensor::from_vec(out_shape, idx)
}

/// The index along the middle dim of each (outer, inner) slice of the extreme element. NaN
/// (unordered with itself) counts as the extreme, as in numpy.
fn arg_extreme<T: Elem + PartialOrd>(
    v: &[T],
    outer: usize,
    n: usize,
    inner: usize,
    kind: ArgKind,
    last: bool,
) -> Result<Vec<i64>> {
    let is_nan = |x: T| x.partial_cmp(&x).is_none();
    let better = |x: T, b: T| match kind {
        ArgKind::Max => x > b,
        ArgKind::Min => x < b,
    };
    // The caller checked outer * inner; with no elements nothing is looked at (an empty
    // input's outer dims may be anything).
    let mut out = xnpu_linalg::buf::reserved(outer * inner, "ArgMax/ArgMin's output")?;
    if v.is_empty() {
        return Ok(out);
    }
    for o in 0..outer {
        for i in 0..inner {
            let at = |k: usize| v[(o * n + k) * inner + i];
            let mut best = 0usize;
            for k in 1..n {
                let (x, b) = (at(k), at(best));
                let take = if is_nan(b) {
                    last && is_nan(x)
                } else {
                    is_nan(x) || better(x, b) || (last && x == b)
                };
                if take {
                    best = k;
                }
            }
            out.push(best as i64);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arg(kind: ArgKind, last: bool, keepdims: bool) -> Tensor {
        let x = Tensor::from_vec(vec![2, 3], vec![1f32, 5., 5., 2., 0., 0.]).unwrap();
        let op = ArgReduce {
            kind,
            axis: -1,
            keepdims,
            select_last_index: last,
        };
        run(&op, &[Some(&Value::Tensor(x))]).unwrap()
    }

    #[test]
    fn ties_go_to_the_first_or_last_index() {
        assert_eq!(
            arg(ArgKind::Max, false, true).to_vec::<i64>().unwrap(),
            vec![1, 0]
        );
        assert_eq!(
            arg(ArgKind::Max, true, true).to_vec::<i64>().unwrap(),
            vec![2, 0]
        );
        assert_eq!(
            arg(ArgKind::Min, true, false).to_vec::<i64>().unwrap(),
            vec![0, 2]
        );
        assert_eq!(arg(ArgKind::Min, false, false).shape(), &[2]);
    }

    #[test]
    fn empty_axis_is_an_error() {
        let x = Tensor::from_vec(vec![2, 0], Vec::<f32>::new()).unwrap();
        let op = ArgReduce {
            kind: ArgKind::Max,
            axis: 1,
            keepdims: true,
            select_last_index: false,
        };
        assert!(run(&op, &[Some(&Value::Tensor(x))]).is_err());
    }
}
