//! Attention fusion: scaled dot-product attention on 4-D `[batch, heads, seq, head_size]`
//! tensors, as PyTorch exports `F.scaled_dot_product_attention` or writes it by hand,
//!
//! ```text
//! s = MatMul(Q [· cq], Transpose(K, perm=[0,1,3,2]) [· ck])   (K may be scaled before the transpose)
//! s = s · c   or   s / c                                     (optional)
//! s = Add(s, mask)                                            (optional, either order)
//! y = MatMul(Softmax(s, axis=-1), V)
//! ```
//!
//! becomes the opset-23 `Attention(Q, K, V, mask)` with `scale = c · cq · ck` (each factor 1
//! when absent; the one-element constants must have Q's dtype). Q, K and V must have known
//! rank 4 with equal batch dims, K and V equal heads (K's heads equal to Q's or 1), and the
//! mask, when present, must have a known shape that broadcasts to the scores without
//! widening them, with a last dim equal to the key length (Attention pads a shorter mask
//! with -inf where numpy would broadcast it). Every intermediate must be read only inside
//! the pattern.

use xnpu_core::{Dim, Result, Shape};
use xnpu_ops::attention::{self, Attention};
use xnpu_ops::elementwise::BinaryKind;
use xnpu_ops::{nn, reduce, tensor};

use super::pattern::{binary_of, rewrite_all, single_output, Arg, Rewrite, View};
use super::{Options, Work};
use crate::ir::{Graph, Op};

pub fn run(graph: &mut Graph, _options: &Options<'_>, work: &mut Work) -> Result<usize> {
    rewrite_all(graph, work, matcher)
}

/// [`run`], and also where K comes as exporters merge its transposes (see
/// [`split_key_transposes`]). For a backend that computes `Attention` itself, on its own
/// partition: the session's pipeline leaves that form unfused, so that a backend without an
/// Attention kernel (OpenVINO's table refuses it) still takes the MatMul, Softmax and
/// Transpose nodes.
pub fn run_with_merged_keys(graph: &mut Graph) -> Result<usize> {
    let mut work = Work::default();
    let split = split_key_transposes(graph, &mut work);
    let fused = rewrite_all(graph, &mut work, matcher)?;
    if split > 0 {
        merge_key_transposes(graph, &mut work);
    }
    Ok(fused)
}

const HEADS_FIRST: [i64; 4] = [0, 2, 1, 3];
const SWAP_LAST: [i64; 4] = [0, 1, 3, 2];
const KEY_T: [i64; 4] = [0, 2, 3, 1];

fn transpose(perm: [i64; 4]) -> Op {
    Op::Tensor(tensor::Op::Transpose(tensor::Transpose {
        perm: Some(perm.to_vec()),
    }))
}

/// Exporters merge `K.transpose(1, 2)` (`[b, s, h, d]` to `[b, h, s, d]`) and the
/// `K^T` of the scores into one `Transpose(perm=[0, 2, 3, 1])`. Each such transpose read once,
/// by a MatMul's B, is written as the two, so the matcher sees the K it fuses; returns how many
/// were split. [`merge_key_transposes`] puts back the pairs the matcher did not take.
fn split_key_transposes(g: &mut Graph, work: &mut Work) -> usize {
    let consumers = g.consumers();
    let is_output = g.output_set();
    work.scan(g);
    let mut at = Vec::new();
    for (i, n) in g.nodes.iter().enumerate() {
        work.visit();
        let Op::Tensor(tensor::Op::Transpose(t)) = &n.op else {
            continue;
        };
        let (Some(Some(x)), [Some(y)]) = (n.inputs.first(), n.outputs.as_slice()) else {
            continue;
        };
        let read_by_matmul_b = matches!(consumers[*y].as_slice(), [u]
            if u.slot == 1 && matches!(g.nodes[u.node].op, Op::Nn(nn::Op::MatMul(_))));
        let shape = g.values[*x].ty.tensor().and_then(|t| t.shape.as_ref());
        if t.perm.as_deref() == Some(&KEY_T[..])
            && read_by_matmul_b
            && !is_output[*y]
            && shape.is_some_and(|s| s.rank() == 4)
        {
            at.push((i, *x));
        }
    }
    if at.is_empty() {
        return 0;
    }
    // Each split transpose is preceded by its new first half: the node list is rebuilt once.
    let mut halves = Vec::with_capacity(at.len());
    for &(i, x) in &at {
        let mut ty = g.values[x].ty.clone();
        if let xnpu_core::ValueType::Tensor(t) = &mut ty {
            if let Some(s) = &mut t.shape {
                s.0.swap(1, 2);
            }
        }
        let name = format!("{}/heads_first", g.nodes[i].name);
        let k = g.add_value(name.clone(), ty);
        g.nodes[i].inputs[0] = Some(k);
        g.nodes[i].op = transpose(SWAP_LAST);
        halves.push(crate::ir::Node {
            name,
            op: transpose(HEADS_FIRST),
            inputs: vec![Some(x)],
            outputs: vec![Some(k)],
        });
    }
    let old = std::mem::take(&mut g.nodes);
    g.nodes.reserve(old.len() + halves.len());
    let mut next = at.iter().map(|&(i, _)| i).zip(halves).peekable();
    for (i, node) in old.into_iter().enumerate() {
        if next.peek().is_some_and(|(j, _)| *j == i) {
            if let Some((_, half)) = next.next() {
                g.nodes.push(half);
            }
        }
        g.nodes.push(node);
    }
    work.scan(g);
    at.len()
}

