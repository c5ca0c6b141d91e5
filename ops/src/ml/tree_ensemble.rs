use xnpu_core::{Dim, Error, Result, Shape, TensorType, ValueType};

use crate::infer::input;
use crate::{InferInput, OpDef};

/// The comparison an interior node makes between a feature `x` and its split value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeMode {
    Leq,
    Lt,
    Gte,
    Gt,
    Eq,
    Neq,
    /// `x` is one of the node's `members`.
    Member,
}

/// Where a branch of an interior node leads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Branch {
    /// An index into `TreeEnsemble::nodes`.
    Node(usize),
    /// An index into `TreeEnsemble::leaves`.
    Leaf(usize),
}

#[derive(Clone, Debug, PartialEq)]
pub struct TreeNode {
    pub mode: NodeMode,
    pub feature: usize,
    pub split: f64,
    /// The set of a `Member` node (empty otherwise).
    pub members: Vec<f64>,
    /// Whether a NaN feature takes the true branch (otherwise the comparison decides).
    pub missing_tracks_true: bool,
    pub if_true: Branch,
    pub if_false: Branch,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TreeLeaf {
    pub target: usize,
    pub weight: f64,
}

/// How the leaves reached in the trees are combined per target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Aggregate {
    Average,
    Sum,
    Min,
    Max,
}

/// The transform applied to each output row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PostTransform {
    None,
    Softmax,
    Logistic,
    /// Softmax over the non-zero values of the row; zeros stay zero.
    SoftmaxZero,
}

/// TreeEnsemble (ai.onnx.ml opset 5): for each row of `X` (shape `[N, F]`, float, double or
/// float16), walks every tree from its root in `roots`: at an interior node, the branch is
/// chosen by comparing `X[row, feature]` with the node's split (`mode`), until a leaf; each
/// leaf reached adds its weight to its target. Per target, the weights are combined by
/// `aggregate` (`Average` divides the sum by the number of trees; a target no leaf reached is
/// 0), then `post_transform` is applied per row. The output has shape `[N, n_targets]` and
/// `X`'s dtype.
#[derive(Clone, Debug, PartialEq)]
pub struct TreeEnsemble {
    pub nodes: Vec<TreeNode>,
    pub leaves: Vec<TreeLeaf>,
    pub roots: Vec<usize>,
    pub n_targets: usize,
    pub aggregate: Aggregate,
    pub post_transform: PostTransform,
}

impl OpDef for TreeEnsemble {
    const NAMES: &'static [&'static str] = &["TreeEnsemble"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        let x = input(inputs, 0).ok_or_else(|| Error::model("input 0 is required"))?;
        let Some(dtype) = x.dtype() else {
            return Ok(vec![ValueType::Unknown]);
        };
        if !dtype.is_float() {
            return Err(Error::model(format!(
                "the input must be float, double or float16, got {dtype}"
            )));
        }
        let shape = match x.shape() {
            Some(s) if s.rank() == 2 => {
                Some(Shape(vec![s.0[0].clone(), Dim::Known(self.n_targets)]))
            }
            Some(s) => {
                return Err(Error::model(format!(
                    "the input must have shape [N, F], got {s}"
                )))
            }
            None => None,
        };
        Ok(vec![ValueType::Tensor(TensorType { dtype, shape })])
    }
}
