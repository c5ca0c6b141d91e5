use xnpu_core::shape::normalize_axis;
use xnpu_core::{DType, Dim, Error, Result, Shape, ValueType};

use super::util::{const_ints, dtype, out, shape, unknown};
use crate::{InferInput, OpDef};

/// TopK (ONNX opsets 1, 10, 11, 24): the `k` largest (or smallest when `!largest`) elements
/// of input 0 along `axis` (output 0) and their i64 indices (output 1). `k` is the `k`
/// attribute (opset 1, kept in `k`) or the one-element i64 input 1. Results are ordered
/// best first (also when `sorted` is 0, which allows any order); equal values keep the lower
/// index first. NaN counts as larger than every number.
#[derive(Clone, Debug, PartialEq)]
pub struct TopK {
    pub axis: i64,
    pub largest: bool,
    pub sorted: bool,
    pub k: Option<i64>,
}

impl OpDef for TopK {
    const NAMES: &'static [&'static str] = &["TopK"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        let k = self
            .k
            .or_else(|| const_ints(inputs, 1).and_then(|v| v.first().copied()));
        let dims = match shape(inputs, 0) {
            Some(s) => {
                let a = normalize_axis(self.axis, s.rank())?;
                let mut d = s.0.clone();
                d[a] = match k {
                    Some(k) if k < 0 => {
                        return Err(Error::model(format!("TopK: k = {k} is negative")))
                    }
                    Some(k) => Dim::Known(k as usize),
                    None => unknown("TopK?k"),
                };
                Some(Shape(d))
            }
            None => None,
        };
        Ok(vec![
            out(dtype(inputs, 0), dims.clone()),
            out(Some(DType::I64), dims),
        ])
    }
}
