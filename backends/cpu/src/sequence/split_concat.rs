//! SplitToSequence and ConcatFromSequence: moving blocks of a tensor along one axis.

use xnpu_core::shape::checked_numel;
use xnpu_core::{DType, Error, Result, Tensor, Value};
use xnpu_linalg::buf;
use xnpu_ops::sequence::{ConcatFromSequence, SplitToSequence};

use super::tensor_elem;
use crate::args::{opt_tensor, tensor};

/// Resolves an axis in `[-rank, rank-1]` (or `[-rank, rank]` with `one_more`).
fn resolve_axis(axis: i64, rank: usize, one_more: bool) -> Result<usize> {
    let r = rank as i64 + one_more as i64;
    if axis < -r || axis >= r {
        return Err(Error::compute(format!(
            "axis {axis} is out of range for rank {rank} (expected [{}, {}])",
            -r,
            r - 1
        )));
    }
    Ok(if axis < 0 { axis + r } else { axis } as usize)
}

/// The data of `t` cut along an axis seen as `[outer, dim, inner]` into consecutive pieces of
/// `sizes` (which add up to `dim`). An empty `t` may have any `outer` and any number of
/// pieces: the pieces are allocated fallibly and no loop walks rows of nothing.
fn split_data<T: Clone>(
    data: &[T],
    outer: usize,
    dim: usize,
    inner: usize,
    sizes: &[usize],
) -> Result<Vec<Vec<T>>> {
    let mut pieces = buf::reserved(sizes.len(), "SplitToSequence's items")?;
    let mut start = 0;
    for &len in sizes {
        // A share of `data`, so no overflow once `data` is not empty.
        let n = if data.is_empty() {
            0
        } else {
            outer * len * inner
        };
        let mut piece = buf::reserved(n, "an item of SplitToSequence")?;
        if n > 0 {
            for o in 0..outer {
                let base = (o * dim + start) * inner;
                piece.extend_from_slice(&data[base..base + len * inner]);
            }
        }
        pieces.push(piece);
        start += len;
    }
    Ok(pieces)
}

/// The data of blocks `[outer, dims[k], inner]` joined along the middle axis; `n` (their
/// count of values, checked by the caller) is allocated fallibly, and nothing is walked when
/// it is 0 (`outer` may then be anything).
fn concat_data<T: Clone>(
    parts: &[&[T]],
    n: usize,
    outer: usize,
    dims: &[usize],
    inner: usize,
) -> Result<Vec<T>> {
    let mut out = buf::reserved(n, "ConcatFromSequence's output")?;
    if n > 0 {
        for o in 0..outer {
            for (part, &d) in parts.iter().zip(dims) {
                out.extend_from_slice(&part[o * d * inner..(o + 1) * d * inner]);
            }
        }
    }
    Ok(out)
}

