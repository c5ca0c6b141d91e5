//! The compiled CPU path: when the backend compiles a graph, each node whose op a fast kernel
//! of `xnpu-linalg` computes (fp32 Conv, FusedConv, MatMul, MatMulBias, Gemm, FusedGemm,
//! element-wise arithmetic and activations, Transpose, pooling, Softmax, LayerNormalization,
//! Attention, per-tensor QuantizeLinear/DequantizeLinear) gets that kernel, with constant
//! weights packed once; every other node runs its reference kernel. A fast kernel that meets
//! inputs it was not planned for (another dtype or form at run time) hands the node back to
//! the reference kernel, so the result is always defined by the reference: the fast kernels
//! are held to it by the backend suite (`tests/backend_suite`, `cpu` against
//! `cpu:reference`) and by `xnpu-linalg`'s own tests.

use xnpu_core::broadcast::BroadcastIndex;
use xnpu_core::{DType, Error, Result, Tensor, Value};
use xnpu_graph::ir::{Graph, Node, Op};
use xnpu_linalg::{sgemm, Act, BinOp, MatRef, PackedA, PackedB, PackedConv, SoftmaxOut};
use xnpu_ops::nn::{self as nn, Conv, FusedActivation, Gemm};
use xnpu_ops::{attention, reduce};

use crate::args::{opt_tensor, tensor};
use crate::nn::conv::ConvShapes;
use crate::nn::fused::activate;
use crate::nn::matmul::MatMulShapes;

/// A node's fast kernel.
pub(crate) enum Fast {
    Conv(Box<FastConv>),
    MatMul(FastMatMul),
    Gemm(FastGemm),
    /// Add, Sub, Mul, Div, and the variadic Sum, Max, Min, Mean (folded pairwise; `mean`
    /// divides by the count at the end).
    Arith {
        op: BinOp,
        mean: bool,
    },
    Activation(Act),
    Transpose(xnpu_ops::tensor::Transpose),
    /// Concat of fp32 tensors along an axis (negative counts from the end).
    Concat(i64),
    /// MaxPool without its indices output, 1-D or 2-D.
    MaxPool(xnpu_ops::nn::Window),
    /// AveragePool, 1-D or 2-D; `include_pad` counts the declared pads.
    AvgPool {
        window: xnpu_ops::nn::Window,
        include_pad: bool,
    },
    /// GlobalAveragePool, or with `max` GlobalMaxPool.
    GlobalPool {
        max: bool,
    },
    /// Softmax or LogSoftmax over contiguous rows: the last axis (opset 13 on), or the dims
    /// from `axis` on (before 13).
    Softmax {
        out: SoftmaxOut,
        axis: i64,
        coerce_2d: bool,
    },
    /// LayerNormalization without its Mean and InvStdDev outputs.
    LayerNorm {
        axis: i64,
        epsilon: f32,
    },
    /// Attention on 4-D Q, K, V with an optional additive fp32 mask, without a past cache or
    /// extra outputs.
    Attention {
        causal: bool,
        scale: Option<f32>,
    },
    /// QuantizeLinear of fp32 to int8/uint8 with one scale (and zero point); the op's
    /// `output_dtype`, if given.
    Quantize(Option<DType>),
    /// DequantizeLinear of int8/uint8 to fp32 with one scale (and zero point).
    Dequantize,
}

/// The fast kernels of a graph's nodes, in node order (`None`: the reference kernel).
pub(crate) fn plan(graph: &Graph) -> Vec<Option<Fast>> {
    graph.nodes.iter().map(|n| plan_node(graph, n)).collect()
}

/// What the fast kernels compute in place of the reference, as `xnpu devices` and
/// `xnpu run` report it.
pub fn describe() -> String {
    format!(
        "fast fp32 kernels for GEMM, convolution, attention, normalisation, pooling and QDQ \
         ({}), reference kernels for the rest",
        xnpu_linalg::Features::get()
    )
}

fn is_f32(graph: &Graph, node: &Node, slot: usize) -> bool {
    node.inputs
        .get(slot)
        .copied()
        .flatten()
        .and_then(|v| graph.values[v].ty.tensor().map(|t| t.dtype == DType::F32))
        .unwrap_or(false)
}

/// Input `slot` when it is a constant the caller cannot override (an initializer that is
/// also a graph input is only a default: it is not packed).
fn constant<'g>(graph: &'g Graph, node: &Node, slot: usize) -> Option<&'g Tensor> {
    node.inputs
        .get(slot)
        .copied()
        .flatten()
        .filter(|v| !graph.inputs.contains(v))
        .and_then(|v| graph.values[v].constant.as_ref())
}

