use xnpu_core::{Dim, Result, Shape, ValueType};

use crate::infer::{input, tensor_type};
use crate::{InferInput, OpDef};

/// CausalConvWithState (opset 27): a causal depthwise 1-D convolution with carried state.
/// Input `[B, C, L]`, weight `[C, 1, k]`, optional bias `[C]`, optional `past_state`
/// `[B, C, k - 1]` (zeros when absent). With `padded = concat(past_state, input)` along the
/// last axis, `output[b, c, t] = bias[c] + sum_j weight[c, 0, j] * padded[b, c, t + j]`
/// (`[B, C, L]`), optionally followed by SiLU (`x * sigmoid(x)`, computed in f32), and
/// `present_state` is the last `k - 1` positions of `padded` (`[B, C, k - 1]`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CausalConvWithState {
    /// Apply SiLU (the `activation` attribute "silu" or "swish").
    pub silu: bool,
}

impl OpDef for CausalConvWithState {
    const NAMES: &'static [&'static str] = &["CausalConvWithState"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        let dtype = input(inputs, 0).and_then(|x| x.dtype());
        let x = input(inputs, 0).and_then(|x| x.shape()).cloned();
        let state = match (&x, input(inputs, 1).and_then(|w| w.shape())) {
            (Some(x), Some(w)) if x.rank() == 3 && w.rank() == 3 => {
                let k = match &w.0[2] {
                    Dim::Known(k) => Dim::Known(k.saturating_sub(1)),
                    d => Dim::Sym(format!("{d}-1")),
                };
                Some(Shape(vec![x.0[0].clone(), x.0[1].clone(), k]))
            }
            _ => None,
        };
        Ok(vec![tensor_type(dtype, x), tensor_type(dtype, state)])
    }
}
