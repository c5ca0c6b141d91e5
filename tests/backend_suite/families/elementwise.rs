//! Elementwise families: binary arithmetic and comparisons with numpy broadcasting, Where,
//! unary math, activations, Clip and Cast.

use proptest::prelude::*;
use xnpu::DType;

use crate::data::{
    broadcast_from, dtype, int_range, leading_drop, scalar, shape, tensor, Vals, ANY, NUMERIC,
    SIGNED, UNIT,
};
use crate::problem::{Attr, Problem};

/// Operand shapes broadcasting to an output shape: per operand, how many leading dims it
/// drops and which dims are 1.
fn operands(n: usize) -> impl Strategy<Value = (Vec<usize>, Vec<(usize, u32)>)> {
    (
        shape(0..=5, true),
        prop::collection::vec((leading_drop(), any::<u32>()), n),
    )
}

/// Integer ranges that keep each op's results inside small dtypes.
fn int_vals(op: &str, d: DType, operand: usize) -> Vals {
    let small = matches!(d, DType::I8 | DType::U8);
    match (op, operand) {
        ("Sub", 0) if d == DType::U8 => Vals::new(16.0, 31.0),
        ("Sub", _) if d == DType::U8 => Vals::new(0.0, 15.0),
        ("Div", 0) => Vals::new(-100.0, 100.0),
        ("Div", _) => Vals::new(-9.0, 9.0).nonzero(),
        ("Pow", 0) => Vals::new(-3.0, 3.0),
        ("Pow", _) => Vals::new(0.0, 4.0),
        ("Mul", _) if small => Vals::new(-10.0, 10.0),
        ("Mul", _) => Vals::new(-1000.0, 1000.0),
        _ if small => Vals::new(-50.0, 50.0),
        _ => Vals::new(-100000.0, 100000.0),
    }
}

fn float_vals(op: &str, operand: usize) -> Vals {
    match (op, operand) {
        ("Div", 1) => Vals::new(-2.0, 2.0).step(1.0 / 16.0).nonzero(),
        ("Pow", 1) => Vals::new(-2.0, 2.0).step(0.25),
        _ => UNIT,
    }
}

/// Add, Sub, Mul, Div, Max, Min (1 to 3 inputs) and Pow, broadcast, every numeric dtype the
/// op takes; the second operand is sometimes a constant (a bias, a scale).
pub fn binary() -> BoxedStrategy<Problem> {
    const OPS: &[&str] = &["Add", "Sub", "Mul", "Div", "Max", "Min", "Pow"];
    (
        prop::sample::select(OPS),
        dtype(NUMERIC),
        operands(3),
        prop_oneof![4 => Just(2usize), 1 => Just(1usize), 1 => Just(3usize)],
        any::<u64>(),
        prop::bool::weighted(0.25),
    )
        .prop_map(|(op, d, (out, ops), arity, seed, last_const)| {
            // Pow takes no 8-bit ints.
            let d = if op == "Pow" && matches!(d, DType::I8 | DType::U8) {
                DType::I32
            } else {
                d
            };
            let arity = if matches!(op, "Max" | "Min") {
                arity
            } else {
                2
            };
            let mut p = Problem::new(op);
            for (k, &(drop, ones)) in ops.iter().take(arity).enumerate() {
                let s = broadcast_from(&out, drop, ones);
                let vals = if d.is_float() {
                    float_vals(op, k)
                } else {
                    int_vals(op, d, k)
                };
                let t = tensor(d, &s, seed.wrapping_add(k as u64), vals);
                p = p.arg(t, last_const && k == arity - 1 && k > 0);
            }
            p
        })
        .boxed()
}

/// Equal, Less, Greater, LessOrEqual, GreaterOrEqual on values with many ties, and And, Or,
/// Xor on bools; broadcast.
pub fn compare() -> BoxedStrategy<Problem> {
    const OPS: &[&str] = &[
        "Equal",
        "Less",
        "Greater",
        "LessOrEqual",
        "GreaterOrEqual",
        "And",
        "Or",
        "Xor",
    ];
    (
        prop::sample::select(OPS),
        dtype(ANY),
        operands(2),
        any::<u64>(),
    )
        .prop_map(|(op, d, (out, ops), seed)| {
            let d = match op {
                "And" | "Or" | "Xor" => DType::Bool,
                "Equal" => d,
                _ if d == DType::Bool => DType::F32,
                _ => d,
            };
            let vals = Vals::new(-2.0, 2.0).step(0.5);
            let mut p = Problem::new(op);
            for (k, &(drop, ones)) in ops.iter().enumerate() {
                let s = broadcast_from(&out, drop, ones);
                p = p.input(tensor(d, &s, seed.wrapping_add(k as u64), vals));
            }
            p
        })
        .boxed()
}

/// Where(cond, x, y) with three-way broadcasting, every dtype.
pub fn where_() -> BoxedStrategy<Problem> {
    (dtype(ANY), operands(3), any::<u64>())
        .prop_map(|(d, (out, ops), seed)| {
            let mut p = Problem::new("Where");
            for (k, &(drop, ones)) in ops.iter().enumerate() {
                let s = broadcast_from(&out, drop, ones);
                let dk = if k == 0 { DType::Bool } else { d };
                p = p.input(tensor(dk, &s, seed.wrapping_add(k as u64), UNIT));
            }
            p
        })
        .boxed()
}

