//! ScatterElements, ScatterND and TensorScatter: each lists `(output position, update
//! position)` pairs in order, then applies them to a copy of the data.

use xnpu_core::shape::normalize_axis;
use xnpu_core::{DType, Elem, Error, Num, Result, Tensor, Value};
use xnpu_ops::tensor::{Reduction, ScatterElements, ScatterNd, TensorScatter};

use xnpu_linalg::buf;

use super::elems::{for_each_index, norm_index, strides, Elems, Src};
use crate::args::{opt_tensor, tensor};

/// A copy of `data` with `updates` element `u` combined into element `t` for each pair.
fn apply(
    data: &Tensor,
    updates: &Tensor,
    pairs: &[(usize, usize)],
    r: Reduction,
) -> Result<Tensor> {
    if data.dtype() != updates.dtype() {
        return Err(Error::compute(format!(
            "updates are {}, data is {}",
            updates.dtype(),
            data.dtype()
        )));
    }
    if r == Reduction::None {
        // Where each output element comes from: (from updates?, position).
        let mut from = buf::collected((0..data.len()).map(|i| (false, i)), "a scatter's sources")?;
        for &(t, u) in pairs {
            *from
                .get_mut(t)
                .ok_or_else(|| Error::compute(format!("target {t} is outside the data")))? =
                (true, u);
        }
        let (ds, us) = (Src::new(data)?, Src::new(updates)?);
        let mut out = Elems::new(data.dtype(), data.len())?;
        for (is_update, i) in from {
            out.push(if is_update { &us } else { &ds }, i)?;
        }
        return out.finish(data.shape().to_vec());
    }
    if data.dtype() == DType::Bool {
        // Sum and Max are "or", Mul and Min are "and".
        return combine_all(data, updates, pairs, |x: bool, y| match r {
            Reduction::None => y,
            Reduction::Add | Reduction::Max => x | y,
            Reduction::Mul | Reduction::Min => x & y,
        });
    }
    xnpu_core::with_numeric_type!(data.dtype(), T => {
        combine_all(data, updates, pairs, |x: T, y| combine(x, y, r))
    }, _ => Err(Error::compute(format!(
        "reduction {r:?} needs numbers, the data is {}", data.dtype()
    ))))
}

/// A copy of `data` with `updates` element `u` combined into element `t` by `f` for each pair.
fn combine_all<T: Elem>(
    data: &Tensor,
    updates: &Tensor,
    pairs: &[(usize, usize)],
    f: impl Fn(T, T) -> T,
) -> Result<Tensor> {
    let mut v = data.to_vec::<T>()?;
    let upd = updates.as_slice::<T>()?;
    for &(t, u) in pairs {
        let (Some(x), Some(&y)) = (v.get_mut(t), upd.get(u)) else {
            return Err(Error::compute(format!(
                "scatter position {t} or {u} is out of range"
            )));
        };
        *x = f(*x, y);
    }
    Tensor::from_vec(data.shape().to_vec(), v)
}

/// `y` combined into `x`; Max and Min take a NaN update.
fn combine<T: Num>(x: T, y: T, r: Reduction) -> T {
    match r {
        Reduction::None => y,
        Reduction::Add => x.plus(y),
        Reduction::Mul => x.times(y),
        Reduction::Max => {
            if y > x || y.is_nan() {
                y
            } else {
                x
            }
        }
        Reduction::Min => {
            if y < x || y.is_nan() {
                y
            } else {
                x
            }
        }
    }
}

pub(crate) fn scatter_elements(op: &ScatterElements, inputs: &[Option<&Value>]) -> Result<Tensor> {
    let data = tensor(inputs, 0)?;
    let idx_t = tensor(inputs, 1)?;
    let updates = tensor(inputs, 2)?;
    let (dd, id) = (data.shape(), idx_t.shape());
    if id.len() != dd.len() || updates.shape() != id {
        return Err(Error::compute(format!(
            "ScatterElements: indices {id:?} and updates {:?} must have equal dims of the rank of data {dd:?}",
            updates.shape()
        )));
    }
    let a = normalize_axis(op.axis, dd.len())?;
    let idx = idx_t.to_i64_vec()?;
    let st = strides(dd);
    let mut pairs = buf::reserved(idx.len(), "a scatter's positions")?;
    let mut p = 0;
    for_each_index(id, |o| {
        let mut t = 0;
        for k in 0..o.len() {
            let j = if k == a {
                norm_index(idx[p], dd[a], "ScatterElements: index")?
            } else if o[k] < dd[k] {
                o[k]
            } else {
                return Err(Error::compute(format!(
                    "ScatterElements: indices dims {id:?} exceed data dims {dd:?} off the axis"
                )));
            };
            t += j * st[k];
        }
        pairs.push((t, p));
        p += 1;
        Ok(())
    })?;
    apply(data, updates, &pairs, op.reduction)
}

