//! Activation fusion: an activation whose input is read only by it and produced by Conv,
//! Gemm or a MatMulBias without activation is folded into that node: Conv → FusedConv,
//! Gemm → FusedGemm, MatMulBias → MatMulBias with the activation.
//!
//! Activations: every element-wise activation op (Relu, LeakyRelu, Sigmoid, HardSigmoid,
//! Elu, Gelu, ...), Tanh, and Clip whose bounds are attributes or one-element constants.

use xnpu_core::Result;
use xnpu_ops::elementwise::{self as ew, UnaryKind};
use xnpu_ops::nn::{self, FusedActivation};

use super::pattern::{rewrite_all, single_output, unary_of, Arg, Rewrite, View};
use super::{Options, Work};
use crate::ir::{Graph, Node, Op};

pub fn run(graph: &mut Graph, _options: &Options<'_>, work: &mut Work) -> Result<usize> {
    rewrite_all(graph, work, matcher)
}

/// The activation a node computes, and its data input.
fn activation(v: View<'_>, n: &Node) -> Option<(FusedActivation, usize)> {
    if !single_output(n) {
        return None;
    }
    if let Some(x) = unary_of(n, UnaryKind::Tanh) {
        return Some((FusedActivation::Tanh, x));
    }
    let x = n.inputs.first().copied().flatten()?;
    match &n.op {
        Op::Elementwise(ew::Op::Activation(a)) => Some((FusedActivation::Activation(a.kind), x)),
        Op::Elementwise(ew::Op::Clip(c)) => {
            let bound = |slot: usize, attr: Option<f32>| -> Option<Option<f32>> {
                match n.inputs.get(slot).copied().flatten() {
                    Some(b) => Some(Some(v.scalar(b)? as f32)),
                    None => Some(attr),
                }
            };
            let min = bound(1, c.min)?;
            let max = bound(2, c.max)?;
            if min.is_none() && max.is_none() {
                return None;
            }
            Some((
                FusedActivation::Clip {
                    min: min.unwrap_or(f32::NEG_INFINITY),
                    max: max.unwrap_or(f32::INFINITY),
                },
                x,
            ))
        }
        _ => None,
    }
}

fn matcher(v: View<'_>, i: usize) -> Option<Rewrite> {
    let (act, x) = activation(v, &v.g.nodes[i])?;
    if !v.private(x, 1) || !v.dtype(x)?.is_float() {
        return None;
    }
    let p = v.producer(x)?;
    if !single_output(p) {
        return None;
    }
    let op = match &p.op {
        Op::Nn(nn::Op::Conv(conv)) => nn::Op::FusedConv(nn::FusedConv {
            conv: conv.clone(),
            activation: act,
        }),
        Op::Nn(nn::Op::Gemm(gemm)) => nn::Op::FusedGemm(nn::FusedGemm {
            gemm: gemm.clone(),
            activation: act,
        }),
        Op::Nn(nn::Op::MatMulBias(nn::MatMulBias { activation: None })) => {
            nn::Op::MatMulBias(nn::MatMulBias {
                activation: Some(act),
            })
        }
        _ => return None,
    };
    let args = p
        .inputs
        .iter()
        .map(|a| a.map_or(Arg::Absent, Arg::Value))
        .collect();
    Some(Rewrite {
        at: i,
        op: Op::Nn(op),
        args,
        tag: "act",
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::passes::pattern::build::{f32_ty, B};
    use xnpu_core::Tensor;
    use xnpu_ops::elementwise::{Activation, ActivationKind, Clip};

    fn conv_then(act: impl Fn(&mut B, usize) -> usize, extra_reader: bool) -> B {
        let mut b = B::new();
        let y = b.conv_1x1();
        let z = act(&mut b, y);
        b.output(z);
        if extra_reader {
            b.output(y);
        }
        b
    }

    fn relu(b: &mut B, y: usize) -> usize {
        b.node(
            Op::Elementwise(ew::Op::Activation(Activation {
                kind: ActivationKind::Relu,
            })),
            &[y],
            f32_ty(&[1, 3, 4, 4]),
        )
    }

    #[test]
    fn fuses_relu_tanh_and_clip_into_conv() {
        let mut b = conv_then(relu, false);
        assert_eq!(
            run(&mut b.g, &Options::default(), &mut Work::default()).unwrap(),
            1
        );
        assert_eq!(b.g.nodes.len(), 1);
        assert_eq!(b.count("FusedConv"), 1);

        let mut b = conv_then(|b, y| b.un(UnaryKind::Tanh, y, &[1, 3, 4, 4]), false);
        assert_eq!(
            run(&mut b.g, &Options::default(), &mut Work::default()).unwrap(),
            1
        );
        assert_eq!(b.count("FusedConv"), 1);

        let mut b = conv_then(
            |b, y| {
                let lo = b.scalar(0.0);
                let hi = b.scalar(6.0);
                b.node(
                    Op::Elementwise(ew::Op::Clip(Clip::default())),
                    &[y, lo, hi],
                    f32_ty(&[1, 3, 4, 4]),
                )
            },
            false,
        );
        assert_eq!(
            run(&mut b.g, &Options::default(), &mut Work::default()).unwrap(),
            1
        );
        let Op::Nn(nn::Op::FusedConv(f)) = &b.g.nodes[0].op else {
            panic!("not fused: {}", b.g);
        };
        assert_eq!(f.activation, FusedActivation::Clip { min: 0.0, max: 6.0 });
    }

    #[test]
    fn leaves_a_conv_with_another_reader() {
        let mut b = conv_then(relu, true);
        assert_eq!(
            run(&mut b.g, &Options::default(), &mut Work::default()).unwrap(),
            0
        );
        assert_eq!(b.g.nodes.len(), 2);
    }

    #[test]
    fn fuses_into_matmul_bias_once() {
        let mut b = B::new();
        let x = b.input("x", &[2, 4]);
        let w = b.constant(Tensor::from_vec(vec![4, 3], vec![1.0f32; 12]).unwrap());
        let c = b.vector(&[1.0, 2.0, 3.0]);
        let y = b.node(
            Op::Nn(nn::Op::MatMulBias(nn::MatMulBias { activation: None })),
            &[x, w, c],
            f32_ty(&[2, 3]),
        );
        let z = relu(&mut b, y);
        let z2 = relu(&mut b, z);
        b.output(z2);
        assert_eq!(
            run(&mut b.g, &Options::default(), &mut Work::default()).unwrap(),
            1
        );
        assert_eq!(b.g.nodes.len(), 2);
        assert_eq!(b.count("MatMulBias"), 1);
        assert_eq!(b.count("Relu"), 1);
    }
}