fn plan_node(graph: &Graph, node: &Node) -> Option<Fast> {
    if let Op::Nn(nn::Op::DequantizeLinear(d)) = &node.op {
        let f32_out = d.output_dtype.is_none_or(|t| t == DType::F32);
        return f32_out.then_some(Fast::Dequantize);
    }
    if !is_f32(graph, node, 0) {
        return None;
    }
    match &node.op {
        Op::Nn(nn::Op::Conv(c)) => {
            FastConv::plan(graph, node, c, None).map(|c| Fast::Conv(Box::new(c)))
        }
        Op::Nn(nn::Op::FusedConv(f)) => FastConv::plan(graph, node, &f.conv, Some(f.activation))
            .map(|c| Fast::Conv(Box::new(c))),
        Op::Nn(nn::Op::MatMul(_)) => Some(Fast::MatMul(FastMatMul {
            bias: false,
            activation: None,
            weights: packed_weights(graph, node),
        })),
        Op::Nn(nn::Op::MatMulBias(o)) => Some(Fast::MatMul(FastMatMul {
            bias: true,
            activation: o.activation,
            weights: packed_weights(graph, node),
        })),
        Op::Nn(nn::Op::Gemm(g)) => Some(Fast::Gemm(FastGemm::plan(graph, node, g, None))),
        Op::Nn(nn::Op::FusedGemm(f)) => Some(Fast::Gemm(FastGemm::plan(
            graph,
            node,
            &f.gemm,
            Some(f.activation),
        ))),
        Op::Elementwise(e) => plan_elementwise(e),
        Op::Nn(nn::Op::Pool(p)) => {
            let indices = node.outputs.get(1).is_some_and(Option::is_some);
            match p.kind {
                nn::PoolKind::Max { .. } if !indices => Some(Fast::MaxPool(p.window.clone())),
                nn::PoolKind::Average { count_include_pad } => Some(Fast::AvgPool {
                    window: p.window.clone(),
                    include_pad: count_include_pad,
                }),
                _ => None,
            }
        }
        Op::Tensor(xnpu_ops::tensor::Op::Transpose(t)) => Some(Fast::Transpose(t.clone())),
        Op::Tensor(xnpu_ops::tensor::Op::Concat(c)) => Some(Fast::Concat(c.axis)),
        Op::Nn(nn::Op::QuantizeLinear(q)) => {
            let plain = q.precision.is_none()
                && q.output_dtype
                    .is_none_or(|t| matches!(t, DType::I8 | DType::U8));
            plain.then_some(Fast::Quantize(q.output_dtype))
        }
        Op::Nn(nn::Op::GlobalPool(p)) => match p.kind {
            nn::GlobalKind::Average => Some(Fast::GlobalPool { max: false }),
            nn::GlobalKind::Max => Some(Fast::GlobalPool { max: true }),
            _ => None,
        },
        Op::Reduce(reduce::Op::Softmax(s)) => Some(Fast::Softmax {
            out: match s.kind {
                reduce::SoftmaxKind::Softmax => SoftmaxOut::Softmax,
                reduce::SoftmaxKind::LogSoftmax => SoftmaxOut::LogSoftmax,
                reduce::SoftmaxKind::Hardmax => return None,
            },
            axis: s.axis,
            coerce_2d: s.coerce_2d,
        }),
        Op::Reduce(reduce::Op::LayerNormalization(l)) => {
            let stats = node.outputs.iter().skip(1).any(Option::is_some);
            (!stats).then_some(Fast::LayerNorm {
                axis: l.axis,
                epsilon: l.epsilon,
            })
        }
        Op::Attention(attention::Op::Attention(a)) => {
            let plain = node.inputs.len() <= 4
                && node.outputs.iter().skip(1).all(Option::is_none)
                && a.softcap <= 0.0
                && a.left_window_size < 0
                && a.right_window_size < 0
                && a.q_num_heads.is_none()
                && a.kv_num_heads.is_none();
            plain.then_some(Fast::Attention {
                causal: a.is_causal,
                scale: a.scale,
            })
        }
        _ => None,
    }
}

fn plan_elementwise(op: &xnpu_ops::elementwise::Op) -> Option<Fast> {
    use xnpu_ops::elementwise::{BinaryKind as B, Op as E, UnaryKind, VariadicKind as V};
    Some(match op {
        E::Binary(b) if b.legacy_axis.is_none() => Fast::Arith {
            op: match b.kind {
                B::Add => BinOp::Add,
                B::Sub => BinOp::Sub,
                B::Mul => BinOp::Mul,
                B::Div => BinOp::Div,
                _ => return None,
            },
            mean: false,
        },
        E::Variadic(v) => Fast::Arith {
            op: match v.kind {
                V::Sum | V::Mean => BinOp::Add,
                V::Max => BinOp::Max,
                V::Min => BinOp::Min,
            },
            mean: v.kind == V::Mean,
        },
        E::Activation(a) => Fast::Activation(act_of(&a.kind)?),
        E::Unary(u) if u.kind == UnaryKind::Tanh => Fast::Activation(Act::Tanh),
        _ => return None,
    })
}

impl Fast {
    /// The node's outputs, or `None` when the inputs are not what the kernel was planned for
    /// (the reference kernel runs instead).
    pub(crate) fn run(&self, inputs: &[Option<&Value>]) -> Option<Result<Vec<Value>>> {
        let out = match self {
            Fast::Conv(c) => c.run(inputs),
            Fast::MatMul(m) => m.run(inputs),
            Fast::Gemm(g) => g.run(inputs),
            Fast::Arith { op, mean } => arith(*op, *mean, inputs),
            Fast::Activation(act) => activation(*act, inputs),
            Fast::Transpose(t) => transpose(t, inputs),
            Fast::Concat(axis) => concat(*axis, inputs),
            Fast::MaxPool(w) => max_pool(w, inputs),
            Fast::AvgPool {
                window,
                include_pad,
            } => avg_pool(window, *include_pad, inputs),
            Fast::GlobalPool { max } => global_pool(*max, inputs),
            Fast::Softmax {
                out,
                axis,
                coerce_2d,
            } => softmax(*out, *axis, *coerce_2d, inputs),
            Fast::LayerNorm { axis, epsilon } => layer_norm(*axis, *epsilon, inputs),
            Fast::Attention { causal, scale } => sdpa(*causal, *scale, inputs),
            Fast::Quantize(out) => quantize(*out, inputs),
            Fast::Dequantize => dequantize(inputs),
        };
        out.transpose().map(|r| r.map(|t| vec![Value::Tensor(t)]))
    }
}

