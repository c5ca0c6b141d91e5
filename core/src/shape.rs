//! Shapes whose dimensions are known numbers or named symbols, and the types of values.

use std::collections::HashMap;
use std::fmt;

use crate::{DType, Error, Result};

/// One dimension: a number, or a symbol such as `batch` that is bound when inputs arrive.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Dim {
    Known(usize),
    Sym(String),
}

impl Dim {
    pub fn known(&self) -> Option<usize> {
        match self {
            Dim::Known(n) => Some(*n),
            Dim::Sym(_) => None,
        }
    }
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dim::Known(n) => write!(f, "{n}"),
            Dim::Sym(s) => f.write_str(s),
        }
    }
}

impl From<usize> for Dim {
    fn from(n: usize) -> Self {
        Dim::Known(n)
    }
}

/// A shape of known rank.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Shape(pub Vec<Dim>);

impl Shape {
    pub fn known(dims: &[usize]) -> Self {
        Shape(dims.iter().map(|&d| Dim::Known(d)).collect())
    }

    pub fn rank(&self) -> usize {
        self.0.len()
    }

    /// The dims as numbers when all are known.
    pub fn as_known(&self) -> Option<Vec<usize>> {
        self.0.iter().map(Dim::known).collect()
    }

    /// Binds symbols to the numbers in `dims`, or says which dim disagrees.
    /// A symbol seen twice must be bound to the same number both times.
    pub fn bind(&self, dims: &[usize], bindings: &mut HashMap<String, usize>) -> Result<()> {
        if self.rank() != dims.len() {
            return Err(Error::invalid_input(format!(
                "expected rank {} (shape {self}), got rank {} (shape {:?})",
                self.rank(),
                dims.len(),
                dims
            )));
        }
        for (i, (d, &n)) in self.0.iter().zip(dims).enumerate() {
            match d {
                Dim::Known(k) if *k != n => {
                    return Err(Error::invalid_input(format!(
                        "dim {i} must be {k} (shape {self}), got {n} (shape {dims:?})"
                    )))
                }
                Dim::Known(_) => {}
                Dim::Sym(s) => match bindings.get(s) {
                    Some(&b) if b != n => {
                        return Err(Error::invalid_input(format!(
                        "dim {i} is symbol `{s}`, already bound to {b}, got {n} (shape {dims:?})"
                    )))
                    }
                    Some(_) => {}
                    None => {
                        bindings.insert(s.clone(), n);
                    }
                },
            }
        }
        Ok(())
    }

    /// Replaces bound symbols with their numbers.
    pub fn resolve(&self, bindings: &HashMap<String, usize>) -> Shape {
        Shape(
            self.0
                .iter()
                .map(|d| match d {
                    Dim::Sym(s) => bindings.get(s).map_or(d.clone(), |&n| Dim::Known(n)),
                    k => k.clone(),
                })
                .collect(),
        )
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{d}")?;
        }
        f.write_str("]")
    }
}

/// The type of a tensor: its dtype and, when known, its shape.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TensorType {
    pub dtype: DType,
    /// `None` when even the rank is unknown.
    pub shape: Option<Shape>,
}

impl TensorType {
    pub fn new(dtype: DType, shape: Shape) -> Self {
        TensorType {
            dtype,
            shape: Some(shape),
        }
    }
    pub fn unranked(dtype: DType) -> Self {
        TensorType { dtype, shape: None }
    }
}

impl fmt::Display for TensorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.shape {
            Some(s) => write!(f, "{}{}", self.dtype, s),
            None => write!(f, "{}[?]", self.dtype),
        }
    }
}

/// The type of a value in a graph.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ValueType {
    Tensor(TensorType),
    Sequence(Box<ValueType>),
    Optional(Box<ValueType>),
    /// Not known at import (filled in when the value is computed).
    Unknown,
}

