//! `Tensor`: a dtype, a shape and bytes that may be a zero-copy slice of a memory-mapped file.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use ndarray::{ArrayD, ArrayViewD, CowArray, IxDyn};

use crate::shape::{checked_nbytes, checked_numel};
use crate::{DType, Elem, Error, Num, Result};

#[derive(Clone)]
enum Storage {
    Bytes(Bytes),
    Strings(Arc<[String]>),
}

/// A dense row-major tensor. Cloning is cheap: the data is shared.
#[derive(Clone)]
pub struct Tensor {
    dtype: DType,
    shape: Vec<usize>,
    data: Storage,
}

/// Keeps a `Vec<T>` alive as the owner of a `Bytes`, so building a tensor from computed
/// values never copies.
struct VecOwner<T: Elem>(Vec<T>);

impl<T: Elem> AsRef<[u8]> for VecOwner<T> {
    fn as_ref(&self) -> &[u8] {
        T::as_bytes(&self.0)
    }
}

/// A large `f32` buffer goes back to [`crate::recycle`] for the next kernel's output.
impl<T: Elem> Drop for VecOwner<T> {
    fn drop(&mut self) {
        if T::DTYPE != crate::DType::F32
            || self.0.capacity() * std::mem::size_of::<T>() < crate::recycle::MIN_BYTES
        {
            return;
        }
        if let Some(v) = (&mut self.0 as &mut dyn std::any::Any).downcast_mut::<Vec<f32>>() {
            crate::recycle::give(std::mem::take(v));
        }
    }
}

impl Tensor {
    /// A tensor over existing bytes (for example a slice of a memory-mapped model). The byte
    /// count must be exactly what dtype and shape need.
    pub fn from_bytes(dtype: DType, shape: Vec<usize>, data: Bytes) -> Result<Tensor> {
        if dtype == DType::String {
            return Err(Error::model(
                "string tensors cannot be built from raw bytes",
            ));
        }
        let need = checked_nbytes(dtype, &shape)?;
        if data.len() != need {
            return Err(Error::model(format!(
                "{dtype}{shape:?} needs {need} bytes, got {}",
                data.len()
            )));
        }
        Ok(Tensor {
            dtype,
            shape,
            data: Storage::Bytes(data),
        })
    }

    pub fn from_vec<T: Elem>(shape: Vec<usize>, values: Vec<T>) -> Result<Tensor> {
        let n = checked_numel(&shape)?;
        if values.len() != n {
            return Err(Error::compute(format!(
                "shape {shape:?} needs {n} values, got {}",
                values.len()
            )));
        }
        Ok(Tensor {
            dtype: T::DTYPE,
            shape,
            data: Storage::Bytes(Bytes::from_owner(VecOwner(values))),
        })
    }

    pub fn from_array<T: Elem>(a: ArrayD<T>) -> Tensor {
        let shape = a.shape().to_vec();
        let values = if a.is_standard_layout() {
            a.into_raw_vec_and_offset().0
        } else {
            a.iter().copied().collect()
        };
        Tensor::from_vec(shape, values).expect("an array's element count matches its shape")
    }

    pub fn scalar<T: Elem>(v: T) -> Tensor {
        Tensor::from_vec(vec![], vec![v]).expect("a scalar has one element")
    }

    pub fn from_strings(shape: Vec<usize>, values: Vec<String>) -> Result<Tensor> {
        let n = checked_numel(&shape)?;
        if values.len() != n {
            return Err(Error::compute(format!(
                "shape {shape:?} needs {n} strings, got {}",
                values.len()
            )));
        }
        Ok(Tensor {
            dtype: DType::String,
            shape,
            data: Storage::Strings(values.into()),
        })
    }

