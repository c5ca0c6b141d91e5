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

/// The `ml` family's ops, declared once: `ml_ops!(cb!(args))` calls
/// `cb!(args ml: Op Op …)`. From this list come [`Op`] (here), the ONNX import and export
/// tables (`xnpu-graph`) and the reference dispatch (`xnpu-backend-cpu`).
#[macro_export]
macro_rules! ml_ops {
    ($cb:ident!($($args:tt)*)) => {
        $cb!($($args)* ml:
            LabelEncoder TreeEnsemble ArrayFeatureExtractor Binarizer Adagrad Adam Momentum
        );
    };
}

ml_ops!(family!());
