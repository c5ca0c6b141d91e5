//! How each xnpu op becomes QNN ops (package `qti.aisw`): the mapping table, written from
//! the reference (`../shared/reference/qnn.md` §6), and one lowering per kind. A lowering
//! may emit several QNN nodes (layout transposes around NHWC ops, for example) through the
//! [`Builder`].
//!
//! QNN's 2-D convolutions and pools take NHWC tensors, and xnpu's (ONNX's) are NCHW: those
//! lowerings put a Transpose to NHWC before the op and one back after it, and rearrange the
//! convolution weights (OIHW to HWIO) into a new STATIC tensor. Attributes a lowering needs
//! as constants (weights, Clip bounds) must be constants of the graph; [`check`] says so
//! before the partitioner places the node.

use xnpu_core::shape::normalize_axis;
use xnpu_core::{Bytes, DType, Error, Result, Tensor};
use xnpu_graph::{Graph, Node, Op};
use xnpu_ops::elementwise::{self as ew, ActivationKind};
use xnpu_ops::nn::{self, FusedActivation, PoolKind};
use xnpu_ops::reduce::{self as rd, SoftmaxKind};
use xnpu_ops::tensor as tn;

use crate::ffi;
use crate::graph::{Builder, Param};

/// How an xnpu op becomes a QNN op (package `qti.aisw`), from the reference's mapping.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Mapping {
    /// xnpu's op name.
    pub op: &'static str,
    /// QNN's type name (of the main node, when the lowering emits several).
    pub qnn: &'static str,
    pub lowering: Lowering,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Lowering {
    /// Same inputs and outputs, no params.
    Direct,
    /// `MatMul` with `transpose_in0`/`transpose_in1` false.
    MatMul,
    /// `Reshape` of input 0; the output's dims give the shape (the shape input is dropped).
    Reshape,
    /// NCHW Conv (or FusedConv) as Transpose, Conv2d / DepthWiseConv2d (HWIO weights),
    /// the activation if fused, Transpose.
    Conv,
    /// MaxPool / AveragePool as Transpose, PoolMax2d / PoolAvg2d, Transpose. A padded pool
    /// pads explicitly first (Pad with the lowest float for MaxPool, zeros for
    /// AveragePool), because QNN's pools pad with zeros and count the padding; an
    /// AveragePool whose windows cover padding is then scaled by a constant map of
    /// `window size / positions that count`.
    Pool,
    /// GlobalAveragePool as ReduceMean over H, W (keep_dims), no layout change.
    GlobalAveragePool,
    /// Gemm (or FusedGemm) as FullyConnected (weights `[N, K]`, alpha and beta folded into
    /// the constant weights and bias), then the activation if fused.
    Gemm,
    /// Softmax over one axis: `axis` and `beta` params.
    Softmax,
    /// Transpose with `perm`.
    Transpose,
    /// Concat with `axis`.
    Concat,
    /// Clip as ReluMinMax with constant bounds.
    Clip,
    /// LayerNormalization as LayerNorm (x, gamma, beta; `epsilon`, `axes`).
    LayerNorm,
    /// MatMulBias as MatMul, ElementWiseAdd, then the activation if any.
    MatMulBias,
    /// QuantizeLinear / DequantizeLinear as QNN's Quantize / Dequantize of input 0; the
    /// scale and zero point (constant, per tensor) become the fixed-point tensor's encoding.
    QuantizeDequantize,
    /// LRN as Transpose, Lrn (ACROSS_CHANNEL, `radius` = (size-1)/2, `alpha` / size),
    /// Transpose.
    Lrn,
    /// BatchNormalization (inference, constant statistics) as Transpose, Batchnorm with
    /// the folded per-channel scale and bias, Transpose.
    BatchNorm,
}

/// Every op this backend lowers.
pub const MAPPINGS: &[Mapping] = &[
    m("QuantizeLinear", "Quantize", Lowering::QuantizeDequantize),
    m(
        "DequantizeLinear",
        "Dequantize",
        Lowering::QuantizeDequantize,
    ),
    m("Add", "ElementWiseAdd", Lowering::Direct),
    m("Sum", "ElementWiseAdd", Lowering::Direct),
    m("Sub", "ElementWiseSubtract", Lowering::Direct),
    m("Mul", "ElementWiseMultiply", Lowering::Direct),
    m("Div", "ElementWiseDivide", Lowering::Direct),
    m("Max", "ElementWiseMaximum", Lowering::Direct),
    m("Min", "ElementWiseMinimum", Lowering::Direct),
    m("Relu", "Relu", Lowering::Direct),
    m("Sigmoid", "Sigmoid", Lowering::Direct),
    m("Tanh", "Tanh", Lowering::Direct),
    m("Gelu", "Gelu", Lowering::Direct),
    m("Exp", "ElementWiseExp", Lowering::Direct),
    m("Sqrt", "ElementWiseSquareRoot", Lowering::Direct),
    m("Neg", "ElementWiseNeg", Lowering::Direct),
    m("Abs", "ElementWiseAbs", Lowering::Direct),
    m("MatMul", "MatMul", Lowering::MatMul),
    m("Reshape", "Reshape", Lowering::Reshape),
    m("Flatten", "Reshape", Lowering::Reshape),
    m("Squeeze", "Reshape", Lowering::Reshape),
    m("Unsqueeze", "Reshape", Lowering::Reshape),
    m("Conv", "Conv2d", Lowering::Conv),
    m("FusedConv", "Conv2d", Lowering::Conv),
    m("MaxPool", "PoolMax2d", Lowering::Pool),
    m("AveragePool", "PoolAvg2d", Lowering::Pool),
    m(
        "GlobalAveragePool",
        "ReduceMean",
        Lowering::GlobalAveragePool,
    ),
    m("Gemm", "FullyConnected", Lowering::Gemm),
    m("FusedGemm", "FullyConnected", Lowering::Gemm),
    m("MatMulBias", "MatMul", Lowering::MatMulBias),
    m("Softmax", "Softmax", Lowering::Softmax),
    m("Transpose", "Transpose", Lowering::Transpose),
    m("Concat", "Concat", Lowering::Concat),
    m("Clip", "ReluMinMax", Lowering::Clip),
    m("LayerNormalization", "LayerNorm", Lowering::LayerNorm),
    m("LRN", "Lrn", Lowering::Lrn),
    m("BatchNormalization", "Batchnorm", Lowering::BatchNorm),
];

