//! Builders for ONNX Runtime's `com.microsoft` ops that language models use (the form
//! onnxruntime-genai's model builder writes), mapped onto IR ops: MatMulNBits, the skip and
//! simplified layer norms, the Gelu family, RotaryEmbedding, GroupQueryAttention and
//! MultiHeadAttention. Each is registered by its IR op's `OnnxImport` in the family's file.

use xnpu_core::{DType, Error, Result};
use xnpu_ops::attention as att;
use xnpu_ops::elementwise::{self as ew, ActivationKind};
use xnpu_ops::nn;
use xnpu_ops::reduce as rd;

use super::NodeCtx;
use crate::ir::Op;

fn positive(n: &NodeCtx<'_>, name: &str) -> Result<usize> {
    let v = n.req_int(name)?;
    usize::try_from(v)
        .ok()
        .filter(|&v| v > 0)
        .ok_or_else(|| Error::model(format!("attribute {name} must be positive, got {v}")))
}

fn flag(n: &NodeCtx<'_>, name: &str) -> Result<bool> {
    match n.int(name, 0)? {
        0 => Ok(false),
        1 => Ok(true),
        v => Err(Error::model(format!(
            "attribute {name} must be 0 or 1, got {v}"
        ))),
    }
}

/// Fails when an output the IR op cannot produce is used.
fn refuse_output(n: &NodeCtx<'_>, i: usize, what: &str) -> Result<()> {
    if n.has_output(i) {
        return Err(Error::unsupported(format!(
            "{} output {i} ({what}) is not supported",
            n.op_type()
        )));
    }
    Ok(())
}

fn refuse_input(n: &NodeCtx<'_>, i: usize, what: &str) -> Result<()> {
    if n.has_input(i) {
        return Err(Error::unsupported(format!(
            "{} input {i} ({what}) is not supported",
            n.op_type()
        )));
    }
    Ok(())
}

pub(super) fn matmul_nbits(n: &mut NodeCtx<'_>) -> Result<Op> {
    let k = positive(n, "K")?;
    let cols = positive(n, "N")?;
    let bits = n.int("bits", 4)?;
    if !matches!(bits, 2 | 4 | 8) {
        return Err(Error::unsupported(format!(
            "MatMulNBits with bits={bits} (2, 4 and 8 are supported)"
        )));
    }
    let block_size = positive(n, "block_size")?;
    if block_size < 16 || !block_size.is_power_of_two() {
        return Err(Error::model(format!(
            "MatMulNBits block_size must be a power of two >= 16, got {block_size}"
        )));
    }
    let accuracy_level = n.int("accuracy_level", 0)?;
    if !(0..=4).contains(&accuracy_level) {
        return Err(Error::model(format!(
            "MatMulNBits accuracy_level must be 0..4, got {accuracy_level}"
        )));
    }
    if let Some(d) = n.input_dtype(1) {
        if d != DType::U8 {
            return Err(Error::model(format!(
                "MatMulNBits B must be uint8, got {d}"
            )));
        }
    }
    // ONNX Runtime quantises A to int8 (level 4) only in the kernel it prepacks from
    // initializers: with B, scales or zero points computed or fed as inputs it runs in f32,
    // and so does xnpu.
    let prepacked = n.const_input(1).is_some()
        && n.const_input(2).is_some()
        && (!n.has_input(3) || n.const_input(3).is_some());
    let accuracy_level = if accuracy_level == 4 && !prepacked {
        0
    } else {
        accuracy_level
    };
    let op = nn::MatMulNBits {
        k,
        n: cols,
        bits: bits as u8,
        block_size,
        accuracy_level: accuracy_level as u8,
    };
    if let Some(b) = n.const_input(1) {
        let want = cols * op.n_blocks() * op.blob_size();
        if b.len() != want {
            return Err(Error::model(format!(
                "MatMulNBits B holds {} bytes, N={cols} x {} blocks x {} bytes = {want} expected",
                b.len(),
                op.n_blocks(),
                op.blob_size()
            )));
        }
    }
    if let Some(s) = n.const_input(2) {
        if s.len() != cols * op.n_blocks() {
            return Err(Error::model(format!(
                "MatMulNBits scales hold {} values, N={cols} x {} blocks expected",
                s.len(),
                op.n_blocks()
            )));
        }
    }
    Ok(Op::Nn(nn::Op::MatMulNBits(op)))
}

pub(super) fn skip_layer_norm(n: &mut NodeCtx<'_>) -> Result<Op> {
    Ok(Op::Reduce(rd::Op::SkipNormalization(
        rd::SkipNormalization {
            simplified: false,
            epsilon: n.float("epsilon", 1e-12)?,
        },
    )))
}

pub(super) fn skip_simplified_layer_norm(n: &mut NodeCtx<'_>) -> Result<Op> {
    // ONNX inputs (input, skip, gamma, bias); the IR op's are (input, skip, gamma, beta, bias).
    n.arrange_inputs(&[Some(0), Some(1), Some(2), None, Some(3)]);
    Ok(Op::Reduce(rd::Op::SkipNormalization(
        rd::SkipNormalization {
            simplified: true,
            epsilon: n.float("epsilon", 1e-12)?,
        },
    )))
}

pub(super) fn simplified_layer_norm(n: &mut NodeCtx<'_>) -> Result<Op> {
    let stash = n.int("stash_type", 1)?;
    if stash != 1 {
        return Err(Error::unsupported(format!(
            "SimplifiedLayerNormalization stash_type {stash} (only 1, float, is supported)"
        )));
    }
    Ok(Op::Reduce(rd::Op::RmsNormalization(rd::RmsNormalization {
        axis: n.int("axis", -1)?,
        epsilon: n.float("epsilon", 1e-5)?,
        stash_type: DType::F32,
    })))
}

