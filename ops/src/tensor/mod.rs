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

use xnpu_core::{Result, Tensor, ValueType};

use crate::InferInput;

/// The ops of this family.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    Identity(Identity),
    Constant(Constant),
    ConstantOfShape(ConstantOfShape),
    Shape(ShapeOf),
    Size(Size),
    Reshape(Reshape),
    Flatten(Flatten),
    Squeeze(Squeeze),
    Unsqueeze(Unsqueeze),
    Concat(Concat),
    Split(Split),
    Transpose(Transpose),
    Slice(Slice),
    Gather(Gather),
    GatherElements(GatherElements),
    GatherNd(GatherNd),
    ScatterElements(ScatterElements),
    ScatterNd(ScatterNd),
    TensorScatter(TensorScatter),
    Expand(Expand),
    Tile(Tile),
    Pad(Pad),
    CenterCropPad(CenterCropPad),
    Range(Range),
    Trilu(Trilu),
    EyeLike(EyeLike),
    Dropout(Dropout),
    TopK(TopK),
    Unique(Unique),
    Cumulative(Cumulative),
    OneHot(OneHot),
    Compress(Compress),
    NonZero(NonZero),
    DepthSpace(DepthSpace),
    ReverseSequence(ReverseSequence),
    Upsample(Upsample),
}

impl Op {
    /// The op's name as users know it (the ONNX op type where there is one).
    pub fn name(&self) -> &'static str {
        match self {
            Op::Identity(_) => "Identity",
            Op::Constant(_) => "Constant",
            Op::ConstantOfShape(_) => "ConstantOfShape",
            Op::Shape(_) => "Shape",
            Op::Size(_) => "Size",
            Op::Reshape(_) => "Reshape",
            Op::Flatten(_) => "Flatten",
            Op::Squeeze(_) => "Squeeze",
            Op::Unsqueeze(_) => "Unsqueeze",
            Op::Concat(_) => "Concat",
            Op::Split(_) => "Split",
            Op::Transpose(_) => "Transpose",
            Op::Slice(_) => "Slice",
            Op::Gather(_) => "Gather",
            Op::GatherElements(_) => "GatherElements",
            Op::GatherNd(_) => "GatherND",
            Op::ScatterElements(_) => "ScatterElements",
            Op::ScatterNd(_) => "ScatterND",
            Op::TensorScatter(_) => "TensorScatter",
            Op::Expand(_) => "Expand",
            Op::Tile(_) => "Tile",
            Op::Pad(_) => "Pad",
            Op::CenterCropPad(_) => "CenterCropPad",
            Op::Range(_) => "Range",
            Op::Trilu(_) => "Trilu",
            Op::EyeLike(_) => "EyeLike",
            Op::Dropout(_) => "Dropout",
            Op::TopK(_) => "TopK",
            Op::Unique(_) => "Unique",
            Op::Cumulative(c) => match c.kind {
                CumKind::Sum => "CumSum",
                CumKind::Prod => "CumProd",
            },
            Op::OneHot(_) => "OneHot",
            Op::Compress(_) => "Compress",
            Op::NonZero(_) => "NonZero",
            Op::DepthSpace(d) => {
                if d.to_depth {
                    "SpaceToDepth"
                } else {
                    "DepthToSpace"
                }
            }
            Op::ReverseSequence(_) => "ReverseSequence",
            Op::Upsample(_) => "Upsample",
        }
    }

    /// The output values when they are known before run time without computing on data:
    /// a Constant's value, and the Shape or Size of an input whose dims are all known.
    /// For a graph's type inference to mark such outputs constant, so that shape chains
    /// (Shape → Gather → Concat → Reshape) can be inferred further.
    pub fn fold(&self, inputs: &[Option<InferInput<'_>>]) -> Option<Vec<Tensor>> {
        let known = || {
            crate::infer::input(inputs, 0)
                .and_then(|x| x.shape())
                .and_then(|s| s.as_known())
        };
        match self {
            Op::Constant(c) => Some(vec![c.value.clone()]),
            Op::Shape(op) => {
                let dims = known()?;
                let v: Vec<i64> = dims[op.range(dims.len())]
                    .iter()
                    .map(|&d| d as i64)
                    .collect();
                Tensor::from_vec(vec![v.len()], v).ok().map(|t| vec![t])
            }
            Op::Size(_) => {
                let n = xnpu_core::shape::checked_numel(&known()?).ok()?;
                Some(vec![Tensor::scalar(i64::try_from(n).ok()?)])
            }
            _ => None,
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
            Op::Identity(op) => op.infer(inputs, n_outputs),
            Op::Constant(op) => op.infer(inputs, n_outputs),
            Op::ConstantOfShape(op) => op.infer(inputs, n_outputs),
            Op::Shape(op) => op.infer(inputs, n_outputs),
            Op::Size(op) => op.infer(inputs, n_outputs),
            Op::Reshape(op) => op.infer(inputs, n_outputs),
            Op::Flatten(op) => op.infer(inputs, n_outputs),
            Op::Squeeze(op) => op.infer(inputs, n_outputs),
            Op::Unsqueeze(op) => op.infer(inputs, n_outputs),
            Op::Concat(op) => op.infer(inputs, n_outputs),
            Op::Split(op) => op.infer(inputs, n_outputs),
            Op::Transpose(op) => op.infer(inputs, n_outputs),
            Op::Slice(op) => op.infer(inputs, n_outputs),
            Op::Gather(op) => op.infer(inputs, n_outputs),
            Op::GatherElements(op) => op.infer(inputs, n_outputs),
            Op::GatherNd(op) => op.infer(inputs, n_outputs),
            Op::ScatterElements(op) => op.infer(inputs, n_outputs),
            Op::ScatterNd(op) => op.infer(inputs, n_outputs),
            Op::TensorScatter(op) => op.infer(inputs, n_outputs),
            Op::Expand(op) => op.infer(inputs, n_outputs),
            Op::Tile(op) => op.infer(inputs, n_outputs),
            Op::Pad(op) => op.infer(inputs, n_outputs),
            Op::CenterCropPad(op) => op.infer(inputs, n_outputs),
            Op::Range(op) => op.infer(inputs, n_outputs),
            Op::Trilu(op) => op.infer(inputs, n_outputs),
            Op::EyeLike(op) => op.infer(inputs, n_outputs),
            Op::Dropout(op) => op.infer(inputs, n_outputs),
            Op::TopK(op) => op.infer(inputs, n_outputs),
            Op::Unique(op) => op.infer(inputs, n_outputs),
            Op::Cumulative(op) => op.infer(inputs, n_outputs),
            Op::OneHot(op) => op.infer(inputs, n_outputs),
            Op::Compress(op) => op.infer(inputs, n_outputs),
            Op::NonZero(op) => op.infer(inputs, n_outputs),
            Op::DepthSpace(op) => op.infer(inputs, n_outputs),
            Op::ReverseSequence(op) => op.infer(inputs, n_outputs),
            Op::Upsample(op) => op.infer(inputs, n_outputs),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xnpu_core::{DType, Dim, Shape, TensorType};

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
        let op = Op::Shape(ShapeOf {
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
}
