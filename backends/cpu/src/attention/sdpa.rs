//! Attention: scaled dot-product attention, computed in f64 (see the op's doc for the contract).

use xnpu_core::broadcast::BroadcastIndex;
use xnpu_core::num::round_to;
use xnpu_core::{DType, Error, Result, Value};
use xnpu_linalg::buf;
use xnpu_ops::attention::Attention;

use super::store;
use crate::args::{floats, opt_tensor, tensor};

/// A tensor laid out as `[batch, heads, seq, head_size]`.
struct Heads {
    v: Vec<f64>,
    b: usize,
    h: usize,
    s: usize,
    d: usize,
}

impl Heads {
    fn at(&self, b: usize, h: usize, s: usize, d: usize) -> f64 {
        self.v[((b * self.h + h) * self.s + s) * self.d + d]
    }

    /// From a 4-D `[b, h, s, d]` or a 3-D `[b, s, h*d]` tensor (`heads` needed then).
    fn new(vals: Vec<f64>, shape: &[usize], heads: Option<usize>, name: &str) -> Result<Heads> {
        match *shape {
            [b, h, s, d] => Ok(Heads {
                v: vals,
                b,
                h,
                s,
                d,
            }),
            [b, s, hidden] => {
                let h = heads.ok_or_else(|| {
                    Error::compute(format!(
                        "Attention {name} is 3-D, so q_num_heads and kv_num_heads are required"
                    ))
                })?;
                if h == 0 || hidden % h != 0 {
                    return Err(Error::compute(format!(
                        "Attention {name} hidden size {hidden} is not divisible by {h} heads"
                    )));
                }
                let d = hidden / h;
                if vals.is_empty() {
                    // Nothing to reorder (an empty tensor's other dims may be anything).
                    return Ok(Heads {
                        v: vals,
                        b,
                        h,
                        s,
                        d,
                    });
                }
                let mut v = buf::zeroed::<f64>(vals.len(), "Attention's heads")?;
                for bi in 0..b {
                    for si in 0..s {
                        for hi in 0..h {
                            for di in 0..d {
                                v[((bi * h + hi) * s + si) * d + di] =
                                    vals[(bi * s + si) * hidden + hi * d + di];
                            }
                        }
                    }
                }
                Ok(Heads { v, b, h, s, d })
            }
            _ => Err(Error::compute(format!(
                "Attention {name} must be 3-D or 4-D, got shape {shape:?}"
            ))),
        }
    }

    /// `past` (4-D, may be absent) followed by `self` along the sequence axis.
    fn after_past(self, past: Option<Heads>, name: &str) -> Result<Heads> {
        let Some(p) = past else { return Ok(self) };
        if p.b != self.b || p.h != self.h || p.d != self.d {
            return Err(Error::compute(format!(
                "Attention past_{name} shape [{}, {}, {}, {}] does not match {name} [{}, {}, _, {}]",
                p.b, p.h, p.s, p.d, self.b, self.h, self.d
            )));
        }
        // The sequence lengths of empty tensors are unbounded.
        let s = p.s.checked_add(self.s).ok_or_else(|| {
            Error::compute(format!(
                "Attention past_{name} of {} rows and {name} of {} overflow",
                p.s, self.s
            ))
        })?;
        // The past and the new values hold b * h * (p.s + s) * d values between them; none
        // when both are empty, whose other dims are then unbounded.
        if p.v.is_empty() && self.v.is_empty() {
            let (b, h, d) = (self.b, self.h, self.d);
            return Ok(Heads {
                v: self.v,
                b,
                h,
                s,
                d,
            });
        }
        let mut v = buf::reserved(p.v.len() + self.v.len(), "Attention's keys or values")?;
        for bi in 0..self.b {
            for hi in 0..self.h {
                for si in 0..p.s {
                    for di in 0..p.d {
                        v.push(p.at(bi, hi, si, di));
                    }
                }
                for si in 0..self.s {
                    for di in 0..self.d {
                        v.push(self.at(bi, hi, si, di));
                    }
                }
            }
        }
        Ok(Heads {
            v,
            b: self.b,
            h: self.h,
            s,
            d: self.d,
        })
    }
}

/// The attention mask broadcast (right-aligned) to `[batch, q_heads, q_seq, kv_seq]`, as an
/// additive bias; keys beyond its last dim are masked.
struct Mask {
    v: Vec<f64>,
    /// Strides for the 4 target axes (0 on broadcast axes).
    strides: [usize; 4],
    last: usize,
}

