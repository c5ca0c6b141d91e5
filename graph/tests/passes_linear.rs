//! Every pass takes time linear in the graph, held by its work counter (never by the clock):
//! on graphs of 100k nodes of the shapes that made passes quadratic (an Identity chain
//! bypassed one node at a time, long chains of fusable and elementwise ops rewritten one at a
//! time, one value read by 100k nodes, every fusion firing thousands of times, long chains of
//! folds), each pass's visits stay under a small multiple of the graph's size, and so does the
//! whole pipeline's. A quadratic pass makes about n²/2 visits on these graphs: 10⁴ times the
//! bound.

use xnpu_core::{DType, Error, Result, Shape, Tensor, TensorType, Value, ValueType};
use xnpu_graph::passes::{optimize, pipeline, Level, Options, Report, Work};
use xnpu_graph::{Graph, Model, Node, Op, ValueId};
use xnpu_ops::elementwise::{
    self as ew, Activation, ActivationKind, Binary, BinaryKind, Unary, UnaryKind,
};
use xnpu_ops::reduce::{self, BatchNormalization, Reduce, ReduceKind, Softmax, SoftmaxKind};
use xnpu_ops::{nn, tensor};

const N: usize = 100_000;

/// Visits one pass may make per node and value of the graph it is given.
const PER_ELEMENT: usize = 8;

fn f32_ty(dims: &[usize]) -> ValueType {
    ValueType::Tensor(TensorType::new(DType::F32, Shape::known(dims)))
}

struct Builder {
    g: Graph,
}

impl Builder {
    fn new() -> Builder {
        Builder {
            g: Graph::default(),
        }
    }

    fn input(&mut self, name: &str, dims: &[usize]) -> ValueId {
        let v = self.g.add_value(name, f32_ty(dims));
        self.g.inputs.push(v);
        v
    }

    fn constant(&mut self, name: &str, t: Tensor) -> ValueId {
        let ty = ValueType::Tensor(TensorType::new(t.dtype(), Shape::known(t.shape())));
        let v = self.g.add_value(name, ty);
        self.g.values[v].constant = Some(t);
        v
    }

    fn node(&mut self, op: Op, inputs: &[ValueId], dims: &[usize]) -> ValueId {
        self.typed_node(op, inputs, f32_ty(dims))
    }

    fn typed_node(&mut self, op: Op, inputs: &[ValueId], ty: ValueType) -> ValueId {
        let k = self.g.nodes.len();
        let v = self.g.add_value(format!("v{k}"), ty);
        self.g.nodes.push(Node {
            name: format!("n{k}"),
            op,
            inputs: inputs.iter().map(|&i| Some(i)).collect(),
            outputs: vec![Some(v)],
        });
        v
    }

    fn model(mut self, outputs: &[ValueId]) -> Model {
        self.g.outputs.extend_from_slice(outputs);
        Model {
            name: "m".into(),
            graph: self.g,
            ..Model::default()
        }
    }
}

fn identity() -> Op {
    Op::Tensor(tensor::Op::Identity(Default::default()))
}

fn activation(kind: ActivationKind) -> Op {
    Op::Elementwise(ew::Op::Activation(Activation { kind }))
}

fn binary(kind: BinaryKind) -> Op {
    Op::Elementwise(ew::Op::Binary(Binary::new(kind)))
}

fn unary(kind: UnaryKind) -> Op {
    Op::Elementwise(ew::Op::Unary(Unary { kind }))
}

fn mean_over_last_axis() -> Op {
    Op::Reduce(reduce::Op::Reduce(Reduce {
        kind: ReduceKind::Mean,
        axes: Some(vec![-1]),
        keepdims: true,
        noop_with_empty_axes: false,
    }))
}

/// x → Identity → Identity → … → y.
fn identity_chain() -> Model {
    let mut b = Builder::new();
    let mut cur = b.input("x", &[4]);
    for _ in 0..N {
        cur = b.node(identity(), &[cur], &[4]);
    }
    b.model(&[cur])
}

