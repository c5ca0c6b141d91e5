//! Building tensors element by element without knowing the dtype: every kernel of this family
//! that only moves data copies element bytes (or strings) from source tensors, so one code
//! path serves every dtype, bool and string included.

use xnpu_core::shape::checked_numel;
use xnpu_core::{Bytes, DType, Error, Num, Result, Tensor};

/// Read access to the elements of one tensor.
pub(crate) struct Src<'a> {
    dtype: DType,
    bytes: &'a [u8],
    strings: &'a [String],
    len: usize,
}

impl<'a> Src<'a> {
    pub fn new(t: &'a Tensor) -> Result<Self> {
        let strings = if t.dtype() == DType::String {
            t.strings()?
        } else {
            &[]
        };
        Ok(Src {
            dtype: t.dtype(),
            bytes: t.raw_bytes(),
            strings,
            len: t.len(),
        })
    }
}

/// The elements of a tensor being built, in row-major order.
pub(crate) struct Elems {
    dtype: DType,
    size: usize,
    bytes: Vec<u8>,
    strings: Vec<String>,
    len: usize,
}

impl Elems {
    /// An empty buffer with room for `capacity` elements of `dtype`, or an error when that
    /// much memory cannot be had (sizes computed from input values can be absurd) or when the
    /// dtype is packed (its elements share bytes, so they cannot be copied one by one).
    pub fn new(dtype: DType, capacity: usize) -> Result<Self> {
        let size = dtype.elem_bytes().ok_or_else(|| {
            Error::unsupported(format!("{dtype} elements cannot be copied one by one"))
        })?;
        let mut e = Elems {
            dtype,
            size,
            bytes: Vec::new(),
            strings: Vec::new(),
            len: 0,
        };
        if dtype == DType::String {
            e.strings
                .try_reserve_exact(capacity)
                .map_err(|_| too_big(dtype, capacity))?;
        } else {
            let n = capacity
                .checked_mul(size)
                .ok_or_else(|| too_big(dtype, capacity))?;
            e.bytes
                .try_reserve_exact(n)
                .map_err(|_| too_big(dtype, capacity))?;
        }
        Ok(e)
    }

    fn check(&self, src: &Src<'_>) -> Result<()> {
        if src.dtype != self.dtype {
            return Err(Error::compute(format!(
                "inputs must have the same dtype, got {} and {}",
                self.dtype, src.dtype
            )));
        }
        Ok(())
    }

    /// Appends element `i` of `src`.
    pub fn push(&mut self, src: &Src<'_>, i: usize) -> Result<()> {
        self.extend(src, i, 1)
    }

    /// Appends elements `start..start + n` of `src`.
    pub fn extend(&mut self, src: &Src<'_>, start: usize, n: usize) -> Result<()> {
        self.check(src)?;
        let end = start
            .checked_add(n)
            .filter(|&e| e <= src.len)
            .ok_or_else(|| {
                Error::compute(format!(
                    "element range {start}..{start}+{n} is outside a tensor of {} elements",
                    src.len
                ))
            })?;
        if self.dtype == DType::String {
            self.strings.extend_from_slice(&src.strings[start..end]);
        } else {
            self.bytes
                .extend_from_slice(&src.bytes[start * self.size..end * self.size]);
        }
        self.len += n;
        Ok(())
    }

    /// The tensor of dims `shape` (whose element count must be the number pushed).
    pub fn finish(self, shape: Vec<usize>) -> Result<Tensor> {
        let n = checked_numel(&shape)?;
        if n != self.len {
            return Err(Error::compute(format!(
                "built {} elements for dims {shape:?} ({n} elements)",
                self.len
            )));
        }
        if self.dtype == DType::String {
            Tensor::from_strings(shape, self.strings)
        } else {
            Tensor::from_bytes(self.dtype, shape, Bytes::from(self.bytes))
        }
    }
}

fn too_big(dtype: DType, n: usize) -> Error {
    Error::compute(format!("cannot allocate {n} elements of {dtype}"))
}

/// An empty vector with room for `n` elements, or an error when that much memory cannot be
/// had.
pub(crate) fn try_vec<T>(n: usize, dtype: DType) -> Result<Vec<T>> {
    xnpu_core::run::reserve(
        (n as u64).saturating_mul(std::mem::size_of::<T>() as u64),
        "an output",
    )?;
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| too_big(dtype, n))?;
    Ok(v)
}

/// Row-major strides of dims.
pub(crate) fn strides(dims: &[usize]) -> Vec<usize> {
    let mut s = vec![1usize; dims.len()];
    for i in (0..dims.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1].saturating_mul(dims[i + 1]);
    }
    s
}

/// Calls `f` with every multi-index of `dims` in row-major order (once for rank 0, never
/// when a dim is 0).
pub(crate) fn for_each_index(
    dims: &[usize],
    mut f: impl FnMut(&[usize]) -> Result<()>,
) -> Result<()> {
    if dims.contains(&0) {
        return Ok(());
    }
    let mut idx = vec![0usize; dims.len()];
    loop {
        f(&idx)?;
        let mut k = dims.len();
        loop {
            if k == 0 {
                return Ok(());
            }
            k -= 1;
            idx[k] += 1;
            if idx[k] < dims[k] {
                break;
            }
            idx[k] = 0;
        }
    }
}