impl Mask {
    fn new(vals: Vec<f64>, is_bool: bool, shape: &[usize], target: [usize; 4]) -> Result<Mask> {
        if shape.is_empty() || shape.len() > 4 {
            return Err(Error::compute(format!(
                "Attention attn_mask must have rank 1 to 4, got shape {shape:?}"
            )));
        }
        let last = shape[shape.len() - 1];
        let bad = || {
            Error::compute(format!(
                "Attention attn_mask shape {shape:?} does not broadcast to {target:?}"
            ))
        };
        if last > target[3] {
            return Err(bad());
        }
        // Broadcast to the mask's own key count; keys beyond it are masked (see `at`).
        let idx = BroadcastIndex::new(shape, &[target[0], target[1], target[2], last])
            .map_err(|_| bad())?;
        let mut strides = [0; 4];
        strides.copy_from_slice(idx.strides());
        let v = if is_bool {
            buf::collected(
                vals.iter()
                    .map(|&x| if x != 0.0 { 0.0 } else { f64::NEG_INFINITY }),
                "Attention's mask",
            )?
        } else {
            vals
        };
        Ok(Mask { v, strides, last })
    }

    fn at(&self, b: usize, h: usize, i: usize, j: usize) -> f64 {
        if j >= self.last {
            return f64::NEG_INFINITY;
        }
        let s = &self.strides;
        self.v[b * s[0] + h * s[1] + i * s[2] + j * s[3]]
    }
}

/// Max that propagates NaN (like numpy).
fn nan_max(xs: &[f64]) -> f64 {
    xs.iter().fold(f64::NEG_INFINITY, |a, &b| {
        if a.is_nan() || b.is_nan() {
            f64::NAN
        } else {
            a.max(b)
        }
    })
}

pub fn run(op: &Attention, inputs: &[Option<&Value>], _n_outputs: usize) -> Result<Vec<Value>> {
    let (q_t, k_t, v_t) = (tensor(inputs, 0)?, tensor(inputs, 1)?, tensor(inputs, 2)?);
    let dtype = q_t.dtype();
    let rank = q_t.shape().len();
    if k_t.shape().len() != rank || v_t.shape().len() != rank {
        return Err(Error::compute(format!(
            "Attention Q, K, V must have the same rank, got shapes {:?}, {:?}, {:?}",
            q_t.shape(),
            k_t.shape(),
            v_t.shape()
        )));
    }
    let q = Heads::new(floats(q_t, "Q")?, q_t.shape(), op.q_num_heads, "Q")?;
    let past_k = past_heads(inputs, 4, "past_key")?;
    let past_v = past_heads(inputs, 5, "past_value")?;
    if past_k.is_some() != past_v.is_some() {
        return Err(Error::compute(
            "Attention past_key and past_value must be given together",
        ));
    }
    let past_len = past_k.as_ref().map(|p| p.s);
    let k = Heads::new(floats(k_t, "K")?, k_t.shape(), op.kv_num_heads, "K")?
        .after_past(past_k, "key")?;
    let v = Heads::new(floats(v_t, "V")?, v_t.shape(), op.kv_num_heads, "V")?
        .after_past(past_v, "value")?;
    let group = query_group(&q, &k, &v)?;
    let (b_n, hq, sq, l, dv) = (q.b, q.h, q.s, k.s, v.d);
    let mask = attn_mask(inputs, [b_n, hq, sq, l])?;
    let nonpad = nonpad_kv_seqlen(inputs, past_len, b_n)?;
    let scale = match op.scale {
        Some(s) => s as f64,
        None => 1.0 / (q.d as f64).sqrt(),
    };
    let scores = Scores {
        op,
        dtype,
        q: &q,
        k: &k,
        v: &v,
        group,
        mask,
        nonpad,
        past_len,
        sqrt_scale: round_to(dtype, scale.sqrt()),
    };
    let (y, qk_out) = scores.attend_all()?;
    let y = if rank == 3 {
        let hidden = hq.checked_mul(dv).ok_or_else(|| {
            Error::compute(format!(
                "Attention output of {hq} heads of {dv} values overflows"
            ))
        })?;
        store(
            dtype,
            vec![b_n, sq, hidden],
            &heads_last(&y, b_n, hq, sq, dv)?,
        )?
    } else {
        store(dtype, vec![b_n, hq, sq, dv], &y)?
    };
    Ok(vec![
        y.into(),
        store(k_t.dtype(), vec![k.b, k.h, k.s, k.d], &k.v)?.into(),
        store(v_t.dtype(), vec![v.b, v.h, v.s, v.d], &v.v)?.into(),
        store(dtype, vec![b_n, hq, sq, l], &qk_out)?.into(),
    ])
}

