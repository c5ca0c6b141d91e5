//! Partitioning: every node goes to one backend, and the graph is cut into convex
//! partitions (no path leaves a partition and comes back into it), one backend each, run in
//! a topological order of the partitions.
//!
//! 1. Each backend answers for each node ([`Support`]); a node goes to the first backend in
//!    the policy's order that supports it. A node nobody supports is an error carrying every
//!    backend's reason.
//! 2. Nodes are grouped in graph order: a node joins a partition of its backend when that
//!    creates no cycle between partitions (tracked with the transitive dependencies of each
//!    partition), else it opens a new one.
//! 3. Islands: a partition whose saving over the next backend (by the backends' costs) is
//!    smaller than what its device hops cost (`hop_cost` per value crossing to another
//!    device) moves to that backend, and grouping runs again.
//!
//! Every answer is kept, so `xnpu partition --explain` can say why a node runs where it runs.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;

use xnpu_core::{Error, Result};

use crate::backend::{Backend, DeviceKind, ReasonCode, Support};
use crate::ir::{Graph, ValueId};

/// How the partitioner weighs device hops.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PartitionOptions {
    /// The cost of moving one value between devices, in the backends' cost units (the
    /// reference CPU backend's cost of a node is 1).
    pub hop_cost: f32,
    /// Whether small islands are merged back into their neighbours' backend.
    pub merge_islands: bool,
}

impl Default for PartitionOptions {
    fn default() -> Self {
        PartitionOptions {
            hop_cost: 2.0,
            merge_islands: true,
        }
    }
}

/// Where one node runs and what every backend said about it.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeDecision {
    pub backend: usize,
    /// One answer per backend, in the policy's order.
    pub answers: Vec<Support>,
    /// Why the node is not on the first backend that supports it (island merging).
    pub note: Option<String>,
}

/// A convex subgraph run by one backend.
#[derive(Clone, Debug, PartialEq)]
pub struct Partition {
    pub backend: usize,
    /// Node indices, in graph order.
    pub nodes: Vec<usize>,
    /// Non-constant values read by the partition and produced elsewhere (graph inputs or
    /// other partitions), in first-use order.
    pub inputs: Vec<ValueId>,
    /// Values produced here and read by other partitions or returned by the graph.
    pub outputs: Vec<ValueId>,
}

/// One node of a plan: where it runs and why not elsewhere.
#[derive(Clone, Debug, PartialEq)]
pub struct ExplainRow {
    pub node: String,
    pub op: String,
    /// The backend that runs it.
    pub backend: String,
    /// Its partition's index.
    pub partition: usize,
    /// A fallback note, then each other backend's reason for refusing it, `; `-separated.
    pub why: String,
}

/// The partition explanation in the one JSON schema every surface writes
/// (`xnpu partition --explain --json`, the C ABI, Python, the ONNX Runtime EP):
/// `docs/explain.md`. Programs read `code`; people read `message`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Explanation {
    /// Always [`EXPLANATION_SCHEMA`].
    pub schema: String,
    pub model: String,
    /// Devices (backends) in the policy's order.
    pub devices: Vec<String>,
    /// What the device policy fell back from, plugins it skipped.
    pub notes: Vec<String>,
    pub partitions: Vec<ExplainedPartition>,
    /// One per node, in graph order.
    pub nodes: Vec<ExplainedNode>,
}

