//! GELU fusion: the element-wise decompositions of GELU that PyTorch exports become one
//! `Gelu` activation.
//!
//! * erf form: `x · (1 + erf(x / √2)) · 0.5`, with `x / √2` as `Div(x, 1.4142135)` or
//!   `Mul(x, 0.70710677)` → `Gelu { tanh: false }`;
//! * tanh form: `x · (1 + tanh(√(2/π) · (x + 0.044715 · x³))) · 0.5`, with `x³` as
//!   `Pow(x, 3)` or `x · x · x` → `Gelu { tanh: true }`.
//!
//! The three factors `x`, `0.5` and `(1 + …)` may be multiplied in any order and grouping
//! (two Mul nodes), and every commutative op may have its operands either way round. Every
//! intermediate must be read only inside the pattern; constants must be one-element and of
//! x's dtype.

use xnpu_core::Result;
use xnpu_ops::elementwise::{self as ew, Activation, ActivationKind, BinaryKind, UnaryKind};

use super::pattern::{binary_of, near, other, rewrite_all, unary_of, Arg, Rewrite, View};
use super::{Options, Work};
use crate::ir::{Graph, Op};

const TOL: f64 = 1e-4;

pub fn run(graph: &mut Graph, _options: &Options<'_>, work: &mut Work) -> Result<usize> {
    rewrite_all(graph, work, matcher)
}

/// `(a, b)` of a private binary node of `kind` producing `v`.
fn private_binary(v: View<'_>, id: usize, kind: BinaryKind) -> Option<(usize, usize)> {
    if !v.private(id, 1) {
        return None;
    }
    binary_of(v.producer(id)?, kind)
}

/// For `{a, b}` = `{c, y}` with `c` a scalar near `want`: `y`.
fn with_const(v: View<'_>, a: usize, b: usize, want: f64, x: Option<usize>) -> Option<usize> {
    [(a, b), (b, a)].into_iter().find_map(|(c, y)| {
        let val = v.scalar_for(c, x.unwrap_or(y))?;
        near(val, want, TOL).then_some(y)
    })
}

/// `1 + erf(x / √2)`: x.
fn erf_term(v: View<'_>, term: usize) -> Option<usize> {
    let (a, b) = private_binary(v, term, BinaryKind::Add)?;
    let e = with_const(v, a, b, 1.0, None)?;
    if !v.private(e, 1) {
        return None;
    }
    let d = unary_of(v.producer(e)?, UnaryKind::Erf)?;
    if !v.private(d, 1) {
        return None;
    }
    let dn = v.producer(d)?;
    if let Some((x, c)) = binary_of(dn, BinaryKind::Div) {
        let s = v.scalar_for(c, x)?;
        return near(s, std::f64::consts::SQRT_2, TOL).then_some(x);
    }
    let (a, b) = binary_of(dn, BinaryKind::Mul)?;
    with_const(v, a, b, std::f64::consts::FRAC_1_SQRT_2, None)
}

/// `x³` as `Pow(x, 3)`, `(x · x) · x` or `x · (x · x)`: x.
fn cube(v: View<'_>, c: usize) -> Option<usize> {
    if !v.private(c, 1) {
        return None;
    }
    let n = v.producer(c)?;
    if let Some((x, e)) = binary_of(n, BinaryKind::Pow) {
        return (v.scalar(e)? == 3.0).then_some(x);
    }
    let (a, b) = binary_of(n, BinaryKind::Mul)?;
    [(a, b), (b, a)].into_iter().find_map(|(x, sq)| {
        let (p, q) = private_binary(v, sq, BinaryKind::Mul)?;
        (p == x && q == x).then_some(x)
    })
}

/// `1 + tanh(√(2/π) · (x + 0.044715 · x³))`: x.
fn tanh_term(v: View<'_>, term: usize) -> Option<usize> {
    let (a, b) = private_binary(v, term, BinaryKind::Add)?;
    let t = with_const(v, a, b, 1.0, None)?;
    if !v.private(t, 1) {
        return None;
    }
    let m = unary_of(v.producer(t)?, UnaryKind::Tanh)?;
    let (a, b) = private_binary(v, m, BinaryKind::Mul)?;
    let inner = with_const(v, a, b, (2.0 / std::f64::consts::PI).sqrt(), None)?;
    let (a, b) = private_binary(v, inner, BinaryKind::Add)?;
    [(a, b), (b, a)].into_iter().find_map(|(x, k)| {
        let (p, q) = private_binary(v, k, BinaryKind::Mul)?;
        let c3 = with_const(v, p, q, 0.044715, Some(x))?;
        (cube(v, c3)? == x).then_some(x)
    })
}

