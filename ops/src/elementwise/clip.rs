use xnpu_core::{Result, ValueType};

use super::broadcast::like_first;
use crate::{InferInput, OpDef};

/// Clip (ONNX opsets 1–13): `min(max(x, lo), hi)` elementwise (so `hi` wins when `lo > hi`;
/// NaN stays NaN). The bounds are the optional scalar inputs 1 (`lo`) and 2 (`hi`) when given,
/// else `min` / `max` (the attributes of opsets before 11); no bound when neither is given.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Clip {
    pub min: Option<f32>,
    pub max: Option<f32>,
}

impl OpDef for Clip {
    const NAMES: &'static [&'static str] = &["Clip"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        Ok(vec![like_first(inputs, None)])
    }
}
