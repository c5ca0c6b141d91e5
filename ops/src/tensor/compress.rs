use xnpu_core::shape::normalize_axis;
use xnpu_core::{DType, Dim, Result, Shape, ValueType};

use super::util::{dtype, out, shape, unknown};
use crate::{InferInput, OpDef};

/// Compress (ONNX opsets 9, 11, 28): the slices of input 0 along `axis` (or its elements,
/// flattened, when `axis` is `None`) whose position has a true in the 1-D bool condition
/// (input 1). The condition may be shorter than the axis (missing entries are false), never
/// longer.
#[derive(Clone, Debug, PartialEq)]
pub struct Compress {
    pub axis: Option<i64>,
}

impl OpDef for Compress {
    const NAMES: &'static [&'static str] = &["Compress"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        let n = unknown("Compress?n");
        let dims = match (self.axis, shape(inputs, 0)) {
            (None, _) => Some(Shape(vec![n])),
            (Some(a), Some(s)) => {
                let a = normalize_axis(a, s.rank())?;
                let mut d = s.0.clone();
                d[a] = n;
                Some(Shape(d))
            }
            _ => None,
        };
        Ok(vec![out(dtype(inputs, 0), dims)])
    }
}

/// NonZero (ONNX opsets 9, 13): the i64 coordinates of the non-zero (true, non-empty string)
/// elements of the input in row-major order, as a `[rank, count]` tensor.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NonZero;

impl OpDef for NonZero {
    const NAMES: &'static [&'static str] = &["NonZero"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        let dims =
            shape(inputs, 0).map(|s| Shape(vec![Dim::Known(s.rank()), unknown("NonZero?n")]));
        Ok(vec![out(Some(DType::I64), dims)])
    }
}