fn matcher(v: View<'_>, i: usize) -> Option<Rewrite> {
    let root = &v.g.nodes[i];
    let (a, b) = binary_of(root, BinaryKind::Mul)?;
    // The three factors: each operand of the root, or the operands of a private Mul.
    let mut leaves = Vec::with_capacity(4);
    for o in [a, b] {
        match private_binary(v, o, BinaryKind::Mul) {
            Some((p, q)) => leaves.extend([p, q]),
            None => leaves.push(o),
        }
    }
    if leaves.len() != 3 {
        return None;
    }
    for (k, &term) in leaves.iter().enumerate() {
        let (x, tanh) = match erf_term(v, term) {
            Some(x) => (x, false),
            None => match tanh_term(v, term) {
                Some(x) => (x, true),
                None => continue,
            },
        };
        let rest: Vec<usize> = (0..3).filter(|&j| j != k).map(|j| leaves[j]).collect();
        let half = other(rest[0], rest[1], x)?;
        if !near(v.scalar_for(half, x)?, 0.5, TOL) || !v.dtype(x)?.is_float() {
            return None;
        }
        return Some(Rewrite {
            at: i,
            op: Op::Elementwise(ew::Op::Activation(Activation {
                kind: ActivationKind::Gelu { tanh },
            })),
            args: vec![Arg::Value(x)],
            tag: "gelu",
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::passes::pattern::build::B;
    use BinaryKind::{Add, Div, Mul, Pow};

    const D: &[usize] = &[2, 8];

    /// `x/√2 → erf → +1 → ·x → ·0.5`, or with the 0.5 first (`(x·0.5)·(1+erf)`).
    fn erf_graph(half_first: bool, extra_reader: bool) -> B {
        let mut b = B::new();
        let x = b.input("x", D);
        let s2 = b.scalar(std::f32::consts::SQRT_2);
        let d = b.bin(Div, x, s2, D);
        let e = b.un(UnaryKind::Erf, d, D);
        let one = b.scalar(1.0);
        let t = b.bin(Add, one, e, D);
        let h = b.scalar(0.5);
        let y = if half_first {
            let xh = b.bin(Mul, x, h, D);
            b.bin(Mul, xh, t, D)
        } else {
            let xt = b.bin(Mul, t, x, D);
            b.bin(Mul, xt, h, D)
        };
        b.output(y);
        if extra_reader {
            b.output(e);
        }
        b
    }

    fn tanh_graph(pow: bool) -> B {
        let mut b = B::new();
        let x = b.input("x", D);
        let x3 = if pow {
            let three = b.scalar(3.0);
            b.bin(Pow, x, three, D)
        } else {
            let xx = b.bin(Mul, x, x, D);
            b.bin(Mul, xx, x, D)
        };
        let c = b.scalar(0.044715);
        let k = b.bin(Mul, c, x3, D);
        let inner = b.bin(Add, x, k, D);
        let s = b.scalar(0.797_884_6);
        let m = b.bin(Mul, inner, s, D);
        let t = b.un(UnaryKind::Tanh, m, D);
        let one = b.scalar(1.0);
        let term = b.bin(Add, t, one, D);
        let h = b.scalar(0.5);
        let xh = b.bin(Mul, h, x, D);
        let y = b.bin(Mul, xh, term, D);
        b.output(y);
        b
    }

    fn gelu_kind(b: &B) -> Option<ActivationKind> {
        b.g.nodes.iter().find_map(|n| match &n.op {
            Op::Elementwise(ew::Op::Activation(a)) => Some(a.kind),
            _ => None,
        })
    }

    #[test]
    fn fuses_erf_gelu_both_orders() {
        for half_first in [false, true] {
            let mut b = erf_graph(half_first, false);
            assert_eq!(
                run(&mut b.g, &Options::default(), &mut Work::default()).unwrap(),
                1
            );
            assert_eq!(b.g.nodes.len(), 1, "{}", b.g);
            assert_eq!(gelu_kind(&b), Some(ActivationKind::Gelu { tanh: false }));
        }
    }

    #[test]
    fn fuses_tanh_gelu_with_pow_and_products() {
        for pow in [true, false] {
            let mut b = tanh_graph(pow);
            assert_eq!(
                run(&mut b.g, &Options::default(), &mut Work::default()).unwrap(),
                1
            );
            assert_eq!(b.g.nodes.len(), 1, "{}", b.g);
            assert_eq!(gelu_kind(&b), Some(ActivationKind::Gelu { tanh: true }));
        }
    }

    #[test]
    fn fuses_erf_gelu_with_mul_by_reciprocal_and_sum() {
        use xnpu_ops::elementwise::{Variadic, VariadicKind};
        let mut b = B::new();
        let x = b.input("x", D);
        let r = b.scalar(std::f32::consts::FRAC_1_SQRT_2);
        let d = b.bin(Mul, r, x, D);
        let e = b.un(UnaryKind::Erf, d, D);
        let one = b.scalar(1.0);
        let t = b.node(
            Op::Elementwise(ew::Op::Variadic(Variadic {
                kind: VariadicKind::Sum,
            })),
            &[one, e],
            crate::passes::pattern::build::f32_ty(D),
        );
        let h = b.scalar(0.5);
        let ht = b.bin(Mul, h, t, D);
        let y = b.bin(Mul, x, ht, D);
        b.output(y);
        assert_eq!(
            run(&mut b.g, &Options::default(), &mut Work::default()).unwrap(),
            1
        );
        assert_eq!(b.g.nodes.len(), 1, "{}", b.g);
        assert_eq!(gelu_kind(&b), Some(ActivationKind::Gelu { tanh: false }));
    }

    #[test]
    fn leaves_gelu_whose_intermediate_is_read_elsewhere() {
        let mut b = erf_graph(false, true);
        let n = b.g.nodes.len();
        assert_eq!(
            run(&mut b.g, &Options::default(), &mut Work::default()).unwrap(),
            0
        );
        assert_eq!(b.g.nodes.len(), n);
    }
}
