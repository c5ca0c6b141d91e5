//! GroupQueryAttention and MultiHeadAttention (see the ops' docs for the contracts). Values
//! are read as f32 and products accumulated in f64; caches are never converted wholesale.

use std::borrow::Cow;

use bytes::BytesMut;
use rayon::prelude::*;
use xnpu_core::broadcast::BroadcastIndex;
use xnpu_core::num::{load_floats, store_floats};
use xnpu_core::{DType, Error, Result, Tensor, Value};
use xnpu_linalg::buf;
use xnpu_ops::attention::{GroupQueryAttention, MultiHeadAttention};

use crate::args::{opt_tensor, tensor};

/// A float tensor's values as f32, copied.
pub(super) fn f32s(t: &Tensor, what: &str) -> Result<Vec<f32>> {
    match f32_view(t, what)? {
        Cow::Borrowed(v) => buf::copied(v, what),
        Cow::Owned(v) => Ok(v),
    }
}

/// A float tensor's values as f32 (borrowed when it is f32 already and aligned).
fn f32_view<'a>(t: &'a Tensor, what: &str) -> Result<Cow<'a, [f32]>> {
    match t.dtype() {
        DType::F32 => t.as_slice::<f32>(),
        DType::F16 | DType::Bf16 | DType::F64 => load_floats::<f32>(t).map(Cow::Owned),
        d => Err(Error::compute(format!(
            "{what} must be a float tensor, got {d}"
        ))),
    }
}

/// Score rows (query rows × heads × keys) below which one thread runs the attention: rayon's
/// hand-off costs more than it saves on a few hundred dot products.
const PAR_SCORES: usize = 2048;

/// An additive bias broadcast to `[B, N, S, T]` (dims of size 1 broadcast; the last dim may
/// also be longer than `T`, its extra keys unread).
struct Bias {
    v: Vec<f32>,
    /// The bias's stride along each of the 4 target dims (0 where it broadcasts).
    strides: [usize; 4],
}

impl Bias {
    fn new(t: &Tensor, want: [usize; 4], what: &str) -> Result<Bias> {
        let s = t.shape();
        if s.len() > 4 || s.is_empty() {
            return Err(Error::compute(format!(
                "{what} must have rank 1 to 4, got shape {s:?}"
            )));
        }
        let last = s[s.len() - 1];
        let bad = || {
            Error::compute(format!(
                "{what} of shape {s:?} does not broadcast to {want:?}"
            ))
        };
        if last != 1 && last < want[3] {
            return Err(bad());
        }
        // Broadcast to the bias's own key count, of which the first T are read.
        let idx = BroadcastIndex::new(s, &[want[0], want[1], want[2], last]).map_err(|_| bad())?;
        let mut strides = [0; 4];
        strides.copy_from_slice(idx.strides());
        Ok(Bias {
            v: f32s(t, what)?,
            strides,
        })
    }

    fn at(&self, b: usize, n: usize, s: usize, j: usize) -> usize {
        let st = self.strides;
        b * st[0] + n * st[1] + s * st[2] + j * st[3]
    }
}

impl std::ops::Index<[usize; 4]> for Bias {
    type Output = f32;
    fn index(&self, i: [usize; 4]) -> &f32 {
        &self.v[self.at(i[0], i[1], i[2], i[3])]
    }
}

/// Rotates the first `2 * half` features of a head (`x` is that head's `H` values) at row
/// `pos` of the caches.
fn rotate(x: &mut [f32], cos: &[f32], sin: &[f32], half: usize, pos: usize, interleaved: bool) {
    let (c, s) = (&cos[pos * half..][..half], &sin[pos * half..][..half]);
    for k in 0..half {
        let (i1, i2) = if interleaved {
            (2 * k, 2 * k + 1)
        } else {
            (k, k + half)
        };
        let (x1, x2) = (x[i1] as f64, x[i2] as f64);
        let (ck, sk) = (c[k] as f64, s[k] as f64);
        x[i1] = (ck * x1 - sk * x2) as f32;
        x[i2] = (sk * x1 + ck * x2) as f32;
    }
}

/// `softmax(scores)` weighted sum of value rows: writes `Σ p_j v[j]` into `out`. `extra` is a
/// logit that joins the denominator only (smooth softmax, head sink). `acc` is scratch.
fn attend(
    scores: &[f64],
    extra: Option<f64>,
    v_row: impl Fn(usize) -> usize,
    v: &[f32],
    acc: &mut Vec<f64>,
    out: &mut [f32],
) {
    let mut max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if let Some(e) = extra {
        max = max.max(e);
    }
    if max == f64::NEG_INFINITY {
        out.iter_mut().for_each(|o| *o = 0.0);
        return;
    }
    acc.clear();
    acc.resize(out.len(), 0.0);
    let mut den = extra.map_or(0.0, |e| (e - max).exp());
    for (j, &sc) in scores.iter().enumerate() {
        let p = (sc - max).exp();
        den += p;
        let row = &v[v_row(j)..][..out.len()];
        for (a, &x) in acc.iter_mut().zip(row) {
            *a += p * x as f64;
        }
    }
    for (o, a) in out.iter_mut().zip(acc.iter()) {
        *o = (a / den) as f32;
    }
}

