//! The interpreter: runs a graph's nodes in order, keeping each value until its last use.

use xnpu_core::{Error, Result, Value};
use xnpu_graph::ir::{Graph, Node, Op, ValueId};

use crate::fast::Fast;
use crate::Kernel;

/// Runs `graph` on `inputs` (aligned with `graph.inputs`; `None` falls back to the input's
/// initializer default) with `captured` values bound to the body's captures (aligned with
/// `graph.captures`). Returns the graph outputs in order.
pub fn run_graph(
    graph: &Graph,
    inputs: &[Option<Value>],
    captured: &[Value],
) -> Result<Vec<Value>> {
    run_graph_owned(graph, inputs.to_vec(), captured)
}

/// [`run_graph`] on inputs the caller gives up: an input that no graph output names is
/// dropped after its last reader, and a kernel that can update a buffer in place (the KV
/// cache of GroupQueryAttention) receives it when the interpreter holds its only reference.
pub fn run_graph_owned(
    graph: &Graph,
    inputs: Vec<Option<Value>>,
    captured: &[Value],
) -> Result<Vec<Value>> {
    run_planned(graph, &[], inputs, captured)
}

/// [`run_graph_owned`] with the fast kernels `plan` chose for the nodes (in node order; a
/// node past its end or with `None` runs its reference kernel, as does one whose fast kernel
/// declines its inputs).
pub(crate) fn run_planned(
    graph: &Graph,
    plan: &[Option<Fast>],
    inputs: Vec<Option<Value>>,
    captured: &[Value],
) -> Result<Vec<Value>> {
    let mut env = Env::bind(graph, inputs, captured)?;
    // The run's limits (cancellation, time, memory), when the runtime set any.
    let scope = xnpu_core::run::current().filter(|s| s.is_limited());
    let mut memory = scope
        .as_ref()
        .filter(|s| s.max_memory().is_some())
        .map(|_| Memory::new(graph, &env));
    for (i, node) in graph.nodes.iter().enumerate() {
        if let Some(s) = &scope {
            s.check().map_err(|e| e.context(node.describe()))?;
            if let Some(m) = &memory {
                // Outputs whose sizes are known now are refused before any is allocated.
                if let Some(bytes) = m.static_output_bytes(graph, node) {
                    s.reserve(bytes, "its outputs")
                        .map_err(|e| e.context(node.describe()))?;
                }
            }
        }
        let donated = env.take_donated(i, node);
        let args = env
            .args(node, &donated)
            .map_err(|e| e.context(node.describe()))?;
        let fast = plan.get(i).and_then(Option::as_ref);
        let started = crate::profile::on().then(std::time::Instant::now);
        let mut ran_fast = false;
        let outs = if let Some(out) = fast.and_then(|f| f.run(&args)) {
            ran_fast = true;
            out
        } else if donated.is_empty() {
            run_node(node, &args)
        } else {
            run_node_donated(node, &args, donated)
        }
        .map_err(|e| e.context(node.describe()))?;
        if let Some(t) = started {
            crate::profile::record(&node.name, node.op.name(), ran_fast, t.elapsed());
        }
        if let (Some(m), Some(s)) = (&mut memory, &scope) {
            m.produced(node, &args, &outs);
            drop(args);
            m.released(i, node, &env);
            s.set_live(m.live).map_err(|e| e.context(node.describe()))?;
        } else {
            drop(args);
        }
        env.store_outputs(node, outs);
        env.release_inputs(i, node);
    }
    env.outputs()
}

/// What a run holds in values, for its memory limit: bytes per value, counted once per
/// buffer (an output that views an input's bytes, as Reshape's does, adds nothing).
struct Memory {
    bytes: Vec<u64>,
    live: u64,
}

impl Memory {
    fn new(graph: &Graph, env: &Env<'_>) -> Memory {
        let mut bytes = vec![0u64; graph.values.len()];
        let mut live = 0u64;
        for &id in &graph.inputs {
            if graph.values[id].constant.is_none() {
                if let Some(v) = &env.values[id] {
                    bytes[id] = value_bytes(v);
                    live = live.saturating_add(bytes[id]);
                }
            }
        }
        Memory { bytes, live }
    }

    /// The bytes of `node`'s outputs when the graph knows all their dims and dtypes.
    fn static_output_bytes(&self, graph: &Graph, node: &Node) -> Option<u64> {
        let mut total = 0u64;
        for id in node.outputs.iter().flatten() {
            let t = graph.values[*id].ty.tensor()?;
            let dims = t.shape.as_ref()?.as_known()?;
            let n = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
            // Element counts past usize are refused with the largest size.
            let b = n.and_then(|n| t.dtype.byte_len(n)).unwrap_or(usize::MAX);
            total = total.saturating_add(b as u64);
        }
        Some(total)
    }

