//! Common-subexpression elimination and redundant-node removal:
//! - two nodes with the same op (attributes included) on the same inputs compute the same
//!   values, so the later one's readers read the earlier one's outputs;
//! - equal constants (same dtype, shape and bytes) become one value;
//! - Identity nodes, and Dropout in inference (no training-mode input, or a constant false
//!   one, and no mask read), are bypassed (the reader reads the input).
//!
//! Ops with bodies and random ops are left alone.

use std::collections::HashMap;

use xnpu_core::Result;

use super::Options;
use crate::ir::{Graph, Op, ValueId};

/// Constants larger than this are not compared (hashing them costs more than it saves).
const MAX_CONST_BYTES: usize = 1 << 20;

fn dedupe_constants(graph: &mut Graph) -> usize {
    let mut seen: HashMap<(xnpu_core::DType, Vec<usize>, &[u8]), ValueId> = HashMap::new();
    let mut replace = Vec::new();
    for (id, v) in graph.values.iter().enumerate() {
        let Some(t) = &v.constant else { continue };
        if graph.inputs.contains(&id)
            || t.dtype() == xnpu_core::DType::String
            || t.raw_bytes().len() > MAX_CONST_BYTES
        {
            continue;
        }
        match seen.entry((t.dtype(), t.shape().to_vec(), t.raw_bytes())) {
            std::collections::hash_map::Entry::Occupied(e) => replace.push((id, *e.get())),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(id);
            }
        }
    }
    let mut n = 0;
    for (old, new) in replace {
        // A graph output keeps its own constant.
        if graph.is_output(old) {
            continue;
        }
        graph.replace_uses(old, new);
        n += 1;
    }
    n
}

fn bypass_identities(graph: &mut Graph) -> usize {
    let consumers = graph.consumers();
    let mut n = 0;
    for i in 0..graph.nodes.len() {
        let node = &graph.nodes[i];
        let is_identity = match &node.op {
            Op::Tensor(xnpu_ops::tensor::Op::Identity(_)) => true,
            Op::Tensor(xnpu_ops::tensor::Op::Dropout(_)) => {
                let mask_unused = node
                    .outputs
                    .get(1)
                    .copied()
                    .flatten()
                    .is_none_or(|m| consumers[m].is_empty() && !graph.is_output(m));
                let inference = match node.inputs.get(2).copied().flatten() {
                    None => true,
                    Some(t) => {
                        !graph.inputs.contains(&t)
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
        if graph.is_output(out) {
            continue;
        }
        graph.replace_uses(out, input);
        n += 1;
    }
    n
}

fn merge_nodes(graph: &mut Graph) -> usize {
    let mut seen: HashMap<(&'static str, Vec<Option<ValueId>>), Vec<usize>> = HashMap::new();
    let mut merges: Vec<(usize, usize)> = Vec::new(); // (later, earlier)
    for (i, node) in graph.nodes.iter().enumerate() {
        if !node.op.subgraphs().is_empty() || node.op.is_random() {
            continue;
        }
        let key = (node.op.name(), node.inputs.clone());
        let same = seen.entry(key).or_default();
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
            Some(j) => merges.push((i, j)),
            None => same.push(i),
        }
    }
    let n = merges.len();
    for (later, earlier) in merges {
        let pairs: Vec<(ValueId, ValueId)> = graph.nodes[later]
            .outputs
            .iter()
            .zip(&graph.nodes[earlier].outputs)
            .filter_map(|(a, b)| Some(((*a)?, (*b)?)))
            .collect();
        for (old, new) in pairs {
            graph.replace_uses(old, new);
        }
    }
    n
}

pub fn run(graph: &mut Graph, _options: &Options<'_>) -> Result<usize> {
    let mut n = dedupe_constants(graph) + bypass_identities(graph);
    n += merge_nodes(graph);
    if n > 0 {
        graph.remove_dead();
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
        assert!(run(&mut g, &Options::default()).unwrap() >= 2);
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
        run(&mut g, &Options::default()).unwrap();
        assert_eq!(g.nodes.len(), 2, "two draws are not one");
    }
}