pub(super) fn split_to_sequence(op: &SplitToSequence, inputs: &[Option<&Value>]) -> Result<Value> {
    let x = tensor(inputs, 0)?;
    let shape = x.shape();
    let axis = resolve_axis(op.axis, shape.len(), false)?;
    let dim = shape[axis];
    let split = opt_tensor(inputs, 1)?;
    // One item per piece: an empty input's axis may hold any number of them.
    let sizes: Vec<usize> = match split {
        None => buf::filled(dim, 1, "SplitToSequence's items")?,
        Some(s) if s.rank() == 0 => {
            let k = s.to_i64_vec()?[0];
            if k <= 0 {
                return Err(Error::compute(format!(
                    "a scalar split must be positive, got {k}"
                )));
            }
            let k = k as usize;
            let mut sizes = buf::filled(dim / k, k, "SplitToSequence's items")?;
            if dim % k != 0 {
                sizes.push(dim % k);
            }
            sizes
        }
        Some(s) if s.rank() == 1 => {
            let v = s.to_i64_vec()?;
            if let Some(bad) = v.iter().find(|&&k| k < 0) {
                return Err(Error::compute(format!(
                    "split sizes must be >= 0, got {bad} in {v:?}"
                )));
            }
            let sum = v.iter().try_fold(0i64, |a, &k| a.checked_add(k));
            if sum != Some(dim as i64) {
                return Err(Error::compute(format!(
                    "split sizes {v:?} must add up to the size {dim} of axis {axis}"
                )));
            }
            buf::collected(v.iter().map(|&k| k as usize), "SplitToSequence's items")?
        }
        Some(s) => {
            return Err(Error::compute(format!(
                "split must be a scalar or 1-D, got shape {:?}",
                s.shape()
            )))
        }
    };
    let squeeze = split.is_none() && !op.keepdims;
    let outer = checked_numel(&shape[..axis])?;
    let inner = checked_numel(&shape[axis + 1..])?;
    let piece_shape = |len: usize| {
        let mut s = shape.to_vec();
        if squeeze {
            s.remove(axis);
        } else {
            s[axis] = len;
        }
        s
    };
    const ITEMS: &str = "SplitToSequence's items";
    let items: Vec<Tensor> = if x.dtype() == DType::String {
        let pieces = split_data(x.strings()?, outer, dim, inner, &sizes)?;
        buf::try_collected(
            sizes.len(),
            pieces
                .into_iter()
                .zip(&sizes)
                .map(|(p, &len)| Tensor::from_strings(piece_shape(len), p)),
            ITEMS,
        )?
    } else {
        xnpu_core::with_pod_type!(x.dtype(), T => {
            let pieces = split_data(&x.as_slice::<T>()?, outer, dim, inner, &sizes)?;
            buf::try_collected(
                sizes.len(),
                pieces.into_iter().zip(&sizes).map(|(p, &len)| Tensor::from_vec(piece_shape(len), p)),
                ITEMS,
            )?
        }, _ => return Err(Error::unsupported(format!("SplitToSequence of {} tensors", x.dtype()))))
    };
    Ok(Value::Sequence {
        elem: tensor_elem(x.dtype()),
        items,
    })
}

