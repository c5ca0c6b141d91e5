//! RMSNorm fusion: the decomposition of RMSNorm that HF Llama/Phi-style modules export
//!
//! ```text
//! [xf = Cast(x, to=f32)]
//! ms = ReduceMean(Pow(xf, 2), axes=[-1], keepdims=1)        (or Mul(xf, xf))
//! r = Reciprocal(Sqrt(Add(ms, eps)))                         (or Div(1, Sqrt(..)), Pow(.., -0.5))
//! n = Mul(xf, r)                                             (or Div(xf, Sqrt(Add(ms, eps))))
//! [n = Cast(n, to=dtype of x)]
//! y = Mul(gamma, n)                                          (gamma optional)
//! ```
//!
//! becomes `RMSNormalization(x, gamma)` with axis -1 and the constant epsilon. The leading
//! Cast is absorbed when it is read only inside the pattern and either does nothing or is
//! undone by the trailing Cast; a trailing Cast that does nothing is absorbed too. A
//! missing gamma becomes a constant of ones; gamma must be `[D]` or `[1, .., D]` of the
//! output's dtype.

use xnpu_core::{DType, Result};
use xnpu_ops::elementwise::{self as ew, BinaryKind, UnaryKind};
use xnpu_ops::reduce::{self, RmsNormalization};

use super::layer_norm::{sqrt_var_eps, square, var_plus_eps};
use super::pattern::{
    binary_of, is_last_dim_vector, mean_over_last_axis, near, next_binary, out, rewrite_all,
    single_output, unary_of, Arg, Rewrite, View,
};
use super::{Options, Work};
use crate::ir::{Graph, Op};

pub fn run(graph: &mut Graph, _options: &Options<'_>, work: &mut Work) -> Result<usize> {
    rewrite_all(graph, work, matcher)
}

/// `1 / sqrt(ve)` read only once as `r`: (ms, eps).
fn rsqrt(v: View<'_>, r: usize) -> Option<(usize, f64)> {
    if !v.private(r, 1) {
        return None;
    }
    let n = v.producer(r)?;
    if let Some(s) = unary_of(n, UnaryKind::Reciprocal) {
        return sqrt_var_eps(v, s);
    }
    if let Some((one, s)) = binary_of(n, BinaryKind::Div) {
        return if v.scalar(one)? == 1.0 {
            sqrt_var_eps(v, s)
        } else {
            None
        };
    }
    let (ve, e) = binary_of(n, BinaryKind::Pow)?;
    if !near(v.scalar(e)?, -0.5, 1e-6) {
        return None;
    }
    var_plus_eps(v, ve)
}

/// The normalisation at node `i`: (xf, ms, eps).
fn normalise(v: View<'_>, i: usize) -> Option<(usize, usize, f64)> {
    let n = &v.g.nodes[i];
    if let Some((xf, s)) = binary_of(n, BinaryKind::Div) {
        let (ms, eps) = sqrt_var_eps(v, s)?;
        return Some((xf, ms, eps));
    }
    let (a, b) = binary_of(n, BinaryKind::Mul)?;
    [(a, b), (b, a)].into_iter().find_map(|(xf, r)| {
        let (ms, eps) = rsqrt(v, r)?;
        Some((xf, ms, eps))
    })
}

/// When `val` is read only by a Cast: (that node, its target dtype).
fn next_cast(v: View<'_>, val: usize) -> Option<(usize, DType)> {
    if !v.private(val, 1) {
        return None;
    }
    let idx = v.reader_nodes(val).next()?;
    match &v.g.nodes[idx].op {
        Op::Elementwise(ew::Op::Cast(c)) if single_output(&v.g.nodes[idx]) => Some((idx, c.to)),
        _ => None,
    }
}

