use xnpu_core::{Result, ValueType};

use super::broadcast::like_first;
use crate::{InferInput, OpDef};

/// A math function applied to every element; the output has the input's dtype and shape.
///
/// Floating-point kinds follow IEEE semantics (NaN in, NaN out; e.g. `Log(0) = -inf`,
/// `Sqrt(-1) = NaN`). Integer kinds wrap on overflow (`Neg(i8::MIN) = i8::MIN`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnaryKind {
    /// `-x` (signed integers and floats).
    Neg,
    /// `|x|` (all numeric dtypes).
    Abs,
    /// `1 / x` (floats).
    Reciprocal,
    Sqrt,
    Exp,
    /// Natural logarithm.
    Log,
    Ceil,
    Floor,
    /// To the nearest integer, halves to even (`2.5 → 2`, `-4.5 → -4`).
    Round,
    /// -1, 0 or 1 by the sign of `x` (all numeric dtypes; NaN stays NaN).
    Sign,
    /// The Gauss error function.
    Erf,
    Sin,
    Cos,
    Tan,
    Asin,
    Acos,
    Atan,
    Sinh,
    Cosh,
    Asinh,
    Acosh,
    Atanh,
    Tanh,
    /// Logical not (bool).
    Not,
    /// Bitwise complement (integers).
    BitwiseNot,
}

impl UnaryKind {
    pub fn name(self) -> &'static str {
        match self {
            UnaryKind::Neg => "Neg",
            UnaryKind::Abs => "Abs",
            UnaryKind::Reciprocal => "Reciprocal",
            UnaryKind::Sqrt => "Sqrt",
            UnaryKind::Exp => "Exp",
            UnaryKind::Log => "Log",
            UnaryKind::Ceil => "Ceil",
            UnaryKind::Floor => "Floor",
            UnaryKind::Round => "Round",
            UnaryKind::Sign => "Sign",
            UnaryKind::Erf => "Erf",
            UnaryKind::Sin => "Sin",
            UnaryKind::Cos => "Cos",
            UnaryKind::Tan => "Tan",
            UnaryKind::Asin => "Asin",
            UnaryKind::Acos => "Acos",
            UnaryKind::Atan => "Atan",
            UnaryKind::Sinh => "Sinh",
            UnaryKind::Cosh => "Cosh",
            UnaryKind::Asinh => "Asinh",
            UnaryKind::Acosh => "Acosh",
            UnaryKind::Atanh => "Atanh",
            UnaryKind::Tanh => "Tanh",
            UnaryKind::Not => "Not",
            UnaryKind::BitwiseNot => "BitwiseNot",
        }
    }
}

/// Neg, Abs, Reciprocal, Sqrt, Exp, Log, Ceil, Floor, Round, Sign, Erf, the trigonometric and
/// hyperbolic functions and their inverses, Tanh, Not, BitwiseNot (all ONNX opsets): `kind`
/// applied to every element (see [`UnaryKind`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Unary {
    pub kind: UnaryKind,
}

impl OpDef for Unary {
    const NAMES: &'static [&'static str] = &[
        "Neg",
        "Abs",
        "Reciprocal",
        "Sqrt",
        "Exp",
        "Log",
        "Ceil",
        "Floor",
        "Round",
        "Sign",
        "Erf",
        "Sin",
        "Cos",
        "Tan",
        "Asin",
        "Acos",
        "Atan",
        "Sinh",
        "Cosh",
        "Asinh",
        "Acosh",
        "Atanh",
        "Tanh",
        "Not",
        "BitwiseNot",
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
