//! How each xnpu op becomes QNN ops (package `qti.aisw`): [`Lowering::of`] reads the typed
//! op and says how it is lowered, written from the reference (`../shared/reference/qnn.md`
//! §6), and one function per [`Lowering`] adds its QNN nodes. A lowering may emit several
//! QNN nodes (layout transposes around NHWC ops, for example) through the [`Builder`].
//!
//! QNN's 2-D convolutions and pools take NHWC tensors, and xnpu's (ONNX's) are NCHW: those
//! lowerings put a Transpose to NHWC before the op and one back after it, and rearrange the
//! convolution weights (OIHW to HWIO) into a new STATIC tensor. Attributes a lowering needs
//! as constants (weights, Clip bounds) must be constants of the graph; [`check`] says so
//! before the partitioner places the node.

use xnpu_core::shape::normalize_axis;
use xnpu_core::{Bytes, DType, Error, Result, Tensor};
use xnpu_graph::{Graph, Node, Op};
use xnpu_ops::elementwise::{self as ew, ActivationKind, BinaryKind, UnaryKind, VariadicKind};
use xnpu_ops::nn::{self, FusedActivation, GlobalKind, PoolKind};
use xnpu_ops::reduce::{self as rd, SoftmaxKind};
use xnpu_ops::tensor as tn;

use crate::ffi;
use crate::graph::{Builder, Param};

