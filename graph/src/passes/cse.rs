//! Common-subexpression elimination and redundant-node removal:
//! - two nodes with the same op (attributes included) on the same inputs compute the same
//!   values, so the later one's readers read the earlier one's outputs;
//! - equal constants (same dtype, shape and bytes) become one value;
//! - Identity nodes, and Dropout in inference (no training-mode input, or a constant false
//!   one, and no mask read), are bypassed (the reader reads the input).
//!
//! Ops with bodies and random ops are left alone. Each kind is found in one sweep and its
//! replacements made in one batch, so the pass is linear in the graph (a node is compared with
//! at most `MAX_CANDIDATES` earlier nodes).

use std::collections::HashMap;

use xnpu_core::Result;

use super::{Options, Work};
use crate::ir::{Graph, Op, ValueId};

/// Constants larger than this are not compared (hashing them costs more than it saves).
const MAX_CONST_BYTES: usize = 1 << 20;

/// How many earlier nodes of the same op on the same inputs a node is compared with (their
/// attributes differ): beyond that a node is left as it is, so that the pass stays linear
/// when thousands of nodes share an op and inputs but not attributes.
const MAX_CANDIDATES: usize = 8;

/// Equal constants: (later, earlier) pairs.
fn equal_constants(
    graph: &Graph,
    is_input: &[bool],
    is_output: &[bool],
) -> Vec<(ValueId, ValueId)> {
    let mut seen: HashMap<(xnpu_core::DType, &[usize], &[u8]), ValueId> = HashMap::new();
    let mut replace = Vec::new();
    for (id, v) in graph.values.iter().enumerate() {
        let Some(t) = &v.constant else { continue };
        if is_input[id]
            || t.dtype() == xnpu_core::DType::String
            || t.raw_bytes().len() > MAX_CONST_BYTES
        {
            continue;
        }
        match seen.entry((t.dtype(), t.shape(), t.raw_bytes())) {
            std::collections::hash_map::Entry::Occupied(e) => {
                // A graph output keeps its own constant.
                if !is_output[id] {
                    replace.push((id, *e.get()));
                }
            }
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(id);
            }
        }
    }
    replace
}

/// Identity nodes, and Dropout in inference: (output, input) pairs.
fn identities(
    graph: &Graph,
    is_input: &[bool],
    is_output: &[bool],
    work: &mut Work,
) -> Vec<(ValueId, ValueId)> {
    let consumers = graph.consumers();
    work.scan(graph);
    let mut pairs = Vec::new();
    for node in &graph.nodes {
        work.visit();
        let is_identity = match &node.op {
            Op::Tensor(xnpu_ops::tensor::Op::Identity(_)) => true,
            Op::Tensor(xnpu_ops::tensor::Op::Dropout(_)) => {
                let mask_unused = node
                    .outputs
                    .get(1)
                    .copied()
                    .flatten()
                    .is_none_or(|m| consumers[m].is_empty() && !is_output[m]);
                let inference = match node.inputs.get(2).copied().flatten() {
                    None => true,
                    Some(t) => {
                        !is_input[t]
                            && graph.values[t]
                                .constant
                                .as_ref()
                                .and_then(|c| c.to_i64_vec().ok())
                                .is_some_and(|v| v.iter().all(|&x| x == 0))
                    }
                };
                mask_unused && inference
            }
            _ => false,
        };
        if !is_identity {
            continue;
        }
        let (Some(Some(input)), Some(Some(out))) =
            (node.inputs.first().copied(), node.outputs.first().copied())
        else {
            continue;
        };
        // An Identity that writes a graph output from an input or a constant must stay: it
        // is what gives the output its name.
        if is_output[out] {
            continue;
        }
        pairs.push((out, input));
    }
    pairs
}

