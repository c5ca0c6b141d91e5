//! Export of the `attention` family: attention, rotary embedding, LinearAttention,
//! GroupQueryAttention, MultiHeadAttention.

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
        if self.num_heads != 0 {
            attrs.push(a_int("num_heads", self.num_heads as i64));
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