/// `Transpose([0,1,3,2])` of a `Transpose([0,2,1,3])` read only by it, back into one
/// `Transpose([0,2,3,1])`.
fn merge_key_transposes(g: &mut Graph, work: &mut Work) {
    let consumers = g.consumers();
    let producers = g.producers();
    let is_output = g.output_set();
    work.scan(g);
    let perm_of = |n: &crate::ir::Node| match &n.op {
        Op::Tensor(tensor::Op::Transpose(t)) => t.perm.clone(),
        _ => None,
    };
    let mut merged = 0;
    for i in 0..g.nodes.len() {
        work.visit();
        if perm_of(&g.nodes[i]).as_deref() != Some(&SWAP_LAST[..]) {
            continue;
        }
        let Some(Some(k)) = g.nodes[i].inputs.first().copied() else {
            continue;
        };
        let Some((p, 0)) = producers[k] else {
            continue;
        };
        if perm_of(&g.nodes[p]).as_deref() != Some(&HEADS_FIRST[..])
            || consumers[k].len() != 1
            || is_output[k]
        {
            continue;
        }
        let x = g.nodes[p].inputs.first().copied().flatten();
        g.nodes[i].inputs[0] = x;
        g.nodes[i].op = transpose(KEY_T);
        merged += 1;
    }
    if merged > 0 {
        g.remove_dead();
        work.scan(g);
    }
}

/// `val` as `base · c` (or `base / c`) for a one-element constant read only once:
/// (base, factor); otherwise (val, 1).
fn scaled(v: View<'_>, val: usize) -> (usize, f64) {
    let split = || -> Option<(usize, f64)> {
        if !v.private(val, 1) {
            return None;
        }
        let n = v.producer(val)?;
        if let Some((a, c)) = binary_of(n, BinaryKind::Div) {
            let s = v.scalar_for(c, a)?;
            return (s != 0.0).then(|| (a, 1.0 / s));
        }
        let (a, b) = binary_of(n, BinaryKind::Mul)?;
        [(a, b), (b, a)]
            .into_iter()
            .find_map(|(x, c)| Some((x, v.scalar_for(c, x)?)))
    };
    split().unwrap_or((val, 1.0))
}

/// `Transpose(K)` swapping the last two of 4 dims, read only once: K.
fn transposed(v: View<'_>, kt: usize) -> Option<usize> {
    if !v.private(kt, 1) {
        return None;
    }
    let n = v.producer(kt)?;
    match &n.op {
        Op::Tensor(tensor::Op::Transpose(t))
            if t.perm.as_deref() == Some(&[0, 1, 3, 2]) && single_output(n) =>
        {
            n.inputs.first().copied().flatten()
        }
        _ => None,
    }
}

fn rank4(v: View<'_>, x: usize) -> Option<&Shape> {
    v.shape(x).filter(|s| s.rank() == 4)
}

/// Whether a mask of shape `m` broadcasts to scores of shape `s` without widening them and
/// covers every key.
fn mask_fits(m: &Shape, s: &Shape) -> bool {
    if m.rank() == 0 || m.rank() > 4 {
        return false;
    }
    let off = 4 - m.rank();
    m.0.iter().enumerate().all(|(k, d)| {
        let t = &s.0[off + k];
        if off + k == 3 {
            d == t && matches!(d, Dim::Known(_))
        } else {
            d == t || *d == Dim::Known(1)
        }
    })
}

