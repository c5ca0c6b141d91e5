//! LayerNorm fusion: the decomposition PyTorch exports for `nn.LayerNorm` (before opset 17)
//!
//! ```text
//! mean = ReduceMean(x, axes=[-1], keepdims=1)
//! d = Sub(x, mean)
//! var = ReduceMean(Pow(d, 2), axes=[-1], keepdims=1)      (or Mul(d, d))
//! n = Div(d, Sqrt(Add(var, eps)))                         (or Mul(d, Reciprocal(Sqrt(..))))
//! y = Add(Mul(n, gamma), beta)                            (gamma and beta optional)
//! ```
//!
//! becomes `LayerNormalization(x, gamma, beta)` with axis -1 and the constant epsilon. A
//! missing gamma becomes a constant of ones; gamma and beta must be `[D]` or `[1, .., D]`
//! (D the known last dim of x) of x's dtype. Every intermediate must be read only inside
//! the pattern.

use xnpu_core::{DType, Result};
use xnpu_ops::elementwise::{BinaryKind, UnaryKind};
use xnpu_ops::reduce::{self, LayerNormalization};

use super::pattern::{
    binary_of, is_last_dim_vector, mean_over_last_axis, next_binary, rewrite_all, unary_of, Arg,
    Rewrite, View,
};
use super::{Options, Work};
use crate::ir::{Graph, Op};

pub fn run(graph: &mut Graph, _options: &Options<'_>, work: &mut Work) -> Result<usize> {
    rewrite_all(graph, work, matcher)
}

/// `Sqrt(Add(var, eps))` read only once, as `s`: (var, eps).
pub(crate) fn sqrt_var_eps(v: View<'_>, s: usize) -> Option<(usize, f64)> {
    if !v.private(s, 1) {
        return None;
    }
    let ve = unary_of(v.producer(s)?, UnaryKind::Sqrt)?;
    var_plus_eps(v, ve)
}

/// `Add(var, eps)` read only once, as `ve`: (var, eps).
pub(crate) fn var_plus_eps(v: View<'_>, ve: usize) -> Option<(usize, f64)> {
    if !v.private(ve, 1) {
        return None;
    }
    let (a, b) = binary_of(v.producer(ve)?, BinaryKind::Add)?;
    [(a, b), (b, a)].into_iter().find_map(|(var, e)| {
        let eps = v.scalar_for(e, var)?;
        (eps >= 0.0 && v.private(var, 1)).then_some((var, eps))
    })
}

/// `Pow(d, 2)` or `Mul(d, d)` read only once, as `sq`: (d, uses of d inside it).
pub(crate) fn square(v: View<'_>, sq: usize) -> Option<(usize, usize)> {
    if !v.private(sq, 1) {
        return None;
    }
    let n = v.producer(sq)?;
    if let Some((d, e)) = binary_of(n, BinaryKind::Pow) {
        return (v.scalar(e)? == 2.0).then_some((d, 1));
    }
    let (a, b) = binary_of(n, BinaryKind::Mul)?;
    (a == b).then_some((a, 2))
}

/// The normalisation step at node `i`: `Div(d, Sqrt(ve))` or `Mul(d, Reciprocal(Sqrt(ve)))`
/// (either order): (d, var, eps).
fn normalise(v: View<'_>, i: usize) -> Option<(usize, usize, f64)> {
    let n = &v.g.nodes[i];
    if let Some((d, s)) = binary_of(n, BinaryKind::Div) {
        let (var, eps) = sqrt_var_eps(v, s)?;
        return Some((d, var, eps));
    }
    let (a, b) = binary_of(n, BinaryKind::Mul)?;
    [(a, b), (b, a)].into_iter().find_map(|(d, r)| {
        if !v.private(r, 1) {
            return None;
        }
        let s = unary_of(v.producer(r)?, UnaryKind::Reciprocal)?;
        let (var, eps) = sqrt_var_eps(v, s)?;
        Some((d, var, eps))
    })
}