const fn m(op: &'static str, qnn: &'static str, lowering: Lowering) -> Mapping {
    Mapping { op, qnn, lowering }
}

pub fn mapping(op: &str) -> Option<&'static Mapping> {
    MAPPINGS.iter().find(|m| m.op == op)
}

/// The xnpu values a node's QNN ops read as graph tensors (weights QNN gets rearranged,
/// bounds folded into params and a Reshape's shape are not).
pub fn reads(node: &Node) -> Vec<usize> {
    let first = || node.inputs.first().copied().flatten().into_iter().collect();
    match mapping(node.op.name()).map(|m| m.lowering) {
        Some(
            Lowering::Reshape
            | Lowering::Conv
            | Lowering::Pool
            | Lowering::Clip
            | Lowering::Lrn
            | Lowering::BatchNorm,
        ) => first(),
        Some(Lowering::Gemm | Lowering::QuantizeDequantize) => first(),
        _ => node.inputs.iter().flatten().copied().collect(),
    }
}

fn input(node: &Node, k: usize) -> Option<usize> {
    node.inputs.get(k).copied().flatten()
}

fn dims_of(g: &Graph, id: usize) -> Option<Vec<usize>> {
    if let Some(c) = &g.values[id].constant {
        return Some(c.shape().to_vec());
    }
    match &g.values[id].ty {
        xnpu_core::ValueType::Tensor(t) => t
            .shape
            .as_ref()
            .and_then(|s| s.as_known())
            .map(|d| d.to_vec()),
        _ => None,
    }
}

/// A value's rank, known even when some dims are symbols (bound by each run's inputs).
fn rank_of(g: &Graph, id: usize) -> Option<usize> {
    if let Some(c) = &g.values[id].constant {
        return Some(c.rank());
    }
    match &g.values[id].ty {
        xnpu_core::ValueType::Tensor(t) => t.shape.as_ref().map(|s| s.rank()),
        _ => None,
    }
}

/// The dims of a value known before running (a constant's, or its type's numbers).
fn known_dims(g: &Graph, id: usize) -> Option<Vec<usize>> {
    if let Some(c) = &g.values[id].constant {
        return Some(c.shape().to_vec());
    }
    match &g.values[id].ty {
        xnpu_core::ValueType::Tensor(t) => t.shape.as_ref()?.as_known().map(|d| d.to_vec()),
        _ => None,
    }
}

/// Input `k` of `node` as a constant of the graph. A weight a DequantizeLinear reads from a
/// constant (a QDQ model's) counts, as its quantised constant (same shape):
/// `crate::qdq::fold` makes it a QDQ unit's input or a float constant before lowering.
fn constant<'g>(g: &'g Graph, node: &Node, k: usize, what: &str) -> Result<&'g Tensor> {
    let id = input(node, k).ok_or_else(|| Error::unsupported(format!("{what} is missing")))?;
    if let Some(c) =
        crate::qdq::dequantized_constant(g, id).and_then(|(_, q)| g.values[q].constant.as_ref())
    {
        return Ok(c);
    }
    g.values[id].constant.as_ref().ok_or_else(|| {
        Error::unsupported(format!(
            "QNN needs {what} (\"{}\") as a constant of the graph",
            g.values[id].name
        ))
    })
}

fn activation_check(a: &FusedActivation) -> Option<String> {
    match a {
        FusedActivation::Activation(ActivationKind::Relu)
        | FusedActivation::Activation(ActivationKind::Sigmoid)
        | FusedActivation::Activation(ActivationKind::Gelu { tanh: false })
        | FusedActivation::Tanh
        | FusedActivation::Clip { .. } => None,
        other => Some(format!(
            "the fused activation {} has no QNN lowering here",
            other.name()
        )),
    }
}

/// Whether the node computes a Gelu, alone or fused into a Conv, Gemm or MatMulBias (QNN's
/// HTP simulator has no fp32 Gelu kernel when no SoC model is set).
pub fn computes_gelu(node: &Node) -> bool {
    let gelu =
        |a: &FusedActivation| matches!(a, FusedActivation::Activation(ActivationKind::Gelu { .. }));
    match &node.op {
        Op::Elementwise(ew::Op::Activation(a)) => matches!(a.kind, ActivationKind::Gelu { .. }),
        Op::Nn(nn::Op::FusedConv(f)) => gelu(&f.activation),
        Op::Nn(nn::Op::FusedGemm(f)) => gelu(&f.activation),
        Op::Nn(nn::Op::MatMulBias(mb)) => mb.activation.as_ref().is_some_and(gelu),
        _ => false,
    }
}

/// Why QNN cannot take this node although its op is in [`MAPPINGS`] (attributes or inputs
/// the lowering cannot express), or `None`. Shapes and dtypes are the table's business.
pub fn check(node: &Node, g: &Graph) -> Option<String> {
    check_inner(node, g).err().map(|e| e.to_string())
}