/// The schema name and version of [`Explanation`]; fields are only ever added.
pub const EXPLANATION_SCHEMA: &str = "xnpu.explain/1";

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ExplainedPartition {
    pub index: usize,
    pub device: String,
    pub nodes: usize,
    /// Names of the values the partition reads from outside and hands out.
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ExplainedNode {
    pub node: String,
    pub op: String,
    /// The op's ONNX domain ("" for the standard one, `com.microsoft`, `ai.xnpu` for xnpu's
    /// fused ops).
    pub domain: String,
    /// The device that runs it (`null` in an ONNX Runtime EP's explanation for a node left
    /// to ONNX Runtime).
    pub device: Option<String>,
    pub partition: Option<usize>,
    /// Why the node is not on the first device that takes it (island merging).
    pub note: Option<String>,
    /// Every other device's refusal, in the policy's order.
    pub refusals: Vec<Refusal>,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Refusal {
    pub device: String,
    /// A [`ReasonCode`] name: `op_not_supported`, `dtype`, `rank`, ...
    pub code: ReasonCode,
    /// The vendor library's own code, when it gave one.
    pub vendor_code: Option<i64>,
    pub message: String,
}

impl Explanation {
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| {
            // Serialising plain strings and numbers cannot fail; say so if it ever does.
            format!("{{\"schema\": \"{EXPLANATION_SCHEMA}\", \"error\": \"{e}\"}}")
        })
    }
}

/// The ONNX domain xnpu imports op `op` from: the standard domain when it has the op, else
/// the first other domain that does, else xnpu's own (fused ops).
pub fn op_domain(op: &str) -> &'static str {
    use std::collections::HashMap;
    use std::sync::OnceLock;
    static DOMAINS: OnceLock<HashMap<&'static str, &'static str>> = OnceLock::new();
    let map = DOMAINS.get_or_init(|| {
        let mut m: HashMap<&'static str, &'static str> = HashMap::new();
        for (d, o) in crate::onnx::ops::Registry::standard().ops() {
            let d = crate::onnx::ops::canonical_domain(d);
            let e = m.entry(o).or_insert(d);
            if d.is_empty() {
                *e = d;
            }
        }
        m
    });
    map.get(op)
        .copied()
        .unwrap_or(crate::onnx::export::XNPU_DOMAIN)
}

/// The result of partitioning a graph.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// Backend names, in the policy's order.
    pub backends: Vec<String>,
    pub kinds: Vec<DeviceKind>,
    /// Partitions in an order in which they can run.
    pub partitions: Vec<Partition>,
    /// One per graph node.
    pub decisions: Vec<NodeDecision>,
    /// Values that cross between partitions on different devices (per reading partition).
    pub hops: usize,
}

/// A bit set over partition indices.
#[derive(Clone, Debug, Default)]
struct Bits(Vec<u64>);

impl Bits {
    fn get(&self, i: usize) -> bool {
        self.0.get(i / 64).is_some_and(|w| w >> (i % 64) & 1 == 1)
    }
    fn set(&mut self, i: usize) {
        if self.0.len() <= i / 64 {
            self.0.resize(i / 64 + 1, 0);
        }
        self.0[i / 64] |= 1 << (i % 64);
    }
    fn union(&mut self, o: &Bits) {
        if self.0.len() < o.0.len() {
            self.0.resize(o.0.len(), 0);
        }
        for (a, b) in self.0.iter_mut().zip(&o.0) {
            *a |= b;
        }
    }
    fn count(&self) -> u32 {
        self.0.iter().map(|w| w.count_ones()).sum()
    }
}

/// Partitions `graph` over `backends` (in preference order).
pub fn partition(
    graph: &Graph,
    backends: &[&dyn Backend],
    options: &PartitionOptions,
) -> Result<Plan> {
    if backends.is_empty() {
        return Err(Error::invalid_input("no backend to run the graph on"));
    }
    let claims: Vec<Vec<Support>> = backends.iter().map(|b| claim(*b, graph)).collect();
    let mut decisions = Vec::with_capacity(graph.nodes.len());
    for (i, node) in graph.nodes.iter().enumerate() {
        let answers: Vec<Support> = claims.iter().map(|c| c[i].clone()).collect();
        let Some(backend) = answers.iter().position(Support::is_supported) else {
            let why: Vec<String> = backends
                .iter()
                .zip(&answers)
                .filter_map(|(b, a)| match a {
                    // A reason that starts with the backend's name needs it only once.
                    Support::Unsupported { reason, .. }
                        if reason.starts_with(&format!("{} ", b.name())) =>
                    {
                        Some(reason.clone())
                    }
                    Support::Unsupported { reason, .. } => Some(format!("{}: {reason}", b.name())),
                    Support::Supported { .. } => None,
                })
                .collect();
            return Err(Error::unsupported(format!(
                "no backend can run {}: {}",
                node.describe(),
                why.join("; ")
            )));
        };
        decisions.push(NodeDecision {
            backend,
            answers,
            note: None,
        });
    }
    let kinds: Vec<DeviceKind> = backends.iter().map(|b| b.kind()).collect();
    let names: Vec<String> = backends.iter().map(|b| b.name().to_string()).collect();
    let edges = Edges::of(graph);
    let mut partitions = group(graph, &edges, &decisions);
    if options.merge_islands && backends.len() > 1 {
        for _ in 0..graph.nodes.len().max(1) {
            let moved = merge_one_island(
                graph,
                &edges,
                &mut decisions,
                &partitions,
                &names,
                &kinds,
                options,
            );
            if !moved {
                break;
            }
            partitions = group(graph, &edges, &decisions);
        }
    }
    let hops = partitions
        .iter()
        .map(|p| crossing(graph, &edges, p, &decisions, &kinds))
        .sum();
    Ok(Plan {
        backends: names,
        kinds,
        partitions,
        decisions,
        hops,
    })
}