/// x → (MatMul W → Add bias → Relu → Mul c → Sigmoid) … : a chain of elementwise ops in
/// which every MatMul + Add + Relu fuses (two passes, 20k rewrites each).
fn elementwise_chain() -> Model {
    let mut b = Builder::new();
    let mut cur = b.input("x", &[2, 4]);
    let w = b.constant("w", Tensor::from_vec(vec![4, 4], vec![0.5f32; 16]).unwrap());
    let bias = b.constant("bias", Tensor::from_vec(vec![4], vec![0.25f32; 4]).unwrap());
    let c = b.constant("c", Tensor::scalar(2.0f32));
    for _ in 0..N / 5 {
        cur = b.node(Op::Nn(nn::Op::MatMul(nn::MatMul)), &[cur, w], &[2, 4]);
        cur = b.node(binary(BinaryKind::Add), &[cur, bias], &[2, 4]);
        cur = b.node(activation(ActivationKind::Relu), &[cur], &[2, 4]);
        cur = b.node(binary(BinaryKind::Mul), &[cur, c], &[2, 4]);
        cur = b.node(activation(ActivationKind::Sigmoid), &[cur], &[2, 4]);
    }
    b.model(&[cur])
}

/// x read by 100k nodes: Relus that are all the same node, LeakyRelus that differ only in
/// their attribute, and Identities; an Add chain keeps every one of them read.
fn wide_fan_out() -> Model {
    let mut b = Builder::new();
    let x = b.input("x", &[4]);
    let mut acc = x;
    for i in 0..N / 4 {
        let branch = match i % 3 {
            0 => b.node(activation(ActivationKind::Relu), &[x], &[4]),
            1 => b.node(
                activation(ActivationKind::LeakyRelu {
                    alpha: i as f32 / N as f32,
                }),
                &[x],
                &[4],
            ),
            _ => b.node(identity(), &[x], &[4]),
        };
        acc = b.node(binary(BinaryKind::Add), &[acc, branch], &[4]);
    }
    // And 50k more readers of x whose outputs are all graph outputs.
    let mut outputs = vec![acc];
    for _ in 0..N / 2 {
        outputs.push(b.node(activation(ActivationKind::Relu), &[x], &[4]));
    }
    b.model(&outputs)
}

/// Every tensor of a transformer block: `[batch 1, heads 2, seq 4, 4]`, also read as NCHW.
const T: &[usize] = &[1, 2, 4, 4];
/// A mean over T's last axis.
const T_MEAN: &[usize] = &[1, 2, 4, 1];
/// Nodes in one [`block`].
const BLOCK_NODES: usize = 29;

/// Constants the blocks share.
struct Shared {
    two: ValueId,
    eps: ValueId,
    sqrt2: ValueId,
    one: ValueId,
    half: ValueId,
    gamma: ValueId,
    w: ValueId,
    bias: ValueId,
    bn: [ValueId; 4],
}