fn check_inner(node: &Node, g: &Graph) -> Result<()> {
    let refuse = |s: String| Err(Error::unsupported(s));
    // Constraints QNN's validation enforces (measured on the conformance cases): no empty
    // tensors, MatMul operands of rank 2 or more, and exactly two inputs to Max, Min and Sum.
    let empty = node
        .inputs
        .iter()
        .chain(&node.outputs)
        .flatten()
        .any(|&v| known_dims(g, v).is_some_and(|d| d.contains(&0)));
    if empty {
        return refuse("QNN takes no empty tensors (a dim of 0)".into());
    }
    match node.op.name() {
        "MatMul" => {
            for k in 0..2 {
                if input(node, k)
                    .and_then(|x| rank_of(g, x))
                    .is_some_and(|r| r < 2)
                {
                    return refuse("QNN's MatMul takes operands of rank 2 or more".into());
                }
            }
        }
        "Max" | "Min" | "Sum" if node.inputs.iter().flatten().count() != 2 => {
            return refuse(format!(
                "QNN's elementwise {} takes exactly two inputs, this one has {}",
                node.op.name(),
                node.inputs.iter().flatten().count()
            ));
        }
        _ => {}
    }
    let of_constants = node.op.name() == "DequantizeLinear"
        && node
            .outputs
            .first()
            .copied()
            .flatten()
            .is_some_and(|y| crate::qdq::dequantized_constant(g, y).is_some());
    // A DequantizeLinear of constants (a QDQ model's weights and int32 biases) is folded
    // into its readers or computed when lowering (crate::qdq).
    if matches!(node.op.name(), "QuantizeLinear" | "DequantizeLinear") && !of_constants {
        let quantized = if node.op.name() == "QuantizeLinear" {
            node.outputs.first().copied().flatten()
        } else {
            input(node, 0)
        };
        let known = crate::graph::quantized_values(g);
        if !quantized.is_some_and(|v| known.contains_key(&v)) {
            return refuse(
                "QNN takes per-tensor quantisation with a constant scale and zero point \
                 (u8, i8 or u16); this one is per axis, blocked or computed"
                    .into(),
            );
        }
    }
    let rank0 = input(node, 0).and_then(|x| rank_of(g, x));
    match &node.op {
        Op::Elementwise(ew::Op::Activation(a)) => {
            if let ActivationKind::Gelu { tanh: true } = a.kind {
                return refuse("QNN's Gelu is the erf form; the tanh approximation is not".into());
            }
        }
        Op::Elementwise(ew::Op::Clip(c)) => {
            clip_bounds(g, node, c)?;
        }
        Op::Nn(nn::Op::Conv(c)) => conv_check(g, node, c)?,
        Op::Nn(nn::Op::FusedConv(f)) => {
            conv_check(g, node, &f.conv)?;
            if let Some(w) = activation_check(&f.activation) {
                return refuse(w);
            }
        }
        Op::Nn(nn::Op::Gemm(gm)) => gemm_check(g, node, gm)?,
        Op::Nn(nn::Op::FusedGemm(f)) => {
            gemm_check(g, node, &f.gemm)?;
            if let Some(w) = activation_check(&f.activation) {
                return refuse(w);
            }
        }
        Op::Nn(nn::Op::MatMulBias(mb)) => {
            if let Some(w) = mb.activation.as_ref().and_then(activation_check) {
                return refuse(w);
            }
        }
        Op::Nn(nn::Op::Pool(p)) => {
            if rank0.is_some_and(|r| r != 4) {
                return refuse("QNN pools here are 2-D (NCHW input) only".into());
            }
            if node.outputs.get(1).copied().flatten().is_some() {
                return refuse("QNN's PoolMax2d has no indices output".into());
            }
            if p.window.dilations.iter().any(|&d| d != 1) {
                return refuse("QNN's 2-D pools have no dilation".into());
            }
            let k = p.window.kernel_shape.as_deref().unwrap_or_default();
            if p.window.strides.iter().zip(k).any(|(&s, &k)| s > k) {
                // Measured: graphFinalize fails with 1002 (MEM_ALLOC) on the simulator for
                // a 1x1 window with stride 2 (test_maxpool_2d_ceil_output_size_reduce_by_one).
                return refuse(
                    "QNN's 2-D pools with a stride larger than the window fail to finalize".into(),
                );
            }
            if let PoolKind::Lp { .. } = p.kind {
                return refuse("LpPool has no QNN lowering".into());
            }
        }
        Op::Reduce(rd::Op::Lrn(l)) => {
            if rank0.is_some_and(|r| r != 4) {
                return refuse("LRN is lowered for 2-D (NCHW) input only".into());
            }
            if l.size % 2 == 0 {
                return refuse(format!(
                    "LRN of even size {} has a lopsided window; QNN's Lrn takes a radius",
                    l.size
                ));
            }
        }
        Op::Reduce(rd::Op::BatchNormalization(bn)) => {
            if bn.training_mode || node.outputs.iter().skip(1).any(|o| o.is_some()) {
                return refuse("BatchNormalization in training mode has no QNN lowering".into());
            }
            if rank0.is_some_and(|r| r != 4 && r != 2) {
                return refuse(
                    "BatchNormalization is lowered for NCHW or [N, C] input only".into(),
                );
            }
            for (k, what) in [(1, "scale"), (2, "bias"), (3, "mean"), (4, "variance")] {
                let c = constant(g, node, k, what).ok();
                if c.is_none_or(|c| c.rank() != 1) {
                    return refuse(format!(
                        "QNN's Batchnorm needs BatchNormalization's {what} as a 1-D constant"
                    ));
                }
            }
        }
        Op::Nn(nn::Op::GlobalPool(_)) if rank0.is_some_and(|r| r != 4) => {
            return refuse("GlobalAveragePool is lowered for 2-D (NCHW) input only".into());
        }
        Op::Reduce(rd::Op::Softmax(s)) => {
            if s.kind != SoftmaxKind::Softmax {
                return refuse(format!("{} has no lowering", s.kind.op_name()));
            }
            if let Some(r) = rank0 {
                let axis = normalize_axis(s.axis, r)?;
                if s.coerce_2d && axis + 1 != r {
                    return refuse(
                        "Softmax before opset 13 over more than the last axis (it flattens) has no lowering"
                            .into(),
                    );
                }
            }
        }
        Op::Reduce(rd::Op::LayerNormalization(l)) => {
            if node.outputs.iter().skip(1).any(|o| o.is_some()) {
                return refuse("QNN's LayerNorm has no mean / inverse std-dev outputs".into());
            }
            let (Some(x), Some(s)) = (
                input(node, 0).and_then(|x| dims_of(g, x)),
                input(node, 1).and_then(|x| dims_of(g, x)),
            ) else {
                return Ok(());
            };
            let axis = normalize_axis(l.axis, x.len())?;
            if s != x[axis..] {
                return refuse(format!(
                    "LayerNorm's scale must have the normalized shape {:?}, got {s:?}",
                    &x[axis..]
                ));
            }
            if let Some(b) = input(node, 2).and_then(|b| dims_of(g, b)) {
                if b != x[axis..] {
                    return refuse(format!(
                        "LayerNorm's bias must have the normalized shape {:?}, got {b:?}",
                        &x[axis..]
                    ));
                }
            }
        }
        _ => {}
    }
    Ok(())
}

fn conv_check(g: &Graph, node: &Node, c: &nn::Conv) -> Result<()> {
    let w = constant(g, node, 1, "the Conv weight")?;
    if w.rank() != 4 {
        return Err(Error::unsupported(format!(
            "only 2-D convolutions are lowered (weight rank {})",
            w.rank()
        )));
    }
    if input(node, 2).is_some() {
        constant(g, node, 2, "the Conv bias")?;
    }
    let _ = c;
    Ok(())
}