    /// A tensor of zeros (empty strings for `String`).
    pub fn zeros(dtype: DType, shape: Vec<usize>) -> Result<Tensor> {
        let refused = |n: usize| Error::compute(format!("cannot allocate {n} elements of {dtype}"));
        if dtype == DType::String {
            let n = checked_numel(&shape)?;
            crate::run::reserve(
                (n as u64).saturating_mul(std::mem::size_of::<String>() as u64),
                "a tensor of empty strings",
            )?;
            let mut v = Vec::new();
            v.try_reserve_exact(n).map_err(|_| refused(n))?;
            v.resize(n, String::new());
            return Tensor::from_strings(shape, v);
        }
        let n = checked_nbytes(dtype, &shape)?;
        crate::run::reserve(n as u64, "a tensor of zeros")?;
        let mut v = Vec::new();
        v.try_reserve_exact(n)
            .map_err(|_| refused(checked_numel(&shape).unwrap_or(n)))?;
        v.resize(n, 0u8);
        Tensor::from_bytes(dtype, shape, Bytes::from(v))
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The raw little-endian bytes (empty for strings).
    pub fn raw_bytes(&self) -> &[u8] {
        match &self.data {
            Storage::Bytes(b) => b,
            Storage::Strings(_) => &[],
        }
    }

    /// The shared byte buffer, for zero-copy hand-off (None for strings).
    pub fn bytes(&self) -> Option<&Bytes> {
        match &self.data {
            Storage::Bytes(b) => Some(b),
            Storage::Strings(_) => None,
        }
    }

    /// The byte buffer, given up (None for strings): a caller that holds the only reference
    /// can turn it into a `BytesMut` (`Bytes::try_into_mut`) and update it in place.
    pub fn into_bytes(self) -> Option<Bytes> {
        match self.data {
            Storage::Bytes(b) => Some(b),
            Storage::Strings(_) => None,
        }
    }

    fn check_dtype<T: Elem>(&self) -> Result<()> {
        if self.dtype != T::DTYPE {
            return Err(Error::compute(format!(
                "tensor is {}, read as {}",
                self.dtype,
                T::DTYPE
            )));
        }
        Ok(())
    }

    /// The elements, borrowed when the bytes are aligned for `T`, copied otherwise.
    pub fn as_slice<T: Elem>(&self) -> Result<Cow<'_, [T]>> {
        self.check_dtype::<T>()?;
        let bytes = self.raw_bytes();
        Ok(match T::view(bytes) {
            Some(s) => Cow::Borrowed(s),
            None => Cow::Owned(T::read(bytes)),
        })
    }

    pub fn to_vec<T: Elem>(&self) -> Result<Vec<T>> {
        Ok(self.as_slice::<T>()?.into_owned())
    }

    /// An n-dimensional view (borrowed when aligned, copied otherwise).
    pub fn view<T: Elem>(&self) -> Result<CowArray<'_, T, IxDyn>> {
        let shape = IxDyn(&self.shape);
        Ok(match self.as_slice::<T>()? {
            Cow::Borrowed(s) => CowArray::from(
                ArrayViewD::from_shape(shape, s).expect("element count matches shape"),
            ),
            Cow::Owned(v) => CowArray::from(
                ArrayD::from_shape_vec(shape, v).expect("element count matches shape"),
            ),
        })
    }

    /// An owned n-dimensional array.
    pub fn to_array<T: Elem>(&self) -> Result<ArrayD<T>> {
        Ok(self.view::<T>()?.into_owned())
    }

    pub fn strings(&self) -> Result<&[String]> {
        match &self.data {
            Storage::Strings(s) => Ok(s),
            Storage::Bytes(_) => Err(Error::compute(format!(
                "tensor is {}, read as string",
                self.dtype
            ))),
        }
    }

    /// The same data with another shape of the same element count (no copy).
    pub fn reshape(&self, shape: Vec<usize>) -> Result<Tensor> {
        let n = checked_numel(&shape)?;
        if n != self.len() {
            return Err(Error::compute(format!(
                "cannot reshape {:?} ({} elements) to {shape:?} ({n} elements)",
                self.shape,
                self.len()
            )));
        }
        Ok(Tensor {
            dtype: self.dtype,
            shape,
            data: self.data.clone(),
        })
    }

    /// Every element as f64 (integers, bools and the narrow dtypes converted; strings are an
    /// error). For comparisons and printing, not for computing.
    pub fn to_f64_vec(&self) -> Result<Vec<f64>> {
        if self.dtype.is_narrow() {
            return crate::narrow::widen(self)?.to_f64_vec();
        }
        if self.dtype == DType::Bool {
            return Ok(self
                .to_vec::<bool>()?
                .into_iter()
                .map(|b| b as u8 as f64)
                .collect());
        }
        crate::with_numeric_type!(self.dtype, T => {
            Ok(self.as_slice::<T>()?.iter().map(|&v| Num::to_f64(v)).collect())
        }, _ => Err(Error::compute(format!("{} tensor has no numeric values", self.dtype))))
    }

    /// Reads integer elements (any integer dtype, the sub-byte ones included) as i64, e.g.
    /// for shape and index inputs.
    pub fn to_i64_vec(&self) -> Result<Vec<i64>> {
        use num_traits::ToPrimitive;
        if crate::narrow::is_narrow_int(self.dtype) {
            return crate::narrow::widen(self)?.to_i64_vec();
        }
        crate::with_int_type!(self.dtype, T => {
            self.as_slice::<T>()?
                .iter()
                .map(|v| v.to_i64().ok_or_else(|| Error::compute(format!("value {v} does not fit in i64"))))
                .collect()
        }, _ => Err(Error::compute(format!("expected an integer tensor, got {}", self.dtype))))
    }

    /// A short human-readable summary of the first `n` values.
    pub fn preview(&self, n: usize) -> String {
        if self.dtype == DType::String {
            let s = self.strings().unwrap_or(&[]);
            let shown: Vec<_> = s.iter().take(n).map(|v| format!("{v:?}")).collect();
            return format!(
                "[{}{}]",
                shown.join(", "),
                if s.len() > n { ", …" } else { "" }
            );
        }
        // Only the values shown are converted (an output may be larger than memory twice).
        let shown: Result<Vec<String>> = if self.dtype.is_narrow() {
            let bytes = self.raw_bytes();
            Ok((0..self.len().min(n))
                .map(|i| {
                    let code = crate::narrow::code_at(self.dtype, bytes, i);
                    format!("{:.6}", crate::narrow::value_of(self.dtype, code))
                })
                .collect())
        } else if self.dtype == DType::Bool {
            self.as_slice::<bool>().map(|s| {
                s.iter()
                    .take(n)
                    .map(|&b| format!("{:.6}", b as u8 as f64))
                    .collect()
            })
        } else {
            crate::with_numeric_type!(self.dtype, T => {
                self.as_slice::<T>().map(|s| {
                    s.iter().take(n).map(|&v| format!("{:.6}", Num::to_f64(v))).collect()
                })
            }, _ => Err(Error::compute("no numeric values")))
        };
        match shown {
            Ok(shown) => format!(
                "[{}{}]",
                shown.join(", "),
                if self.len() > n { ", …" } else { "" }
            ),
            Err(_) => String::from("[…]"),
        }
    }
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Tensor({}{:?} {})",
            self.dtype,
            self.shape,
            self.preview(8)
        )
    }
}

