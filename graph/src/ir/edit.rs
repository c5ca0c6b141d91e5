//! Editing a graph: who produces and who reads each value, rewiring uses, removing what
//! nothing reads, and restoring a topological order after nodes were added.

use std::collections::{HashMap, HashSet};

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

    /// For each value, whether it is one of the graph's inputs: for tests inside a loop, where
    /// `inputs.contains` would make the loop quadratic.
    pub fn input_set(&self) -> Vec<bool> {
        let mut set = vec![false; self.values.len()];
        for &v in &self.inputs {
            set[v] = true;
        }
        set
    }

    /// For each value, whether it is one of the graph's outputs (see [`Graph::input_set`]).
    pub fn output_set(&self) -> Vec<bool> {
        let mut set = vec![false; self.values.len()];
        for &v in &self.outputs {
            set[v] = true;
        }
        set
    }

    /// Makes every reader of `old` read `new` instead. When `old` is a graph output it stays
    /// the output (its name is the model's contract): if `new` is produced by a node and is
    /// not itself an input, an output or a constant, that node now writes `old` directly;
    /// otherwise an Identity node copies `new` into `old`. One pass over the graph: a pass
    /// with many replacements gives them all to [`Graph::replace_uses_all`].
    pub fn replace_uses(&mut self, old: ValueId, new: ValueId) {
        self.replace_uses_all(&[(old, new)]);
    }

    /// [`Graph::replace_uses`] for many `(old, new)` pairs at once, in time linear in the
    /// graph. Pairs may chain: `(b, a)` and `(c, b)` make the readers of `c` read `a`. A pair
    /// that would close a cycle of replacements is ignored.
    pub fn replace_uses_all(&mut self, pairs: &[(ValueId, ValueId)]) {
        if pairs.iter().all(|(old, new)| old == new) {
            return;
        }
        let to = resolve_replacements(self.values.len(), pairs);
        for n in &mut self.nodes {
            for v in n.inputs.iter_mut().flatten() {
                *v = to[*v];
            }
        }
        if self.outputs.iter().all(|&o| to[o] == o) {
            return;
        }
        // Outputs keep their values; what they were to be replaced by is written into them.
        let producers = self.producers();
        let is_input = self.input_set();
        let is_output = self.output_set();
        let mut renamed: HashMap<ValueId, ValueId> = HashMap::new();
        let mut done = vec![false; self.values.len()];
        let mut copies = Vec::new();
        for k in 0..self.outputs.len() {
            let old = self.outputs[k];
            let new = to[old];
            if new == old || done[old] {
                continue;
            }
            done[old] = true;
            // The old producer of `old` (if any) no longer writes it.
            if let Some((p, slot)) = producers[old] {
                self.nodes[p].outputs[slot] = None;
            }
            let free = !is_output[new]
                && !is_input[new]
                && self.values[new].constant.is_none()
                && !renamed.contains_key(&new);
            match producers[new] {
                Some((p, slot)) if free => {
                    // `new` becomes `old`: its producer writes `old`, its readers read `old`.
                    self.nodes[p].outputs[slot] = Some(old);
                    renamed.insert(new, old);
                    let ty = self.values[new].ty.clone();
                    if !matches!(ty, xnpu_core::ValueType::Unknown) {
                        self.values[old].ty = ty;
                    }
                }
                _ => copies.push((renamed.get(&new).copied().unwrap_or(new), old)),
            }
        }
        if !renamed.is_empty() {
            for n in &mut self.nodes {
                for v in n.inputs.iter_mut().flatten() {
                    if let Some(&o) = renamed.get(v) {
                        *v = o;
                    }
                }
            }
        }
        for (new, old) in copies {
            let name = format!("{}/identity", self.values[old].name);
            self.nodes.push(Node {
                name,
                op: Op::Tensor(xnpu_ops::tensor::Op::Identity(Default::default())),
                inputs: vec![Some(new)],
                outputs: vec![Some(old)],
            });
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

/// For each of `n` values, the value it is finally replaced by under `pairs` (itself when
/// none), following chains with path compression; a cycle leaves its values as they are.
fn resolve_replacements(n: usize, pairs: &[(ValueId, ValueId)]) -> Vec<ValueId> {
    let mut to: Vec<ValueId> = (0..n).collect();
    for &(old, new) in pairs {
        to[old] = new;
    }
    // 0: not resolved, 1: on the path being resolved, 2: resolved.
    let mut state = vec![0u8; n];
    let mut path = Vec::new();
    for start in 0..n {
        let mut v = start;
        while state[v] == 0 && to[v] != v {
            state[v] = 1;
            path.push(v);
            v = to[v];
        }
        let last = match state[v] {
            // Back on the path: a cycle; its values stay themselves.
            1 => {
                let at = path.iter().position(|&p| p == v).unwrap_or(0);
                for &p in &path[at..] {
                    to[p] = p;
                    state[p] = 2;
                }
                path.truncate(at);
                v
            }
            2 => to[v],
            _ => v,
        };
        for &p in &path {
            to[p] = last;
            state[p] = 2;
        }
        path.clear();
        state[v] = 2;
    }
    to
}

#[cfg(test)]
mod tests {
    use super::*;
    use xnpu_core::ValueType;

    fn relu(g: &mut Graph, name: &str, x: ValueId) -> ValueId {
        let y = g.add_value(name, ValueType::Unknown);
        g.nodes.push(Node {
            name: name.into(),
            op: Op::Elementwise(xnpu_ops::elementwise::Op::Activation(
                xnpu_ops::elementwise::Activation {
                    kind: xnpu_ops::elementwise::ActivationKind::Relu,
                },
            )),
            inputs: vec![Some(x)],
            outputs: vec![Some(y)],
        });
        y
    }

    #[test]
    fn replacements_chain_and_outputs_keep_their_names() {
        // x → a → b → c, and d = relu(c); b and c are graph outputs.
        let mut g = Graph::default();
        let x = g.add_value("x", ValueType::Unknown);
        g.inputs.push(x);
        let a = relu(&mut g, "a", x);
        let b = relu(&mut g, "b", a);
        let c = relu(&mut g, "c", b);
        let d = relu(&mut g, "d", c);
        g.outputs.extend([b, c, d]);
        // c by b and b by a: readers of c read a; outputs b and c stay written.
        g.replace_uses_all(&[(c, b), (b, a)]);
        // a was free: its producer now writes b (the first output), and c is a copy of it.
        assert_eq!(g.nodes[0].outputs, vec![Some(b)]);
        assert_eq!(g.nodes[1].outputs, vec![None]);
        assert_eq!(g.nodes[2].outputs, vec![None]);
        assert_eq!(g.nodes[3].inputs, vec![Some(b)]);
        let copy = g.nodes.last().unwrap();
        assert_eq!(copy.op.name(), "Identity");
        assert_eq!(
            (copy.inputs.clone(), copy.outputs.clone()),
            (vec![Some(b)], vec![Some(c)])
        );
        g.remove_dead();
        g.toposort().unwrap();
        let names: Vec<_> = g.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["a", "d", "c/identity"]);
    }

    #[test]
    fn a_cycle_of_replacements_is_ignored() {
        let mut g = Graph::default();
        let x = g.add_value("x", ValueType::Unknown);
        g.inputs.push(x);
        let a = relu(&mut g, "a", x);
        let b = relu(&mut g, "b", a);
        let c = relu(&mut g, "c", b);
        g.outputs.push(c);
        let before = g.clone();
        g.replace_uses_all(&[(a, b), (b, a)]);
        assert_eq!(g, before);
        // A chain into the cycle ends at the value where it meets it: the output c is
        // replaced by a, whose producer now writes c.
        g.replace_uses_all(&[(c, a), (a, b), (b, a)]);
        assert_eq!(g.nodes[0].outputs, vec![Some(c)]);
        assert_eq!(g.nodes[1].inputs, vec![Some(c)]);
        assert_eq!(g.nodes[2].outputs, vec![None]);
    }
}
