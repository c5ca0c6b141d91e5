//! Static memory planning: where every intermediate tensor of a graph lives in one arena per
//! device, so that a backend allocates each arena once and runs the whole graph in it.
//!
//! [`plan`] does four things:
//!
//! 1. **Sizes.** Each value produced by a node gets its byte size from its inferred type, with
//!    symbols (such as `batch`) replaced by `bindings`. A value whose size is still unknown
//!    (unknown type or rank, an unbound symbol, strings, sequences, optionals) is *dynamic*:
//!    it is listed in [`MemoryPlan::dynamic_values`] and left out of the arena (the backend
//!    allocates it when it is computed).
//! 2. **Liveness.** A value lives from the node that produces it to the last node that reads it
//!    (both included, so an op's inputs and outputs are live together); a graph output lives
//!    to the end. Graph inputs and constants are not in the arena; their bytes are reported as
//!    [`MemoryPlan::io_bytes`] and [`MemoryPlan::weights_bytes`].
//! 3. **In place.** When an op allows it, its output takes over the slot of an input whose
//!    last reader is this node (and that is not a graph output, input or constant): element-wise
//!    unary ops and activations, Clip, Cast and CastLike to a dtype of the same size, Binary,
//!    PRelu and variadic (Sum, Mean, Max, Min) ops whose output has the shape and dtype of
//!    that input ([`MemoryPlan::in_place`]), and
//!    Identity, Reshape, Flatten, Squeeze, Unsqueeze and Dropout, whose output is a view of
//!    their input ([`MemoryPlan::aliases`]). Values that share a slot this way form one
//!    buffer, live from the first one's birth to the last one's death.
//! 4. **Offsets.** Buffers are placed by *greedy by size* (the offset planner of TensorFlow
//!    Lite, Pisarchyk & Lee 2020): largest first, each at the lowest offset — the best-fitting
//!    gap among the buffers already placed whose lifetimes overlap its own, else above them
//!    all. Offsets are multiples of [`PlanOptions::alignment`] (64 bytes by default).
//!
//! With a device assignment ([`PlanOptions::device_of_node`], a partition index per node)
//! there is one arena per device, and each value lives on the device of its producer; a value
//! read on another device is copied there by the backend, which is not planned here.
//!
//! Graphs held by nodes (bodies of If, Loop, Scan, SequenceMap; FlexAttention's modifiers)
//! are not planned: their values are the business of the executor running the graph. The
//! outer values such a node reads (its inputs and captures) and its outputs are planned like
//! any other.

use std::collections::HashMap;
use std::fmt;

use xnpu_core::{shape::checked_nbytes, DType, Error, Result, ValueType};

use crate::ir::{Graph, Node, Op, ValueId};

/// What the planner may do.
#[derive(Clone, Copy, Debug)]
pub struct PlanOptions<'a> {
    /// Offsets (and the space taken by each slot) are multiples of this. A power of two.
    pub alignment: usize,
    /// Let outputs take over the slots of dying inputs (in place and aliases).
    pub in_place: bool,
    /// The device (partition index) of each node, one per node of the graph. `None`: all on
    /// device 0.
    pub device_of_node: Option<&'a [usize]>,
}

impl Default for PlanOptions<'_> {
    fn default() -> Self {
        PlanOptions {
            alignment: 64,
            in_place: true,
            device_of_node: None,
        }
    }
}

/// Where one value lives: `size` bytes at `offset` in arena `arena`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    pub arena: usize,
    pub offset: usize,
    pub size: usize,
}

/// The result of [`plan`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MemoryPlan {
    /// Per value of the graph: its slot, or `None` for inputs, constants, dynamic values and
    /// values no node produces.
    pub slots: Vec<Option<Slot>>,
    /// Bytes of each arena (one per device): its peak.
    pub arena_sizes: Vec<usize>,
    /// Sum of the sizes of all planned values: what allocating each separately costs.
    pub naive_bytes: usize,
    /// Sum of `arena_sizes`.
    pub planned_bytes: usize,
    /// `(output, input)`: the output is computed over its input's slot.
    pub in_place: Vec<(ValueId, ValueId)>,
    /// `(output, input)`: the output is a view of its input (same slot, nothing written).
    pub aliases: Vec<(ValueId, ValueId)>,
    /// Values produced by nodes whose size is not known from the types and bindings.
    pub dynamic_values: Vec<ValueId>,
    /// Bytes of the graph's constants (not inputs).
    pub weights_bytes: usize,
    /// Bytes of the graph's inputs (those of known size after binding).
    pub io_bytes: usize,
}

