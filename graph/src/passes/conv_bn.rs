//! Conv + BatchNormalization folding: a Conv with a constant weight (and constant or absent
//! bias) whose only reader is an inference-mode BatchNormalization with constant scale,
//! bias, mean and variance becomes one Conv with the normalization folded into new
//! constants: with `s = scale / sqrt(var + epsilon)` per output channel,
//! `W'[m] = W[m] * s[m]` and `B'[m] = (B[m] - mean[m]) * s[m] + bias[m]`.
//! Computed in f64, stored in the weight's dtype (f32 or f64).
//!
//! The same for a 2-D product followed by BatchNormalization (BatchNorm1d after a Linear):
//! Gemm with a constant B and a constant or absent C of `[N]`, `[1, N]` or one element
//! becomes a Gemm with B's columns scaled and a new `[N]` C (beta 1); MatMul of a constant
//! `[K, N]` B with a 2-D result becomes MatMulBias with B's columns scaled.

use xnpu_core::{Result, Tensor};
use xnpu_ops::{nn, reduce};

use super::pattern::{float_tensor, out, rewrite_all, single_output, Arg, Rewrite, View};
use super::Options;
use crate::ir::{Graph, Op};

pub fn run(graph: &mut Graph, _options: &Options<'_>) -> Result<usize> {
    rewrite_all(graph, matcher)
}

fn matcher(v: View<'_>, i: usize) -> Option<Rewrite> {
    let bn_node = &v.g.nodes[i];
    let Op::Reduce(reduce::Op::BatchNormalization(bn)) = &bn_node.op else {
        return None;
    };
    if bn.training_mode || !single_output(bn_node) || bn_node.inputs.len() != 5 {
        return None;
    }
    let x = bn_node.inputs[0]?;
    if !v.private(x, 1) {
        return None;
    }
    let conv_node = v.producer(x)?;
    let conv = match &conv_node.op {
        Op::Nn(nn::Op::Conv(conv)) => conv,
        Op::Nn(nn::Op::Gemm(_) | nn::Op::MatMul(_)) => return product_bn(v, i),
        _ => return None,
    };
    if !single_output(conv_node) {
        return None;
    }
    let w = v.constant(conv_node.inputs.get(1).copied().flatten()?)?;
    let dtype = w.dtype();
    let m = *w.shape().first()?;
    if w.rank() < 3 || m == 0 {
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
    let (s, t) = bn_affine(v, i, m, dtype)?;
    let mut wd = w.to_f64_vec().ok()?;
    let per = wd.len() / m;
    for (k, x) in wd.iter_mut().enumerate() {
        *x *= s[k / per];
    }
    let bd: Vec<f64> = (0..m).map(|c| conv_bias[c] * s[c] + t[c]).collect();
    let new_w = float_tensor(dtype, w.shape().to_vec(), wd)?;
    let new_b = float_tensor(dtype, vec![m], bd)?;
    out(bn_node)?;
    Some(Rewrite {
        at: i,
        op: Op::Nn(nn::Op::Conv(conv.clone())),
        args: vec![
            Arg::Value(conv_node.inputs[0]?),
            Arg::Const("W", new_w),
            Arg::Const("B", new_b),
        ],
        tag: "conv_bn",
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
    let w = v.constant(p.inputs.get(1).copied().flatten()?)?;
    let dtype = w.dtype();
    if w.rank() != 2 {
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
            let cd = ct.to_f64_vec().ok()?;
            let per_col = ct.dtype() == dtype
                && (ct.len() == 1
                    || (ct.len() == n && ct.shape().last() == Some(&n) && ct.rank() <= 2));
            if !per_col {
                return None;
            }
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
        let x = b.input("x", &[1, 2, 4, 4]);
        let w = b.constant(Tensor::from_vec(vec![3, 2, 1, 1], vec![1.0f32; 6]).unwrap());
        let y = b.node(
            Op::Nn(nn::Op::Conv(Default::default())),
            &[x, w],
            f32_ty(&[1, 3, 4, 4]),
        );
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
        assert_eq!(run(&mut b.g, &Options::default()).unwrap(), 1);
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
        assert_eq!(run(&mut b.g, &Options::default()).unwrap(), 1);
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
        assert_eq!(run(&mut b.g, &Options::default()).unwrap(), 1);
        assert_eq!(b.count("MatMulBias"), 1);
        assert_eq!(b.g.nodes.len(), 1);
    }

    #[test]
    fn leaves_a_conv_with_another_reader() {
        let mut b = graph(true);
        assert_eq!(run(&mut b.g, &Options::default()).unwrap(), 0);
        assert_eq!(b.g.nodes.len(), 2);
    }
}