fn matcher(v: View<'_>, i: usize) -> Option<Rewrite> {
    let (xf, ms, eps) = normalise(v, i)?;
    let sq = mean_over_last_axis(v, v.producer(ms)?)?;
    let (xf2, uses) = square(v, sq)?;
    if xf2 != xf {
        return None;
    }
    let xf_dtype = v.dtype(xf)?;
    let rank = v.shape(xf)?.rank();
    let dim = v.last_dim(xf)?;
    if !xf_dtype.is_float() {
        return None;
    }
    // A leading Cast read only by the pattern.
    let lead = v.producer(xf).and_then(|n| match &n.op {
        Op::Elementwise(ew::Op::Cast(c)) if v.private(xf, 1 + uses) && single_output(n) => {
            let x0 = n.inputs.first().copied().flatten()?;
            Some((x0, v.dtype(x0)?, c.to))
        }
        _ => None,
    });
    let mut at = i;
    let mut cur = out(&v.g.nodes[i])?;
    let mut dtype = xf_dtype;
    let mut x = xf;
    match next_cast(v, cur) {
        Some((c, to)) => match lead {
            Some((x0, d0, _)) if to == d0 => {
                (x, dtype, at) = (x0, d0, c);
                cur = out(&v.g.nodes[c])?;
            }
            _ if to == xf_dtype => {
                at = c;
                cur = out(&v.g.nodes[c])?;
            }
            _ => {}
        },
        None => {
            if let Some((x0, d0, _)) = lead {
                if d0 == xf_dtype {
                    x = x0;
                }
            }
        }
    }
    let mut gamma = None;
    if let Some((m, g)) = next_binary(v, cur, BinaryKind::Mul) {
        if v.dtype(g) == Some(dtype) && v.shape(g).is_some_and(|s| is_last_dim_vector(s, dim, rank))
        {
            gamma = Some(g);
            at = m;
        }
    }
    let scale = match gamma {
        Some(g) => Arg::Value(g),
        None if matches!(dtype, DType::F32 | DType::F64) => Arg::Ones("scale", dtype, dim),
        None => return None,
    };
    Some(Rewrite {
        at,
        op: Op::Reduce(reduce::Op::RmsNormalization(RmsNormalization {
            axis: -1,
            epsilon: eps as f32,
            stash_type: DType::F32,
        })),
        args: vec![Arg::Value(x), scale],
        tag: "rms_norm",
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::passes::pattern::build::{f32_ty, B};
    use xnpu_ops::elementwise::Cast;
    use xnpu_ops::reduce::{Reduce, ReduceKind};
    use BinaryKind::{Add, Div, Mul, Pow};

    const D: &[usize] = &[2, 3, 8];
    const R: &[usize] = &[2, 3, 1];

    fn cast(b: &mut B, x: usize) -> usize {
        b.node(
            Op::Elementwise(ew::Op::Cast(Cast::to(DType::F32))),
            &[x],
            f32_ty(D),
        )
    }

    /// `form`: 0 Reciprocal(Sqrt), 1 Div(x, Sqrt), 2 Pow(-0.5); `casts`: no-op Casts around.
    fn graph(form: usize, casts: bool, gamma: bool, extra_reader: bool) -> B {
        let mut b = B::new();
        let x0 = b.input("x", D);
        let x = if casts { cast(&mut b, x0) } else { x0 };
        let two = b.scalar(2.0);
        let sq = b.bin(Pow, x, two, D);
        let ms = b.node(
            Op::Reduce(reduce::Op::Reduce(Reduce {
                kind: ReduceKind::Mean,
                axes: Some(vec![-1]),
                keepdims: true,
                noop_with_empty_axes: false,
            })),
            &[sq],
            f32_ty(R),
        );
        let eps = b.scalar(1e-6);
        let ve = b.bin(Add, ms, eps, R);
        let mut y = match form {
            0 => {
                let s = b.un(UnaryKind::Sqrt, ve, R);
                let r = b.un(UnaryKind::Reciprocal, s, R);
                b.bin(Mul, x, r, D)
            }
            1 => {
                let s = b.un(UnaryKind::Sqrt, ve, R);
                b.bin(Div, x, s, D)
            }
            _ => {
                let h = b.scalar(-0.5);
                let r = b.bin(Pow, ve, h, R);
                b.bin(Mul, r, x, D)
            }
        };
        if casts {
            y = cast(&mut b, y);
        }
        if gamma {
            let g = b.vector(&[2.0; 8]);
            y = b.bin(Mul, g, y, D);
        }
        b.output(y);
        if extra_reader {
            b.output(ms);
        }
        b
    }

    #[test]
    fn fuses_rms_norm_forms() {
        for form in 0..3 {
            for casts in [false, true] {
                for gamma in [false, true] {
                    let mut b = graph(form, casts, gamma, false);
                    assert_eq!(
                        run(&mut b.g, &Options::default(), &mut Work::default()).unwrap(),
                        1
                    );
                    assert_eq!(b.g.nodes.len(), 1, "{form} {casts} {gamma}: {}", b.g);
                    assert_eq!(b.count("RMSNormalization"), 1);
                    assert_eq!(b.g.inputs[0], b.g.nodes[0].inputs[0].unwrap());
                }
            }
        }
    }

    #[test]
    fn leaves_rms_norm_whose_mean_is_read_elsewhere() {
        let mut b = graph(0, false, true, true);
        let n = b.g.nodes.len();
        assert_eq!(
            run(&mut b.g, &Options::default(), &mut Work::default()).unwrap(),
            0
        );
        assert_eq!(b.g.nodes.len(), n);
    }
}