impl MemoryPlan {
    /// Checks the plan against the graph: every slot lies inside its arena at an aligned
    /// offset, lives on the device of its producer (when `device_of_node` is given), and no
    /// two values that are live at the same time share bytes, except an output with the input
    /// it took over (recorded in `in_place` or `aliases`, whose last reader is that output's
    /// producer).
    pub fn verify(&self, graph: &Graph) -> Result<()> {
        self.verify_with(graph, &PlanOptions::default())
    }

    /// [`MemoryPlan::verify`] with the options the plan was made with (alignment, devices).
    pub fn verify_with(&self, graph: &Graph, options: &PlanOptions<'_>) -> Result<()> {
        if self.slots.len() != graph.values.len() {
            return fail(format!(
                "{} slots for {} values",
                self.slots.len(),
                graph.values.len()
            ));
        }
        let life = lifetimes(graph);
        let producers = graph.producers();
        let mut placed = self.check_slots(graph, options, &life, &producers)?;
        let taken_over = self.check_take_overs(graph, &life, &producers)?;
        placed.sort_by_key(|&(_, s, _, _)| (s.arena, s.offset));
        check_overlaps(graph, &placed, &taken_over)?;
        let sum: usize = self.arena_sizes.iter().sum();
        if sum != self.planned_bytes {
            return fail(format!(
                "planned_bytes {} is not the sum of the arenas {sum}",
                self.planned_bytes
            ));
        }
        Ok(())
    }

    /// Checks that each slot belongs to a produced value and lies inside its arena, aligned,
    /// on its producer's device; returns the non-empty ones with their values' lifetimes.
    fn check_slots(
        &self,
        graph: &Graph,
        options: &PlanOptions<'_>,
        life: &[Option<(usize, usize)>],
        producers: &[Option<(usize, usize)>],
    ) -> Result<Vec<PlacedValue>> {
        let devices = devices_of(graph, options)?;
        let name = |v: ValueId| &graph.values[v].name;
        let mut placed = Vec::new();
        for (v, slot) in self.slots.iter().enumerate() {
            let Some(s) = slot else { continue };
            let Some((start, end)) = life[v] else {
                return fail(format!("value \"{}\" has a slot but no producer", name(v)));
            };
            if s.arena >= self.arena_sizes.len() || s.offset + s.size > self.arena_sizes[s.arena] {
                return fail(format!(
                    "value \"{}\" ({s:?}) is outside its arena (sizes {:?})",
                    name(v),
                    self.arena_sizes
                ));
            }
            if options.alignment > 0 && s.offset % options.alignment != 0 {
                return fail(format!(
                    "value \"{}\" is at unaligned offset {}",
                    name(v),
                    s.offset
                ));
            }
            if let (Some(d), Some((p, _))) = (&devices, producers[v]) {
                if d[p] != s.arena {
                    return fail(format!(
                        "value \"{}\" is in arena {} but produced on device {}",
                        name(v),
                        s.arena,
                        d[p]
                    ));
                }
            }
            if s.size > 0 {
                placed.push((v, *s, start, end));
            }
        }
        Ok(placed)
    }

    /// Checks the shared slots that are allowed (an output and the input it took over, which
    /// must die where the output is born, at the same place, once); returns them as input →
    /// output.
    fn check_take_overs(
        &self,
        graph: &Graph,
        life: &[Option<(usize, usize)>],
        producers: &[Option<(usize, usize)>],
    ) -> Result<HashMap<ValueId, ValueId>> {
        let name = |v: ValueId| &graph.values[v].name;
        let mut taken_over = HashMap::new();
        let is_output = graph.output_set();
        for &(out, inp) in self.in_place.iter().chain(&self.aliases) {
            let (Some((p, _)), Some((_, inp_end))) = (producers[out], life[inp]) else {
                return fail(format!(
                    "\"{}\" over \"{}\": not both produced by nodes",
                    name(out),
                    name(inp)
                ));
            };
            if !graph.nodes[p].inputs.contains(&Some(inp)) || inp_end != p || is_output[inp] {
                return fail(format!(
                    "\"{}\" takes over \"{}\", which is still live after {}",
                    name(out),
                    name(inp),
                    graph.nodes[p].describe()
                ));
            }
            if let (Some(so), Some(si)) = (self.slots[out], self.slots[inp]) {
                if (so.arena, so.offset) != (si.arena, si.offset) {
                    return fail(format!(
                        "\"{}\" takes over \"{}\" but they are at {so:?} and {si:?}",
                        name(out),
                        name(inp)
                    ));
                }
            }
            if taken_over.insert(inp, out).is_some() {
                return fail(format!("\"{}\" is taken over twice", name(inp)));
            }
        }
        Ok(taken_over)
    }

