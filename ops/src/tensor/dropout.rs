use xnpu_core::{DType, Result, ValueType};

use super::util::{out, same_as, shape};
use crate::{InferInput, OpDef};

/// Dropout (ONNX opsets 1, 6, 7, 10, 12, 13, 22), inference only: output 0 is input 0 and
/// the optional output 1 (the mask) is all true, of input 0's dims. Training mode (optional
/// bool input 2 true, opset ≥ 12) with a ratio above 0 (`ratio` attribute before opset 12,
/// optional scalar input 1 after; default 0.5) drops elements at random and is refused at
/// run time; with ratio 0 it is the identity too. Before opset 12 there is no training-mode
/// input and the node always runs as in inference (`is_test` of opsets < 7 is ignored, as
/// inference runtimes do).
#[derive(Clone, Debug, PartialEq)]
pub struct Dropout {
    /// The ratio given as an attribute (opsets < 12).
    pub ratio: Option<f32>,
    pub seed: Option<i64>,
}

impl OpDef for Dropout {
    const NAMES: &'static [&'static str] = &["Dropout"];

    fn infer(&self, inputs: &[Option<InferInput<'_>>], n_outputs: usize) -> Result<Vec<ValueType>> {
        let mut v = vec![same_as(inputs, 0)];
        if n_outputs > 1 {
            v.push(out(Some(DType::Bool), shape(inputs, 0).cloned()));
        }
        Ok(v)
    }
}
