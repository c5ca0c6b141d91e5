//! Conv + BatchNormalization folding: a Conv with a constant weight (and constant or absent
//! bias) whose only reader is an inference-mode BatchNormalization with constant scale,
//! bias, mean and variance becomes one Conv with the normalization folded into new
//! constants: with `s = scale / sqrt(var + epsilon)` per output channel,
//! `W'[m] = W[m] * s[m]` and `B'[m] = (B[m] - mean[m]) * s[m] + bias[m]`.
//! Computed in f64, stored in the weight's dtype (f32 or f64). A Conv followed by a Mul or
//! an Add of a constant that varies only along the channel dim (one element, `[M, 1, 1]`,
//! `[1, M, 1, 1]`, ...: Caffe2's Scale after SpatialBN) folds the same way (`s` = the
//! constant and `t` = 0, or `s` = 1 and `t` = the constant).
//!
//! The same for a 2-D product followed by BatchNormalization (BatchNorm1d after a Linear):
//! Gemm with a constant B and a constant or absent C of `[N]`, `[1, N]` or one element
//! becomes a Gemm with B's columns scaled and a new `[N]` C (beta 1); MatMul of a constant
//! `[K, N]` B with a 2-D result becomes MatMulBias with B's columns scaled.

use xnpu_core::{DType, Result, Tensor};
use xnpu_ops::elementwise::BinaryKind;
use xnpu_ops::{nn, reduce};

use super::pattern::{binary_of, float_tensor, rewrite_all, single_output, Arg, Rewrite, View};
use super::{Options, Work};
use crate::ir::{Graph, Op};

pub fn run(graph: &mut Graph, _options: &Options<'_>, work: &mut Work) -> Result<usize> {
    rewrite_all(graph, work, matcher)
}

fn matcher(v: View<'_>, i: usize) -> Option<Rewrite> {
    let node = &v.g.nodes[i];
    if !single_output(node) {
        return None;
    }
    if let Op::Reduce(reduce::Op::BatchNormalization(bn)) = &node.op {
        if bn.training_mode || node.inputs.len() != 5 {
            return None;
        }
        let x = node.inputs[0]?;
        if !v.private(x, 1) {
            return None;
        }
        return match &v.producer(x)?.op {
            Op::Nn(nn::Op::Conv(_)) => {
                fold_conv(v, i, x, "conv_bn", |m, dtype| bn_affine(v, i, m, dtype))
            }
            Op::Nn(nn::Op::Gemm(_) | nn::Op::MatMul(_)) => product_bn(v, i),
            _ => None,
        };
    }
    // A per-channel constant multiply or add (Caffe2's Scale after SpatialBN, and the like).
    for (kind, tag) in [(BinaryKind::Mul, "conv_mul"), (BinaryKind::Add, "conv_add")] {
        let Some((a, b)) = binary_of(node, kind) else {
            continue;
        };
        return [(a, b), (b, a)].into_iter().find_map(|(x, c)| {
            if !v.private(x, 1) || !matches!(v.producer(x)?.op, Op::Nn(nn::Op::Conv(_))) {
                return None;
            }
            let rank = v.shape(x)?.rank();
            fold_conv(v, i, x, tag, |m, dtype| {
                let c = per_channel(v, c, m, rank, dtype)?;
                Some(match kind {
                    BinaryKind::Mul => (c, vec![0.0; m]),
                    _ => (vec![1.0; m], c),
                })
            })
        });
    }
    None
}

/// A constant that broadcasts against a `[N, m, ...]` tensor of rank `rank` along the
/// channel dim only (one element, or shape `[m, 1, .., 1]` / `[1, m, 1, ..]` and the like):
/// its `m` per-channel values.
fn per_channel(v: View<'_>, c: usize, m: usize, rank: usize, dtype: DType) -> Option<Vec<f64>> {
    let t = v.constant(c)?;
    if t.dtype() != dtype || t.rank() > rank || (t.len() != 1 && t.len() != m) {
        return None;
    }
    let data = t.to_f64_vec().ok()?;
    if t.len() == 1 {
        return Some(vec![data[0]; m]);
    }
    // Right-aligned against [N, m, ...], the channel dim is the (rank - 1)-th from the end.
    let from_end = rank - 1;
    let dims = t.shape();
    let ok = dims.iter().rev().enumerate().all(
        |(k, &d)| {
            if k + 1 == from_end {
                d == m
            } else {
                d == 1
            }
        },
    );
    (ok && t.rank() >= from_end).then_some(data)
}