/// The linalg activation computing `kind`, if there is one.
fn act_of(kind: &xnpu_ops::elementwise::ActivationKind) -> Option<Act> {
    use xnpu_ops::elementwise::ActivationKind as K;
    Some(match *kind {
        K::Relu => Act::Relu,
        K::LeakyRelu { alpha } => Act::LeakyRelu { alpha },
        K::Sigmoid => Act::Sigmoid,
        K::HardSigmoid { alpha, beta } => Act::HardSigmoid { alpha, beta },
        K::HardSwish => Act::HardSwish,
        K::Gelu { tanh } => Act::Gelu { tanh },
        _ => return None,
    })
}

/// The activation the linalg epilogue applies itself, if it is one of those.
fn epilogue(act: Option<FusedActivation>) -> Option<Act> {
    match act {
        None => Some(Act::None),
        Some(FusedActivation::Tanh) => Some(Act::Tanh),
        Some(FusedActivation::Clip { min, max }) => Some(Act::Clip { min, max }),
        Some(FusedActivation::Activation(k)) => act_of(&k),
    }
}

/// Applies what the epilogue did not: an activation only the reference kernels compute.
fn finish(y: Tensor, act: Option<FusedActivation>, done: bool) -> Result<Tensor> {
    match act {
        Some(a) if !done => activate(&a, Value::Tensor(y))?.into_tensor(),
        _ => Ok(y),
    }
}

/// An output buffer, allocated fallibly (its size comes from the inputs).
fn buffer(n: usize) -> Result<Vec<f32>> {
    xnpu_linalg::buf::floats(n, "an output")
}

/// [`buffer`] for a kernel that writes every value: not cleared first.
fn overwritten(n: usize) -> Result<Vec<f32>> {
    xnpu_linalg::buf::overwritten(n, "an output")
}

fn numel(shape: &[usize]) -> Result<usize> {
    xnpu_core::shape::checked_numel(shape)
}

/// An fp32 1-D or 2-D convolution with constant weights (and bias), packed at compile time.
pub(crate) struct FastConv {
    conv: Conv,
    w_shape: Vec<usize>,
    packed: PackedConv,
    activation: Option<FusedActivation>,
    /// Whether `packed` applies the activation.
    fused: bool,
}

impl FastConv {
    fn plan(
        graph: &Graph,
        node: &Node,
        conv: &Conv,
        activation: Option<FusedActivation>,
    ) -> Option<FastConv> {
        let w = constant(graph, node, 1)?;
        if w.dtype() != DType::F32 || !matches!(w.rank(), 3 | 4) {
            return None;
        }
        let bias = match node.inputs.get(2).copied().flatten() {
            None => None,
            Some(_) => {
                let b = constant(graph, node, 2)?;
                if b.dtype() != DType::F32 {
                    return None;
                }
                Some(b.as_slice::<f32>().ok()?.into_owned())
            }
        };
        let s = w.shape();
        let kernel = if s.len() == 4 {
            [s[2], s[3]]
        } else {
            [1, s[2]]
        };
        let act = epilogue(activation);
        let packed = PackedConv::new(
            &w.as_slice::<f32>().ok()?,
            s[0],
            s[1].checked_mul(conv.group)?,
            conv.group,
            kernel,
            bias.as_deref(),
            act.unwrap_or(Act::None),
        )
        .ok()?;
        Some(FastConv {
            conv: conv.clone(),
            w_shape: s.to_vec(),
            packed,
            activation,
            fused: act.is_some(),
        })
    }

    fn run(&self, inputs: &[Option<&Value>]) -> Result<Option<Tensor>> {
        let x = tensor(inputs, 0)?;
        if x.dtype() != DType::F32 || x.rank() != self.w_shape.len() {
            return Ok(None);
        }
        let s = ConvShapes::new(&self.conv.window, self.conv.group, x.shape(), &self.w_shape)?;
        let g = &s.geom;
        let two = |v: &[usize], fill: usize| {
            if v.len() == 2 {
                [v[0], v[1]]
            } else {
                [fill, v[0]]
            }
        };
        let geometry = xnpu_linalg::Geometry {
            batch: s.n,
            input: two(&s.input, 1),
            output: two(&g.out, 1),
            stride: two(&g.strides, 1),
            dilation: two(&g.dilations, 1),
            pad_begin: two(&g.pads_begin, 0),
        };
        let shape = s.out_shape();
        let mut y = overwritten(numel(&shape)?)?;
        self.packed.run(&geometry, &x.as_slice::<f32>()?, &mut y)?;
        finish(Tensor::from_vec(shape, y)?, self.activation, self.fused).map(Some)
    }
}

/// `numpy.matmul` of fp32 operands (plus a bias and an activation for MatMulBias).
pub(crate) struct FastMatMul {
    bias: bool,
    activation: Option<FusedActivation>,
    /// B when it is a constant matrix, packed for the AVX-512 kernels at compile time.
    weights: Option<PackedB>,
}

/// Input 1 of a MatMul packed for [`xnpu_linalg::packed::gemm`], when it is a constant fp32
/// matrix and this CPU runs the packed kernels.
fn packed_weights(graph: &Graph, node: &Node) -> Option<PackedB> {
    let b = constant(graph, node, 1)?;
    if !xnpu_linalg::packed::available() || b.dtype() != DType::F32 || b.rank() != 2 {
        return None;
    }
    let v = b.as_slice::<f32>().ok()?;
    PackedB::new(MatRef::row_major(&v, b.shape()[0], b.shape()[1]).ok()?).ok()
}