/// `Σ a·b` in f64, in eight interleaved partial sums (which the compiler keeps in vector
/// lanes).
fn dot(a: &[f32], b: &[f32]) -> f64 {
    let n = a.len().min(b.len());
    let mut acc = [0.0f64; 8];
    for (x, y) in a[..n].chunks_exact(8).zip(b[..n].chunks_exact(8)) {
        for i in 0..8 {
            acc[i] += x[i] as f64 * y[i] as f64;
        }
    }
    let tail: f64 = (n / 8 * 8..n).map(|i| a[i] as f64 * b[i] as f64).sum();
    acc.iter().sum::<f64>() + tail
}

/// The present KV cache: a new buffer, or the past one updated in place.
enum KvBuf {
    Vec(Vec<f32>),
    InPlace(BytesMut),
}

/// Whether `t` can become the present buffer in place: f32, `len` values, its buffer
/// aligned for f32 and held by nobody else.
fn reusable(t: &Tensor, len: usize) -> bool {
    t.dtype() == DType::F32
        && t.len() == len
        && t.bytes().is_some_and(|b| {
            b.is_unique() && b.as_ptr().align_offset(std::mem::align_of::<f32>()) == 0
        })
}

impl KvBuf {
    /// `t`'s buffer (checked by [`reusable`]) as the present one.
    fn reuse(t: Tensor) -> Result<KvBuf> {
        t.into_bytes()
            .ok_or_else(|| Error::compute("the past buffer holds strings"))?
            .try_into_mut()
            .map(KvBuf::InPlace)
            .map_err(|_| Error::compute("the past buffer is shared"))
    }

    fn as_mut(&mut self) -> &mut [f32] {
        match self {
            KvBuf::Vec(v) => v,
            // Alignment and length were checked by `reusable`.
            KvBuf::InPlace(m) => bytemuck::cast_slice_mut(&mut m[..]),
        }
    }

    fn as_ref(&self) -> &[f32] {
        match self {
            KvBuf::Vec(v) => v,
            KvBuf::InPlace(m) => bytemuck::cast_slice(&m[..]),
        }
    }

    fn into_tensor(self, dtype: DType, shape: Vec<usize>) -> Result<Tensor> {
        match self {
            KvBuf::Vec(v) => store_floats(dtype, shape, v),
            KvBuf::InPlace(m) => Tensor::from_bytes(DType::F32, shape, m.freeze()),
        }
    }
}

pub fn group_query_attention(
    op: &GroupQueryAttention,
    inputs: &[Option<&Value>],
) -> Result<Vec<Value>> {
    group_query_attention_donated(op, inputs, Vec::new())
}

/// GroupQueryAttention where `donated[3]`, `donated[4]` (when present) are the past key and
/// value given up by the caller (absent from `inputs`): when the past buffer already has
/// room for the total sequence and nobody else holds it, the new rows are written into it
/// and it is returned as the present buffer, with no copy; rows past the valid length then
/// keep whatever they held (no query reads them).
pub fn group_query_attention_donated(
    op: &GroupQueryAttention,
    inputs: &[Option<&Value>],
    mut donated: Vec<Option<Value>>,
) -> Result<Vec<Value>> {
    donated.resize(5, None);
    let owned_v = donated.pop().flatten();
    let owned_k = donated.pop().flatten();
    let NewRows {
        sh,
        dtype,
        mut q,
        mut k,
        v,
    } = NewRows::read(op, inputs)?;
    let owned_k = owned_k.map(Value::into_tensor).transpose()?;
    let owned_v = owned_v.map(Value::into_tensor).transpose()?;
    let plen = past_length(
        opt_tensor(inputs, 3)?.or(owned_k.as_ref()),
        opt_tensor(inputs, 4)?.or(owned_v.as_ref()),
        sh,
    )?;
    let pos = Positions::read(inputs, sh, plen)?;
    // With a head size of 0 there is nothing to rotate or write (and the new rows, which
    // then hold nothing, may be any number).
    if op.do_rotary && sh.hd > 0 {
        rotate_new_rows(op, inputs, sh, &pos.past_len, &mut q, &mut k)?;
    }
    let (mut pk, mut pv) = present_buffers(inputs, sh, dtype, owned_k, owned_v, plen, &pos)?;
    if sh.hd > 0 {
        write_new_rows(sh, &pos, &k, &v, pk.as_mut(), pv.as_mut());
    }
    let out = GqaScores::read(op, inputs, sh, &pos)?.attend_all(&q, pk.as_ref(), pv.as_ref())?;
    let (bn, sn, nh, kvh, hd, lp) = (sh.bn, sh.sn, sh.nh, sh.kvh, sh.hd, pos.lp);
    Ok(vec![
        store_floats(dtype, vec![bn, sn, nh * hd], out)?.into(),
        pk.into_tensor(dtype, vec![bn, kvh, lp, hd])?.into(),
        pv.into_tensor(dtype, vec![bn, kvh, lp, hd])?.into(),
    ])
}

/// GroupQueryAttention's sizes: batch, new rows, query heads, key/value heads, head size.
#[derive(Clone, Copy)]
struct GqaShape {
    bn: usize,
    sn: usize,
    nh: usize,
    kvh: usize,
    hd: usize,
}

/// The new rows of GroupQueryAttention, per (batch, row): query heads, key heads and value
/// heads, each `[heads * hd]`.
struct NewRows {
    sh: GqaShape,
    /// The query's type, which the outputs take.
    dtype: DType,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
}

