//! The compiled CPU path: when the backend compiles a graph, each node whose op a fast kernel
//! of `xnpu-linalg` computes (fp32 Conv, FusedConv, MatMul, MatMulBias, Gemm, FusedGemm) gets
//! that kernel, with constant weights packed once; every other node runs its reference
//! kernel. A fast kernel that meets inputs it was not planned for (another dtype at run time)
//! hands the node back to the reference kernel, so the result is always defined by the
//! reference: the fast kernels are held to it by the differential tests in `tests`.

use xnpu_core::broadcast::BroadcastIndex;
use xnpu_core::{DType, Error, Result, Tensor, Value};
use xnpu_graph::ir::{Graph, Node, Op};
use xnpu_linalg::{sgemm, Act, BinOp, MatRef, PackedConv};
use xnpu_ops::nn::{self as nn, Conv, FusedActivation, Gemm};

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
    /// MaxPool without its indices output, 1-D or 2-D.
    MaxPool(xnpu_ops::nn::Window),
}

/// The fast kernels of a graph's nodes, in node order (`None`: the reference kernel).
pub(crate) fn plan(graph: &Graph) -> Vec<Option<Fast>> {
    graph.nodes.iter().map(|n| plan_node(graph, n)).collect()
}

/// What the fast kernels compute in place of the reference, as `xnpu devices` and
/// `xnpu run` report it.
pub fn describe() -> String {
    format!(
        "fast fp32 GEMM and convolution kernels ({}), reference kernels for the rest",
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

fn constant<'g>(graph: &'g Graph, node: &Node, slot: usize) -> Option<&'g Tensor> {
    node.inputs
        .get(slot)
        .copied()
        .flatten()
        .and_then(|v| graph.values[v].constant.as_ref())
}

fn plan_node(graph: &Graph, node: &Node) -> Option<Fast> {
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
        })),
        Op::Nn(nn::Op::MatMulBias(o)) => Some(Fast::MatMul(FastMatMul {
            bias: true,
            activation: o.activation,
        })),
        Op::Nn(nn::Op::Gemm(g)) => Some(Fast::Gemm(FastGemm {
            gemm: g.clone(),
            activation: None,
        })),
        Op::Nn(nn::Op::FusedGemm(f)) => Some(Fast::Gemm(FastGemm {
            gemm: f.gemm.clone(),
            activation: Some(f.activation),
        })),
        Op::Elementwise(e) => plan_elementwise(e),
        Op::Nn(nn::Op::Pool(p)) => {
            let indices = node.outputs.get(1).is_some_and(Option::is_some);
            let max = matches!(p.kind, nn::PoolKind::Max { .. });
            (max && !indices).then(|| Fast::MaxPool(p.window.clone()))
        }
        Op::Tensor(xnpu_ops::tensor::Op::Transpose(t)) => Some(Fast::Transpose(t.clone())),
        _ => None,
    }
}

fn plan_elementwise(op: &xnpu_ops::elementwise::Op) -> Option<Fast> {
    use xnpu_ops::elementwise::{
        ActivationKind as A, BinaryKind as B, Op as E, UnaryKind, VariadicKind as V,
    };
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
        E::Activation(a) => Fast::Activation(match a.kind {
            A::Relu => Act::Relu,
            A::Sigmoid => Act::Sigmoid,
            A::LeakyRelu { alpha } => Act::LeakyRelu { alpha },
            A::HardSigmoid { alpha, beta } => Act::HardSigmoid { alpha, beta },
            A::HardSwish => Act::HardSwish,
            _ => return None,
        }),
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
            Fast::MaxPool(w) => max_pool(w, inputs),
        };
        out.transpose().map(|r| r.map(|t| vec![Value::Tensor(t)]))
    }
}

/// The activation the linalg epilogue applies itself, if it is one of those.
fn epilogue(act: Option<FusedActivation>) -> Option<Act> {
    use xnpu_ops::elementwise::ActivationKind as K;
    Some(match act {
        None => Act::None,
        Some(FusedActivation::Tanh) => Act::Tanh,
        Some(FusedActivation::Clip { min, max }) => Act::Clip { min, max },
        Some(FusedActivation::Activation(k)) => match k {
            K::Relu => Act::Relu,
            K::LeakyRelu { alpha } => Act::LeakyRelu { alpha },
            K::Sigmoid => Act::Sigmoid,
            K::HardSigmoid { alpha, beta } => Act::HardSigmoid { alpha, beta },
            K::HardSwish => Act::HardSwish,
            _ => return None,
        },
    })
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
    xnpu_linalg::buf::zeroed(n, "an output")
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
        let mut y = buffer(numel(&shape)?)?;
        self.packed.run(&geometry, &x.as_slice::<f32>()?, &mut y)?;
        finish(Tensor::from_vec(shape, y)?, self.activation, self.fused).map(Some)
    }
}

