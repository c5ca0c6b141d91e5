use xnpu_core::{DType, Dim, Result, Shape, Tensor, ValueType};

use super::util::{out, shape, unknown};
use crate::{InferInput, OpDef};

/// Shape (ONNX opsets 1, 13, 15, 19, 21, 23, 24, 25): a 1-D i64 tensor of the input's dims
/// `start..end`. Negative `start`/`end` count from the rank; both are then clamped to
/// `[0, rank]`; `end` defaults to the rank; an empty range gives an empty tensor.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ShapeOf {
    pub start: i64,
    pub end: Option<i64>,
}

impl ShapeOf {
    /// The range of dims taken from an input of rank `rank`.
    pub fn range(&self, rank: usize) -> std::ops::Range<usize> {
        let r = rank as i64;
        let clamp = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
        let start = clamp(self.start);
        let end = clamp(self.end.unwrap_or(r));
        start..end.max(start)
    }
}

impl OpDef for ShapeOf {
    const NAMES: &'static [&'static str] = &["Shape"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        let len = match shape(inputs, 0) {
            Some(s) => Dim::Known(self.range(s.rank()).len()),
            None => unknown("Shape?len"),
        };
        Ok(vec![out(Some(DType::I64), Some(Shape(vec![len])))])
    }

    /// The dims, when the input's are all known.
    fn fold(&self, inputs: &[Option<InferInput<'_>>]) -> Option<Vec<Tensor>> {
        let dims = shape(inputs, 0)?.as_known()?;
        let v: Vec<i64> = dims[self.range(dims.len())]
            .iter()
            .map(|&d| d as i64)
            .collect();
        Tensor::from_vec(vec![v.len()], v).ok().map(|t| vec![t])
    }
}

/// Size (ONNX opsets 1, 13, 19, 21, 23, 24, 25): the input's number of elements as an i64
/// scalar.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Size;

impl OpDef for Size {
    const NAMES: &'static [&'static str] = &["Size"];

    fn infer(
        &self,
        _inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        Ok(vec![out(Some(DType::I64), Some(Shape(vec![])))])
    }

    /// The element count, when the input's dims are all known.
    fn fold(&self, inputs: &[Option<InferInput<'_>>]) -> Option<Vec<Tensor>> {
        let n = xnpu_core::shape::checked_numel(&shape(inputs, 0)?.as_known()?).ok()?;
        Some(vec![Tensor::scalar(i64::try_from(n).ok()?)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_range_clamps_like_python_slices() {
        let s = |start, end| ShapeOf { start, end };
        assert_eq!(s(0, None).range(3), 0..3);
        assert_eq!(s(-1, None).range(3), 2..3);
        assert_eq!(s(-10, Some(10)).range(3), 0..3);
        assert_eq!(s(2, Some(1)).range(3), 2..2);
        assert_eq!(s(1, Some(-1)).range(3), 1..2);
    }
}