/// Past key or value (input `i`) when given, which must be 4-D.
fn past_heads(inputs: &[Option<&Value>], i: usize, name: &str) -> Result<Option<Heads>> {
    match opt_tensor(inputs, i)? {
        None => Ok(None),
        Some(t) if t.shape().len() == 4 => {
            Ok(Some(Heads::new(floats(t, name)?, t.shape(), None, name)?))
        }
        Some(t) => Err(Error::compute(format!(
            "Attention {name} must be 4-D, got shape {:?}",
            t.shape()
        ))),
    }
}

/// Checks that Q, K and V (after the past) agree, and returns how many query heads share
/// each key/value head.
fn query_group(q: &Heads, k: &Heads, v: &Heads) -> Result<usize> {
    let (b_n, hq, sq, d) = (q.b, q.h, q.s, q.d);
    let (hkv, l, dv) = (k.h, k.s, v.d);
    if k.b != b_n || v.b != b_n || v.h != hkv || v.s != l || k.d != d {
        return Err(Error::compute(format!(
            "Attention shapes disagree: Q [{b_n}, {hq}, {sq}, {d}], K [{}, {hkv}, {l}, {}], \
             V [{}, {}, {}, {dv}] (as [batch, heads, seq, head_size], after the past)",
            k.b, k.d, v.b, v.h, v.s
        )));
    }
    if hkv == 0 || hq % hkv != 0 {
        return Err(Error::compute(format!(
            "Attention q heads ({hq}) must be a multiple of kv heads ({hkv})"
        )));
    }
    Ok(hq / hkv)
}

/// attn_mask when given, broadcast to `target` (`[batch, q_heads, q_seq, kv_seq]`).
fn attn_mask(inputs: &[Option<&Value>], target: [usize; 4]) -> Result<Option<Mask>> {
    match opt_tensor(inputs, 3)? {
        None => Ok(None),
        Some(t) => Ok(Some(Mask::new(
            t.to_f64_vec()?,
            t.dtype() == DType::Bool,
            t.shape(),
            target,
        )?)),
    }
}

/// nonpad_kv_seqlen when given: one valid key count per batch, never with a past.
fn nonpad_kv_seqlen(
    inputs: &[Option<&Value>],
    past_len: Option<usize>,
    b_n: usize,
) -> Result<Option<Vec<i64>>> {
    let Some(t) = opt_tensor(inputs, 6)? else {
        return Ok(None);
    };
    if past_len.is_some() {
        return Err(Error::compute(
            "Attention nonpad_kv_seqlen cannot be combined with past_key/past_value",
        ));
    }
    let n = t.to_i64_vec()?;
    if n.len() != b_n {
        return Err(Error::compute(format!(
            "Attention nonpad_kv_seqlen must have {b_n} values (one per batch), got {}",
            n.len()
        )));
    }
    Ok(Some(n))
}

/// `[b, h, s, d]` values laid out as `[b, s, h * d]`.
fn heads_last(y: &[f64], b_n: usize, hq: usize, sq: usize, dv: usize) -> Result<Vec<f64>> {
    let mut t = buf::zeroed::<f64>(y.len(), "Attention's output")?;
    for b in 0..b_n {
        for h in 0..hq {
            for i in 0..sq {
                for e in 0..dv {
                    t[((b * sq + i) * hq + h) * dv + e] = y[((b * hq + h) * sq + i) * dv + e];
                }
            }
        }
    }
    Ok(t)
}

/// One Attention evaluation: Q, K and V (after the past) and what shapes each score row.
/// Intermediate results are rounded to the input dtype where the reference computes in it,
/// so f16/bf16 results match it closely.
struct Scores<'a> {
    op: &'a Attention,
    dtype: DType,
    q: &'a Heads,
    k: &'a Heads,
    v: &'a Heads,
    /// Query heads per key/value head.
    group: usize,
    mask: Option<Mask>,
    nonpad: Option<Vec<i64>>,
    past_len: Option<usize>,
    /// `sqrt(scale)`, rounded, which scales both Q and K.
    sqrt_scale: f64,
}

