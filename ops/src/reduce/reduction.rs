use xnpu_core::{Dim, Shape, TensorType, ValueType};

use crate::infer::{input, normalize_axis};
use crate::InferInput;

/// How a reduction combines the elements of a group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReduceKind {
    Max,
    Min,
    Sum,
    Mean,
    Prod,
    /// Sum of absolute values.
    L1,
    /// Square root of the sum of squares.
    L2,
    /// Log of the sum.
    LogSum,
    /// Log of the sum of exponentials (computed stably).
    LogSumExp,
    SumSquare,
}

impl ReduceKind {
    pub fn onnx_name(self) -> &'static str {
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

/// Reduce* (ONNX opsets 1–18): combines the elements along `axes` (from the attribute, or
/// from input 1 in later opsets). No axes reduces everything, unless `noop_with_empty_axes`,
/// which returns the input unchanged. `keepdims` keeps reduced axes as size 1. An empty group
/// gives the identity of the combination (0 for sums, 1 for products, -inf for max, +inf
/// for min, -inf for log-sums).
#[derive(Clone, Debug, PartialEq)]
pub struct Reduce {
    pub kind: ReduceKind,
    /// Axes given as an attribute; `None` means input 1 (or all axes when absent).
    pub axes: Option<Vec<i64>>,
    pub keepdims: bool,
    pub noop_with_empty_axes: bool,
}

impl Reduce {
    pub fn infer(&self, inputs: &[Option<InferInput<'_>>]) -> ValueType {
        let Some(x) = input(inputs, 0) else {
            return ValueType::Unknown;
        };
        let Some(dtype) = x.dtype() else {
            return ValueType::Unknown;
        };
        let axes = match (&self.axes, input(inputs, 1)) {
            (Some(a), _) => Some(a.clone()),
            (None, Some(i)) => i.value.and_then(|t| t.to_i64_vec().ok()),
            (None, None) => Some(vec![]),
        };
        let shape = match (x.shape(), axes) {
            (Some(s), Some(axes)) => {
                if axes.is_empty() && self.noop_with_empty_axes {
                    Some(s.clone())
                } else {
                    let r = s.rank();
                    let ax: Option<Vec<usize>> = if axes.is_empty() {
                        Some((0..r).collect())
                    } else {
                        axes.iter().map(|&a| normalize_axis(a, r).ok()).collect()
                    };
                    ax.map(|ax| {
                        Shape(
                            s.0.iter()
                                .enumerate()
                                .filter_map(|(i, d)| match (ax.contains(&i), self.keepdims) {
                                    (true, true) => Some(Dim::Known(1)),
                                    (true, false) => None,
                                    (false, _) => Some(d.clone()),
                                })
                                .collect(),
                        )
                    })
                }
            }
            _ => None,
        };
        ValueType::Tensor(TensorType { dtype, shape })
    }
}

/// ArgMax / ArgMin (ONNX opsets 1–13): the i64 index of the largest (smallest) element along
/// `axis`; ties give the first index, or the last with `select_last_index`.
#[derive(Clone, Debug, PartialEq)]
pub struct ArgReduce {
    pub max: bool,
    pub axis: i64,
    pub keepdims: bool,
    pub select_last_index: bool,
}