/// A tensor of dims `out_dims` whose element at each multi-index `o` is element `f(o)` of
/// `src`, or the single element of `fill` where `f` gives `None`.
pub(crate) fn gather_by(
    src: &Tensor,
    out_dims: &[usize],
    fill: Option<&Tensor>,
    mut f: impl FnMut(&[usize]) -> Result<Option<usize>>,
) -> Result<Tensor> {
    let n = checked_numel(out_dims)?;
    let s = Src::new(src)?;
    let fill_src = fill.map(Src::new).transpose()?;
    let mut out = Elems::new(src.dtype(), n)?;
    for_each_index(out_dims, |o| match f(o)? {
        Some(i) => out.push(&s, i),
        None => match &fill_src {
            Some(fs) => out.push(fs, 0),
            None => Err(Error::compute(
                "no fill value for an element outside the input",
            )),
        },
    })?;
    out.finish(out_dims.to_vec())
}

/// Resolves an index that may count from the end of a dim, or says it is out of range.
pub(crate) fn norm_index(i: i64, dim: usize, what: &str) -> Result<usize> {
    let d = dim as i64;
    let j = if i < 0 { i + d } else { i };
    if j < 0 || j >= d {
        return Err(Error::compute(format!(
            "{what} {i} is out of range for a dim of {dim}"
        )));
    }
    Ok(j as usize)
}

/// Dims as usize from i64 values, refusing negatives.
pub(crate) fn dims_of(v: &[i64], op: &str) -> Result<Vec<usize>> {
    v.iter()
        .map(|&d| {
            usize::try_from(d)
                .map_err(|_| Error::compute(format!("{op}: dims {v:?} must not be negative")))
        })
        .collect()
}

/// A one-element tensor (dims `[]`) of `dtype` holding `v` converted ([`Num::from_f64`]; for
/// bool, any nonzero value is true; strings are refused).
pub(crate) fn scalar_of(dtype: DType, v: f64) -> Result<Tensor> {
    if dtype == DType::Bool {
        return Ok(Tensor::scalar(v != 0.0));
    }
    xnpu_core::with_numeric_type!(dtype, T => Ok(Tensor::scalar(T::from_f64(v))),
        _ => Err(Error::compute(format!("a number cannot be a {dtype} element"))))
}

/// One-element tensor of `dtype` with its zero (empty string for strings).
pub(crate) fn zero_of(dtype: DType) -> Result<Tensor> {
    Tensor::zeros(dtype, vec![])
}

/// Reads a scalar (or one-element) integer input.
pub(crate) fn scalar_int(t: &Tensor, what: &str) -> Result<i64> {
    let v = t.to_i64_vec()?;
    match v.as_slice() {
        [x] => Ok(*x),
        _ => Err(Error::compute(format!(
            "{what} must hold one integer, got dims {:?}",
            t.shape()
        ))),
    }
}

/// Reads a scalar (or one-element) numeric input as f64.
pub(crate) fn scalar_f64(t: &Tensor, what: &str) -> Result<f64> {
    let v = t.to_f64_vec()?;
    match v.as_slice() {
        [x] => Ok(*x),
        _ => Err(Error::compute(format!(
            "{what} must hold one number, got dims {:?}",
            t.shape()
        ))),
    }
}

/// Runs a kernel on owned test inputs.
#[cfg(test)]
pub(crate) fn run_test<R>(
    f: impl Fn(&[Option<&xnpu_core::Value>]) -> Result<R>,
    inputs: Vec<Option<Tensor>>,
) -> Result<R> {
    let vals: Vec<Option<xnpu_core::Value>> = inputs
        .into_iter()
        .map(|t| t.map(xnpu_core::Value::Tensor))
        .collect();
    let refs: Vec<Option<&xnpu_core::Value>> = vals.iter().map(Option::as_ref).collect();
    f(&refs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gather_by_copies_strings_and_fills() {
        let t = Tensor::from_strings(vec![2], vec!["a".into(), "b".into()]).unwrap();
        let fill = Tensor::from_strings(vec![], vec!["-".into()]).unwrap();
        let out = gather_by(&t, &[3], Some(&fill), |o| Ok((o[0] < 2).then(|| 1 - o[0]))).unwrap();
        assert_eq!(out.strings().unwrap(), &["b", "a", "-"]);
    }

    #[test]
    fn index_walk_covers_rank_zero_and_empty() {
        let mut n = 0;
        for_each_index(&[], |_| {
            n += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(n, 1);
        for_each_index(&[2, 0], |_| panic!("no element")).unwrap();
    }

    #[test]
    fn out_of_range_reads_are_errors() {
        let t = Tensor::from_vec(vec![2], vec![1u8, 2]).unwrap();
        let s = Src::new(&t).unwrap();
        let mut e = Elems::new(DType::U8, 1).unwrap();
        assert!(e.push(&s, 2).is_err());
        assert!(norm_index(-3, 2, "index").is_err());
        assert_eq!(norm_index(-1, 2, "index").unwrap(), 1);
        assert!(Elems::new(DType::F64, usize::MAX / 2).is_err());
        assert!(try_vec::<u64>(usize::MAX / 4, DType::U64).is_err());
    }
}
