use xnpu_core::shape::normalize_axis;
use xnpu_core::{DType, Result, Shape, ValueType};

use super::util::{dtype, out, shape, unknown};
use crate::{InferInput, OpDef};

/// Unique (ONNX opsets 11, 28): the distinct elements of input 0 (flattened when `axis` is
/// `None`) or its distinct slices along `axis`. Outputs: the unique values `Y` (sorted
/// ascending, slices compared lexicographically, when `sorted`; else in order of first
/// occurrence), then i64 `indices` (first occurrence of each in the input), `inverse_indices`
/// (for each input element/slice, its position in `Y`) and `counts`.
#[derive(Clone, Debug, PartialEq)]
pub struct Unique {
    pub axis: Option<i64>,
    pub sorted: bool,
}

impl OpDef for Unique {
    const NAMES: &'static [&'static str] = &["Unique"];

    fn infer(&self, inputs: &[Option<InferInput<'_>>], n_outputs: usize) -> Result<Vec<ValueType>> {
        let n = unknown("Unique?n");
        let y = match (self.axis, shape(inputs, 0)) {
            (None, _) => Some(Shape(vec![n.clone()])),
            (Some(a), Some(s)) => {
                let a = normalize_axis(a, s.rank())?;
                let mut d = s.0.clone();
                d[a] = n.clone();
                Some(Shape(d))
            }
            (Some(_), None) => None,
        };
        let mut v = vec![out(dtype(inputs, 0), y)];
        let inverse = match (self.axis, shape(inputs, 0)) {
            (None, Some(s)) => super::util::product(&s.0),
            (Some(a), Some(s)) => s.0[normalize_axis(a, s.rank())?].clone(),
            _ => unknown("Unique?len"),
        };
        for i in 1..n_outputs {
            let d = if i == 2 { inverse.clone() } else { n.clone() };
            v.push(out(Some(DType::I64), Some(Shape(vec![d]))));
        }
        Ok(v)
    }
}
