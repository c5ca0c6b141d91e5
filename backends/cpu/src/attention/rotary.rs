//! RotaryEmbedding (see the op's doc for the contract), computed in f64.

use xnpu_core::{Error, Result, Tensor, Value};
use xnpu_linalg::buf;
use xnpu_ops::attention::RotaryEmbedding;

use super::store;
use crate::args::{floats, opt_tensor, tensor};

pub fn run(op: &RotaryEmbedding, inputs: &[Option<&Value>]) -> Result<Vec<Value>> {
    let x_t = tensor(inputs, 0)?;
    let x = floats(x_t, "RotaryEmbedding X")?;
    let shape = x_t.shape();
    if x.is_empty() {
        // Nothing to rotate (and an empty input's batch and sequence may be anything).
        return Ok(vec![store(x_t.dtype(), shape.to_vec(), &[])?.into()]);
    }
    let lay = Layout::of(op, inputs, shape)?;
    let half = rotary_half(op, lay.d)?;
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
    let rows = cache_rows(opt_tensor(inputs, 3)?, cos_t.shape(), lay, half)?;
    let out = rotate(op, lay, half, &rows, &cos, &sin, &x)?;
    Ok(vec![store(x_t.dtype(), shape.to_vec(), &out)?.into()])
}

/// The input's (batch, seq, heads, head_size), and whether it is 4-D (`[b, h, s, d]`) or
/// 3-D (`[b, s, h * d]`).
#[derive(Clone, Copy)]
struct Layout {
    b_n: usize,
    s_n: usize,
    h_n: usize,
    d: usize,
    four_d: bool,
}

impl Layout {
    /// Reads the layout of an input of shape `shape`; a 3-D one takes its heads from
    /// num_heads or, without it, from the caches.
    fn of(op: &RotaryEmbedding, inputs: &[Option<&Value>], shape: &[usize]) -> Result<Layout> {
        let (b_n, s_n, h_n, d) = match *shape {
            [b, h, s, d] => (b, s, h, d),
            [b, s, hidden] => {
                // Without num_heads (ONNX Runtime's form), the head size is the caches'
                // rotary size.
                let h = match (op.num_heads, tensor(inputs, 1)?.shape().last()) {
                    (0, Some(&half))
                        if op.rotary_embedding_dim == 0
                            && half > 0
                            && half.checked_mul(2).is_some_and(|full| hidden % full == 0) =>
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
        Ok(Layout {
            b_n,
            s_n,
            h_n,
            d,
            four_d: shape.len() == 4,
        })
    }

    /// The flat index of (b, s, h, k).
    fn idx(&self, b: usize, s: usize, h: usize, k: usize) -> usize {
        let (s_n, h_n, d) = (self.s_n, self.h_n, self.d);
        if self.four_d {
            ((b * h_n + h) * s_n + s) * d + k
        } else {
            ((b * s_n + s) * h_n + h) * d + k
        }
    }
}

/// Half the rotated features of a head: rotary_embedding_dim (the whole head when 0),
/// checked to be even and to fit.
fn rotary_half(op: &RotaryEmbedding, d: usize) -> Result<usize> {
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
    Ok(rd / 2)
}

/// The row of the caches (each row has `half` values) for each (b, s): from position_ids
/// into `[max_pos, half]` caches, or row by row of `[batch, seq, half]` caches without them.
fn cache_rows(
    pos_t: Option<&Tensor>,
    cs: &[usize],
    lay: Layout,
    half: usize,
) -> Result<Vec<usize>> {
    let (b_n, s_n) = (lay.b_n, lay.s_n);
    let Some(p) = pos_t else {
        if cs != [b_n, s_n, half] {
            return Err(Error::compute(format!(
                "RotaryEmbedding caches must be [{b_n}, {s_n}, {half}] without position_ids, got {cs:?}"
            )));
        }
        return buf::collected(0..b_n * s_n, "RotaryEmbedding's cache rows");
    };
    let mut pos = p.to_i64_vec()?;
    // ONNX Runtime's one-value form: the position of the first token. The input is not
    // empty, so b_n * s_n counts some of its rows.
    if pos.len() == 1 && b_n * s_n != 1 {
        pos = buf::collected(
            (0..b_n * s_n).map(|i| pos[0].saturating_add((i % s_n) as i64)),
            "RotaryEmbedding's positions",
        )?;
    }
    if pos.len() != b_n * s_n || cs.len() != 2 || cs[1] != half {
        return Err(Error::compute(format!(
            "RotaryEmbedding with position_ids needs position_ids [{b_n}, {s_n}] and caches [max_pos, {half}], got {:?} and {cs:?}",
            p.shape()
        )));
    }
    let rows = pos.iter().map(|&v| {
        usize::try_from(v)
            .ok()
            .filter(|&v| v < cs[0])
            .ok_or_else(|| {
                Error::compute(format!(
                    "RotaryEmbedding position id {v} is out of range for a cache of {} positions",
                    cs[0]
                ))
            })
    });
    buf::try_collected(pos.len(), rows, "RotaryEmbedding's cache rows")
}

/// `x` with the first `2 * half` features of every head rotated by its cache row.
fn rotate(
    op: &RotaryEmbedding,
    lay: Layout,
    half: usize,
    rows: &[usize],
    cos: &[f64],
    sin: &[f64],
    x: &[f64],
) -> Result<Vec<f64>> {
    let mut out = buf::copied(x, "RotaryEmbedding's output")?;
    for b in 0..lay.b_n {
        for s in 0..lay.s_n {
            let row = rows[b * lay.s_n + s] * half;
            for h in 0..lay.h_n {
                for k in 0..half {
                    let (i1, i2) = if op.interleaved {
                        (lay.idx(b, s, h, 2 * k), lay.idx(b, s, h, 2 * k + 1))
                    } else {
                        (lay.idx(b, s, h, k), lay.idx(b, s, h, k + half))
                    };
                    let (c, sn) = (cos[row + k], sin[row + k]);
                    out[i1] = c * x[i1] - sn * x[i2];
                    out[i2] = sn * x[i1] + c * x[i2];
                }
            }
        }
    }
    Ok(out)
}