    /// `naive_bytes / planned_bytes` (1 when nothing is planned).
    pub fn ratio(&self) -> f64 {
        if self.planned_bytes == 0 {
            1.0
        } else {
            self.naive_bytes as f64 / self.planned_bytes as f64
        }
    }
}

/// A value in the arena: its slot and lifetime (nodes, both ends included).
type PlacedValue = (ValueId, Slot, usize, usize);

/// A plan that fails verification, with `msg` saying why.
fn fail<T>(msg: String) -> Result<T> {
    Err(Error::model(format!("memory plan: {msg}")))
}

/// Checks that no two values (sorted by arena and offset) share bytes while both live,
/// unless one took over the other (`taken_over` maps input → output).
fn check_overlaps(
    graph: &Graph,
    placed: &[PlacedValue],
    taken_over: &HashMap<ValueId, ValueId>,
) -> Result<()> {
    let name = |v: ValueId| &graph.values[v].name;
    for (i, &(a, sa, a0, a1)) in placed.iter().enumerate() {
        for &(b, sb, b0, b1) in &placed[i + 1..] {
            if sb.arena != sa.arena || sb.offset >= sa.offset + sa.size {
                break;
            }
            let live_together = a0 <= b1 && b0 <= a1;
            let handoff = taken_over.get(&a) == Some(&b) || taken_over.get(&b) == Some(&a);
            // Two values of one chain of take-overs never live together past a hand-off.
            let touch_only = a1 == b0 || b1 == a0;
            if live_together && !(handoff || (touch_only && same_chain(a, b, taken_over))) {
                return fail(format!(
                    "\"{}\" ({sa:?}, nodes {a0}..={a1}) and \"{}\" ({sb:?}, nodes {b0}..={b1}) overlap",
                    name(a),
                    name(b)
                ));
            }
        }
    }
    Ok(())
}

/// Whether `a` and `b` are in one chain of take-overs (`taken_over` maps input → output).
fn same_chain(a: ValueId, b: ValueId, taken_over: &HashMap<ValueId, ValueId>) -> bool {
    let follows = |from: ValueId, to: ValueId| {
        let mut v = from;
        while let Some(&next) = taken_over.get(&v) {
            if next == to {
                return true;
            }
            v = next;
        }
        false
    };
    follows(a, b) || follows(b, a)
}

/// Bytes in binary units, one decimal.
fn human(bytes: usize) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut x = bytes as f64;
    let mut u = 0;
    while x >= 1024.0 && u + 1 < UNITS.len() {
        x /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{x:.1} {}", UNITS[u])
    }
}

impl fmt::Display for MemoryPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "peak {} planned vs {} naive ({:.1}×), {} values in place, {} aliases, {} dynamic; weights {}, inputs {}",
            human(self.planned_bytes),
            human(self.naive_bytes),
            self.ratio(),
            self.in_place.len(),
            self.aliases.len(),
            self.dynamic_values.len(),
            human(self.weights_bytes),
            human(self.io_bytes),
        )?;
        if self.arena_sizes.len() > 1 {
            let a: Vec<String> = self.arena_sizes.iter().map(|&b| human(b)).collect();
            write!(f, "; arenas [{}]", a.join(", "))?;
        }
        Ok(())
    }
}

/// For each value produced by a node: the index of that node and of the last node that reads
/// it (the end of the graph, `nodes.len()`, for a graph output). `None` for values no node
/// produces.
fn lifetimes(graph: &Graph) -> Vec<Option<(usize, usize)>> {
    let mut life: Vec<Option<(usize, usize)>> = vec![None; graph.values.len()];
    for (i, n) in graph.nodes.iter().enumerate() {
        for &v in n.outputs.iter().flatten() {
            life[v] = Some((i, i));
        }
    }
    for (i, n) in graph.nodes.iter().enumerate() {
        for &v in n.inputs.iter().flatten() {
            if let Some((_, end)) = &mut life[v] {
                *end = (*end).max(i);
            }
        }
    }
    for &v in &graph.outputs {
        if let Some((_, end)) = &mut life[v] {
            *end = graph.nodes.len();
        }
    }
    life
}

/// The device of each node, checked against the graph.
fn devices_of<'a>(graph: &Graph, options: &PlanOptions<'a>) -> Result<Option<&'a [usize]>> {
    match options.device_of_node {
        Some(d) if d.len() != graph.nodes.len() => Err(Error::invalid_input(format!(
            "memory plan: {} devices given for {} nodes",
            d.len(),
            graph.nodes.len()
        ))),
        d => Ok(d),
    }
}

