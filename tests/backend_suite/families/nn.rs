//! Linear algebra and windows: MatMul, Gemm, Conv, ConvTranspose, MaxPool, AveragePool, the
//! global pools, and Attention.

use proptest::prelude::*;
use xnpu::DType;

use crate::data::{broadcast_from, dim, dim0, dtype, tensor, Vals, FLOATS, UNIT};
use crate::problem::{Attr, Naive, Problem};

const MATMUL_DTYPES: &[DType] = &[DType::F32, DType::F16, DType::F64, DType::I32, DType::I64];

fn vals(d: DType) -> Vals {
    if d.is_float() {
        UNIT
    } else {
        Vals::new(-5.0, 5.0)
    }
}

fn ints(v: impl IntoIterator<Item = usize>) -> Attr {
    Attr::Ints(v.into_iter().map(|x| x as i64).collect())
}

/// numpy.matmul: 1-D operands, batch dims broadcast both ways, K or M or N of 0.
pub fn matmul() -> BoxedStrategy<Problem> {
    (
        dtype(MATMUL_DTYPES),
        (1usize..=4, 1usize..=4),
        (dim0(), dim0(), dim0()),
        prop::collection::vec(dim(), 2),
        (any::<u32>(), any::<u32>()),
        any::<u64>(),
        prop::bool::weighted(0.3),
    )
        .prop_map(
            |(d, (ra, rb), (m, k, n), batch, (ones_a, ones_b), seed, b_const)| {
                let nb = ra.max(rb).saturating_sub(2);
                let batch = &batch[..nb];
                let operand = |rank: usize, ones: u32, last: [usize; 2], one: usize| {
                    if rank == 1 {
                        return vec![one];
                    }
                    let mut s = broadcast_from(batch, nb - (rank - 2), ones);
                    s.extend(last);
                    s
                };
                let a = operand(ra, ones_a, [m, k], k);
                let b = operand(rb, ones_b, [k, n], k);
                Problem::new("MatMul")
                    .input(tensor(d, &a, seed, vals(d)))
                    .arg(tensor(d, &b, seed ^ 1, vals(d)), b_const)
                    .accum(k)
                    .naive(Naive::MatMul)
            },
        )
        .boxed()
}

/// Gemm: transposes, alpha and beta, C absent or broadcast from (), (N), (1, N), (M, 1),
/// (M, N) or (1, 1); B and C constants or inputs.
pub fn gemm() -> BoxedStrategy<Problem> {
    const SCALES: &[f32] = &[1.0, 0.5, -1.5, 2.0, 0.0];
    (
        dtype(MATMUL_DTYPES),
        (dim0(), dim0(), dim0()),
        (any::<bool>(), any::<bool>()),
        (prop::sample::select(SCALES), prop::sample::select(SCALES)),
        0usize..=6,
        (prop::bool::weighted(0.6), prop::bool::weighted(0.6)),
        any::<u64>(),
    )
        .prop_map(
            |(d, (m, k, n), (ta, tb), (alpha, beta), c_kind, (b_const, c_const), seed)| {
                let a = if ta { [k, m] } else { [m, k] };
                let b = if tb { [n, k] } else { [k, n] };
                let mut p = Problem::new("Gemm")
                    .input(tensor(d, &a, seed, vals(d)))
                    .arg(tensor(d, &b, seed ^ 1, vals(d)), b_const);
                let c: Option<Vec<usize>> = match c_kind {
                    0 => None,
                    1 => Some(vec![]),
                    2 => Some(vec![n]),
                    3 => Some(vec![1, n]),
                    4 => Some(vec![m, 1]),
                    5 => Some(vec![m, n]),
                    _ => Some(vec![1, 1]),
                };
                if let Some(c) = c {
                    p = p.arg(tensor(d, &c, seed ^ 2, vals(d)), c_const);
                }
                if ta {
                    p = p.attr("transA", Attr::Int(1));
                }
                if tb {
                    p = p.attr("transB", Attr::Int(1));
                }
                // Integer Gemm: alpha and beta are 1 (a float scale of ints is ill-defined).
                if d.is_float() && alpha != 1.0 {
                    p = p.attr("alpha", Attr::Float(alpha));
                }
                if d.is_float() && beta != 1.0 {
                    p = p.attr("beta", Attr::Float(beta));
                }
                p.accum(k + 1).naive(Naive::Gemm)
            },
        )
        .boxed()
}

