//! MatMul + Add fusion: `Add(MatMul(A, B), bias)` (either operand order) becomes
//! `MatMulBias(A, B, bias)` when the product is read only by the Add and the bias is a
//! per-column vector: shape `[N]` or `[1, .., 1, N]` (rank at most the product's), `N` the
//! product's known last dim, and of the product's dtype. A and B may be any values.
//!
//! The same product written as a 2-D Gemm between Reshapes, `Reshape(Gemm(Reshape(X, [M, K]),
//! W, bias), dims(X)[..-1] ++ [N])` (plain Gemm: alpha 1, beta 1, no transposes; ONNX
//! Runtime's MatMulAddFusion writes it so, and exporters do too) becomes
//! `MatMulBias(X, W, bias)` (or `MatMul(X, W)` without a bias) when the inner values are read
//! only along the chain: the batched form the attention and activation fusions recognise.

use xnpu_core::Result;
use xnpu_ops::elementwise::BinaryKind;
use xnpu_ops::nn;

use super::pattern::{
    binary_of, is_last_dim_vector, rewrite_all, single_output, Arg, Rewrite, View,
};
use super::{Options, Work};
use crate::ir::{Graph, Op};

pub fn run(graph: &mut Graph, _options: &Options<'_>, work: &mut Work) -> Result<usize> {
    Ok(rewrite_all(graph, work, gemm_sandwich)? + rewrite_all(graph, work, matcher)?)
}

fn is_reshape(op: &Op) -> bool {
    matches!(op, Op::Tensor(xnpu_ops::tensor::Op::Reshape(_)))
}

/// `Reshape(Gemm(Reshape(X, [M, K]), W, bias?), [.., N])` back to a batched product of X.
fn gemm_sandwich(v: View<'_>, i: usize) -> Option<Rewrite> {
    let outer = &v.g.nodes[i];
    if !is_reshape(&outer.op) || !single_output(outer) {
        return None;
    }
    let y = outer.outputs[0]?;
    let g = outer.inputs.first().copied().flatten()?;
    if !v.private(g, 1) {
        return None;
    }
    let gemm = v.producer(g)?;
    let plain = match &gemm.op {
        Op::Nn(nn::Op::Gemm(p)) => {
            p.alpha == 1.0 && p.beta == 1.0 && !p.trans_a && !p.trans_b && single_output(gemm)
        }
        _ => false,
    };
    if !plain {
        return None;
    }
    let a = gemm.inputs.first().copied().flatten()?;
    let w = gemm.inputs.get(1).copied().flatten()?;
    let bias = gemm.inputs.get(2).copied().flatten();
    if !v.private(a, 1) {
        return None;
    }
    let inner = v.producer(a)?;
    if !is_reshape(&inner.op) {
        return None;
    }
    let x = inner.inputs.first().copied().flatten()?;
    let (xs, ys, ws) = (v.shape(x)?, v.shape(y)?, v.shape(w)?);
    let n = v.last_dim(g)?;
    // X is [.., K] and Y is X's dims with the last one N: the Reshapes only fold the batch.
    if xs.rank() < 2 || ys.rank() != xs.rank() || ws.rank() != 2 {
        return None;
    }
    let r = xs.rank();
    if xs.0[..r - 1] != ys.0[..r - 1] || xs.0[r - 1] != ws.0[0] || v.last_dim(y)? != n {
        return None;
    }
    let args = vec![Arg::Value(x), Arg::Value(w)];
    match bias {
        None => Some(Rewrite {
            at: i,
            op: Op::Nn(nn::Op::MatMul(nn::MatMul)),
            args,
            tag: "matmul",
        }),
        Some(b) => {
            if !is_last_dim_vector(v.shape(b)?, n, r) || v.dtype(b)? != v.dtype(g)? {
                return None;
            }
            let mut args = args;
            args.push(Arg::Value(b));
            Some(Rewrite {
                at: i,
                op: Op::Nn(nn::Op::MatMulBias(nn::MatMulBias { activation: None })),
                args,
                tag: "matmul_add",
            })
        }
    }
}

fn matcher(v: View<'_>, i: usize) -> Option<Rewrite> {
    let add = &v.g.nodes[i];
    let (a, b) = binary_of(add, BinaryKind::Add)?;
    [(a, b), (b, a)]
        .into_iter()
        .find_map(|(p, bias)| try_fuse(v, i, p, bias))
}

