//! Conv + BatchNormalization folding: a Conv with a constant weight (and constant or absent
//! bias) whose only reader is an inference-mode BatchNormalization with constant scale,
//! bias, mean and variance becomes one Conv with the normalization folded into new
//! constants: with `s = scale / sqrt(var + epsilon)` per output channel,
//! `W'[m] = W[m] * s[m]` and `B'[m] = (B[m] - mean[m]) * s[m] + bias[m]`.
//! Computed in f64, stored in the weight's dtype (f32 or f64).

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
    let Op::Nn(nn::Op::Conv(conv)) = &conv_node.op else {
        return None;
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
    let per_channel = |id: Option<usize>| -> Option<Vec<f64>> {
        let t: &Tensor = v.constant(id?)?;
        if t.dtype() != dtype || t.shape() != [m] {
            return None;
        }
        t.to_f64_vec().ok()
    };
    let conv_bias = match conv_node.inputs.get(2).copied().flatten() {
        Some(b) => per_channel(Some(b))?,
        None => vec![0.0; m],
    };
    let scale = per_channel(bn_node.inputs[1])?;
    let shift = per_channel(bn_node.inputs[2])?;
    let mean = per_channel(bn_node.inputs[3])?;
    let var = per_channel(bn_node.inputs[4])?;
    let eps = bn.epsilon as f64;
    let s: Vec<f64> = (0..m).map(|c| scale[c] / (var[c] + eps).sqrt()).collect();
    if s.iter().any(|x| !x.is_finite()) {
        return None;
    }
    let mut wd = w.to_f64_vec().ok()?;
    let per = wd.len() / m;
    for (k, x) in wd.iter_mut().enumerate() {
        *x *= s[k / per];
    }
    let bd: Vec<f64> = (0..m)
        .map(|c| (conv_bias[c] - mean[c]) * s[c] + shift[c])
        .collect();
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

    #[test]
    fn leaves_a_conv_with_another_reader() {
        let mut b = graph(true);
        assert_eq!(run(&mut b.g, &Options::default()).unwrap(), 0);
        assert_eq!(b.g.nodes.len(), 2);
    }
}