fn matcher(v: View<'_>, i: usize) -> Option<Rewrite> {
    let node = &v.g.nodes[i];
    if !matches!(node.op, Op::Nn(nn::Op::MatMul(_))) || node.inputs.len() != 2 {
        return None;
    }
    let (p, val) = (node.inputs[0]?, node.inputs[1]?);
    if !v.private(p, 1) {
        return None;
    }
    let sm = v.producer(p)?;
    let Op::Reduce(reduce::Op::Softmax(softmax)) = &sm.op else {
        return None;
    };
    if softmax.kind != reduce::SoftmaxKind::Softmax
        || !(softmax.axis == -1 || softmax.axis == 3)
        || !single_output(sm)
    {
        return None;
    }
    let s = sm.inputs.first().copied().flatten()?;
    let scores = rank4(v, s)?.clone();
    // An additive mask (either operand of an Add), or none.
    let mut tries = Vec::with_capacity(3);
    if v.private(s, 1) {
        if let Some((a, b)) = v.producer(s).and_then(|n| binary_of(n, BinaryKind::Add)) {
            for (x, m) in [(a, b), (b, a)] {
                if v.shape(x) == Some(&scores)
                    && v.shape(m).is_some_and(|ms| mask_fits(ms, &scores))
                    && v.dtype(m) == v.dtype(x)
                {
                    tries.push((x, Some(m)));
                }
            }
        }
    }
    tries.push((s, None));
    tries
        .into_iter()
        .find_map(|(s, mask)| scores_to_attention(v, i, s, mask, val))
}