/// `act(A B + bias)` with B packed, A `[..., m, k]` read as one matrix of all its rows
/// (`bias` one value per column): `None` when A's last dim is not B's rows.
fn packed_matmul(
    a: &Tensor,
    b: &PackedB,
    bias: Option<&[f32]>,
    act: Act,
) -> Result<Option<(Vec<f32>, Vec<usize>)>> {
    let k = b.rows();
    if a.rank() < 2 || a.shape().last() != Some(&k) {
        return Ok(None);
    }
    let rows = numel(&a.shape()[..a.rank() - 1])?;
    let av = a.as_slice::<f32>()?;
    let pa = PackedA::new(MatRef::row_major(&av, rows, k)?)?;
    let n = b.cols();
    let mut y = overwritten(
        rows.checked_mul(n)
            .ok_or_else(|| Error::compute("matmul output size overflows"))?,
    )?;
    xnpu_linalg::packed::gemm_bias(&pa, b, &mut y, n, bias, act)?;
    let mut shape = a.shape().to_vec();
    *shape.last_mut().expect("rank >= 2") = n;
    Ok(Some((y, shape)))
}

impl FastMatMul {
    fn run(&self, inputs: &[Option<&Value>]) -> Result<Option<Tensor>> {
        let a = tensor(inputs, 0)?;
        let b = tensor(inputs, 1)?;
        if a.dtype() != DType::F32 || b.dtype() != DType::F32 || a.rank() == 0 || b.rank() == 0 {
            return Ok(None);
        }
        let bias = if self.bias {
            let bias = tensor(inputs, 2)?;
            // A bias along the last dim (`[N]`, `[1, N]`, ...) of a product of matrices; others
            // go to the reference.
            let n = b.shape().last().copied().unwrap_or(1);
            let per_column = bias.dtype() == DType::F32
                && a.rank() >= 2
                && b.rank() >= 2
                && bias.len() == n
                && bias.shape().iter().rev().skip(1).all(|&d| d == 1)
                && bias.rank() <= a.rank().max(b.rank());
            if !per_column {
                return Ok(None);
            }
            Some(bias)
        } else {
            None
        };
        let act = epilogue(self.activation);
        // The planned constant (the same tensor at every run), with the bias and the
        // activation applied tile by tile.
        if let Some(w) = self
            .weights
            .as_ref()
            .filter(|w| b.shape() == [w.rows(), w.cols()])
        {
            let bv = bias.map(|t| t.as_slice::<f32>()).transpose()?;
            if let Some((y, shape)) = packed_matmul(a, w, bv.as_deref(), act.unwrap_or(Act::None))?
            {
                // An activation the tiles do not apply is left to `finish`.
                let done = act.is_some() || self.activation.is_none();
                return finish(Tensor::from_vec(shape, y)?, self.activation, done).map(Some);
            }
        }
        let (av, bv) = (a.as_slice::<f32>()?, b.as_slice::<f32>()?);
        let (mut y, shape) = matmul(&av, a.shape(), &bv, b.shape())?;
        let Some(bias) = bias else {
            return Ok(Some(Tensor::from_vec(shape, y)?));
        };
        let n = shape.last().copied().unwrap_or(1);
        let bv = bias.as_slice::<f32>()?;
        for row in y.chunks_mut(n.max(1)) {
            for (v, b) in row.iter_mut().zip(bv.iter()) {
                *v += b;
            }
            if let Some(act) = act {
                act.apply(row, 0.0);
            }
        }
        finish(Tensor::from_vec(shape, y)?, self.activation, act.is_some()).map(Some)
    }
}

/// `numpy.matmul` in fp32: a single GEMM when B has no batch of its own (the batch of A is
/// folded into its rows), otherwise one per broadcast batch.
fn matmul(a: &[f32], ash: &[usize], b: &[f32], bsh: &[usize]) -> Result<(Vec<f32>, Vec<usize>)> {
    let MatMulShapes {
        m,
        k,
        n,
        abatch,
        bbatch,
        batch,
        out: shape,
    } = MatMulShapes::new(ash, bsh)?;
    let mut y = overwritten(numel(&shape)?)?;
    // Each fits: m*k and k*n are operand sizes, m*n divides the output's (or it is empty).
    let overflow = || Error::compute(format!("matmul sizes {ash:?} @ {bsh:?} overflow"));
    let mk = m.checked_mul(k).ok_or_else(overflow)?;
    let kn = k.checked_mul(n).ok_or_else(overflow)?;
    let mn = m.checked_mul(n).ok_or_else(overflow)?;
    if numel(&bbatch)? == 1 {
        let rows = numel(&abatch)?.checked_mul(m).ok_or_else(overflow)?;
        sgemm(
            MatRef::row_major(a, rows, k)?,
            MatRef::row_major(b, k, n)?,
            &mut y,
            n,
            1.0,
            false,
        )?;
        return Ok((y, shape));
    }
    let ai = BroadcastIndex::new(&abatch, &batch)?;
    let bi = BroadcastIndex::new(&bbatch, &batch)?;
    for (out, (ia, ib)) in y.chunks_mut(mn.max(1)).zip(ai.zip(bi)) {
        let am = MatRef::row_major(&a[ia * mk..], m, k)?;
        let bm = MatRef::row_major(&b[ib * kn..], k, n)?;
        sgemm(am, bm, out, n, 1.0, false)?;
    }
    Ok((y, shape))
}

/// ONNX Gemm in fp32: `alpha * A' B' + beta * C` (plus FusedGemm's activation).
pub(crate) struct FastGemm {
    gemm: Gemm,
    activation: Option<FusedActivation>,
    /// `alpha * B'` when B is a constant matrix and this CPU runs the packed kernels, packed
    /// at compile time (with B's shape as given, to check each run's against).
    weights: Option<(PackedB, [usize; 2])>,
}