/// One spatial axis of a window: kernel, stride, dilation, pads, and how much larger than
/// the smallest valid input the input is.
#[derive(Clone, Copy, Debug)]
struct Axis {
    k: usize,
    s: usize,
    d: usize,
    pb: usize,
    pe: usize,
    extra: usize,
}

fn axis() -> impl Strategy<Value = Axis> {
    (
        1usize..=3,
        1usize..=3,
        1usize..=2,
        0usize..=2,
        0usize..=2,
        0usize..=5,
    )
        .prop_map(|(k, s, d, pb, pe, extra)| Axis {
            k,
            s,
            d,
            pb,
            pe,
            extra,
        })
}

fn spatial_rank() -> impl Strategy<Value = usize> {
    prop_oneof![3 => Just(1usize), 4 => Just(2usize), 1 => Just(3usize)]
}

const AUTO_PADS: &[&str] = &["NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"];

fn auto_pad() -> impl Strategy<Value = &'static str> {
    prop_oneof![6 => Just(AUTO_PADS[0]), 1 => Just(AUTO_PADS[1]), 1 => Just(AUTO_PADS[2]), 1 => Just(AUTO_PADS[3])]
}

/// Window attributes shared by Conv and the pools, and the input's spatial dims (each the
/// smallest size that gives one output, plus `extra`).
fn window(
    p: Problem,
    axes: &[Axis],
    auto_pad: &'static str,
    kernel_attr: bool,
) -> (Problem, Vec<usize>) {
    let mut p = p;
    let spatial: Vec<usize> = axes
        .iter()
        .map(|a| {
            let eff = a.d * (a.k - 1) + 1;
            match auto_pad {
                "NOTSET" => eff.saturating_sub(a.pb + a.pe).max(1) + a.extra,
                "VALID" => eff + a.extra,
                _ => 1 + a.extra,
            }
        })
        .collect();
    if kernel_attr {
        p = p.attr("kernel_shape", ints(axes.iter().map(|a| a.k)));
    }
    if axes.iter().any(|a| a.s != 1) {
        p = p.attr("strides", ints(axes.iter().map(|a| a.s)));
    }
    if axes.iter().any(|a| a.d != 1) {
        p = p.attr("dilations", ints(axes.iter().map(|a| a.d)));
    }
    if auto_pad == "NOTSET" {
        if axes.iter().any(|a| a.pb + a.pe > 0) {
            let pads = axes.iter().map(|a| a.pb).chain(axes.iter().map(|a| a.pe));
            p = p.attr("pads", ints(pads));
        }
    } else {
        p = p.attr("auto_pad", Attr::Str(auto_pad));
    }
    (p, spatial)
}

