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

/// The `reduce` family's ops, declared once: `reduce_ops!(cb!(args))` calls
/// `cb!(args reduce: Op Op …)`. From this list come [`Op`] (here), the ONNX import and export
/// tables (`xnpu-graph`) and the reference dispatch (`xnpu-backend-cpu`).
#[macro_export]
macro_rules! reduce_ops {
    ($cb:ident!($($args:tt)*)) => {
        $cb!($($args)* reduce:
            Reduce ArgReduce Softmax LayerNormalization RmsNormalization SkipNormalization
            BatchNormalization InstanceNormalization GroupNormalization LpNormalization Lrn
            MeanVarianceNormalization NegativeLogLikelihoodLoss SoftmaxCrossEntropyLoss
        );
    };
}

reduce_ops!(family!());

#[cfg(test)]
mod tests {
    use xnpu_core::{DType, Shape, Tensor, TensorType, ValueType};

    use super::*;
    use crate::InferInput;

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
