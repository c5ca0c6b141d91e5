//! The `tensor` op family: ops that move, pick or reshape data without arithmetic (plus the
//! few index-driven ops that combine values: scatter reductions, running sums, top-k).

mod compress;
mod concat;
mod constant;
mod cumulative;
mod depth_space;
mod dropout;
mod expand;
mod gather;
mod identity;
mod onehot;
mod pad;
mod range;
mod reshape;
mod reverse_sequence;
mod scatter;
mod shape;
mod slice;
mod split;
mod topk;
mod transpose;
mod trilu;
mod unique;
mod upsample;
mod util;

pub use compress::{Compress, NonZero};
pub use concat::Concat;
pub use constant::{Constant, ConstantOfShape};
pub use cumulative::{CumKind, Cumulative};
pub use depth_space::{DepthMode, DepthSpace};
pub use dropout::Dropout;
pub use expand::{Expand, Tile};
pub use gather::{Gather, GatherElements, GatherNd};
pub use identity::Identity;
pub use onehot::OneHot;
pub use pad::{CenterCropPad, Pad, PadMode};
pub use range::Range;
pub use reshape::{Flatten, Reshape, Squeeze, Unsqueeze};
pub use reverse_sequence::ReverseSequence;
pub use scatter::{Reduction, ScatterElements, ScatterNd, TensorScatter};
pub use shape::{ShapeOf, Size};
pub use slice::{AxisSlice, Slice, SliceAttrs};
pub use split::Split;
pub use topk::TopK;
pub use transpose::Transpose;
pub use trilu::{EyeLike, Trilu};
pub use unique::Unique;
pub use upsample::Upsample;

/// The `tensor` family's ops, declared once: `tensor_ops!(cb!(args))` calls
/// `cb!(args tensor: Op Op …)`. From this list come [`Op`] (here), the ONNX import and export
/// tables (`xnpu-graph`) and the reference dispatch (`xnpu-backend-cpu`).
#[macro_export]
macro_rules! tensor_ops {
    ($cb:ident!($($args:tt)*)) => {
        $cb!($($args)* tensor:
            Identity Constant ConstantOfShape ShapeOf Size Reshape Flatten Squeeze Unsqueeze
            Concat Split Transpose Slice Gather GatherElements GatherNd ScatterElements
            ScatterNd TensorScatter Expand Tile Pad CenterCropPad Range Trilu EyeLike Dropout
            TopK Unique Cumulative OneHot Compress NonZero DepthSpace ReverseSequence Upsample
        );
    };
}

tensor_ops!(family!());

#[cfg(test)]
mod tests {
    use super::*;
    use crate::InferInput;
    use xnpu_core::{DType, Dim, Shape, Tensor, TensorType, ValueType};

    fn ty(dims: Vec<Dim>) -> ValueType {
        ValueType::Tensor(TensorType::new(DType::F32, Shape(dims)))
    }

    fn sym(s: &str) -> Dim {
        Dim::Sym(s.into())
    }

    fn shape_of(v: &ValueType) -> Shape {
        v.tensor().and_then(|t| t.shape.clone()).expect("a shape")
    }

    #[test]
    fn concat_adds_axis_dims_and_checks_the_rest() {
        let a = ty(vec![sym("b"), Dim::Known(2)]);
        let b = ty(vec![sym("b"), Dim::Known(3)]);
        let ins = [
            Some(InferInput {
                ty: &a,
                value: None,
            }),
            Some(InferInput {
                ty: &b,
                value: None,
            }),
        ];
        let out = Op::Concat(Concat { axis: -1 }).infer(&ins, 1).unwrap();
        assert_eq!(shape_of(&out[0]), Shape(vec![sym("b"), Dim::Known(5)]));
        let out = Op::Concat(Concat { axis: 0 }).infer(&ins, 1);
        assert!(out.is_err(), "dims 2 and 3 differ off the axis");
    }

    #[test]
    fn reshape_uses_a_constant_shape_input() {
        let x = ty(vec![sym("n"), Dim::Known(4), Dim::Known(6)]);
        let spec_t = Tensor::from_vec(vec![3], vec![0i64, -1, 3]).unwrap();
        let spec_ty = ValueType::Tensor(TensorType::new(DType::I64, Shape::known(&[3])));
        let ins = [
            Some(InferInput {
                ty: &x,
                value: None,
            }),
            Some(InferInput {
                ty: &spec_ty,
                value: Some(&spec_t),
            }),
        ];
        let out = Op::Reshape(Reshape::default()).infer(&ins, 1).unwrap();
        assert_eq!(
            shape_of(&out[0]),
            Shape(vec![sym("n"), Dim::Known(8), Dim::Known(3)])
        );
    }