fn activation(kind: ActivationKind) -> Op {
    Op::Elementwise(ew::Op::Activation(ew::Activation { kind }))
}

pub(super) fn gelu(_: &mut NodeCtx<'_>) -> Result<Op> {
    Ok(activation(ActivationKind::Gelu { tanh: false }))
}

pub(super) fn fast_gelu(n: &mut NodeCtx<'_>) -> Result<Op> {
    Ok(if n.has_input(1) {
        Op::Elementwise(ew::Op::BiasGelu(ew::BiasGelu { tanh: true }))
    } else {
        activation(ActivationKind::Gelu { tanh: true })
    })
}

pub(super) fn bias_gelu(n: &mut NodeCtx<'_>) -> Result<Op> {
    if !n.has_input(1) {
        return Err(Error::model("BiasGelu needs its bias input (input 1)"));
    }
    Ok(Op::Elementwise(ew::Op::BiasGelu(ew::BiasGelu {
        tanh: false,
    })))
}

pub(super) fn quick_gelu(n: &mut NodeCtx<'_>) -> Result<Op> {
    Ok(activation(ActivationKind::Swish {
        alpha: n.float("alpha", 1.702)?,
    }))
}

pub(super) fn rotary_embedding(n: &mut NodeCtx<'_>) -> Result<Op> {
    if flag(n, "is_packed_batching")? {
        return Err(Error::unsupported(
            "RotaryEmbedding with is_packed_batching=1 is not supported",
        ));
    }
    let scale = n.float("scale", 1.0)?;
    if scale != 1.0 {
        return Err(Error::unsupported(format!(
            "RotaryEmbedding with scale={scale} (only 1.0 is supported)"
        )));
    }
    let dim = n.int("rotary_embedding_dim", 0)?;
    let heads = n.int("num_heads", 0)?;
    if dim < 0 || heads < 0 {
        return Err(Error::model(format!(
            "RotaryEmbedding rotary_embedding_dim ({dim}) and num_heads ({heads}) must be non-negative"
        )));
    }
    // ONNX Runtime's inputs (input, position_ids, cos_cache, sin_cache); the IR op follows
    // ONNX opset 23 (X, cos_cache, sin_cache, position_ids).
    n.arrange_inputs(&[Some(0), Some(2), Some(3), Some(1)]);
    Ok(Op::Attention(att::Op::RotaryEmbedding(
        att::RotaryEmbedding {
            interleaved: flag(n, "interleaved")?,
            rotary_embedding_dim: dim as usize,
            num_heads: heads as usize,
        },
    )))
}

pub(super) fn group_query_attention(n: &mut NodeCtx<'_>) -> Result<Op> {
    let num_heads = positive(n, "num_heads")?;
    let kv_num_heads = positive(n, "kv_num_heads")?;
    if num_heads % kv_num_heads != 0 {
        return Err(Error::model(format!(
            "GroupQueryAttention num_heads ({num_heads}) must be a multiple of kv_num_heads ({kv_num_heads})"
        )));
    }
    if n.int("qk_output", 0)? != 0 {
        return Err(Error::unsupported("GroupQueryAttention qk_output"));
    }
    refuse_output(n, 3, "output_qk")?;
    let do_rotary = flag(n, "do_rotary")?;
    if do_rotary && !(n.has_input(7) && n.has_input(8)) {
        return Err(Error::model(
            "GroupQueryAttention with do_rotary=1 needs cos_cache and sin_cache (inputs 7 and 8)",
        ));
    }
    if !n.has_input(5) || !n.has_input(6) {
        return Err(Error::model(
            "GroupQueryAttention needs seqlens_k and total_sequence_length (inputs 5 and 6)",
        ));
    }
    if n.has_input(1) != n.has_input(2) {
        return Err(Error::model(
            "GroupQueryAttention needs both key and value, or neither (packed QKV)",
        ));
    }
    let local_window_size = n.int("local_window_size", -1)?;
    if local_window_size < -1 {
        return Err(Error::model(format!(
            "GroupQueryAttention local_window_size must be -1 or non-negative, got {local_window_size}"
        )));
    }
    Ok(Op::Attention(att::Op::GroupQueryAttention(
        att::GroupQueryAttention {
            num_heads,
            kv_num_heads,
            scale: n.float("scale", 0.0)?,
            softcap: n.float("softcap", 0.0)?,
            local_window_size,
            do_rotary,
            rotary_interleaved: flag(n, "rotary_interleaved")?,
            smooth_softmax: flag(n, "smooth_softmax")?,
            causal: n.int("causal", 1)? != 0,
        },
    )))
}

pub(super) fn multi_head_attention(n: &mut NodeCtx<'_>) -> Result<Op> {
    refuse_input(n, 8, "past_sequence_length")?;
    refuse_input(n, 9, "cache_indirection")?;
    refuse_output(n, 3, "qk")?;
    if !n.has_input(1) || !n.has_input(2) {
        return Err(Error::unsupported(
            "MultiHeadAttention with packed QKV or packed KV (key and value must both be given)",
        ));
    }
    Ok(Op::Attention(att::Op::MultiHeadAttention(
        att::MultiHeadAttention {
            num_heads: positive(n, "num_heads")?,
            scale: n.float("scale", 0.0)?,
            mask_filter_value: n.float("mask_filter_value", -10000.0)?,
            unidirectional: flag(n, "unidirectional")?,
        },
    )))
}
