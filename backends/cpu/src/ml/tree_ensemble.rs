//! TreeEnsemble: every row walked through every tree, leaves aggregated per target.

use num_traits::{Float, NumCast, ToPrimitive};
use xnpu_core::{Error, Result, Tensor};
use xnpu_linalg::buf;
use xnpu_ops::ml::{Aggregate, Branch, NodeMode, PostTransform, TreeEnsemble, TreeNode};

/// Whether `x` takes the node's true branch.
fn goes_true(node: &TreeNode, x: f64) -> bool {
    if x.is_nan() && node.missing_tracks_true {
        return true;
    }
    let s = node.split;
    match node.mode {
        NodeMode::Leq => x <= s,
        NodeMode::Lt => x < s,
        NodeMode::Gte => x >= s,
        NodeMode::Gt => x > s,
        NodeMode::Eq => x == s,
        NodeMode::Neq => x != s,
        NodeMode::Member => node.members.contains(&x),
    }
}

/// The leaf a row reaches from `root`.
fn leaf_of(op: &TreeEnsemble, root: usize, row: &[f64]) -> Result<usize> {
    let mut at = root;
    // A well-formed tree reaches a leaf in fewer steps than there are nodes.
    for _ in 0..=op.nodes.len() {
        let node = op
            .nodes
            .get(at)
            .ok_or_else(|| Error::compute(format!("node index {at} is out of range")))?;
        // A single-node tree: both branches lead to the same leaf.
        let next = if node.if_true == node.if_false {
            node.if_true
        } else {
            let x = *row.get(node.feature).ok_or_else(|| {
                Error::compute(format!(
                    "node {at} reads feature {}, the input has {} features",
                    node.feature,
                    row.len()
                ))
            })?;
            if goes_true(node, x) {
                node.if_true
            } else {
                node.if_false
            }
        };
        match next {
            Branch::Leaf(l) => return Ok(l),
            Branch::Node(n) => at = n,
        }
    }
    Err(Error::compute(format!(
        "the tree rooted at node {root} has a cycle"
    )))
}

fn softmax(row: &mut [f64], skip_zeros: bool) {
    let keep = |v: f64| !(skip_zeros && v == 0.0);
    let max = row
        .iter()
        .copied()
        .filter(|&v| keep(v))
        .fold(f64::NEG_INFINITY, f64::max);
    let mut sum = 0.0;
    for v in row.iter_mut() {
        if keep(*v) {
            *v = (*v - max).exp();
            sum += *v;
        }
    }
    for v in row.iter_mut() {
        if keep(*v) && sum > 0.0 {
            *v /= sum;
        }
    }
}

/// The scores `[N, n_targets]` of the rows of `x` (`[N, F]`, row-major, as f64). An
/// empty `x` may have any number of rows, and n_targets is an attribute: the scores are
/// allocated fallibly, and when there are none no row is walked.
fn scores(op: &TreeEnsemble, x: &[f64], n: usize, f: usize) -> Result<Vec<f64>> {
    let t = op.n_targets;
    const WHAT: &str = "TreeEnsemble's scores";
    let mut out = buf::zeroed(buf::count(&[n, t], WHAT)?, WHAT)?;
    if out.is_empty() {
        return Ok(out);
    }
    let mut seen = buf::filled(t, false, WHAT)?;
    for r in 0..n {
        let row = &x[r * f..(r + 1) * f];
        let acc = &mut out[r * t..(r + 1) * t];
        seen.iter_mut().for_each(|s| *s = false);
        for &root in &op.roots {
            let l = leaf_of(op, root, row)?;
            let leaf = op
                .leaves
                .get(l)
                .ok_or_else(|| Error::compute(format!("leaf index {l} is out of range")))?;
            let (v, w) = (&mut acc[leaf.target], leaf.weight);
            *v = match (op.aggregate, seen[leaf.target]) {
                (_, false) => w,
                (Aggregate::Sum | Aggregate::Average, true) => *v + w,
                (Aggregate::Min, true) => v.min(w),
                (Aggregate::Max, true) => v.max(w),
            };
            seen[leaf.target] = true;
        }
        if op.aggregate == Aggregate::Average && !op.roots.is_empty() {
            acc.iter_mut().for_each(|v| *v /= op.roots.len() as f64);
        }
        match op.post_transform {
            PostTransform::None => {}
            PostTransform::Softmax => softmax(acc, false),
            PostTransform::SoftmaxZero => softmax(acc, true),
            PostTransform::Logistic => acc.iter_mut().for_each(|v| *v = 1.0 / (1.0 + (-*v).exp())),
        }
    }
    Ok(out)
}

