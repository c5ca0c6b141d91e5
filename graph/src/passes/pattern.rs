//! Shared helpers of the fusion passes: looking at a node's producers and readers, reading
//! scalar constants, and rewriting a matched pattern into one node.
//!
//! A fusion pass looks at each node in turn; when a pattern ends at it, the pattern's last
//! node is replaced in place by the fused node, which keeps that node's output value (so
//! names, types and graph outputs stay as they were). The other nodes of the pattern are then
//! unread and dead-code removal drops them. After each rewrite the indexes are rebuilt and
//! the scan resumes at or before the rewritten node, so matches never see stale
//! producer/reader tables.

use xnpu_core::{DType, Dim, Result, Shape, Tensor, TensorType, ValueType};
use xnpu_ops::elementwise::{self as ew, BinaryKind, UnaryKind};

use crate::ir::{Graph, Node, Op, Use, ValueId};

/// Who produces and who reads each value of a graph.
pub(crate) struct Index {
    producers: Vec<Option<(usize, usize)>>,
    consumers: Vec<Vec<Use>>,
}

impl Index {
    pub fn new(g: &Graph) -> Index {
        Index {
            producers: g.producers(),
            consumers: g.consumers(),
        }
    }
}

/// A graph and its index, for matching.
#[derive(Clone, Copy)]
pub(crate) struct View<'a> {
    pub g: &'a Graph,
    ix: &'a Index,
}

impl<'a> View<'a> {
    /// The index of the node producing `v`, when a node does (with `v` its first output).
    pub fn producer_idx(&self, v: ValueId) -> Option<usize> {
        match self.ix.producers.get(v).copied().flatten() {
            Some((n, 0)) => Some(n),
            _ => None,
        }
    }

    /// The node producing `v` as its first output.
    pub fn producer(&self, v: ValueId) -> Option<&'a Node> {
        self.producer_idx(v).map(|i| &self.g.nodes[i])
    }

    /// How many node inputs read `v`.
    pub fn readers(&self, v: ValueId) -> usize {
        self.ix.consumers[v].len()
    }

    /// The nodes that read `v`.
    pub fn reader_nodes(&self, v: ValueId) -> impl Iterator<Item = usize> + 'a {
        self.ix.consumers[v].iter().map(|u| u.node)
    }

    /// Whether `v` is read by exactly `n` node inputs and is not a graph output: an
    /// intermediate that a fusion may swallow.
    pub fn private(&self, v: ValueId, n: usize) -> bool {
        self.readers(v) == n && !self.g.is_output(v)
    }

    /// The data of a constant that is not a graph input.
    pub fn constant(&self, v: ValueId) -> Option<&'a Tensor> {
        if self.g.inputs.contains(&v) {
            return None;
        }
        self.g.values[v].constant.as_ref()
    }

    /// A numeric constant of one element, as f64.
    pub fn scalar(&self, v: ValueId) -> Option<f64> {
        let t = self.constant(v)?;
        if t.len() != 1 || matches!(t.dtype(), DType::String | DType::Bool) {
            return None;
        }
        t.to_f64_vec().ok()?.first().copied()
    }

    /// A one-element float constant `c` used in an element-wise op with `x`, when it cannot
    /// change the result's shape (rank 0, or a rank no larger than x's known rank), and has
    /// x's dtype.
    pub fn scalar_for(&self, c: ValueId, x: ValueId) -> Option<f64> {
        let v = self.scalar(c)?;
        let t = self.constant(c)?;
        if Some(t.dtype()) != self.dtype(x) {
            return None;
        }
        if t.rank() == 0 || self.shape(x).is_some_and(|s| s.rank() >= t.rank()) {
            Some(v)
        } else {
            None
        }
    }

    pub fn tensor_type(&self, v: ValueId) -> Option<&'a TensorType> {
        self.g.values[v].ty.tensor()
    }

    pub fn dtype(&self, v: ValueId) -> Option<DType> {
        if let Some(t) = self.constant(v) {
            return Some(t.dtype());
        }
        self.tensor_type(v).map(|t| t.dtype)
    }

    pub fn shape(&self, v: ValueId) -> Option<&'a Shape> {
        self.tensor_type(v).and_then(|t| t.shape.as_ref())
    }

    /// The known size of the last dim of `v`.
    pub fn last_dim(&self, v: ValueId) -> Option<usize> {
        self.shape(v)?.0.last()?.known()
    }
}