pub(crate) fn scatter_nd(op: &ScatterNd, inputs: &[Option<&Value>]) -> Result<Tensor> {
    let data = tensor(inputs, 0)?;
    let idx_t = tensor(inputs, 1)?;
    let updates = tensor(inputs, 2)?;
    let (dd, id) = (data.shape(), idx_t.shape());
    let k = *id
        .last()
        .ok_or_else(|| Error::compute("ScatterND: indices must have rank ≥ 1"))?;
    let mut want = id[..id.len() - 1].to_vec();
    if k > dd.len() {
        return Err(Error::compute(format!(
            "ScatterND: index tuples of length {k} are longer than the data rank {}",
            dd.len()
        )));
    }
    want.extend_from_slice(&dd[k..]);
    if updates.shape() != want.as_slice() {
        return Err(Error::compute(format!(
            "ScatterND: updates must have dims {want:?}, got {:?}",
            updates.shape()
        )));
    }
    if updates.is_empty() {
        // Nothing to write (and the dims of empty updates may multiply past usize).
        return apply(data, updates, &[], op.reduction);
    }
    let idx = idx_t.to_i64_vec()?;
    // The updates hold n_tuples * inner values: neither overflows.
    let inner: usize = dd[k..].iter().product();
    let st = strides(dd);
    let n_tuples: usize = id[..id.len() - 1].iter().product();
    let mut pairs = buf::reserved(updates.len(), "a scatter's positions")?;
    for t in 0..n_tuples {
        let mut off = 0;
        for (j, &v) in idx[t * k..(t + 1) * k].iter().enumerate() {
            off += norm_index(v, dd[j], "ScatterND: index")? * st[j];
        }
        pairs.extend((0..inner).map(|e| (off + e, t * inner + e)));
    }
    apply(data, updates, &pairs, op.reduction)
}

pub(crate) fn tensor_scatter(op: &TensorScatter, inputs: &[Option<&Value>]) -> Result<Tensor> {
    let cache = tensor(inputs, 0)?;
    let update = tensor(inputs, 1)?;
    let (cd, ud) = (cache.shape(), update.shape());
    let a = normalize_axis(op.axis, cd.len())?;
    if a == 0 {
        return Err(Error::compute(
            "TensorScatter: axis must not be 0, the batch axis",
        ));
    }
    let fits = ud.len() == cd.len()
        && (0..cd.len()).all(|i| {
            if i == a {
                ud[i] <= cd[i]
            } else {
                ud[i] == cd[i]
            }
        });
    if !fits {
        return Err(Error::compute(format!(
            "TensorScatter: update dims {ud:?} must equal cache dims {cd:?} except along axis {a}, where they are no larger"
        )));
    }
    if update.is_empty() {
        // Nothing to write (and an empty cache's dims may be anything).
        return apply(cache, update, &[], Reduction::None);
    }
    // The update is not empty, so neither is the cache: its dims multiply within a usize.
    let batch = cd[0];
    let write = match opt_tensor(inputs, 2)? {
        Some(w) => w.to_i64_vec()?,
        None => vec![0; batch],
    };
    if write.len() != batch {
        return Err(Error::compute(format!(
            "TensorScatter: write_indices has {} entries for a batch of {batch}",
            write.len()
        )));
    }
    let max_len = cd[a];
    let inner: usize = cd[a + 1..].iter().product();
    let prefix: usize = cd[..a].iter().product();
    let per_batch = prefix / batch.max(1);
    let seq = ud[a];
    let mut pairs = buf::reserved(update.len(), "a scatter's positions")?;
    for p in 0..prefix {
        let b = p / per_batch.max(1);
        for s in 0..seq {
            let mut w = write[b].saturating_add(s as i64);
            if op.circular && max_len > 0 {
                w = w.rem_euclid(max_len as i64);
            }
            if w < 0 || w >= max_len as i64 {
                return Err(Error::compute(format!(
                    "TensorScatter: write position {w} (write index {} + {s}) is outside the cache length {max_len}",
                    write[b]
                )));
            }
            let t0 = (p * max_len + w as usize) * inner;
            let u0 = (p * seq + s) * inner;
            pairs.extend((0..inner).map(|e| (t0 + e, u0 + e)));
        }
    }
    apply(cache, update, &pairs, Reduction::None)
}

#[cfg(test)]
mod tests {
    use super::super::elems::run_test;
    use super::*;

    fn t<T: xnpu_core::Elem>(dims: &[usize], v: Vec<T>) -> Option<Tensor> {
        Some(Tensor::from_vec(dims.to_vec(), v).unwrap())
    }

