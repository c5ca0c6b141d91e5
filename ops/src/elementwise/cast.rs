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
/// The `saturate` and `round_mode` attributes only concern float8 types, which xnpu does not
/// have.
#[derive(Clone, Debug, PartialEq)]
pub struct Cast {
    pub to: DType,
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
/// not read).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CastLike;

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