impl ValueType {
    pub fn tensor(&self) -> Option<&TensorType> {
        match self {
            ValueType::Tensor(t) => Some(t),
            _ => None,
        }
    }
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValueType::Tensor(t) => write!(f, "{t}"),
            ValueType::Sequence(t) => write!(f, "seq<{t}>"),
            ValueType::Optional(t) => write!(f, "optional<{t}>"),
            ValueType::Unknown => f.write_str("?"),
        }
    }
}

/// An axis as ONNX writes it (a negative one counts from the end) of a tensor of rank
/// `rank`, as an index in `0..rank`. The one rule every crate uses: a scalar has no axis.
pub fn normalize_axis(axis: i64, rank: usize) -> Result<usize> {
    let r = i64::try_from(rank).unwrap_or(i64::MAX);
    let a = if axis < 0 {
        axis.saturating_add(r)
    } else {
        axis
    };
    if a < 0 || a >= r {
        return Err(Error::compute(format!(
            "axis {axis} is out of range for rank {rank}"
        )));
    }
    Ok(a as usize)
}

/// Several axes (see [`normalize_axis`]), in the order given; an axis given twice (also
/// as its negative) is an error.
pub fn normalize_axes(axes: &[i64], rank: usize) -> Result<Vec<usize>> {
    let mut out = Vec::with_capacity(axes.len());
    for &a in axes {
        let n = normalize_axis(a, rank)?;
        if out.contains(&n) {
            return Err(Error::compute(format!(
                "axis {a} is given twice in {axes:?}"
            )));
        }
        out.push(n);
    }
    Ok(out)
}

/// The number of elements of a shape, or an error when the product overflows `usize`.
pub fn checked_numel(dims: &[usize]) -> Result<usize> {
    dims.iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| Error::model(format!("the product of dims {dims:?} overflows")))
}

/// The byte size of a `dtype` tensor of dims `dims` ([`DType::byte_len`] of its elements),
/// or an error when it overflows.
pub fn checked_nbytes(dtype: DType, dims: &[usize]) -> Result<usize> {
    dtype
        .byte_len(checked_numel(dims)?)
        .ok_or_else(|| Error::model(format!("the byte size of {dtype}{dims:?} overflows")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negative_axes_count_from_the_end_and_a_scalar_has_none() {
        assert_eq!(normalize_axis(-1, 3).unwrap(), 2);
        assert_eq!(normalize_axis(0, 3).unwrap(), 0);
        assert!(normalize_axis(3, 3).is_err());
        assert!(normalize_axis(-4, 3).is_err());
        assert!(normalize_axis(0, 0).is_err());
        assert!(normalize_axis(i64::MIN, 2).is_err());
        assert_eq!(normalize_axes(&[-1, 0], 2).unwrap(), vec![1, 0]);
        let e = normalize_axes(&[1, -2], 3).unwrap_err().to_string();
        assert_eq!(e, "axis -2 is given twice in [1, -2]");
    }

    #[test]
    fn binding_symbols_checks_consistency() {
        let s = Shape(vec![
            Dim::Sym("n".into()),
            Dim::Known(3),
            Dim::Sym("n".into()),
        ]);
        let mut b = HashMap::new();
        s.bind(&[2, 3, 2], &mut b).unwrap();
        assert_eq!(s.resolve(&b), Shape::known(&[2, 3, 2]));
        let mut b = HashMap::new();
        let err = s.bind(&[2, 3, 4], &mut b).unwrap_err().to_string();
        assert!(err.contains("symbol `n`"), "{err}");
        assert!(s.bind(&[2, 4, 2], &mut HashMap::new()).is_err());
    }

    #[test]
    fn numel_overflow_is_an_error() {
        assert!(checked_numel(&[usize::MAX, 2]).is_err());
        assert_eq!(checked_numel(&[]).unwrap(), 1);
        assert!(checked_nbytes(DType::F64, &[usize::MAX / 4]).is_err());
    }
}