/// When `n` is `ReduceMean(x)` over x's last axis only, keeping dims: x.
pub(crate) fn mean_over_last_axis(v: View<'_>, n: &Node) -> Option<ValueId> {
    let Op::Reduce(xnpu_ops::reduce::Op::Reduce(r)) = &n.op else {
        return None;
    };
    if r.kind != xnpu_ops::reduce::ReduceKind::Mean || !r.keepdims || !single_output(n) {
        return None;
    }
    let x = n.inputs.first().copied().flatten()?;
    let axes = match &r.axes {
        Some(a) => a.clone(),
        None => v
            .constant(n.inputs.get(1).copied().flatten()?)?
            .to_i64_vec()
            .ok()?,
    };
    let rank = v.shape(x)?.rank() as i64;
    match axes[..] {
        [a] if rank > 0 && (a == -1 || a == rank - 1) => Some(x),
        _ => None,
    }
}

/// When `val` is read only by one node, a binary node of `kind` with `val` as an operand:
/// that node's index and its other operand.
pub(crate) fn next_binary(v: View<'_>, val: ValueId, kind: BinaryKind) -> Option<(usize, ValueId)> {
    if !v.private(val, 1) {
        return None;
    }
    let idx = v.reader_nodes(val).next()?;
    let (a, b) = binary_of(&v.g.nodes[idx], kind)?;
    if !single_output(&v.g.nodes[idx]) {
        return None;
    }
    Some((idx, other(a, b, val)?))
}

/// Whether `a` is within `tol` (relative) of `b`.
pub(crate) fn near(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * b.abs().max(1e-30)
}

/// The kind of a binary element-wise node.
pub(crate) fn binary(n: &Node) -> Option<BinaryKind> {
    match &n.op {
        Op::Elementwise(ew::Op::Binary(b)) if b.legacy_axis.is_none() => Some(b.kind),
        _ => None,
    }
}

/// The two inputs of a binary node of `kind` (for Add, also a `Sum` of two inputs, as ONNX
/// function bodies write it).
pub(crate) fn binary_of(n: &Node, kind: BinaryKind) -> Option<(ValueId, ValueId)> {
    let is_sum = matches!(
        &n.op,
        Op::Elementwise(ew::Op::Variadic(v)) if v.kind == ew::VariadicKind::Sum
    );
    if !(binary(n) == Some(kind) || (kind == BinaryKind::Add && is_sum)) || n.inputs.len() != 2 {
        return None;
    }
    Some((n.inputs[0]?, n.inputs[1]?))
}

/// The input of a unary node of `kind`.
pub(crate) fn unary_of(n: &Node, kind: UnaryKind) -> Option<ValueId> {
    match &n.op {
        Op::Elementwise(ew::Op::Unary(u)) if u.kind == kind => n.inputs.first().copied().flatten(),
        _ => None,
    }
}

/// The first output of a node.
pub(crate) fn out(n: &Node) -> Option<ValueId> {
    n.outputs.first().copied().flatten()
}

/// Whether the node writes only its first output.
pub(crate) fn single_output(n: &Node) -> bool {
    !n.outputs.is_empty() && n.outputs[1..].iter().all(Option::is_none)
}

/// `Some(y)` when `{a, b} == {x, y}` for the given `x`.
pub(crate) fn other(a: ValueId, b: ValueId, x: ValueId) -> Option<ValueId> {
    if a == x {
        Some(b)
    } else if b == x {
        Some(a)
    } else {
        None
    }
}

/// Whether `s` is a per-last-dim vector for a tensor whose last dim is `n`: `[n]` or
/// `[1, .., 1, n]`, of rank at most `rank`.
pub(crate) fn is_last_dim_vector(s: &Shape, n: usize, rank: usize) -> bool {
    let Some((last, lead)) = s.0.split_last() else {
        return false;
    };
    s.rank() <= rank && *last == Dim::Known(n) && lead.iter().all(|d| *d == Dim::Known(1))
}

/// Makes a tensor of `dtype` (f32 or f64) from f64 data.
pub(crate) fn float_tensor(dtype: DType, shape: Vec<usize>, data: Vec<f64>) -> Option<Tensor> {
    match dtype {
        DType::F32 => Tensor::from_vec(shape, data.into_iter().map(|x| x as f32).collect()).ok(),
        DType::F64 => Tensor::from_vec(shape, data).ok(),
        _ => None,
    }
}

