//! Dead-code elimination: nodes whose outputs nothing reads, and values nothing refers to
//! (unused initializers among them).

use xnpu_core::Result;

use super::{Options, Work};
use crate::ir::Graph;

pub fn run(graph: &mut Graph, _options: &Options<'_>, work: &mut Work) -> Result<usize> {
    let (nodes, values) = graph.remove_dead();
    work.scan(graph);
    // Removing values alone is not a rewrite worth another round.
    let _ = values;
    Ok(nodes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::passes::tests::{chain, relu};

    #[test]
    fn removes_unread_nodes_and_initializers() {
        // x → relu → a (output); x → relu → b (unread); an unused initializer.
        let (mut g, x, _) = chain(1);
        let b = g.add_value("b", g.values[x].ty.clone());
        g.nodes.push(relu("dead", x, b));
        let w = g.add_value("w", g.values[x].ty.clone());
        g.values[w].constant = Some(xnpu_core::Tensor::scalar(1.0f32));
        let n_values = g.values.len();
        assert_eq!(
            run(&mut g, &Options::default(), &mut Work::default()).unwrap(),
            1
        );
        assert_eq!(g.nodes.len(), 1);
        assert_eq!(g.values.len(), n_values - 2);
        assert_eq!(g.values[g.outputs[0]].name, "y");
    }
}