impl Scores<'_> {
    fn r(&self, x: f64) -> f64 {
        round_to(self.dtype, x)
    }

    /// The output `[batch, q_heads, q_seq, v_head_size]` and the QK output chosen by
    /// `qk_matmul_output_mode`, `[batch, q_heads, q_seq, kv_seq]`.
    /// Both are allocated fallibly: Q and K with a head size of 0 hold nothing, and ask for
    /// `q_seq x kv_seq` scores all the same.
    fn attend_all(&self) -> Result<(Vec<f64>, Vec<f64>)> {
        let (b_n, hq, sq, l, dv) = (self.q.b, self.q.h, self.q.s, self.k.s, self.v.d);
        let mode = self.op.qk_matmul_output_mode;
        let size = |dims: &[usize], what: &str| buf::zeroed::<f64>(buf::count(dims, what)?, what);
        let mut y = size(&[b_n, hq, sq, dv], "Attention's output")?;
        let mut qk_out = size(&[b_n, hq, sq, l], "Attention's QK output")?;
        if y.is_empty() && qk_out.is_empty() {
            // No row to compute: with head sizes of 0, the other sizes are unbounded.
            return Ok((y, qk_out));
        }
        let mut scores = buf::zeroed::<f64>(l, "a row of attention scores")?;
        let mut bias = buf::zeroed::<f64>(l, "a row of attention scores")?;
        for b in 0..b_n {
            let offset = self.offset(b);
            for h in 0..hq {
                let kh = h / self.group;
                for i in 0..sq {
                    for j in 0..l {
                        bias[j] = self.bias(b, h, i, j, offset);
                        scores[j] = self.score(b, h, kh, i, j);
                    }
                    let row = ((b * hq + h) * sq + i) * l;
                    if mode <= 1 {
                        qk_out[row..row + l].copy_from_slice(&scores);
                    }
                    for j in 0..l {
                        scores[j] = self.r(scores[j] + self.r(bias[j]));
                    }
                    if mode == 2 {
                        qk_out[row..row + l].copy_from_slice(&scores);
                    }
                    self.softmax(&mut scores, &bias);
                    if mode == 3 {
                        qk_out[row..row + l].copy_from_slice(&scores);
                    }
                    let at = ((b * hq + h) * sq + i) * dv;
                    self.weigh_values(&scores, b, kh, &mut y[at..at + dv]);
                }
            }
        }
        Ok((y, qk_out))
    }

    /// The position of batch `b`'s first query row among its keys.
    fn offset(&self, b: usize) -> i64 {
        match (self.past_len, &self.nonpad) {
            (Some(p), _) => p as i64,
            (None, Some(n)) => n[b].saturating_sub(self.q.s as i64),
            (None, None) => 0,
        }
    }

    /// The additive bias of key `j` for query row `i` of head `h`, batch `b`: the mask, and
    /// -inf where causality, the windows or nonpad_kv_seqlen hide the key.
    fn bias(&self, b: usize, h: usize, i: usize, j: usize, offset: i64) -> f64 {
        let op = self.op;
        let mut bj = self.mask.as_ref().map_or(0.0, |m| m.at(b, h, i, j));
        // Saturating: offset comes from nonpad_kv_seqlen, any i64.
        let diff = (i as i64).saturating_add(offset).saturating_sub(j as i64);
        if op.is_causal && diff < 0 {
            bj += f64::NEG_INFINITY;
        }
        if (op.left_window_size >= 0 && diff > op.left_window_size)
            || (op.right_window_size >= 0 && diff.saturating_neg() > op.right_window_size)
        {
            bj += f64::NEG_INFINITY;
        }
        if let Some(n) = &self.nonpad {
            if j as i64 >= n[b] {
                bj += f64::NEG_INFINITY;
            }
        }
        bj
    }

    /// The scaled (and soft-capped) product of query row `i` of head `h` with key `j` of
    /// key head `kh`.
    fn score(&self, b: usize, h: usize, kh: usize, i: usize, j: usize) -> f64 {
        let (q, k, sqrt_scale) = (self.q, self.k, self.sqrt_scale);
        let mut s = 0.0;
        for di in 0..q.d {
            s += self.r(q.at(b, h, i, di) * sqrt_scale) * self.r(k.at(b, kh, j, di) * sqrt_scale);
        }
        s = self.r(s);
        if self.op.softcap > 0.0 {
            let c = self.op.softcap as f64;
            s = self.r(self.r(self.r(s / c).tanh()) * c);
        }
        s
    }

    /// Softmax of a row of biased scores in place; a row whose bias is all -inf attends
    /// nothing.
    fn softmax(&self, scores: &mut [f64], bias: &[f64]) {
        let fully_masked = nan_max(bias) == f64::NEG_INFINITY;
        let m = nan_max(scores);
        let m = if m == f64::NEG_INFINITY { 0.0 } else { m };
        // NumPy sums bf16 (ml_dtypes) one element at a time, rounding each partial sum; f16
        // and wider in float, rounded once.
        let stepwise = self.dtype == DType::Bf16;
        let mut sum = 0.0;
        for s in scores.iter_mut() {
            *s = self.r(self.r(*s - m).exp());
            sum = if stepwise { self.r(sum + *s) } else { sum + *s };
        }
        let sum = self.r(sum);
        let sum = if sum == 0.0 { 1.0 } else { sum };
        for s in scores.iter_mut() {
            *s = if fully_masked { 0.0 } else { self.r(*s / sum) };
        }
    }

    /// `Σ p_j v_j` over the value rows of key head `kh`, batch `b`, into `out`.
    fn weigh_values(&self, probs: &[f64], b: usize, kh: usize, out: &mut [f64]) {
        for (e, o) in out.iter_mut().enumerate() {
            let mut acc = 0.0;
            for (j, p) in probs.iter().enumerate() {
                acc += p * self.v.at(b, kh, j, e);
            }
            *o = self.r(acc);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xnpu_core::Tensor;

    fn attn(is_causal: bool) -> Attention {
        Attention {
            is_causal,
            q_num_heads: None,
            kv_num_heads: None,
            scale: None,
            softcap: 0.0,
            qk_matmul_output_mode: 3,
            left_window_size: -1,
            right_window_size: -1,
        }
    }

    #[test]
    fn heads_last_interleaves_the_heads_of_each_row() {
        // [1 batch, 2 heads, 2 rows, 1 value] → [1, 2 rows, 2 heads x 1].
        assert_eq!(
            heads_last(&[1.0, 2.0, 3.0, 4.0], 1, 2, 2, 1).unwrap(),
            [1.0, 3.0, 2.0, 4.0]
        );
    }

    #[test]
    fn causal_with_past_offsets_the_frontier_and_concatenates_the_cache() {
        // One head, head_size 1, one new query/key after one past key.
        let q: Value = Tensor::from_vec(vec![1, 1, 1, 1], vec![0.0f32])
            .unwrap()
            .into();
        let k: Value = Tensor::from_vec(vec![1, 1, 1, 1], vec![0.0f32])
            .unwrap()
            .into();
        let v: Value = Tensor::from_vec(vec![1, 1, 1, 1], vec![4.0f32])
            .unwrap()
            .into();
        let pk: Value = Tensor::from_vec(vec![1, 1, 1, 1], vec![0.0f32])
            .unwrap()
            .into();
        let pv: Value = Tensor::from_vec(vec![1, 1, 1, 1], vec![2.0f32])
            .unwrap()
            .into();
        let ins = [Some(&q), Some(&k), Some(&v), None, Some(&pk), Some(&pv)];
        let out = run(&attn(true), &ins, 4).unwrap();
        let t = |i: usize| out[i].as_tensor().unwrap().to_vec::<f32>().unwrap();
        // The query (position 1) sees both keys equally: Y = (2 + 4) / 2.
        assert_eq!(t(0), vec![3.0]);
        assert_eq!(t(2), vec![2.0, 4.0]);
        assert_eq!(t(3), vec![0.5, 0.5]);
    }

    #[test]
    fn mismatched_head_counts_are_an_error() {
        let q: Value = Tensor::zeros(DType::F32, vec![1, 3, 1, 2]).unwrap().into();
        let kv: Value = Tensor::zeros(DType::F32, vec![1, 2, 1, 2]).unwrap().into();
        let err = run(&attn(false), &[Some(&q), Some(&kv), Some(&kv)], 1).unwrap_err();
        assert!(err.to_string().contains("multiple of kv heads"), "{err}");
    }
}