pub(super) fn run(op: &TreeEnsemble, x: &Tensor) -> Result<Tensor> {
    let [n, f] = *x.shape() else {
        return Err(Error::compute(format!(
            "the input must have shape [N, F], got {:?}",
            x.shape()
        )));
    };
    if let Some(bad) = op.leaves.iter().find(|l| l.target >= op.n_targets) {
        return Err(Error::compute(format!(
            "a leaf targets {}, there are {} targets",
            bad.target, op.n_targets
        )));
    }
    xnpu_core::with_float_type!(x.dtype(), T => {
        let xs = buf::collected(
            x.as_slice::<T>()?.iter().map(|v| v.to_f64().unwrap_or(f64::NAN)),
            "TreeEnsemble's input",
        )?;
        let out = buf::collected(
            scores(op, &xs, n, f)?
                .into_iter()
                .map(|v| <T as NumCast>::from(v).unwrap_or(T::nan())),
            "TreeEnsemble's output",
        )?;
        Tensor::from_vec(vec![n, op.n_targets], out)
    }, _ => Err(Error::compute(format!(
        "the input must be float, double or float16, got {}", x.dtype()
    ))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use xnpu_ops::ml::TreeLeaf;

    fn stump(mode: NodeMode, aggregate: Aggregate) -> TreeEnsemble {
        TreeEnsemble {
            nodes: vec![TreeNode {
                mode,
                feature: 0,
                split: 1.0,
                members: vec![2.0, 3.0],
                missing_tracks_true: true,
                if_true: Branch::Leaf(0),
                if_false: Branch::Leaf(1),
            }],
            leaves: vec![
                TreeLeaf {
                    target: 0,
                    weight: 5.0,
                },
                TreeLeaf {
                    target: 1,
                    weight: 7.0,
                },
            ],
            roots: vec![0, 0],
            n_targets: 2,
            aggregate,
            post_transform: PostTransform::None,
        }
    }

    #[test]
    fn rows_follow_comparisons_and_aggregate() {
        let x = Tensor::from_vec(vec![3, 1], vec![0.5f32, 3.0, f32::NAN]).unwrap();
        let y = run(&stump(NodeMode::Leq, Aggregate::Sum), &x).unwrap();
        assert_eq!(y.to_vec::<f32>().unwrap(), vec![10., 0., 0., 14., 10., 0.]);
        let y = run(&stump(NodeMode::Member, Aggregate::Average), &x).unwrap();
        assert_eq!(y.to_vec::<f32>().unwrap(), vec![0., 7., 5., 0., 5., 0.]);
    }

    #[test]
    fn a_missing_feature_is_an_error() {
        let x = Tensor::from_vec(vec![1, 0], Vec::<f32>::new()).unwrap();
        assert!(run(&stump(NodeMode::Lt, Aggregate::Max), &x).is_err());
    }

    /// Hostile sizes (issue 21): n_targets is an attribute and an empty input may have any
    /// number of rows.
    #[test]
    fn huge_targets_are_refused_and_empty_rows_not_walked() {
        let x = Tensor::from_vec(vec![1, 1], vec![0.5f32]).unwrap();
        let op = TreeEnsemble {
            n_targets: 1 << 62,
            ..stump(NodeMode::Leq, Aggregate::Sum)
        };
        let e = run(&op, &x).unwrap_err().to_string();
        assert!(
            e.contains("cannot allocate 4611686018427387904 values for TreeEnsemble's scores"),
            "{e}"
        );
        let op = TreeEnsemble {
            leaves: vec![],
            roots: vec![],
            n_targets: 0,
            ..stump(NodeMode::Leq, Aggregate::Sum)
        };
        let x = Tensor::from_vec(vec![1 << 62, 0], Vec::<f32>::new()).unwrap();
        assert_eq!(run(&op, &x).unwrap().shape(), &[1 << 62, 0]);
    }
}