/// One block of a decomposed transformer, each part a pattern of one fusion pass: LayerNorm
/// (no affine: its scale is a shared constant of ones), attention, erf GELU, RMSNorm (with a
/// gamma), MatMul + Add + Relu, Conv + BatchNormalization + Relu (the Conv's weight its own,
/// as a fold copies it). 29 nodes that fuse into 6.
fn block(b: &mut Builder, c: &Shared, k: usize, x: ValueId) -> ValueId {
    use BinaryKind::{Add, Div, Mul, Pow, Sub};
    // LayerNorm.
    let m = b.node(mean_over_last_axis(), &[x], T_MEAN);
    let d = b.node(binary(Sub), &[x, m], T);
    let sq = b.node(binary(Pow), &[d, c.two], T);
    let var = b.node(mean_over_last_axis(), &[sq], T_MEAN);
    let ve = b.node(binary(Add), &[var, c.eps], T_MEAN);
    let s = b.node(unary(UnaryKind::Sqrt), &[ve], T_MEAN);
    let n = b.node(binary(Div), &[d, s], T);
    // Attention: Softmax(n · nᵀ / 2) · n.
    let perm = Some(vec![0, 1, 3, 2]);
    let kt = b.node(
        Op::Tensor(tensor::Op::Transpose(tensor::Transpose { perm })),
        &[n],
        T,
    );
    let qk = b.node(Op::Nn(nn::Op::MatMul(nn::MatMul)), &[n, kt], T);
    let scores = b.node(binary(Div), &[qk, c.two], T);
    let p = b.node(
        Op::Reduce(reduce::Op::Softmax(Softmax {
            kind: SoftmaxKind::Softmax,
            axis: -1,
            coerce_2d: false,
        })),
        &[scores],
        T,
    );
    let a = b.node(Op::Nn(nn::Op::MatMul(nn::MatMul)), &[p, n], T);
    // GELU: (1 + erf(a / √2)) · a · 0.5.
    let e = b.node(binary(Div), &[a, c.sqrt2], T);
    let e = b.node(unary(UnaryKind::Erf), &[e], T);
    let t = b.node(binary(Add), &[c.one, e], T);
    let at = b.node(binary(Mul), &[t, a], T);
    let g = b.node(binary(Mul), &[at, c.half], T);
    // RMSNorm: gamma · g / √(mean(g²) + eps).
    let sq = b.node(binary(Pow), &[g, c.two], T);
    let ms = b.node(mean_over_last_axis(), &[sq], T_MEAN);
    let ve = b.node(binary(Add), &[ms, c.eps], T_MEAN);
    let s = b.node(unary(UnaryKind::Sqrt), &[ve], T_MEAN);
    let r = b.node(binary(Div), &[g, s], T);
    let r = b.node(binary(Mul), &[c.gamma, r], T);
    // MatMul + Add + Relu.
    let y = b.node(Op::Nn(nn::Op::MatMul(nn::MatMul)), &[r, c.w], T);
    let y = b.node(binary(Add), &[y, c.bias], T);
    let y = b.node(activation(ActivationKind::Relu), &[y], T);
    // Conv + BatchNormalization + Relu.
    let w = b.constant(
        &format!("conv{k}"),
        Tensor::from_vec(vec![2, 2, 1, 1], vec![(k + 1) as f32; 4]).unwrap(),
    );
    let y = b.node(Op::Nn(nn::Op::Conv(Default::default())), &[y, w], T);
    let [scale, shift, mean, var] = c.bn;
    let y = b.node(
        Op::Reduce(reduce::Op::BatchNormalization(BatchNormalization {
            epsilon: 1e-5,
            momentum: 0.9,
            training_mode: false,
        })),
        &[y, scale, shift, mean, var],
        T,
    );
    b.node(activation(ActivationKind::Relu), &[y], T)
}

/// A chain of transformer [`block`]s, 100k nodes: every fusion pass rewrites thousands of
/// patterns in one sweep.
fn transformer_chain() -> Model {
    let mut b = Builder::new();
    let vector = |b: &mut Builder, name: &str, x: f32, n: usize| {
        b.constant(name, Tensor::from_vec(vec![n], vec![x; n]).unwrap())
    };
    let c = Shared {
        two: b.constant("two", Tensor::scalar(2.0f32)),
        eps: b.constant("eps", Tensor::scalar(1e-5f32)),
        sqrt2: b.constant("sqrt2", Tensor::scalar(std::f32::consts::SQRT_2)),
        one: b.constant("one", Tensor::scalar(1.0f32)),
        half: b.constant("half", Tensor::scalar(0.5f32)),
        gamma: vector(&mut b, "gamma", 1.5, 4),
        w: b.constant(
            "w",
            Tensor::from_vec(vec![4, 4], vec![0.25f32; 16]).unwrap(),
        ),
        bias: vector(&mut b, "bias", 0.125, 4),
        bn: [
            vector(&mut b, "bn_scale", 2.0, 2),
            vector(&mut b, "bn_shift", 0.5, 2),
            vector(&mut b, "bn_mean", 0.25, 2),
            vector(&mut b, "bn_var", 4.0, 2),
        ],
    };
    let mut cur = b.input("x", T);
    for k in 0..N.div_ceil(BLOCK_NODES) {
        cur = block(&mut b, &c, k, cur);
    }
    b.model(&[cur])
}