fn gemm_check(g: &Graph, node: &Node, _gm: &nn::Gemm) -> Result<()> {
    let b = constant(g, node, 1, "Gemm's B (FullyConnected weights)")?;
    if b.rank() != 2 {
        return Err(Error::unsupported("Gemm's B must be 2-D"));
    }
    if input(node, 2).is_some() {
        constant(g, node, 2, "Gemm's C (the bias)")?;
    }
    Ok(())
}

fn clip_bounds(g: &Graph, node: &Node, c: &ew::Clip) -> Result<(f32, f32)> {
    let bound = |k: usize, attr: Option<f32>, what: &str| -> Result<Option<f32>> {
        match input(node, k) {
            Some(_) => {
                let t = constant(g, node, k, what)?;
                let v = t.to_f64_vec()?;
                if v.len() != 1 {
                    return Err(Error::unsupported(format!("{what} must be a scalar")));
                }
                Ok(Some(v[0] as f32))
            }
            None => Ok(attr),
        }
    };
    let lo = bound(1, c.min, "Clip's min")?;
    let hi = bound(2, c.max, "Clip's max")?;
    Ok((lo.unwrap_or(f32::MIN), hi.unwrap_or(f32::MAX)))
}

/// Adds the QNN nodes for one xnpu node.
pub fn lower(b: &mut Builder<'_>, node: &Node) -> Result<()> {
    let op = node.op.name();
    let map =
        mapping(op).ok_or_else(|| Error::unsupported(format!("QNN has no lowering for {op}")))?;
    check_inner(node, b.g)?;
    match map.lowering {
        Lowering::Direct | Lowering::MatMul | Lowering::Reshape | Lowering::QuantizeDequantize => {
            let mut ins = Vec::new();
            for id in reads(node) {
                ins.push(b.value(id)?);
            }
            let outs = outputs(b, node)?;
            let params = match map.lowering {
                Lowering::MatMul => vec![
                    Param::Bool("transpose_in0", false),
                    Param::Bool("transpose_in1", false),
                ],
                _ => Vec::new(),
            };
            b.add(&node.name, map.qnn, params, &ins, &outs)
        }
        Lowering::Conv => match &node.op {
            Op::Nn(nn::Op::Conv(c)) => lower_conv(b, node, c, None),
            Op::Nn(nn::Op::FusedConv(f)) => lower_conv(b, node, &f.conv, Some(&f.activation)),
            _ => unreachable!(),
        },
        Lowering::Pool => match &node.op {
            Op::Nn(nn::Op::Pool(p)) => lower_pool(b, node, p),
            _ => unreachable!(),
        },
        Lowering::GlobalAveragePool => {
            let x = b.value(req(node, 0)?)?;
            let y = output0(b, node)?;
            b.add(
                &node.name,
                "ReduceMean",
                vec![
                    Param::U32s("axes", vec![2], vec![2, 3]),
                    Param::Bool("keep_dims", true),
                ],
                &[x],
                &[y],
            )
        }
        Lowering::Gemm => match &node.op {
            Op::Nn(nn::Op::Gemm(gm)) => lower_gemm(b, node, gm, None),
            Op::Nn(nn::Op::FusedGemm(f)) => lower_gemm(b, node, &f.gemm, Some(&f.activation)),
            _ => unreachable!(),
        },
        Lowering::MatMulBias => match &node.op {
            Op::Nn(nn::Op::MatMulBias(mb)) => lower_matmul_bias(b, node, mb.activation.as_ref()),
            _ => unreachable!(),
        },
        Lowering::Softmax => match &node.op {
            Op::Reduce(rd::Op::Softmax(s)) => lower_softmax(b, node, s),
            _ => unreachable!(),
        },
        Lowering::Transpose => {
            let Op::Tensor(tn::Op::Transpose(t)) = &node.op else {
                unreachable!()
            };
            let xid = req(node, 0)?;
            let (_, xd) = b.info(xid)?;
            let r = xd.len();
            let perm: Vec<u32> = match &t.perm {
                Some(p) => p
                    .iter()
                    .map(|&a| normalize_axis(a, r).map(|a| a as u32))
                    .collect::<Result<_>>()?,
                None => (0..r as u32).rev().collect(),
            };
            let x = b.value(xid)?;
            let y = output0(b, node)?;
            b.add(
                &node.name,
                "Transpose",
                vec![Param::U32s("perm", vec![r], perm)],
                &[x],
                &[y],
            )
        }
        Lowering::Concat => {
            let Op::Tensor(tn::Op::Concat(c)) = &node.op else {
                unreachable!()
            };
            let (_, yd) = b.info(output_id(node)?)?;
            let axis = normalize_axis(c.axis, yd.len())? as u32;
            let mut ins = Vec::new();
            for id in node.inputs.iter().flatten() {
                ins.push(b.value(*id)?);
            }
            let y = output0(b, node)?;
            b.add(
                &node.name,
                "Concat",
                vec![Param::U32("axis", axis)],
                &ins,
                &[y],
            )
        }
        Lowering::Clip => {
            let Op::Elementwise(ew::Op::Clip(c)) = &node.op else {
                unreachable!()
            };
            let (lo, hi) = clip_bounds(b.g, node, c)?;
            let x = b.value(req(node, 0)?)?;
            let y = output0(b, node)?;
            relu_min_max(b, &node.name, lo, hi, x, y)
        }
        Lowering::LayerNorm => {
            let Op::Reduce(rd::Op::LayerNormalization(l)) = &node.op else {
                unreachable!()
            };
            lower_layer_norm(b, node, l)
        }
        Lowering::Lrn => {
            let Op::Reduce(rd::Op::Lrn(l)) = &node.op else {
                unreachable!()
            };
            let (dt, yd) = b.info(output_id(node)?)?;
            let x = to_nhwc(b, &node.name, req(node, 0)?)?;
            let t = b.native(dt, &[yd[0], yd[2], yd[3], yd[1]])?;
            b.add(
                &node.name,
                "Lrn",
                vec![
                    Param::I32("radius", ((l.size - 1) / 2) as i32),
                    Param::F32("alpha", l.alpha / l.size as f32),
                    Param::F32("beta", l.beta),
                    Param::F32("bias", l.bias),
                    Param::U32("region", 0),
                ],
                &[x],
                &[t],
            )?;
            from_nhwc(b, node, t, None)
        }
        Lowering::BatchNorm => {
            let Op::Reduce(rd::Op::BatchNormalization(bn)) = &node.op else {
                unreachable!()
            };
            lower_batch_norm(b, node, bn)
        }
    }
}

