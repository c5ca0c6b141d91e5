//! Reference kernels of the `tensor` family. Kernels that only move data copy element bytes
//! (see `elems`), so they serve every dtype, bool and string included.

mod elems;
mod gather;
mod layout;
mod numeric;
mod reshape;
mod scatter;
mod unique;

use xnpu_core::Value;
use xnpu_ops::tensor::*;

use crate::args::input;
use crate::one;

kernel!(Identity, |_, inputs, _| Ok(vec![input(inputs, 0)?.clone()]));
kernel!(Constant, |c, _, _| Ok(vec![Value::Tensor(c.value.clone())]));
kernel!(ConstantOfShape, |o, inputs, _| reshape::constant_of_shape(
    o, inputs
)
.map(one));
kernel!(ShapeOf, |o, inputs, _| reshape::shape(o, inputs).map(one));
kernel!(Size, |_, inputs, _| reshape::size(inputs).map(one));
kernel!(Reshape, |o, inputs, _| reshape::reshape(o, inputs).map(one));
kernel!(Flatten, |o, inputs, _| reshape::flatten(o, inputs).map(one));
kernel!(Squeeze, |o, inputs, _| reshape::squeeze(o, inputs).map(one));
kernel!(Unsqueeze, |o, inputs, _| reshape::unsqueeze(o, inputs)
    .map(one));
kernel!(Dropout, |o, inputs, n_outputs| reshape::dropout(
    o, inputs, n_outputs
));
kernel!(Concat, |o, inputs, _| layout::concat(o, inputs).map(one));
kernel!(Split, |o, inputs, n_outputs| layout::split(
    o, inputs, n_outputs
));
kernel!(Transpose, |o, inputs, _| layout::transpose(o, inputs)
    .map(one));
kernel!(Slice, |o, inputs, _| layout::slice(o, inputs).map(one));
kernel!(Expand, |_, inputs, _| layout::expand(inputs).map(one));
kernel!(Tile, |_, inputs, _| layout::tile(inputs).map(one));
kernel!(Pad, |o, inputs, _| layout::pad(o, inputs).map(one));
kernel!(CenterCropPad, |o, inputs, _| layout::center_crop_pad(
    o, inputs
)
.map(one));
kernel!(DepthSpace, |o, inputs, _| layout::depth_space(o, inputs)
    .map(one));
kernel!(ReverseSequence, |o, inputs, _| layout::reverse_sequence(
    o, inputs
)
.map(one));
kernel!(Upsample, |o, inputs, _| layout::upsample(o, inputs)
    .map(one));
kernel!(Trilu, |o, inputs, _| layout::trilu(o, inputs).map(one));
kernel!(EyeLike, |o, inputs, _| layout::eye_like(o, inputs).map(one));
kernel!(Gather, |o, inputs, _| gather::gather(o, inputs).map(one));
kernel!(GatherElements, |o, inputs, _| gather::gather_elements(
    o, inputs
)
.map(one));
kernel!(GatherNd, |o, inputs, _| gather::gather_nd(o, inputs)
    .map(one));
kernel!(Compress, |o, inputs, _| gather::compress(o, inputs)
    .map(one));
kernel!(NonZero, |_, inputs, _| gather::non_zero(inputs).map(one));
kernel!(OneHot, |o, inputs, _| gather::one_hot(o, inputs).map(one));
kernel!(ScatterElements, |o, inputs, _| scatter::scatter_elements(
    o, inputs
)
.map(one));
kernel!(ScatterNd, |o, inputs, _| scatter::scatter_nd(o, inputs)
    .map(one));
kernel!(TensorScatter, |o, inputs, _| scatter::tensor_scatter(
    o, inputs
)
.map(one));
kernel!(Range, |_, inputs, _| numeric::range(inputs).map(one));
kernel!(Cumulative, |o, inputs, _| numeric::cumulative(o, inputs)
    .map(one));
kernel!(TopK, |o, inputs, _| numeric::top_k(o, inputs));
kernel!(Unique, |o, inputs, n_outputs| unique::unique(
    o, inputs, n_outputs
));

/// Hostile sizes (issue 21): an empty tensor's other dims may be anything, and an axis of
/// 2^40 items of nothing is still 2^40 items. Each case is an answer or an error, never a
/// panic, an abort or a loop over 2^40 empty rows.
#[cfg(test)]
mod hostile {
    use super::*;
    use crate::Kernel;
    use xnpu_core::Tensor;

    fn run(op: &impl Kernel, inputs: Vec<Tensor>) -> xnpu_core::Result<Tensor> {
        let vals: Vec<Value> = inputs.into_iter().map(Value::Tensor).collect();
        let refs: Vec<Option<&Value>> = vals.iter().map(Some).collect();
        op.run(&refs, 1)?.remove(0).into_tensor()
    }

    fn empty(dims: Vec<usize>) -> Tensor {
        Tensor::from_vec(dims, Vec::<f32>::new()).unwrap()
    }

    fn ints(v: &[i64]) -> Tensor {
        Tensor::from_vec(vec![v.len()], v.to_vec()).unwrap()
    }

    #[test]
    fn empty_inputs_with_huge_dims_give_empty_outputs() {
        let big = 1usize << 40;
        let x = empty(vec![0, big, big]);
        let y = run(&Gather { axis: 1 }, vec![x.clone(), ints(&[])]).unwrap();
        assert_eq!(y.shape(), &[0, 0, big]);
        let y = run(
            &Concat { axis: 0 },
            vec![empty(vec![big, 0]), empty(vec![big, 0])],
        )
        .unwrap();
        assert_eq!(y.shape(), &[2 * big, 0]);
        let cum = Cumulative {
            kind: CumKind::Sum,
            exclusive: false,
            reverse: false,
        };
        let y = run(&cum, vec![x.clone(), Tensor::scalar(2i64)]).unwrap();
        assert_eq!(y.shape(), x.shape());
        let s = Slice { attrs: None };
        let y = run(
            &s,
            vec![
                x,
                ints(&[0, 1 << 39, 1 << 39]),
                ints(&[1, big as i64, big as i64]),
            ],
        )
        .unwrap();
        assert_eq!(y.shape(), &[0, big / 2, big / 2]);
    }

    #[test]
    fn an_axis_of_2_62_empty_items_is_an_error_not_an_abort() {
        let op = Unique {
            axis: Some(0),
            sorted: true,
        };
        let err = run(&op, vec![empty(vec![1 << 62, 0])]).unwrap_err();
        assert!(err.to_string().contains("Unique's items"), "{err}");
    }

    #[test]
    fn top_k_along_an_axis_of_2_62_with_no_rows_is_empty() {
        // Reserving the sort order for the axis asked for 2^62 indices (a panic).
        let op = TopK {
            axis: 1,
            largest: true,
            sorted: true,
            k: Some(0),
        };
        let y = run(&op, vec![empty(vec![0, 1 << 62])]).unwrap();
        assert_eq!(y.shape(), &[0, 0]);
    }
}
