//! Import of the `attention` family.

use xnpu_core::{Error, Result};
use xnpu_ops::attention::{self as att};

use super::{contrib, NodeCtx, OnnxImport, Registry, MS};
use crate::ir::Op;

impl OnnxImport for xnpu_ops::attention::Attention {
    fn register(r: &mut Registry) {
        r.add("", "Attention", 23, attention);
    }
}

impl OnnxImport for xnpu_ops::attention::RotaryEmbedding {
    fn register(r: &mut Registry) {
        r.add("", "RotaryEmbedding", 23, rotary_embedding);
        r.add(MS, "RotaryEmbedding", 1, contrib::rotary_embedding);
    }
}

impl OnnxImport for xnpu_ops::attention::LinearAttention {
    fn register(r: &mut Registry) {
        r.add("", "LinearAttention", 27, linear_attention);
    }
}

impl OnnxImport for xnpu_ops::attention::GroupQueryAttention {
    fn register(r: &mut Registry) {
        r.add(MS, "GroupQueryAttention", 1, contrib::group_query_attention);
    }
}

impl OnnxImport for xnpu_ops::attention::MultiHeadAttention {
    fn register(r: &mut Registry) {
        r.add(MS, "MultiHeadAttention", 1, contrib::multi_head_attention);
    }
}

fn op(o: att::Op) -> Op {
    Op::Attention(o)
}

fn opt_positive(n: &NodeCtx<'_>, name: &str) -> Result<Option<usize>> {
    match n.opt_int(name)? {
        None => Ok(None),
        Some(v) if v > 0 => Ok(Some(v as usize)),
        Some(v) => Err(Error::model(format!(
            "attribute {name} must be positive, got {v}"
        ))),
    }
}

fn window(n: &NodeCtx<'_>, name: &str) -> Result<i64> {
    let v = n.int(name, -1)?;
    if v < -1 {
        return Err(Error::model(format!(
            "attribute {name} must be -1 or non-negative, got {v}"
        )));
    }
    Ok(v)
}

fn attention(n: &mut NodeCtx<'_>) -> Result<Op> {
    let mode = n.int("qk_matmul_output_mode", 0)?;
    if !(0..=3).contains(&mode) {
        return Err(Error::model(format!(
            "Attention qk_matmul_output_mode must be 0..3, got {mode}"
        )));
    }
    Ok(op(att::Op::Attention(att::Attention {
        is_causal: n.int("is_causal", 0)? != 0,
        q_num_heads: opt_positive(n, "q_num_heads")?,
        kv_num_heads: opt_positive(n, "kv_num_heads")?,
        scale: n.opt_float("scale")?,
        softcap: n.float("softcap", 0.0)?,
        qk_matmul_output_mode: mode as u8,
        left_window_size: window(n, "left_window_size")?,
        right_window_size: window(n, "right_window_size")?,
    })))
}

fn rotary_embedding(n: &mut NodeCtx<'_>) -> Result<Op> {
    let dim = n.int("rotary_embedding_dim", 0)?;
    let heads = n.int("num_heads", 0)?;
    if dim < 0 || heads < 0 {
        return Err(Error::model(format!(
            "RotaryEmbedding rotary_embedding_dim ({dim}) and num_heads ({heads}) must be non-negative"
        )));
    }
    Ok(op(att::Op::RotaryEmbedding(att::RotaryEmbedding {
        interleaved: n.int("interleaved", 0)? != 0,
        rotary_embedding_dim: dim as usize,
        num_heads: heads as usize,
    })))
}

fn linear_attention(n: &mut NodeCtx<'_>) -> Result<Op> {
    let heads = |name: &str| -> Result<usize> {
        match n.req_int(name)? {
            v if v > 0 => Ok(v as usize),
            v => Err(Error::model(format!(
                "LinearAttention attribute {name} must be positive, got {v}"
            ))),
        }
    };
    let (q_num_heads, kv_num_heads) = (heads("q_num_heads")?, heads("kv_num_heads")?);
    if q_num_heads % kv_num_heads != 0 {
        return Err(Error::model(format!(
            "LinearAttention attribute q_num_heads ({q_num_heads}) must be a multiple of kv_num_heads ({kv_num_heads})"
        )));
    }
    let rule = n.string("update_rule", "gated_delta")?;
    let update_rule = att::LinearAttentionRule::parse(&rule).ok_or_else(|| {
        Error::model(format!(
            "LinearAttention attribute update_rule must be \"linear\", \"gated\", \"delta\" or \"gated_delta\", got \"{rule}\""
        ))
    })?;
    let chunk_size = n.int("chunk_size", 64)?;
    if chunk_size <= 0 {
        return Err(Error::model(format!(
            "LinearAttention attribute chunk_size must be positive, got {chunk_size}"
        )));
    }
    Ok(op(att::Op::LinearAttention(att::LinearAttention {
        q_num_heads,
        kv_num_heads,
        scale: n.float("scale", 0.0)?,
        update_rule,
        chunk_size,
    })))
}
