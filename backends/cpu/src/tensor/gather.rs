//! Kernels that pick elements by index or condition: Gather, GatherElements, GatherND,
//! Compress, NonZero, OneHot.

use xnpu_core::shape::checked_numel;
use xnpu_core::shape::normalize_axis;
use xnpu_core::{DType, Error, Result, Tensor, Value};
use xnpu_ops::tensor::{Compress, Gather, GatherElements, GatherNd, OneHot};

use super::elems::{gather_by, norm_index, scalar_f64, strides, Elems, Src};
use crate::args::tensor;

pub(crate) fn gather(op: &Gather, inputs: &[Option<&Value>]) -> Result<Tensor> {
    let x = tensor(inputs, 0)?;
    let idx_t = tensor(inputs, 1)?;
    let a = normalize_axis(op.axis, x.rank())?;
    let d = x.shape()[a];
    let idx = idx_t
        .to_i64_vec()?
        .iter()
        .map(|&i| norm_index(i, d, "Gather: index"))
        .collect::<Result<Vec<_>>>()?;
    let mut dims = x.shape()[..a].to_vec();
    dims.extend_from_slice(idx_t.shape());
    dims.extend_from_slice(&x.shape()[a + 1..]);
    let n = checked_numel(&dims)?;
    // A non-empty output reads a non-empty input, whose dims multiply within a usize; an
    // empty one reads nothing.
    let (outer, inner) = if n == 0 {
        (0, 0)
    } else {
        (
            x.shape()[..a].iter().product(),
            x.shape()[a + 1..].iter().product(),
        )
    };
    let s = Src::new(x)?;
    let mut out = Elems::new(x.dtype(), n)?;
    for o in 0..outer {
        for &i in &idx {
            out.extend(&s, (o * d + i) * inner, inner)?;
        }
    }
    out.finish(dims)
}

pub(crate) fn gather_elements(op: &GatherElements, inputs: &[Option<&Value>]) -> Result<Tensor> {
    let x = tensor(inputs, 0)?;
    let idx_t = tensor(inputs, 1)?;
    if idx_t.rank() != x.rank() {
        return Err(Error::compute(format!(
            "GatherElements: indices dims {:?} must have the rank of data dims {:?}",
            idx_t.shape(),
            x.shape()
        )));
    }
    let a = normalize_axis(op.axis, x.rank())?;
    let idx = idx_t.to_i64_vec()?;
    let st = strides(x.shape());
    let mut p = 0;
    gather_by(x, idx_t.shape(), None, |o| {
        let mut i = 0;
        for k in 0..o.len() {
            let j = if k == a {
                norm_index(idx[p], x.shape()[a], "GatherElements: index")?
            } else if o[k] < x.shape()[k] {
                o[k]
            } else {
                return Err(Error::compute(format!(
                    "GatherElements: indices dims {:?} exceed data dims {:?} off the axis",
                    idx_t.shape(),
                    x.shape()
                )));
            };
            i += j * st[k];
        }
        p += 1;
        Ok(Some(i))
    })
}