/// Byte size of a value of type `ty` once `bindings` are applied, when known.
fn value_bytes(ty: &ValueType, bindings: &HashMap<String, usize>) -> Result<Option<usize>> {
    let Some(t) = ty.tensor() else {
        return Ok(None);
    };
    if t.dtype == DType::String {
        return Ok(None);
    }
    let Some(dims) = t
        .shape
        .as_ref()
        .and_then(|s| s.resolve(bindings).as_known())
    else {
        return Ok(None);
    };
    checked_nbytes(t.dtype, &dims).map(Some)
}

/// How a node may reuse an input's slot for its output 0.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reuse {
    /// The output is the input's bytes seen with another shape.
    Alias,
    /// The output is computed element by element over the input.
    InPlace,
}

/// Which inputs of `node` its output 0 may take over, and how.
fn reuse_candidates(node: &Node) -> (Reuse, &'static [usize]) {
    use xnpu_ops::elementwise::Op as E;
    use xnpu_ops::tensor::Op as T;
    match &node.op {
        Op::Elementwise(E::Unary(_) | E::Activation(_) | E::Clip(_) | E::Cast(_))
        | Op::Elementwise(E::CastLike(_)) => (Reuse::InPlace, &[0]),
        Op::Elementwise(E::Binary(_) | E::PRelu(_)) => (Reuse::InPlace, &[0, 1]),
        // Sum, Mean, Max, Min of up to 8 inputs (more is rare enough to not matter).
        Op::Elementwise(E::Variadic(_)) => (Reuse::InPlace, &[0, 1, 2, 3, 4, 5, 6, 7]),
        Op::Tensor(
            T::Identity(_)
            | T::Reshape(_)
            | T::Flatten(_)
            | T::Squeeze(_)
            | T::Unsqueeze(_)
            | T::Dropout(_),
        ) => (Reuse::Alias, &[0]),
        _ => (Reuse::InPlace, &[]),
    }
}

/// Whether output `out` may overwrite input `inp` element by element: same element count and
/// element size, and for ops of several inputs (Binary, PRelu, Sum/Mean/Max/Min) the same
/// shape and dtype (the other inputs broadcast to it).
fn compatible(
    graph: &Graph,
    node: &Node,
    out: ValueId,
    inp: ValueId,
    bindings: &HashMap<String, usize>,
) -> bool {
    let (Some(o), Some(i)) = (graph.values[out].ty.tensor(), graph.values[inp].ty.tensor()) else {
        return false;
    };
    let dims = |t: &xnpu_core::TensorType| {
        t.shape
            .as_ref()
            .and_then(|s| s.resolve(bindings).as_known())
    };
    let (Some(od), Some(id)) = (dims(o), dims(i)) else {
        return false;
    };
    use xnpu_ops::elementwise::Op as E;
    if matches!(
        node.op,
        Op::Elementwise(E::Binary(_) | E::PRelu(_) | E::Variadic(_))
    ) {
        od == id && o.dtype == i.dtype
    } else {
        od.iter().product::<usize>() == id.iter().product::<usize>()
            && o.dtype.bits() == i.dtype.bits()
    }
}

/// One allocation: the values sharing it, its lifetime (nodes, both ends included), its size.
struct Buffer {
    device: usize,
    start: usize,
    end: usize,
    size: usize,
    offset: usize,
}

/// Plans the memory of `graph`'s intermediate values; see the [module docs](self).
pub fn plan(
    graph: &Graph,
    bindings: &HashMap<String, usize>,
    options: &PlanOptions<'_>,
) -> Result<MemoryPlan> {
    let align = options.alignment.max(1);
    if !align.is_power_of_two() {
        return Err(Error::invalid_input(format!(
            "memory plan: alignment {align} is not a power of two"
        )));
    }
    let devices = devices_of(graph, options)?;
    let n_arenas = devices.map_or(1, |d| d.iter().max().map_or(1, |m| m + 1));
    let mut out = MemoryPlan {
        slots: vec![None; graph.values.len()],
        ..Default::default()
    };
    for (_, t) in graph.constants() {
        out.weights_bytes += t.raw_bytes().len();
    }
    for &v in &graph.inputs {
        out.io_bytes += value_bytes(&graph.values[v].ty, bindings)?.unwrap_or(0);
    }
    let planner = Planner {
        graph,
        bindings,
        devices,
        life: lifetimes(graph),
        size: arena_sizes_of_values(graph, bindings, &mut out)?,
        is_output: graph.output_set(),
    };
    let mut buffers = planner.buffers(options.in_place, &mut out);
    out.arena_sizes = place_greedy_by_size(&mut buffers.list, n_arenas, align);
    out.planned_bytes = out.arena_sizes.iter().sum();
    for (v, b) in buffers.of.iter().enumerate() {
        if let (Some(b), Some(bytes)) = (b, planner.size[v]) {
            let b = &buffers.list[*b];
            out.slots[v] = Some(Slot {
                arena: b.device,
                offset: b.offset,
                size: bytes,
            });
        }
    }
    Ok(out)
}

