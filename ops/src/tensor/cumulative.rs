use xnpu_core::{Result, ValueType};

use super::util::same_as;
use crate::{InferInput, OpDef};

/// Which running reduction a [`Cumulative`] computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CumKind {
    Sum,
    Prod,
}

/// CumSum (ONNX opsets 11, 14) and CumProd (opset 26): the running sum/product of input 0
/// along the axis given by the scalar i32/i64 input 1 (negative counts from the rank).
/// `exclusive` leaves out the element itself (the first result is 0 or 1); `reverse` runs
/// from the end of the axis.
#[derive(Clone, Debug, PartialEq)]
pub struct Cumulative {
    pub kind: CumKind,
    pub exclusive: bool,
    pub reverse: bool,
}

impl OpDef for Cumulative {
    const NAMES: &'static [&'static str] = &["CumSum", "CumProd"];

    fn name(&self) -> &'static str {
        match self.kind {
            CumKind::Sum => "CumSum",
            CumKind::Prod => "CumProd",
        }
    }

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        Ok(vec![same_as(inputs, 0)])
    }
}
