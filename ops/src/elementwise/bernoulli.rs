use xnpu_core::{DType, Error, Result, ValueType};

use super::broadcast::like_first;
use crate::infer::input;
use crate::{InferInput, OpDef};

/// Bernoulli (ONNX opsets 15, 22): each output element is 1 with the probability the input
/// element gives, else 0, drawn independently. The input is a float tensor of probabilities
/// in `[0, 1]` (f16, bf16, f32 or f64); a probability outside that range, or NaN, is an error.
/// The output has the input's shape and the dtype `dtype` (any numeric dtype or bool), or the
/// input's when absent.
///
/// ONNX leaves the generator to the implementation. xnpu's is NumPy's legacy
/// `RandomState(seed)` drawing `binomial(1, p)` per element in C order (see [`Random`]), so
/// with `seed` a run gives the values of ONNX's reference implementation, the same in every
/// run; without `seed`, every run draws anew from an operating-system seed.
///
/// [`Random`]: super::Random
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Bernoulli {
    /// The output's dtype; the input's when `None`.
    pub dtype: Option<DType>,
    pub seed: Option<f32>,
}

impl OpDef for Bernoulli {
    const NAMES: &'static [&'static str] = &["Bernoulli"];
    const RANDOM: bool = true;

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        if let Some(d) = input(inputs, 0).and_then(|x| x.dtype()) {
            if !d.is_float() {
                return Err(Error::model(format!(
                    "Bernoulli takes float probabilities, got {d}"
                )));
            }
        }
        if let Some(d) = self.dtype {
            if !(d.is_numeric() || d == DType::Bool) {
                return Err(Error::model(format!(
                    "Bernoulli cannot produce {d} (a numeric dtype or bool)"
                )));
            }
        }
        Ok(vec![like_first(inputs, self.dtype)])
    }
}