/// Inference BatchNormalization as QNN's Batchnorm over the channel-last layout, with
/// `scale / sqrt(var + eps)` as its weights and `bias - mean * weights` as its bias.
fn lower_batch_norm(b: &mut Builder<'_>, node: &Node, bn: &rd::BatchNormalization) -> Result<()> {
    let xid = req(node, 0)?;
    let (dt, xd) = b.info(xid)?;
    let stat =
        |k: usize, what: &str| -> Result<Vec<f64>> { constant(b.g, node, k, what)?.to_f64_vec() };
    let scale = stat(1, "BatchNormalization's scale")?;
    let bias = stat(2, "BatchNormalization's bias")?;
    let mean = stat(3, "BatchNormalization's mean")?;
    let var = stat(4, "BatchNormalization's variance")?;
    let c = xd.get(1).copied().unwrap_or(0);
    if [&scale, &bias, &mean, &var].iter().any(|v| v.len() != c) {
        return Err(Error::unsupported(format!(
            "BatchNormalization's statistics must have {c} values (the channels)"
        )));
    }
    let w: Vec<f64> = scale
        .iter()
        .zip(&var)
        .map(|(s, v)| s / (v + f64::from(bn.epsilon)).sqrt())
        .collect();
    let bb: Vec<f64> = bias
        .iter()
        .zip(&mean)
        .zip(&w)
        .map(|((b, m), w)| b - m * w)
        .collect();
    let wt = b.static_data(dt, &[c], float_bytes(dt, &w)?)?;
    let bt = b.static_data(dt, &[c], float_bytes(dt, &bb)?)?;
    if xd.len() == 2 {
        let x = b.value(xid)?;
        let y = output0(b, node)?;
        return b.add(&node.name, "Batchnorm", vec![], &[x, wt, bt], &[y]);
    }
    let x = to_nhwc(b, &node.name, xid)?;
    let t = b.native(dt, &[xd[0], xd[2], xd[3], xd[1]])?;
    b.add(&node.name, "Batchnorm", vec![], &[x, wt, bt], &[t])?;
    from_nhwc(b, node, t, None)
}

/// LayerNorm over the last axis. QNN refuses (3110, "incorrect Value") gamma and beta of
/// more than one dim, so a normalization over several trailing axes runs on `x` reshaped
/// to `[outer..., prod(normalized)]` with flat gamma and beta, and is reshaped back.
fn lower_layer_norm(b: &mut Builder<'_>, node: &Node, l: &rd::LayerNormalization) -> Result<()> {
    let xid = req(node, 0)?;
    let (dt, xd) = b.info(xid)?;
    let axis = normalize_axis(l.axis, xd.len())?;
    let params = |r: usize| {
        vec![
            Param::F32("epsilon", l.epsilon),
            Param::U32s("axes", vec![1], vec![r as u32 - 1]),
        ]
    };
    let x = b.value(xid)?;
    if axis + 1 == xd.len() {
        let mut ins = vec![x, b.value(req(node, 1)?)?];
        if let Some(bias) = input(node, 2) {
            ins.push(b.value(bias)?);
        }
        let y = output0(b, node)?;
        return b.add(&node.name, "LayerNorm", params(xd.len()), &ins, &[y]);
    }
    let inner: usize = xd[axis..].iter().product();
    let mut fd = xd[..axis].to_vec();
    fd.push(inner);
    let xf = b.native(dt, &fd)?;
    b.add(
        &format!("{}/flatten", node.name),
        "Reshape",
        vec![],
        &[x],
        &[xf],
    )?;
    let mut ins = vec![xf];
    for k in [1, 2] {
        let Some(id) = input(node, k) else { continue };
        let t = match b.constant(id) {
            Some(c) => {
                let (cdt, bytes) = (c.dtype(), c.raw_bytes().to_vec());
                b.static_data(cdt, &[inner], Bytes::from(bytes))?
            }
            None => {
                let (cdt, _) = b.info(id)?;
                let v = b.value(id)?;
                let t = b.native(cdt, &[inner])?;
                b.add(
                    &format!("{}/flatten{k}", node.name),
                    "Reshape",
                    vec![],
                    &[v],
                    &[t],
                )?;
                t
            }
        };
        ins.push(t);
    }
    let yf = b.native(dt, &fd)?;
    b.add(&node.name, "LayerNorm", params(fd.len()), &ins, &[yf])?;
    let y = output0(b, node)?;
    b.add(
        &format!("{}/unflatten", node.name),
        "Reshape",
        vec![],
        &[yf],
        &[y],
    )
}

fn req(node: &Node, k: usize) -> Result<usize> {
    input(node, k)
        .ok_or_else(|| Error::unsupported(format!("input {k} of {} is missing", node.op.name())))
}

fn output_id(node: &Node) -> Result<usize> {
    node.outputs
        .first()
        .copied()
        .flatten()
        .ok_or_else(|| Error::unsupported("the node's first output is unused"))
}

fn output0(b: &mut Builder<'_>, node: &Node) -> Result<ffi::Tensor> {
    let id = output_id(node)?;
    b.value(id)
}

fn outputs(b: &mut Builder<'_>, node: &Node) -> Result<Vec<ffi::Tensor>> {
    let mut outs = Vec::new();
    for &o in node.outputs.iter().flatten() {
        outs.push(b.value(o)?);
    }
    Ok(outs)
}

fn relu_min_max(
    b: &mut Builder<'_>,
    name: &str,
    lo: f32,
    hi: f32,
    x: ffi::Tensor,
    y: ffi::Tensor,
) -> Result<()> {
    b.add(
        name,
        "ReluMinMax",
        vec![Param::F32("min_value", lo), Param::F32("max_value", hi)],
        &[x],
        &[y],
    )
}

