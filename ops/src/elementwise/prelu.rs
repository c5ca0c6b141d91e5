use xnpu_core::{Result, ValueType};

use super::broadcast::like_first;
use crate::{InferInput, OpDef};

/// PRelu (ONNX opsets 1–16): `x` when `x >= 0`, else `slope * x`, where `slope` broadcasts
/// unidirectionally (numpy rules) to `X`'s shape. The output has `X`'s dtype and shape.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PRelu;

impl OpDef for PRelu {
    const NAMES: &'static [&'static str] = &["PRelu"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        Ok(vec![like_first(inputs, None)])
    }
}