/// The rest of the match from the (masked) scores `s` up: the Attention replacing node `i`.
fn scores_to_attention(
    v: View<'_>,
    i: usize,
    s: usize,
    mask: Option<usize>,
    val: usize,
) -> Option<Rewrite> {
    let (qk, c) = scaled(v, s);
    if !v.private(qk, 1) {
        return None;
    }
    let mm = v.producer(qk)?;
    if !matches!(mm.op, Op::Nn(nn::Op::MatMul(_))) || mm.inputs.len() != 2 || !single_output(mm) {
        return None;
    }
    let (q, cq) = scaled(v, mm.inputs[0]?);
    let (kb, ck) = scaled(v, mm.inputs[1]?);
    // K scaled after the transpose, or before it.
    let k_pre = transposed(v, kb)?;
    let (k, ck) = if ck != 1.0 {
        (k_pre, ck)
    } else {
        scaled(v, k_pre)
    };
    let (qs, ks, vs) = (rank4(v, q)?, rank4(v, k)?, rank4(v, val)?);
    let dtype = v.dtype(q)?;
    if !dtype.is_float() || v.dtype(k)? != dtype || v.dtype(val)? != dtype {
        return None;
    }
    let (qd, kd, vd) = (&qs.0, &ks.0, &vs.0);
    let heads_ok = (kd[1] == qd[1] || kd[1] == Dim::Known(1)) && vd[1] == kd[1];
    if qd[0] != kd[0] || vd[0] != kd[0] || !heads_ok || kd[2] != vd[2] || qd[3] != kd[3] {
        return None;
    }
    let scale = c * cq * ck;
    if !scale.is_finite() {
        return None;
    }
    Some(Rewrite {
        at: i,
        op: Op::Attention(attention::Op::Attention(Attention {
            is_causal: false,
            q_num_heads: None,
            kv_num_heads: None,
            scale: Some(scale as f32),
            softcap: 0.0,
            qk_matmul_output_mode: 0,
            left_window_size: -1,
            right_window_size: -1,
        })),
        args: vec![
            Arg::Value(q),
            Arg::Value(k),
            Arg::Value(val),
            mask.map_or(Arg::Absent, Arg::Value),
        ],
        tag: "attention",
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::passes::pattern::build::{f32_ty, B};
    use xnpu_ops::reduce::{Softmax, SoftmaxKind};
    use xnpu_ops::tensor::Transpose;
    use BinaryKind::{Add, Div, Mul};

    const Q: &[usize] = &[1, 2, 3, 4];
    const S: &[usize] = &[1, 2, 3, 3];

    fn matmul(b: &mut B, x: usize, y: usize, dims: &[usize]) -> usize {
        b.node(Op::Nn(nn::Op::MatMul(nn::MatMul)), &[x, y], f32_ty(dims))
    }

    /// The graph's output: `Softmax(s) @ v`.
    fn softmax_times(b: &mut B, s: usize, v: usize) {
        let p = b.node(
            Op::Reduce(reduce::Op::Softmax(Softmax {
                kind: SoftmaxKind::Softmax,
                axis: -1,
                coerce_2d: false,
            })),
            &[s],
            f32_ty(S),
        );
        let y = matmul(b, p, v, Q);
        b.output(y);
    }

    /// `form`: 0 divide the scores by 2; 1 scale Q and K^T by √0.5 each (torch's SDPA);
    /// 2 scale Q and K (before its transpose) by √0.5 each.
    fn graph(form: usize, with_mask: bool, extra_reader: bool) -> B {
        let mut b = B::new();
        let q = b.input("q", Q);
        let k0 = b.input("k", Q);
        let v = b.input("v", Q);
        let k = if form == 2 {
            let c = b.scalar(0.5f32.sqrt());
            b.bin(Mul, c, k0, Q)
        } else {
            k0
        };
        let kt = b.node(
            Op::Tensor(tensor::Op::Transpose(Transpose {
                perm: Some(vec![0, 1, 3, 2]),
            })),
            &[k],
            f32_ty(&[1, 2, 4, 3]),
        );
        let mut s = match form {
            0 => {
                let qk = matmul(&mut b, q, kt, S);
                let c = b.scalar(2.0);
                b.bin(Div, qk, c, S)
            }
            1 => {
                let c1 = b.scalar(0.5f32.sqrt());
                let qs = b.bin(Mul, q, c1, Q);
                let c2 = b.scalar(0.5f32.sqrt());
                let ks = b.bin(Mul, kt, c2, &[1, 2, 4, 3]);
                matmul(&mut b, qs, ks, S)
            }
            _ => {
                let c1 = b.scalar(0.5f32.sqrt());
                let qs = b.bin(Mul, q, c1, Q);
                matmul(&mut b, qs, kt, S)
            }
        };
        if with_mask {
            // With form 1 the mask has the scores' own shape (and comes first in the Add).
            let m = b.input("mask", if form == 1 { S } else { &[1, 1, 3, 3] });
            s = b.bin(Add, m, s, S);
        }
        if extra_reader {
            b.output(s);
        }
        softmax_times(&mut b, s, v);
        b
    }

    #[test]
    fn fuses_sdpa_forms() {
        for form in 0..3 {
            for with_mask in [false, true] {
                let mut b = graph(form, with_mask, false);
                assert_eq!(
                    run(&mut b.g, &Options::default(), &mut Work::default()).unwrap(),
                    1
                );
                assert_eq!(b.g.nodes.len(), 1, "{}", b.g);
                let n = &b.g.nodes[0];
                let Op::Attention(attention::Op::Attention(a)) = &n.op else {
                    panic!("not fused: {}", b.g);
                };
                assert!((a.scale.unwrap() - 0.5).abs() < 1e-6);
                assert_eq!(n.inputs[3].is_some(), with_mask);
            }
        }
    }

    /// K as exporters merge its transposes: `Transpose(x [b, s, h, d], perm=[0, 2, 3, 1])`.
    fn merged_key_graph(extra_reader: bool) -> (B, usize) {
        let mut b = B::new();
        let q = b.input("q", Q);
        let x = b.input("k_bshd", &[1, 3, 2, 4]);
        let v = b.input("v", Q);
        let kt = b.node(
            Op::Tensor(tensor::Op::Transpose(Transpose {
                perm: Some(KEY_T.to_vec()),
            })),
            &[x],
            f32_ty(&[1, 2, 4, 3]),
        );
        let qk = matmul(&mut b, q, kt, S);
        let c = b.scalar(2.0);
        let s = b.bin(Div, qk, c, S);
        if extra_reader {
            b.output(s);
        }
        softmax_times(&mut b, s, v);
        (b, x)
    }

    #[test]
    fn fuses_a_key_whose_transposes_the_exporter_merged() {
        let (mut b, x) = merged_key_graph(false);
        let n = b.g.nodes.len();
        assert_eq!(
            run(&mut b.g, &Options::default(), &mut Work::default()).unwrap(),
            0,
            "the pipeline leaves it"
        );
        assert_eq!(b.g.nodes.len(), n);
        assert_eq!(run_with_merged_keys(&mut b.g).unwrap(), 1);
        assert_eq!(b.g.nodes.len(), 2, "{}", b.g);
        let Op::Tensor(tensor::Op::Transpose(t)) = &b.g.nodes[0].op else {
            panic!("K is not made heads-first: {}", b.g);
        };
        assert_eq!(t.perm.as_deref(), Some(&HEADS_FIRST[..]));
        assert_eq!(b.g.nodes[0].inputs[0], Some(x));
        assert!(matches!(b.g.nodes[1].op, Op::Attention(_)), "{}", b.g);
    }

    #[test]
    fn puts_back_a_merged_key_transpose_it_does_not_fuse() {
        let (mut b, x) = merged_key_graph(true);
        let n = b.g.nodes.len();
        assert_eq!(run_with_merged_keys(&mut b.g).unwrap(), 0);
        assert_eq!(b.g.nodes.len(), n, "{}", b.g);
        let Op::Tensor(tensor::Op::Transpose(t)) = &b.g.nodes[0].op else {
            panic!("{}", b.g);
        };
        assert_eq!(t.perm.as_deref(), Some(&KEY_T[..]));
        assert_eq!(b.g.nodes[0].inputs[0], Some(x));
    }

    #[test]
    fn leaves_attention_whose_scores_are_read_elsewhere() {
        let mut b = graph(0, true, true);
        let n = b.g.nodes.len();
        assert_eq!(
            run(&mut b.g, &Options::default(), &mut Work::default()).unwrap(),
            0
        );
        assert_eq!(b.g.nodes.len(), n);
    }
}