fn matcher(v: View<'_>, i: usize) -> Option<Rewrite> {
    let (d, var, eps) = normalise(v, i)?;
    let sq = mean_over_last_axis(v, v.producer(var)?)?;
    let (d2, uses) = square(v, sq)?;
    if d2 != d || !v.private(d, 1 + uses) {
        return None;
    }
    let (x, mean) = binary_of(v.producer(d)?, BinaryKind::Sub)?;
    if !v.private(mean, 1) || mean_over_last_axis(v, v.producer(mean)?)? != x {
        return None;
    }
    let dtype = v.dtype(x)?;
    let rank = v.shape(x)?.rank();
    let dim = v.last_dim(x)?;
    if !dtype.is_float() {
        return None;
    }
    let affine_ok = |p: usize| {
        v.dtype(p) == Some(dtype) && v.shape(p).is_some_and(|s| is_last_dim_vector(s, dim, rank))
    };
    // Extend over `· gamma` and `+ beta`.
    let mut at = i;
    let mut cur = super::pattern::out(&v.g.nodes[i])?;
    let mut gamma = None;
    let mut beta = None;
    if let Some((m, g)) = next_binary(v, cur, BinaryKind::Mul).filter(|&(_, g)| affine_ok(g)) {
        gamma = Some(g);
        at = m;
        cur = super::pattern::out(&v.g.nodes[m])?;
        if let Some((a, b)) = next_binary(v, cur, BinaryKind::Add).filter(|&(_, b)| affine_ok(b)) {
            beta = Some(b);
            at = a;
        }
    }
    let scale = match gamma {
        Some(g) => Arg::Value(g),
        None if matches!(dtype, DType::F32 | DType::F64) => Arg::Ones("scale", dtype, dim),
        None => return None,
    };
    Some(Rewrite {
        at,
        op: Op::Reduce(reduce::Op::LayerNormalization(LayerNormalization {
            axis: -1,
            epsilon: eps as f32,
            stash_type: DType::F32,
        })),
        args: vec![Arg::Value(x), scale, beta.map_or(Arg::Absent, Arg::Value)],
        tag: "layer_norm",
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::passes::pattern::build::{f32_ty, B};
    use xnpu_ops::reduce::{Reduce, ReduceKind};
    use BinaryKind::{Add, Div, Mul, Pow, Sub};

    const D: &[usize] = &[2, 3, 8];
    /// The decomposed LayerNorm; `affine`: 0 none, 1 gamma, 2 gamma and beta.
    fn graph(affine: usize, extra_reader: bool) -> B {
        let mut b = B::new();
        let x = b.input("x", D);
        let (y, var) = decomposed(&mut b, x, D, affine);
        b.output(y);
        if extra_reader {
            b.output(var);
        }
        b
    }

    /// The decomposed LayerNorm of `x` of shape `dims`: (its output, the variance).
    fn decomposed(b: &mut B, x: usize, dims: &[usize], affine: usize) -> (usize, usize) {
        let mut r = dims.to_vec();
        *r.last_mut().unwrap() = 1;
        let reduce = |b: &mut B, x: usize| {
            b.node(
                Op::Reduce(reduce::Op::Reduce(Reduce {
                    kind: ReduceKind::Mean,
                    axes: Some(vec![-1]),
                    keepdims: true,
                    noop_with_empty_axes: false,
                })),
                &[x],
                f32_ty(&r),
            )
        };
        let m = reduce(b, x);
        let d = b.bin(Sub, x, m, dims);
        let two = b.scalar(2.0);
        let sq = b.bin(Pow, d, two, dims);
        let var = reduce(b, sq);
        let eps = b.scalar(1e-5);
        let ve = b.bin(Add, var, eps, &r);
        let s = b.un(UnaryKind::Sqrt, ve, &r);
        let mut y = b.bin(Div, d, s, dims);
        if affine >= 1 {
            let g = b.vector(&[2.0; 8]);
            y = b.bin(Mul, y, g, dims);
        }
        if affine >= 2 {
            let be = b.vector(&[0.5; 8]);
            y = b.bin(Add, be, y, dims);
        }
        (y, var)
    }

    #[test]
    fn norms_without_a_scale_share_one_constant_of_ones() {
        let mut b = B::new();
        for name in ["x1", "x2", "x3"] {
            let x = b.input(name, D);
            let (y, _) = decomposed(&mut b, x, D, 0);
            b.output(y);
        }
        let mut work = Work::default();
        assert_eq!(run(&mut b.g, &Options::default(), &mut work).unwrap(), 3);
        let scales: Vec<_> = b.g.nodes.iter().map(|n| n.inputs[1]).collect();
        assert_eq!(scales, vec![scales[0]; 3]);
        let ones = b.g.values[scales[0].unwrap()].constant.as_ref().unwrap();
        assert_eq!(ones.to_vec::<f32>().unwrap(), vec![1.0; 8]);
    }

    #[test]
    fn a_scale_the_model_only_declares_is_not_made_past_its_limit() {
        // The last dim is declared, not held: 2^40 ones would be 4 TiB.
        let dims = [2, 1 << 40];
        let mut b = B::new();
        let x = b.input("x", &dims);
        let (y, _) = decomposed(&mut b, x, &dims, 0);
        b.output(y);
        let n = b.g.nodes.len();
        assert_eq!(
            run(&mut b.g, &Options::default(), &mut Work::default()).unwrap(),
            0
        );
        assert_eq!(b.g.nodes.len(), n);
    }

    #[test]
    fn norms_of_many_declared_widths_share_one_budget_of_ones() {
        // Two widths the model only declares: 12M ones (48 MiB) fit, 5M more (20 MiB) would
        // pass the 64 MiB that a sweep may make; a thousand such norms would otherwise
        // allocate a thousand times.
        let mut b = B::new();
        for (name, width) in [("x1", 12 << 20), ("x2", 5 << 20)] {
            let dims = [2, width];
            let x = b.input(name, &dims);
            let (y, _) = decomposed(&mut b, x, &dims, 0);
            b.output(y);
        }
        assert_eq!(
            run(&mut b.g, &Options::default(), &mut Work::default()).unwrap(),
            1
        );
        assert_eq!(b.count("LayerNormalization"), 1);
        let made: usize =
            b.g.values
                .iter()
                .filter_map(|v| v.constant.as_ref())
                .filter(|t| t.len() > 8)
                .map(|t| t.len())
                .sum();
        assert_eq!(made, 12 << 20);
    }

    #[test]
    fn fuses_layer_norm_with_and_without_affine() {
        for affine in 0..3 {
            let mut b = graph(affine, false);
            assert_eq!(
                run(&mut b.g, &Options::default(), &mut Work::default()).unwrap(),
                1
            );
            assert_eq!(b.g.nodes.len(), 1, "{}", b.g);
            assert_eq!(b.count("LayerNormalization"), 1);
            let n = &b.g.nodes[0];
            assert_eq!(n.inputs[2].is_some(), affine == 2);
        }
    }

    #[test]
    fn leaves_layer_norm_whose_variance_is_read_elsewhere() {
        let mut b = graph(2, true);
        let n = b.g.nodes.len();
        assert_eq!(
            run(&mut b.g, &Options::default(), &mut Work::default()).unwrap(),
            0
        );
        assert_eq!(b.g.nodes.len(), n);
    }
}
