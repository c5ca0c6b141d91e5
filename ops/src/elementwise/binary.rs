use xnpu_core::{DType, Result, ValueType};

use super::broadcast::{broadcast_type, like_first};
use crate::{InferInput, OpDef};

/// A function of two elements. Both inputs have the same dtype (except `Pow`'s exponent);
/// integers wrap on overflow like numpy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryKind {
    Add,
    Sub,
    Mul,
    /// Integers: truncated toward zero; division by zero is an error.
    Div,
    /// `a ** b` in the base's dtype. The exponent may have any numeric dtype. Computed in f64
    /// and converted back, except integer ** non-negative integer, which is exact (wrapping).
    Pow,
    /// With `fmod`, `a - trunc(a / b) * b` (sign of `a`, C `fmod`); without, `a - floor(a / b) * b`
    /// (sign of `b`, Python `%`). Integer modulo by zero is an error; float modulo by zero is NaN.
    Mod {
        fmod: bool,
    },
    /// Shift of `a` by `b` bits (integers). A left shift discards the bits shifted out; a right
    /// shift is arithmetic for signed dtypes. A shift by a negative amount or by the bit width
    /// or more gives -1 for a right shift of a negative `a`, else 0.
    BitShift {
        left: bool,
    },
    BitwiseAnd,
    BitwiseOr,
    BitwiseXor,
    /// Logical and of bools.
    And,
    Or,
    Xor,
    /// Equality of numbers, bools or strings; the output is bool.
    Equal,
    /// Comparisons of numbers; the output is bool (false when either is NaN).
    Less,
    Greater,
    LessOrEqual,
    GreaterOrEqual,
}

impl BinaryKind {
    pub fn name(self) -> &'static str {
        match self {
            BinaryKind::Add => "Add",
            BinaryKind::Sub => "Sub",
            BinaryKind::Mul => "Mul",
            BinaryKind::Div => "Div",
            BinaryKind::Pow => "Pow",
            BinaryKind::Mod { .. } => "Mod",
            BinaryKind::BitShift { .. } => "BitShift",
            BinaryKind::BitwiseAnd => "BitwiseAnd",
            BinaryKind::BitwiseOr => "BitwiseOr",
            BinaryKind::BitwiseXor => "BitwiseXor",
            BinaryKind::And => "And",
            BinaryKind::Or => "Or",
            BinaryKind::Xor => "Xor",
            BinaryKind::Equal => "Equal",
            BinaryKind::Less => "Less",
            BinaryKind::Greater => "Greater",
            BinaryKind::LessOrEqual => "LessOrEqual",
            BinaryKind::GreaterOrEqual => "GreaterOrEqual",
        }
    }

    /// Whether the output is bool whatever the input dtype.
    pub fn is_predicate(self) -> bool {
        matches!(
            self,
            BinaryKind::Equal
                | BinaryKind::Less
                | BinaryKind::Greater
                | BinaryKind::LessOrEqual
                | BinaryKind::GreaterOrEqual
        )
    }
}

/// Add, Sub, Mul, Div, Pow, Mod, BitShift, BitwiseAnd/Or/Xor, And, Or, Xor, Equal, Less,
/// Greater, LessOrEqual, GreaterOrEqual (all ONNX opsets): `kind` applied to the elements of
/// `A` and `B` after numpy-style multidirectional broadcasting (see [`BinaryKind`]). The output
/// has `A`'s dtype, or bool for comparisons.
///
/// `legacy_axis` is the opset 1–6 form `broadcast=1, axis=k`: `B`'s shape is aligned with `A`'s
/// dims `k..k+rank(B)` (instead of with the trailing dims) and broadcast to `A`'s shape.
#[derive(Clone, Debug, PartialEq)]
pub struct Binary {
    pub kind: BinaryKind,
    pub legacy_axis: Option<i64>,
}

impl Binary {
    pub fn new(kind: BinaryKind) -> Self {
        Binary {
            kind,
            legacy_axis: None,
        }
    }
}

impl OpDef for Binary {
    const NAMES: &'static [&'static str] = &[
        "Add",
        "Sub",
        "Mul",
        "Div",
        "Pow",
        "Mod",
        "BitShift",
        "BitwiseAnd",
        "BitwiseOr",
        "BitwiseXor",
        "And",
        "Or",
        "Xor",
        "Equal",
        "Less",
        "Greater",
        "LessOrEqual",
        "GreaterOrEqual",
    ];

    fn name(&self) -> &'static str {
        self.kind.name()
    }

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        let dtype = self.kind.is_predicate().then_some(DType::Bool);
        Ok(vec![match self.legacy_axis {
            Some(_) => like_first(inputs, dtype),
            None => broadcast_type(inputs, dtype)?,
        }])
    }
}