/// A backend's answers for every node of `graph`; a backend that answers for the wrong
/// number of nodes is taken to refuse them all (and says so).
fn claim(backend: &dyn Backend, graph: &Graph) -> Vec<Support> {
    let answers = backend.claim(graph);
    if answers.len() == graph.nodes.len() {
        return answers;
    }
    let reason = format!(
        "{} answered for {} nodes of a graph of {}",
        backend.name(),
        answers.len(),
        graph.nodes.len()
    );
    vec![Support::refuse(ReasonCode::NoAnswer, reason); graph.nodes.len()]
}

/// Groups nodes into acyclic partitions by their chosen backend.
fn group(graph: &Graph, edges: &Edges, decisions: &[NodeDecision]) -> Vec<Partition> {
    let producers = &edges.producers;
    let preds: Vec<Vec<usize>> = graph
        .nodes
        .iter()
        .map(|node| {
            node.inputs
                .iter()
                .flatten()
                .filter_map(|v| producers[*v].map(|(p, _)| p))
                .collect()
        })
        .collect();
    let backend: Vec<usize> = decisions.iter().map(|d| d.backend).collect();
    let parts = convex_groups(&preds, &backend);
    let mut out: Vec<Partition> = parts
        .into_iter()
        .map(|(backend, nodes)| Partition {
            backend,
            nodes,
            inputs: Vec::new(),
            outputs: Vec::new(),
        })
        .collect();
    let mut part_of = vec![0; graph.nodes.len()];
    for (k, p) in out.iter().enumerate() {
        for &n in &p.nodes {
            part_of[n] = k;
        }
    }
    let consumers = &edges.consumers;
    let is_input = graph.input_set();
    for (k, p) in out.iter_mut().enumerate() {
        let mut seen = HashSet::new();
        for &n in &p.nodes {
            for &v in graph.nodes[n].inputs.iter().flatten() {
                let inside = producers[v].is_some_and(|(q, _)| part_of[q] == k);
                let constant = graph.values[v].constant.is_some() && !is_input[v];
                if !inside && !constant && seen.insert(v) {
                    p.inputs.push(v);
                }
            }
        }
        for &n in &p.nodes {
            for &v in graph.nodes[n].outputs.iter().flatten() {
                let read_outside = consumers[v].iter().any(|u| part_of[u.node] != k);
                if read_outside || edges.is_output[v] {
                    p.outputs.push(v);
                }
            }
        }
    }
    out
}

