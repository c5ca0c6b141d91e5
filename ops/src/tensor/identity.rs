use xnpu_core::{Result, ValueType};

use crate::infer::input;
use crate::{InferInput, OpDef};

/// Identity (ONNX opsets 1, 13, 14, 16, 19, 21, 23): the output is the input — a tensor,
/// sequence or optional — unchanged.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Identity;

impl OpDef for Identity {
    const NAMES: &'static [&'static str] = &["Identity"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        Ok(vec![
            input(inputs, 0).map_or(ValueType::Unknown, |x| x.ty.clone())
        ])
    }
}
