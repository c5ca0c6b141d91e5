use xnpu_core::narrow::RoundMode;
use xnpu_core::{DType, Error, Result, ValueType};

use super::broadcast::like_first;
use crate::infer::input;
use crate::{InferInput, OpDef};

/// Cast (ONNX opsets 1–28): converts every element of the input to dtype `to`; the shape is
/// unchanged.
///
/// - float → float: rounded to nearest even; ±infinity when out of range.
/// - float → integer: truncated toward zero (saturating when out of range; ONNX leaves that
///   undefined); NaN gives 0.
/// - integer → integer: the low bits are kept (two's complement wrap-around, e.g. 200i16 → -56i8).
/// - integer → float: nearest representable value.
/// - anything → bool: zero is false, everything else (NaN included) is true; bool → number: 1 / 0.
/// - number → string: integers in decimal; floats as the shortest text that reads back to the
///   same value, in Python's `repr` style (`1.5`, `1e-05`, `inf`, `nan`); bools as `True`/`False`.
/// - string → number: decimal or scientific notation; `inf`/`+inf`/`-inf`/`nan` in any case;
///   to integers, an integral text is parsed exactly and other numbers are truncated; a text
///   that is not a number is an error. string → bool: a number that is nonzero, or `true`.
///
/// The narrow dtypes (ONNX's rules, those of `xnpu_core::narrow`):
/// - to float8 (E4M3FN, E4M3FNUZ, E5M2, E5M2FNUZ): rounded to nearest even; with
///   `saturate` (the default) values beyond the largest finite one, ±inf included, become
///   it, without it they become ±inf (E5M2) or NaN; NaN stays NaN.
/// - to float4 E2M1: rounded to nearest even, always saturating; NaN becomes +0.
/// - to FLOAT8E8M0: the power of two `round_mode` picks (up, down, nearest) on the f32
///   value, the sign ignored; with `saturate` the largest power instead of NaN.
/// - to INT4/UINT4/INT2/UINT2: integers keep their low bits; floats are truncated toward
///   zero, and become 0 when that is out of range (NaN, ±inf included), as ONNX's reference
///   does (ONNX leaves it undefined).
/// - from a narrow dtype: its exact value (f32 for the floats, i8/u8 for the integers),
///   then cast as above.
#[derive(Clone, Debug, PartialEq)]
pub struct Cast {
    pub to: DType,
    /// Float8 targets: saturate instead of overflowing to inf/NaN (opset 19; default true).
    pub saturate: bool,
    /// FLOAT8E8M0 targets: how to round (opset 24; default up).
    pub round_mode: RoundMode,
}

impl Cast {
    /// A cast to `to` with the attributes' defaults.
    pub fn to(to: DType) -> Cast {
        Cast {
            to,
            saturate: true,
            round_mode: RoundMode::Up,
        }
    }
}

impl OpDef for Cast {
    const NAMES: &'static [&'static str] = &["Cast"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        Ok(vec![like_first(inputs, Some(self.to))])
    }
}

/// CastLike (ONNX opsets 15–25): [`Cast`] to the dtype of the second input (whose values are
/// not read), with Cast's `saturate` and `round_mode`.
#[derive(Clone, Debug, PartialEq)]
pub struct CastLike {
    pub saturate: bool,
    pub round_mode: RoundMode,
}

impl Default for CastLike {
    fn default() -> CastLike {
        CastLike {
            saturate: true,
            round_mode: RoundMode::Up,
        }
    }
}

impl OpDef for CastLike {
    const NAMES: &'static [&'static str] = &["CastLike"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        let to = input(inputs, 1).and_then(|x| x.dtype());
        Ok(vec![match to {
            Some(to) => like_first(inputs, Some(to)),
            None => ValueType::Unknown,
        }])
    }
}

/// BitCast (ONNX opset 26): reinterprets the little-endian bytes of each element as dtype `to`,
/// which must have the same size as the input's dtype; the shape is unchanged. Strings are not
/// allowed. A byte reinterpreted as bool is true when nonzero.
#[derive(Clone, Debug, PartialEq)]
pub struct BitCast {
    pub to: DType,
}

impl OpDef for BitCast {
    const NAMES: &'static [&'static str] = &["BitCast"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        if let Some(from) = input(inputs, 0).and_then(|x| x.dtype()) {
            check_bitcast(from, self.to)?;
        }
        Ok(vec![like_first(inputs, Some(self.to))])
    }
}

/// Whether `from` can be bit-cast to `to`: neither is a string and both have the same bits
/// per element.
pub fn check_bitcast(from: DType, to: DType) -> Result<()> {
    if from == DType::String || to == DType::String {
        return Err(Error::model(format!(
            "BitCast from {from} to {to}: strings cannot be bit-cast"
        )));
    }
    if from.bits() != to.bits() {
        return Err(Error::model(format!(
            "BitCast from {from} ({} bits) to {to} ({} bits): the sizes must be equal",
            from.bits(),
            to.bits()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitcast_needs_equal_sizes() {
        assert!(check_bitcast(DType::F32, DType::I32).is_ok());
        assert!(check_bitcast(DType::Bool, DType::U8).is_ok());
        let err = check_bitcast(DType::F32, DType::I64)
            .unwrap_err()
            .to_string();
        assert!(err.contains("32 bits") && err.contains("64 bits"), "{err}");
        assert!(check_bitcast(DType::String, DType::U8).is_err());
    }
}
