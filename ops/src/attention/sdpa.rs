use xnpu_core::{Error, Result, ValueType};

use crate::infer::{dtype_of, input, tensor_type};
use crate::{InferInput, OpDef};

/// Attention (opsets 23, 24, 25): `Y = softmax(softcap(Q @ K^T * scale) + bias) @ V`.
///
/// Inputs: Q, K, V, optional attn_mask, past_key, past_value, nonpad_kv_seqlen (opset 24+).
/// Q/K/V are either 4-D `[batch, heads, seq, head_size]` or 3-D `[batch, seq, heads *
/// head_size]` (then `q_num_heads`/`kv_num_heads` give the head counts). When there are fewer
/// KV heads than Q heads (GQA/MQA), Q head `h` uses KV head `h / (q_heads / kv_heads)`.
/// past_key/past_value `[batch, kv_heads, past, head_size]` are concatenated before K/V
/// along the sequence axis; the results are the outputs present_key/present_value.
///
/// The additive bias combines: attn_mask (bool: true = attend, false = -inf; numeric: added;
/// right-aligned broadcast to `[batch, q_heads, q_seq, kv_seq]`, its last dim padded with
/// false/-inf when shorter than kv_seq); is_causal (query `i` sees key `j` iff
/// `j <= i + offset`, offset = past length, or `nonpad_kv_seqlen[b] - q_seq` with an
/// external cache, else 0); the sliding window (`left_window_size`/`right_window_size`,
/// -1 = unbounded, same offset); and nonpad_kv_seqlen (keys `j >= nonpad[b]` masked).
/// A query row whose bias is all -inf gets all-zero probabilities (Y row = 0).
///
/// The optional 4th output follows the reference implementation: mode 0 and 1 give the
/// scaled (and softcapped) Q@K^T, mode 2 that plus the bias, mode 3 the softmax result.
/// Computation is in f64, rounded to the input dtype.
#[derive(Clone, Debug, PartialEq)]
pub struct Attention {
    pub is_causal: bool,
    pub q_num_heads: Option<usize>,
    pub kv_num_heads: Option<usize>,
    /// Score scale; `None` means `1 / sqrt(head_size)`.
    pub scale: Option<f32>,
    /// `0` (or negative) means no softcap.
    pub softcap: f32,
    /// 0..=3, see the type's doc.
    pub qk_matmul_output_mode: u8,
    /// -1 = unbounded.
    pub left_window_size: i64,
    /// -1 = unbounded.
    pub right_window_size: i64,
}

impl OpDef for Attention {
    const NAMES: &'static [&'static str] = &["Attention"];

    fn infer(&self, inputs: &[Option<InferInput<'_>>], n_outputs: usize) -> Result<Vec<ValueType>> {
        let dtype = dtype_of(inputs, 0)?;
        for i in 0..3 {
            if let Some(r) = input(inputs, i).and_then(|x| x.rank()) {
                if r != 3 && r != 4 {
                    return Err(Error::model(format!(
                        "Attention input {i} must be 3-D or 4-D, got rank {r}"
                    )));
                }
            }
        }
        Ok((0..n_outputs.max(1))
            .map(|_| tensor_type(dtype, None))
            .collect())
    }
}