pub(crate) fn gather_nd(op: &GatherNd, inputs: &[Option<&Value>]) -> Result<Tensor> {
    let x = tensor(inputs, 0)?;
    let idx_t = tensor(inputs, 1)?;
    let (xd, id) = (x.shape(), idx_t.shape());
    let b = op.batch_dims;
    let k = *id
        .last()
        .ok_or_else(|| Error::compute("GatherND: indices must have rank ≥ 1"))?;
    if b >= id.len() || b.saturating_add(k) > xd.len() || xd[..b] != id[..b] {
        return Err(Error::compute(format!(
            "GatherND: indices dims {id:?} with batch_dims {b} do not fit data dims {xd:?}"
        )));
    }
    let idx = idx_t.to_i64_vec()?;
    let mut dims = id[..id.len() - 1].to_vec();
    dims.extend_from_slice(&xd[b + k..]);
    let n = checked_numel(&dims)?;
    let s = Src::new(x)?;
    let mut out = Elems::new(x.dtype(), n)?;
    if n == 0 {
        return out.finish(dims);
    }
    // The output's dims (batch, tuples, inner) are non-zero and multiply within a usize;
    // the indexed dims of the data may be 0 (every index is then out of range) and their
    // product with the rest is checked.
    let inner: usize = xd[b + k..].iter().product();
    let batch: usize = xd[..b].iter().product();
    let batch_size = checked_numel(&xd[b..])?;
    let tuples_per_batch: usize = id[b..id.len() - 1].iter().product();
    let st = strides(&xd[b..]);
    for bi in 0..batch {
        for t in 0..tuples_per_batch {
            let tuple = &idx[(bi * tuples_per_batch + t) * k..][..k];
            let mut off = bi * batch_size;
            for (j, &v) in tuple.iter().enumerate() {
                off += norm_index(v, xd[b + j], "GatherND: index")? * st[j];
            }
            out.extend(&s, off, inner)?;
        }
    }
    out.finish(dims)
}

pub(crate) fn compress(op: &Compress, inputs: &[Option<&Value>]) -> Result<Tensor> {
    let x = tensor(inputs, 0)?;
    let cond = tensor(inputs, 1)?.to_vec::<bool>()?;
    let (x, a) = match op.axis {
        Some(a) => (x.clone(), normalize_axis(a, x.rank())?),
        None => (x.reshape(vec![x.len()])?, 0),
    };
    let d = x.shape()[a];
    if cond.len() > d {
        return Err(Error::compute(format!(
            "Compress: the condition has {} entries, more than the {d} of the axis",
            cond.len()
        )));
    }
    let keep: Vec<usize> = (0..cond.len()).filter(|&i| cond[i]).collect();
    let mut dims = x.shape().to_vec();
    dims[a] = keep.len();
    let n = checked_numel(&dims)?;
    // As in Gather: a non-empty output reads a non-empty input.
    let (outer, inner) = if n == 0 {
        (0, 0)
    } else {
        (
            x.shape()[..a].iter().product(),
            x.shape()[a + 1..].iter().product(),
        )
    };
    let s = Src::new(&x)?;
    let mut out = Elems::new(x.dtype(), n)?;
    for o in 0..outer {
        for &i in &keep {
            out.extend(&s, (o * d + i) * inner, inner)?;
        }
    }
    out.finish(dims)
}

pub(crate) fn non_zero(inputs: &[Option<&Value>]) -> Result<Tensor> {
    let x = tensor(inputs, 0)?;
    let nz: Vec<bool> = if x.dtype() == DType::String {
        x.strings()?.iter().map(|s| !s.is_empty()).collect()
    } else {
        xnpu_core::with_pod_type!(x.dtype(), T => {
            let zero = T::default();
            x.as_slice::<T>()?.iter().map(|v| *v != zero).collect()
        }, _ => return Err(Error::compute(format!("NonZero: unsupported dtype {}", x.dtype()))))
    };
    let r = x.rank();
    let count = nz.iter().filter(|&&b| b).count();
    let mut coords = xnpu_linalg::buf::zeroed::<i64>(
        xnpu_linalg::buf::count(&[r, count], "NonZero's output")?,
        "NonZero's output",
    )?;
    let mut p = 0;
    let mut flat = 0;
    super::elems::for_each_index(x.shape(), |o| {
        if nz[flat] {
            for (k, &v) in o.iter().enumerate() {
                coords[k * count + p] = v as i64;
            }
            p += 1;
        }
        flat += 1;
        Ok(())
    })?;
    Tensor::from_vec(vec![r, count], coords)
}

