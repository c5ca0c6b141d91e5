use xnpu_core::{Result, ValueType};

use super::broadcast::like_first;
use crate::{InferInput, OpDef};

/// An activation function applied to every element; the output has the input's dtype and
/// shape. Parameters are the ONNX attributes (defaults applied at import).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ActivationKind {
    /// `1 / (1 + exp(-x))`.
    Sigmoid,
    /// `max(x, 0)` (floats and signed integers; NaN stays NaN).
    Relu,
    /// `x` when `x >= 0`, else `alpha * x`.
    LeakyRelu { alpha: f32 },
    /// `x` when `x > 0`, else `alpha * (exp(x) - 1)`.
    Elu { alpha: f32 },
    /// `gamma * x` when `x > 0`, else `gamma * alpha * (exp(x) - 1)`.
    Selu { alpha: f32, gamma: f32 },
    /// `max(0, x) + min(0, alpha * (exp(x / alpha) - 1))`.
    Celu { alpha: f32 },
    /// `x` when `x > alpha`, else 0.
    ThresholdedRelu { alpha: f32 },
    /// `max(0, min(1, alpha * x + beta))`.
    HardSigmoid { alpha: f32, beta: f32 },
    /// `x * max(0, min(1, x / 6 + 1/2))`.
    HardSwish,
    /// `ln(1 + exp(x))`.
    Softplus,
    /// `x / (1 + |x|)`.
    Softsign,
    /// `x * tanh(ln(1 + exp(x)))`.
    Mish,
    /// `x / 2 * (1 + erf(x / sqrt 2))`, or with `tanh`:
    /// `x / 2 * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 x^3)))`.
    Gelu { tanh: bool },
    /// `x * sigmoid(alpha * x)`.
    Swish { alpha: f32 },
    /// `x + bias` when `x < -lambd`, `x - bias` when `x > lambd`, else 0 (all numeric dtypes;
    /// integers are computed in f64 and converted back).
    Shrink { bias: f32, lambd: f32 },
}

impl ActivationKind {
    pub fn name(self) -> &'static str {
        match self {
            ActivationKind::Sigmoid => "Sigmoid",
            ActivationKind::Relu => "Relu",
            ActivationKind::LeakyRelu { .. } => "LeakyRelu",
            ActivationKind::Elu { .. } => "Elu",
            ActivationKind::Selu { .. } => "Selu",
            ActivationKind::Celu { .. } => "Celu",
            ActivationKind::ThresholdedRelu { .. } => "ThresholdedRelu",
            ActivationKind::HardSigmoid { .. } => "HardSigmoid",
            ActivationKind::HardSwish => "HardSwish",
            ActivationKind::Softplus => "Softplus",
            ActivationKind::Softsign => "Softsign",
            ActivationKind::Mish => "Mish",
            ActivationKind::Gelu { .. } => "Gelu",
            ActivationKind::Swish { .. } => "Swish",
            ActivationKind::Shrink { .. } => "Shrink",
        }
    }
}

/// Sigmoid, Relu, LeakyRelu, Elu, Selu, Celu, ThresholdedRelu, HardSigmoid, HardSwish,
/// Softplus, Softsign, Mish, Gelu, Swish, Shrink (all ONNX opsets): `kind` applied to every
/// element (see [`ActivationKind`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Activation {
    pub kind: ActivationKind,
}

impl OpDef for Activation {
    const NAMES: &'static [&'static str] = &[
        "Sigmoid",
        "Relu",
        "LeakyRelu",
        "Elu",
        "Selu",
        "Celu",
        "ThresholdedRelu",
        "HardSigmoid",
        "HardSwish",
        "Softplus",
        "Softsign",
        "Mish",
        "Gelu",
        "Swish",
        "Shrink",
    ];

    fn name(&self) -> &'static str {
        self.kind.name()
    }

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        Ok(vec![like_first(inputs, None)])
    }
}