/// Conv: 1-D to 3-D, strides, dilations, explicit or automatic pads, groups (depthwise
/// included), with or without bias; weights constant (as exported models have them) or not.
pub fn conv() -> BoxedStrategy<Problem> {
    (
        dtype(FLOATS),
        spatial_rank(),
        prop::collection::vec(axis(), 3),
        (1usize..=2, 0u8..3, 1usize..=3, 1usize..=3, 1usize..=3),
        auto_pad(),
        (any::<bool>(), prop::bool::weighted(0.8), any::<bool>()),
        any::<u64>(),
    )
        .prop_map(
            |(dt, rank, axes, (n, group_kind, g, cg, mg), pad, (bias, w_const, k_attr), seed)| {
                let axes = &axes[..rank];
                // Plain, grouped, or depthwise (one input channel per group).
                let (g, cg, mg) = match group_kind {
                    0 => (1, cg, mg),
                    1 => (g.max(2), cg, mg),
                    _ => (g, 1, mg.min(2)),
                };
                let (c, m) = (g * cg, g * mg);
                let (mut p, spatial) = window(Problem::new("Conv"), axes, pad, k_attr);
                if g != 1 {
                    p = p.attr("group", Attr::Int(g as i64));
                }
                let mut xs = vec![n, c];
                xs.extend(&spatial);
                let mut ws = vec![m, cg];
                ws.extend(axes.iter().map(|a| a.k));
                p = p
                    .input(tensor(dt, &xs, seed, UNIT))
                    .arg(tensor(dt, &ws, seed ^ 1, UNIT), w_const);
                if bias {
                    p = p.constant(tensor(dt, &[m], seed ^ 2, UNIT));
                }
                let kprod: usize = axes.iter().map(|a| a.k).product();
                p.accum(cg * kprod).naive(Naive::Conv)
            },
        )
        .boxed()
}

/// ConvTranspose: 1-D and 2-D, strides, dilations, pads, output_padding, groups, bias.
pub fn conv_transpose() -> BoxedStrategy<Problem> {
    (
        dtype(FLOATS),
        prop_oneof![1 => Just(1usize), 2 => Just(2usize)],
        prop::collection::vec((axis(), 0usize..=2), 2),
        (1usize..=2, 1usize..=2, 1usize..=3, 1usize..=3),
        any::<bool>(),
        any::<u64>(),
    )
        .prop_map(|(dt, rank, axes, (n, g, cg, mg), bias, seed)| {
            let mut axes: Vec<(Axis, usize)> = axes[..rank].to_vec();
            let mut spatial = Vec::new();
            for (a, op) in axes.iter_mut() {
                let input = 1 + a.extra.min(4);
                *op = (*op).min(a.s.max(a.d) - 1);
                let full = a.s * (input - 1) + *op + (a.k - 1) * a.d + 1;
                a.pb = a.pb.min(full - 1);
                a.pe = a.pe.min(full - 1 - a.pb);
                spatial.push(input);
            }
            let (c, m) = (g * cg, g * mg);
            let mut xs = vec![n, c];
            xs.extend(&spatial);
            let mut ws = vec![c, mg];
            ws.extend(axes.iter().map(|(a, _)| a.k));
            let mut p = Problem::new("ConvTranspose")
                .input(tensor(dt, &xs, seed, UNIT))
                .constant(tensor(dt, &ws, seed ^ 1, UNIT));
            if bias {
                p = p.constant(tensor(dt, &[m], seed ^ 2, UNIT));
            }
            if g != 1 {
                p = p.attr("group", Attr::Int(g as i64));
            }
            if axes.iter().any(|(a, _)| a.s != 1) {
                p = p.attr("strides", ints(axes.iter().map(|(a, _)| a.s)));
            }
            if axes.iter().any(|(a, _)| a.d != 1) {
                p = p.attr("dilations", ints(axes.iter().map(|(a, _)| a.d)));
            }
            if axes.iter().any(|(a, _)| a.pb + a.pe > 0) {
                let pads = axes
                    .iter()
                    .map(|(a, _)| a.pb)
                    .chain(axes.iter().map(|(a, _)| a.pe));
                p = p.attr("pads", ints(pads));
            }
            if axes.iter().any(|(_, op)| *op != 0) {
                p = p.attr("output_padding", ints(axes.iter().map(|(_, op)| *op)));
            }
            let kprod: usize = axes.iter().map(|(a, _)| a.k).product();
            p.accum(cg * kprod)
        })
        .boxed()
}