/// Folds `y = x * s + t` per output channel into the Conv producing `x`, replacing node
/// `i` (which computes `y`). `affine(m, dtype)` gives (s, t).
fn fold_conv(
    v: View<'_>,
    i: usize,
    x: usize,
    tag: &'static str,
    affine: impl FnOnce(usize, DType) -> Option<(Vec<f64>, Vec<f64>)>,
) -> Option<Rewrite> {
    let conv_node = v.producer(x)?;
    let Op::Nn(nn::Op::Conv(conv)) = &conv_node.op else {
        return None;
    };
    if !single_output(conv_node) {
        return None;
    }
    let wid = conv_node.inputs.get(1).copied().flatten()?;
    let w = v.constant(wid)?;
    let dtype = w.dtype();
    let m = *w.shape().first()?;
    // A weight other nodes read too would be copied for this one (a thousand Convs of one
    // weight, a thousand copies); an empty one says nothing of m but its dims.
    if w.rank() < 3 || m == 0 || w.is_empty() || v.readers(wid) != 1 {
        return None;
    }
    let conv_bias = match conv_node.inputs.get(2).copied().flatten() {
        Some(b) => {
            let t = v.constant(b)?;
            if t.dtype() != dtype || t.shape() != [m] {
                return None;
            }
            t.to_f64_vec().ok()?
        }
        None => vec![0.0; m],
    };
    let (s, t) = affine(m, dtype)?;
    if s.iter().chain(&t).any(|x| !x.is_finite()) {
        return None;
    }
    let mut wd = w.to_f64_vec().ok()?;
    let per = wd.len() / m;
    for (k, x) in wd.iter_mut().enumerate() {
        *x *= s[k / per];
    }
    let bd: Vec<f64> = (0..m).map(|c| conv_bias[c] * s[c] + t[c]).collect();
    let new_w = float_tensor(dtype, w.shape().to_vec(), wd)?;
    let new_b = float_tensor(dtype, vec![m], bd)?;
    Some(Rewrite {
        at: i,
        op: Op::Nn(nn::Op::Conv(conv.clone())),
        args: vec![
            Arg::Value(conv_node.inputs[0]?),
            Arg::Const("W", new_w),
            Arg::Const("B", new_b),
        ],
        tag,
    })
}

/// `s` and `t` of BatchNormalization node `i` (`y = x * s + t` per channel) for `m` channels
/// of `dtype`.
fn bn_affine(
    v: View<'_>,
    i: usize,
    m: usize,
    dtype: xnpu_core::DType,
) -> Option<(Vec<f64>, Vec<f64>)> {
    let node = &v.g.nodes[i];
    let Op::Reduce(reduce::Op::BatchNormalization(bn)) = &node.op else {
        return None;
    };
    let per_channel = |id: Option<usize>| -> Option<Vec<f64>> {
        let t: &Tensor = v.constant(id?)?;
        if t.dtype() != dtype || t.shape() != [m] {
            return None;
        }
        t.to_f64_vec().ok()
    };
    let scale = per_channel(node.inputs[1])?;
    let shift = per_channel(node.inputs[2])?;
    let mean = per_channel(node.inputs[3])?;
    let var = per_channel(node.inputs[4])?;
    let eps = bn.epsilon as f64;
    let s: Vec<f64> = (0..m).map(|c| scale[c] / (var[c] + eps).sqrt()).collect();
    if s.iter().any(|x| !x.is_finite()) {
        return None;
    }
    let t = (0..m).map(|c| shift[c] - mean[c] * s[c]).collect();
    Some((s, t))
}