/// Groups the nodes of a graph into convex groups of one backend each (no path leaves a
/// group and comes back into it), in an order in which the groups can run. Node `i` runs on
/// `backend[i]` and reads the outputs of the nodes `preds[i]`; nodes are in a topological
/// order. Nodes join the latest group of their backend that creates no cycle. The
/// partitioner uses it, and so does the ONNX Runtime EP on the graphs ONNX Runtime hands it
/// (whose groups ONNX Runtime drops when they are not convex).
pub fn convex_groups(preds: &[Vec<usize>], backend: &[usize]) -> Vec<(usize, Vec<usize>)> {
    let n = preds.len().min(backend.len());
    let mut part_of = vec![usize::MAX; n];
    let mut parts: Vec<(usize, Vec<usize>)> = Vec::new(); // (backend, nodes)
    let mut deps: Vec<Bits> = Vec::new(); // transitive dependencies of each partition
    for i in 0..n {
        let b = backend[i];
        let mut pp: Vec<usize> = preds[i]
            .iter()
            .filter(|&&p| p < i)
            .map(|&p| part_of[p])
            .collect();
        pp.sort_unstable();
        pp.dedup();
        // Joining P is safe when no predecessor partition other than P depends on P.
        let fits = |p: usize| pp.iter().all(|&q| q == p || !deps[q].get(p));
        let target = (0..parts.len()).rev().find(|&p| parts[p].0 == b && fits(p));
        let p = match target {
            Some(p) => p,
            None => {
                parts.push((b, Vec::new()));
                deps.push(Bits::default());
                parts.len() - 1
            }
        };
        parts[p].1.push(i);
        part_of[i] = p;
        let mut new = Bits::default();
        for &q in pp.iter().filter(|&&q| q != p) {
            new.set(q);
            new.union(&deps[q].clone());
        }
        if new.count() > 0 {
            for (r, d) in deps.iter_mut().enumerate() {
                if r == p || d.get(p) {
                    d.union(&new);
                }
            }
        }
    }
    let mut order: Vec<usize> = (0..parts.len()).collect();
    order.sort_by_key(|&p| (deps[p].count(), parts[p].1[0]));
    let mut parts: Vec<Option<(usize, Vec<usize>)>> = parts.into_iter().map(Some).collect();
    order.into_iter().filter_map(|p| parts[p].take()).collect()
}

/// Who produces and who reads each value, computed once per partitioning.
struct Edges {
    producers: Vec<Option<(usize, usize)>>,
    consumers: Vec<Vec<crate::ir::Use>>,
    /// For each value, whether it is a graph output.
    is_output: Vec<bool>,
}

impl Edges {
    fn of(graph: &Graph) -> Edges {
        Edges {
            producers: graph.producers(),
            consumers: graph.consumers(),
            is_output: graph.output_set(),
        }
    }
}

/// The device hops of partition `p`: values it reads from another device, plus values it
/// hands to another device. Graph inputs and outputs live in host memory, so they count
/// when the partition is not on the CPU, except inputs with an initializer default: those
/// are weights (older ONNX files list every initializer as an input), uploaded once.
fn crossing(
    graph: &Graph,
    edges: &Edges,
    p: &Partition,
    decisions: &[NodeDecision],
    kinds: &[DeviceKind],
) -> usize {
    let host = kinds[p.backend] == DeviceKind::Cpu;
    let mut hops = 0;
    for &v in &p.inputs {
        match edges.producers[v] {
            Some((n, _)) if decisions[n].backend != p.backend => hops += 1,
            None if !host && graph.values[v].constant.is_none() => hops += 1,
            _ => {}
        }
    }
    for &v in &p.outputs {
        let other: HashSet<usize> = edges.consumers[v]
            .iter()
            .filter(|u| decisions[u.node].backend != p.backend)
            .map(|u| decisions[u.node].backend)
            .collect();
        hops += other.len();
        if edges.is_output[v] && !host {
            hops += 1;
        }
    }
    hops
}

