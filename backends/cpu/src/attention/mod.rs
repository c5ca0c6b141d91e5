//! Reference kernels of the `attention` family.

pub(crate) mod gqa;
mod rotary;
mod sdpa;

use xnpu_core::{bf16, f16, DType, Error, Result, Tensor};
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

/// Float tensor values as f64 (an error for other dtypes).
fn floats(t: &Tensor, what: &str) -> Result<Vec<f64>> {
    match t.dtype() {
        DType::F32 | DType::F64 | DType::F16 | DType::Bf16 => t.to_f64_vec(),
        d => Err(Error::compute(format!(
            "{what} must be a float tensor, got {d}"
        ))),
    }
}

/// f64 values rounded to the float dtype `dtype`.
fn store(dtype: DType, shape: Vec<usize>, v: &[f64]) -> Result<Tensor> {
    match dtype {
        DType::F32 => Tensor::from_vec(shape, v.iter().map(|&x| x as f32).collect()),
        DType::F64 => Tensor::from_vec(shape, v.to_vec()),
        DType::F16 => Tensor::from_vec(shape, v.iter().map(|&x| f16::from_f64(x)).collect()),
        DType::Bf16 => Tensor::from_vec(shape, v.iter().map(|&x| bf16::from_f64(x)).collect()),
        d => Err(Error::compute(format!("expected a float dtype, got {d}"))),
    }
}
