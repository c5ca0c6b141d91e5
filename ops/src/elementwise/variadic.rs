use xnpu_core::{Result, ValueType};

use super::broadcast::broadcast_type;
use crate::{InferInput, OpDef};

/// Max, Min, Sum, Mean.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VariadicKind {
    /// Elementwise maximum (NaN wins).
    Max,
    /// Elementwise minimum (NaN wins).
    Min,
    Sum,
    /// The sum divided by the number of inputs.
    Mean,
}

impl VariadicKind {
    pub fn name(self) -> &'static str {
        match self {
            VariadicKind::Max => "Max",
            VariadicKind::Min => "Min",
            VariadicKind::Sum => "Sum",
            VariadicKind::Mean => "Mean",
        }
    }
}

/// Max, Min, Sum, Mean (all ONNX opsets): `kind` over one or more inputs of the same dtype,
/// after numpy-style multidirectional broadcasting of all of them.
#[derive(Clone, Debug, PartialEq)]
pub struct Variadic {
    pub kind: VariadicKind,
}

impl OpDef for Variadic {
    const NAMES: &'static [&'static str] = &["Max", "Min", "Sum", "Mean"];

    fn name(&self) -> &'static str {
        self.kind.name()
    }

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        Ok(vec![broadcast_type(inputs, None)?])
    }
}
