//! The IR: an SSA graph of typed ops. Values have a type (dtype and a shape of numbers or
//! symbols); constants are values with data; nodes hold a typed [`Op`].

mod control;
mod edit;
mod flex_attention;
mod infer;
mod op;
mod ranges;

pub use control::{Capture, If, Loop, Scan, SequenceMap};
pub use edit::Use;
pub use flex_attention::{FlexAttention, FLEX_ATTENTION_DTYPES};
pub use op::Op;
pub use ranges::ByteRanges;

use std::collections::BTreeMap;
use std::fmt;

use xnpu_core::{Tensor, ValueType};

/// Index of a value in its graph's value table.
pub type ValueId = usize;

/// A value of a graph: its name (from the model), its type, and its data when it is constant.
#[derive(Clone, Debug, PartialEq)]
pub struct ValueInfo {
    pub name: String,
    pub ty: ValueType,
    /// Data of an initializer or a constant. For a graph input this is the default used when
    /// the caller does not pass the input.
    pub constant: Option<Tensor>,
}

/// One op applied to values.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// The model's name for the node, or `#index` when the model gave none.
    pub name: String,
    pub op: Op,
    /// Inputs in op order; `None` is an absent optional input. Nodes holding graphs list the
    /// outer values that their bodies capture after their own inputs.
    pub inputs: Vec<Option<ValueId>>,
    /// Outputs in op order; `None` is an output the model does not use.
    pub outputs: Vec<Option<ValueId>>,
}

impl Node {
    /// `node "name" (Op)`, the way errors name a node (the name escaped: it came from a
    /// model).
    pub fn describe(&self) -> String {
        format!(
            "node {} ({})",
            crate::onnx::quoted(&self.name),
            self.op.name()
        )
    }
}

/// A graph: the main graph of a model, the body of a control-flow op or a graph another op
/// holds (FlexAttention's modifiers).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Graph {
    pub name: String,
    pub values: Vec<ValueInfo>,
    /// Nodes in a topological order.
    pub nodes: Vec<Node>,
    pub inputs: Vec<ValueId>,
    pub outputs: Vec<ValueId>,
    /// Values of an enclosing graph that this body reads.
    pub captures: Vec<Capture>,
}

impl Graph {
    pub fn add_value(&mut self, name: impl Into<String>, ty: ValueType) -> ValueId {
        self.values.push(ValueInfo {
            name: name.into(),
            ty,
            constant: None,
        });
        self.values.len() - 1
    }

    pub fn value(&self, id: ValueId) -> &ValueInfo {
        &self.values[id]
    }

    /// Values that are constants and not graph inputs.
    pub fn constants(&self) -> impl Iterator<Item = (ValueId, &Tensor)> {
        let is_input = self.input_set();
        self.values
            .iter()
            .enumerate()
            .filter(move |(id, _)| !is_input[*id])
            .filter_map(|(id, v)| v.constant.as_ref().map(|t| (id, t)))
    }

    /// Visits this graph's nodes and those of every nested body.
    pub fn walk_nodes<'a>(&'a self, f: &mut impl FnMut(&'a Node)) {
        for n in &self.nodes {
            f(n);
            for g in n.op.subgraphs() {
                g.walk_nodes(f);
            }
        }
    }
}

/// A model: the main graph and what the file says about itself.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Model {
    /// Where the model came from (file name), used to prefix errors.
    pub name: String,
    pub graph: Graph,
    /// Opset version per domain (`""` is `ai.onnx`).
    pub opsets: BTreeMap<String, i64>,
    pub ir_version: i64,
    pub producer: String,
    pub metadata: BTreeMap<String, String>,
}

impl Model {
    /// Number of parameters and their bytes (constants of the main graph and of bodies).
    pub fn parameter_stats(&self) -> (usize, usize) {
        fn visit(g: &Graph, acc: &mut (usize, usize)) {
            for v in &g.values {
                if let Some(t) = &v.constant {
                    acc.0 += t.len();
                    acc.1 += t.raw_bytes().len();
                }
            }
            for n in &g.nodes {
                for s in n.op.subgraphs() {
                    visit(s, acc);
                }
            }
        }
        let mut acc = (0, 0);
        visit(&self.graph, &mut acc);
        acc
    }

    /// How many nodes use each op (bodies included), sorted by name.
    pub fn op_histogram(&self) -> BTreeMap<&'static str, usize> {
        let mut h = BTreeMap::new();
        self.graph
            .walk_nodes(&mut |n| *h.entry(n.op.name()).or_insert(0) += 1);
        h
    }
}

impl fmt::Display for Graph {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name =
            |id: &Option<ValueId>| id.map_or("_".to_string(), |i| self.values[i].name.clone());
        for n in &self.nodes {
            let ins: Vec<_> = n.inputs.iter().map(name).collect();
            let outs: Vec<_> = n.outputs.iter().map(name).collect();
            writeln!(
                f,
                "{} = {}({})  # {}",
                outs.join(", "),
                n.op.name(),
                ins.join(", "),
                n.name
            )?;
        }
        Ok(())
    }
}
