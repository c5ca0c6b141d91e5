//! Shared helpers of the fusion passes: looking at a node's producers and readers, reading
//! scalar constants, and rewriting a matched pattern into one node.
//!
//! A fusion pass looks at each node in turn, once; when a pattern ends at it, the pattern's
//! last node is replaced in place by the fused node, which keeps that node's output value
//! (so names, types and graph outputs stay as they were). The other nodes of the pattern are
//! then unread: they are marked dead at once (and whatever only they read, in turn) and
//! removed when the sweep ends. The index of producers and readers is updated in place
//! after each rewrite, never rebuilt, so a sweep is linear in the graph however many
//! patterns it fuses; a pattern that a rewrite makes possible earlier in the graph is found
//! by the pipeline's next round.

use std::collections::HashMap;

use xnpu_core::{DType, Dim, Result, Shape, Tensor, TensorType, ValueType};
use xnpu_ops::elementwise::{self as ew, BinaryKind, UnaryKind};

use super::Work;
use crate::ir::{Graph, Node, Op, ValueId};

/// A node input reading a value: valid while the node's generation is `gen` (a rewrite of
/// the node gives it new inputs and a new generation).
#[derive(Clone, Copy)]
struct Reader {
    node: usize,
    gen: u32,
}

/// Who produces and who reads each value of a graph, kept up to date through rewrites.
pub(crate) struct Index {
    producers: Vec<Option<(usize, usize)>>,
    /// May hold readers a rewrite made stale; [`Index::live`] tells.
    consumers: Vec<Vec<Reader>>,
    /// How many live node inputs read each value.
    readers: Vec<usize>,
    is_input: Vec<bool>,
    is_output: Vec<bool>,
    /// Per node: unread after a rewrite, waiting to be removed.
    dead: Vec<bool>,
    gen: Vec<u32>,
}

impl Index {
    pub fn new(g: &Graph) -> Index {
        let n = g.values.len();
        let mut consumers = vec![Vec::new(); n];
        let mut readers = vec![0; n];
        for (i, node) in g.nodes.iter().enumerate() {
            for v in node.inputs.iter().flatten() {
                consumers[*v].push(Reader { node: i, gen: 0 });
                readers[*v] += 1;
            }
        }
        Index {
            producers: g.producers(),
            consumers,
            readers,
            is_input: g.input_set(),
            is_output: g.output_set(),
            dead: vec![false; g.nodes.len()],
            gen: vec![0; g.nodes.len()],
        }
    }

    fn live(&self, r: &Reader) -> bool {
        !self.dead[r.node] && self.gen[r.node] == r.gen
    }

    /// Makes room for values added to the graph (constants: no producer, no reader).
    fn grow(&mut self, n_values: usize) {
        self.producers.resize(n_values, None);
        self.consumers.resize_with(n_values, Vec::new);
        self.readers.resize(n_values, 0);
        self.is_input.resize(n_values, false);
        self.is_output.resize(n_values, false);
    }

    /// One reader of `v` fewer; when none is left (and `v` is no graph output), its producer
    /// may be dead: queued in `unread`.
    fn drop_reader(&mut self, v: ValueId, unread: &mut Vec<ValueId>) {
        self.readers[v] = self.readers[v].saturating_sub(1);
        if self.readers[v] == 0 && !self.is_output[v] {
            unread.push(v);
        }
    }

    /// Marks dead every node that nothing reads any more, from the values in `unread` up
    /// through their inputs.
    fn kill_unread(&mut self, g: &Graph, mut unread: Vec<ValueId>) {
        while let Some(v) = unread.pop() {
            let Some((p, _)) = self.producers[v] else {
                continue;
            };
            if self.dead[p] {
                continue;
            }
            let used = g.nodes[p]
                .outputs
                .iter()
                .flatten()
                .any(|&o| self.readers[o] > 0 || self.is_output[o]);
            if used {
                continue;
            }
            self.dead[p] = true;
            for &u in g.nodes[p].inputs.iter().flatten() {
                self.drop_reader(u, &mut unread);
            }
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
    /// The index of the node producing `v`, when a live node does (with `v` its first
    /// output).
    pub fn producer_idx(&self, v: ValueId) -> Option<usize> {
        match self.ix.producers.get(v).copied().flatten() {
            Some((n, 0)) if !self.ix.dead[n] => Some(n),
            _ => None,
        }
    }

    /// The node producing `v` as its first output.
    pub fn producer(&self, v: ValueId) -> Option<&'a Node> {
        self.producer_idx(v).map(|i| &self.g.nodes[i])
    }

    /// How many node inputs read `v`.
    pub fn readers(&self, v: ValueId) -> usize {
        self.ix.readers[v]
    }

    /// The nodes that read `v`. This walks every reader `v` has had in the sweep (a stale one
    /// is skipped): matchers ask it only of a value of one reader ([`View::private`]) that a
    /// pattern of a bounded size ends at, so each value is asked a bounded number of times and
    /// the sweep stays linear in the node inputs it has seen.
    pub fn reader_nodes(&self, v: ValueId) -> impl Iterator<Item = usize> + 'a {
        let ix = self.ix;
        ix.consumers[v]
            .iter()
            .filter(move |r| ix.live(r))
            .map(|r| r.node)
    }

    /// Whether `v` is read by exactly `n` node inputs and is not a graph output: an
    /// intermediate that a fusion may swallow.
    pub fn private(&self, v: ValueId, n: usize) -> bool {
        self.readers(v) == n && !self.ix.is_output[v]
    }

