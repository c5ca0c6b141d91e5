use xnpu_core::{Result, ValueType};

use super::broadcast::like_first;
use crate::{InferInput, OpDef};

/// BiasGelu and FastGelu (`com.microsoft`): GELU of `X + bias`, with `bias` (optional for
/// FastGelu) a 1-D tensor the size of X's last dim. `tanh` picks the tanh approximation
/// (FastGelu: `0.5 x (1 + tanh(sqrt(2/π) (x + 0.044715 x³)))`), otherwise the exact erf form
/// (BiasGelu: `0.5 x (1 + erf(x / sqrt 2))`). Y has X's shape and dtype.
#[derive(Clone, Debug, PartialEq)]
pub struct BiasGelu {
    pub tanh: bool,
}

impl BiasGelu {
    pub fn op_name(&self) -> &'static str {
        if self.tanh {
            "FastGelu"
        } else {
            "BiasGelu"
        }
    }
}

impl OpDef for BiasGelu {
    const NAMES: &'static [&'static str] = &["BiasGelu", "FastGelu"];

    fn name(&self) -> &'static str {
        self.op_name()
    }

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        Ok(vec![like_first(inputs, None)])
    }
}