/// Gemm or MatMul (2-D result, constant B) → BatchNormalization at node `i`.
fn product_bn(v: View<'_>, i: usize) -> Option<Rewrite> {
    let bn_node = &v.g.nodes[i];
    let x = bn_node.inputs[0]?;
    let p = v.producer(x)?;
    let (gemm, trans_b) = match &p.op {
        Op::Nn(nn::Op::Gemm(g)) => (Some(g), g.trans_b),
        Op::Nn(nn::Op::MatMul(_)) => (None, false),
        _ => return None,
    };
    if !single_output(p) || v.shape(x)?.rank() != 2 {
        return None;
    }
    let wid = p.inputs.get(1).copied().flatten()?;
    let w = v.constant(wid)?;
    let dtype = w.dtype();
    // As for a Conv: a weight of this product only, and not empty.
    if w.rank() != 2 || w.is_empty() || v.readers(wid) != 1 {
        return None;
    }
    let (rows, cols) = (w.shape()[0], w.shape()[1]);
    let n = if trans_b { rows } else { cols };
    if v.last_dim(x)? != n || n == 0 {
        return None;
    }
    let (s, t) = bn_affine(v, i, n, dtype)?;
    let mut wd = w.to_f64_vec().ok()?;
    for (k, e) in wd.iter_mut().enumerate() {
        *e *= s[if trans_b { k / cols } else { k % cols }];
    }
    let new_w = float_tensor(dtype, vec![rows, cols], wd)?;
    let a = Arg::Value(p.inputs[0]?);
    let Some(gemm) = gemm else {
        return Some(Rewrite {
            at: i,
            op: Op::Nn(nn::Op::MatMulBias(nn::MatMulBias { activation: None })),
            args: vec![
                a,
                Arg::Const("B", new_w),
                Arg::Const("bias", float_tensor(dtype, vec![n], t)?),
            ],
            tag: "matmul_bn",
        });
    };
    // beta · C broadcast to a per-column vector.
    let c: Vec<f64> = match p.inputs.get(2).copied().flatten() {
        None => vec![0.0; n],
        Some(c) => {
            let ct = v.constant(c)?;
            let per_col = ct.dtype() == dtype
                && (ct.len() == 1
                    || (ct.len() == n && ct.shape().last() == Some(&n) && ct.rank() <= 2));
            if !per_col {
                return None;
            }
            let cd = ct.to_f64_vec().ok()?;
            (0..n)
                .map(|k| gemm.beta as f64 * cd[if cd.len() == 1 { 0 } else { k }])
                .collect()
        }
    };
    let bias: Vec<f64> = (0..n).map(|k| c[k] * s[k] + t[k]).collect();
    Some(Rewrite {
        at: i,
        op: Op::Nn(nn::Op::Gemm(nn::Gemm {
            beta: 1.0,
            ..gemm.clone()
        })),
        args: vec![
            a,
            Arg::Const("B", new_w),
            Arg::Const("C", float_tensor(dtype, vec![n], bias)?),
        ],
        tag: "gemm_bn",
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::passes::pattern::build::{f32_ty, B};
    use xnpu_ops::reduce::BatchNormalization;

    fn graph(extra_reader: bool) -> B {
        let mut b = B::new();
        let y = b.conv_1x1();
        let scale = b.vector(&[1.0, 2.0, 3.0]);
        let bias = b.vector(&[0.5, 0.0, -0.5]);
        let mean = b.vector(&[0.0, 1.0, 2.0]);
        let var = b.vector(&[1.0, 4.0, 9.0]);
        let z = b.node(
            Op::Reduce(reduce::Op::BatchNormalization(BatchNormalization {
                epsilon: 0.0,
                momentum: 0.9,
                training_mode: false,
            })),
            &[y, scale, bias, mean, var],
            f32_ty(&[1, 3, 4, 4]),
        );
        b.output(z);
        if extra_reader {
            b.output(y);
        }
        b
    }

    #[test]
    fn folds_batch_norm_into_conv() {
        let mut b = graph(false);
        let name = b.g.values[b.g.outputs[0]].name.clone();
        assert_eq!(
            run(&mut b.g, &Options::default(), &mut Work::default()).unwrap(),
            1
        );
        assert_eq!(b.g.nodes.len(), 1);
        assert_eq!(b.count("Conv"), 1);
        let n = &b.g.nodes[0];
        let w = b.g.values[n.inputs[1].unwrap()].constant.as_ref().unwrap();
        let bias = b.g.values[n.inputs[2].unwrap()].constant.as_ref().unwrap();
        // s = [1, 1, 1]; B' = (0 - mean) * s + bias.
        assert_eq!(w.to_vec::<f32>().unwrap(), vec![1.0; 6]);
        assert_eq!(bias.to_vec::<f32>().unwrap(), vec![0.5, -1.0, -2.5]);
        assert_eq!(b.g.values[b.g.outputs[0]].name, name);
    }

    #[test]
    fn a_weight_other_nodes_read_is_not_copied_into_a_fold() {
        // Two Convs of one weight, each before a BatchNormalization: folding either would
        // copy the shared weight (a thousand such Convs, a thousand copies).
        let mut b = B::new();
        let x = b.input("x", &[1, 2, 4, 4]);
        let w = b.constant(Tensor::from_vec(vec![3, 2, 1, 1], vec![1.0f32; 6]).unwrap());
        for _ in 0..2 {
            let y = b.node(
                Op::Nn(nn::Op::Conv(Default::default())),
                &[x, w],
                f32_ty(&[1, 3, 4, 4]),
            );
            let z = bn(&mut b, y, &[1, 3, 4, 4]);
            b.output(z);
        }
        assert_eq!(
            run(&mut b.g, &Options::default(), &mut Work::default()).unwrap(),
            0
        );
        assert_eq!(b.count("BatchNormalization"), 2);
    }

    fn bn(b: &mut B, x: usize, dims: &[usize]) -> usize {
        let scale = b.vector(&[1.0, 2.0, 3.0]);
        let bias = b.vector(&[0.5, 0.0, -0.5]);
        let mean = b.vector(&[0.0, 1.0, 2.0]);
        let var = b.vector(&[1.0, 4.0, 9.0]);
        b.node(
            Op::Reduce(reduce::Op::BatchNormalization(BatchNormalization {
                epsilon: 0.0,
                momentum: 0.9,
                training_mode: false,
            })),
            &[x, scale, bias, mean, var],
            f32_ty(dims),
        )
    }

    #[test]
    fn folds_batch_norm_into_gemm_and_matmul() {
        // Gemm with trans_b: B is [N=3, K=2]; C = [1, 1, 1] with beta 2.
        let mut b = B::new();
        let x = b.input("x", &[4, 2]);
        let w = b.constant(Tensor::from_vec(vec![3, 2], vec![1.0f32; 6]).unwrap());
        let c = b.vector(&[1.0, 1.0, 1.0]);
        let gemm = nn::Gemm {
            beta: 2.0,
            trans_b: true,
            ..Default::default()
        };
        let y = b.node(Op::Nn(nn::Op::Gemm(gemm)), &[x, w, c], f32_ty(&[4, 3]));
        let z = bn(&mut b, y, &[4, 3]);
        b.output(z);
        assert_eq!(
            run(&mut b.g, &Options::default(), &mut Work::default()).unwrap(),
            1
        );
        assert_eq!(b.g.nodes.len(), 1);
        let n = &b.g.nodes[0];
        let Op::Nn(nn::Op::Gemm(g)) = &n.op else {
            panic!("{}", b.g)
        };
        assert_eq!(g.beta, 1.0);
        let c = b.g.values[n.inputs[2].unwrap()].constant.as_ref().unwrap();
        // s = [1, 1, 1]: C' = 2 · 1 - mean + bias.
        assert_eq!(c.to_vec::<f32>().unwrap(), vec![2.5, 1.0, -0.5]);

        let mut b = B::new();
        let x = b.input("x", &[4, 2]);
        let w = b.constant(Tensor::from_vec(vec![2, 3], vec![1.0f32; 6]).unwrap());
        let y = b.node(Op::Nn(nn::Op::MatMul(nn::MatMul)), &[x, w], f32_ty(&[4, 3]));
        let z = bn(&mut b, y, &[4, 3]);
        b.output(z);
        assert_eq!(
            run(&mut b.g, &Options::default(), &mut Work::default()).unwrap(),
            1
        );
        assert_eq!(b.count("MatMulBias"), 1);
        assert_eq!(b.g.nodes.len(), 1);
    }

    #[test]
    fn folds_per_channel_mul_and_add_into_conv() {
        use crate::passes::pattern::build::B as Builder;
        let mut b = Builder::new();
        let y = b.conv_1x1();
        let s = b.constant(Tensor::from_vec(vec![3, 1, 1], vec![1.0f32, 2.0, 3.0]).unwrap());
        let y = b.bin(BinaryKind::Mul, s, y, &[1, 3, 4, 4]);
        let t = b.constant(Tensor::from_vec(vec![1, 3, 1, 1], vec![0.5f32, 0.5, 0.5]).unwrap());
        let y = b.bin(BinaryKind::Add, y, t, &[1, 3, 4, 4]);
        // Not per channel: varies along the width.
        let u = b.constant(Tensor::from_vec(vec![4], vec![1.0f32; 4]).unwrap());
        let z = b.bin(BinaryKind::Mul, y, u, &[1, 3, 4, 4]);
        b.output(z);
        assert_eq!(
            run(&mut b.g, &Options::default(), &mut Work::default()).unwrap(),
            2
        );
        assert_eq!(b.g.nodes.len(), 2, "{}", b.g);
        let n = &b.g.nodes[0];
        let w = b.g.values[n.inputs[1].unwrap()].constant.as_ref().unwrap();
        let bias = b.g.values[n.inputs[2].unwrap()].constant.as_ref().unwrap();
        assert_eq!(
            w.to_vec::<f32>().unwrap(),
            vec![1.0, 1.0, 2.0, 2.0, 3.0, 3.0]
        );
        assert_eq!(bias.to_vec::<f32>().unwrap(), vec![0.5; 3]);
    }

    #[test]
    fn leaves_a_conv_with_another_reader() {
        let mut b = graph(true);
        assert_eq!(
            run(&mut b.g, &Options::default(), &mut Work::default()).unwrap(),
            0
        );
        assert_eq!(b.g.nodes.len(), 2);
    }
}