    #[test]
    fn gather_and_slice_keep_what_is_known() {
        let x = ty(vec![sym("n"), Dim::Known(10)]);
        let idx = ValueType::Tensor(TensorType::new(DType::I64, Shape::known(&[2, 3])));
        let ins = [
            Some(InferInput {
                ty: &x,
                value: None,
            }),
            Some(InferInput {
                ty: &idx,
                value: None,
            }),
        ];
        let out = Op::Gather(Gather { axis: 1 }).infer(&ins, 1).unwrap();
        assert_eq!(
            shape_of(&out[0]),
            Shape(vec![sym("n"), Dim::Known(2), Dim::Known(3)])
        );
        let attrs = SliceAttrs {
            starts: vec![2],
            ends: vec![-1],
            axes: Some(vec![1]),
        };
        let out = Op::Slice(Slice { attrs: Some(attrs) })
            .infer(&ins[..1], 1)
            .unwrap();
        assert_eq!(shape_of(&out[0]), Shape(vec![sym("n"), Dim::Known(7)]));
    }

    #[test]
    fn shape_of_known_dims_folds_to_a_constant() {
        let x = ty(vec![Dim::Known(2), Dim::Known(3), Dim::Known(4)]);
        let ins = [Some(InferInput {
            ty: &x,
            value: None,
        })];
        let op = Op::ShapeOf(ShapeOf {
            start: 1,
            end: None,
        });
        let v = op.fold(&ins).unwrap();
        assert_eq!(v[0].to_vec::<i64>().unwrap(), vec![3, 4]);
        let y = ty(vec![sym("n"), Dim::Known(3)]);
        let ins = [Some(InferInput {
            ty: &y,
            value: None,
        })];
        assert!(op.fold(&ins).is_none());
    }

    #[test]
    fn unknown_inputs_give_unknown_outputs_not_errors() {
        let ins = [Some(InferInput {
            ty: &ValueType::Unknown,
            value: None,
        })];
        for op in [
            Op::Transpose(Transpose { perm: None }),
            Op::Squeeze(Squeeze { axes: None }),
            Op::Flatten(Flatten { axis: 1 }),
            Op::Expand(Expand),
        ] {
            op.infer(&ins, 1).unwrap();
        }
    }

    #[test]
    fn a_rank_read_from_a_declared_length_is_bounded() {
        // A shape input declared i64[2^62]: the output would have 2^62 dims.
        let x = ty(vec![Dim::Known(2)]);
        let spec = ValueType::Tensor(TensorType::new(DType::I64, Shape::known(&[1 << 62])));
        let ins = [Some(InferInput {
            ty: &spec,
            value: None,
        })];
        let err = Op::ConstantOfShape(ConstantOfShape {
            value: Tensor::scalar(0.0f32),
        })
        .infer(&ins, 1)
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("ConstantOfShape would have rank 4611686018427387904"),
            "{err}"
        );
        let ins2 = [
            Some(InferInput {
                ty: &x,
                value: None,
            }),
            Some(InferInput {
                ty: &spec,
                value: None,
            }),
        ];
        for op in [
            Op::Reshape(Reshape::default()),
            Op::Expand(Expand),
            Op::Unsqueeze(Unsqueeze { axes: None }),
        ] {
            let err = op.infer(&ins2, 1).unwrap_err().to_string();
            assert!(
                err.contains("more than the 1024 dims"),
                "{}: {err}",
                op.name()
            );
        }
    }

    #[test]
    fn tile_counts_that_overflow_are_an_error() {
        let x = ty(vec![Dim::Known(3)]);
        let reps = Tensor::from_vec(vec![1], vec![i64::MAX]).unwrap();
        let reps_ty = ValueType::Tensor(TensorType::new(DType::I64, Shape::known(&[1])));
        let ins = [
            Some(InferInput {
                ty: &x,
                value: None,
            }),
            Some(InferInput {
                ty: &reps_ty,
                value: Some(&reps),
            }),
        ];
        let err = Op::Tile(Tile).infer(&ins, 1).unwrap_err().to_string();
        assert!(
            err.contains(&format!("a dim of 3 repeated {} times overflows", i64::MAX)),
            "{err}"
        );
    }
}