/// The activation of a fused op, from `x` into `y`.
fn activation(
    b: &mut Builder<'_>,
    name: &str,
    a: &FusedActivation,
    x: ffi::Tensor,
    y: ffi::Tensor,
) -> Result<()> {
    let name = format!("{name}/{}", a.name());
    match a {
        FusedActivation::Activation(ActivationKind::Relu) => {
            b.add(&name, "Relu", vec![], &[x], &[y])
        }
        FusedActivation::Activation(ActivationKind::Sigmoid) => {
            b.add(&name, "Sigmoid", vec![], &[x], &[y])
        }
        FusedActivation::Activation(ActivationKind::Gelu { tanh: false }) => {
            b.add(&name, "Gelu", vec![], &[x], &[y])
        }
        FusedActivation::Tanh => b.add(&name, "Tanh", vec![], &[x], &[y]),
        FusedActivation::Clip { min, max } => relu_min_max(b, &name, *min, *max, x, y),
        other => Err(Error::unsupported(format!(
            "the fused activation {} has no QNN lowering here",
            other.name()
        ))),
    }
}

/// The result tensor of a fused op's base: the node's output when there is no activation,
/// else a new intermediate of the output's type.
fn base_output(
    b: &mut Builder<'_>,
    node: &Node,
    act: Option<&FusedActivation>,
) -> Result<ffi::Tensor> {
    match act {
        None => output0(b, node),
        Some(_) => {
            let id = output_id(node)?;
            let (_, d) = b.info(id)?;
            b.native_as(id, &d)
        }
    }
}

/// `t`'s elements permuted: output dim `i` is input dim `perm[i]` (raw bytes, any dtype).
fn permute(t: &Tensor, perm: &[usize]) -> (Vec<usize>, Bytes) {
    let src = t.raw_bytes();
    let es = t.dtype().size();
    let d = t.shape();
    let r = d.len();
    let out_dims: Vec<usize> = perm.iter().map(|&p| d[p]).collect();
    let mut in_strides = vec![1usize; r];
    for i in (0..r.saturating_sub(1)).rev() {
        in_strides[i] = in_strides[i + 1] * d[i + 1];
    }
    let n: usize = d.iter().product();
    let mut out = Vec::with_capacity(n * es);
    let mut idx = vec![0usize; r];
    for _ in 0..n {
        let off: usize = (0..r).map(|i| idx[i] * in_strides[perm[i]]).sum();
        out.extend_from_slice(&src[off * es..(off + 1) * es]);
        for i in (0..r).rev() {
            idx[i] += 1;
            if idx[i] < out_dims[i] {
                break;
            }
            idx[i] = 0;
        }
    }
    (out_dims, Bytes::from(out))
}

/// Float values as a tensor's bytes in `dtype` (f32 or f16).
fn float_bytes(dtype: DType, v: &[f64]) -> Result<Bytes> {
    Ok(match dtype {
        DType::F32 => {
            let f: Vec<f32> = v.iter().map(|&x| x as f32).collect();
            Bytes::copy_from_slice(bytemuck::cast_slice(&f))
        }
        DType::F16 => {
            let f: Vec<u16> = v
                .iter()
                .map(|&x| half::f16::from_f64(x).to_bits())
                .collect();
            Bytes::copy_from_slice(bytemuck::cast_slice(&f))
        }
        other => {
            return Err(Error::unsupported(format!(
                "QNN float weights here are f32 or f16, not {other}"
            )))
        }
    })
}

/// The `[n]` bias of a Conv or Gemm (input 2; zeros when absent). `shape` turns the
/// constant into `n` values (`None`: as they are). Float for a float op; for a QDQ unit
/// (input and weights quantised, see `crate::qdq`) int32 at scale `input scale × weight
/// scale`, zero point 0, as HTP's fixed-point kernels take it.
fn bias_tensor(
    b: &mut Builder<'_>,
    node: &Node,
    dt: DType,
    n: usize,
    mut shape: impl FnMut(&Tensor) -> Result<Option<Vec<f64>>>,
) -> Result<ffi::Tensor> {
    let xq = input(node, 0).and_then(|id| b.quant_of(id));
    let wq = input(node, 1).and_then(|id| b.quant_of(id));
    let v = match input(node, 2) {
        None => vec![0.0; n],
        Some(id) if b.constant(id).is_none() && xq.is_none() => {
            // A bias computed by the graph: read as a tensor.
            return b.value(id);
        }
        Some(_) => {
            let c = constant(b.g, node, 2, "the bias")?.clone();
            match shape(&c)? {
                Some(v) => v,
                None => c.to_f64_vec()?,
            }
        }
    };
    if v.len() != n {
        return Err(Error::unsupported(format!(
            "the bias has {} values for {n} outputs",
            v.len()
        )));
    }
    match (xq, wq) {
        (Some((sx, _)), Some((sw, _))) => {
            let scale = sx * sw;
            let q: Vec<i32> = v
                .iter()
                .map(|&x| {
                    (x / f64::from(scale))
                        .round()
                        .clamp(i32::MIN as f64, i32::MAX as f64) as i32
                })
                .collect();
            let bytes = Bytes::copy_from_slice(bytemuck::cast_slice(&q));
            b.static_quantized(DType::I32, &[n], bytes, Some((scale, 0)))
        }
        _ => b.static_data(dt, &[n], float_bytes(dt, &v)?),
    }
}

/// NCHW `x` into a new NHWC intermediate.
fn to_nhwc(b: &mut Builder<'_>, name: &str, xid: usize) -> Result<ffi::Tensor> {
    if let Some(t) = b.nhwc_of(xid) {
        // Made in NHWC by the op before: no Transpose pair between them.
        return Ok(t);
    }
    let (_, d) = b.info(xid)?;
    let x = b.value(xid)?;
    let t = b.native_as(xid, &[d[0], d[2], d[3], d[1]])?;
    b.add(
        &format!("{name}/to_nhwc"),
        "Transpose",
        vec![Param::U32s("perm", vec![4], vec![0, 2, 3, 1])],
        &[x],
        &[t],
    )?;
    Ok(t)
}

/// The NHWC result `t` of a node into its NCHW output, through `act` when fused.
fn from_nhwc(
    b: &mut Builder<'_>,
    node: &Node,
    t: ffi::Tensor,
    act: Option<&FusedActivation>,
) -> Result<()> {
    let (_, d) = b.info(output_id(node)?)?;
    let nhwc = [d[0], d[2], d[3], d[1]];
    let t = match act {
        None => t,
        Some(a) => {
            let u = b.native_as(output_id(node)?, &nhwc)?;
            activation(b, &node.name, a, t, u)?;
            u
        }
    };
    // The Transpose back to NCHW is added when something reads the NCHW value; the next
    // NHWC op reads `t` itself (see `to_nhwc`).
    b.defer_nchw(output_id(node)?, t);
    Ok(())
}