/// A constant through 40k Relus (folded with an evaluator), and 20k `Shape(x)[0]` summed by
/// an Add chain (the shapes simplified, then the sums folded, in the next round).
fn constant_chains() -> Model {
    let mut b = Builder::new();
    let data = vec![1.0f32, -2.0, 3.0, -4.0];
    let mut relu = b.constant("c", Tensor::from_vec(vec![4], data).unwrap());
    for _ in 0..2 * N / 5 {
        relu = b.node(activation(ActivationKind::Relu), &[relu], &[4]);
    }
    let x = b.input("x", &[3, 5]);
    let i64_ty =
        |dims: &[usize]| ValueType::Tensor(TensorType::new(DType::I64, Shape::known(dims)));
    let zero = b.constant("zero", Tensor::scalar(0i64));
    let mut sum = zero;
    for _ in 0..N / 5 {
        let shape = b.typed_node(
            Op::Tensor(tensor::Op::ShapeOf(tensor::ShapeOf {
                start: 0,
                end: None,
            })),
            &[x],
            i64_ty(&[2]),
        );
        let dim = b.typed_node(
            Op::Tensor(tensor::Op::Gather(tensor::Gather { axis: 0 })),
            &[shape, zero],
            i64_ty(&[]),
        );
        sum = b.typed_node(binary(BinaryKind::Add), &[sum, dim], i64_ty(&[]));
    }
    b.model(&[relu, sum])
}

/// The reference kernels these tests need: Relu of f32 and Add of i64.
fn evaluate(node: &Node, inputs: &[Option<&Value>]) -> Result<Vec<Value>> {
    let tensor = |k: usize| match inputs.get(k).copied().flatten() {
        Some(Value::Tensor(t)) => Ok(t),
        _ => Err(Error::invalid_input("not a tensor")),
    };
    let out = match &node.op {
        Op::Elementwise(ew::Op::Activation(Activation {
            kind: ActivationKind::Relu,
        })) => {
            let x = tensor(0)?;
            let y: Vec<f32> = x.to_vec::<f32>()?.iter().map(|v| v.max(0.0)).collect();
            Tensor::from_vec(x.shape().to_vec(), y)?
        }
        Op::Elementwise(ew::Op::Binary(b)) if b.kind == BinaryKind::Add => {
            let (a, b) = (tensor(0)?.to_vec::<i64>()?, tensor(1)?.to_vec::<i64>()?);
            Tensor::scalar(a[0] + b[0])
        }
        _ => return Err(Error::invalid_input(node.describe())),
    };
    Ok(vec![Value::Tensor(out)])
}

fn size(g: &Graph) -> usize {
    g.nodes.len() + g.values.len()
}

/// Runs every pass of the pipeline once on its own copy of `model`, and the whole pipeline
/// at level all: each held to [`PER_ELEMENT`] visits per element of the graph it was given
/// (the pipeline's passes per round, for at most four rounds with a sort and an inference
/// after each rewriting pass). Prints the visits (`--nocapture` shows them); returns the model
/// the pipeline made and its report.
fn assert_linear(what: &str, model: &Model, options: &Options<'_>) -> (Model, Report) {
    let n = size(&model.graph);
    assert!(
        model.graph.nodes.len() >= N,
        "{what}: {} nodes",
        model.graph.nodes.len()
    );
    println!(
        "{what}: {} nodes, {} values",
        model.graph.nodes.len(),
        model.graph.values.len()
    );
    for pass in pipeline() {
        let mut g = model.graph.clone();
        let mut work = Work::default();
        let rewrites = (pass.run)(&mut g, options, &mut work)
            .unwrap_or_else(|e| panic!("{what}: {}: {e}", pass.name));
        println!(
            "  {:<22} alone: {:>8} visits ({:.2} per element), {rewrites} rewrites",
            pass.name,
            work.visits,
            work.visits as f64 / n as f64
        );
        assert!(
            work.visits <= PER_ELEMENT * n,
            "{what}: {} made {} visits ({rewrites} rewrites) on a graph of {n}",
            pass.name,
            work.visits
        );
    }
    let mut m = model.clone();
    let report = optimize(&mut m, options).unwrap();
    println!("  pipeline: {report}");
    for p in &report.passes {
        println!(
            "  {:<22} in the pipeline: {:>8} visits ({:.2} per element)",
            p.name,
            p.visits,
            p.visits as f64 / n as f64
        );
        assert!(
            p.visits <= 4 * (PER_ELEMENT + 2) * n,
            "{what}: in the pipeline {} made {} visits on a graph of {n} ({report})",
            p.name,
            p.visits
        );
    }
    (m, report)
}