/// Moves the least worthwhile island (saving < hops × hop_cost) to each node's next
/// backend; returns whether one moved.
fn merge_one_island(
    graph: &Graph,
    edges: &Edges,
    decisions: &mut [NodeDecision],
    parts: &[Partition],
    names: &[String],
    kinds: &[DeviceKind],
    options: &PartitionOptions,
) -> bool {
    let cost = |d: &NodeDecision, b: usize| match d.answers[b] {
        Support::Supported { cost } => Some(cost),
        Support::Unsupported { .. } => None,
    };
    // (margin, partition, hops, alternative backend per node)
    let mut worst: Option<(f32, usize, usize, Vec<usize>)> = None;
    for (k, p) in parts.iter().enumerate() {
        let hops = crossing(graph, edges, p, decisions, kinds);
        if hops == 0 {
            continue;
        }
        let mut saving = 0.0;
        let mut alts = Vec::with_capacity(p.nodes.len());
        let mut movable = true;
        for &n in &p.nodes {
            let d = &decisions[n];
            let here = cost(d, p.backend).unwrap_or(f32::INFINITY);
            match (0..d.answers.len()).find(|&b| b != p.backend && cost(d, b).is_some()) {
                Some(b) => {
                    saving += cost(d, b).unwrap_or(0.0) - here;
                    alts.push(b);
                }
                None => {
                    movable = false;
                    break;
                }
            }
        }
        if !movable {
            continue;
        }
        let margin = saving - hops as f32 * options.hop_cost;
        if margin < 0.0 && worst.as_ref().is_none_or(|w| margin < w.0) {
            worst = Some((margin, k, hops, alts));
        }
    }
    let Some((margin, k, hops, alts)) = worst else {
        return false;
    };
    let p = &parts[k];
    let note = format!(
        "moved from {}: an island of {} node(s) that saves {:.2} but costs {hops} device hop(s) × {:.2}",
        names[p.backend],
        p.nodes.len(),
        margin + hops as f32 * options.hop_cost,
        options.hop_cost
    );
    for (&n, b) in p.nodes.iter().zip(alts) {
        decisions[n].backend = b;
        decisions[n].note = Some(note.clone());
    }
    true
}

impl Plan {
    /// The first backend in preference order, other than `except`, that supports every node
    /// of partition `k`: where the partition goes when `except` fails to compile it.
    pub fn fallback_for(&self, k: usize, except: usize) -> Option<usize> {
        (0..self.backends.len())
            .filter(|&b| b != except)
            .find(|&b| {
                self.partitions[k]
                    .nodes
                    .iter()
                    .all(|&n| self.decisions[n].answers[b].is_supported())
            })
    }

    /// Nodes per backend name.
    pub fn nodes_per_backend(&self) -> BTreeMap<&str, usize> {
        let mut m = BTreeMap::new();
        for d in &self.decisions {
            *m.entry(self.backends[d.backend].as_str()).or_insert(0) += 1;
        }
        m
    }

