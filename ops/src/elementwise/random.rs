use xnpu_core::{DType, Dim, Error, Result, Shape, ValueType};

use crate::infer::{checked_rank, input, tensor_type};
use crate::{InferInput, OpDef};

/// What a [`Random`] op draws from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Distribution {
    /// Uniform in `[low, high)`: `low + (high - low) * u`.
    Uniform { low: f32, high: f32 },
    /// Normal: `mean + scale * z`.
    Normal { mean: f32, scale: f32 },
}

/// RandomUniform, RandomUniformLike, RandomNormal, RandomNormalLike (ONNX opset 1, bf16 from
/// 22): a tensor of independent draws. The plain forms take no input and make `shape` (every
/// dim ≥ 0); the `Like` forms take the dims of input 0 (any dtype; its values are not read).
/// The output dtype is `dtype` (f16, bf16, f32 or f64), else input 0's (`Like`, which must
/// then be one of those), else f32.
///
/// The generator: NumPy's legacy `RandomState(seed)` (MT19937; see xnpu-backend-cpu's `rng`),
/// so a seeded op gives exactly the values of ONNX's reference implementation:
/// `rand(*shape)` (or `randn`) in C order, cast to the dtype, then `* (high - low) + low`
/// (`* scale + mean`) in the dtype's arithmetic. `seed` is truncated to an integer, modulo
/// 2^32; without a seed (or a NaN one) every run draws anew.
#[derive(Clone, Debug, PartialEq)]
pub struct Random {
    pub dist: Distribution,
    /// The output's dims (RandomUniform, RandomNormal); `None` for the `Like` forms.
    pub shape: Option<Vec<i64>>,
    pub dtype: Option<DType>,
    pub seed: Option<f32>,
}

impl Random {
    /// Whether `d` is a dtype the op can draw.
    pub fn draws(d: DType) -> bool {
        matches!(d, DType::F16 | DType::Bf16 | DType::F32 | DType::F64)
    }
}

impl Default for Random {
    fn default() -> Random {
        Random {
            dist: Distribution::Uniform {
                low: 0.0,
                high: 1.0,
            },
            shape: Some(Vec::new()),
            dtype: None,
            seed: None,
        }
    }
}

impl OpDef for Random {
    const NAMES: &'static [&'static str] = &[
        "RandomUniform",
        "RandomUniformLike",
        "RandomNormal",
        "RandomNormalLike",
    ];
    const RANDOM: bool = true;

    fn name(&self) -> &'static str {
        match (self.dist, self.shape.is_some()) {
            (Distribution::Uniform { .. }, true) => "RandomUniform",
            (Distribution::Uniform { .. }, false) => "RandomUniformLike",
            (Distribution::Normal { .. }, true) => "RandomNormal",
            (Distribution::Normal { .. }, false) => "RandomNormalLike",
        }
    }

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        let name = self.name();
        let like = input(inputs, 0);
        let dtype = match (self.dtype, &self.shape) {
            (Some(d), _) => Some(d),
            (None, Some(_)) => Some(DType::F32),
            (None, None) => like.and_then(|x| x.dtype()),
        };
        if let Some(d) = dtype {
            if !Random::draws(d) {
                return Err(Error::model(format!(
                    "{name} draws f16, bf16, f32 or f64, not {d}{}",
                    if self.dtype.is_none() {
                        " (the input's dtype: give the dtype attribute)"
                    } else {
                        ""
                    }
                )));
            }
        }
        let shape = match &self.shape {
            Some(dims) => {
                checked_rank(dims.len(), name)?;
                let dims = dims
                    .iter()
                    .map(|&d| {
                        usize::try_from(d).map(Dim::Known).map_err(|_| {
                            Error::model(format!("{name}: shape {dims:?} has a negative dim"))
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                Some(Shape(dims))
            }
            None => {
                if like.is_none() {
                    return Err(Error::model(format!("{name}: input 0 is required")));
                }
                like.and_then(|x| x.shape().cloned())
            }
        };
        Ok(vec![tensor_type(dtype, shape)])
    }
}
