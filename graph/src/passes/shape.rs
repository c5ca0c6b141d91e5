//! Shape-subgraph simplification: `Shape(x)` (or a slice of it, or `Size(x)`) becomes a
//! constant once the dims it reads are known, and so does `Gather(Shape(x), const)` when the
//! gathered dims are known even if others are symbolic (the `batch` of a model with a
//! symbolic batch). Constant folding then resolves the rest of the chain
//! (Shape → Gather → Unsqueeze → Concat → Reshape), leaving Reshape with a constant shape.

use xnpu_core::{Dim, Result, Shape, Tensor, TensorType, ValueType};
use xnpu_ops::tensor::Op as T;

use super::{Options, Work};
use crate::ir::{Graph, Op};

fn shape_of(graph: &Graph, v: usize) -> Option<&Shape> {
    graph.values[v].ty.tensor().and_then(|t| t.shape.as_ref())
}

fn known_i64(dims: &[Dim]) -> Option<Vec<i64>> {
    dims.iter().map(|d| d.known().map(|k| k as i64)).collect()
}

pub fn run(graph: &mut Graph, _options: &Options<'_>, work: &mut Work) -> Result<usize> {
    let producers = graph.producers();
    let is_input = graph.input_set();
    work.scan(graph);
    let mut resolved: Vec<(usize, usize, Tensor)> = Vec::new(); // (node, output value, value)
    for (i, node) in graph.nodes.iter().enumerate() {
        work.visit();
        let Some(Some(out)) = node.outputs.first().copied() else {
            continue;
        };
        if graph.values[out].constant.is_some() {
            continue;
        }
        let t = match &node.op {
            Op::Tensor(T::ShapeOf(s)) => node
                .inputs
                .first()
                .copied()
                .flatten()
                .and_then(|x| shape_of(graph, x))
                .and_then(|sh| known_i64(&sh.0[s.range(sh.rank())]))
                .and_then(|v| Tensor::from_vec(vec![v.len()], v).ok()),
            Op::Tensor(T::Size(_)) => node
                .inputs
                .first()
                .copied()
                .flatten()
                .and_then(|x| shape_of(graph, x))
                .and_then(|sh| sh.as_known())
                .and_then(|d| xnpu_core::shape::checked_numel(&d).ok())
                .map(|n| Tensor::scalar(n as i64)),
            Op::Tensor(T::Gather(g)) => (|| {
                let data = node.inputs.first().copied().flatten()?;
                let idx = node.inputs.get(1).copied().flatten()?;
                let (p, _) = producers[data]?;
                let Op::Tensor(T::ShapeOf(s)) = &graph.nodes[p].op else {
                    return None;
                };
                if g.axis != 0 && g.axis != -1 {
                    return None;
                }
                let x = graph.nodes[p].inputs.first().copied().flatten()?;
                let sh = shape_of(graph, x)?;
                let dims = &sh.0[s.range(sh.rank())];
                let it = graph.values[idx].constant.as_ref()?;
                if is_input[idx] {
                    return None;
                }
                let n = dims.len() as i64;
                let picked: Option<Vec<i64>> = it
                    .to_i64_vec()
                    .ok()?
                    .into_iter()
                    .map(|k| {
                        let k = if k < 0 { k + n } else { k };
                        if (0..n).contains(&k) {
                            dims[k as usize].known().map(|d| d as i64)
                        } else {
                            None
                        }
                    })
                    .collect();
                let picked = picked?;
                Tensor::from_vec(it.shape().to_vec(), picked).ok()
            })(),
            _ => None,
        };
        if let Some(t) = t {
            resolved.push((i, out, t));
        }
    }
    let n = resolved.len();
    let mut drop = vec![false; graph.nodes.len()];
    for (i, out, t) in resolved {
        graph.values[out].ty =
            ValueType::Tensor(TensorType::new(t.dtype(), Shape::known(t.shape())));
        graph.values[out].constant = Some(t);
        drop[i] = true;
    }
    if n > 0 {
        work.scan(graph);
        let mut k = 0;
        graph.nodes.retain(|_| {
            k += 1;
            !drop[k - 1]
        });
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::Node;

    #[test]
    fn gather_of_a_known_dim_resolves_with_a_symbolic_batch() {
        let mut g = Graph::default();
        let x = g.add_value(
            "x",
            ValueType::Tensor(TensorType::new(
                xnpu_core::DType::F32,
                Shape(vec![Dim::Sym("batch".into()), Dim::Known(3), Dim::Known(4)]),
            )),
        );
        g.inputs.push(x);
        let s = g.add_value("s", ValueType::Unknown);
        let i1 = g.add_value("i1", ValueType::Unknown);
        g.values[i1].constant = Some(Tensor::scalar(-1i64));
        let i0 = g.add_value("i0", ValueType::Unknown);
        g.values[i0].constant = Some(Tensor::scalar(0i64));
        let d1 = g.add_value("d1", ValueType::Unknown);
        let d0 = g.add_value("d0", ValueType::Unknown);
        g.outputs.extend([d1, d0]);
        g.nodes.push(Node {
            name: "shape".into(),
            op: Op::Tensor(T::ShapeOf(Default::default())),
            inputs: vec![Some(x)],
            outputs: vec![Some(s)],
        });
        for (name, idx, out) in [("g1", i1, d1), ("g0", i0, d0)] {
            g.nodes.push(Node {
                name: name.into(),
                op: Op::Tensor(T::Gather(xnpu_ops::tensor::Gather { axis: 0 })),
                inputs: vec![Some(s), Some(idx)],
                outputs: vec![Some(out)],
            });
        }
        assert_eq!(
            run(&mut g, &Options::default(), &mut Work::default()).unwrap(),
            1
        );
        assert_eq!(
            g.values[d1]
                .constant
                .as_ref()
                .unwrap()
                .to_i64_vec()
                .unwrap(),
            vec![4]
        );
        assert!(g.values[d0].constant.is_none(), "the batch dim is symbolic");
        let names: Vec<_> = g.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["shape", "g0"]);
    }
}