/// The byte size of each value that goes in the arena (produced by a node, neither constant
/// nor input, of known size); adds them to `out.naive_bytes` and lists the values of unknown
/// size in `out.dynamic_values`.
fn arena_sizes_of_values(
    graph: &Graph,
    bindings: &HashMap<String, usize>,
    out: &mut MemoryPlan,
) -> Result<Vec<Option<usize>>> {
    let producers = graph.producers();
    let is_input = graph.input_set();
    let mut size: Vec<Option<usize>> = vec![None; graph.values.len()];
    for (v, info) in graph.values.iter().enumerate() {
        if producers[v].is_none() || info.constant.is_some() || is_input[v] {
            continue;
        }
        match value_bytes(&info.ty, bindings)? {
            Some(b) => {
                size[v] = Some(b);
                out.naive_bytes += b;
            }
            None => out.dynamic_values.push(v),
        }
    }
    Ok(size)
}

/// The buffers of a plan, and the buffer of each value (`None`: not in the arena).
struct Buffers {
    list: Vec<Buffer>,
    of: Vec<Option<usize>>,
}

/// What the planner knows of a graph: the nodes' devices, the values' lifetimes and sizes.
struct Planner<'a> {
    graph: &'a Graph,
    bindings: &'a HashMap<String, usize>,
    devices: Option<&'a [usize]>,
    life: Vec<Option<(usize, usize)>>,
    /// Bytes of each value in the arena.
    size: Vec<Option<usize>>,
    /// For each value, whether it is a graph output.
    is_output: Vec<bool>,
}

impl Planner<'_> {
    fn device(&self, node: usize) -> usize {
        self.devices.map_or(0, |d| d[node])
    }

    /// One buffer per value in the arena, except outputs that take over an input's buffer
    /// (when `in_place`), which join it; those are recorded in `out.in_place` and
    /// `out.aliases`.
    fn buffers(&self, in_place: bool, out: &mut MemoryPlan) -> Buffers {
        let mut bufs = Buffers {
            list: Vec::new(),
            of: vec![None; self.graph.values.len()],
        };
        for (i, node) in self.graph.nodes.iter().enumerate() {
            let mut taken = false;
            for (k, &o) in node.outputs.iter().enumerate() {
                let Some(o) = o else { continue };
                let Some(bytes) = self.size[o] else { continue };
                let (_, end) = self.life[o].expect("a node output has a lifetime");
                if in_place && k == 0 && !taken {
                    if let Some((inp, how)) = self.take_over(&bufs, i, node, o, bytes) {
                        let b = bufs.of[inp].expect("checked above");
                        bufs.list[b].end = bufs.list[b].end.max(end);
                        bufs.of[o] = Some(b);
                        taken = true;
                        match how {
                            Reuse::Alias => out.aliases.push((o, inp)),
                            Reuse::InPlace => out.in_place.push((o, inp)),
                        }
                        continue;
                    }
                }
                bufs.of[o] = Some(bufs.list.len());
                bufs.list.push(Buffer {
                    device: self.device(i),
                    start: i,
                    end,
                    size: bytes,
                    offset: 0,
                });
            }
        }
        bufs
    }

    /// The first input of node `i` whose buffer output `o` (`bytes` long) may take over, and
    /// how: one of the op's candidates, of the same size, dying here, no graph output, on
    /// this node's device and of a compatible type.
    fn take_over(
        &self,
        bufs: &Buffers,
        i: usize,
        node: &Node,
        o: ValueId,
        bytes: usize,
    ) -> Option<(ValueId, Reuse)> {
        let (how, slots) = reuse_candidates(node);
        let mut pick = slots
            .iter()
            .filter_map(|&s| node.inputs.get(s).copied().flatten());
        pick.find(|&inp| {
            self.size[inp] == Some(bytes)
                && self.life[inp].is_some_and(|(_, e)| e == i)
                && !self.is_output[inp]
                && bufs.of[inp].is_some_and(|b| bufs.list[b].device == self.device(i))
                && compatible(self.graph, node, o, inp, self.bindings)
        })
        .map(|inp| (inp, how))
    }
}