/// Unary math, rank 0 to 5, empty tensors included.
pub fn unary() -> BoxedStrategy<Problem> {
    const OPS: &[&str] = &[
        "Abs",
        "Neg",
        "Sqrt",
        "Exp",
        "Log",
        "Reciprocal",
        "Floor",
        "Ceil",
        "Round",
        "Erf",
        "Sign",
    ];
    (
        prop::sample::select(OPS),
        dtype(NUMERIC),
        shape(0..=5, true),
        any::<u64>(),
    )
        .prop_map(|(op, d, s, seed)| {
            let d = match op {
                "Abs" | "Sign" => d,
                "Neg" if SIGNED.contains(&d) => d,
                _ if d.is_float() => d,
                _ => DType::F32,
            };
            let vals = match op {
                "Exp" => Vals::new(-4.0, 4.0),
                // Negative inputs give NaN: every backend must agree.
                "Sqrt" => Vals::new(-0.25, 4.0),
                "Log" => Vals::new(0.0, 4.0).nonzero(),
                "Reciprocal" => Vals::new(-2.0, 2.0).step(1.0 / 16.0).nonzero(),
                // Halves: Round goes to even.
                "Floor" | "Ceil" | "Round" => Vals::new(-4.0, 4.0).step(0.125),
                _ if d.is_float() => UNIT,
                _ => Vals::new(-100.0, 100.0),
            };
            Problem::new(op).input(tensor(d, &s, seed, vals))
        })
        .boxed()
}

/// Activations with their attributes; Relu also on signed integers.
pub fn activation() -> BoxedStrategy<Problem> {
    const OPS: &[&str] = &[
        "Relu",
        "Sigmoid",
        "Tanh",
        "Gelu",
        "LeakyRelu",
        "Elu",
        "HardSigmoid",
        "Softplus",
        "Softsign",
        "HardSwish",
    ];
    const ALPHAS: &[f32] = &[0.01, 0.2, 1.5];
    (
        prop::sample::select(OPS),
        dtype(SIGNED),
        shape(0..=5, true),
        any::<u64>(),
        prop::option::of(prop::sample::select(ALPHAS)),
        any::<bool>(),
    )
        .prop_map(|(op, d, s, seed, alpha, tanh)| {
            let d = if op == "Relu" || d.is_float() {
                d
            } else {
                DType::F32
            };
            let vals = if d.is_float() {
                Vals::new(-4.0, 4.0)
            } else {
                Vals::new(-100.0, 100.0)
            };
            let mut p = Problem::new(op).input(tensor(d, &s, seed, vals));
            match (op, alpha) {
                ("Gelu", _) if tanh => p = p.attr("approximate", Attr::Str("tanh")),
                ("LeakyRelu" | "Elu" | "HardSigmoid", Some(a)) => {
                    p = p.attr("alpha", Attr::Float(a))
                }
                _ => {}
            }
            if op == "HardSigmoid" && tanh {
                p = p.attr("beta", Attr::Float(0.25));
            }
            p
        })
        .boxed()
}

/// Clip with min and max each absent, a constant or an input (min > max included: all max).
pub fn clip() -> BoxedStrategy<Problem> {
    (
        dtype(NUMERIC),
        shape(0..=5, true),
        any::<u64>(),
        0u8..3,
        0u8..3,
        -8i32..=8,
        -8i32..=8,
    )
        .prop_map(|(d, s, seed, min_kind, max_kind, lo, hi)| {
            let (vals, unit) = if d.is_float() {
                (UNIT, 0.25)
            } else {
                (Vals::new(-10.0, 10.0), 1.0)
            };
            let (a, _) = int_range(d);
            let bound = |k: i32| scalar(d, (k as f64 * unit).max(a));
            let mut p = Problem::new("Clip").input(tensor(d, &s, seed, vals));
            for (kind, k) in [(min_kind, lo), (max_kind, hi)] {
                p = match kind {
                    0 => p.absent(),
                    1 => p.constant(bound(k)),
                    _ => p.input(bound(k)),
                };
            }
            p
        })
        .boxed()
}

/// Cast between every pair of numeric dtypes and bool, values inside both ranges (float to
/// int truncates: fractions included).
pub fn cast() -> BoxedStrategy<Problem> {
    (
        dtype(ANY),
        dtype(ANY),
        shape(0..=4, true),
        any::<u64>(),
        prop::sample::select(&[2.0f64, 100.0, 1000.0][..]),
    )
        .prop_map(|(from, to, s, seed, scale)| {
            let (a, b) = if from.is_float() {
                (-scale, scale)
            } else {
                int_range(from)
            };
            let (c, e) = if to.is_float() {
                (-scale, scale)
            } else {
                int_range(to)
            };
            // To bool: a coarse grid, so that zeros (false) are common.
            let step = match (to, scale > 2.0) {
                (DType::Bool, _) => 0.5,
                (_, true) => 1.0 / 8.0,
                (_, false) => 1.0 / 1024.0,
            };
            let vals = Vals::new(a.max(c).max(-scale), b.min(e).min(scale)).step(step);
            Problem::new("Cast")
                .input(tensor(from, &s, seed, vals))
                .attr("to", Attr::Int(to.onnx_code() as i64))
        })
        .boxed()
}