    /// Checks that every node is in exactly one partition, that each partition's nodes are
    /// on its backend, and that partitions only read values from earlier partitions (so
    /// they are convex and the order runs). Used by tests.
    pub fn verify(&self, graph: &Graph) -> Result<()> {
        let mut part_of = vec![usize::MAX; graph.nodes.len()];
        for (k, p) in self.partitions.iter().enumerate() {
            for &n in &p.nodes {
                if part_of[n] != usize::MAX {
                    return Err(Error::compute(format!("node {n} is in two partitions")));
                }
                if self.decisions[n].backend != p.backend {
                    return Err(Error::compute(format!(
                        "node {n} is in a partition of another backend"
                    )));
                }
                part_of[n] = k;
            }
        }
        if let Some(n) = part_of.iter().position(|&p| p == usize::MAX) {
            return Err(Error::compute(format!("node {n} is in no partition")));
        }
        let producers = graph.producers();
        for (k, p) in self.partitions.iter().enumerate() {
            for &n in &p.nodes {
                for &v in graph.nodes[n].inputs.iter().flatten() {
                    if let Some((q, _)) = producers[v] {
                        if part_of[q] > k {
                            return Err(Error::compute(format!(
                                "partition {k} reads value \"{}\" from the later partition {}",
                                graph.values[v].name, part_of[q]
                            )));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// One row per node: where it runs, in which partition, and why the other backends said
    /// no (the rows of [`Plan::explain`]).
    pub fn rows(&self, graph: &Graph) -> Vec<ExplainRow> {
        self.explanation(graph, "", &[])
            .nodes
            .into_iter()
            .map(|n| {
                let why: Vec<String> = n
                    .note
                    .into_iter()
                    .chain(
                        n.refusals
                            .into_iter()
                            .map(|r| format!("{}: {}", r.device, r.message)),
                    )
                    .collect();
                ExplainRow {
                    node: n.node,
                    op: n.op,
                    backend: n.device.unwrap_or_default(),
                    partition: n.partition.unwrap_or(0),
                    why: why.join("; "),
                }
            })
            .collect()
    }

    /// The plan in the explanation's JSON schema ([`Explanation`]); `model` names it,
    /// `notes` are the device policy's.
    pub fn explanation(&self, graph: &Graph, model: &str, notes: &[String]) -> Explanation {
        let mut part_of = vec![None; graph.nodes.len()];
        for (k, p) in self.partitions.iter().enumerate() {
            for &n in &p.nodes {
                part_of[n] = Some(k);
            }
        }
        let names = |ids: &[ValueId]| -> Vec<String> {
            ids.iter().map(|&v| graph.values[v].name.clone()).collect()
        };
        Explanation {
            schema: EXPLANATION_SCHEMA.to_string(),
            model: model.to_string(),
            devices: self.backends.clone(),
            notes: notes.to_vec(),
            partitions: self
                .partitions
                .iter()
                .enumerate()
                .map(|(index, p)| ExplainedPartition {
                    index,
                    device: self.backends[p.backend].clone(),
                    nodes: p.nodes.len(),
                    inputs: names(&p.inputs),
                    outputs: names(&p.outputs),
                })
                .collect(),
            nodes: graph
                .nodes
                .iter()
                .zip(&self.decisions)
                .enumerate()
                .map(|(i, (node, d))| ExplainedNode {
                    node: node.name.clone(),
                    op: node.op.name().to_string(),
                    domain: op_domain(node.op.name()).to_string(),
                    device: Some(self.backends[d.backend].clone()),
                    partition: part_of[i],
                    note: d.note.clone(),
                    refusals: self
                        .backends
                        .iter()
                        .zip(&d.answers)
                        .enumerate()
                        .filter(|(b, _)| *b != d.backend)
                        .filter_map(|(_, (name, a))| match a {
                            Support::Unsupported {
                                code,
                                vendor_code,
                                reason,
                            } => Some(Refusal {
                                device: name.clone(),
                                code: *code,
                                vendor_code: *vendor_code,
                                message: reason.clone(),
                            }),
                            Support::Supported { .. } => None,
                        })
                        .collect(),
                })
                .collect(),
        }
    }

    /// The `--explain` table: node, op, backend, and why the others said no.
    pub fn explain(&self, graph: &Graph) -> String {
        let rows: Vec<[String; 5]> = self
            .rows(graph)
            .into_iter()
            .map(|r| [r.node, r.op, r.backend, r.partition.to_string(), r.why])
            .collect();
        let header = ["node", "op", "backend", "part", "why not elsewhere"];
        let mut width = header.map(str::len);
        for r in &rows {
            for (w, c) in width.iter_mut().zip(r.iter()).take(4) {
                *w = (*w).max(c.chars().count());
            }
        }
        let mut s = String::new();
        let line = |s: &mut String, r: [&str; 5]| {
            let _ = writeln!(
                s,
                "{:<w0$}  {:<w1$}  {:<w2$}  {:>w3$}  {}",
                r[0],
                r[1],
                r[2],
                r[3],
                r[4],
                w0 = width[0],
                w1 = width[1],
                w2 = width[2],
                w3 = width[3]
            );
        };
        line(&mut s, header);
        for r in &rows {
            line(&mut s, [&r[0], &r[1], &r[2], &r[3], &r[4]]);
        }
        s.push('\n');
        s.push_str(&self.summary());
        s
    }

    /// Partitions, nodes per backend, device hops.
    pub fn summary(&self) -> String {
        let per: Vec<String> = self
            .nodes_per_backend()
            .into_iter()
            .map(|(b, n)| format!("{b} {n}"))
            .collect();
        let mut s = format!(
            "{} partition(s); nodes per backend: {}; device hops: {}\n",
            self.partitions.len(),
            per.join(", "),
            self.hops
        );
        for (k, p) in self.partitions.iter().enumerate() {
            let _ = writeln!(
                s,
                "  partition {k}: {} ({}), {} node(s), {} input(s), {} output(s)",
                self.backends[p.backend],
                self.kinds[p.backend],
                p.nodes.len(),
                p.inputs.len(),
                p.outputs.len()
            );
        }
        s
    }

    /// A Graphviz picture: one cluster per partition, coloured by backend.
    pub fn dot(&self, graph: &Graph) -> String {
        const COLOURS: [&str; 6] = [
            "#8dd3c7", "#fdb462", "#bebada", "#fb8072", "#80b1d3", "#b3de69",
        ];
        let esc = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
        let mut s = String::from(
            "digraph xnpu {\n  rankdir=TB;\n  node [shape=box, style=filled, fontname=\"sans\"];\n",
        );
        for (k, p) in self.partitions.iter().enumerate() {
            let colour = COLOURS[p.backend % COLOURS.len()];
            let _ = writeln!(
                s,
                "  subgraph cluster_{k} {{\n    label=\"partition {k}: {}\";\n    color=\"{colour}\";",
                esc(&self.backends[p.backend])
            );
            for &n in &p.nodes {
                let node = &graph.nodes[n];
                let _ = writeln!(
                    s,
                    "    n{n} [label=\"{}\\n{}\", fillcolor=\"{colour}\"];",
                    esc(node.op.name()),
                    esc(&node.name)
                );
            }
            s.push_str("  }\n");
        }
        let producers = graph.producers();
        for &v in &graph.inputs {
            let _ = writeln!(
                s,
                "  v{v} [label=\"{}\", shape=ellipse, fillcolor=white];",
                esc(&graph.values[v].name)
            );
        }
        for &v in &graph.outputs {
            let _ = writeln!(
                s,
                "  o{v} [label=\"{}\", shape=ellipse, fillcolor=white];",
                esc(&graph.values[v].name)
            );
            if let Some((p, _)) = producers[v] {
                let _ = writeln!(s, "  n{p} -> o{v};");
            }
        }
        let is_input = graph.input_set();
        for (i, node) in graph.nodes.iter().enumerate() {
            for &v in node.inputs.iter().flatten() {
                match producers[v] {
                    Some((p, _)) => {
                        let _ = writeln!(s, "  n{p} -> n{i};");
                    }
                    None if is_input[v] => {
                        let _ = writeln!(s, "  v{v} -> n{i};");
                    }
                    None => {}
                }
            }
        }
        s.push_str("}\n");
        s
    }
}

/// The standalone graph of one partition: its inputs are the values it reads from
/// elsewhere, its outputs the values others read; constants come along (sharing their
/// bytes).
pub fn extract(graph: &Graph, p: &Partition, name: &str) -> Graph {
    let mut g = Graph {
        name: name.to_string(),
        ..Default::default()
    };
    let mut map = vec![usize::MAX; graph.values.len()];
    let is_input = graph.input_set();
    let mut get = |g: &mut Graph, v: ValueId| {
        if map[v] == usize::MAX {
            g.values.push(graph.values[v].clone());
            if is_input[v] {
                // A graph input reaches the partition as a partition input.
                g.values.last_mut().expect("just pushed").constant = None;
            }
            map[v] = g.values.len() - 1;
        }
        map[v]
    };
    for &v in &p.inputs {
        let id = get(&mut g, v);
        g.inputs.push(id);
    }
    for &n in &p.nodes {
        let node = &graph.nodes[n];
        let mut copy = node.clone();
        for v in copy
            .inputs
            .iter_mut()
            .chain(copy.outputs.iter_mut())
            .flatten()
        {
            *v = get(&mut g, *v);
        }
        g.nodes.push(copy);
    }
    for &v in &p.outputs {
        let id = get(&mut g, v);
        g.outputs.push(id);
    }
    g
}
