//! Reductions and normalisations: Softmax and LogSoftmax, LayerNormalization, the Reduce
//! ops, ArgMax and ArgMin.

use proptest::prelude::*;
use xnpu::DType;

use crate::data::{dtype, i64s, shape, tensor, Vals, FLOATS, NUMERIC, UNIT};
use crate::problem::{Attr, Problem};

/// An axis of a rank-`r` tensor (`r >= 1`) from a raw draw, written negative when `neg`.
fn axis_of(raw: usize, neg: bool, r: usize) -> i64 {
    let a = (raw % r) as i64;
    if neg {
        a - r as i64
    } else {
        a
    }
}

/// Softmax and LogSoftmax along any axis, rank 1 to 5.
pub fn softmax() -> BoxedStrategy<Problem> {
    (
        prop::sample::select(&["Softmax", "LogSoftmax"][..]),
        dtype(FLOATS),
        shape(1..=5, true),
        (0usize..5, any::<bool>(), any::<bool>()),
        any::<u64>(),
    )
        .prop_map(|(op, d, s, (raw, neg, given), seed)| {
            let axis = axis_of(raw, neg, s.len());
            let n = s[axis.rem_euclid(s.len() as i64) as usize];
            let mut p = Problem::new(op).input(tensor(d, &s, seed, Vals::new(-4.0, 4.0)));
            // The default axis is -1.
            if given || axis != -1 {
                p = p.attr("axis", Attr::Int(axis));
            }
            p.accum(n)
        })
        .boxed()
}

/// LayerNormalization over the dims from `axis` on, with scale (constant or input) and
/// optional bias, three epsilons.
pub fn layer_norm() -> BoxedStrategy<Problem> {
    (
        dtype(FLOATS),
        shape(1..=4, false),
        (0usize..4, any::<bool>()),
        (prop::bool::weighted(0.7), 0u8..3),
        prop::sample::select(&[1e-5f32, 1e-3, 0.1][..]),
        any::<u64>(),
    )
        .prop_map(|(d, s, (raw, neg), (scale_const, bias_kind), eps, seed)| {
            let axis = axis_of(raw, neg, s.len());
            let from = axis.rem_euclid(s.len() as i64) as usize;
            let norm = &s[from..];
            // Coarse values: a row of near-equal values would amplify rounding.
            let x = tensor(d, &s, seed, Vals::new(-2.0, 2.0).step(0.125));
            let mut p = Problem::new("LayerNormalization")
                .input(x)
                .arg(tensor(d, norm, seed ^ 1, UNIT), scale_const);
            p = match bias_kind {
                0 => p,
                1 => p.constant(tensor(d, norm, seed ^ 2, UNIT)),
                _ => p.input(tensor(d, norm, seed ^ 2, UNIT)),
            };
            if axis != -1 {
                p = p.attr("axis", Attr::Int(axis));
            }
            if eps != 1e-5 {
                p = p.attr("epsilon", Attr::Float(eps));
            }
            p.accum(norm.iter().product())
        })
        .boxed()
}

/// Every Reduce op: axes as a constant input (a subset, negative or not, or none: all, or
/// nothing with noop_with_empty_axes), keepdims, rank 0 to 4, empty dims (the empty set's
/// identity: 0 for sums, 1 for products, -inf for LogSum and Max).
pub fn reduce() -> BoxedStrategy<Problem> {
    const OPS: &[&str] = &[
        "ReduceSum",
        "ReduceMean",
        "ReduceMax",
        "ReduceMin",
        "ReduceProd",
        "ReduceL1",
        "ReduceL2",
        "ReduceSumSquare",
        "ReduceLogSumExp",
        "ReduceLogSum",
    ];
    (
        prop::sample::select(OPS),
        dtype(NUMERIC),
        shape(0..=4, true),
        (any::<u8>(), any::<u8>(), any::<bool>()),
        (any::<bool>(), any::<bool>()),
        any::<u64>(),
    )
        .prop_map(|(op, d, s, (mask, negs, axes_given), (keep, noop), seed)| {
            let d = match (op, d) {
                (_, d) if d.is_float() => d,
                ("ReduceMax" | "ReduceMin", d) => d,
                (
                    "ReduceSum" | "ReduceProd" | "ReduceL1" | "ReduceSumSquare",
                    DType::I32 | DType::I64,
                ) => d,
                _ => DType::F32,
            };
            let r = s.len();
            let axes: Vec<i64> = (0..r)
                .filter(|&a| mask >> a & 1 == 1)
                .map(|a| {
                    if negs >> a & 1 == 1 {
                        a as i64 - r as i64
                    } else {
                        a as i64
                    }
                })
                .collect();
            let vals = match op {
                "ReduceProd" if d.is_float() => Vals::new(0.5, 1.5).step(1.0 / 16.0),
                "ReduceProd" => Vals::new(-2.0, 2.0),
                "ReduceLogSum" => Vals::new(0.0, 2.0).nonzero(),
                _ if d.is_float() => UNIT,
                _ => Vals::new(-100.0, 100.0),
            };
            let mut p = Problem::new(op).input(tensor(d, &s, seed, vals));
            let empty_axes = axes.is_empty() || !axes_given;
            if axes_given && !axes.is_empty() {
                p = p.constant(i64s(&axes));
            }
            if !keep {
                p = p.attr("keepdims", Attr::Int(0));
            }
            if empty_axes && noop {
                p = p.attr("noop_with_empty_axes", Attr::Int(1));
            }
            let reduced: usize = if empty_axes {
                if noop {
                    1
                } else {
                    s.iter().product()
                }
            } else {
                axes.iter()
                    .map(|&a| s[a.rem_euclid(r as i64) as usize])
                    .product()
            };
            p.accum(reduced)
        })
        .boxed()
}

/// ArgMax and ArgMin on values with many ties (select_last_index decides), keepdims.
pub fn arg_reduce() -> BoxedStrategy<Problem> {
    (
        prop::sample::select(&["ArgMax", "ArgMin"][..]),
        dtype(NUMERIC),
        shape(1..=4, false),
        (0usize..4, any::<bool>()),
        (any::<bool>(), any::<bool>()),
        any::<u64>(),
    )
        .prop_map(|(op, d, s, (raw, neg), (keep, last), seed)| {
            let axis = axis_of(raw, neg, s.len());
            let vals = Vals::new(-1.0, 1.0).step(0.5);
            let mut p = Problem::new(op).input(tensor(d, &s, seed, vals));
            if axis != 0 {
                p = p.attr("axis", Attr::Int(axis));
            }
            if !keep {
                p = p.attr("keepdims", Attr::Int(0));
            }
            if last {
                p = p.attr("select_last_index", Attr::Int(1));
            }
            p
        })
        .boxed()
}