    fn produced(&mut self, node: &Node, args: &[Option<&Value>], outs: &[Value]) {
        for (slot, v) in node.outputs.iter().zip(outs) {
            let Some(id) = slot else { continue };
            let views_input = match v {
                Value::Tensor(t) => args.iter().flatten().any(|a| match a {
                    Value::Tensor(a) => shares(a.raw_bytes(), t.raw_bytes()),
                    _ => false,
                }),
                _ => false,
            };
            let b = if views_input { 0 } else { value_bytes(v) };
            self.live = self.live.saturating_sub(self.bytes[*id]).saturating_add(b);
            self.bytes[*id] = b;
        }
    }

    fn released(&mut self, i: usize, node: &Node, env: &Env<'_>) {
        for id in node.inputs.iter().flatten() {
            if env.dies_at(*id, i) {
                self.live = self
                    .live
                    .saturating_sub(std::mem::take(&mut self.bytes[*id]));
            }
        }
    }
}

/// Whether `b` lies inside `a`'s bytes (a view of the same buffer).
fn shares(a: &[u8], b: &[u8]) -> bool {
    let (a0, b0) = (a.as_ptr() as usize, b.as_ptr() as usize);
    !b.is_empty() && b0 >= a0 && b0 + b.len() <= a0 + a.len()
}

/// The bytes a value holds (strings by their lengths).
fn value_bytes(v: &Value) -> u64 {
    let tensor = |t: &xnpu_core::Tensor| -> u64 {
        match t.strings() {
            Ok(s) => s.iter().map(|s| s.len() as u64 + 24).sum(),
            Err(_) => t.raw_bytes().len() as u64,
        }
    };
    match v {
        Value::Tensor(t) => tensor(t),
        Value::Sequence { items, .. } => items.iter().map(tensor).sum(),
        Value::Optional { value, .. } => value.as_deref().map_or(0, value_bytes),
    }
}

/// The interpreter's values while a graph runs, and the last node that reads each one.
struct Env<'g> {
    graph: &'g Graph,
    values: Vec<Option<Value>>,
    /// Last node that reads each value, so that intermediate values are dropped early.
    last_use: Vec<usize>,
}