impl NewRows {
    /// Checks the head counts and the query, and reads Q, K and V from a packed query or
    /// from three inputs.
    fn read(op: &GroupQueryAttention, inputs: &[Option<&Value>]) -> Result<NewRows> {
        let (nh, kvh) = (op.num_heads, op.kv_num_heads);
        if nh == 0 || kvh == 0 || nh % kvh != 0 {
            return Err(Error::compute(format!(
                "num_heads ({nh}) must be a positive multiple of kv_num_heads ({kvh})"
            )));
        }
        let q_t = tensor(inputs, 0)?;
        let &[bn, sn, qd] = q_t.shape() else {
            return Err(Error::compute(format!(
                "query must be 3-D [batch, seq, hidden], got {:?}",
                q_t.shape()
            )));
        };
        let key = opt_tensor(inputs, 1)?;
        let width = if key.is_none() {
            kvh.checked_mul(2)
                .and_then(|kv| kv.checked_add(nh))
                .ok_or_else(|| {
                    Error::compute(format!(
                        "num_heads ({nh}) + 2 * kv_num_heads ({kvh}) overflows"
                    ))
                })?
        } else {
            nh
        };
        if qd % width != 0 {
            return Err(Error::compute(format!(
                "query hidden size {qd} is not a multiple of {width} heads"
            )));
        }
        let sh = GqaShape {
            bn,
            sn,
            nh,
            kvh,
            hd: qd / width,
        };
        let qv = f32s(q_t, "query")?;
        let (q, k, v) = match key {
            None => unpack_qkv(&qv, qd, sh)?,
            Some(k_t) => {
                let v_t = tensor(inputs, 2)?;
                check_kv_shapes(k_t, v_t, sh)?;
                (qv, f32s(k_t, "key")?, f32s(v_t, "value")?)
            }
        };
        Ok(NewRows {
            sh,
            dtype: q_t.dtype(),
            q,
            k,
            v,
        })
    }
}

/// Splits a packed query (rows of `qd` = Q, K, V heads) into Q, K and V rows.
fn unpack_qkv(qv: &[f32], qd: usize, sh: GqaShape) -> Result<(Vec<f32>, Vec<f32>, Vec<f32>)> {
    let (nh, kvh, hd) = (sh.nh, sh.kvh, sh.hd);
    // Each part is a share of the packed query (no overflow).
    let rows = qv.len().checked_div(qd).unwrap_or(0);
    let part = |heads: usize| buf::reserved(rows * heads * hd, "the unpacked query");
    let (mut q, mut k, mut v) = (part(nh)?, part(kvh)?, part(kvh)?);
    for row in qv.chunks(qd.max(1)) {
        q.extend_from_slice(&row[..nh * hd]);
        k.extend_from_slice(&row[nh * hd..(nh + kvh) * hd]);
        v.extend_from_slice(&row[(nh + kvh) * hd..]);
    }
    Ok((q, k, v))
}

/// Checks that separate key and value are `[batch, seq, kv_num_heads * head size]`.
fn check_kv_shapes(k_t: &Tensor, v_t: &Tensor, sh: GqaShape) -> Result<()> {
    let (bn, sn) = (sh.bn, sh.sn);
    for (t, what) in [(k_t, "key"), (v_t, "value")] {
        if t.shape() != [bn, sn, sh.kvh * sh.hd] {
            return Err(Error::compute(format!(
                "{what} must be [{bn}, {sn}, {}] (kv_num_heads x head size), got {:?}",
                sh.kvh * sh.hd,
                t.shape()
            )));
        }
    }
    Ok(())
}

/// The past buffers' length (0 without them), checked against the new rows' shape.
fn past_length(past_k: Option<&Tensor>, past_v: Option<&Tensor>, sh: GqaShape) -> Result<usize> {
    let (bn, kvh, hd) = (sh.bn, sh.kvh, sh.hd);
    match (past_k, past_v) {
        (None, None) => Ok(0),
        (Some(pk), Some(pv)) => {
            let s = pk.shape();
            if s.len() != 4 || s[0] != bn || s[1] != kvh || s[3] != hd || pv.shape() != s {
                return Err(Error::compute(format!(
                    "past_key {s:?} and past_value {:?} must both be [{bn}, {kvh}, past, {hd}]",
                    pv.shape()
                )));
            }
            Ok(s[2])
        }
        _ => Err(Error::compute(
            "past_key and past_value must be given together",
        )),
    }
}

/// Where each batch's new rows go in the present buffers.
struct Positions {
    /// Valid past rows per batch: its new rows start there.
    past_len: Vec<usize>,
    /// Valid rows per batch, the new ones included.
    totals: Vec<usize>,
    /// total_sequence_length.
    total: usize,
    /// The present buffers' length.
    lp: usize,
}