/// Places the buffers greedy by size, per device: largest first, each at the lowest offset
/// that fits among the buffers already placed that live at the same time. Returns the size
/// of each arena.
fn place_greedy_by_size(buffers: &mut [Buffer], n_arenas: usize, align: usize) -> Vec<usize> {
    let mut arena_sizes = vec![0; n_arenas];
    let mut order: Vec<usize> = (0..buffers.len()).collect();
    order.sort_by_key(|&b| (std::cmp::Reverse(buffers[b].size), buffers[b].start, b));
    let mut placed: Vec<Vec<usize>> = vec![Vec::new(); n_arenas];
    for b in order {
        let (dev, start, end) = (buffers[b].device, buffers[b].start, buffers[b].end);
        let need = buffers[b].size.div_ceil(align) * align;
        // Byte ranges of placed buffers that live at the same time, by offset.
        let mut busy: Vec<(usize, usize)> = placed[dev]
            .iter()
            .map(|&p| &buffers[p])
            .filter(|p| p.start <= end && start <= p.end)
            .map(|p| (p.offset, p.offset + p.size.div_ceil(align) * align))
            .collect();
        busy.sort_unstable();
        let offset = best_fit(&busy, need);
        buffers[b].offset = offset;
        arena_sizes[dev] = arena_sizes[dev].max(offset + need);
        placed[dev].push(b);
    }
    arena_sizes
}

/// The offset for `need` bytes beside the byte ranges `busy` (sorted): the start of the
/// smallest gap that holds them, else the end of the highest range.
fn best_fit(busy: &[(usize, usize)], need: usize) -> usize {
    let mut best: Option<(usize, usize)> = None; // (gap, offset)
    let mut cursor = 0;
    for &(lo, hi) in busy {
        if lo >= cursor + need {
            let gap = lo - cursor;
            if best.is_none_or(|(g, _)| gap < g) {
                best = Some((gap, cursor));
            }
        }
        cursor = cursor.max(hi);
    }
    best.map_or(cursor, |(_, o)| o)
}

#[cfg(test)]
mod tests {
    use super::*;
    use xnpu_core::{Dim, Shape, TensorType};
    use xnpu_ops::elementwise::{Activation, ActivationKind, Binary, BinaryKind};
    use xnpu_ops::tensor::Transpose;

    const MB: usize = 1 << 20;

    #[test]
    fn best_fit_takes_the_smallest_gap_that_holds_the_buffer() {
        // Gaps of 64 bytes at 0 and of 32 at 128; 320 at 192 (under the last range).
        let busy = [(64, 128), (160, 192), (512, 576)];
        assert_eq!(best_fit(&busy, 32), 128);
        assert_eq!(best_fit(&busy, 64), 0);
        assert_eq!(best_fit(&busy, 300), 192);
        // No gap holds it: above everything.
        assert_eq!(best_fit(&busy, 1000), 576);
        assert_eq!(best_fit(&[], 8), 0);
    }

    /// A float tensor of `bytes` bytes (a multiple of 4).
    fn f32_of(bytes: usize) -> ValueType {
        ValueType::Tensor(TensorType::new(DType::F32, Shape::known(&[bytes / 4])))
    }

    fn transpose() -> Op {
        Op::Tensor(xnpu_ops::tensor::Op::Transpose(Transpose { perm: None }))
    }

    fn relu() -> Op {
        Op::Elementwise(xnpu_ops::elementwise::Op::Activation(Activation {
            kind: ActivationKind::Relu,
        }))
    }

    fn add() -> Op {
        Op::Elementwise(xnpu_ops::elementwise::Op::Binary(Binary::new(
            BinaryKind::Add,
        )))
    }

    fn node(g: &mut Graph, op: Op, inputs: &[ValueId], ty: ValueType) -> ValueId {
        let y = g.add_value(format!("v{}", g.values.len()), ty);
        g.nodes.push(Node {
            name: format!("#{}", g.nodes.len()),
            op,
            inputs: inputs.iter().map(|&v| Some(v)).collect(),
            outputs: vec![Some(y)],
        });
        y
    }

    /// `x → t1 → t2 → … → tn` of Transposes (which never run in place), each 1 MiB.
    fn chain(n: usize) -> Graph {
        let mut g = Graph::default();
        let mut v = g.add_value("x", f32_of(MB));
        g.inputs.push(v);
        for _ in 0..n {
            v = node(&mut g, transpose(), &[v], f32_of(MB));
        }
        g.outputs.push(v);
        g
    }