fn pads(g: &nn::Geometry) -> Param {
    Param::U32s(
        "pad_amount",
        vec![2, 2],
        vec![
            g.pads_begin[0] as u32,
            g.pads_end[0] as u32,
            g.pads_begin[1] as u32,
            g.pads_end[1] as u32,
        ],
    )
}

fn u32x2(name: &'static str, v: &[usize]) -> Param {
    Param::U32s(name, vec![2], vec![v[0] as u32, v[1] as u32])
}

fn lower_conv(
    b: &mut Builder<'_>,
    node: &Node,
    c: &nn::Conv,
    act: Option<&FusedActivation>,
) -> Result<()> {
    let xid = req(node, 0)?;
    let (dt, xd) = b.info(xid)?;
    let w = constant(b.g, node, 1, "the Conv weight")?.clone();
    let wd = w.shape().to_vec();
    if xd.len() != 4 || wd.len() != 4 {
        return Err(Error::unsupported("only 2-D convolutions are lowered"));
    }
    let geo = c.window.geometry(&xd[2..], &wd[2..])?;
    let (cin, cout, group) = (xd[1], wd[0], c.group);
    // OIHW -> HWIO ([kh, kw, Cin/group, Cout]); a depthwise weight [C, 1, kh, kw] becomes
    // [kh, kw, 1, C], which is DepthWiseConv2d's layout too.
    let (hwio_dims, hwio) = permute(&w, &[2, 3, 1, 0]);
    let wq = input(node, 1).and_then(|id| b.quant_of(id));
    let wt = b.static_quantized(w.dtype(), &hwio_dims, hwio, wq)?;
    let bias = bias_tensor(b, node, dt, cout, |_| Ok(None))?;
    let x = to_nhwc(b, &node.name, xid)?;
    let oid = output_id(node)?;
    let (_, yd) = b.info(oid)?;
    let t = b.native_as(oid, &[yd[0], yd[2], yd[3], yd[1]])?;
    let mut params = vec![
        u32x2("stride", &geo.strides),
        pads(&geo),
        u32x2("dilation", &geo.dilations),
    ];
    let depthwise = group > 1 && group == cin && cout == cin;
    let ty = if depthwise {
        "DepthWiseConv2d"
    } else {
        params.push(Param::U32("group", group as u32));
        "Conv2d"
    };
    b.add(&node.name, ty, params, &[x, wt, bias], &[t])?;
    from_nhwc(b, node, t, act)
}

fn lower_pool(b: &mut Builder<'_>, node: &Node, p: &nn::Pool) -> Result<()> {
    let xid = req(node, 0)?;
    let (dt, xd) = b.info(xid)?;
    let k = p
        .window
        .kernel_shape
        .clone()
        .ok_or_else(|| Error::unsupported("the pool has no kernel_shape"))?;
    let mut geo = p.window.geometry(&xd[2..], &k)?;
    let declared_end = geo.pads_end.clone();
    if p.window.ceil_mode {
        // Pad the end so that rounding down gives ceil_mode's size.
        for i in 0..2 {
            let need = (geo.out[i] - 1) * geo.strides[i] + geo.extent(i);
            geo.pads_end[i] = need.saturating_sub(xd[2 + i] + geo.pads_begin[i]);
        }
    }
    let mut x = to_nhwc(b, &node.name, xid)?;
    let (_, yd) = b.info(output_id(node)?)?;
    let padded = geo.pads_begin.iter().chain(&geo.pads_end).any(|&v| v != 0);
    if padded {
        // QNN's pools pad with zeros and count them (measured on the ONNX pool cases:
        // test_maxpool_2d_pads, test_averagepool_2d_precomputed_pads): pad explicitly, with
        // a value no element is below for MaxPool, and pool without padding.
        let fill = match p.kind {
            PoolKind::Max { .. } => f32::MIN,
            _ => 0.0,
        };
        let pd = [
            xd[0],
            xd[2] + geo.pads_begin[0] + geo.pads_end[0],
            xd[3] + geo.pads_begin[1] + geo.pads_end[1],
            xd[1],
        ];
        let t = b.native(dt, &pd)?;
        b.add(
            &format!("{}/pad", node.name),
            "Pad",
            vec![
                Param::U32("scheme", 0),
                Param::U32s(
                    "pad_amount",
                    vec![4, 2],
                    vec![
                        0,
                        0,
                        geo.pads_begin[0] as u32,
                        geo.pads_end[0] as u32,
                        geo.pads_begin[1] as u32,
                        geo.pads_end[1] as u32,
                        0,
                        0,
                    ],
                ),
                Param::F32("pad_constant_value", fill),
            ],
            &[x],
            &[t],
        )?;
        x = t;
    }
    let nhwc = [yd[0], yd[2], yd[3], yd[1]];
    let t = b.native_as(output_id(node)?, &nhwc)?;
    let mut params = vec![
        u32x2("filter_size", &geo.kernel),
        u32x2("stride", &geo.strides),
        Param::U32s("pad_amount", vec![2, 2], vec![0; 4]),
    ];
    let ty = match p.kind {
        PoolKind::Max { .. } => "PoolMax2d",
        PoolKind::Average { .. } => {
            params.push(Param::Bool("count_pad_for_edges", true));
            "PoolAvg2d"
        }
        PoolKind::Lp { .. } => return Err(Error::unsupported("LpPool has no lowering")),
    };
    b.add(&node.name, ty, params, &[x], &[t])?;
    let PoolKind::Average { count_include_pad } = p.kind else {
        return from_nhwc(b, node, t, None);
    };
    // Each window summed over its whole extent; ONNX divides by the positions inside the
    // input (and inside the declared pads, with count_include_pad).
    let window = (geo.kernel[0] * geo.kernel[1]) as f64;
    let counted = |i: usize, o: usize| -> usize {
        let start = (o * geo.strides[i]) as isize - geo.pads_begin[i] as isize;
        let (lo, hi) = if count_include_pad {
            (
                -(geo.pads_begin[i] as isize),
                (xd[2 + i] + declared_end[i]) as isize,
            )
        } else {
            (0, xd[2 + i] as isize)
        };
        let end = start + geo.kernel[i] as isize;
        (end.min(hi) - start.max(lo)).max(0) as usize
    };
    let mut map = Vec::with_capacity(yd[2] * yd[3]);
    for oh in 0..yd[2] {
        for ow in 0..yd[3] {
            let n = counted(0, oh) * counted(1, ow);
            map.push(if n == 0 { 0.0 } else { window / n as f64 });
        }
    }
    if map.iter().all(|&v| v == 1.0) {
        return from_nhwc(b, node, t, None);
    }
    let m = b.static_data(dt, &[1, yd[2], yd[3], 1], float_bytes(dt, &map)?)?;
    let u = b.native(dt, &nhwc)?;
    b.add(
        &format!("{}/count", node.name),
        "ElementWiseMultiply",
        vec![],
        &[t, m],
        &[u],
    )?;
    from_nhwc(b, node, u, None)
}