impl Positions {
    /// Reads seqlens_k and total_sequence_length and checks that each batch's new rows fit.
    fn read(inputs: &[Option<&Value>], sh: GqaShape, plen: usize) -> Result<Positions> {
        let (bn, sn) = (sh.bn, sh.sn);
        let seqlens = tensor(inputs, 5)?.to_i64_vec()?;
        if seqlens.len() != bn {
            return Err(Error::compute(format!(
                "seqlens_k must hold one value per batch ({bn}), got {}",
                seqlens.len()
            )));
        }
        let total = tensor(inputs, 6)?.to_i64_vec()?;
        let total = match total.as_slice() {
            [t] if *t >= 1 => *t as usize,
            _ => {
                return Err(Error::compute(format!(
                    "total_sequence_length must be one positive value, got {total:?}"
                )))
            }
        };
        let first_prompt = sn == total;
        let lp = plen.max(total);
        let mut past_len = Vec::with_capacity(bn);
        let mut totals = Vec::with_capacity(bn);
        for (b, &sk) in seqlens.iter().enumerate() {
            // Saturating: seqlens_k is any i64 (an absurd one fails the checks below).
            let tb = sk.saturating_add(1);
            let pb = if first_prompt {
                0
            } else {
                tb.saturating_sub(sn as i64)
            };
            if sk < 0
                || pb < 0
                || (!first_prompt && pb as usize > plen)
                || (pb as usize).saturating_add(sn) > lp
            {
                return Err(Error::compute(format!(
                    "seqlens_k[{b}] = {sk} does not fit {sn} new tokens in a cache of {lp} (total_sequence_length {total}, past buffer {plen})"
                )));
            }
            past_len.push(pb as usize);
            totals.push(tb as usize);
        }
        Ok(Positions {
            past_len,
            totals,
            total,
            lp,
        })
    }
}

/// Applies the rotary embedding (cos_cache, sin_cache, position_ids) to the new query and
/// key rows.
fn rotate_new_rows(
    op: &GroupQueryAttention,
    inputs: &[Option<&Value>],
    sh: GqaShape,
    past_len: &[usize],
    q: &mut [f32],
    k: &mut [f32],
) -> Result<()> {
    let (bn, sn, nh, kvh, hd) = (sh.bn, sh.sn, sh.nh, sh.kvh, sh.hd);
    let cos_t = tensor(inputs, 7)?;
    let sin_t = tensor(inputs, 8)?;
    let cs = cos_t.shape();
    if cs.len() != 2 || sin_t.shape() != cs || cs[1].checked_mul(2).is_none_or(|r| r > hd) {
        return Err(Error::compute(format!(
            "cos_cache {cs:?} and sin_cache {:?} must both be [max_pos, rotary_dim / 2] with rotary_dim <= head size {hd}",
            sin_t.shape()
        )));
    }
    let (max_pos, half) = (cs[0], cs[1]);
    let cos = f32_view(cos_t, "cos_cache")?;
    let sin = f32_view(sin_t, "sin_cache")?;
    let pos_ids = position_ids(inputs, sh)?;
    for b in 0..bn {
        for s in 0..sn {
            let pos = match &pos_ids {
                Some(p) => p[b * sn + s],
                None => (past_len[b] + s) as i64,
            };
            let pos = usize::try_from(pos)
                .ok()
                .filter(|&p| p < max_pos)
                .ok_or_else(|| {
                    Error::compute(format!(
                        "position {pos} is outside the rotary caches ({max_pos} positions)"
                    ))
                })?;
            let r = b * sn + s;
            let interleaved = op.rotary_interleaved;
            for h in 0..nh {
                let at = (r * nh + h) * hd;
                rotate(&mut q[at..at + hd], &cos, &sin, half, pos, interleaved);
            }
            for h in 0..kvh {
                let at = (r * kvh + h) * hd;
                rotate(&mut k[at..at + hd], &cos, &sin, half, pos, interleaved);
            }
        }
    }
    Ok(())
}

/// position_ids when given, checked to be `[batch, seq]`.
fn position_ids(inputs: &[Option<&Value>], sh: GqaShape) -> Result<Option<Vec<i64>>> {
    let (bn, sn) = (sh.bn, sh.sn);
    match opt_tensor(inputs, 9)? {
        Some(p) => {
            if p.len() != bn * sn {
                return Err(Error::compute(format!(
                    "position_ids must be [{bn}, {sn}], got {:?}",
                    p.shape()
                )));
            }
            Ok(Some(p.to_i64_vec()?))
        }
        None => Ok(None),
    }
}

/// The present key and value buffers before the new rows are written: the donated past
/// ones taken over in place when they can be (see [`reusable`]), else new ones holding each
/// batch's valid past rows.
fn present_buffers(
    inputs: &[Option<&Value>],
    sh: GqaShape,
    dtype: DType,
    owned_k: Option<Tensor>,
    owned_v: Option<Tensor>,
    plen: usize,
    pos: &Positions,
) -> Result<(KvBuf, KvBuf)> {
    let (bn, kvh, hd, lp) = (sh.bn, sh.kvh, sh.hd, pos.lp);
    // total_sequence_length (an input value) sets lp: checked and allocated fallibly.
    let size = buf::count(&[bn, kvh, lp, hd], "the present key/value buffer")?;
    let in_place = plen == lp
        && dtype == DType::F32
        && owned_k.as_ref().is_some_and(|t| reusable(t, size))
        && owned_v.as_ref().is_some_and(|t| reusable(t, size));
    match (owned_k, owned_v) {
        (Some(a), Some(b)) if in_place => Ok((KvBuf::reuse(a)?, KvBuf::reuse(b)?)),
        (owned_k, owned_v) => {
            let past_k = opt_tensor(inputs, 3)?.or(owned_k.as_ref());
            let past_v = opt_tensor(inputs, 4)?.or(owned_v.as_ref());
            let mut pk = buf::zeroed::<f32>(size, "the present key buffer")?;
            let mut pv = buf::zeroed::<f32>(size, "the present value buffer")?;
            // An empty buffer has nothing to copy (and its (batch, head) pairs may be any
            // number: with a head size of 0, kv_num_heads is unbounded).
            if let (Some(a), Some(b), true) = (past_k, past_v, size > 0) {
                let (a, b) = (f32s(a, "past_key")?, f32s(b, "past_value")?);
                // Rows past the valid past are left zero (as ONNX Runtime writes them).
                for bh in 0..bn * kvh {
                    let rows = pos.past_len[bh / kvh] * hd;
                    pk[bh * lp * hd..][..rows].copy_from_slice(&a[bh * plen * hd..][..rows]);
                    pv[bh * lp * hd..][..rows].copy_from_slice(&b[bh * plen * hd..][..rows]);
                }
            }
            Ok((KvBuf::Vec(pk), KvBuf::Vec(pv)))
        }
    }
}