    fn plan_default(g: &Graph) -> MemoryPlan {
        let p = plan(g, &HashMap::new(), &PlanOptions::default()).unwrap();
        p.verify(g).unwrap();
        p
    }

    #[test]
    fn a_chain_reuses_two_slots() {
        let g = chain(6);
        let p = plan_default(&g);
        assert_eq!(p.naive_bytes, 6 * MB);
        assert_eq!(p.planned_bytes, 2 * MB, "{p}");
        let offsets: std::collections::BTreeSet<_> =
            p.slots.iter().flatten().map(|s| s.offset).collect();
        assert_eq!(offsets.len(), 2);
        assert!(p.slots[g.inputs[0]].is_none());
        assert_eq!(p.io_bytes, MB);
        assert!(p.to_string().contains("3.0×"), "{p}");
    }

    #[test]
    fn a_diamond_keeps_both_branches_alive() {
        // x → a; a → b; a → c; (b, c) → d: b and c are live together, and a dies at c.
        let mut g = Graph::default();
        let x = g.add_value("x", f32_of(MB));
        g.inputs.push(x);
        let a = node(&mut g, transpose(), &[x], f32_of(MB));
        let b = node(&mut g, transpose(), &[a], f32_of(MB));
        let c = node(&mut g, transpose(), &[a], f32_of(MB));
        let d = node(&mut g, transpose(), &[b, c], f32_of(MB));
        g.outputs.push(d);
        let p = plan_default(&g);
        let slot = |v: ValueId| p.slots[v].unwrap();
        assert_ne!(slot(b).offset, slot(c).offset);
        assert_ne!(slot(a).offset, slot(b).offset);
        assert_ne!(slot(a).offset, slot(c).offset);
        assert_ne!(slot(d).offset, slot(b).offset);
        assert_ne!(slot(d).offset, slot(c).offset);
        // a, b, c live together at node 2; d reuses a's slot.
        assert_eq!(p.planned_bytes, 3 * MB);
        assert_eq!(slot(d).offset, slot(a).offset);
    }

    #[test]
    fn in_place_only_when_the_input_dies() {
        // a = T(x); r = Relu(a), a read again later: not in place.
        // s = Relu(r), r dies there: in place. y = Add(s, a): s dies there → in place.
        let mut g = Graph::default();
        let x = g.add_value("x", f32_of(MB));
        g.inputs.push(x);
        let a = node(&mut g, transpose(), &[x], f32_of(MB));
        let r = node(&mut g, relu(), &[a], f32_of(MB));
        let s = node(&mut g, relu(), &[r], f32_of(MB));
        let y = node(&mut g, add(), &[s, a], f32_of(MB));
        g.outputs.push(y);
        let p = plan_default(&g);
        assert!(!p.in_place.contains(&(r, a)), "{:?}", p.in_place);
        assert!(p.in_place.contains(&(s, r)), "{:?}", p.in_place);
        assert!(p.in_place.contains(&(y, s)), "{:?}", p.in_place);
        assert_eq!(p.planned_bytes, 2 * MB);
        // A graph output is never taken over, nor is a graph input.
        let mut g = Graph::default();
        let x = g.add_value("x", f32_of(MB));
        g.inputs.push(x);
        let r = node(&mut g, relu(), &[x], f32_of(MB));
        let s = node(&mut g, relu(), &[r], f32_of(MB));
        g.outputs.extend([r, s]);
        let p = plan_default(&g);
        assert!(p.in_place.is_empty() && p.aliases.is_empty());
        // Without in place, the chain of Relus needs two slots.
        let none = PlanOptions {
            in_place: false,
            ..Default::default()
        };
        let mut g = Graph::default();
        let x = g.add_value("x", f32_of(MB));
        g.inputs.push(x);
        let a = node(&mut g, transpose(), &[x], f32_of(MB));
        let r = node(&mut g, relu(), &[a], f32_of(MB));
        g.outputs.push(r);
        assert_eq!(
            plan(&g, &HashMap::new(), &none).unwrap().planned_bytes,
            2 * MB
        );
        assert_eq!(plan_default(&g).planned_bytes, MB);
    }