fn lower_gemm(
    b: &mut Builder<'_>,
    node: &Node,
    gm: &nn::Gemm,
    act: Option<&FusedActivation>,
) -> Result<()> {
    let aid = req(node, 0)?;
    let (dt, ad) = b.info(aid)?;
    let w = constant(b.g, node, 1, "Gemm's B (FullyConnected weights)")?.clone();
    // FullyConnected takes [N, K]: B as given when trans_b, else transposed.
    let (wd, wbytes) = if gm.trans_b {
        (w.shape().to_vec(), w.raw_bytes().to_vec().into())
    } else {
        permute(&w, &[1, 0])
    };
    let n = wd[0];
    let wt = if gm.alpha != 1.0 {
        let t = Tensor::from_bytes(w.dtype(), wd.clone(), wbytes)?;
        let v: Vec<f64> = t
            .to_f64_vec()?
            .iter()
            .map(|x| x * f64::from(gm.alpha))
            .collect();
        b.static_data(dt, &wd, float_bytes(dt, &v)?)?
    } else {
        let wq = input(node, 1).and_then(|id| b.quant_of(id));
        b.static_quantized(w.dtype(), &wd, wbytes, wq)?
    };
    // The bias: C (a scalar, [N] or [1, N]) times beta, as [N]; C of [M, N] or [M, 1] is
    // added after.
    let mut add_after = None;
    let bias = bias_tensor(b, node, dt, n, |c| {
        let v: Vec<f64> = c
            .to_f64_vec()?
            .iter()
            .map(|x| x * f64::from(gm.beta))
            .collect();
        if v.len() == 1 {
            Ok(Some(vec![v[0]; n]))
        } else if v.len() == n && c.shape().last() == Some(&n) {
            Ok(Some(v))
        } else {
            add_after = Some((c.shape().to_vec(), v));
            Ok(Some(vec![0.0; n]))
        }
    })?;
    let a = if gm.trans_a {
        let a = b.value(aid)?;
        let t = b.native(dt, &[ad[1], ad[0]])?;
        b.add(
            &format!("{}/trans_a", node.name),
            "Transpose",
            vec![Param::U32s("perm", vec![2], vec![1, 0])],
            &[a],
            &[t],
        )?;
        t
    } else {
        b.value(aid)?
    };
    let (_, yd) = b.info(output_id(node)?)?;
    match add_after {
        None => {
            let y = base_output(b, node, act)?;
            b.add(&node.name, "FullyConnected", vec![], &[a, wt, bias], &[y])?;
            if let Some(f) = act {
                let y2 = output0(b, node)?;
                activation(b, &node.name, f, y, y2)?;
            }
            Ok(())
        }
        Some((cd, v)) => {
            let t = b.native(dt, &yd)?;
            b.add(&node.name, "FullyConnected", vec![], &[a, wt, bias], &[t])?;
            let c = b.static_data(dt, &cd, float_bytes(dt, &v)?)?;
            let y = base_output(b, node, act)?;
            b.add(
                &format!("{}/add_c", node.name),
                "ElementWiseAdd",
                vec![],
                &[t, c],
                &[y],
            )?;
            if let Some(f) = act {
                let y2 = output0(b, node)?;
                activation(b, &node.name, f, y, y2)?;
            }
            Ok(())
        }
    }
}

fn lower_matmul_bias(
    b: &mut Builder<'_>,
    node: &Node,
    act: Option<&FusedActivation>,
) -> Result<()> {
    let (dt, yd) = b.info(output_id(node)?)?;
    let a = b.value(req(node, 0)?)?;
    let w = b.value(req(node, 1)?)?;
    let bias = b.value(req(node, 2)?)?;
    // The product's shape: the output's, before the bias broadcast (the same unless the
    // bias adds dims, which MatMulBias's fusion never makes).
    let t = b.native(dt, &yd)?;
    b.add(
        &format!("{}/matmul", node.name),
        "MatMul",
        vec![
            Param::Bool("transpose_in0", false),
            Param::Bool("transpose_in1", false),
        ],
        &[a, w],
        &[t],
    )?;
    let y = base_output(b, node, act)?;
    b.add(&node.name, "ElementWiseAdd", vec![], &[t, bias], &[y])?;
    if let Some(f) = act {
        let y2 = output0(b, node)?;
        activation(b, &node.name, f, y, y2)?;
    }
    Ok(())
}

fn lower_softmax(b: &mut Builder<'_>, node: &Node, s: &rd::Softmax) -> Result<()> {
    let xid = req(node, 0)?;
    let (dt, xd) = b.info(xid)?;
    let r = xd.len();
    let axis = normalize_axis(s.axis, r)?;
    let x = b.value(xid)?;
    let y = output0(b, node)?;
    let params = |axis: usize| vec![Param::U32("axis", axis as u32), Param::F32("beta", 1.0)];
    if axis + 1 == r {
        return b.add(&node.name, "Softmax", params(axis), &[x], &[y]);
    }
    // Swap the axis with the last one, softmax over the last, swap back.
    let mut perm: Vec<usize> = (0..r).collect();
    perm.swap(axis, r - 1);
    let pd: Vec<usize> = perm.iter().map(|&p| xd[p]).collect();
    let perm32: Vec<u32> = perm.iter().map(|&p| p as u32).collect();
    let t = b.native(dt, &pd)?;
    b.add(
        &format!("{}/to_last", node.name),
        "Transpose",
        vec![Param::U32s("perm", vec![r], perm32.clone())],
        &[x],
        &[t],
    )?;
    let u = b.native(dt, &pd)?;
    b.add(&node.name, "Softmax", params(r - 1), &[t], &[u])?;
    b.add(
        &format!("{}/from_last", node.name),
        "Transpose",
        vec![Param::U32s("perm", vec![r], perm32)],
        &[u],
        &[y],
    )
}
