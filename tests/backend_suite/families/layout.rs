//! Data movement, every dtype (bool included): Transpose, Reshape, Flatten, Concat, Slice,
//! Gather, Split, Squeeze, Unsqueeze, Expand, Pad.

use proptest::prelude::*;
use xnpu::DType;

use crate::data::{
    broadcast_from, dim, dtype, i64s, leading_drop, permutation, scalar, shape, tensor, Rng, ANY,
    UNIT,
};
use crate::problem::{Attr, Problem};

fn vals() -> crate::data::Vals {
    // Integers take -2..=2 of it; u8 0..=2, bool 0 or 1.
    UNIT
}

/// Transpose with a permutation (or none: reversed), rank 0 to 5, empty dims.
pub fn transpose() -> BoxedStrategy<Problem> {
    (dtype(ANY), shape(0..=5, true), any::<bool>(), any::<u64>())
        .prop_map(|(d, s, given, seed)| {
            let mut p = Problem::new("Transpose").input(tensor(d, &s, seed, vals()));
            if given {
                let perm = permutation(s.len(), seed);
                p = p.attr("perm", Attr::Ints(perm.iter().map(|&x| x as i64).collect()));
            }
            p
        })
        .boxed()
}

/// Reshape to a regrouping of the input's dims, with -1 for one dim and 0 (copy) where the
/// input has the same dim at that place.
pub fn reshape() -> BoxedStrategy<Problem> {
    (
        dtype(ANY),
        shape(0..=4, false),
        any::<u64>(),
        (any::<u8>(), any::<u8>(), any::<u8>()),
        any::<bool>(),
    )
        .prop_map(|(d, s, seed, (merge, ones, zeros), minus_one)| {
            // Permute the dims, merge neighbours, add 1s: the same element count.
            let perm = permutation(s.len(), seed);
            let mut target: Vec<usize> = Vec::new();
            for (i, &k) in perm.iter().enumerate() {
                match target.last_mut() {
                    Some(last) if merge >> i & 1 == 1 => *last *= s[k],
                    _ => target.push(s[k]),
                }
                if ones >> i & 1 == 1 && target.len() < 5 {
                    target.push(1);
                }
            }
            let mut spec: Vec<i64> = target.iter().map(|&x| x as i64).collect();
            for (i, v) in spec.iter_mut().enumerate() {
                if zeros >> i & 1 == 1 && s.get(i) == Some(&(*v as usize)) {
                    *v = 0;
                }
            }
            if minus_one {
                if let Some(i) = spec.iter().position(|&v| v > 0) {
                    spec[i] = -1;
                }
            }
            Problem::new("Reshape")
                .input(tensor(d, &s, seed, vals()))
                .constant(i64s(&spec))
        })
        .boxed()
}

/// Flatten at any axis in [-r, r].
pub fn flatten() -> BoxedStrategy<Problem> {
    (
        dtype(ANY),
        shape(1..=4, true),
        0usize..=4,
        any::<bool>(),
        any::<u64>(),
    )
        .prop_map(|(d, s, raw, neg, seed)| {
            let r = s.len();
            let a = (raw % (r + 1)) as i64;
            let axis = if neg && a > 0 { a - r as i64 } else { a };
            let mut p = Problem::new("Flatten").input(tensor(d, &s, seed, vals()));
            if axis != 1 {
                p = p.attr("axis", Attr::Int(axis));
            }
            p
        })
        .boxed()
}

/// Concat of 1 to 4 inputs along any axis; an input may be empty along it.
pub fn concat() -> BoxedStrategy<Problem> {
    (
        dtype(ANY),
        shape(1..=4, false),
        prop::collection::vec(
            prop_oneof![4 => 1usize..=3, 1 => Just(0usize), 1 => Just(5usize)],
            1..=4,
        ),
        (0usize..4, any::<bool>()),
        (any::<u8>(), any::<u64>()),
    )
        .prop_map(|(d, s, sizes, (raw, neg), (consts, seed))| {
            let r = s.len();
            let a = raw % r;
            let axis = if neg { a as i64 - r as i64 } else { a as i64 };
            let mut p = Problem::new("Concat").attr("axis", Attr::Int(axis));
            for (k, &n) in sizes.iter().enumerate() {
                let mut sk = s.clone();
                sk[a] = n;
                let t = tensor(d, &sk, seed.wrapping_add(k as u64), vals());
                p = p.arg(t, k > 0 && consts >> k & 1 == 1);
            }
            p
        })
        .boxed()
}