impl FastGemm {
    fn plan(
        graph: &Graph,
        node: &Node,
        gemm: &Gemm,
        activation: Option<FusedActivation>,
    ) -> FastGemm {
        let weights = constant(graph, node, 1)
            .filter(|b| {
                xnpu_linalg::packed::available() && b.dtype() == DType::F32 && b.rank() == 2
            })
            .and_then(|b| {
                let v = b.as_slice::<f32>().ok()?;
                let scaled: Vec<f32> = v.iter().map(|&x| gemm.alpha * x).collect();
                let (r, c) = (b.shape()[0], b.shape()[1]);
                let m = MatRef::row_major(&scaled, r, c).ok()?;
                let m = if gemm.trans_b { m.t() } else { m };
                Some((PackedB::new(m).ok()?, [r, c]))
            });
        FastGemm {
            gemm: gemm.clone(),
            activation,
            weights,
        }
    }

    fn run(&self, inputs: &[Option<&Value>]) -> Result<Option<Tensor>> {
        let a = tensor(inputs, 0)?;
        let b = tensor(inputs, 1)?;
        let c = opt_tensor(inputs, 2)?;
        let all_f32 = [Some(a), Some(b), c]
            .into_iter()
            .flatten()
            .all(|t| t.dtype() == DType::F32);
        if !all_f32 || a.rank() != 2 || b.rank() != 2 {
            return Ok(None);
        }
        let g = &self.gemm;
        if let Some(y) = self.run_packed(a, b, c)? {
            return Ok(Some(y));
        }
        let (av, bv) = (a.as_slice::<f32>()?, b.as_slice::<f32>()?);
        let am = MatRef::row_major(&av, a.shape()[0], a.shape()[1])?;
        let bm = MatRef::row_major(&bv, b.shape()[0], b.shape()[1])?;
        let am = if g.trans_a { am.t() } else { am };
        let bm = if g.trans_b { bm.t() } else { bm };
        let (m, n) = (am.rows(), bm.cols());
        let mut y = overwritten(numel(&[m, n])?)?;
        let accumulate = match c {
            Some(c) if g.beta != 0.0 => {
                let cv = c.as_slice::<f32>()?;
                for (v, i) in y.iter_mut().zip(BroadcastIndex::new(c.shape(), &[m, n])?) {
                    *v = g.beta * cv[i];
                }
                true
            }
            _ => false,
        };
        sgemm(am, bm, &mut y, n, g.alpha, accumulate)?;
        let act = epilogue(self.activation);
        if let (Some(act), Some(_)) = (act, self.activation) {
            act.apply(&mut y, 0.0);
        }
        finish(
            Tensor::from_vec(vec![m, n], y)?,
            self.activation,
            act.is_some(),
        )
        .map(Some)
    }
}

impl FastGemm {
    /// The planned weights against A (not transposed), C absent, zero-weighted or one value
    /// per column of the output (`beta * C` the bias of the tiles): `None` otherwise.
    fn run_packed(&self, a: &Tensor, b: &Tensor, c: Option<&Tensor>) -> Result<Option<Tensor>> {
        let g = &self.gemm;
        let Some((w, _)) = self.weights.as_ref().filter(|(_, s)| b.shape() == s) else {
            return Ok(None);
        };
        if g.trans_a {
            return Ok(None);
        }
        let n = w.cols();
        let bias = match c {
            Some(c) if g.beta != 0.0 => {
                let per_column = c.rank() <= 2
                    && c.len() == n
                    && c.shape().iter().rev().skip(1).all(|&d| d == 1);
                // A C of one value broadcast over every column as well.
                let scalar = c.len() == 1 && c.rank() <= 2;
                if !per_column && !scalar {
                    return Ok(None);
                }
                let cv = c.as_slice::<f32>()?;
                Some(if scalar {
                    vec![g.beta * cv[0]; n]
                } else {
                    cv.iter().map(|&v| g.beta * v).collect()
                })
            }
            _ => None,
        };
        let act = epilogue(self.activation);
        let Some((y, out)) = packed_matmul(a, w, bias.as_deref(), act.unwrap_or(Act::None))? else {
            return Ok(None);
        };
        let done = act.is_some() || self.activation.is_none();
        finish(Tensor::from_vec(out, y)?, self.activation, done).map(Some)
    }
}

/// Inputs that are all fp32 tensors (none absent), or `None`.
fn all_f32<'a>(inputs: &[Option<&'a Value>]) -> Option<Vec<&'a Tensor>> {
    inputs
        .iter()
        .map(|v| {
            v.and_then(|v| v.as_tensor().ok())
                .filter(|t| t.dtype() == DType::F32)
        })
        .collect()
}

/// A binary op, or a variadic one folded pairwise (broadcasting at each step gives the shape
/// of broadcasting all at once).
fn arith(op: BinOp, mean: bool, inputs: &[Option<&Value>]) -> Result<Option<Tensor>> {
    let Some(ts) = all_f32(inputs) else {
        return Ok(None);
    };
    let Some((first, rest)) = ts.split_first() else {
        return Ok(None);
    };
    let mut shape = first.shape().to_vec();
    let mut acc: Option<Vec<f32>> = None;
    for t in rest {
        let a = match &acc {
            Some(v) => std::borrow::Cow::Borrowed(v.as_slice()),
            None => first.as_slice::<f32>()?,
        };
        let (v, s) = xnpu_linalg::binary(op, &a, &shape, &t.as_slice::<f32>()?, t.shape())?;
        acc = Some(v);
        shape = s;
    }
    let mut v = match acc {
        Some(v) => v,
        None => first.as_slice::<f32>()?.into_owned(),
    };
    if mean {
        let n = ts.len() as f32;
        v.iter_mut().for_each(|x| *x /= n);
    }
    Tensor::from_vec(shape, v).map(Some)
}

fn activation(act: Act, inputs: &[Option<&Value>]) -> Result<Option<Tensor>> {
    let x = tensor(inputs, 0)?;
    if x.dtype() != DType::F32 {
        return Ok(None);
    }
    let mut v = xnpu_linalg::buf::floats_from(&x.as_slice::<f32>()?, "an output")?;
    act.apply(&mut v, 0.0);
    Tensor::from_vec(x.shape().to_vec(), v).map(Some)
}

