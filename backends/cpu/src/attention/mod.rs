//! Reference kernels of the `attention` family.

pub(crate) mod gqa;
mod rotary;
mod sdpa;

use xnpu_core::num::store_floats;
use xnpu_core::{DType, Result, Tensor};
use xnpu_ops::attention::*;

kernel!(Attention, |o, inputs, n_outputs| sdpa::run(
    o, inputs, n_outputs
));
kernel!(RotaryEmbedding, |o, inputs, _| rotary::run(o, inputs));
kernel!(GroupQueryAttention, |o, inputs, _| {
    gqa::group_query_attention(o, inputs)
});
kernel!(
    MultiHeadAttention,
    |o, inputs, _| gqa::multi_head_attention(o, inputs)
);

/// f64 values rounded to the float dtype `dtype`.
fn store(dtype: DType, shape: Vec<usize>, v: &[f64]) -> Result<Tensor> {
    store_floats(dtype, shape, v.to_vec())
}
