//! The `reduce` op family: reductions over axes, arg-reductions, softmax-like ops,
//! normalizations and losses — every op whose output elements each depend on a whole slice
//! of the input.

mod arg_reduce;
mod channel_norm;
mod layer_norm;
mod loss;
mod lp_norm;
mod lrn;
mod mvn;
mod reduce_axes;
pub mod shape;
mod skip_norm;
mod softmax;

pub use arg_reduce::{ArgKind, ArgReduce};
pub use channel_norm::{BatchNormalization, GroupNormalization, InstanceNormalization};
pub use layer_norm::{LayerNormalization, RmsNormalization};
pub use loss::{LossReduction, NegativeLogLikelihoodLoss, SoftmaxCrossEntropyLoss};
pub use lp_norm::LpNormalization;
pub use lrn::Lrn;
pub use mvn::MeanVarianceNormalization;
pub use reduce_axes::{Reduce, ReduceKind};
pub use skip_norm::SkipNormalization;
pub use softmax::{Softmax, SoftmaxKind};

use xnpu_core::{Result, ValueType};

use crate::InferInput;

/// The ops of this family.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    Reduce(Reduce),
    ArgReduce(ArgReduce),
    Softmax(Softmax),
    LayerNormalization(LayerNormalization),
    RmsNormalization(RmsNormalization),
    SkipNormalization(SkipNormalization),
    BatchNormalization(BatchNormalization),
    InstanceNormalization(InstanceNormalization),
    GroupNormalization(GroupNormalization),
    LpNormalization(LpNormalization),
    Lrn(Lrn),
    MeanVarianceNormalization(MeanVarianceNormalization),
    NegativeLogLikelihoodLoss(NegativeLogLikelihoodLoss),
    SoftmaxCrossEntropyLoss(SoftmaxCrossEntropyLoss),
}

impl Op {
    /// The op's name as users know it (the ONNX op type where there is one).
    pub fn name(&self) -> &'static str {
        match self {
            Op::Reduce(o) => o.kind.op_name(),
            Op::ArgReduce(o) => match o.kind {
                ArgKind::Max => "ArgMax",
                ArgKind::Min => "ArgMin",
            },
            Op::Softmax(o) => o.kind.op_name(),
            Op::LayerNormalization(_) => "LayerNormalization",
            Op::RmsNormalization(_) => "RMSNormalization",
            Op::SkipNormalization(o) => o.op_name(),
            Op::BatchNormalization(_) => "BatchNormalization",
            Op::InstanceNormalization(_) => "InstanceNormalization",
            Op::GroupNormalization(_) => "GroupNormalization",
            Op::LpNormalization(_) => "LpNormalization",
            Op::Lrn(_) => "LRN",
            Op::MeanVarianceNormalization(_) => "MeanVarianceNormalization",
            Op::NegativeLogLikelihoodLoss(_) => "NegativeLogLikelihoodLoss",
            Op::SoftmaxCrossEntropyLoss(_) => "SoftmaxCrossEntropyLoss",
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
            Op::Reduce(o) => o.infer(inputs, n_outputs),
            Op::ArgReduce(o) => o.infer(inputs, n_outputs),
            Op::Softmax(o) => o.infer(inputs, n_outputs),
            Op::LayerNormalization(o) => o.infer(inputs, n_outputs),
            Op::RmsNormalization(o) => o.infer(inputs, n_outputs),
            Op::SkipNormalization(o) => o.infer(inputs, n_outputs),
            Op::BatchNormalization(o) => o.infer(inputs, n_outputs),
            Op::InstanceNormalization(o) => o.infer(inputs, n_outputs),
            Op::GroupNormalization(o) => o.infer(inputs, n_outputs),
            Op::LpNormalization(o) => o.infer(inputs, n_outputs),
            Op::Lrn(o) => o.infer(inputs, n_outputs),
            Op::MeanVarianceNormalization(o) => o.infer(inputs, n_outputs),
            Op::NegativeLogLikelihoodLoss(o) => o.infer(inputs, n_outputs),
            Op::SoftmaxCrossEntropyLoss(o) => o.infer(inputs, n_outputs),
        }
    }
}

#[cfg(test)]
mod tests {
    use xnpu_core::{DType, Shape, Tensor, TensorType};

    use super::*;

    fn f32_input(dims: &[usize]) -> ValueType {
        ValueType::Tensor(TensorType::new(DType::F32, Shape::known(dims)))
    }

    #[test]
    fn reduce_infers_shape_from_constant_axes() {
        let x = f32_input(&[2, 3, 4]);
        let axes_ty = ValueType::Tensor(TensorType::new(DType::I64, Shape::known(&[1])));
        let axes = Tensor::from_vec(vec![1], vec![-1i64]).unwrap();
        let op = Op::Reduce(Reduce {
            kind: ReduceKind::Sum,
            axes: None,
            keepdims: false,
            noop_with_empty_axes: false,
        });
        let inputs = [
            Some(InferInput {
                ty: &x,
                value: None,
            }),
            Some(InferInput {
                ty: &axes_ty,
                value: Some(&axes),
            }),
        ];
        let out = op.infer(&inputs, 1).unwrap();
        assert_eq!(out[0], f32_input(&[2, 3]));
    }

    #[test]
    fn reduce_with_out_of_range_axis_is_an_error() {
        let x = f32_input(&[2, 3]);
        let op = Op::Reduce(Reduce {
            kind: ReduceKind::Max,
            axes: Some(vec![2]),
            keepdims: true,
            noop_with_empty_axes: false,
        });
        let inputs = [Some(InferInput {
            ty: &x,
            value: None,
        })];
        assert!(op.infer(&inputs, 1).is_err());
    }

    #[test]
    fn layer_norm_stats_have_stash_type_and_ones_after_axis() {
        let x = f32_input(&[2, 3, 4]);
        let op = Op::LayerNormalization(LayerNormalization {
            axis: 1,
            epsilon: 1e-5,
            stash_type: DType::F32,
        });
        let inputs = [Some(InferInput {
            ty: &x,
            value: None,
        })];
        let out = op.infer(&inputs, 3).unwrap();
        assert_eq!(out[1], f32_input(&[2, 1, 1]));
    }
}