/// How one xnpu op becomes QNN ops, holding the parts of the typed op its lowering reads.
/// [`Lowering::of`] is the only way to one, so no lowering is handed an op it cannot take.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Lowering<'a> {
    /// Same inputs and outputs, no params: the QNN op named.
    Direct(&'static str),
    /// Max, Min or Sum as the binary QNN op `qnn` (QNN's take exactly two inputs).
    Pairwise {
        qnn: &'static str,
        kind: VariadicKind,
    },
    /// Gelu as QNN's Gelu, which is the erf form (the tanh form is refused).
    Gelu { tanh: bool },
    /// `MatMul` with `transpose_in0`/`transpose_in1` false.
    MatMul,
    /// Reshape, Flatten, Squeeze and Unsqueeze as `Reshape` of input 0; the output's dims
    /// give the shape (a shape input is dropped).
    Reshape,
    /// QuantizeLinear as QNN's Quantize of input 0; the scale and zero point (constant, per
    /// tensor) become the fixed-point output's encoding.
    Quantize,
    /// DequantizeLinear as QNN's Dequantize of input 0, whose encoding the scale and zero
    /// point give (a DequantizeLinear of constants is folded instead, see `crate::qdq`).
    Dequantize,
    /// NCHW Conv (or FusedConv) as Transpose, Conv2d / DepthWiseConv2d (HWIO weights),
    /// the activation if fused, Transpose.
    Conv {
        conv: &'a nn::Conv,
        activation: Option<&'a FusedActivation>,
    },
    /// MaxPool / AveragePool as Transpose, PoolMax2d / PoolAvg2d, Transpose. A padded pool
    /// pads explicitly first (Pad with the lowest float for MaxPool, zeros for
    /// AveragePool), because QNN's pools pad with zeros and count the padding; an
    /// AveragePool whose windows cover padding is then scaled by a constant map of
    /// `window size / positions that count`.
    Pool {
        window: &'a nn::Window,
        kind: PoolType,
    },
    /// GlobalAveragePool as ReduceMean over H, W (keep_dims), no layout change.
    GlobalAveragePool,
    /// Gemm (or FusedGemm) as FullyConnected (weights `[N, K]`, alpha and beta folded into
    /// the constant weights and bias), then the activation if fused.
    Gemm {
        gemm: &'a nn::Gemm,
        activation: Option<&'a FusedActivation>,
    },
    /// MatMulBias as MatMul, ElementWiseAdd, then the activation if any.
    MatMulBias {
        activation: Option<&'a FusedActivation>,
    },
    /// Softmax (not LogSoftmax or Hardmax) over one axis: `axis` and `beta` params.
    Softmax(&'a rd::Softmax),
    /// Transpose with `perm`.
    Transpose(&'a tn::Transpose),
    /// Concat with `axis`.
    Concat(&'a tn::Concat),
    /// Clip as ReluMinMax with constant bounds.
    Clip(&'a ew::Clip),
    /// LayerNormalization as LayerNorm (x, gamma, beta; `epsilon`, `axes`).
    LayerNorm(&'a rd::LayerNormalization),
    /// LRN as Transpose, Lrn (ACROSS_CHANNEL, `radius` = (size-1)/2, `alpha` / size),
    /// Transpose.
    Lrn(&'a rd::Lrn),
    /// BatchNormalization (inference, constant statistics) as Transpose, Batchnorm with
    /// the folded per-channel scale and bias, Transpose.
    BatchNorm(&'a rd::BatchNormalization),
}

/// The 2-D pools QNN has (an LpPool has none).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PoolType {
    Max,
    Average { count_include_pad: bool },
}

impl<'a> Lowering<'a> {
    /// How `op` is lowered, or `None` when this backend has no lowering for it.
    pub fn of(op: &'a Op) -> Option<Lowering<'a>> {
        match op {
            Op::Elementwise(o) => Lowering::of_elementwise(o),
            Op::Nn(o) => Lowering::of_nn(o),
            Op::Tensor(o) => Lowering::of_tensor(o),
            Op::Reduce(o) => Lowering::of_reduce(o),
            _ => None,
        }
    }

    fn of_elementwise(op: &'a ew::Op) -> Option<Lowering<'a>> {
        Some(match op {
            ew::Op::Binary(b) => Lowering::Direct(match b.kind {
                BinaryKind::Add => "ElementWiseAdd",
                BinaryKind::Sub => "ElementWiseSubtract",
                BinaryKind::Mul => "ElementWiseMultiply",
                BinaryKind::Div => "ElementWiseDivide",
                _ => return None,
            }),
            ew::Op::Variadic(v) => Lowering::Pairwise {
                qnn: match v.kind {
                    VariadicKind::Max => "ElementWiseMaximum",
                    VariadicKind::Min => "ElementWiseMinimum",
                    VariadicKind::Sum => "ElementWiseAdd",
                    VariadicKind::Mean => return None,
                },
                kind: v.kind,
            },
            ew::Op::Activation(a) => match a.kind {
                ActivationKind::Relu => Lowering::Direct("Relu"),
                ActivationKind::Sigmoid => Lowering::Direct("Sigmoid"),
                ActivationKind::Gelu { tanh } => Lowering::Gelu { tanh },
                _ => return None,
            },
            ew::Op::Unary(u) => Lowering::Direct(match u.kind {
                UnaryKind::Tanh => "Tanh",
                UnaryKind::Exp => "ElementWiseExp",
                UnaryKind::Sqrt => "ElementWiseSquareRoot",
                UnaryKind::Neg => "ElementWiseNeg",
                UnaryKind::Abs => "ElementWiseAbs",
                _ => return None,
            }),
            ew::Op::Clip(c) => Lowering::Clip(c),
            _ => return None,
        })
    }

    fn of_nn(op: &'a nn::Op) -> Option<Lowering<'a>> {
        Some(match op {
            nn::Op::QuantizeLinear(_) => Lowering::Quantize,
            nn::Op::DequantizeLinear(_) => Lowering::Dequantize,
            nn::Op::MatMul(_) => Lowering::MatMul,
            nn::Op::Conv(conv) => Lowering::Conv {
                conv,
                activation: None,
            },
            nn::Op::FusedConv(f) => Lowering::Conv {
                conv: &f.conv,
                activation: Some(&f.activation),
            },
            nn::Op::Pool(p) => Lowering::Pool {
                window: &p.window,
                kind: match p.kind {
                    PoolKind::Max { .. } => PoolType::Max,
                    PoolKind::Average { count_include_pad } => {
                        PoolType::Average { count_include_pad }
                    }
                    PoolKind::Lp { .. } => return None,
                },
            },
            nn::Op::GlobalPool(p) if p.kind == GlobalKind::Average => Lowering::GlobalAveragePool,
            nn::Op::Gemm(gemm) => Lowering::Gemm {
                gemm,
                activation: None,
            },
            nn::Op::FusedGemm(f) => Lowering::Gemm {
                gemm: &f.gemm,
                activation: Some(&f.activation),
            },
            nn::Op::MatMulBias(mb) => Lowering::MatMulBias {
                activation: mb.activation.as_ref(),
            },
            _ => return None,
        })
    }

    fn of_tensor(op: &'a tn::Op) -> Option<Lowering<'a>> {
        Some(match op {
            tn::Op::Reshape(_) | tn::Op::Flatten(_) | tn::Op::Squeeze(_) | tn::Op::Unsqueeze(_) => {
                Lowering::Reshape
            }
            tn::Op::Transpose(t) => Lowering::Transpose(t),
            tn::Op::Concat(c) => Lowering::Concat(c),
            _ => return None,
        })
    }

    fn of_reduce(op: &'a rd::Op) -> Option<Lowering<'a>> {
        Some(match op {
            rd::Op::Softmax(s) if s.kind == SoftmaxKind::Softmax => Lowering::Softmax(s),
            rd::Op::LayerNormalization(l) => Lowering::LayerNorm(l),
            rd::Op::Lrn(l) => Lowering::Lrn(l),
            rd::Op::BatchNormalization(bn) => Lowering::BatchNorm(bn),
            _ => return None,
        })
    }

    /// QNN's type name of the main node (when the lowering emits several).
    pub fn qnn_type(&self) -> &'static str {
        match self {
            Lowering::Direct(qnn) | Lowering::Pairwise { qnn, .. } => qnn,
            Lowering::Gelu { .. } => "Gelu",
            Lowering::MatMul | Lowering::MatMulBias { .. } => "MatMul",
            Lowering::Reshape => "Reshape",
            Lowering::Quantize => "Quantize",
            Lowering::Dequantize => "Dequantize",
            Lowering::Conv { .. } => "Conv2d",
            Lowering::Pool { kind, .. } => kind.qnn_type(),
            Lowering::GlobalAveragePool => "ReduceMean",
            Lowering::Gemm { .. } => "FullyConnected",
            Lowering::Softmax(_) => "Softmax",
            Lowering::Transpose(_) => "Transpose",
            Lowering::Concat(_) => "Concat",
            Lowering::Clip(_) => "ReluMinMax",
            Lowering::LayerNorm(_) => "LayerNorm",
            Lowering::Lrn(_) => "Lrn",
            Lowering::BatchNorm(_) => "Batchnorm",
        }
    }

    /// The dtypes the lowering takes besides the float ones HTP computes on.
    pub fn extra_dtypes(&self) -> &'static [&'static str] {
        match self {
            // The shape input (dropped in the lowering) is i64.
            Lowering::Reshape => &["i64"],
            // The quantised side: fixed point with the scale and offset.
            Lowering::Quantize => &["u8", "i8", "u16"],
            // And int32 biases of a QDQ model, dequantised from constants (crate::qdq).
            Lowering::Dequantize => &["u8", "i8", "u16", "i32"],
            _ => &[],
        }
    }

    /// Whether the QNN ops read only input 0 as a graph tensor: weights QNN gets
    /// rearranged, bounds and statistics folded into params or static tensors, and a
    /// Reshape's shape are not read.
    fn reads_input0_only(&self) -> bool {
        matches!(
            self,
            Lowering::Reshape
                | Lowering::Conv { .. }
                | Lowering::Pool { .. }
                | Lowering::Clip(_)
                | Lowering::Lrn(_)
                | Lowering::BatchNorm(_)
                | Lowering::Gemm { .. }
                | Lowering::Quantize
                | Lowering::Dequantize
        )
    }
}

impl PoolType {
    fn qnn_type(self) -> &'static str {
        match self {
            PoolType::Max => "PoolMax2d",
            PoolType::Average { .. } => "PoolAvg2d",
        }
    }
}

/// One row of the capability table: an op as the IR names it and the QNN op it becomes.
#[derive(Clone, Debug, PartialEq)]
pub struct Mapping {
    /// xnpu's op name.
    pub op: &'static str,
    /// QNN's type name (of the main node, when the lowering emits several).
    pub qnn: &'static str,
    /// The dtypes the lowering takes besides the float ones ([`Lowering::extra_dtypes`]).
    pub extra_dtypes: &'static [&'static str],
}

/// One op of every kind [`Lowering::of`] takes, with default attributes: what the
/// capability table (which names ops as the IR does) and the tests enumerate.
pub fn lowered_ops() -> Vec<Op> {
    let mut ops = lowered_elementwise_ops();
    ops.extend(lowered_nn_ops());
    ops.extend(lowered_tensor_ops());
    ops.extend(lowered_reduce_ops());
    ops
}

fn lowered_elementwise_ops() -> Vec<Op> {
    let binary = |kind| Op::Elementwise(ew::Op::Binary(ew::Binary::new(kind)));
    let variadic = |kind| Op::Elementwise(ew::Op::Variadic(ew::Variadic { kind }));
    let unary = |kind| Op::Elementwise(ew::Op::Unary(ew::Unary { kind }));
    let activation = |kind| Op::Elementwise(ew::Op::Activation(ew::Activation { kind }));
    vec![
        binary(BinaryKind::Add),
        binary(BinaryKind::Sub),
        binary(BinaryKind::Mul),
        binary(BinaryKind::Div),
        variadic(VariadicKind::Max),
        variadic(VariadicKind::Min),
        variadic(VariadicKind::Sum),
        activation(ActivationKind::Relu),
        activation(ActivationKind::Sigmoid),
        activation(ActivationKind::Gelu { tanh: false }),
        unary(UnaryKind::Tanh),
        unary(UnaryKind::Exp),
        unary(UnaryKind::Sqrt),
        unary(UnaryKind::Neg),
        unary(UnaryKind::Abs),
        Op::Elementwise(ew::Op::Clip(ew::Clip {
            min: None,
            max: None,
        })),
    ]
}

fn lowered_nn_ops() -> Vec<Op> {
    let pool = |kind| {
        Op::Nn(nn::Op::Pool(nn::Pool {
            kind,
            window: nn::Window::default(),
        }))
    };
    let gemm = nn::Gemm {
        alpha: 1.0,
        beta: 1.0,
        trans_a: false,
        trans_b: false,
    };
    let relu = FusedActivation::Activation(ActivationKind::Relu);
    vec![
        Op::Nn(nn::Op::QuantizeLinear(nn::QuantizeLinear {
            axis: 1,
            block_size: 0,
            saturate: true,
            output_dtype: None,
            precision: None,
        })),
        Op::Nn(nn::Op::DequantizeLinear(nn::DequantizeLinear {
            axis: 1,
            block_size: 0,
            output_dtype: None,
        })),
        Op::Nn(nn::Op::MatMul(nn::MatMul)),
        Op::Nn(nn::Op::Conv(nn::Conv::default())),
        Op::Nn(nn::Op::FusedConv(nn::FusedConv {
            conv: nn::Conv::default(),
            activation: relu,
        })),
        pool(PoolKind::Max {
            column_major: false,
        }),
        pool(PoolKind::Average {
            count_include_pad: false,
        }),
        Op::Nn(nn::Op::GlobalPool(nn::GlobalPool {
            kind: GlobalKind::Average,
        })),
        Op::Nn(nn::Op::Gemm(gemm.clone())),
        Op::Nn(nn::Op::FusedGemm(nn::FusedGemm {
            gemm,
            activation: relu,
        })),
        Op::Nn(nn::Op::MatMulBias(nn::MatMulBias { activation: None })),
    ]
}

fn lowered_tensor_ops() -> Vec<Op> {
    vec![
        Op::Tensor(tn::Op::Reshape(tn::Reshape::default())),
        Op::Tensor(tn::Op::Flatten(tn::Flatten::default())),
        Op::Tensor(tn::Op::Squeeze(tn::Squeeze::default())),
        Op::Tensor(tn::Op::Unsqueeze(tn::Unsqueeze::default())),
        Op::Tensor(tn::Op::Transpose(tn::Transpose::default())),
        Op::Tensor(tn::Op::Concat(tn::Concat::default())),
    ]
}

fn lowered_reduce_ops() -> Vec<Op> {
    vec![
        Op::Reduce(rd::Op::Softmax(rd::Softmax {
            kind: SoftmaxKind::Softmax,
            axis: -1,
            coerce_2d: false,
        })),
        Op::Reduce(rd::Op::LayerNormalization(rd::LayerNormalization {
            axis: -1,
            epsilon: 1e-5,
            stash_type: DType::F32,
        })),
        Op::Reduce(rd::Op::Lrn(rd::Lrn {
            alpha: 1e-4,
            beta: 0.75,
            bias: 1.0,
            size: 5,
        })),
        Op::Reduce(rd::Op::BatchNormalization(rd::BatchNormalization {
            epsilon: 1e-5,
            momentum: 0.9,
            training_mode: false,
        })),
    ]
}

/// Every op this backend lowers, one row per op of [`lowered_ops`].
pub fn mappings() -> Vec<Mapping> {
    lowered_ops()
        .iter()
        .filter_map(|kind| {
            let l = Lowering::of(kind)?;
            Some(Mapping {
                op: kind.name(),
                qnn: l.qnn_type(),
                extra_dtypes: l.extra_dtypes(),
            })
        })
        .collect()
}

/// The xnpu values a node's QNN ops read as graph tensors (weights QNN gets rearranged,
/// bounds folded into params and a Reshape's shape are not).
pub fn reads(node: &Node) -> Vec<usize> {
    match Lowering::of(&node.op) {
        Some(l) if l.reads_input0_only() => input(node, 0).into_iter().collect(),
        _ => node.inputs.iter().flatten().copied().collect(),
    }
}

/// The node's op as users know it, for messages only: which lowering a node gets is
/// [`Lowering::of`]'s business, on the typed op.
fn op_name(node: &Node) -> &'static str {
    Op::name(&node.op)
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

/// Why QNN cannot take this node (attributes or inputs its lowering cannot express, or an
/// op of a lowered family that has no lowering), or `None`. Shapes and dtypes are the
/// capability table's business.
pub fn check(node: &Node, g: &Graph) -> Option<String> {
    check_inner(node, g).err().map(|e| e.to_string())
}

fn check_inner(node: &Node, g: &Graph) -> Result<()> {
    match Lowering::of(&node.op) {
        Some(l) => check_lowering(&l, node, g),
        None => {
            check_no_empty_tensors(node, g)?;
            check_unlowered(node, g)
        }
    }
}

fn refuse<T>(why: impl Into<String>) -> Result<T> {
    Err(Error::unsupported(why))
}

/// QNN's validation refuses empty tensors (measured on the conformance cases).
fn check_no_empty_tensors(node: &Node, g: &Graph) -> Result<()> {
    let empty = node
        .inputs
        .iter()
        .chain(&node.outputs)
        .flatten()
        .any(|&v| known_dims(g, v).is_some_and(|d| d.contains(&0)));
    if empty {
        return refuse("QNN takes no empty tensors (a dim of 0)");
    }
    Ok(())
}

/// What lowering `l` of `node` needs that the op's type does not say.
fn check_lowering(l: &Lowering<'_>, node: &Node, g: &Graph) -> Result<()> {
    check_no_empty_tensors(node, g)?;
    let rank0 = input(node, 0).and_then(|x| rank_of(g, x));
    match *l {
        Lowering::MatMul => matmul_check(g, node),
        Lowering::Pairwise { kind, .. } => pairwise_check(node, kind),
        Lowering::Quantize => quantized_check(g, node.outputs.first().copied().flatten()),
        Lowering::Dequantize if dequantizes_constants(g, node) => Ok(()),
        Lowering::Dequantize => quantized_check(g, input(node, 0)),
        Lowering::Gelu { tanh: true } => {
            refuse("QNN's Gelu is the erf form; the tanh approximation is not")
        }
        Lowering::Clip(c) => clip_bounds(g, node, c).map(|_| ()),
        Lowering::Conv { conv, activation } => {
            conv_check(g, node, conv)?;
            fused_activation_check(activation)
        }
        Lowering::Gemm { gemm, activation } => {
            gemm_check(g, node, gemm)?;
            fused_activation_check(activation)
        }
        Lowering::MatMulBias { activation } => fused_activation_check(activation),
        Lowering::Pool { window, .. } => pool_check(node, window, rank0),
        Lowering::GlobalAveragePool => global_pool_check(rank0),
        Lowering::Softmax(s) => softmax_check(s, rank0),
        Lowering::LayerNorm(l) => layer_norm_check(g, node, l),
        Lowering::Lrn(l) => lrn_check(l, rank0),
        Lowering::BatchNorm(bn) => batch_norm_check(g, node, bn, rank0),
        Lowering::Direct(_)
        | Lowering::Gelu { tanh: false }
        | Lowering::Reshape
        | Lowering::Transpose(_)
        | Lowering::Concat(_) => Ok(()),
    }
}

/// Why an op of a family QNN lowers in part has no lowering: the reasons a user would
/// look for (an LpPool is refused after the checks every pool gets).
fn check_unlowered(node: &Node, g: &Graph) -> Result<()> {
    let rank0 = input(node, 0).and_then(|x| rank_of(g, x));
    match &node.op {
        Op::Nn(nn::Op::Pool(p)) => {
            pool_check(node, &p.window, rank0)?;
            refuse("LpPool has no QNN lowering")
        }
        Op::Nn(nn::Op::GlobalPool(_)) => global_pool_check(rank0),
        Op::Reduce(rd::Op::Softmax(s)) => {
            refuse(format!("{} has no lowering", SoftmaxKind::op_name(s.kind)))
        }
        _ => Ok(()),
    }
}

/// QNN's MatMul takes operands of rank 2 or more (measured on the conformance cases).
fn matmul_check(g: &Graph, node: &Node) -> Result<()> {
    for k in 0..2 {
        if input(node, k)
            .and_then(|x| rank_of(g, x))
            .is_some_and(|r| r < 2)
        {
            return refuse("QNN's MatMul takes operands of rank 2 or more");
        }
    }
    Ok(())
}

/// QNN's elementwise Max, Min and Add take exactly two inputs (measured on the conformance
/// cases).
fn pairwise_check(node: &Node, kind: VariadicKind) -> Result<()> {
    let n = node.inputs.iter().flatten().count();
    if n != 2 {
        return refuse(format!(
            "QNN's elementwise {} takes exactly two inputs, this one has {n}",
            kind.name()
        ));
    }
    Ok(())
}

/// A DequantizeLinear of constants (a QDQ model's weights and int32 biases) is folded
/// into its readers or computed when lowering (crate::qdq).
fn dequantizes_constants(g: &Graph, node: &Node) -> bool {
    node.outputs
        .first()
        .copied()
        .flatten()
        .is_some_and(|y| crate::qdq::dequantized_constant(g, y).is_some())
}

/// The quantised side of a QuantizeLinear or DequantizeLinear that QNN runs: a value with
/// a per-tensor constant scale and zero point.
fn quantized_check(g: &Graph, quantized: Option<usize>) -> Result<()> {
    let known = crate::graph::quantized_values(g);
    if !quantized.is_some_and(|v| known.contains_key(&v)) {
        return refuse(
            "QNN takes per-tensor quantisation with a constant scale and zero point \
             (u8, i8 or u16); this one is per axis, blocked or computed",
        );
    }
    Ok(())
}

fn fused_activation_check(a: Option<&FusedActivation>) -> Result<()> {
    match a.and_then(activation_check) {
        Some(why) => refuse(why),
        None => Ok(()),
    }
}

/// What QNN's 2-D pools cannot do.
fn pool_check(node: &Node, w: &nn::Window, rank0: Option<usize>) -> Result<()> {
    if rank0.is_some_and(|r| r != 4) {
        return refuse("QNN pools here are 2-D (NCHW input) only");
    }
    if node.outputs.get(1).copied().flatten().is_some() {
        return refuse("QNN's PoolMax2d has no indices output");
    }
    if w.dilations.iter().any(|&d| d != 1) {
        return refuse("QNN's 2-D pools have no dilation");
    }
    let k = w.kernel_shape.as_deref().unwrap_or_default();
    if w.strides.iter().zip(k).any(|(&s, &k)| s > k) {
        // Measured: graphFinalize fails with 1002 (MEM_ALLOC) on the simulator for a 1x1
        // window with stride 2 (test_maxpool_2d_ceil_output_size_reduce_by_one).
        return refuse("QNN's 2-D pools with a stride larger than the window fail to finalize");
    }
    Ok(())
}

fn global_pool_check(rank0: Option<usize>) -> Result<()> {
    if rank0.is_some_and(|r| r != 4) {
        return refuse("GlobalAveragePool is lowered for 2-D (NCHW) input only");
    }
    Ok(())
}

fn softmax_check(s: &rd::Softmax, rank0: Option<usize>) -> Result<()> {
    if let Some(r) = rank0 {
        let axis = normalize_axis(s.axis, r)?;
        if s.coerce_2d && axis + 1 != r {
            return refuse(
                "Softmax before opset 13 over more than the last axis (it flattens) has no lowering",
            );
        }
    }
    Ok(())
}

fn layer_norm_check(g: &Graph, node: &Node, l: &rd::LayerNormalization) -> Result<()> {
    if node.outputs.iter().skip(1).any(|o| o.is_some()) {
        return refuse("QNN's LayerNorm has no mean / inverse std-dev outputs");
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
    Ok(())
}

fn lrn_check(l: &rd::Lrn, rank0: Option<usize>) -> Result<()> {
    if rank0.is_some_and(|r| r != 4) {
        return refuse("LRN is lowered for 2-D (NCHW) input only");
    }
    if l.size.is_multiple_of(2) {
        return refuse(format!(
            "LRN of even size {} has a lopsided window; QNN's Lrn takes a radius",
            l.size
        ));
    }
    Ok(())
}

fn batch_norm_check(
    g: &Graph,
    node: &Node,
    bn: &rd::BatchNormalization,
    rank0: Option<usize>,
) -> Result<()> {
    if bn.training_mode || node.outputs.iter().skip(1).any(|o| o.is_some()) {
        return refuse("BatchNormalization in training mode has no QNN lowering");
    }
    if rank0.is_some_and(|r| r != 4 && r != 2) {
        return refuse("BatchNormalization is lowered for NCHW or [N, C] input only");
    }
    for (k, what) in [(1, "scale"), (2, "bias"), (3, "mean"), (4, "variance")] {
        let c = constant(g, node, k, what).ok();
        if c.is_none_or(|c| c.rank() != 1) {
            return refuse(format!(
                "QNN's Batchnorm needs BatchNormalization's {what} as a 1-D constant"
            ));
        }
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
    let lowering = Lowering::of(&node.op)
        .ok_or_else(|| Error::unsupported(format!("QNN has no lowering for {}", op_name(node))))?;
    check_lowering(&lowering, node, b.g)?;
    match lowering {
        Lowering::Direct(_)
        | Lowering::Pairwise { .. }
        | Lowering::Gelu { .. }
        | Lowering::MatMul
        | Lowering::Reshape
        | Lowering::Quantize
        | Lowering::Dequantize => lower_direct(b, node, &lowering),
        Lowering::Conv { conv, activation } => lower_conv(b, node, conv, activation),
        Lowering::Pool { window, kind } => lower_pool(b, node, window, kind),
        Lowering::GlobalAveragePool => lower_global_average_pool(b, node),
        Lowering::Gemm { gemm, activation } => lower_gemm(b, node, gemm, activation),
        Lowering::MatMulBias { activation } => lower_matmul_bias(b, node, activation),
        Lowering::Softmax(s) => lower_softmax(b, node, s),
        Lowering::Transpose(t) => lower_transpose(b, node, t),
        Lowering::Concat(c) => lower_concat(b, node, c),
        Lowering::Clip(c) => lower_clip(b, node, c),
        Lowering::LayerNorm(l) => lower_layer_norm(b, node, l),
        Lowering::Lrn(l) => lower_lrn(b, node, l),
        Lowering::BatchNorm(bn) => lower_batch_norm(b, node, bn),
    }
}

/// One QNN node of the lowering's type on the values the node reads ([`reads`]) and all
/// its outputs; MatMul gets its transpose flags (false), the others no params.
fn lower_direct(b: &mut Builder<'_>, node: &Node, lowering: &Lowering<'_>) -> Result<()> {
    let mut ins = Vec::new();
    for id in reads(node) {
        ins.push(b.value(id)?);
    }
    let outs = outputs(b, node)?;
    let params = match lowering {
        Lowering::MatMul => vec![
            Param::Bool("transpose_in0", false),
            Param::Bool("transpose_in1", false),
        ],
        _ => Vec::new(),
    };
    b.add(&node.name, lowering.qnn_type(), params, &ins, &outs)
}

fn lower_global_average_pool(b: &mut Builder<'_>, node: &Node) -> Result<()> {
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

fn lower_transpose(b: &mut Builder<'_>, node: &Node, t: &tn::Transpose) -> Result<()> {
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

fn lower_concat(b: &mut Builder<'_>, node: &Node, c: &tn::Concat) -> Result<()> {
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

fn lower_clip(b: &mut Builder<'_>, node: &Node, c: &ew::Clip) -> Result<()> {
    let (lo, hi) = clip_bounds(b.g, node, c)?;
    let x = b.value(req(node, 0)?)?;
    let y = output0(b, node)?;
    relu_min_max(b, &node.name, lo, hi, x, y)
}

fn lower_lrn(b: &mut Builder<'_>, node: &Node, l: &rd::Lrn) -> Result<()> {
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
        .ok_or_else(|| Error::unsupported(format!("input {k} of {} is missing", op_name(node))))
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

/// `t`'s elements permuted: output dim `i` is input dim `perm[i]` (raw bytes, any dtype
/// whose elements are whole bytes).
fn permute(t: &Tensor, perm: &[usize]) -> Result<(Vec<usize>, Bytes)> {
    let src = t.raw_bytes();
    let es = t
        .dtype()
        .elem_bytes()
        .ok_or_else(|| Error::unsupported(format!("{} weights cannot be permuted", t.dtype())))?;
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
    Ok((out_dims, Bytes::from(out)))
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
    let (hwio_dims, hwio) = permute(&w, &[2, 3, 1, 0])?;
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

fn lower_pool(b: &mut Builder<'_>, node: &Node, window: &nn::Window, kind: PoolType) -> Result<()> {
    let xid = req(node, 0)?;
    let (dt, xd) = b.info(xid)?;
    let (geo, declared_end) = pool_geometry(window, &xd)?;
    let mut x = to_nhwc(b, &node.name, xid)?;
    let (_, yd) = b.info(output_id(node)?)?;
    if geo.pads_begin.iter().chain(&geo.pads_end).any(|&v| v != 0) {
        x = pad_for_pool(b, node, x, dt, &xd, &geo, kind)?;
    }
    let nhwc = [yd[0], yd[2], yd[3], yd[1]];
    let t = b.native_as(output_id(node)?, &nhwc)?;
    b.add(
        &node.name,
        kind.qnn_type(),
        pool_params(&geo, kind),
        &[x],
        &[t],
    )?;
    let PoolType::Average { count_include_pad } = kind else {
        return from_nhwc(b, node, t, None);
    };
    let map = average_pool_scale(&geo, &xd[2..], &yd[2..], &declared_end, count_include_pad);
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

/// The pool's geometry on the NCHW input dims `xd`, its end padded so that rounding down
/// gives ceil_mode's size, and the end pads the op declared.
fn pool_geometry(w: &nn::Window, xd: &[usize]) -> Result<(nn::Geometry, Vec<usize>)> {
    let k = w
        .kernel_shape
        .clone()
        .ok_or_else(|| Error::unsupported("the pool has no kernel_shape"))?;
    let mut geo = w.geometry(&xd[2..], &k)?;
    let declared_end = geo.pads_end.clone();
    if w.ceil_mode {
        // Pad the end so that rounding down gives ceil_mode's size.
        for i in 0..2 {
            let need = (geo.out[i] - 1) * geo.strides[i] + geo.extent(i);
            geo.pads_end[i] = need.saturating_sub(xd[2 + i] + geo.pads_begin[i]);
        }
    }
    Ok((geo, declared_end))
}

/// NHWC `x` (of the NCHW dims `xd`) padded as `geo` says, into a new intermediate. QNN's
/// pools pad with zeros and count them (measured on the ONNX pool cases:
/// test_maxpool_2d_pads, test_averagepool_2d_precomputed_pads): pad explicitly, with a
/// value no element is below for MaxPool, and pool without padding.
fn pad_for_pool(
    b: &mut Builder<'_>,
    node: &Node,
    x: ffi::Tensor,
    dt: DType,
    xd: &[usize],
    geo: &nn::Geometry,
    kind: PoolType,
) -> Result<ffi::Tensor> {
    let fill = match kind {
        PoolType::Max => f32::MIN,
        PoolType::Average { .. } => 0.0,
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
    Ok(t)
}

/// The params of QNN's pool over an input already padded.
fn pool_params(geo: &nn::Geometry, kind: PoolType) -> Vec<Param> {
    let mut params = vec![
        u32x2("filter_size", &geo.kernel),
        u32x2("stride", &geo.strides),
        Param::U32s("pad_amount", vec![2, 2], vec![0; 4]),
    ];
    if let PoolType::Average { .. } = kind {
        params.push(Param::Bool("count_pad_for_edges", true));
    }
    params
}

/// For each output position (`out_hw`, row-major) of an AveragePool over `in_hw`, the
/// factor that turns QNN's mean over the whole window into ONNX's: `window size /
/// positions that count`, those inside the input (and inside the declared pads, with
/// `count_include_pad`), or 0 where none does.
fn average_pool_scale(
    geo: &nn::Geometry,
    in_hw: &[usize],
    out_hw: &[usize],
    declared_end: &[usize],
    count_include_pad: bool,
) -> Vec<f64> {
    // Each window summed over its whole extent; ONNX divides by the positions inside the
    // input (and inside the declared pads, with count_include_pad).
    let window = (geo.kernel[0] * geo.kernel[1]) as f64;
    let counted = |i: usize, o: usize| -> usize {
        let start = (o * geo.strides[i]) as isize - geo.pads_begin[i] as isize;
        let (lo, hi) = if count_include_pad {
            (
                -(geo.pads_begin[i] as isize),
                (in_hw[i] + declared_end[i]) as isize,
            )
        } else {
            (0, in_hw[i] as isize)
        };
        let end = start + geo.kernel[i] as isize;
        (end.min(hi) - start.max(lo)).max(0) as usize
    };
    let mut map = Vec::with_capacity(out_hw[0] * out_hw[1]);
    for oh in 0..out_hw[0] {
        for ow in 0..out_hw[1] {
            let n = counted(0, oh) * counted(1, ow);
            map.push(if n == 0 { 0.0 } else { window / n as f64 });
        }
    }
    map
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
        permute(&w, &[1, 0])?
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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use xnpu_core::{Shape, TensorType, ValueType};

    use super::*;

    /// The op-name table the lowering was keyed by before it read the typed op (xnpu's
    /// name, QNN's type).
    const NAME_TABLE: &[(&str, &str)] = &[
        ("QuantizeLinear", "Quantize"),
        ("DequantizeLinear", "Dequantize"),
        ("Add", "ElementWiseAdd"),
        ("Sum", "ElementWiseAdd"),
        ("Sub", "ElementWiseSubtract"),
        ("Mul", "ElementWiseMultiply"),
        ("Div", "ElementWiseDivide"),
        ("Max", "ElementWiseMaximum"),
        ("Min", "ElementWiseMinimum"),
        ("Relu", "Relu"),
        ("Sigmoid", "Sigmoid"),
        ("Tanh", "Tanh"),
        ("Gelu", "Gelu"),
        ("Exp", "ElementWiseExp"),
        ("Sqrt", "ElementWiseSquareRoot"),
        ("Neg", "ElementWiseNeg"),
        ("Abs", "ElementWiseAbs"),
        ("MatMul", "MatMul"),
        ("Reshape", "Reshape"),
        ("Flatten", "Reshape"),
        ("Squeeze", "Reshape"),
        ("Unsqueeze", "Reshape"),
        ("Conv", "Conv2d"),
        ("FusedConv", "Conv2d"),
        ("MaxPool", "PoolMax2d"),
        ("AveragePool", "PoolAvg2d"),
        ("GlobalAveragePool", "ReduceMean"),
        ("Gemm", "FullyConnected"),
        ("FusedGemm", "FullyConnected"),
        ("MatMulBias", "MatMul"),
        ("Softmax", "Softmax"),
        ("Transpose", "Transpose"),
        ("Concat", "Concat"),
        ("Clip", "ReluMinMax"),
        ("LayerNormalization", "LayerNorm"),
        ("LRN", "Lrn"),
        ("BatchNormalization", "Batchnorm"),
    ];

    /// Ops of the families QNN lowers in part that it does not lower: every other kind of
    /// the elementwise ops, pools and softmaxes, and some neighbours.
    fn not_lowered() -> Vec<Op> {
        use ActivationKind as A;
        use BinaryKind as B;
        use UnaryKind as U;
        let mut ops: Vec<Op> = [
            B::Pow,
            B::Mod { fmod: false },
            B::BitShift { left: true },
            B::BitwiseAnd,
            B::BitwiseOr,
            B::BitwiseXor,
            B::And,
            B::Or,
            B::Xor,
            B::Equal,
            B::Less,
            B::Greater,
            B::LessOrEqual,
            B::GreaterOrEqual,
        ]
        .into_iter()
        .map(|kind| Op::Elementwise(ew::Op::Binary(ew::Binary::new(kind))))
        .collect();
        ops.extend(
            [
                U::Reciprocal,
                U::Log,
                U::Ceil,
                U::Floor,
                U::Round,
                U::Sign,
                U::Erf,
                U::Sin,
                U::Cos,
                U::Tan,
                U::Asin,
                U::Acos,
                U::Atan,
                U::Sinh,
                U::Cosh,
                U::Asinh,
                U::Acosh,
                U::Atanh,
                U::Not,
                U::BitwiseNot,
            ]
            .into_iter()
            .map(|kind| Op::Elementwise(ew::Op::Unary(ew::Unary { kind }))),
        );
        ops.extend(
            [
                A::LeakyRelu { alpha: 0.1 },
                A::Elu { alpha: 1.0 },
                A::Selu {
                    alpha: 1.0,
                    gamma: 1.0,
                },
                A::Celu { alpha: 1.0 },
                A::ThresholdedRelu { alpha: 1.0 },
                A::HardSigmoid {
                    alpha: 0.2,
                    beta: 0.5,
                },
                A::HardSwish,
                A::Softplus,
                A::Softsign,
                A::Mish,
                A::Swish { alpha: 1.0 },
                A::Shrink {
                    bias: 0.0,
                    lambd: 0.5,
                },
            ]
            .into_iter()
            .map(|kind| Op::Elementwise(ew::Op::Activation(ew::Activation { kind }))),
        );
        ops.extend([
            Op::Elementwise(ew::Op::Variadic(ew::Variadic {
                kind: VariadicKind::Mean,
            })),
            Op::Nn(nn::Op::Pool(nn::Pool {
                kind: PoolKind::Lp { p: 2.0 },
                window: nn::Window::default(),
            })),
            Op::Nn(nn::Op::GlobalPool(nn::GlobalPool {
                kind: GlobalKind::Max,
            })),
            Op::Nn(nn::Op::GlobalPool(nn::GlobalPool {
                kind: GlobalKind::Lp { p: 2.0 },
            })),
            Op::Nn(nn::Op::ConvTranspose(Default::default())),
            Op::Reduce(rd::Op::RmsNormalization(rd::RmsNormalization {
                axis: -1,
                epsilon: 1e-5,
                stash_type: DType::F32,
            })),
            Op::Tensor(tn::Op::Gather(Default::default())),
        ]);
        for kind in [SoftmaxKind::LogSoftmax, SoftmaxKind::Hardmax] {
            ops.push(Op::Reduce(rd::Op::Softmax(rd::Softmax {
                kind,
                axis: -1,
                coerce_2d: false,
            })));
        }
        ops
    }

    #[test]
    fn the_typed_lowering_takes_what_the_name_table_took() {
        let table: HashMap<&str, &str> = NAME_TABLE.iter().copied().collect();
        for kind in lowered_ops().iter().chain(&not_lowered()) {
            assert_eq!(
                Lowering::of(kind).map(|l| l.qnn_type()),
                table.get(kind.name()).copied(),
                "{kind:?}"
            );
        }
        let mut rows: Vec<(&str, &str)> = mappings().iter().map(|m| (m.op, m.qnn)).collect();
        let mut want = NAME_TABLE.to_vec();
        rows.sort();
        want.sort();
        assert_eq!(rows, want, "one capability row per lowered op");
    }

    #[test]
    fn only_reshapes_and_quantisers_take_other_than_float_dtypes() {
        let mut extra: Vec<(&str, &[&str])> = mappings()
            .iter()
            .filter(|m| !m.extra_dtypes.is_empty())
            .map(|m| (m.op, m.extra_dtypes))
            .collect();
        extra.sort();
        assert_eq!(
            extra,
            [
                ("DequantizeLinear", &["u8", "i8", "u16", "i32"][..]),
                ("Flatten", &["i64"][..]),
                ("QuantizeLinear", &["u8", "i8", "u16"][..]),
                ("Reshape", &["i64"][..]),
                ("Squeeze", &["i64"][..]),
                ("Unsqueeze", &["i64"][..]),
            ]
        );
    }

    fn one_node(op: Op, dims: &[usize]) -> (Node, Graph) {
        let mut g = Graph::default();
        let ty = ValueType::Tensor(TensorType::new(DType::F32, Shape::known(dims)));
        let x = g.add_value("x", ty.clone());
        let y = g.add_value("y", ty);
        let node = Node {
            name: "n".into(),
            op,
            inputs: vec![Some(x)],
            outputs: vec![Some(y)],
        };
        (node, g)
    }

    #[test]
    fn an_op_of_a_lowered_family_is_refused_with_its_reason() {
        let log_softmax = Op::Reduce(rd::Op::Softmax(rd::Softmax {
            kind: SoftmaxKind::LogSoftmax,
            axis: -1,
            coerce_2d: false,
        }));
        let (node, g) = one_node(log_softmax, &[2, 3]);
        assert_eq!(check(&node, &g).unwrap(), "LogSoftmax has no lowering");
        let lp = Op::Nn(nn::Op::Pool(nn::Pool {
            kind: PoolKind::Lp { p: 2.0 },
            window: nn::Window::default(),
        }));
        let (node, g) = one_node(lp.clone(), &[1, 2, 4, 4]);
        assert!(check(&node, &g)
            .unwrap()
            .contains("LpPool has no QNN lowering"));
        let (node, g) = one_node(lp, &[1, 2, 4]);
        assert!(check(&node, &g).unwrap().contains("2-D (NCHW input) only"));
        let (node, g) = one_node(
            Op::Elementwise(ew::Op::Unary(ew::Unary {
                kind: UnaryKind::Log,
            })),
            &[2, 0],
        );
        assert!(check(&node, &g).unwrap().contains("no empty tensors"));
    }

    #[test]
    fn a_variadic_op_takes_two_inputs() {
        let max = Op::Elementwise(ew::Op::Variadic(ew::Variadic {
            kind: VariadicKind::Max,
        }));
        let (mut node, g) = one_node(max, &[2, 3]);
        assert!(check(&node, &g)
            .unwrap()
            .contains("elementwise Max takes exactly two"));
        node.inputs.push(node.inputs[0]);
        assert_eq!(check(&node, &g), None);
    }

    #[test]
    fn average_pool_scale_counts_only_positions_inside_the_input() {
        // 3x3 window, stride 1, pads 1 on a 3x3 input: a corner window covers 4 positions,
        // an edge one 6, the centre 9.
        let geo = nn::Geometry {
            kernel: vec![3, 3],
            strides: vec![1, 1],
            dilations: vec![1, 1],
            pads_begin: vec![1, 1],
            pads_end: vec![1, 1],
            out: vec![3, 3],
        };
        let map = average_pool_scale(&geo, &[3, 3], &[3, 3], &[1, 1], false);
        let want = [
            9.0 / 4.0,
            1.5,
            9.0 / 4.0,
            1.5,
            1.0,
            1.5,
            9.0 / 4.0,
            1.5,
            9.0 / 4.0,
        ];
        assert_eq!(map, want);
        // count_include_pad counts the declared pads too.
        let map = average_pool_scale(&geo, &[3, 3], &[3, 3], &[1, 1], true);
        assert!(map.iter().all(|&v| v == 1.0), "{map:?}");
    }
}
