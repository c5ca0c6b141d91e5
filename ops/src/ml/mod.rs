//! The `ml` op family: the classic-ML ops of the `ai.onnx.ml` domain and the optimizer
//! update rules of `ai.onnx.preview.training`.

mod array_feature_extractor;
mod binarizer;
mod label_encoder;
mod optimizers;
mod tree_ensemble;

pub use array_feature_extractor::ArrayFeatureExtractor;
pub use binarizer::Binarizer;
pub use label_encoder::LabelEncoder;
pub use optimizers::{Adagrad, Adam, Momentum};
pub use tree_ensemble::{
    Aggregate, Branch, NodeMode, PostTransform, TreeEnsemble, TreeLeaf, TreeNode,
};

use xnpu_core::{Result, ValueType};

use crate::InferInput;

/// The ops of this family.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    LabelEncoder(LabelEncoder),
    TreeEnsemble(TreeEnsemble),
    ArrayFeatureExtractor(ArrayFeatureExtractor),
    Binarizer(Binarizer),
    Adagrad(Adagrad),
    Adam(Adam),
    Momentum(Momentum),
}

impl Op {
    /// The op's name as users know it (the ONNX op type where there is one).
    pub fn name(&self) -> &'static str {
        match self {
            Op::LabelEncoder(_) => "LabelEncoder",
            Op::TreeEnsemble(_) => "TreeEnsemble",
            Op::ArrayFeatureExtractor(_) => "ArrayFeatureExtractor",
            Op::Binarizer(_) => "Binarizer",
            Op::Adagrad(_) => "Adagrad",
            Op::Adam(_) => "Adam",
            Op::Momentum(_) => "Momentum",
        }
    }

    /// Output types from input types (and constant inputs). Dims that cannot be known before
    /// run time are left as symbols or the whole type as `ValueType::Unknown`.
    pub fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        match self {
            Op::LabelEncoder(op) => op.infer(inputs, n_outputs),
            Op::TreeEnsemble(op) => op.infer(inputs, n_outputs),
            Op::ArrayFeatureExtractor(op) => op.infer(inputs, n_outputs),
            Op::Binarizer(op) => op.infer(inputs, n_outputs),
            Op::Adagrad(op) => op.infer(inputs, n_outputs),
            Op::Adam(op) => op.infer(inputs, n_outputs),
            Op::Momentum(op) => op.infer(inputs, n_outputs),
        }
    }
}