/// An input of a fused node.
pub(crate) enum Arg {
    Value(ValueId),
    /// A new constant (named after the fused node).
    Const(&'static str, Tensor),
    Absent,
}

/// What replaces the node at `at`: `op` applied to `args`, writing the node's first output.
pub(crate) struct Rewrite {
    pub at: usize,
    pub op: Op,
    pub args: Vec<Arg>,
    /// Short name of the fusion, appended to the node's name.
    pub tag: &'static str,
}

fn apply(g: &mut Graph, rw: Rewrite) {
    let name = format!("{}/{}", g.nodes[rw.at].name, rw.tag);
    let mut inputs = Vec::with_capacity(rw.args.len());
    for a in rw.args {
        inputs.push(match a {
            Arg::Value(v) => Some(v),
            Arg::Absent => None,
            Arg::Const(suffix, t) => {
                let ty = ValueType::Tensor(TensorType::new(t.dtype(), Shape::known(t.shape())));
                let v = g.add_value(format!("{name}/{suffix}"), ty);
                g.values[v].constant = Some(t);
                Some(v)
            }
        });
    }
    let n = &mut g.nodes[rw.at];
    n.name = name;
    n.op = rw.op;
    n.inputs = inputs;
    n.outputs.truncate(1);
}

/// Runs a matcher over every node until no pattern is left; returns the rewrites made.
/// `matcher(view, i)` says what replaces node `i` (or a later node of the same pattern).
pub(crate) fn rewrite_all(
    g: &mut Graph,
    matcher: impl Fn(View<'_>, usize) -> Option<Rewrite>,
) -> Result<usize> {
    let mut count = 0;
    let mut i = 0;
    let mut ix = Index::new(g);
    while i < g.nodes.len() {
        let found = matcher(View { g, ix: &ix }, i);
        let Some(rw) = found else {
            i += 1;
            continue;
        };
        apply(g, rw);
        count += 1;
        let (removed, _) = g.remove_dead();
        // Pattern nodes all precede the rewritten one; once the first removal has taken
        // every other dead node, the scan can resume a little before it.
        i = if count == 1 {
            0
        } else {
            i.saturating_sub(removed)
        };
        ix = Index::new(g);
    }
    Ok(count)
}

/// Builders of small graphs for the passes' unit tests.
#[cfg(test)]
pub(crate) mod build {
    use super::*;
    use xnpu_ops::elementwise::{Binary, Unary};

    pub struct B {
        pub g: Graph,
        n: usize,
    }

    pub fn f32_ty(dims: &[usize]) -> ValueType {
        ValueType::Tensor(TensorType::new(DType::F32, Shape::known(dims)))
    }

    impl B {
        pub fn new() -> B {
            B {
                g: Graph::default(),
                n: 0,
            }
        }

        pub fn input(&mut self, name: &str, dims: &[usize]) -> ValueId {
            let v = self.g.add_value(name, f32_ty(dims));
            self.g.inputs.push(v);
            v
        }

        pub fn constant(&mut self, t: Tensor) -> ValueId {
            self.n += 1;
            let ty = ValueType::Tensor(TensorType::new(t.dtype(), Shape::known(t.shape())));
            let v = self.g.add_value(format!("c{}", self.n), ty);
            self.g.values[v].constant = Some(t);
            v
        }

        pub fn scalar(&mut self, x: f32) -> ValueId {
            self.constant(Tensor::scalar(x))
        }

        pub fn vector(&mut self, xs: &[f32]) -> ValueId {
            self.constant(Tensor::from_vec(vec![xs.len()], xs.to_vec()).unwrap())
        }

        /// Adds `op(inputs)` with one output of type `ty`.
        pub fn node(&mut self, op: Op, inputs: &[ValueId], ty: ValueType) -> ValueId {
            self.n += 1;
            let v = self.g.add_value(format!("v{}", self.n), ty);
            self.g.nodes.push(Node {
                name: format!("n{}", self.n),
                op,
                inputs: inputs.iter().map(|&i| Some(i)).collect(),
                outputs: vec![Some(v)],
            });
            v
        }

        pub fn bin(&mut self, kind: BinaryKind, a: ValueId, b: ValueId, dims: &[usize]) -> ValueId {
            self.node(
                Op::Elementwise(ew::Op::Binary(Binary::new(kind))),
                &[a, b],
                f32_ty(dims),
            )
        }

        pub fn un(&mut self, kind: UnaryKind, a: ValueId, dims: &[usize]) -> ValueId {
            self.node(
                Op::Elementwise(ew::Op::Unary(Unary { kind })),
                &[a],
                f32_ty(dims),
            )
        }

        /// `x[1,2,4,4]` (a new input) through a 1×1 Conv with 3 all-ones filters, no bias:
        /// returns the conv's output `[1,3,4,4]`.
        pub fn conv_1x1(&mut self) -> ValueId {
            let x = self.input("x", &[1, 2, 4, 4]);
            let w = self.constant(Tensor::from_vec(vec![3, 2, 1, 1], vec![1.0f32; 6]).unwrap());
            self.node(
                Op::Nn(xnpu_ops::nn::Op::Conv(Default::default())),
                &[x, w],
                f32_ty(&[1, 3, 4, 4]),
            )
        }

        pub fn output(&mut self, v: ValueId) {
            self.g.outputs.push(v);
        }

        pub fn count(&self, name: &str) -> usize {
            self.g.nodes.iter().filter(|n| n.op.name() == name).count()
        }
    }
}