/// Writes the new key and value rows into the present buffers at each batch's past length.
fn write_new_rows(
    sh: GqaShape,
    pos: &Positions,
    k: &[f32],
    v: &[f32],
    pk: &mut [f32],
    pv: &mut [f32],
) {
    let (sn, kvh, hd, lp) = (sh.sn, sh.kvh, sh.hd, pos.lp);
    for (b, &pb) in pos.past_len.iter().enumerate() {
        for s in 0..sn {
            for h in 0..kvh {
                let src = ((b * sn + s) * kvh + h) * hd;
                let dst = ((b * kvh + h) * lp + pb + s) * hd;
                pk[dst..dst + hd].copy_from_slice(&k[src..src + hd]);
                pv[dst..dst + hd].copy_from_slice(&v[src..src + hd]);
            }
        }
    }
}

/// `1 / sqrt(head size)` unless the op gives a scale (0 means none).
fn attention_scale(scale: f32, hd: usize) -> f64 {
    if scale == 0.0 {
        1.0 / (hd as f64).sqrt()
    } else {
        scale as f64
    }
}

/// How GroupQueryAttention scores a query row against the present keys.
struct GqaScores<'a> {
    op: &'a GroupQueryAttention,
    sh: GqaShape,
    pos: &'a Positions,
    scale: f64,
    bias: Option<Bias>,
    sink: Option<Vec<f32>>,
}

impl<'a> GqaScores<'a> {
    /// Reads attention_bias and head_sink.
    fn read(
        op: &'a GroupQueryAttention,
        inputs: &[Option<&Value>],
        sh: GqaShape,
        pos: &'a Positions,
    ) -> Result<GqaScores<'a>> {
        let (bn, nh, sn) = (sh.bn, sh.nh, sh.sn);
        let bias = match opt_tensor(inputs, 10)? {
            Some(t) => Some(Bias::new(t, [bn, nh, sn, pos.total], "attention_bias")?),
            None => None,
        };
        let sink = match opt_tensor(inputs, 11)? {
            Some(t) if t.len() == nh => Some(f32s(t, "head_sink")?),
            Some(t) => {
                return Err(Error::compute(format!(
                    "head_sink must hold num_heads ({nh}) values, got {:?}",
                    t.shape()
                )))
            }
            None => None,
        };
        Ok(GqaScores {
            op,
            sh,
            pos,
            scale: attention_scale(op.scale, sh.hd),
            bias,
            sink,
        })
    }

    /// The attention output `[batch, seq, heads * hd]`, on rayon's threads when the work is
    /// large enough.
    fn attend_all(&self, q: &[f32], pk: &[f32], pv: &[f32]) -> Result<Vec<f32>> {
        let GqaShape { bn, sn, nh, hd, .. } = self.sh;
        let lp = self.pos.lp;
        // As many values as the query's heads: no overflow.
        let mut out = buf::zeroed::<f32>(q.len(), "GroupQueryAttention's output")?;
        let row = |scratch: &mut (Vec<f64>, Vec<f64>), (r, o): (usize, &mut [f32])| {
            self.row(q, pk, pv, scratch, r, o)
        };
        // Saturating: with a head size of 0 the other sizes are unbounded (nothing runs then).
        let work = [sn, nh, lp].iter().fold(bn, |w, &d| w.saturating_mul(d));
        if hd > 0 && work >= PAR_SCORES && rayon::current_num_threads() > 1 {
            out.par_chunks_mut(hd)
                .enumerate()
                .for_each_init(|| (Vec::with_capacity(lp), Vec::with_capacity(hd)), row);
        } else if hd > 0 {
            let mut scratch = (Vec::with_capacity(lp), Vec::with_capacity(hd));
            for item in out.chunks_mut(hd).enumerate() {
                row(&mut scratch, item);
            }
        }
        Ok(out)
    }

    /// Output row `r` (one per (batch, query row, head), in the output's order) into `o`;
    /// `scores` and `acc` are scratch.
    fn row(
        &self,
        q: &[f32],
        pk: &[f32],
        pv: &[f32],
        (scores, acc): &mut (Vec<f64>, Vec<f64>),
        r: usize,
        o: &mut [f32],
    ) {
        let op = self.op;
        let GqaShape {
            sn, nh, kvh, hd, ..
        } = self.sh;
        let (bs_row, n) = (r / nh, r % nh);
        let (b, s) = (bs_row / sn, bs_row % sn);
        let p_abs = self.pos.past_len[b] + s;
        let last = self.pos.totals[b].max(1) - 1;
        let hi = if op.causal { p_abs.min(last) } else { last };
        // A window of w keys, the query's own included.
        let lo = if op.local_window_size > 0 {
            (p_abs + 1).saturating_sub(op.local_window_size as usize)
        } else {
            0
        };
        let g = n / (nh / kvh);
        let qrow = &q[r * hd..(r + 1) * hd];
        let base = (b * kvh + g) * self.pos.lp;
        scores.clear();
        for j in lo..=hi {
            let mut sc = dot(qrow, &pk[(base + j) * hd..][..hd]) * self.scale;
            if op.softcap > 0.0 {
                let c = op.softcap as f64;
                sc = c * (sc / c).tanh();
            }
            if let Some(bias) = &self.bias {
                sc += bias[[b, n, s, j]] as f64;
            }
            scores.push(sc);
        }
        let extra = match &self.sink {
            Some(h) => Some(h[n] as f64),
            None if op.smooth_softmax => Some(0.0),
            None => None,
        };
        attend(scores, extra, |j| (base + lo + j) * hd, pv, acc, o);
    }
}