impl PartialEq for Tensor {
    fn eq(&self, other: &Self) -> bool {
        self.dtype == other.dtype
            && self.shape == other.shape
            && match (&self.data, &other.data) {
                (Storage::Strings(a), Storage::Strings(b)) => a == b,
                (Storage::Bytes(a), Storage::Bytes(b)) => a == b,
                _ => false,
            }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use half::f16;

    #[test]
    fn vec_round_trip_without_copy() {
        let t = Tensor::from_vec(vec![2, 2], vec![1.0f32, 2.0, 3.0, 4.0]).unwrap();
        assert!(matches!(t.as_slice::<f32>().unwrap(), Cow::Borrowed(_)));
        assert_eq!(t.view::<f32>().unwrap()[[1, 0]], 3.0);
        assert!(t.as_slice::<f64>().is_err());
    }

    #[test]
    fn misaligned_bytes_are_copied() {
        let mut buf = vec![0u8; 9];
        buf[1..5].copy_from_slice(&1.5f32.to_le_bytes());
        let b = Bytes::from(buf).slice(1..5);
        let t = Tensor::from_bytes(DType::F32, vec![1], b).unwrap();
        assert_eq!(t.to_vec::<f32>().unwrap(), vec![1.5]);
    }

    #[test]
    fn byte_count_must_match() {
        let err = Tensor::from_bytes(DType::F32, vec![3], Bytes::from(vec![0u8; 8])).unwrap_err();
        assert!(err.to_string().contains("needs 12 bytes"));
        assert!(Tensor::from_bytes(DType::F32, vec![usize::MAX, 4], Bytes::new()).is_err());
    }

    #[test]
    fn f16_and_bool_and_strings() {
        let t = Tensor::from_vec(vec![2], vec![f16::from_f32(0.5), f16::from_f32(-2.0)]).unwrap();
        assert_eq!(t.to_f64_vec().unwrap(), vec![0.5, -2.0]);
        let b = Tensor::from_vec(vec![2], vec![true, false]).unwrap();
        assert_eq!(b.to_vec::<bool>().unwrap(), vec![true, false]);
        let s = Tensor::from_strings(vec![1], vec!["a".into()]).unwrap();
        assert_eq!(s.strings().unwrap(), &["a".to_string()]);
    }
}
