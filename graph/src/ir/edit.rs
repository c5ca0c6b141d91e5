//! Editing a graph: who produces and who reads each value, rewiring uses, removing what
//! nothing reads, and restoring a topological order after nodes were added.

use std::collections::HashSet;

use xnpu_core::{Error, Result};

use super::{Graph, Node, Op, ValueId};

/// Where a value is read: node index and input slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Use {
    pub node: usize,
    pub slot: usize,
}

impl Graph {
    /// For each value, the node and output slot that produce it (`None` for inputs,
    /// constants and captures).
    pub fn producers(&self) -> Vec<Option<(usize, usize)>> {
        let mut p = vec![None; self.values.len()];
        for (i, n) in self.nodes.iter().enumerate() {
            for (k, o) in n.outputs.iter().enumerate() {
                if let Some(v) = o {
                    p[*v] = Some((i, k));
                }
            }
        }
        p
    }

    /// For each value, the node inputs that read it.
    pub fn consumers(&self) -> Vec<Vec<Use>> {
        let mut c = vec![Vec::new(); self.values.len()];
        for (i, n) in self.nodes.iter().enumerate() {
            for (k, v) in n.inputs.iter().enumerate() {
                if let Some(v) = v {
                    c[*v].push(Use { node: i, slot: k });
                }
            }
        }
        c
    }

    /// Whether a value is one of the graph's outputs.
    pub fn is_output(&self, v: ValueId) -> bool {
        self.outputs.contains(&v)
    }

    /// Makes every reader of `old` read `new` instead. When `old` is a graph output it stays
    /// the output (its name is the model's contract): if `new` is produced by a node and is
    /// not itself an input or output, that node now writes `old` directly; otherwise an
    /// Identity node copies `new` into `old`.
    pub fn replace_uses(&mut self, old: ValueId, new: ValueId) {
        if old == new {
            return;
        }
        for n in &mut self.nodes {
            for v in n.inputs.iter_mut().flatten() {
                if *v == old {
                    *v = new;
                }
            }
        }
        if !self.is_output(old) {
            return;
        }
        let new_is_free = !self.is_output(new)
            && !self.inputs.contains(&new)
            && self.values[new].constant.is_none();
        let producer = self
            .nodes
            .iter()
            .position(|n| n.outputs.contains(&Some(new)));
        match producer {
            Some(p) if new_is_free => {
                // `new` becomes `old`: readers of `new` read `old`.
                for n in &mut self.nodes {
                    for v in n.inputs.iter_mut().flatten() {
                        if *v == new {
                            *v = old;
                        }
                    }
                }
                for o in self.nodes[p].outputs.iter_mut().flatten() {
                    if *o == new {
                        *o = old;
                    }
                }
                // The old producer of `old` (if any) no longer writes it.
                for (i, n) in self.nodes.iter_mut().enumerate() {
                    if i != p {
                        for o in n.outputs.iter_mut() {
                            if *o == Some(old) {
                                *o = None;
                            }
                        }
                    }
                }
                let ty = self.values[new].ty.clone();
                if !matches!(ty, xnpu_core::ValueType::Unknown) {
                    self.values[old].ty = ty;
                }
            }
            _ => {
                for n in self.nodes.iter_mut() {
                    for o in n.outputs.iter_mut() {
                        if *o == Some(old) {
                            *o = None;
                        }
                    }
                }
                let name = format!("{}/identity", self.values[old].name);
                self.nodes.push(Node {
                    name,
                    op: Op::Tensor(xnpu_ops::tensor::Op::Identity(Default::default())),
                    inputs: vec![Some(new)],
                    outputs: vec![Some(old)],
                });
            }
        }
    }

    /// Removes nodes whose outputs nobody reads (all IR ops are free of side effects), then
    /// values that nothing refers to (unused initializers among them), renumbering the
    /// rest. Returns how many nodes and values were removed.
    pub fn remove_dead(&mut self) -> (usize, usize) {
        let mut live = vec![false; self.values.len()];
        for &v in self.outputs.iter() {
            live[v] = true;
        }
        let mut keep_node = vec![false; self.nodes.len()];
        for (i, n) in self.nodes.iter().enumerate().rev() {
            if n.outputs.iter().flatten().any(|&v| live[v]) {
                keep_node[i] = true;
                for v in n.inputs.iter().flatten() {
                    live[*v] = true;
                }
            }
        }
        let nodes_before = self.nodes.len();
        let mut k = 0;
        self.nodes.retain(|_| {
            k += 1;
            keep_node[k - 1]
        });
        // Outputs of kept nodes that nobody reads become unnamed slots.
        for n in &mut self.nodes {
            for o in n.outputs.iter_mut() {
                if let Some(v) = o {
                    if !live[*v] {
                        *o = None;
                    }
                }
            }
        }
        for &v in &self.inputs {
            live[v] = true;
        }
        for c in &self.captures {
            live[c.inner] = true;
        }
        let mut remap = vec![usize::MAX; self.values.len()];
        let mut values = Vec::with_capacity(self.values.len());
        for (id, v) in std::mem::take(&mut self.values).into_iter().enumerate() {
            if live[id] {
                remap[id] = values.len();
                values.push(v);
            }
        }
        let values_removed = remap.len() - values.len();
        self.values = values;
        for n in &mut self.nodes {
            for v in n.inputs.iter_mut().chain(n.outputs.iter_mut()).flatten() {
                *v = remap[*v];
            }
        }
        for v in self.inputs.iter_mut().chain(self.outputs.iter_mut()) {
            *v = remap[*v];
        }
        for c in &mut self.captures {
            c.inner = remap[c.inner];
        }
        (nodes_before - self.nodes.len(), values_removed)
    }

    /// Reorders the nodes so that each comes after the producers of its inputs, keeping the
    /// present order where it is already valid. An error when the nodes form a cycle.
    pub fn toposort(&mut self) -> Result<()> {
        let producers = self.producers();
        let n = self.nodes.len();
        let mut done = vec![false; n];
        let mut order = Vec::with_capacity(n);
        let mut on_stack = HashSet::new();
        // Iterative DFS visiting producers first, nodes in their present order.
        for root in 0..n {
            if done[root] {
                continue;
            }
            let mut stack = vec![(root, false)];
            while let Some((i, expanded)) = stack.pop() {
                if done[i] {
                    continue;
                }
                if expanded {
                    done[i] = true;
                    on_stack.remove(&i);
                    order.push(i);
                    continue;
                }
                if !on_stack.insert(i) {
                    return Err(Error::model(format!(
                        "graph {} has a cycle through {}",
                        crate::onnx::quoted(&self.name),
                        self.nodes[i].describe()
                    )));
                }
                stack.push((i, true));
                for v in self.nodes[i].inputs.iter().rev().flatten() {
                    if let Some((p, _)) = producers[*v] {
                        if !done[p] {
                            if on_stack.contains(&p) {
                                return Err(Error::model(format!(
                                    "graph {} has a cycle through {}",
                                    crate::onnx::quoted(&self.name),
                                    self.nodes[p].describe()
                                )));
                            }
                            stack.push((p, false));
                        }
                    }
                }
            }
        }
        let mut nodes: Vec<Option<Node>> = std::mem::take(&mut self.nodes)
            .into_iter()
            .map(Some)
            .collect();
        self.nodes = order.into_iter().filter_map(|i| nodes[i].take()).collect();
        Ok(())
    }
}