fn transpose(t: &xnpu_ops::tensor::Transpose, inputs: &[Option<&Value>]) -> Result<Option<Tensor>> {
    let x = tensor(inputs, 0)?;
    if x.dtype() != DType::F32 {
        return Ok(None);
    }
    let perm = t.perm(x.rank())?;
    let mut y = overwritten(x.len())?;
    xnpu_linalg::transpose_into(&x.as_slice::<f32>()?, x.shape(), &perm, &mut y)?;
    let shape = perm.iter().map(|&p| x.shape()[p]).collect();
    Tensor::from_vec(shape, y).map(Some)
}

/// Concat of fp32 tensors into a recycled buffer: per index of the dims before the axis, each
/// input's block in turn. Inputs that do not fit together go to the reference kernel, which
/// names what is wrong.
fn concat(axis: i64, inputs: &[Option<&Value>]) -> Result<Option<Tensor>> {
    let Some(ts) = all_f32(inputs) else {
        return Ok(None);
    };
    let Some(first) = ts.first() else {
        return Ok(None);
    };
    let rank = first.rank();
    let Ok(a) = xnpu_core::shape::normalize_axis(axis, rank) else {
        return Ok(None);
    };
    let fits = ts.iter().all(|t| {
        t.rank() == rank
            && t.shape()
                .iter()
                .zip(first.shape())
                .enumerate()
                .all(|(i, (x, y))| i == a || x == y)
    });
    let along = ts
        .iter()
        .try_fold(0usize, |n, t| n.checked_add(t.shape()[a]));
    let (true, Some(along)) = (fits, along) else {
        return Ok(None);
    };
    let mut shape = first.shape().to_vec();
    shape[a] = along;
    let mut y = overwritten(numel(&shape)?)?;
    if y.is_empty() {
        // No rows to walk (an empty output's other dims may be anything).
        return Tensor::from_vec(shape, y).map(Some);
    }
    let inner = numel(&shape[a + 1..])?;
    let parts: Vec<_> = ts
        .iter()
        .map(|t| t.as_slice::<f32>())
        .collect::<Result<_>>()?;
    let mut at = 0;
    for o in 0..numel(&shape[..a])? {
        for (t, part) in ts.iter().zip(&parts) {
            let len = t.shape()[a] * inner;
            y[at..at + len].copy_from_slice(&part[o * len..][..len]);
            at += len;
        }
    }
    Tensor::from_vec(shape, y).map(Some)
}

/// A 1-D or 2-D window geometry as linalg's 2-D one (1-D: a height of 1).
/// A 1-D or 2-D dims list as 2-D (1-D: `fill` first).
fn two(v: &[usize], fill: usize) -> [usize; 2] {
    if v.len() == 2 {
        [v[0], v[1]]
    } else {
        [fill, v[0]]
    }
}

fn geometry_2d(batch: usize, input: &[usize], g: &xnpu_ops::nn::Geometry) -> xnpu_linalg::Geometry {
    xnpu_linalg::Geometry {
        batch,
        input: two(input, 1),
        output: two(&g.out, 1),
        stride: two(&g.strides, 1),
        dilation: two(&g.dilations, 1),
        pad_begin: two(&g.pads_begin, 0),
    }
}

/// A 1-D or 2-D fp32 pooling window on its input, as the linalg pools take it.
struct PoolRun<'a> {
    x: &'a Tensor,
    kernel: [usize; 2],
    geometry: xnpu_linalg::Geometry,
    pad_end: [usize; 2],
    /// `[N, C, out...]`.
    shape: Vec<usize>,
    planes: usize,
}

impl PoolRun<'_> {
    fn new<'a>(
        w: &xnpu_ops::nn::Window,
        inputs: &[Option<&'a Value>],
    ) -> Result<Option<PoolRun<'a>>> {
        let x = tensor(inputs, 0)?;
        let Some(kernel) = &w.kernel_shape else {
            return Ok(None);
        };
        if x.dtype() != DType::F32 || !matches!(x.rank(), 3 | 4) || kernel.len() + 2 != x.rank() {
            return Ok(None);
        }
        let g = w.geometry(&x.shape()[2..], kernel)?;
        let mut shape = x.shape()[..2].to_vec();
        shape.extend(&g.out);
        Ok(Some(PoolRun {
            x,
            kernel: two(kernel, 1),
            geometry: geometry_2d(x.shape()[0], &x.shape()[2..], &g),
            pad_end: two(&g.pads_end, 0),
            shape,
            planes: x.shape()[0] * x.shape()[1],
        }))
    }
}

fn max_pool(w: &xnpu_ops::nn::Window, inputs: &[Option<&Value>]) -> Result<Option<Tensor>> {
    let Some(p) = PoolRun::new(w, inputs)? else {
        return Ok(None);
    };
    let mut y = buffer(numel(&p.shape)?)?;
    let x = p.x.as_slice::<f32>()?;
    xnpu_linalg::max_pool(p.kernel, &p.geometry, p.planes, &x, &mut y)?;
    Tensor::from_vec(p.shape, y).map(Some)
}

fn global_pool(max: bool, inputs: &[Option<&Value>]) -> Result<Option<Tensor>> {
    let x = tensor(inputs, 0)?;
    if x.dtype() != DType::F32 || x.rank() < 3 {
        return Ok(None);
    }
    // The reference defines an empty window (and names dims that overflow).
    let area = match numel(&x.shape()[2..]) {
        Ok(area) if area > 0 => area,
        _ => return Ok(None),
    };
    // Checked by the tensor: planes x area is its length.
    let planes = x.len() / area;
    let mut shape = x.shape().to_vec();
    shape[2..].fill(1);
    let mut y = buffer(planes)?;
    xnpu_linalg::pool::global(&x.as_slice::<f32>()?, area, max, &mut y);
    Tensor::from_vec(shape, y).map(Some)
}