    /// The data of a constant that is not a graph input.
    pub fn constant(&self, v: ValueId) -> Option<&'a Tensor> {
        if self.ix.is_input[v] {
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
        None => {
            let t = v.constant(n.inputs.get(1).copied().flatten()?)?;
            if t.len() != 1 {
                return None;
            }
            t.to_i64_vec().ok()?
        }
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

/// The most bytes of ones a sweep makes (for missing scales), all constants together: their
/// lengths are dims the model declares, not data it holds, so without a bound a model of
/// many norms of distinct declared widths could make it allocate without end.
const MAX_ONES_BYTES: usize = 64 << 20;

/// The constants of ones a sweep has made, shared by every node that needs one.
#[derive(Default)]
struct Ones {
    made: HashMap<(DType, usize), ValueId>,
    bytes: usize,
}

impl Ones {
    /// The value of `[len]` ones of `dtype` (f32 or f64), made (and named `name`) when it is
    /// the first; `None` when it cannot be made within [`MAX_ONES_BYTES`] or memory.
    fn get(&mut self, g: &mut Graph, dtype: DType, len: usize, name: String) -> Option<ValueId> {
        if let Some(&v) = self.made.get(&(dtype, len)) {
            return Some(v);
        }
        let bytes = dtype.elem_bytes()?.checked_mul(len)?;
        let total = self.bytes.checked_add(bytes)?;
        if total > MAX_ONES_BYTES {
            return None;
        }
        fn filled<T: xnpu_core::Elem + Copy>(len: usize, one: T) -> Option<Tensor> {
            let mut v = Vec::new();
            v.try_reserve_exact(len).ok()?;
            v.resize(len, one);
            Tensor::from_vec(vec![len], v).ok()
        }
        let t = match dtype {
            DType::F32 => filled(len, 1.0f32),
            DType::F64 => filled(len, 1.0f64),
            _ => None,
        }?;
        let ty = ValueType::Tensor(TensorType::new(dtype, Shape::known(t.shape())));
        let v = g.add_value(name, ty);
        g.values[v].constant = Some(t);
        self.made.insert((dtype, len), v);
        self.bytes = total;
        Some(v)
    }
}

/// An input of a fused node.
pub(crate) enum Arg {
    Value(ValueId),
    /// A new constant (named after the fused node).
    Const(&'static str, Tensor),
    /// A constant `[len]` of ones of a float dtype, made once per sweep and shared by every
    /// node that needs it (named after the first).
    Ones(&'static str, DType, usize),
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

/// Replaces node `rw.at` and updates the index: the old inputs lose a reader (their
/// producers, and what only they read, die when nothing is left reading them), the new
/// inputs gain one. `false` (nothing changed) when a constant it needs cannot be made.
fn apply(g: &mut Graph, ix: &mut Index, ones: &mut Ones, rw: Rewrite) -> bool {
    let name = format!("{}/{}", g.nodes[rw.at].name, rw.tag);
    // The shared constants first: when one cannot be made, nothing has changed.
    let mut shared = Vec::new();
    for a in &rw.args {
        if let Arg::Ones(suffix, dtype, len) = *a {
            match ones.get(g, dtype, len, format!("{name}/{suffix}")) {
                Some(v) => shared.push(v),
                None => return false,
            }
        }
    }
    let mut shared = shared.into_iter();
    let mut inputs = Vec::with_capacity(rw.args.len());
    for a in rw.args {
        inputs.push(match a {
            Arg::Value(v) => Some(v),
            Arg::Absent => None,
            Arg::Ones(..) => shared.next(),
            Arg::Const(suffix, t) => {
                let ty = ValueType::Tensor(TensorType::new(t.dtype(), Shape::known(t.shape())));
                let v = g.add_value(format!("{name}/{suffix}"), ty);
                g.values[v].constant = Some(t);
                Some(v)
            }
        });
    }
    ix.grow(g.values.len());
    let at = rw.at;
    ix.gen[at] = ix.gen[at].wrapping_add(1);
    for v in inputs.iter().flatten() {
        ix.consumers[*v].push(Reader {
            node: at,
            gen: ix.gen[at],
        });
        ix.readers[*v] += 1;
    }
    let n = &mut g.nodes[at];
    let old = std::mem::replace(&mut n.inputs, inputs);
    n.name = name;
    n.op = rw.op;
    for o in n.outputs.drain(1.min(n.outputs.len())..).flatten() {
        ix.producers[o] = None;
    }
    let mut unread = Vec::new();
    for v in old.into_iter().flatten() {
        ix.drop_reader(v, &mut unread);
    }
    ix.kill_unread(g, unread);
    true
}

/// How often one node may be rewritten in a sweep (a fused node may start a pattern of its
/// own): a bound that keeps a sweep linear whatever the matcher does.
const MAX_REWRITES_PER_NODE: usize = 4;

/// Runs a matcher over every node, once each, rewriting where it matches; returns the
/// rewrites made. `matcher(view, i)` says what replaces node `i` (or a later node of the
/// same pattern). Each match attempt is one visit of `work`.
pub(crate) fn rewrite_all(
    g: &mut Graph,
    work: &mut Work,
    matcher: impl Fn(View<'_>, usize) -> Option<Rewrite>,
) -> Result<usize> {
    let mut count = 0;
    let mut ix = Index::new(g);
    work.scan(g);
    let mut ones = Ones::default();
    for i in 0..g.nodes.len() {
        for _ in 0..MAX_REWRITES_PER_NODE {
            if ix.dead[i] {
                break;
            }
            work.visit();
            let Some(rw) = matcher(View { g, ix: &ix }, i) else {
                break;
            };
            if !apply(g, &mut ix, &mut ones, rw) {
                break;
            }
            count += 1;
        }
    }
    if count > 0 {
        let mut k = 0;
        g.nodes.retain(|_| {
            k += 1;
            !ix.dead[k - 1]
        });
        g.remove_dead();
        work.scan(g);
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