/// MaxPool and AveragePool: 1-D to 3-D, strides, dilations, pads smaller than the kernel,
/// ceil mode, count_include_pad, automatic pads.
pub fn pool() -> BoxedStrategy<Problem> {
    const MAX_DTYPES: &[DType] = &[DType::F32, DType::F16, DType::F64, DType::I8, DType::U8];
    (
        prop::sample::select(&["MaxPool", "AveragePool"][..]),
        dtype(MAX_DTYPES),
        spatial_rank(),
        prop::collection::vec(axis(), 3),
        (1usize..=2, 1usize..=3),
        auto_pad(),
        (any::<bool>(), any::<bool>()),
        any::<u64>(),
    )
        .prop_map(
            |(op, d, rank, mut axes, (n, c), pad, (ceil, count_pad), seed)| {
                let d = if op == "AveragePool" && !d.is_float() {
                    DType::F32
                } else {
                    d
                };
                axes.truncate(rank);
                for a in axes.iter_mut() {
                    // ONNX pools need pads smaller than the kernel.
                    a.pb = a.pb.min(a.k - 1);
                    a.pe = a.pe.min(a.k - 1);
                }
                let (mut p, spatial) = window(Problem::new(op), &axes, pad, true);
                if ceil {
                    p = p.attr("ceil_mode", Attr::Int(1));
                }
                if op == "AveragePool" && count_pad {
                    p = p.attr("count_include_pad", Attr::Int(1));
                }
                let mut xs = vec![n, c];
                xs.extend(&spatial);
                let vals = if d.is_float() {
                    Vals::new(-2.0, 2.0).step(0.25)
                } else {
                    Vals::new(-100.0, 100.0)
                };
                let kprod: usize = axes.iter().map(|a| a.k).product();
                p.input(tensor(d, &xs, seed, vals)).accum(kprod)
            },
        )
        .boxed()
}

/// GlobalAveragePool and GlobalMaxPool over 1 to 3 spatial dims.
pub fn global_pool() -> BoxedStrategy<Problem> {
    (
        prop::sample::select(&["GlobalAveragePool", "GlobalMaxPool"][..]),
        dtype(FLOATS),
        (1usize..=2, 1usize..=3),
        prop::collection::vec(dim(), 1..=3),
        any::<u64>(),
    )
        .prop_map(|(op, d, (n, c), spatial, seed)| {
            let mut xs = vec![n, c];
            xs.extend(&spatial);
            Problem::new(op)
                .input(tensor(d, &xs, seed, UNIT))
                .accum(spatial.iter().product())
        })
        .boxed()
}

/// Attention (opset 23) on 4-D Q, K, V: grouped heads, a query length other than the key
/// length, V's own head size, an additive mask in four broadcast forms or none, causal or
/// not, the default or a given scale.
pub fn attention() -> BoxedStrategy<Problem> {
    (
        dtype(FLOATS),
        (
            1usize..=2,
            prop::sample::select(&[(1usize, 1usize), (2, 2), (4, 2), (3, 1)][..]),
        ),
        (1usize..=6, 1usize..=7, 1usize..=9, 1usize..=5),
        (0usize..5, any::<bool>(), any::<bool>()),
        any::<u64>(),
    )
        .prop_map(
            |(d, (b, (hq, hkv)), (sq, skv, head, v_head), (mask, causal, scaled), seed)| {
                let mut p = Problem::new("Attention")
                    .opset(23)
                    .input(tensor(d, &[b, hq, sq, head], seed, UNIT))
                    .input(tensor(d, &[b, hkv, skv, head], seed ^ 1, UNIT))
                    .input(tensor(d, &[b, hkv, skv, v_head], seed ^ 2, UNIT));
                let mask_shape: Option<Vec<usize>> = match mask {
                    1 => Some(vec![sq, skv]),
                    2 => Some(vec![1, 1, sq, skv]),
                    3 => Some(vec![b, hq, sq, skv]),
                    4 => Some(vec![b, 1, 1, skv]),
                    _ => None,
                };
                if let Some(m) = mask_shape {
                    p = p.input(tensor(d, &m, seed ^ 3, UNIT));
                }
                if causal {
                    p = p.attr("is_causal", Attr::Int(1));
                }
                if scaled {
                    p = p.attr("scale", Attr::Float(0.3));
                }
                p.accum(skv * head.max(v_head))
            },
        )
        .boxed()
}
