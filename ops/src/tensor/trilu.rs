use xnpu_core::{DType, Error, Result, ValueType};

use super::util::{dtype, out, same_as, shape};
use crate::{InferInput, OpDef};

/// Trilu (ONNX opset 14): keeps the upper (`upper`) or lower triangle of the last two dims
/// of input 0 and zeroes the rest. Element `(i, j)` is kept when `j - i >= k` (upper) or
/// `j - i <= k` (lower), with `k` the optional i64 scalar input 1 (default 0).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Trilu {
    pub upper: bool,
}

impl Trilu {
    pub fn keeps(&self, i: usize, j: usize, k: i64) -> bool {
        let d = j as i128 - i as i128;
        if self.upper {
            d >= i128::from(k)
        } else {
            d <= i128::from(k)
        }
    }
}

impl OpDef for Trilu {
    const NAMES: &'static [&'static str] = &["Trilu"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        if let Some(s) = shape(inputs, 0) {
            if s.rank() < 2 {
                return Err(Error::model(format!(
                    "Trilu: the input must have rank 2 or more, got {s}"
                )));
            }
        }
        Ok(vec![same_as(inputs, 0)])
    }
}

/// EyeLike (ONNX opsets 9, 22): a 2-D tensor of the input's dims with ones on the diagonal
/// `j - i == k` and zeros elsewhere, of `dtype` (default: the input's dtype).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EyeLike {
    pub dtype: Option<DType>,
    pub k: i64,
}

impl OpDef for EyeLike {
    const NAMES: &'static [&'static str] = &["EyeLike"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        if let Some(s) = shape(inputs, 0) {
            if s.rank() != 2 {
                return Err(Error::model(format!(
                    "EyeLike: the input must have rank 2, got {s}"
                )));
            }
        }
        Ok(vec![out(
            self.dtype.or(dtype(inputs, 0)),
            shape(inputs, 0).cloned(),
        )])
    }
}
