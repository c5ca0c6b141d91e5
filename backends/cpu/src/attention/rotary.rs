//! RotaryEmbedding (see the op's doc for the contract), computed in f64.

use xnpu_core::{Error, Result, Value};
use xnpu_ops::attention::RotaryEmbedding;

use super::{floats, store};
use crate::args::{opt_tensor, tensor};

pub fn run(op: &RotaryEmbedding, inputs: &[Option<&Value>]) -> Result<Vec<Value>> {
    let x_t = tensor(inputs, 0)?;
    let x = floats(x_t, "RotaryEmbedding X")?;
    let shape = x_t.shape();
    // (batch, seq, heads, head_size) and the flat index of (b, s, h, k).
    let (b_n, s_n, h_n, d) = match *shape {
        [b, h, s, d] => (b, s, h, d),
        [b, s, hidden] => {
            // Without num_heads (ONNX Runtime's form), the head size is the caches' rotary
            // size.
            let h = match (op.num_heads, tensor(inputs, 1)?.shape().last()) {
                (0, Some(&half))
                    if op.rotary_embedding_dim == 0 && half > 0 && hidden % (2 * half) == 0 =>
                {
                    hidden / (2 * half)
                }
                (h, _) => h,
            };
            if h == 0 || hidden % h != 0 {
                return Err(Error::compute(format!(
                    "RotaryEmbedding 3-D input of hidden size {hidden} needs num_heads dividing it, got {h}"
                )));
            }
            (b, s, h, hidden / h)
        }
        _ => {
            return Err(Error::compute(format!(
                "RotaryEmbedding input must be 3-D or 4-D, got shape {shape:?}"
            )))
        }
    };
    let four_d = shape.len() == 4;
    let idx = |b: usize, s: usize, h: usize, k: usize| {
        if four_d {
            ((b * h_n + h) * s_n + s) * d + k
        } else {
            ((b * s_n + s) * h_n + h) * d + k
        }
    };
    let rd = if op.rotary_embedding_dim == 0 {
        d
    } else {
        op.rotary_embedding_dim
    };
    if rd > d || rd % 2 != 0 {
        return Err(Error::compute(format!(
            "RotaryEmbedding rotary_embedding_dim {rd} must be even and at most head_size {d}"
        )));
    }
    let half = rd / 2;
    let (cos_t, sin_t) = (tensor(inputs, 1)?, tensor(inputs, 2)?);
    let cos = floats(cos_t, "RotaryEmbedding cos_cache")?;
    let sin = floats(sin_t, "RotaryEmbedding sin_cache")?;
    if cos_t.shape() != sin_t.shape() {
        return Err(Error::compute(format!(
            "RotaryEmbedding cos_cache {:?} and sin_cache {:?} shapes differ",
            cos_t.shape(),
            sin_t.shape()
        )));
    }
    let cs = cos_t.shape();
    // Row of the caches (each row has `half` values) for (b, s).
    let rows: Vec<usize> = match opt_tensor(inputs, 3)? {
        Some(p) => {
            let mut pos = p.to_i64_vec()?;
            // ONNX Runtime's one-value form: the position of the first token.
            if pos.len() == 1 && b_n * s_n != 1 {
                pos = (0..b_n * s_n).map(|i| pos[0] + (i % s_n) as i64).collect();
            }
            if pos.len() != b_n * s_n || cs.len() != 2 || cs[1] != half {
                return Err(Error::compute(format!(
                    "RotaryEmbedding with position_ids needs position_ids [{b_n}, {s_n}] and caches [max_pos, {half}], got {:?} and {cs:?}",
                    p.shape()
                )));
            }
            pos.iter()
                .map(|&v| {
                    usize::try_from(v).ok().filter(|&v| v < cs[0]).ok_or_else(|| {
                        Error::compute(format!(
                            "RotaryEmbedding position id {v} is out of range for a cache of {} positions",
                            cs[0]
                        ))
                    })
                })
                .collect::<Result<_>>()?
        }
        None => {
            if cs != [b_n, s_n, half] {
                return Err(Error::compute(format!(
                    "RotaryEmbedding caches must be [{b_n}, {s_n}, {half}] without position_ids, got {cs:?}"
                )));
            }
            (0..b_n * s_n).collect()
        }
    };
    let mut out = x.clone();
    for b in 0..b_n {
        for s in 0..s_n {
            let row = rows[b * s_n + s] * half;
            for h in 0..h_n {
                for k in 0..half {
                    let (i1, i2) = if op.interleaved {
                        (idx(b, s, h, 2 * k), idx(b, s, h, 2 * k + 1))
                    } else {
                        (idx(b, s, h, k), idx(b, s, h, k + half))
                    };
                    let (c, sn) = (cos[row + k], sin[row + k]);
                    out[i1] = c * x[i1] - sn * x[i2];
                    out[i2] = sn * x[i1] + c * x[i2];
                }
            }
        }
    }
    Ok(vec![store(x_t.dtype(), shape.to_vec(), &out)?.into()])
}