/// `numpy.matmul` of fp32 operands (plus a bias and an activation for MatMulBias).
pub(crate) struct FastMatMul {
    bias: bool,
    activation: Option<FusedActivation>,
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
        let (mut y, shape) = matmul(
            &a.as_slice::<f32>()?,
            a.shape(),
            &b.as_slice::<f32>()?,
            b.shape(),
        )?;
        let Some(bias) = bias else {
            return Ok(Some(Tensor::from_vec(shape, y)?));
        };
        let n = shape.last().copied().unwrap_or(1);
        let bv = bias.as_slice::<f32>()?;
        let act = epilogue(self.activation);
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
    let mut y = buffer(numel(&shape)?)?;
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
}

impl FastGemm {
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
        let (av, bv) = (a.as_slice::<f32>()?, b.as_slice::<f32>()?);
        let am = MatRef::row_major(&av, a.shape()[0], a.shape()[1])?;
        let bm = MatRef::row_major(&bv, b.shape()[0], b.shape()[1])?;
        let am = if g.trans_a { am.t() } else { am };
        let bm = if g.trans_b { bm.t() } else { bm };
        let (m, n) = (am.rows(), bm.cols());
        let mut y = buffer(numel(&[m, n])?)?;
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
    let mut v = xnpu_linalg::buf::copied(&x.as_slice::<f32>()?, "an output")?;
    act.apply(&mut v, 0.0);
    Tensor::from_vec(x.shape().to_vec(), v).map(Some)
}

fn transpose(t: &xnpu_ops::tensor::Transpose, inputs: &[Option<&Value>]) -> Result<Option<Tensor>> {
    let x = tensor(inputs, 0)?;
    if x.dtype() != DType::F32 {
        return Ok(None);
    }
    let perm = t.perm(x.rank())?;
    let y = xnpu_linalg::transpose(&x.as_slice::<f32>()?, x.shape(), &perm)?;
    let shape = perm.iter().map(|&p| x.shape()[p]).collect();
    Tensor::from_vec(shape, y).map(Some)
}

/// A 1-D or 2-D window geometry as linalg's 2-D one (1-D: a height of 1).
fn geometry_2d(batch: usize, input: &[usize], g: &xnpu_ops::nn::Geometry) -> xnpu_linalg::Geometry {
    let two = |v: &[usize], fill: usize| {
        if v.len() == 2 {
            [v[0], v[1]]
        } else {
            [fill, v[0]]
        }
    };
    xnpu_linalg::Geometry {
        batch,
        input: two(input, 1),
        output: two(&g.out, 1),
        stride: two(&g.strides, 1),
        dilation: two(&g.dilations, 1),
        pad_begin: two(&g.pads_begin, 0),
    }
}

fn max_pool(w: &xnpu_ops::nn::Window, inputs: &[Option<&Value>]) -> Result<Option<Tensor>> {
    let x = tensor(inputs, 0)?;
    let Some(kernel) = &w.kernel_shape else {
        return Ok(None);
    };
    if x.dtype() != DType::F32 || !matches!(x.rank(), 3 | 4) || kernel.len() + 2 != x.rank() {
        return Ok(None);
    }
    let g = w.geometry(&x.shape()[2..], kernel)?;
    let geometry = geometry_2d(x.shape()[0], &x.shape()[2..], &g);
    let k = if kernel.len() == 2 {
        [kernel[0], kernel[1]]
    } else {
        [1, kernel[0]]
    };
    let mut shape = x.shape()[..2].to_vec();
    shape.extend(&g.out);
    let mut y = buffer(numel(&shape)?)?;
    let planes = x.shape()[0] * x.shape()[1];
    xnpu_linalg::max_pool(k, &geometry, planes, &x.as_slice::<f32>()?, &mut y)?;
    Tensor::from_vec(shape, y).map(Some)
}