/// Slice with starts and ends anywhere (negative, past either end, i64 extremes), steps of
/// either sign, axes given in any order or not at all, steps given or not.
pub fn slice() -> BoxedStrategy<Problem> {
    (
        dtype(ANY),
        shape(1..=4, true),
        prop::collection::vec(
            (any::<u16>(), any::<u16>(), 0usize..5, any::<bool>()),
            1..=4,
        ),
        (any::<bool>(), any::<bool>()),
        any::<u64>(),
    )
        .prop_map(|(d, s, specs, (axes_given, steps_given), seed)| {
            let r = s.len();
            let order = permutation(r, seed);
            let n = specs.len().min(r);
            let axes_given = axes_given || n < r;
            let (mut starts, mut ends, mut axes, mut steps) = (vec![], vec![], vec![], vec![]);
            for (i, &(st, en, step_raw, neg_axis)) in specs.iter().take(n).enumerate() {
                let a = if axes_given { order[i] } else { i };
                let dn = s[a] as i64;
                // A position: in range, negative, past the end, or an extreme.
                let pos = |raw: u16| -> i64 {
                    match raw % 8 {
                        0 => i64::MAX,
                        1 => i64::MIN,
                        2 => -(raw as i64 / 8 % (dn + 3)) - 1,
                        3 => dn + (raw as i64 / 8 % 3),
                        _ => raw as i64 / 8 % (dn + 1),
                    }
                };
                const STEPS: [i64; 5] = [1, 2, -1, 3, -2];
                let step = if steps_given { STEPS[step_raw] } else { 1 };
                starts.push(pos(st));
                ends.push(pos(en));
                axes.push(if neg_axis {
                    a as i64 - r as i64
                } else {
                    a as i64
                });
                steps.push(step);
            }
            let mut p = Problem::new("Slice")
                .input(tensor(d, &s, seed, vals()))
                .constant(i64s(&starts))
                .constant(i64s(&ends));
            if axes_given || steps_given {
                p = p.constant(i64s(&axes));
            }
            if steps_given {
                p = p.constant(i64s(&steps));
            }
            p
        })
        .boxed()
}

/// Gather along any axis with indices of rank 0 to 2 (negative ones included), i64 or i32,
/// constant or not.
pub fn gather() -> BoxedStrategy<Problem> {
    (
        dtype(ANY),
        shape(1..=4, false),
        (0usize..4, any::<bool>()),
        shape(0..=2, true),
        (any::<bool>(), prop::bool::weighted(0.5)),
        any::<u64>(),
    )
        .prop_map(|(d, s, (raw, neg), ishape, (i32_idx, consts), seed)| {
            let r = s.len();
            let a = raw % r;
            let dn = s[a] as i64;
            let mut rng = Rng::new(seed ^ 7);
            let n: usize = ishape.iter().product();
            let idx: Vec<f64> = (0..n).map(|_| rng.int(-dn, dn - 1) as f64).collect();
            let it = if i32_idx { DType::I32 } else { DType::I64 };
            let indices = crate::data::from_f64(it, &ishape, &idx);
            let mut p = Problem::new("Gather")
                .input(tensor(d, &s, seed, vals()))
                .arg(indices, consts);
            if a != 0 || neg {
                p = p.attr(
                    "axis",
                    Attr::Int(if neg { a as i64 - r as i64 } else { a as i64 }),
                );
            }
            p
        })
        .boxed()
}

/// Split by sizes (an input, zeros allowed) or by num_outputs (the last part smaller).
pub fn split() -> BoxedStrategy<Problem> {
    (
        dtype(ANY),
        shape(1..=4, false),
        (0usize..4, any::<bool>()),
        prop::collection::vec(0usize..=3, 1..=4),
        any::<bool>(),
        any::<u64>(),
    )
        .prop_map(|(d, mut s, (raw, neg), parts, by_count, seed)| {
            let r = s.len();
            let a = raw % r;
            let mut p;
            if by_count {
                // n parts of ceil(d / n), the last smaller but not empty: some n do not
                // exist for a d (5 in 4 parts); take the largest that does.
                let len = s[a];
                let n = (1..=parts.len().min(len))
                    .rev()
                    .find(|&n| len.div_ceil(n) * (n - 1) < len)
                    .unwrap_or(1);
                p = Problem::new("Split").attr("num_outputs", Attr::Int(n as i64));
                p = p.input(tensor(d, &s, seed, vals())).outputs(n);
            } else {
                // The split sizes decide the dim.
                s[a] = parts.iter().sum();
                let sizes: Vec<i64> = parts.iter().map(|&x| x as i64).collect();
                p = Problem::new("Split")
                    .input(tensor(d, &s, seed, vals()))
                    .constant(i64s(&sizes))
                    .outputs(parts.len());
            }
            if a != 0 || neg {
                p = p.attr(
                    "axis",
                    Attr::Int(if neg { a as i64 - r as i64 } else { a as i64 }),
                );
            }
            p
        })
        .boxed()
}

