//! Type and shape inference over a graph: each op's shape function, in node order.

use xnpu_core::{Result, ValueType};
use xnpu_ops::InferInput;

use super::Graph;

/// Whether `new` tells more than `old`.
fn more_specific(old: &ValueType, new: &ValueType) -> bool {
    match (old, new) {
        (_, ValueType::Unknown) => false,
        (ValueType::Unknown, _) => true,
        (ValueType::Tensor(o), ValueType::Tensor(n)) => match (&o.shape, &n.shape) {
            (None, Some(_)) => true,
            (Some(os), Some(ns)) if os.rank() == ns.rank() => {
                let known =
                    |s: &xnpu_core::Shape| s.0.iter().filter(|d| d.known().is_some()).count();
                known(ns) > known(os)
            }
            _ => false,
        },
        _ => false,
    }
}

impl Graph {
    /// Infers the type of every node output from the types of its inputs. Types declared in
    /// the model are kept where inference knows less. An op whose inputs cannot be valid is
    /// an error naming the node.
    pub fn infer_types(&mut self) -> Result<()> {
        self.infer_types_with(true)
    }

    /// Like [`Graph::infer_types`]; with `strict` false a node whose types cannot be inferred
    /// keeps unknown output types instead of failing. Bodies of control flow are inferred this
    /// way: a branch that is invalid for the shapes seen at import may never run (ONNX's own
    /// function expansions have such branches), and if it does run, its kernels say what is
    /// wrong.
    pub fn infer_types_with(&mut self, strict: bool) -> Result<()> {
        for i in 0..self.nodes.len() {
            let node = &self.nodes[i];
            let inputs: Vec<Option<InferInput<'_>>> = node
                .inputs
                .iter()
                .map(|v| {
                    v.map(|id| InferInput {
                        ty: &self.values[id].ty,
                        value: self.values[id].constant.as_ref(),
                    })
                })
                .collect();
            let out_types = match node.op.infer(&inputs, node.outputs.len()) {
                Ok(t) => t,
                Err(e) if strict => return Err(e.context(node.describe())),
                Err(_) => continue,
            };
            let outputs = node.outputs.clone();
            for (out, ty) in outputs.into_iter().zip(out_types) {
                if let Some(id) = out {
                    if more_specific(&self.values[id].ty, &ty) {
                        self.values[id].ty = ty;
                    }
                }
            }
        }
        Ok(())
    }
}