impl<'g> Env<'g> {
    /// Binds the constants, the inputs (an absent one falls back to its initializer) and
    /// the captures.
    fn bind(graph: &'g Graph, inputs: Vec<Option<Value>>, captured: &[Value]) -> Result<Env<'g>> {
        let mut env: Vec<Option<Value>> = vec![None; graph.values.len()];
        for (id, v) in graph.values.iter().enumerate() {
            if let Some(t) = &v.constant {
                env[id] = Some(Value::Tensor(t.clone()));
            }
        }
        let mut inputs = inputs.into_iter();
        for &id in graph.inputs.iter() {
            match inputs.next().flatten() {
                Some(v) => env[id] = Some(v),
                None if env[id].is_some() => {}
                None => {
                    return Err(Error::invalid_input(format!(
                        "input \"{}\" is missing",
                        graph.values[id].name
                    )))
                }
            }
        }
        if captured.len() != graph.captures.len() {
            return Err(Error::compute(format!(
                "body \"{}\" captures {} values, {} were bound",
                graph.name,
                graph.captures.len(),
                captured.len()
            )));
        }
        for (c, v) in graph.captures.iter().zip(captured) {
            env[c.inner] = Some(v.clone());
        }
        let mut last_use = vec![usize::MAX; graph.values.len()];
        for (i, n) in graph.nodes.iter().enumerate() {
            for id in n.inputs.iter().flatten() {
                last_use[*id] = i;
            }
        }
        // Graph outputs never leave the environment (no node is their last reader).
        for &id in &graph.outputs {
            last_use[id] = usize::MAX;
        }
        Ok(Env {
            graph,
            values: env,
            last_use,
        })
    }

    /// Whether value `id` may leave the environment after node `i`: that node reads it last,
    /// and it is neither a graph output nor a constant.
    fn dies_at(&self, id: ValueId, i: usize) -> bool {
        self.last_use[id] == i && self.graph.values[id].constant.is_none()
    }

    /// The inputs node `i` may update in place, taken out of the environment when it reads
    /// them last (and only once); `donated[slot]` for each.
    fn take_donated(&mut self, i: usize, node: &Node) -> Vec<Option<Value>> {
        let mut donated: Vec<Option<Value>> = Vec::new();
        for &slot in donatable(&node.op) {
            if let Some(Some(id)) = node.inputs.get(slot) {
                let sole_reader = node.inputs.iter().flatten().filter(|&v| v == id).count() == 1;
                if sole_reader && self.dies_at(*id, i) {
                    if donated.len() <= slot {
                        donated.resize(slot + 1, None);
                    }
                    donated[slot] = self.values[*id].take();
                }
            }
        }
        donated
    }

    /// The node's arguments: `None` for an absent input and for a donated one.
    fn args(&self, node: &Node, donated: &[Option<Value>]) -> Result<Vec<Option<&Value>>> {
        node.inputs
            .iter()
            .enumerate()
            .map(|(slot, v)| match v {
                None => Ok(None),
                Some(_) if donated.get(slot).is_some_and(|d| d.is_some()) => Ok(None),
                Some(id) => self.values[*id].as_ref().map(Some).ok_or_else(|| {
                    Error::compute(format!(
                        "value \"{}\" was not computed",
                        self.graph.values[*id].name
                    ))
                }),
            })
            .collect()
    }

    /// Binds the node's outputs.
    fn store_outputs(&mut self, node: &Node, outs: Vec<Value>) {
        for (slot, v) in node.outputs.iter().zip(outs) {
            if let Some(id) = slot {
                self.values[*id] = Some(v);
            }
        }
    }

    /// Drops the inputs that node `i` read last.
    fn release_inputs(&mut self, i: usize, node: &Node) {
        for id in node.inputs.iter().flatten() {
            if self.dies_at(*id, i) {
                self.values[*id] = None;
            }
        }
    }

    /// The graph outputs in order.
    fn outputs(&self) -> Result<Vec<Value>> {
        self.graph
            .outputs
            .iter()
            .map(|&id| {
                self.values[id].clone().ok_or_else(|| {
                    Error::compute(format!(
                        "output \"{}\" was not computed",
                        self.graph.values[id].name
                    ))
                })
            })
            .collect()
    }
}

/// The inputs of `op` that its kernel can update in place when given them.
fn donatable(op: &Op) -> &'static [usize] {
    match op {
        // past_key, past_value: the KV cache becomes present_key, present_value.
        Op::Attention(xnpu_ops::attention::Op::GroupQueryAttention(_)) => &[3, 4],
        _ => &[],
    }
}

/// Runs a node whose donated inputs (`donated[slot]`, absent from `inputs`) it may reuse.
fn run_node_donated(
    node: &Node,
    inputs: &[Option<&Value>],
    donated: Vec<Option<Value>>,
) -> Result<Vec<Value>> {
    match &node.op {
        Op::Attention(xnpu_ops::attention::Op::GroupQueryAttention(o)) => {
            crate::attention::gqa::group_query_attention_donated(o, inputs, donated)
        }
        _ => {
            let args: Vec<Option<&Value>> = inputs
                .iter()
                .enumerate()
                .map(|(k, a)| a.or_else(|| donated.get(k).and_then(|d| d.as_ref())))
                .collect();
            run_node(node, &args)
        }
    }
}

/// Runs one node on its input values.
pub fn run_node(node: &Node, inputs: &[Option<&Value>]) -> Result<Vec<Value>> {
    let n = node.outputs.len();
    let outs = match &node.op {
        Op::Elementwise(o) => o.run(inputs, n),
        Op::Tensor(o) => o.run(inputs, n),
        Op::Reduce(o) => o.run(inputs, n),
        Op::Nn(o) => o.run(inputs, n),
        Op::Rnn(o) => o.run(inputs, n),
        Op::Signal(o) => o.run(inputs, n),
        Op::Attention(o) => o.run(inputs, n),
        Op::Image(o) => o.run(inputs, n),
        Op::Ml(o) => o.run(inputs, n),
        Op::Sequence(o) => o.run(inputs, n),
        Op::Text(o) => o.run(inputs, n),
        Op::If(o) => crate::control::run_if(o, inputs),
        Op::Loop(o) => crate::control::run_loop(o, inputs),
        Op::Scan(o) => crate::control::run_scan(o, inputs),
        Op::SequenceMap(o) => crate::control::run_sequence_map(o, inputs),
        Op::FlexAttention(o) => crate::attention::flex::run(o, inputs),
    }?;
    let needed = node
        .outputs
        .iter()
        .rposition(|o| o.is_some())
        .map_or(0, |p| p + 1);
    if outs.len() < needed {
        return Err(Error::compute(format!(
            "the kernel produced {} outputs, the node needs {needed}",
            outs.len()
        )));
    }
    Ok(outs)
}
