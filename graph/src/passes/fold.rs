//! Constant folding: a node whose inputs are all constants is computed once, now, and its
//! outputs become constants. Graph inputs are never constants here even when they have an
//! initializer default (the caller may override them). Random ops are never folded, nor
//! is a DequantizeLinear of an integer constant: those are a QDQ model's quantised weights,
//! which integer backends (QNN's HTP) compute with as they are.

use xnpu_core::{Result, TensorType, Value, ValueType};
use xnpu_ops::InferInput;

use super::{Options, Work};
use crate::ir::{Graph, Op};

/// Whether a value's type says it takes more than `limit` bytes: a node whose outputs are
/// that large is not evaluated at all (its result would not be kept, and computing it could
/// take any amount of memory: `ConstantOfShape` of a constant `[2^40]`).
fn known_larger_than(ty: &ValueType, limit: usize) -> bool {
    let Some(t) = ty.tensor() else { return false };
    let Some(dims) = t.shape.as_ref().and_then(|s| s.as_known()) else {
        return false;
    };
    xnpu_core::shape::checked_nbytes(t.dtype, &dims).map_or(true, |n| n > limit)
}

pub fn run(graph: &mut Graph, options: &Options<'_>, work: &mut Work) -> Result<usize> {
    let mut folded = 0;
    let mut keep = vec![true; graph.nodes.len()];
    let is_input = graph.input_set();
    work.scan(graph);
    for (i, node) in graph.nodes.iter().enumerate() {
        work.visit();
        if node.op.may_draw() || !node.op.subgraphs().is_empty() {
            continue;
        }
        if matches!(node.op, Op::Nn(xnpu_ops::nn::Op::DequantizeLinear(_)))
            && node
                .inputs
                .first()
                .copied()
                .flatten()
                .and_then(|x| graph.values[x].constant.as_ref())
                .is_some_and(|c| !c.dtype().is_float())
        {
            continue;
        }
        let is_const = |v: usize| graph.values[v].constant.is_some() && !is_input[v];
        if !node.inputs.iter().flatten().all(|&v| is_const(v)) {
            continue;
        }
        if node
            .outputs
            .iter()
            .flatten()
            .any(|&v| known_larger_than(&graph.values[v].ty, options.max_folded_bytes))
        {
            continue;
        }
        // Cheap folds that need no kernel (Constant, Shape/Size of known shapes).
        let outs: Option<Vec<Value>> = match &node.op {
            Op::Tensor(t) => {
                let ins: Vec<Option<InferInput<'_>>> = node
                    .inputs
                    .iter()
                    .map(|v| {
                        v.map(|id| InferInput {
                            ty: &graph.values[id].ty,
                            value: graph.values[id].constant.as_ref(),
                        })
                    })
                    .collect();
                t.fold(&ins)
                    .map(|ts| ts.into_iter().map(Value::Tensor).collect())
            }
            _ => None,
        };
        let outs = match (outs, options.evaluate) {
            (Some(o), _) => o,
            (None, Some(eval)) => {
                let args: Vec<Option<Value>> = node
                    .inputs
                    .iter()
                    .map(|v| v.and_then(|id| graph.values[id].constant.clone().map(Value::Tensor)))
                    .collect();
                let refs: Vec<Option<&Value>> = args.iter().map(Option::as_ref).collect();
                match eval(node, &refs) {
                    Ok(o) => o,
                    // A node that fails on its constant inputs fails the same way at run
                    // time, where the error is reported with the inputs the caller gave.
                    Err(_) => continue,
                }
            }
            (None, None) => continue,
        };
        // Every used output must be a tensor small enough to keep.
        let mut tensors = Vec::new();
        let mut ok = true;
        for (slot, v) in node
            .outputs
            .iter()
            .zip(outs.into_iter().map(Some).chain(std::iter::repeat(None)))
        {
            let Some(id) = slot else { continue };
            match v {
                Some(Value::Tensor(t)) if t.raw_bytes().len() <= options.max_folded_bytes => {
                    tensors.push((*id, t))
                }
                _ => {
                    ok = false;
                    break;
                }
            }
        }
        if !ok {
            continue;
        }
        for (id, t) in tensors {
            graph.values[id].ty = ValueType::Tensor(TensorType::new(
                t.dtype(),
                xnpu_core::Shape::known(t.shape()),
            ));
            graph.values[id].constant = Some(t);
        }
        keep[i] = false;
        folded += 1;
    }
    if folded > 0 {
        work.scan(graph);
        let mut k = 0;
        graph.nodes.retain(|_| {
            k += 1;
            keep[k - 1]
        });
    }
    Ok(folded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::Node;
    use crate::passes::tests::f32_type;
    use xnpu_core::Tensor;

    #[test]
    fn folds_shape_of_a_known_shape_without_an_evaluator() {
        let mut g = Graph::default();
        let x = g.add_value("x", f32_type(&[2, 3]));
        let s = g.add_value("s", ValueType::Unknown);
        g.inputs.push(x);
        g.outputs.push(s);
        g.nodes.push(Node {
            name: "shape".into(),
            op: Op::Tensor(xnpu_ops::tensor::Op::ShapeOf(Default::default())),
            inputs: vec![Some(x)],
            outputs: vec![Some(s)],
        });
        // Shape reads x, an input: not all-constant inputs, so plain folding leaves it
        // (shape simplification is the pass that resolves it).
        assert_eq!(
            run(&mut g, &Options::default(), &mut Work::default()).unwrap(),
            0
        );
    }

    #[test]
    fn folds_with_an_evaluator_and_keeps_graph_inputs_variable() {
        let mut g = Graph::default();
        let a = g.add_value("a", f32_type(&[2]));
        g.values[a].constant = Some(Tensor::from_vec(vec![2], vec![1.0f32, -2.0]).unwrap());
        let d = g.add_value("d", f32_type(&[2]));
        g.values[d].constant = Some(Tensor::from_vec(vec![2], vec![5.0f32, 5.0]).unwrap());
        g.inputs.push(d); // an input with a default: not a constant
        let b = g.add_value("b", ValueType::Unknown);
        let c = g.add_value("c", ValueType::Unknown);
        g.outputs.extend([b, c]);
        let relu = |name: &str, i, o| Node {
            name: name.into(),
            op: Op::Elementwise(xnpu_ops::elementwise::Op::Activation(
                xnpu_ops::elementwise::Activation {
                    kind: xnpu_ops::elementwise::ActivationKind::Relu,
                },
            )),
            inputs: vec![Some(i)],
            outputs: vec![Some(o)],
        };
        g.nodes.push(relu("r1", a, b));
        g.nodes.push(relu("r2", d, c));
        let eval = |_: &Node, ins: &[Option<&Value>]| -> Result<Vec<Value>> {
            let t = ins[0].unwrap().as_tensor()?.to_vec::<f32>()?;
            Ok(vec![Value::Tensor(Tensor::from_vec(
                vec![t.len()],
                t.into_iter().map(|x| x.max(0.0)).collect(),
            )?)])
        };
        let opts = Options {
            evaluate: Some(&eval),
            ..Options::default()
        };
        assert_eq!(run(&mut g, &opts, &mut Work::default()).unwrap(), 1);
        assert_eq!(g.nodes.len(), 1);
        assert_eq!(g.nodes[0].name, "r2");
        let folded = g.values[b].constant.as_ref().unwrap();
        assert_eq!(folded.to_vec::<f32>().unwrap(), vec![1.0, 0.0]);
    }

    #[test]
    fn a_node_whose_output_is_declared_too_large_to_keep_is_not_evaluated() {
        // Relu of a constant, its output declared f32[2^40]: evaluating it could allocate
        // 4 TiB, and the result would not be kept anyway.
        let mut g = Graph::default();
        let a = g.add_value("a", f32_type(&[2]));
        g.values[a].constant = Some(Tensor::from_vec(vec![2], vec![1.0f32, -2.0]).unwrap());
        let b = g.add_value("b", f32_type(&[1 << 40]));
        g.outputs.push(b);
        g.nodes.push(Node {
            name: "r".into(),
            op: Op::Elementwise(xnpu_ops::elementwise::Op::Activation(
                xnpu_ops::elementwise::Activation {
                    kind: xnpu_ops::elementwise::ActivationKind::Relu,
                },
            )),
            inputs: vec![Some(a)],
            outputs: vec![Some(b)],
        });
        let eval = |_: &Node, _: &[Option<&Value>]| -> Result<Vec<Value>> {
            panic!("evaluated a node whose output is declared 4 TiB")
        };
        let opts = Options {
            evaluate: Some(&eval),
            ..Options::default()
        };
        assert_eq!(run(&mut g, &opts, &mut Work::default()).unwrap(), 0);
        assert_eq!(g.nodes.len(), 1);
    }

    #[test]
    fn a_random_op_of_constants_is_not_folded() {
        let mut g = Graph::default();
        let p = g.add_value("p", f32_type(&[2]));
        g.values[p].constant = Some(Tensor::from_vec(vec![2], vec![0.5f32, 0.5]).unwrap());
        let y = g.add_value("y", ValueType::Unknown);
        g.outputs.push(y);
        g.nodes.push(Node {
            name: "b".into(),
            op: Op::Elementwise(xnpu_ops::elementwise::Op::Bernoulli(Default::default())),
            inputs: vec![Some(p)],
            outputs: vec![Some(y)],
        });
        // An evaluator that would fold anything it is given.
        let eval = |_: &Node, ins: &[Option<&Value>]| -> Result<Vec<Value>> {
            Ok(vec![ins[0].unwrap().clone()])
        };
        let opts = Options {
            evaluate: Some(&eval),
            ..Options::default()
        };
        assert_eq!(run(&mut g, &opts, &mut Work::default()).unwrap(), 0);
        assert_eq!(g.nodes.len(), 1);
    }
}
