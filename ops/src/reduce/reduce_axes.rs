use xnpu_core::shape::normalize_axes;
use xnpu_core::{Result, ValueType};

use super::shape::{like_input, reduced_shape};
use crate::infer::input;
use crate::{InferInput, OpDef};

/// What a [`Reduce`] computes over each set of reduced elements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReduceKind {
    /// Largest element; the empty set gives the lowest value of the dtype (-inf for floats,
    /// `false` for bool).
    Max,
    /// Smallest element; the empty set gives the highest value of the dtype (+inf for
    /// floats, `true` for bool).
    Min,
    /// Sum; the empty set gives 0.
    Sum,
    /// Arithmetic mean; the empty set gives NaN (0 for integers).
    Mean,
    /// Product; the empty set gives 1.
    Prod,
    /// Sum of absolute values.
    L1,
    /// Square root of the sum of squares.
    L2,
    /// Natural log of the sum (the empty set gives -inf).
    LogSum,
    /// Natural log of the sum of exponentials (the empty set gives -inf).
    LogSumExp,
    /// Sum of squares.
    SumSquare,
}

impl ReduceKind {
    pub fn op_name(self) -> &'static str {
        match self {
            ReduceKind::Max => "ReduceMax",
            ReduceKind::Min => "ReduceMin",
            ReduceKind::Sum => "ReduceSum",
            ReduceKind::Mean => "ReduceMean",
            ReduceKind::Prod => "ReduceProd",
            ReduceKind::L1 => "ReduceL1",
            ReduceKind::L2 => "ReduceL2",
            ReduceKind::LogSum => "ReduceLogSum",
            ReduceKind::LogSumExp => "ReduceLogSumExp",
            ReduceKind::SumSquare => "ReduceSumSquare",
        }
    }
}

/// ReduceMax, ReduceMin, ReduceSum, ReduceMean, ReduceProd, ReduceL1, ReduceL2, ReduceLogSum,
/// ReduceLogSumExp, ReduceSumSquare (all ONNX opsets).
///
/// Input 0 `data`; the output has its dtype. The reduced axes are `axes` when it is `Some`
/// (the attribute of older opsets), otherwise the optional int64 input 1 (opset 13 for
/// ReduceSum, 18 for the others). Negative axes count from the end; an axis out of range or
/// given twice is an error. Empty axes (absent or of length 0) reduce every axis, unless
/// `noop_with_empty_axes`, in which case no axis is reduced but each element still goes
/// through the reduction alone (ReduceSumSquare squares it, ReduceL1 and ReduceL2 take its
/// magnitude, ReduceLogSum its log), as ONNX Runtime and onnx's reference do. With `keepdims`
/// the reduced axes stay as dims of size 1, otherwise they are removed. Reducing an empty
/// set gives the kind's identity (see [`ReduceKind`]). Float inputs are computed in f64 and
/// rounded to the dtype once; integer inputs wrap like the dtype's own arithmetic; Mean, L2,
/// LogSum and LogSumExp of integers are computed in f64 and truncated toward zero.
#[derive(Clone, Debug, PartialEq)]
pub struct Reduce {
    pub kind: ReduceKind,
    /// `Some` when the axes are fixed at import (attribute); `None` to read input 1.
    pub axes: Option<Vec<i64>>,
    pub keepdims: bool,
    pub noop_with_empty_axes: bool,
}

impl OpDef for Reduce {
    const NAMES: &'static [&'static str] = &[
        "ReduceMax",
        "ReduceMin",
        "ReduceSum",
        "ReduceMean",
        "ReduceProd",
        "ReduceL1",
        "ReduceL2",
        "ReduceLogSum",
        "ReduceLogSumExp",
        "ReduceSumSquare",
    ];

    fn name(&self) -> &'static str {
        self.kind.op_name()
    }

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        let shape = input(inputs, 0).and_then(|x| x.shape());
        let axes: Option<Vec<i64>> = match &self.axes {
            Some(a) => Some(a.clone()),
            None => match input(inputs, 1) {
                None => Some(vec![]),
                Some(x) => x.value.and_then(|t| t.to_i64_vec().ok()),
            },
        };
        let out_shape = match (shape, axes) {
            (Some(s), Some(axes)) => {
                if axes.is_empty() {
                    if self.noop_with_empty_axes {
                        Some(s.clone())
                    } else {
                        let all: Vec<usize> = (0..s.rank()).collect();
                        Some(reduced_shape(s, &all, self.keepdims))
                    }
                } else {
                    let axes = normalize_axes(&axes, s.rank())?;
                    Some(reduced_shape(s, &axes, self.keepdims))
                }
            }
            _ => None,
        };
        Ok(vec![like_input(inputs, 0, out_shape)])
    }
}