pub(super) fn concat_from_sequence(
    op: &ConcatFromSequence,
    inputs: &[Option<&Value>],
) -> Result<Value> {
    let items = super::sequence(inputs, 0)?;
    let Some(first) = items.first() else {
        return Err(Error::compute(
            "ConcatFromSequence needs a non-empty sequence",
        ));
    };
    let rank = first.rank();
    let axis = resolve_axis(op.axis, rank, op.new_axis)?;
    // With a new axis, every item is seen as having a dim of 1 inserted at `axis`.
    let item_shape = |t: &Tensor| {
        let mut s = t.shape().to_vec();
        if op.new_axis {
            s.insert(axis, 1);
        }
        s
    };
    let base = item_shape(first);
    let mut dims = Vec::with_capacity(items.len());
    for (k, t) in items.iter().enumerate() {
        let s = item_shape(t);
        if t.dtype() != first.dtype() {
            return Err(Error::compute(format!(
                "item {k} is {}, item 0 is {}",
                t.dtype(),
                first.dtype()
            )));
        }
        let agrees = s.len() == base.len()
            && s.iter()
                .zip(&base)
                .enumerate()
                .all(|(i, (a, b))| i == axis || a == b);
        if !agrees {
            return Err(Error::compute(format!(
                "item {k} has shape {:?}, which does not match item 0's {:?} {}",
                t.shape(),
                first.shape(),
                if op.new_axis {
                    "(stacking needs equal shapes)".to_string()
                } else {
                    format!("off axis {axis}")
                }
            )));
        }
        dims.push(s[axis]);
    }
    let outer = checked_numel(&base[..axis])?;
    let inner = checked_numel(&base[axis + 1..])?;
    let mut out_shape = base.clone();
    out_shape[axis] = dims
        .iter()
        .try_fold(0usize, |a, &d| a.checked_add(d))
        .ok_or_else(|| Error::compute("the concatenated axis overflows"))?;
    let n = checked_numel(&out_shape)?;
    let out = if first.dtype() == DType::String {
        let parts: Vec<&[String]> = items.iter().map(|t| t.strings()).collect::<Result<_>>()?;
        Tensor::from_strings(out_shape, concat_data(&parts, n, outer, &dims, inner)?)?
    } else {
        xnpu_core::with_pod_type!(first.dtype(), T => {
            let owned: Vec<_> = items.iter().map(|t| t.as_slice::<T>()).collect::<Result<_>>()?;
            let parts: Vec<&[T]> = owned.iter().map(|c| c.as_ref()).collect();
            Tensor::from_vec(out_shape, concat_data(&parts, n, outer, &dims, inner)?)?
        }, _ => return Err(Error::unsupported(format!("ConcatFromSequence of {} tensors", first.dtype()))))
    };
    Ok(Value::Tensor(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq_of(v: &Value) -> Vec<(Vec<usize>, Vec<f32>)> {
        v.as_sequence()
            .unwrap()
            .iter()
            .map(|t| (t.shape().to_vec(), t.to_vec::<f32>().unwrap()))
            .collect()
    }

    #[test]
    fn scalar_split_leaves_a_shorter_last_piece() {
        let x =
            Value::Tensor(Tensor::from_vec(vec![2, 3], vec![0f32, 1., 2., 3., 4., 5.]).unwrap());
        let k = Value::Tensor(Tensor::scalar(2i64));
        let op = SplitToSequence {
            axis: 1,
            keepdims: true,
        };
        let out = split_to_sequence(&op, &[Some(&x), Some(&k)]).unwrap();
        assert_eq!(
            seq_of(&out),
            vec![
                (vec![2, 2], vec![0., 1., 3., 4.]),
                (vec![2, 1], vec![2., 5.])
            ]
        );
        let op = SplitToSequence {
            axis: -2,
            keepdims: false,
        };
        let out = split_to_sequence(&op, &[Some(&x)]).unwrap();
        assert_eq!(
            seq_of(&out),
            vec![(vec![3], vec![0., 1., 2.]), (vec![3], vec![3., 4., 5.])]
        );
        let bad = Value::Tensor(Tensor::from_vec(vec![2], vec![1i64, 2]).unwrap());
        assert!(split_to_sequence(&op, &[Some(&x), Some(&bad)]).is_err());
    }

    #[test]
    fn concat_joins_or_stacks() {
        let a = Tensor::from_vec(vec![1, 2], vec![1f32, 2.]).unwrap();
        let b = Tensor::from_vec(vec![1, 2], vec![3f32, 4.]).unwrap();
        let s = Value::Sequence {
            elem: tensor_elem(DType::F32),
            items: vec![a, b],
        };
        let cat = |axis, new_axis| {
            concat_from_sequence(&ConcatFromSequence { axis, new_axis }, &[Some(&s)])
        };
        let t = cat(1, false).unwrap().into_tensor().unwrap();
        assert_eq!(
            (t.shape().to_vec(), t.to_vec::<f32>().unwrap()),
            (vec![1, 4], vec![1., 2., 3., 4.])
        );
        let t = cat(-1, true).unwrap().into_tensor().unwrap();
        assert_eq!(
            (t.shape().to_vec(), t.to_vec::<f32>().unwrap()),
            (vec![1, 2, 2], vec![1., 3., 2., 4.])
        );
        assert!(cat(2, false).is_err());
    }

    /// Hostile sizes (issue 21): an empty tensor's dims may be anything, so a split may ask
    /// for any number of items, and the rows around the axis may be any number of nothing.
    #[test]
    fn huge_empty_dims_are_refused_or_answered_without_walking_them() {
        let big = 1usize << 62;
        let empty = |shape: Vec<usize>| Tensor::from_vec(shape, Vec::<f32>::new()).unwrap();
        let op = SplitToSequence {
            axis: 0,
            keepdims: true,
        };
        let x = Value::Tensor(empty(vec![big, 0]));
        let e = split_to_sequence(&op, &[Some(&x)]).unwrap_err().to_string();
        assert!(
            e.contains("cannot allocate 4611686018427387904 values for SplitToSequence's items"),
            "{e}"
        );
        let op = SplitToSequence {
            axis: 1,
            keepdims: true,
        };
        let x = Value::Tensor(empty(vec![big, 2, 0]));
        let out = split_to_sequence(&op, &[Some(&x)]).unwrap();
        assert_eq!(seq_of(&out), vec![(vec![big, 1, 0], vec![]); 2]);
        let s = Value::Sequence {
            elem: tensor_elem(DType::F32),
            items: vec![empty(vec![big, 1, 0]), empty(vec![big, 2, 0])],
        };
        let op = ConcatFromSequence {
            axis: 1,
            new_axis: false,
        };
        let t = concat_from_sequence(&op, &[Some(&s)])
            .unwrap()
            .into_tensor()
            .unwrap();
        assert_eq!(t.shape(), &[big, 3, 0]);
    }
}
