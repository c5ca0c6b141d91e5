//! Reference kernels of the `tensor` family. Kernels that only move data copy element bytes
//! (see `elems`), so they serve every dtype, bool and string included.

mod elems;
mod gather;
mod layout;
mod numeric;
mod reshape;
mod scatter;
mod unique;

use xnpu_core::{Result, Tensor, Value};
use xnpu_ops::tensor::Op;

use crate::args::input;

/// Runs one op of the family on its inputs (`None` is an absent optional input) and returns
/// at least `n_outputs` values, in op order.
pub fn run(op: &Op, inputs: &[Option<&Value>], n_outputs: usize) -> Result<Vec<Value>> {
    let one = |t: Result<Tensor>| t.map(|t| vec![Value::Tensor(t)]);
    match op {
        Op::Identity(_) => Ok(vec![input(inputs, 0)?.clone()]),
        Op::Constant(c) => Ok(vec![Value::Tensor(c.value.clone())]),
        Op::ConstantOfShape(o) => one(reshape::constant_of_shape(o, inputs)),
        Op::ShapeOf(o) => one(reshape::shape(o, inputs)),
        Op::Size(_) => one(reshape::size(inputs)),
        Op::Reshape(o) => one(reshape::reshape(o, inputs)),
        Op::Flatten(o) => one(reshape::flatten(o, inputs)),
        Op::Squeeze(o) => one(reshape::squeeze(o, inputs)),
        Op::Unsqueeze(o) => one(reshape::unsqueeze(o, inputs)),
        Op::Dropout(o) => reshape::dropout(o, inputs, n_outputs),
        Op::Concat(o) => one(layout::concat(o, inputs)),
        Op::Split(o) => layout::split(o, inputs, n_outputs),
        Op::Transpose(o) => one(layout::transpose(o, inputs)),
        Op::Slice(o) => one(layout::slice(o, inputs)),
        Op::Expand(_) => one(layout::expand(inputs)),
        Op::Tile(_) => one(layout::tile(inputs)),
        Op::Pad(o) => one(layout::pad(o, inputs)),
        Op::CenterCropPad(o) => one(layout::center_crop_pad(o, inputs)),
        Op::DepthSpace(o) => one(layout::depth_space(o, inputs)),
        Op::ReverseSequence(o) => one(layout::reverse_sequence(o, inputs)),
        Op::Upsample(o) => one(layout::upsample(o, inputs)),
        Op::Trilu(o) => one(layout::trilu(o, inputs)),
        Op::EyeLike(o) => one(layout::eye_like(o, inputs)),
        Op::Gather(o) => one(gather::gather(o, inputs)),
        Op::GatherElements(o) => one(gather::gather_elements(o, inputs)),
        Op::GatherNd(o) => one(gather::gather_nd(o, inputs)),
        Op::Compress(o) => one(gather::compress(o, inputs)),
        Op::NonZero(_) => one(gather::non_zero(inputs)),
        Op::OneHot(o) => one(gather::one_hot(o, inputs)),
        Op::ScatterElements(o) => one(scatter::scatter_elements(o, inputs)),
        Op::ScatterNd(o) => one(scatter::scatter_nd(o, inputs)),
        Op::TensorScatter(o) => one(scatter::tensor_scatter(o, inputs)),
        Op::Range(_) => one(numeric::range(inputs)),
        Op::Cumulative(o) => one(numeric::cumulative(o, inputs)),
        Op::TopK(o) => numeric::top_k(o, inputs),
        Op::Unique(o) => unique::unique(o, inputs, n_outputs),
    }
}
