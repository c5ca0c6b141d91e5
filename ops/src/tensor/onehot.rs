use xnpu_core::{Dim, Result, Shape, ValueType};

use super::util::{dtype, out, shape, unknown};
use crate::infer::input;
use crate::{InferInput, OpDef};

/// OneHot (ONNX opsets 9, 11, 28): for indices (input 0, any numeric type, truncated to
/// integers; negative counts from `depth`), a tensor with a new axis of length `depth`
/// (scalar input 1, truncated) inserted at `axis` (in `[-r-1, r]`), holding `values[1]`
/// where the position equals the index and `values[0]` elsewhere (input 2, two elements).
/// Indices outside `[-depth, depth)` give an all-`values[0]` row.
#[derive(Clone, Debug, PartialEq)]
pub struct OneHot {
    pub axis: i64,
}

impl OneHot {
    /// Where the new axis goes in an output of rank `rank + 1`.
    pub fn new_axis(&self, rank: usize) -> Result<usize> {
        let r = rank as i64 + 1;
        let a = if self.axis < 0 {
            self.axis + r
        } else {
            self.axis
        };
        if !(0..r).contains(&a) {
            return Err(xnpu_core::Error::compute(format!(
                "OneHot: axis {} is out of range for indices of rank {rank}",
                self.axis
            )));
        }
        Ok(a as usize)
    }
}

impl OpDef for OneHot {
    const NAMES: &'static [&'static str] = &["OneHot"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        let depth = input(inputs, 1)
            .and_then(|x| x.value)
            .and_then(|t| t.to_f64_vec().ok())
            .and_then(|v| v.first().copied())
            .filter(|d| (1.0..1e15).contains(d))
            .map_or_else(|| unknown("OneHot?depth"), |d| Dim::Known(d as usize));
        let dims = match shape(inputs, 0) {
            Some(s) => {
                let a = self.new_axis(s.rank())?;
                let mut d = s.0.clone();
                d.insert(a, depth);
                Some(Shape(d))
            }
            None => None,
        };
        Ok(vec![out(dtype(inputs, 2), dims)])
    }
}