/// Nodes that compute what an earlier node computes: (later output, earlier output) pairs.
/// Nodes are in topological order, so a node's inputs are read as already merged. An
/// Identity writing a graph output is left alone: merged, it would come back as an Identity
/// copying the earlier value into the output.
fn equal_nodes(
    graph: &Graph,
    is_output: &[bool],
    work: &mut Work,
) -> (usize, Vec<(ValueId, ValueId)>) {
    let mut to: Vec<ValueId> = (0..graph.values.len()).collect();
    let mut seen: HashMap<(&'static str, Vec<Option<ValueId>>), Vec<usize>> = HashMap::new();
    let mut pairs = Vec::new();
    let mut merged = 0;
    for (i, node) in graph.nodes.iter().enumerate() {
        work.visit();
        if !node.op.subgraphs().is_empty() || node.op.may_draw() {
            continue;
        }
        if matches!(node.op, Op::Tensor(xnpu_ops::tensor::Op::Identity(_)))
            && node.outputs.iter().flatten().any(|&o| is_output[o])
        {
            continue;
        }
        let inputs: Vec<Option<ValueId>> = node.inputs.iter().map(|v| v.map(|v| to[v])).collect();
        let same = seen.entry((node.op.name(), inputs)).or_default();
        let earlier = same.iter().copied().find(|&j| {
            let e = &graph.nodes[j];
            e.op == node.op
                && e.outputs.len() >= node.outputs.len()
                && node
                    .outputs
                    .iter()
                    .zip(&e.outputs)
                    .all(|(a, b)| a.is_none() || b.is_some())
        });
        match earlier {
            Some(j) => {
                merged += 1;
                for (a, b) in node.outputs.iter().zip(&graph.nodes[j].outputs) {
                    if let (Some(a), Some(b)) = (a, b) {
                        to[*a] = to[*b];
                        pairs.push((*a, to[*b]));
                    }
                }
            }
            None if same.len() < MAX_CANDIDATES => same.push(i),
            None => {}
        }
    }
    (merged, pairs)
}

pub fn run(graph: &mut Graph, _options: &Options<'_>, work: &mut Work) -> Result<usize> {
    let is_input = graph.input_set();
    let is_output = graph.output_set();
    // The sets, and the sweep over the values for equal constants.
    work.scan(graph);
    let mut pairs = equal_constants(graph, &is_input, &is_output);
    pairs.extend(identities(graph, &is_input, &is_output, work));
    let mut n = pairs.len();
    if n > 0 {
        graph.replace_uses_all(&pairs);
        work.scan(graph);
    }
    let (merged, pairs) = equal_nodes(graph, &is_output, work);
    if merged > 0 {
        graph.replace_uses_all(&pairs);
        work.scan(graph);
    }
    n += merged;
    if n > 0 {
        graph.remove_dead();
        work.scan(graph);
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::passes::tests::{f32_type, relu};

    #[test]
    fn merges_equal_nodes_and_bypasses_identity() {
        let mut g = Graph::default();
        let x = g.add_value("x", f32_type(&[4]));
        g.inputs.push(x);
        let a = g.add_value("a", f32_type(&[4]));
        let b = g.add_value("b", f32_type(&[4]));
        let c = g.add_value("c", f32_type(&[4]));
        let y = g.add_value("y", f32_type(&[4]));
        g.nodes.push(relu("r1", x, a));
        g.nodes.push(relu("r2", x, b));
        g.nodes.push(crate::ir::Node {
            name: "id".into(),
            op: Op::Tensor(xnpu_ops::tensor::Op::Identity(Default::default())),
            inputs: vec![Some(b)],
            outputs: vec![Some(c)],
        });
        g.nodes.push(crate::ir::Node {
            name: "add".into(),
            op: Op::Elementwise(xnpu_ops::elementwise::Op::Binary(
                xnpu_ops::elementwise::Binary::new(xnpu_ops::elementwise::BinaryKind::Add),
            )),
            inputs: vec![Some(a), Some(c)],
            outputs: vec![Some(y)],
        });
        g.outputs.push(y);
        assert!(run(&mut g, &Options::default(), &mut Work::default()).unwrap() >= 2);
        let names: Vec<_> = g.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["r1", "add"]);
        assert_eq!(g.nodes[1].inputs[0], g.nodes[1].inputs[1]);
    }

    #[test]
    fn random_ops_on_the_same_input_stay_apart() {
        let mut g = Graph::default();
        let p = g.add_value("p", f32_type(&[4]));
        g.inputs.push(p);
        for name in ["b1", "b2"] {
            let y = g.add_value(name, f32_type(&[4]));
            g.nodes.push(crate::ir::Node {
                name: name.into(),
                op: Op::Elementwise(xnpu_ops::elementwise::Op::Bernoulli(Default::default())),
                inputs: vec![Some(p)],
                outputs: vec![Some(y)],
            });
            g.outputs.push(y);
        }
        run(&mut g, &Options::default(), &mut Work::default()).unwrap();
        assert_eq!(g.nodes.len(), 2, "two draws are not one");
    }
}