pub(crate) fn one_hot(op: &OneHot, inputs: &[Option<&Value>]) -> Result<Tensor> {
    let idx_t = tensor(inputs, 0)?;
    let depth = scalar_f64(tensor(inputs, 1)?, "OneHot: depth")?.trunc();
    let values = tensor(inputs, 2)?;
    if values.len() != 2 {
        return Err(Error::compute(format!(
            "OneHot: values must hold 2 elements (off, on), got dims {:?}",
            values.shape()
        )));
    }
    if !(depth >= 1.0 && depth <= usize::MAX as f64) {
        return Err(Error::compute(format!(
            "OneHot: depth must be a positive count, got {depth}"
        )));
    }
    let depth = depth as usize;
    let a = op.new_axis(idx_t.rank())?;
    let idx = idx_t.to_f64_vec()?;
    let mut dims = idx_t.shape().to_vec();
    dims.insert(a, depth);
    if checked_numel(&dims)? == 0 {
        return gather_by(values, &dims, None, |_| Ok(None));
    }
    // The output is not empty, so neither are the indices.
    let inner: usize = idx_t.shape()[a..].iter().product();
    gather_by(values, &dims, None, |o| {
        let outer_i: usize = idx_t.shape()[..a]
            .iter()
            .zip(o)
            .fold(0, |acc, (&d, &k)| acc * d + k);
        let inner_i: usize = idx_t.shape()[a..]
            .iter()
            .zip(&o[a + 1..])
            .fold(0, |acc, (&d, &k)| acc * d + k);
        let mut v = idx[outer_i * inner + inner_i].trunc();
        if v < 0.0 {
            v += depth as f64;
        }
        Ok(Some(usize::from(v == o[a] as f64)))
    })
}

#[cfg(test)]
mod tests {
    use super::super::elems::run_test;
    use super::*;

    fn t<T: xnpu_core::Elem>(dims: &[usize], v: Vec<T>) -> Option<Tensor> {
        Some(Tensor::from_vec(dims.to_vec(), v).unwrap())
    }

    #[test]
    fn gather_index_out_of_range_is_an_error() {
        let x = t(&[3], vec![1.0f32, 2.0, 3.0]);
        let op = Gather { axis: 0 };
        let y = run_test(|i| gather(&op, i), vec![x.clone(), t(&[2], vec![-1i64, 0])]);
        assert_eq!(y.unwrap().to_vec::<f32>().unwrap(), vec![3.0, 1.0]);
        let err = run_test(|i| gather(&op, i), vec![x, t(&[1], vec![3i32])]).unwrap_err();
        assert!(err.to_string().contains("out of range"), "{err}");
    }

    #[test]
    fn gather_nd_with_batch_dims() {
        let x = t(&[2, 2, 2], (0..8).collect::<Vec<i32>>());
        let idx = t(&[2, 1], vec![1i64, 0]);
        let op = GatherNd { batch_dims: 1 };
        let y = run_test(|i| gather_nd(&op, i), vec![x, idx]).unwrap();
        assert_eq!(y.shape(), &[2, 2]);
        assert_eq!(y.to_vec::<i32>().unwrap(), vec![2, 3, 4, 5]);
    }

    #[test]
    fn non_zero_lists_coordinates_column_wise() {
        let x = t(&[2, 2], vec![true, false, false, true]);
        let y = run_test(non_zero, vec![x]).unwrap();
        assert_eq!(y.shape(), &[2, 2]);
        assert_eq!(y.to_vec::<i64>().unwrap(), vec![0, 1, 0, 1]);
    }

    #[test]
    fn one_hot_ignores_out_of_range_indices() {
        let op = OneHot { axis: -1 };
        let y = run_test(
            |i| one_hot(&op, i),
            vec![
                t(&[3], vec![1.0f32, -1.0, 5.0]),
                t(&[], vec![3i64]),
                t(&[2], vec![0u8, 9]),
            ],
        )
        .unwrap();
        assert_eq!(y.to_vec::<u8>().unwrap(), vec![0, 9, 0, 0, 0, 9, 0, 0, 0]);
    }
}