/// K or V of MultiHeadAttention as `[B, N, L, H]` rows: 3-D `[B, L, N*H]` (plus its slice of
/// the projection bias) or 4-D `[B, N, L, H]` as is. Returns the values and (L, H).
fn heads_first(
    t: &Tensor,
    bn: usize,
    nh: usize,
    bias: Option<&[f32]>,
    what: &str,
) -> Result<(Vec<f32>, usize, usize)> {
    let v = f32s(t, what)?;
    match *t.shape() {
        // Nothing to reorder (and the batch and sequence of an empty tensor may be anything).
        [b, l, d] if b == bn && d % nh == 0 && v.is_empty() => Ok((v, l, d / nh)),
        [b, l, d] if b == bn && d % nh == 0 => {
            if let Some(bias) = bias.filter(|b| b.len() != d) {
                return Err(Error::compute(format!(
                    "{what} of hidden size {d} does not match its {} projection bias values",
                    bias.len()
                )));
            }
            let h = d / nh;
            let mut out = buf::zeroed::<f32>(v.len(), what)?;
            for bi in 0..bn {
                for li in 0..l {
                    for n in 0..nh {
                        for x in 0..h {
                            let add = bias.map_or(0.0, |b| b[n * h + x]);
                            out[((bi * nh + n) * l + li) * h + x] = v[(bi * l + li) * d + n * h + x] + add;
                        }
                    }
                }
            }
            Ok((out, l, h))
        }
        [b, n, l, h] if b == bn && n == nh => {
            if bias.is_some() {
                return Err(Error::compute(format!(
                    "{what} in [batch, heads, seq, head_size] form takes no bias"
                )));
            }
            Ok((v, l, h))
        }
        _ => Err(Error::compute(format!(
            "{what} must be [{bn}, seq, {nh} x head_size] or [{bn}, {nh}, seq, head_size], got {:?}",
            t.shape()
        ))),
    }
}

pub fn multi_head_attention(
    op: &MultiHeadAttention,
    inputs: &[Option<&Value>],
) -> Result<Vec<Value>> {
    let nh = op.num_heads;
    let q_t = tensor(inputs, 0)?;
    let (bn, sn, qd) = mha_query_dims(q_t, nh)?;
    let hd = qd / nh;
    let k_t = tensor(inputs, 1)?;
    let v_t = tensor(inputs, 2)?;
    let proj = match opt_tensor(inputs, 3)? {
        Some(b) => Some(f32s(b, "bias")?),
        None => None,
    };
    let mut q = f32s(q_t, "query")?;
    let hv = value_head_size(v_t, nh)?;
    // The value's hidden size: the dims of an empty value are unbounded.
    let vd = nh.checked_mul(hv).ok_or_else(|| {
        Error::compute(format!(
            "{nh} heads of value head size {hv} overflow (value {:?})",
            v_t.shape()
        ))
    })?;
    let (qb, kb, vb) = split_projection_bias(proj.as_deref(), qd, vd)?;
    if let Some(qb) = qb {
        // An empty query may have a hidden size of 0.
        for row in q.chunks_mut(qd.max(1)) {
            row.iter_mut().zip(qb).for_each(|(x, b)| *x += b);
        }
    }
    let (k, l, kh) = heads_first(k_t, bn, nh, kb, "key")?;
    let (v, lv, _) = heads_first(v_t, bn, nh, vb, "value")?;
    if kh != hd || lv != l {
        return Err(Error::compute(format!(
            "key ({:?}) and value ({:?}) do not match query's head size {hd}",
            k_t.shape(),
            v_t.shape()
        )));
    }
    let (pk, pv) = (opt_tensor(inputs, 6)?, opt_tensor(inputs, 7)?);
    let plen = mha_past_length(pk, pv, [bn, nh, hd, hv])?;
    let t = plen
        .checked_add(l)
        .ok_or_else(|| Error::compute(format!("{plen} past and {l} new keys overflow")))?;
    let keys = concat_past(pk, &k, bn * nh, plen, l, hd)?;
    let vals = concat_past(pv, &v, bn * nh, plen, l, hv)?;
    let scores = MhaScores {
        op,
        dims: [bn, sn, nh, hd, hv],
        plen,
        t,
        mask: key_padding_mask(opt_tensor(inputs, 4)?, bn, t)?,
        bias: match opt_tensor(inputs, 5)? {
            Some(b) => Some(Bias::new(b, [bn, nh, sn, t], "attention_bias")?),
            None => None,
        },
        scale: attention_scale(op.scale, hd),
    };
    let out = scores.attend_all(&q, &keys, &vals)?;
    let dtype = q_t.dtype();
    Ok(vec![
        store_floats(dtype, vec![bn, sn, vd], out)?.into(),
        store_floats(dtype, vec![bn, nh, t, hd], keys)?.into(),
        store_floats(dtype, vec![bn, nh, t, hv], vals)?.into(),
    ])
}