    #[test]
    fn scatter_elements_reductions_combine_duplicates() {
        let data = t(&[3], vec![1i32, 2, 3]);
        let idx = t(&[3], vec![0i64, 0, -1]);
        let upd = t(&[3], vec![5i32, 7, 1]);
        let run = |reduction| {
            let op = ScatterElements { axis: 0, reduction };
            run_test(
                |i| scatter_elements(&op, i),
                vec![data.clone(), idx.clone(), upd.clone()],
            )
            .unwrap()
            .to_vec::<i32>()
            .unwrap()
        };
        assert_eq!(run(Reduction::None), vec![7, 2, 1]);
        assert_eq!(run(Reduction::Add), vec![13, 2, 4]);
        assert_eq!(run(Reduction::Mul), vec![35, 2, 3]);
        assert_eq!(run(Reduction::Max), vec![7, 2, 3]);
        assert_eq!(run(Reduction::Min), vec![1, 2, 1]);
    }

    #[test]
    fn bool_reductions_are_or_and_and() {
        let data = t(&[2], vec![false, true]);
        let idx = t(&[2], vec![0i64, 1]);
        let upd = t(&[2], vec![true, false]);
        let run = |reduction| {
            let op = ScatterElements { axis: 0, reduction };
            run_test(
                |i| scatter_elements(&op, i),
                vec![data.clone(), idx.clone(), upd.clone()],
            )
            .unwrap()
            .to_vec::<bool>()
            .unwrap()
        };
        assert_eq!(run(Reduction::None), vec![true, false]);
        assert_eq!(run(Reduction::Add), vec![true, true]);
        assert_eq!(run(Reduction::Max), vec![true, true]);
        assert_eq!(run(Reduction::Mul), vec![false, false]);
        assert_eq!(run(Reduction::Min), vec![false, false]);
    }

    #[test]
    fn float_max_takes_a_nan_update() {
        let data = t(&[2], vec![1f32, f32::NAN]);
        let idx = t(&[2], vec![0i64, 1]);
        let upd = t(&[2], vec![f32::NAN, 5.0]);
        let op = ScatterElements {
            axis: 0,
            reduction: Reduction::Max,
        };
        let y = run_test(|i| scatter_elements(&op, i), vec![data, idx, upd])
            .unwrap()
            .to_vec::<f32>()
            .unwrap();
        // A NaN update wins; a NaN in the data stays (no number compares greater than it).
        assert!(y[0].is_nan());
        assert!(y[1].is_nan());
    }

    #[test]
    fn scatter_nd_replaces_slices_of_strings() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let data = Tensor::from_strings(vec![2, 2], s(&["a", "b", "c", "d"])).ok();
        let upd = Tensor::from_strings(vec![1, 2], s(&["x", "y"])).ok();
        let op = ScatterNd::default();
        let y = run_test(
            |i| scatter_nd(&op, i),
            vec![data.clone(), t(&[1, 1], vec![1i64]), upd.clone()],
        );
        assert_eq!(
            y.unwrap().strings().unwrap(),
            s(&["a", "b", "x", "y"]).as_slice()
        );
        let bad = run_test(
            |i| scatter_nd(&op, i),
            vec![data, t(&[1, 1], vec![2i64]), upd],
        );
        assert!(bad.is_err());
        let add = ScatterNd {
            reduction: Reduction::Add,
        };
        let strings = Tensor::from_strings(vec![1], s(&["a"])).ok();
        let upd1 = Tensor::from_strings(vec![1], s(&["b"])).ok();
        let err = run_test(
            |i| scatter_nd(&add, i),
            vec![strings, t(&[1, 1], vec![0i64]), upd1],
        );
        assert!(err.is_err());
    }

    #[test]
    fn tensor_scatter_wraps_in_circular_mode() {
        // Cache [batch 1, seq 3, 1], update of 2 written at 2 → positions 2 and 0.
        let cache = t(&[1, 3, 1], vec![0f32; 3]);
        let upd = t(&[1, 2, 1], vec![1f32, 2.0]);
        let w = t(&[1], vec![2i64]);
        let op = TensorScatter {
            axis: -2,
            circular: true,
        };
        let y = run_test(
            |i| tensor_scatter(&op, i),
            vec![cache.clone(), upd.clone(), w.clone()],
        );
        assert_eq!(y.unwrap().to_vec::<f32>().unwrap(), vec![2.0, 0.0, 1.0]);
        let linear = TensorScatter {
            axis: -2,
            circular: false,
        };
        assert!(run_test(|i| tensor_scatter(&linear, i), vec![cache, upd, w]).is_err());
    }
}
