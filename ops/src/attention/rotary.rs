use xnpu_core::{Error, Result, ValueType};

use crate::infer::{dtype_of, input, tensor_type};
use crate::{InferInput, OpDef};

/// RotaryEmbedding (opset 23): rotates pairs of features of X by position-dependent angles.
///
/// X is `[batch, heads, seq, head_size]` or `[batch, seq, hidden]` (then `num_heads` splits
/// hidden into heads). The first `rotary_embedding_dim` features (0 = all of head_size) are
/// rotated, the rest copied. Pairs are `(x[k], x[k + d/2])`, or `(x[2k], x[2k+1])` when
/// `interleaved`. cos/sin caches are `[batch, seq, d/2]`, or `[max_pos, d/2]` indexed by
/// position_ids `[batch, seq]`. `real = cos*x1 - sin*x2`, `imag = sin*x1 + cos*x2`.
/// Output has X's shape and dtype.
#[derive(Clone, Debug, PartialEq)]
pub struct RotaryEmbedding {
    pub interleaved: bool,
    /// 0 means head_size.
    pub rotary_embedding_dim: usize,
    /// Required for 3-D input; 0 when absent.
    pub num_heads: usize,
}

impl OpDef for RotaryEmbedding {
    const NAMES: &'static [&'static str] = &["RotaryEmbedding"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        let dtype = dtype_of(inputs, 0)?;
        let shape = input(inputs, 0).and_then(|x| x.shape());
        if let Some(s) = shape {
            if s.rank() != 3 && s.rank() != 4 {
                return Err(Error::model(format!(
                    "RotaryEmbedding input must be 3-D or 4-D, got {s}"
                )));
            }
        }
        Ok(vec![tensor_type(dtype, shape.cloned())])
    }
}
