//! MatMul + Add fusion: `Add(MatMul(A, B), bias)` (either operand order) becomes
//! `MatMulBias(A, B, bias)` when the product is read only by the Add and the bias is a
//! per-column vector: shape `[N]` or `[1, .., 1, N]` (rank at most the product's), `N` the
//! product's known last dim, and of the product's dtype. A and B may be any values.

use xnpu_core::Result;
use xnpu_ops::elementwise::BinaryKind;
use xnpu_ops::nn;

use super::pattern::{
    binary_of, is_last_dim_vector, rewrite_all, single_output, Arg, Rewrite, View,
};
use super::Options;
use crate::ir::{Graph, Op};

pub fn run(graph: &mut Graph, _options: &Options<'_>) -> Result<usize> {
    rewrite_all(graph, matcher)
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
            assert_eq!(run(&mut b.g, &Options::default()).unwrap(), 1, "{dims:?}");
            assert_eq!(b.g.nodes.len(), 1);
            assert_eq!(b.count("MatMulBias"), 1);
        }
    }

    #[test]
    fn leaves_other_biases_and_shared_products() {
        for dims in [&[3, 5][..], &[1, 1, 1, 5], &[4]] {
            let mut b = graph(dims, false);
            assert_eq!(run(&mut b.g, &Options::default()).unwrap(), 0, "{dims:?}");
        }
        let mut b = graph(&[5], true);
        assert_eq!(run(&mut b.g, &Options::default()).unwrap(), 0);
        assert_eq!(b.g.nodes.len(), 2);
    }
}
