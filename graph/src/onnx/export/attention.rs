//! Export of the `attention` family: attention, rotary embedding, LinearAttention,
//! GroupQueryAttention, MultiHeadAttention.

use xnpu_core::Error;
use xnpu_ops::attention as att;

use super::{a_bool, a_float, a_int, a_str, Emit, OnnxExport, R};

impl OnnxExport for att::Attention {
    fn export(&self, e: &mut Emit<'_>) -> R {
        let mut attrs = vec![];
        if self.is_causal {
            attrs.push(a_int("is_causal", 1));
        }
        if let Some(q) = self.q_num_heads {
            attrs.push(a_int("q_num_heads", q as i64));
        }
        if let Some(k) = self.kv_num_heads {
            attrs.push(a_int("kv_num_heads", k as i64));
        }
        if let Some(s) = self.scale {
            attrs.push(a_float("scale", s));
        }
        if self.softcap != 0.0 {
            attrs.push(a_float("softcap", self.softcap));
        }
        if self.qk_matmul_output_mode != 0 {
            attrs.push(a_int(
                "qk_matmul_output_mode",
                self.qk_matmul_output_mode as i64,
            ));
        }
        if self.left_window_size != -1 {
            e.need(25)?;
            attrs.push(a_int("left_window_size", self.left_window_size));
        }
        if self.right_window_size != -1 {
            e.need(25)?;
            attrs.push(a_int("right_window_size", self.right_window_size));
        }
        if e.n_given() > 6 {
            // nonpad_kv_seqlen (input 6) exists from opset 24.
            e.need(24)?;
        }
        e.simple("Attention", attrs)
    }
}

impl OnnxExport for att::RotaryEmbedding {
    fn export(&self, e: &mut Emit<'_>) -> R {
        let mut attrs = vec![a_bool("interleaved", self.interleaved)];
        if self.rotary_embedding_dim != 0 {
            attrs.push(a_int(
                "rotary_embedding_dim",
                self.rotary_embedding_dim as i64,
            ));
        }
        if e.in_rank(3) == Some(1) {
            // A 1-D position_ids (an offset: ONNX Runtime's form; ONNX's takes
            // [batch, seq]) is written as ONNX Runtime's op, whose inputs are (input,
            // position_ids, cos_cache, sin_cache).
            if self.num_heads != 0 {
                attrs.push(a_int("num_heads", self.num_heads as i64));
            }
            e.ins = vec![e.input(0), e.input(3), e.input(1), e.input(2)];
            return e.microsoft("RotaryEmbedding", attrs);
        }
        // ONNX's RotaryEmbedding needs num_heads for a 3-D input; ONNX Runtime's contrib form
        // (imported with num_heads 0) takes the head size from the caches: write what that
        // gives (hidden / (2 * the caches' last dim)), as the kernel reads it.
        let num_heads = match (self.num_heads, e.in_rank(0)) {
            (0, Some(3)) => {
                let derived = match (e.in_last_dim(0), e.in_last_dim(1)) {
                    (Some(hidden), Some(half))
                        if self.rotary_embedding_dim == 0
                            && half > 0
                            && hidden % (2 * half) == 0 =>
                    {
                        Some(hidden / (2 * half))
                    }
                    _ => None,
                };
                derived.ok_or_else(|| {
                    Error::unsupported(
                        "RotaryEmbedding on a 3-D input without num_heads: its hidden size or \
                         the caches' size is not known, so ONNX's num_heads cannot be written",
                    )
                })?
            }
            (h, _) => h,
        };
        if num_heads != 0 {
            attrs.push(a_int("num_heads", num_heads as i64));
        }
        e.simple("RotaryEmbedding", attrs)
    }
}

impl OnnxExport for att::LinearAttention {
    fn export(&self, e: &mut Emit<'_>) -> R {
        // The node's opset (27) is raised to by `simple`, from the import table.
        let mut attrs = vec![
            a_int("q_num_heads", self.q_num_heads as i64),
            a_int("kv_num_heads", self.kv_num_heads as i64),
        ];
        if self.scale != 0.0 {
            attrs.push(a_float("scale", self.scale));
        }
        if self.update_rule != att::LinearAttentionRule::GatedDelta {
            attrs.push(a_str("update_rule", self.update_rule.name()));
        }
        if self.chunk_size != 64 {
            attrs.push(a_int("chunk_size", self.chunk_size));
        }
        e.simple("LinearAttention", attrs)
    }
}

impl OnnxExport for att::GroupQueryAttention {
    fn export(&self, e: &mut Emit<'_>) -> R {
        let mut attrs = vec![
            a_int("num_heads", self.num_heads as i64),
            a_int("kv_num_heads", self.kv_num_heads as i64),
            a_int("local_window_size", self.local_window_size),
            a_bool("do_rotary", self.do_rotary),
            a_bool("rotary_interleaved", self.rotary_interleaved),
        ];
        if self.scale != 0.0 {
            attrs.push(a_float("scale", self.scale));
        }
        if self.softcap != 0.0 {
            attrs.push(a_float("softcap", self.softcap));
        }
        if self.smooth_softmax {
            attrs.push(a_int("smooth_softmax", 1));
        }
        if !self.causal {
            attrs.push(a_int("causal", 0));
        }
        e.microsoft("GroupQueryAttention", attrs)
    }
}

impl OnnxExport for att::MultiHeadAttention {
    fn export(&self, e: &mut Emit<'_>) -> R {
        let mut attrs = vec![
            a_int("num_heads", self.num_heads as i64),
            a_float("mask_filter_value", self.mask_filter_value),
            a_bool("unidirectional", self.unidirectional),
        ];
        if self.scale != 0.0 {
            attrs.push(a_float("scale", self.scale));
        }
        e.microsoft("MultiHeadAttention", attrs)
    }
}
