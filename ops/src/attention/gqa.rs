use xnpu_core::{Dim, Error, Result, Shape, ValueType};

use crate::infer::{dtype_of, input, tensor_type};
use crate::{InferInput, OpDef};

/// GroupQueryAttention (`com.microsoft`): causal self-attention of a decoder with a KV cache,
/// rotary embedding inside, and fewer key/value heads than query heads — the attention of
/// onnxruntime-genai's language models.
///
/// Inputs: 0 `query` `[B, S, N*H]`, or packed `[B, S, (N + 2 kv) * H]` when `key` and
/// `value` are absent; 1 `key` `[B, S, kv*H]`; 2 `value`; 3 `past_key` and 4 `past_value`
/// `[B, kv, P, H]` (P is the buffer length: it may be larger than the valid past);
/// 5 `seqlens_k` int32 `[B]`: total valid length minus one per batch; 6
/// `total_sequence_length` int32 scalar; 7 `cos_cache` and 8 `sin_cache` `[max_pos, R/2]`
/// (with `do_rotary`); 9 `position_ids` int64 `[B, S]` (optional); 10 `attention_bias`
/// (optional, broadcast to `[B, N, S, T]`); 11 `head_sink` `[N]` (optional).
///
/// For batch b, `total_b = seqlens_k[b] + 1` and the valid past is `past_b = total_b - S`
/// (`0` on a first prompt, when `S == total_sequence_length`). With `do_rotary`, Q and K
/// rows are rotated (the first R features; pairs `(k, k + R/2)`, or `(2k, 2k+1)` when
/// `rotary_interleaved`) at positions `position_ids[b, s]`, or `past_b + s`. Outputs:
/// `present_key`/`present_value` `[B, kv, max(P, T), H]` hold the past rows `0..past_b`
/// followed by the new rows at `past_b..total_b` (the rest zero, or the past buffer's
/// contents when P is larger); `output` `[B, S, N*H]`. Query row s of head n (KV head
/// `n / (N / kv)`) attends keys `j <= past_b + s`, and with `local_window_size` w ≥ 0 only
/// the last w of those (its own included); without `causal`, every key `j < total_b`; score = `q·k * scale` (scale 0 means `1/sqrt(H)`), then
/// `softcap * tanh(score / softcap)` when softcap > 0, plus attention_bias; softmax over
/// the attended keys (with `smooth_softmax` or a head sink, an extra logit 0 or
/// `head_sink[n]` joins the denominator); output = Σ p_j v_j.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupQueryAttention {
    pub num_heads: usize,
    pub kv_num_heads: usize,
    /// 0 means `1 / sqrt(head_size)`.
    pub scale: f32,
    /// 0 means none.
    pub softcap: f32,
    /// -1 means unbounded.
    pub local_window_size: i64,
    pub do_rotary: bool,
    pub rotary_interleaved: bool,
    pub smooth_softmax: bool,
    /// Each query attends the keys up to its own position (`causal` = 1, the default);
    /// otherwise every valid key.
    pub causal: bool,
}