/// Squeeze of some (or, without axes, all) of the size-1 dims.
pub fn squeeze() -> BoxedStrategy<Problem> {
    (
        dtype(ANY),
        shape(1..=5, true),
        (any::<u8>(), any::<u8>(), any::<u8>()),
        any::<bool>(),
        any::<u64>(),
    )
        .prop_map(|(d, mut s, (ones, pick, negs), given, seed)| {
            let r = s.len();
            for (i, x) in s.iter_mut().enumerate() {
                if ones >> i & 1 == 1 {
                    *x = 1;
                }
            }
            let axes: Vec<i64> = (0..r)
                .filter(|&i| s[i] == 1 && pick >> i & 1 == 1)
                .map(|i| {
                    if negs >> i & 1 == 1 {
                        i as i64 - r as i64
                    } else {
                        i as i64
                    }
                })
                .collect();
            let mut p = Problem::new("Squeeze").input(tensor(d, &s, seed, vals()));
            if given && !axes.is_empty() {
                p = p.constant(i64s(&axes));
            }
            p
        })
        .boxed()
}

/// Unsqueeze: 1 to 3 new axes anywhere in the output, negative or not, in any order.
pub fn unsqueeze() -> BoxedStrategy<Problem> {
    (
        dtype(ANY),
        shape(0..=4, true),
        1usize..=3,
        any::<u8>(),
        any::<u64>(),
    )
        .prop_map(|(d, s, k, negs, seed)| {
            let out = s.len() + k;
            let perm = permutation(out, seed);
            let axes: Vec<i64> = perm[..k]
                .iter()
                .enumerate()
                .map(|(i, &a)| {
                    if negs >> i & 1 == 1 {
                        a as i64 - out as i64
                    } else {
                        a as i64
                    }
                })
                .collect();
            Problem::new("Unsqueeze")
                .input(tensor(d, &s, seed, vals()))
                .constant(i64s(&axes))
        })
        .boxed()
}

/// Expand: input and shape each broadcast to a common shape (either side may hold the 1s,
/// either may have fewer dims).
pub fn expand() -> BoxedStrategy<Problem> {
    (
        dtype(ANY),
        shape(0..=4, true),
        (leading_drop(), any::<u32>(), leading_drop(), any::<u32>()),
        any::<u64>(),
    )
        .prop_map(|(d, out, (drop_in, ones_in, drop_s, ones_s), seed)| {
            let input = broadcast_from(&out, drop_in, ones_in);
            let target = broadcast_from(&out, drop_s, ones_s);
            let spec: Vec<i64> = target.iter().map(|&x| x as i64).collect();
            Problem::new("Expand")
                .input(tensor(d, &input, seed, vals()))
                .constant(i64s(&spec))
        })
        .boxed()
}

/// Pad in every mode: constant (with or without a value, negative pads crop), reflect
/// (pads below the dim), edge and wrap; axes given or not.
pub fn pad() -> BoxedStrategy<Problem> {
    (
        dtype(ANY),
        prop::collection::vec(dim(), 1..=4),
        prop::sample::select(&["constant", "reflect", "edge", "wrap"][..]),
        prop::collection::vec((-1i64..=3, -1i64..=3), 4),
        (any::<u8>(), any::<bool>(), any::<bool>()),
        any::<u64>(),
    )
        .prop_map(
            |(d, s, mode, pads, (axes_mask, value_given, neg_axes), seed)| {
                let r = s.len();
                // Bools pad with constants only.
                let mode = if d == DType::Bool { "constant" } else { mode };
                let axes: Vec<usize> = (0..r).filter(|&a| axes_mask >> a & 1 == 1).collect();
                let axes_given = !axes.is_empty() && axes.len() < r;
                let axes: Vec<usize> = if axes_given { axes } else { (0..r).collect() };
                let (mut begin, mut end) = (Vec::new(), Vec::new());
                for (i, &a) in axes.iter().enumerate() {
                    let dn = s[a] as i64;
                    let (mut b, mut e) = pads[i];
                    match mode {
                        // Reflect needs pads below the dim (and a dim above 1 to pad at all).
                        "reflect" => {
                            b = b.clamp(0, dn - 1);
                            e = e.clamp(0, dn - 1);
                        }
                        "wrap" => {
                            b = b.clamp(0, dn);
                            e = e.clamp(0, dn);
                        }
                        "edge" => {
                            b = b.max(0);
                            e = e.max(0);
                        }
                        // Cropping keeps at least nothing.
                        _ => {
                            if b + e < -dn {
                                e = -dn - b;
                            }
                        }
                    }
                    begin.push(b);
                    end.push(e);
                }
                begin.extend(end);
                let mut p = Problem::new("Pad")
                    .input(tensor(d, &s, seed, vals()))
                    .constant(i64s(&begin));
                if mode != "constant" {
                    p = p.attr("mode", Attr::Str(mode));
                }
                if value_given && mode == "constant" {
                    p = p.constant(scalar(d, 1.0));
                } else if axes_given {
                    p = p.absent();
                }
                if axes_given {
                    let axes: Vec<i64> = axes
                        .iter()
                        .map(|&a| {
                            if neg_axes {
                                a as i64 - r as i64
                            } else {
                                a as i64
                            }
                        })
                        .collect();
                    p = p.constant(i64s(&axes));
                }
                p
            },
        )
        .boxed()
}
