use xnpu_core::{Error, Result, Tensor, TensorType, ValueType};

use crate::infer::input;
use crate::{InferInput, OpDef};

/// LabelEncoder (ai.onnx.ml opsets 1, 2, 4): maps each element of the input to the value
/// paired with an equal key, or to `default` when no key is equal. `keys` and `values` are 1-D
/// tensors of one length; the input's dtype must be `keys`'s (string, int16/32/64, float,
/// double) and the output, of the input's shape, has `values`'s dtype. Float keys compare by
/// value (`-0.0 == 0.0`; a NaN key matches every NaN); when a key repeats, the last pair
/// wins. `default` is a one-element tensor of `values`'s dtype. (Opset 1's `classes_strings`
/// is expressed as keys/values at import.)
#[derive(Clone, Debug, PartialEq)]
pub struct LabelEncoder {
    pub keys: Tensor,
    pub values: Tensor,
    pub default: Tensor,
}

impl OpDef for LabelEncoder {
    const NAMES: &'static [&'static str] = &["LabelEncoder"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        let x = input(inputs, 0).ok_or_else(|| Error::model("input 0 is required"))?;
        if let Some(d) = x.dtype() {
            if d != self.keys.dtype() {
                return Err(Error::model(format!(
                    "the input is {d}, the keys are {}",
                    self.keys.dtype()
                )));
            }
        }
        Ok(vec![ValueType::Tensor(TensorType {
            dtype: self.values.dtype(),
            shape: x.shape().cloned(),
        })])
    }
}