/// The length of the rows of `shape` for a softmax along `axis` when they are contiguous.
fn softmax_row_len(shape: &[usize], axis: i64, coerce_2d: bool) -> Result<Option<usize>> {
    let rank = shape.len();
    let split = if coerce_2d {
        let r = rank as i64;
        if axis < -r || axis > r {
            return Ok(None);
        }
        (if axis < 0 { axis + r } else { axis }) as usize
    } else {
        let a = xnpu_core::shape::normalize_axis(axis, rank)?;
        if a + 1 != rank {
            return Ok(None);
        }
        a
    };
    numel(&shape[split..]).map(Some)
}

fn softmax(
    out: SoftmaxOut,
    axis: i64,
    coerce_2d: bool,
    inputs: &[Option<&Value>],
) -> Result<Option<Tensor>> {
    let x = tensor(inputs, 0)?;
    if x.dtype() != DType::F32 || x.rank() == 0 {
        return Ok(None);
    }
    let Some(n) = softmax_row_len(x.shape(), axis, coerce_2d)? else {
        return Ok(None);
    };
    let mut v = xnpu_linalg::buf::floats_from(&x.as_slice::<f32>()?, "an output")?;
    xnpu_linalg::softmax(&mut v, n, out);
    Tensor::from_vec(x.shape().to_vec(), v).map(Some)
}

/// `t` as `n` values, one per element of a normalised slice: its shape broadcasts to X's
/// (right-aligned) with ones before `axis` and X's own dims from `axis` on.
fn per_slice<'a>(t: &'a Tensor, xshape: &[usize], axis: usize, n: usize) -> Option<&'a Tensor> {
    let off = xshape.len().checked_sub(t.rank())?;
    let fits = t.dtype() == DType::F32
        && t.len() == n
        && t.shape().iter().enumerate().all(|(i, &d)| {
            let at = off + i;
            if at < axis {
                d == 1
            } else {
                d == xshape[at]
            }
        });
    fits.then_some(t)
}

fn layer_norm(axis: i64, epsilon: f32, inputs: &[Option<&Value>]) -> Result<Option<Tensor>> {
    let x = tensor(inputs, 0)?;
    if x.dtype() != DType::F32 || x.rank() == 0 {
        return Ok(None);
    }
    let a = xnpu_core::shape::normalize_axis(axis, x.rank())?;
    let n = numel(&x.shape()[a..])?;
    let Some(scale) = per_slice(tensor(inputs, 1)?, x.shape(), a, n) else {
        return Ok(None);
    };
    let bias = match opt_tensor(inputs, 2)? {
        Some(b) => match per_slice(b, x.shape(), a, n) {
            Some(b) => Some(b.as_slice::<f32>()?),
            None => return Ok(None),
        },
        None => None,
    };
    if n == 0 {
        return Ok(None);
    }
    let mut y = buffer(x.len())?;
    xnpu_linalg::layer_norm(
        &x.as_slice::<f32>()?,
        &mut y,
        n,
        &scale.as_slice::<f32>()?,
        bias.as_deref(),
        epsilon,
    );
    Tensor::from_vec(x.shape().to_vec(), y).map(Some)
}

/// Attention on 4-D fp32 Q, K, V (`[batch, heads, seq, head]`) with an optional fp32 mask
/// that broadcasts to the scores and covers every key; the rest goes to the reference.
fn sdpa(causal: bool, scale: Option<f32>, inputs: &[Option<&Value>]) -> Result<Option<Tensor>> {
    use xnpu_linalg::attention::{attention, Dims, Mask, Scores};
    let (q, k, v) = (tensor(inputs, 0)?, tensor(inputs, 1)?, tensor(inputs, 2)?);
    let mask = opt_tensor(inputs, 3)?;
    let f32_4d = |t: &Tensor| t.dtype() == DType::F32 && t.rank() == 4;
    if !(f32_4d(q) && f32_4d(k) && f32_4d(v)) {
        return Ok(None);
    }
    let (qs, ks, vs) = (q.shape(), k.shape(), v.shape());
    let d = Dims {
        batch: qs[0],
        q_heads: qs[1],
        kv_heads: ks[1],
        q_seq: qs[2],
        kv_seq: ks[2],
        head: qs[3],
        v_head: vs[3],
    };
    let agree = ks[0] == d.batch
        && vs[0] == d.batch
        && vs[1] == d.kv_heads
        && ks[3] == d.head
        && vs[2] == d.kv_seq
        && d.kv_heads > 0
        && d.q_heads.is_multiple_of(d.kv_heads)
        // Causal rows with no visible key are defined by the reference (all-zero).
        && !(causal && d.kv_seq == 0);
    if !agree || d.kv_seq == 0 {
        return Ok(None);
    }
    let mvals = match mask {
        Some(m) if m.dtype() != DType::F32 || m.rank() > 4 || m.rank() == 0 => return Ok(None),
        Some(m) if m.shape().last() != Some(&d.kv_seq) => return Ok(None),
        Some(m) => Some(m.as_slice::<f32>()?),
        None => None,
    };
    let mask = match (mask, &mvals) {
        (Some(m), Some(data)) => {
            // Strides of the right-aligned mask over [batch, heads, q_seq]: 0 where it
            // broadcasts; a dim that is neither 1 nor the scores' is not ours.
            let full = [d.batch, d.q_heads, d.q_seq, d.kv_seq];
            let off = 4 - m.rank();
            let mut strides = [0usize; 3];
            let mut step = d.kv_seq;
            for at in (0..3).rev() {
                if at < off {
                    continue;
                }
                let dim = m.shape()[at - off];
                if dim == full[at] && dim != 1 {
                    strides[at] = step;
                } else if dim != 1 {
                    return Ok(None);
                }
                step = step
                    .checked_mul(dim)
                    .ok_or_else(|| Error::compute("mask size overflows"))?;
            }
            Some(Mask { data, strides })
        }
        _ => None,
    };
    let scale = scale.unwrap_or(1.0 / (d.head as f32).sqrt());
    if scale < 0.0 || scale.is_nan() {
        // The reference scales Q and K by sqrt(scale) each: NaN for a negative scale.
        return Ok(None);
    }
    let mut y = buffer(numel(&[d.batch, d.q_heads, d.q_seq, d.v_head])?)?;
    attention(
        d,
        &q.as_slice::<f32>()?,
        &k.as_slice::<f32>()?,
        &v.as_slice::<f32>()?,
        Scores {
            scale,
            mask,
            causal,
        },
        &mut y,
    )?;
    Tensor::from_vec(vec![d.batch, d.q_heads, d.q_seq, d.v_head], y).map(Some)
}