impl OpDef for GroupQueryAttention {
    const NAMES: &'static [&'static str] = &["GroupQueryAttention"];

    fn infer(&self, inputs: &[Option<InferInput<'_>>], n_outputs: usize) -> Result<Vec<ValueType>> {
        let dtype = dtype_of(inputs, 0)?;
        let packed = input(inputs, 1).is_none();
        let q = input(inputs, 0).and_then(|x| x.shape());
        let mut out_shape = None;
        if let Some(s) = q {
            if s.rank() != 3 {
                return Err(Error::model(format!(
                    "GroupQueryAttention query must be 3-D [batch, seq, hidden], got {s}"
                )));
            }
            let hidden = match (&s.0[2], packed) {
                (Dim::Known(d), true) => Some({
                    let heads = self
                        .kv_num_heads
                        .checked_mul(2)
                        .and_then(|kv| kv.checked_add(self.num_heads))
                        .filter(|&h| h > 0)
                        .ok_or_else(|| {
                            Error::model(format!(
                                "GroupQueryAttention num_heads {} + 2 * kv_num_heads {} must be positive and countable",
                                self.num_heads, self.kv_num_heads
                            ))
                        })?;
                    if d % heads != 0 {
                        return Err(Error::model(format!(
                            "GroupQueryAttention packed query width {d} is not a multiple of num_heads + 2 * kv_num_heads = {heads}"
                        )));
                    }
                    Dim::Known(d / heads * self.num_heads)
                }),
                (d, false) => Some(d.clone()),
                (Dim::Sym(_), true) => None,
            };
            out_shape = hidden.map(|h| Shape(vec![s.0[0].clone(), s.0[1].clone(), h]));
        }
        let mut out = vec![tensor_type(dtype, out_shape)];
        for _ in 1..n_outputs.min(3) {
            out.push(tensor_type(dtype, None));
        }
        Ok(out)
    }
}

/// MultiHeadAttention (`com.microsoft`): attention of separate (or cross) Q, K, V with
/// optional projection bias, key padding mask, additive bias and KV cache.
///
/// Inputs: 0 `query` `[B, S, N*H]`; 1 `key` `[B, L, N*H]` (or `[B, N, L, H]`, used as is);
/// 2 `value` likewise (`H_v` may differ); 3 `bias` `[N*H + N*H + N*H_v]` added to Q, K, V
/// (3-D K/V only); 4 `key_padding_mask` int32 `[B, T]` (0 = masked) or `[B]` (valid key
/// count); 5 `attention_bias` broadcast to `[B, N, S, T]`; 6 `past_key`, 7 `past_value`
/// `[B, N, P, H]` concatenated before K/V (T = P + L). Outputs: `output` `[B, S, N*H_v]`,
/// `present_key`/`present_value` `[B, N, T, H]`. score = `q·k * scale` (0 means
/// `1/sqrt(H)`) + bias; masked keys get `mask_filter_value`; with `unidirectional`, query
/// s sees keys `j <= P + s`.
#[derive(Clone, Debug, PartialEq)]
pub struct MultiHeadAttention {
    pub num_heads: usize,
    pub scale: f32,
    pub mask_filter_value: f32,
    pub unidirectional: bool,
}

impl OpDef for MultiHeadAttention {
    const NAMES: &'static [&'static str] = &["MultiHeadAttention"];

    fn infer(&self, inputs: &[Option<InferInput<'_>>], n_outputs: usize) -> Result<Vec<ValueType>> {
        let dtype = dtype_of(inputs, 0)?;
        if let Some(r) = input(inputs, 0).and_then(|x| x.rank()) {
            if r != 3 {
                return Err(Error::model(format!(
                    "MultiHeadAttention query must be 3-D [batch, seq, hidden], got rank {r}"
                )));
            }
        }
        Ok((0..n_outputs.clamp(1, 3))
            .map(|_| tensor_type(dtype, None))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xnpu_core::{DType, TensorType};

    #[test]
    fn packed_query_with_no_heads_is_an_error_not_a_division_by_zero() {
        let q = ValueType::Tensor(TensorType::new(DType::F32, Shape::known(&[1, 2, 8])));
        let ins = [Some(InferInput {
            ty: &q,
            value: None,
        })];
        for (num_heads, kv_num_heads) in [(0, 0), (1, usize::MAX)] {
            let op = GroupQueryAttention {
                num_heads,
                kv_num_heads,
                scale: 0.0,
                softcap: 0.0,
                local_window_size: -1,
                do_rotary: false,
                rotary_interleaved: false,
                smooth_softmax: false,
                causal: true,
            };
            let err = op.infer(&ins, 1).unwrap_err().to_string();
            assert!(err.contains("must be positive and countable"), "{err}");
        }
    }
}
