use xnpu_core::shape::normalize_axis;
use xnpu_core::{DType, Result, ValueType};

use super::shape::reduced_shape;
use crate::infer::{input, tensor_type};
use crate::{InferInput, OpDef};

/// Which extreme an [`ArgReduce`] looks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgKind {
    Max,
    Min,
}

/// ArgMax and ArgMin (ONNX opsets 1, 11, 12, 13).
///
/// The int64 index along `axis` (negative counts from the end) of the largest (ArgMax) or
/// smallest (ArgMin) element of input 0. Ties go to the first index, or the last with
/// `select_last_index`. A NaN counts as the extreme (as numpy's argmax does). With
/// `keepdims` the axis stays as a dim of size 1, otherwise it is removed. Reducing an axis
/// of size 0 is an error.
#[derive(Clone, Debug, PartialEq)]
pub struct ArgReduce {
    pub kind: ArgKind,
    pub axis: i64,
    pub keepdims: bool,
    pub select_last_index: bool,
}

impl OpDef for ArgReduce {
    const NAMES: &'static [&'static str] = &["ArgMax", "ArgMin"];

    fn name(&self) -> &'static str {
        match self.kind {
            ArgKind::Max => "ArgMax",
            ArgKind::Min => "ArgMin",
        }
    }

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        let shape = match input(inputs, 0).and_then(|x| x.shape()) {
            Some(s) => {
                let axis = normalize_axis(self.axis, s.rank())?;
                Some(reduced_shape(s, &[axis], self.keepdims))
            }
            None => None,
        };
        Ok(vec![tensor_type(Some(DType::I64), shape)])
    }
}