/// One fp32 scale, and a zero point of `dtype` (0 when absent): the per-tensor parameters
/// of a QuantizeLinear or DequantizeLinear, or `None` for any other form.
fn per_tensor(
    inputs: &[Option<&Value>],
    dtype: Option<DType>,
) -> Result<Option<(f32, f32, DType)>> {
    let scale = tensor(inputs, 1)?;
    if scale.dtype() != DType::F32 || scale.len() != 1 {
        return Ok(None);
    }
    let s = scale.as_slice::<f32>()?[0];
    let (zp, ty) = match opt_tensor(inputs, 2)? {
        Some(z) if z.len() != 1 || dtype.is_some_and(|d| d != z.dtype()) => return Ok(None),
        Some(z) => match z.dtype() {
            DType::I8 => (z.as_slice::<i8>()?[0] as f32, DType::I8),
            DType::U8 => (z.as_slice::<u8>()?[0] as f32, DType::U8),
            _ => return Ok(None),
        },
        None => (0.0, dtype.unwrap_or(DType::U8)),
    };
    Ok(Some((s, zp, ty)))
}

fn quantize(output_dtype: Option<DType>, inputs: &[Option<&Value>]) -> Result<Option<Tensor>> {
    let x = tensor(inputs, 0)?;
    if x.dtype() != DType::F32 {
        return Ok(None);
    }
    // The zero point's dtype, else `output_dtype`, else uint8; a zero point of another dtype
    // than `output_dtype` is the reference's error to report.
    let Some((scale, zp, ty)) = per_tensor(inputs, output_dtype)? else {
        return Ok(None);
    };
    fn to<T: xnpu_linalg::quant::Int8 + xnpu_core::Elem>(
        x: &Tensor,
        scale: f32,
        zp: f32,
    ) -> Result<Option<Tensor>> {
        let mut y = xnpu_linalg::buf::zeroed::<T>(x.len(), "an output")?;
        xnpu_linalg::quant::quantize(&x.as_slice::<f32>()?, scale, zp, &mut y);
        Tensor::from_vec(x.shape().to_vec(), y).map(Some)
    }
    match ty {
        DType::I8 => to::<i8>(x, scale, zp),
        DType::U8 => to::<u8>(x, scale, zp),
        _ => Ok(None),
    }
}

fn dequantize(inputs: &[Option<&Value>]) -> Result<Option<Tensor>> {
    let x = tensor(inputs, 0)?;
    if !matches!(x.dtype(), DType::I8 | DType::U8) {
        return Ok(None);
    }
    let Some((scale, zp, _)) = per_tensor(inputs, Some(x.dtype()))? else {
        return Ok(None);
    };
    let mut y = buffer(x.len())?;
    match x.dtype() {
        DType::I8 => xnpu_linalg::quant::dequantize(&x.as_slice::<i8>()?, scale, zp, &mut y),
        _ => xnpu_linalg::quant::dequantize(&x.as_slice::<u8>()?, scale, zp, &mut y),
    }
    Tensor::from_vec(x.shape().to_vec(), y).map(Some)
}

fn avg_pool(
    w: &xnpu_ops::nn::Window,
    include_pad: bool,
    inputs: &[Option<&Value>],
) -> Result<Option<Tensor>> {
    let Some(p) = PoolRun::new(w, inputs)? else {
        return Ok(None);
    };
    let mut y = buffer(numel(&p.shape)?)?;
    let x = p.x.as_slice::<f32>()?;
    let (g, planes) = (&p.geometry, p.planes);
    if !xnpu_linalg::pool::avg_pool(p.kernel, g, p.pad_end, include_pad, planes, &x, &mut y)? {
        return Ok(None);
    }
    Tensor::from_vec(p.shape, y).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hostile sizes (issue 21): an empty tensor's other dims may be anything; the fast
    /// kernels answer without walking rows of nothing.
    #[test]
    fn empty_inputs_with_huge_dims_are_not_walked() {
        let big = 1usize << 62;
        let empty =
            |shape: Vec<usize>| Value::Tensor(Tensor::from_vec(shape, Vec::<f32>::new()).unwrap());
        let x = empty(vec![big, 1, 0]);
        let y = concat(1, &[Some(&x), Some(&x)]).unwrap().unwrap();
        assert_eq!(y.shape(), &[big, 2, 0]);
        // No planes: the window's dims are free to multiply past a usize (an overflow
        // panic in a debug build).
        let x = empty(vec![0, 1, 1 << 40, 1 << 40]);
        assert!(global_pool(true, &[Some(&x)]).unwrap().is_none());
    }
}
