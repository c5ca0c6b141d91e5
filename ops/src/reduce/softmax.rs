use xnpu_core::shape::normalize_axis;
use xnpu_core::{Error, Result, ValueType};

use super::shape::same_as_input;
use crate::infer::input;
use crate::{InferInput, OpDef};

/// What a [`Softmax`] computes over each slice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SoftmaxKind {
    /// exp(x - max) / sum(exp(x - max)).
    Softmax,
    /// x - max - ln(sum(exp(x - max))).
    LogSoftmax,
    /// 1 at the first largest element, 0 elsewhere.
    Hardmax,
}

impl SoftmaxKind {
    pub fn op_name(self) -> &'static str {
        match self {
            SoftmaxKind::Softmax => "Softmax",
            SoftmaxKind::LogSoftmax => "LogSoftmax",
            SoftmaxKind::Hardmax => "Hardmax",
        }
    }
}

/// Softmax, LogSoftmax and Hardmax (ONNX opsets 1, 11, 13).
///
/// The output has the dtype and shape of input 0 (a float tensor). With `coerce_2d` (opsets
/// before 13) the input is viewed as a matrix of shape [d0*...*d(axis-1), d(axis)*...*dn]
/// and each row is one slice; otherwise (opset 13 on) each slice runs along the single dim
/// `axis`. Negative axes count from the end. Computed in f64 and rounded once to the dtype,
/// except Softmax on f16 and bf16: there each step (`x - max`, `exp`, the sum, the division)
/// is rounded to the dtype, the bf16 sum at every addition, as ONNX's reference computes it in
/// NumPy on such arrays (once-rounded results differ from it by a step in some values).
#[derive(Clone, Debug, PartialEq)]
pub struct Softmax {
    pub kind: SoftmaxKind,
    pub axis: i64,
    pub coerce_2d: bool,
}

impl OpDef for Softmax {
    const NAMES: &'static [&'static str] = &["Softmax", "LogSoftmax", "Hardmax"];

    fn name(&self) -> &'static str {
        self.kind.op_name()
    }

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        if let Some(rank) = input(inputs, 0).and_then(|x| x.rank()) {
            if self.coerce_2d {
                // The matrix split point may be anywhere in [-rank, rank].
                let r = rank as i64;
                if self.axis < -r || self.axis > r {
                    return Err(Error::model(format!(
                        "axis {} is out of range for rank {rank}",
                        self.axis
                    )));
                }
            } else {
                normalize_axis(self.axis, rank)?;
            }
        }
        Ok(vec![same_as_input(inputs, 0)])
    }
}
