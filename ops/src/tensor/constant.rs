use xnpu_core::{Result, Shape, Tensor, TensorType, ValueType};

use super::util::{const_ints, out, shape, unknown_dims};
use crate::{InferInput, OpDef};

/// Constant (ONNX opsets 1, 9, 11, 12, 13, 19, 21, 23, 24, 25): no inputs; the output is
/// `value`. Every attribute form (`value`, `sparse_value`, `value_float(s)`, `value_int(s)`,
/// `value_string(s)`) is turned into this one tensor at import.
#[derive(Clone, Debug, PartialEq)]
pub struct Constant {
    pub value: Tensor,
}

impl OpDef for Constant {
    const NAMES: &'static [&'static str] = &["Constant"];

    fn infer(
        &self,
        _inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        Ok(vec![ValueType::Tensor(TensorType::new(
            self.value.dtype(),
            Shape::known(self.value.shape()),
        ))])
    }

    fn fold(&self, _inputs: &[Option<InferInput<'_>>]) -> Option<Vec<Tensor>> {
        Some(vec![self.value.clone()])
    }
}

/// ConstantOfShape (ONNX opsets 9, 20, 21, 23, 24, 25): input 0 is a 1-D integer tensor of
/// dims (all ≥ 0); the output has those dims and every element equal to `value`, a
/// one-element tensor whose dtype is the output's (f32 0 when the model gives none).
#[derive(Clone, Debug, PartialEq)]
pub struct ConstantOfShape {
    pub value: Tensor,
}

impl OpDef for ConstantOfShape {
    const NAMES: &'static [&'static str] = &["ConstantOfShape"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        let dims = match const_ints(inputs, 0) {
            Some(v) if v.iter().all(|&d| d >= 0) => Some(Shape::known(
                &v.iter().map(|&d| d as usize).collect::<Vec<_>>(),
            )),
            Some(v) => {
                return Err(xnpu_core::Error::model(format!(
                    "ConstantOfShape: dims {v:?} must not be negative"
                )))
            }
            None => shape(inputs, 0)
                .and_then(|s| s.0.first())
                .and_then(|d| d.known())
                .map(|n| unknown_dims("ConstantOfShape", n))
                .transpose()?,
        };
        Ok(vec![out(Some(self.value.dtype()), dims)])
    }
}