    #[test]
    fn binary_in_place_needs_the_output_shape() {
        // y = Add(a, b) with a broadcast to b's shape: only b can be taken over.
        let mut g = Graph::default();
        let x = g.add_value("x", f32_of(1024));
        g.inputs.push(x);
        let a = node(&mut g, transpose(), &[x], f32_of(64));
        let b = node(&mut g, transpose(), &[x], f32_of(1024));
        let y = node(&mut g, add(), &[a, b], f32_of(1024));
        g.outputs.push(y);
        let p = plan_default(&g);
        assert_eq!(p.in_place, vec![(y, b)]);
        // Sum(a, b, c) of one shape takes over its first dying input.
        let sum = Op::Elementwise(xnpu_ops::elementwise::Op::Variadic(
            xnpu_ops::elementwise::Variadic {
                kind: xnpu_ops::elementwise::VariadicKind::Sum,
            },
        ));
        let mut g = Graph::default();
        let x = g.add_value("x", f32_of(MB));
        g.inputs.push(x);
        let a = node(&mut g, transpose(), &[x], f32_of(MB));
        let b = node(&mut g, transpose(), &[x], f32_of(MB));
        let y = node(&mut g, sum, &[x, a, b], f32_of(MB));
        g.outputs.push(y);
        assert_eq!(plan_default(&g).in_place, vec![(y, a)]);
    }

    #[test]
    fn verify_catches_an_overlap() {
        let mut g = Graph::default();
        let x = g.add_value("x", f32_of(MB));
        g.inputs.push(x);
        let a = node(&mut g, transpose(), &[x], f32_of(MB));
        let b = node(&mut g, transpose(), &[x], f32_of(MB));
        let y = node(&mut g, add(), &[a, b], f32_of(MB));
        g.outputs.push(y);
        let mut p = plan_default(&g);
        // a and b live together: put them at the same offset.
        p.slots[b] = p.slots[a];
        let err = p.verify(&g).unwrap_err().to_string();
        assert!(err.contains("overlap"), "{err}");
        // A claimed take-over of an input that is still live is caught too.
        let mut p = plan_default(&g);
        p.in_place = vec![(b, x)];
        assert!(p.verify(&g).is_err());
        // So is a slot past the end of its arena.
        let mut p = plan_default(&g);
        p.arena_sizes[0] = MB;
        p.planned_bytes = MB;
        assert!(p.verify(&g).is_err());
    }

    #[test]
    fn symbols_are_bound_and_unknown_sizes_are_dynamic() {
        let mut g = Graph::default();
        let sym = |d: &str| {
            ValueType::Tensor(TensorType::new(
                DType::F32,
                Shape(vec![Dim::Sym(d.into()), Dim::Known(256)]),
            ))
        };
        let x = g.add_value("x", sym("batch"));
        g.inputs.push(x);
        let a = node(&mut g, transpose(), &[x], sym("batch"));
        let b = node(&mut g, transpose(), &[a], sym("n"));
        let c = node(&mut g, transpose(), &[b], ValueType::Unknown);
        g.outputs.push(c);
        let bindings = HashMap::from([("batch".to_string(), 4)]);
        let p = plan(&g, &bindings, &PlanOptions::default()).unwrap();
        p.verify(&g).unwrap();
        assert_eq!(p.slots[a].unwrap().size, 4 * 256 * 4);
        assert_eq!(p.dynamic_values, vec![b, c]);
        assert_eq!(p.io_bytes, 4 * 256 * 4);
        assert!(p.to_string().contains("2 dynamic"), "{p}");
    }

    #[test]
    fn one_arena_per_device() {
        let g = chain(6);
        let devices = [0, 0, 0, 1, 1, 1];
        let options = PlanOptions {
            device_of_node: Some(&devices),
            ..Default::default()
        };
        let p = plan(&g, &HashMap::new(), &options).unwrap();
        p.verify_with(&g, &options).unwrap();
        assert_eq!(p.arena_sizes, vec![2 * MB, 2 * MB]);
        assert_eq!(p.planned_bytes, 4 * MB);
        // Value 3 (output of node 2) crosses to device 1 but lives on device 0.
        assert_eq!(p.slots[3].unwrap().arena, 0);
        assert!(p.to_string().contains("arenas"), "{p}");
        let bad = PlanOptions {
            device_of_node: Some(&devices[..2]),
            ..Default::default()
        };
        assert!(plan(&g, &HashMap::new(), &bad).is_err());
    }

    #[test]
    fn alignment_rounds_slots_up() {
        let mut g = Graph::default();
        let x = g.add_value("x", f32_of(4));
        g.inputs.push(x);
        let a = node(&mut g, transpose(), &[x], f32_of(4));
        let b = node(&mut g, transpose(), &[a], f32_of(4));
        g.outputs.push(b);
        let p = plan_default(&g);
        assert_eq!(p.naive_bytes, 8);
        assert_eq!(p.planned_bytes, 128);
        assert!(p.slots.iter().flatten().all(|s| s.offset % 64 == 0));
    }
}