#[test]
fn an_identity_chain_is_bypassed_in_linear_work() {
    let model = identity_chain();
    let (all, report) = assert_linear("identity chain", &model, &Options::default());
    assert_eq!(all.graph.nodes.len(), 1, "{report}");
    let mut m = model.clone();
    let report = optimize(
        &mut m,
        &Options {
            level: Level::Basic,
            ..Options::default()
        },
    )
    .unwrap();
    // The last Identity writes the graph output's name from the input: it stays.
    assert_eq!(m.graph.nodes.len(), 1, "{report}");
    let last = &m.graph.nodes[0];
    assert_eq!(last.op.name(), "Identity");
    assert_eq!(last.inputs, [Some(m.graph.inputs[0])]);
    assert_eq!(last.outputs, [Some(m.graph.outputs[0])]);
}

#[test]
fn a_long_chain_of_fusions_is_rewritten_in_linear_work() {
    let (m, report) = assert_linear(
        "elementwise chain",
        &elementwise_chain(),
        &Options::default(),
    );
    let h = m.op_histogram();
    assert_eq!(h.get("MatMulBias"), Some(&(N / 5)), "{report}");
    assert_eq!(h.get("MatMul"), None, "{report}");
    assert_eq!(h.get("Relu"), None, "{report}");
    assert_eq!(m.graph.nodes.len(), 3 * N / 5, "{report}");
}

#[test]
fn a_value_read_by_many_nodes_is_merged_in_linear_work() {
    let (m, report) = assert_linear("wide fan-out", &wide_fan_out(), &Options::default());
    let h = m.op_histogram();
    // The Relus read by the Add chain become one; the LeakyRelus stay apart (they differ);
    // the Identities go. Each of the 50k Relus that is a graph output keeps its name, so each
    // is written by the one Relu or by an Identity of it.
    assert_eq!(h.get("Relu"), Some(&1), "{report}");
    assert_eq!(h.get("LeakyRelu"), Some(&(N / 4 / 3)), "{report}");
    assert_eq!(h.get("Identity"), Some(&(N / 2 - 1)), "{report}");
    assert_eq!(m.graph.outputs.len(), N / 2 + 1);
}

#[test]
fn every_fusion_firing_thousands_of_times_takes_linear_work() {
    let (m, report) = assert_linear(
        "transformer chain",
        &transformer_chain(),
        &Options::default(),
    );
    let blocks = N.div_ceil(BLOCK_NODES);
    let h = m.op_histogram();
    for op in [
        "LayerNormalization",
        "Attention",
        "Gelu",
        "RMSNormalization",
        "MatMulBias",
        "FusedConv",
    ] {
        assert_eq!(h.get(op), Some(&blocks), "{op}: {report}: {h:?}");
    }
    assert_eq!(m.graph.nodes.len(), 6 * blocks, "{report}: {h:?}");
    // The LayerNorms had no scale: they share one constant of ones.
    let scales: std::collections::HashSet<_> = m
        .graph
        .nodes
        .iter()
        .filter(|n| n.op.name() == "LayerNormalization")
        .map(|n| n.inputs[1])
        .collect();
    assert_eq!(scales.len(), 1);
}

#[test]
fn long_chains_of_folds_take_linear_work() {
    let eval = evaluate;
    let options = Options {
        evaluate: Some(&eval),
        ..Options::default()
    };
    let (m, report) = assert_linear("constant chains", &constant_chains(), &options);
    assert_eq!(m.graph.nodes.len(), 0, "{report}");
    let constant = |k: usize| m.graph.values[m.graph.outputs[k]].constant.clone().unwrap();
    assert_eq!(constant(0).to_vec::<f32>().unwrap(), [1.0, 0.0, 3.0, 0.0]);
    assert_eq!(constant(1).to_vec::<i64>().unwrap(), [3 * (N / 5) as i64]);
}