fn try_fuse(v: View<'_>, i: usize, p: usize, bias: usize) -> Option<Rewrite> {
    if !v.private(p, 1) {
        return None;
    }
    let mm = v.producer(p)?;
    if !matches!(mm.op, Op::Nn(nn::Op::MatMul(_))) || !single_output(mm) || mm.inputs.len() != 2 {
        return None;
    }
    let ps = v.shape(p)?;
    let n = v.last_dim(p)?;
    let bs = v.shape(bias)?;
    if !is_last_dim_vector(bs, n, ps.rank()) || v.dtype(bias)? != v.dtype(p)? {
        return None;
    }
    Some(Rewrite {
        at: i,
        op: Op::Nn(nn::Op::MatMulBias(nn::MatMulBias { activation: None })),
        args: vec![
            Arg::Value(mm.inputs[0]?),
            Arg::Value(mm.inputs[1]?),
            Arg::Value(bias),
        ],
        tag: "matmul_add",
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::passes::pattern::build::{f32_ty, B};
    use xnpu_core::Tensor;

    fn graph(bias_dims: &[usize], extra_reader: bool) -> B {
        let mut b = B::new();
        let x = b.input("x", &[2, 3, 4]);
        let w = b.constant(Tensor::from_vec(vec![4, 5], vec![1.0f32; 20]).unwrap());
        let p = b.node(
            Op::Nn(nn::Op::MatMul(nn::MatMul)),
            &[x, w],
            f32_ty(&[2, 3, 5]),
        );
        let n: usize = bias_dims.iter().product();
        let c = b.constant(Tensor::from_vec(bias_dims.to_vec(), vec![0.5f32; n]).unwrap());
        let y = b.bin(BinaryKind::Add, c, p, &[2, 3, 5]);
        b.output(y);
        if extra_reader {
            b.output(p);
        }
        b
    }

    #[test]
    fn fuses_matmul_and_bias() {
        for dims in [&[5][..], &[1, 5], &[1, 1, 5]] {
            let mut b = graph(dims, false);
            assert_eq!(
                run(&mut b.g, &Options::default(), &mut Work::default()).unwrap(),
                1,
                "{dims:?}"
            );
            assert_eq!(b.g.nodes.len(), 1);
            assert_eq!(b.count("MatMulBias"), 1);
        }
    }

    /// `Reshape(Gemm(Reshape(x [2, 3, 4] → [6, 4]), w [4, 5], c [5]) → [2, 3, 5])`.
    fn sandwich(gemm: nn::Gemm, shared_inner: bool) -> B {
        let mut b = B::new();
        let x = b.input("x", &[2, 3, 4]);
        let s1 = b.constant(Tensor::from_vec(vec![2], vec![6i64, 4]).unwrap());
        let a = b.node(
            Op::Tensor(xnpu_ops::tensor::Op::Reshape(Default::default())),
            &[x, s1],
            f32_ty(&[6, 4]),
        );
        let w = b.constant(Tensor::from_vec(vec![4, 5], vec![1.0f32; 20]).unwrap());
        let c = b.constant(Tensor::from_vec(vec![5], vec![0.5f32; 5]).unwrap());
        let g = b.node(Op::Nn(nn::Op::Gemm(gemm)), &[a, w, c], f32_ty(&[6, 5]));
        let s2 = b.constant(Tensor::from_vec(vec![3], vec![2i64, 3, 5]).unwrap());
        let y = b.node(
            Op::Tensor(xnpu_ops::tensor::Op::Reshape(Default::default())),
            &[g, s2],
            f32_ty(&[2, 3, 5]),
        );
        b.output(y);
        if shared_inner {
            b.output(a);
        }
        b
    }

    #[test]
    fn a_gemm_between_reshapes_becomes_a_batched_product() {
        let mut b = sandwich(nn::Gemm::default(), false);
        assert_eq!(
            run(&mut b.g, &Options::default(), &mut Work::default()).unwrap(),
            1
        );
        assert_eq!(b.count("MatMulBias"), 1);
        assert_eq!(b.count("Gemm"), 0);
        // Transposes, scales and shared intermediate values stay as they are.
        for gemm in [
            nn::Gemm {
                trans_b: true,
                ..Default::default()
            },
            nn::Gemm {
                alpha: 2.0,
                ..Default::default()
            },
        ] {
            let mut b = sandwich(gemm, false);
            assert_eq!(
                run(&mut b.g, &Options::default(), &mut Work::default()).unwrap(),
                0
            );
        }
        let mut b = sandwich(nn::Gemm::default(), true);
        assert_eq!(
            run(&mut b.g, &Options::default(), &mut Work::default()).unwrap(),
            0
        );
    }

    #[test]
    fn leaves_other_biases_and_shared_products() {
        for dims in [&[3, 5][..], &[1, 1, 1, 5], &[4]] {
            let mut b = graph(dims, false);
            assert_eq!(
                run(&mut b.g, &Options::default(), &mut Work::default()).unwrap(),
                0,
                "{dims:?}"
            );
        }
        let mut b = graph(&[5], true);
        assert_eq!(
            run(&mut b.g, &Options::default(), &mut Work::default()).unwrap(),
            0
        );
        assert_eq!(b.g.nodes.len(), 2);
    }
}