/// The query's `[batch, seq, hidden]`, checked to split into `num_heads` heads.
fn mha_query_dims(q_t: &Tensor, nh: usize) -> Result<(usize, usize, usize)> {
    let &[bn, sn, qd] = q_t.shape() else {
        return Err(Error::compute(format!(
            "query must be 3-D [batch, seq, hidden], got {:?}",
            q_t.shape()
        )));
    };
    if nh == 0 || qd % nh != 0 {
        return Err(Error::compute(format!(
            "query hidden size {qd} is not a multiple of num_heads {nh}"
        )));
    }
    Ok((bn, sn, qd))
}

/// The value's head size, from its 3-D or 4-D shape.
fn value_head_size(v_t: &Tensor, nh: usize) -> Result<usize> {
    match v_t.shape() {
        [_, _, d] => Ok(d / nh),
        [_, _, _, h] => Ok(*h),
        s => Err(Error::compute(format!(
            "value must be 3-D or 4-D, got {s:?}"
        ))),
    }
}

/// The projection bias split into its Q, K and V parts (`qd`, `qd` and `vd` values).
type ProjectionBias<'a> = (Option<&'a [f32]>, Option<&'a [f32]>, Option<&'a [f32]>);

/// Splits the projection bias, when given, into its Q, K and V parts, checking its length.
fn split_projection_bias(proj: Option<&[f32]>, qd: usize, vd: usize) -> Result<ProjectionBias<'_>> {
    // Saturating: an empty query's hidden size is unbounded (and no bias then has its length).
    let want = qd.saturating_mul(2).saturating_add(vd);
    match proj {
        Some(p) if p.len() == want => {
            Ok((Some(&p[..qd]), Some(&p[qd..2 * qd]), Some(&p[2 * qd..])))
        }
        Some(p) => Err(Error::compute(format!(
            "bias must hold {want} values (Q, K and V biases), got {}",
            p.len()
        ))),
        None => Ok((None, None, None)),
    }
}

/// The past buffers' length (0 without them), checked against `[batch, heads, key head
/// size, value head size]`.
fn mha_past_length(
    pk: Option<&Tensor>,
    pv: Option<&Tensor>,
    [bn, nh, hd, hv]: [usize; 4],
) -> Result<usize> {
    match (pk, pv) {
        (None, None) => Ok(0),
        (Some(a), Some(b)) => {
            let s = a.shape();
            if s.len() != 4
                || s[0] != bn
                || s[1] != nh
                || s[3] != hd
                || b.shape() != [bn, nh, s[2], hv]
            {
                return Err(Error::compute(format!(
                    "past_key {s:?} and past_value {:?} must be [{bn}, {nh}, past, head_size]",
                    b.shape()
                )));
            }
            Ok(s[2])
        }
        _ => Err(Error::compute(
            "past_key and past_value must be given together",
        )),
    }
}

/// `[bh, plen + l, h]`: each of the `bh` (batch, head) pairs' `plen` past rows followed by
/// its `l` new ones (`plen + l` checked by the caller).
fn concat_past(
    past: Option<&Tensor>,
    new: &[f32],
    bh_count: usize,
    plen: usize,
    l: usize,
    h: usize,
) -> Result<Vec<f32>> {
    let t = plen + l;
    let mut out = buf::zeroed::<f32>(
        buf::count(&[bh_count, t, h], "the keys or values")?,
        "the keys or values",
    )?;
    if out.is_empty() {
        // Nothing to copy (and the (batch, head) pairs of empty rows may be any number).
        return Ok(out);
    }
    let old = match past {
        Some(p) => f32s(p, "past")?,
        None => Vec::new(),
    };
    for bh in 0..bh_count {
        out[bh * t * h..][..plen * h].copy_from_slice(&old[bh * plen * h..][..plen * h]);
        out[(bh * t + plen) * h..][..l * h].copy_from_slice(&new[bh * l * h..][..l * h]);
    }
    Ok(out)
}

