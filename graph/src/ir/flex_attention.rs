//! FlexAttention: attention whose scores and probabilities pass through graphs given as
//! attributes. It holds graphs, so it lives beside the IR (like control flow) rather than in
//! `ops`.

use xnpu_core::{DType, Error, Result, Shape, ValueType};
use xnpu_ops::infer::{input, tensor_type};
use xnpu_ops::InferInput;

use super::Graph;

/// FlexAttention (`ai.onnx.preview` opset 1): attention over rank-4 inputs Q `[B, Hq, L, E]`,
/// K `[B, Hkv, S, E]`, V `[B, Hkv, S, Ev]` (float16, bfloat16, float or double, all of one
/// dtype), output Y `[B, Hq, L, Ev]` of that dtype. `Hq` must be a multiple of `Hkv`; query
/// head `h` uses K/V head `h / (Hq / Hkv)`.
///
/// The computation, in the order and precision of onnx's reference implementation:
///
/// 1. `s = sqrt(scale)` in f32 (`scale` defaults to `1 / sqrt(E)`), rounded to the input
///    dtype; `scores = (Q·s) @ (K·s)^T`, the products rounded to the input dtype and the
///    matmul accumulated in f32 (f64 for double) and rounded to the input dtype;
/// 2. scores cast to the *compute dtype*: `softmax_precision` when given, else f32 (f64 for
///    double inputs);
/// 3. `score_mod(scores)` when given; its output is cast to the compute dtype;
/// 4. softmax over the last axis, `exp(x - max) / sum`, each step rounded to the compute
///    dtype (a row of all -inf gives NaN, as the reference does);
/// 5. `prob_mod(probs)` when given; its output is cast to the compute dtype;
/// 6. `Y = probs @ V` in the compute dtype (V cast to it), rounded to the input dtype.
///
/// Each modifier graph takes one tensor `[B, Hq, L, S]` of the compute dtype and returns one
/// tensor of that shape (it is an error otherwise, at import for the counts and at run time
/// for the shape). The graphs may read values of the enclosing graph, like bodies of control
/// flow.
#[derive(Clone, Debug, PartialEq)]
pub struct FlexAttention {
    /// Score scale; `None` means `1 / sqrt(E)`.
    pub scale: Option<f32>,
    /// The dtype of softmax and the modifiers; `None`: f32, or f64 for double inputs.
    pub softmax_precision: Option<DType>,
    pub score_mod: Option<Graph>,
    pub prob_mod: Option<Graph>,
}

/// The dtypes FlexAttention's inputs and `softmax_precision` may have.
pub const FLEX_ATTENTION_DTYPES: [DType; 4] = [DType::F16, DType::Bf16, DType::F32, DType::F64];

impl FlexAttention {
    /// The dtype softmax and the modifiers compute in, for inputs of `input`.
    pub fn compute_dtype(&self, input: DType) -> DType {
        match self.softmax_precision {
            Some(d) => d,
            None if input == DType::F64 => DType::F64,
            None => DType::F32,
        }
    }

    /// The modifier graphs that are present, with their attribute names.
    pub fn modifiers(&self) -> impl Iterator<Item = (&'static str, &Graph)> {
        [("score_mod", &self.score_mod), ("prob_mod", &self.prob_mod)]
            .into_iter()
            .filter_map(|(name, g)| g.as_ref().map(|g| (name, g)))
    }

    /// Y's type: Q's dtype, shape `[B, Hq, L, Ev]` from Q and V. Ranks other than 4 and
    /// dtypes that differ or are not floats are errors; the shape is unknown until Q's and V's
    /// ranks are.
    pub fn infer(&self, inputs: &[Option<InferInput<'_>>]) -> Result<Vec<ValueType>> {
        const NAMES: [&str; 3] = ["Q", "K", "V"];
        let mut dtype = None;
        let mut shapes: [Option<&Shape>; 3] = [None; 3];
        for (i, name) in NAMES.iter().enumerate() {
            let x = input(inputs, i).ok_or_else(|| {
                Error::model(format!("FlexAttention input {i} ({name}) is required"))
            })?;
            if let Some(d) = x.dtype() {
                if !FLEX_ATTENTION_DTYPES.contains(&d) {
                    return Err(Error::model(format!(
                        "FlexAttention {name} is {d}; it must be f16, bf16, f32 or f64"
                    )));
                }
                match dtype {
                    Some(first) if first != d => {
                        return Err(Error::model(format!(
                        "FlexAttention {name} is {d}, Q is {first}: Q, K and V must have one dtype"
                    )))
                    }
                    _ => dtype = Some(d),
                }
            }
            if let Some(s) = x.shape() {
                if s.rank() != 4 {
                    return Err(Error::model(format!(
                        "FlexAttention {name} must be 4-D, got rank {}",
                        s.rank()
                    )));
                }
                shapes[i] = Some(s);
            }
        }
        let shape = match (shapes[0], shapes[2]) {
            (Some(q), Some(v)) => Some(Shape(vec![
                q.0[0].clone(),
                q.0[1].clone(),
                q.0[2].clone(),
                v.0[3].clone(),
            ])),
            _ => None,
        };
        Ok(vec![tensor_type(dtype, shape)])
    }
}