/// key_padding_mask as one flag per (batch, key), true where the key counts: from a
/// `[batch, keys]` mask or from one valid length per batch.
fn key_padding_mask(m: Option<&Tensor>, bn: usize, t: usize) -> Result<Option<Vec<bool>>> {
    let Some(m) = m else {
        return Ok(None);
    };
    let mv = m.to_i64_vec()?;
    match m.shape() {
        [b, tt] if *b == bn && *tt == t => Ok(Some(buf::collected(
            mv.iter().map(|&x| x != 0),
            "the key padding mask",
        )?)),
        [b] if *b == bn => Ok(Some(buf::collected(
            (0..buf::count(&[bn, t], "the key padding mask")?)
                .map(|i| (i % t) < mv[i / t].max(0) as usize),
            "the key padding mask",
        )?)),
        s => Err(Error::compute(format!(
            "key_padding_mask must be [{bn}, {t}] or [{bn}], got {s:?}"
        ))),
    }
}

/// How MultiHeadAttention scores a query row against the keys (past and new).
struct MhaScores<'a> {
    op: &'a MultiHeadAttention,
    /// Batch, query rows, heads, key head size, value head size.
    dims: [usize; 5],
    /// Past rows, and keys in all.
    plen: usize,
    t: usize,
    mask: Option<Vec<bool>>,
    bias: Option<Bias>,
    scale: f64,
}

impl MhaScores<'_> {
    /// The attention output `[batch, seq, heads * value head size]`, one thread.
    /// The output is allocated fallibly: an empty query (head size 0) has any number of
    /// rows, each of which still gets a value row.
    fn attend_all(&self, q: &[f32], keys: &[f32], vals: &[f32]) -> Result<Vec<f32>> {
        let [bn, sn, nh, hd, hv] = self.dims;
        let qd = nh * hd;
        let t = self.t;
        let mut out = buf::zeroed::<f32>(
            buf::count(&[bn, sn, nh, hv], "MultiHeadAttention's output")?,
            "MultiHeadAttention's output",
        )?;
        if out.is_empty() {
            return Ok(out);
        }
        let mut scores = buf::zeroed::<f64>(t, "a row of attention scores")?;
        let mut acc = Vec::with_capacity(hv);
        for b in 0..bn {
            for s in 0..sn {
                for n in 0..nh {
                    let qrow = &q[(b * sn + s) * qd + n * hd..][..hd];
                    let base = (b * nh + n) * t;
                    self.score_row(qrow, keys, [b, s, n], &mut scores);
                    let oa = ((b * sn + s) * nh + n) * hv;
                    attend(
                        &scores,
                        None,
                        |j| (base + j) * hv,
                        vals,
                        &mut acc,
                        &mut out[oa..oa + hv],
                    );
                }
            }
        }
        Ok(out)
    }

    /// The scores of query row `qrow` (batch `b`, row `s`, head `n`) against every key, with
    /// bias, padding mask and causal mask applied.
    fn score_row(&self, qrow: &[f32], keys: &[f32], [b, s, n]: [usize; 3], scores: &mut [f64]) {
        let op = self.op;
        let [_, _, nh, hd, _] = self.dims;
        let t = self.t;
        let base = (b * nh + n) * t;
        for (j, sc) in scores.iter_mut().enumerate() {
            let mut x = dot(qrow, &keys[(base + j) * hd..][..hd]) * self.scale;
            if let Some(bias) = &self.bias {
                x += bias[[b, n, s, j]] as f64;
            }
            if let Some(m) = &self.mask {
                if !m[b * t + j] {
                    x += op.mask_filter_value as f64;
                }
            }
            if op.unidirectional && j > self.plen + s {
                x = op.mask_filter_value as f64;
            }
            *sc = x;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(nh: usize, kvh: usize, hd: usize) -> GqaShape {
        GqaShape {
            bn: 1,
            sn: 2,
            nh,
            kvh,
            hd,
        }
    }

    #[test]
    fn packed_query_splits_into_query_key_and_value_rows() {
        // Two rows of [q0, q1 | k | v] (2 query heads, 1 key/value head, head size 1).
        let qv = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0];
        let (q, k, v) = unpack_qkv(&qv, 4, shape(2, 1, 1)).unwrap();
        assert_eq!(q, [0.0, 1.0, 4.0, 5.0]);
        assert_eq!(k, [2.0, 6.0]);
        assert_eq!(v, [3.0, 7.0]);
    }

    #[test]
    fn past_key_without_past_value_is_refused() {
        let past = Tensor::from_vec(vec![1, 1, 3, 2], vec![0.0f32; 6]).unwrap();
        let sh = shape(2, 1, 2);
        assert_eq!(past_length(None, None, sh).unwrap(), 0);
        assert_eq!(past_length(Some(&past), Some(&past), sh).unwrap(), 3);
        let e = past_length(Some(&past), None, sh).unwrap_err();
        assert!(e.to_string().contains("given together"), "{e}");
    }

    #[test]
    fn new_rows_land_after_each_batchs_past() {
        // One key/value head of size 1, two new rows, a cache of 4 rows, 1 valid past row.
        let sh = shape(1, 1, 1);
        let pos = Positions {
            past_len: vec![1],
            totals: vec![3],
            total: 3,
            lp: 4,
        };
        let (mut pk, mut pv) = (vec![9.0f32; 4], vec![9.0f32; 4]);
        write_new_rows(sh, &pos, &[1.0, 2.0], &[3.0, 4.0], &mut pk, &mut pv);
        assert_eq!(pk, [9.0, 1.0, 2.0, 9.0]);
        assert_eq!(pv, [9.0, 3.0, 4.0, 9.0]);
    }
}
