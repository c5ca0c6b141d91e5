//! Reference kernels of the `nn` family: matrix products, convolutions, pools,
//! quantization and einsum.

mod causal_conv;
mod col2im;
pub(crate) mod conv;
mod deform_conv;
mod det;
mod einsum;
pub mod fused;
pub(crate) mod matmul;
pub mod nbits;
pub mod nbits_fast;
mod num;
mod pool;
mod quantize;

use xnpu_core::Value;
use xnpu_ops::nn::*;

kernel!(MatMul, |_, inputs, _| matmul::matmul(inputs));
kernel!(MatMulInteger, |_, inputs, _| matmul::matmul_integer(inputs));
kernel!(QLinearMatMul, |_, inputs, _| matmul::qlinear_matmul(inputs));
kernel!(Gemm, |o, inputs, _| matmul::gemm(o, inputs));
kernel!(Conv, |o, inputs, _| conv::conv(o, inputs));
kernel!(ConvInteger, |o, inputs, _| conv::conv_integer(o, inputs));
kernel!(QLinearConv, |o, inputs, _| conv::qlinear_conv(o, inputs));
kernel!(DeformConv, |o, inputs, _| deform_conv::run(o, inputs));
kernel!(ConvTranspose, |o, inputs, _| col2im::conv_transpose(
    o, inputs
));
kernel!(Pool, |o, inputs, n_outputs| pool::pool(
    o, inputs, n_outputs
));
kernel!(GlobalPool, |o, inputs, _| pool::global_pool(o, inputs));
kernel!(MaxUnpool, |o, inputs, _| pool::max_unpool(o, inputs));
kernel!(MaxRoiPool, |o, inputs, _| pool::max_roi_pool(o, inputs));
kernel!(QuantizeLinear, |o, inputs, _| quantize::quantize_linear(
    o, inputs
));
kernel!(
    DequantizeLinear,
    |o, inputs, _| quantize::dequantize_linear(o, inputs)
);
kernel!(DynamicQuantizeLinear, |_, inputs, _| {
    quantize::dynamic_quantize_linear(inputs)
});
kernel!(Einsum, |o, inputs, _| einsum::einsum(o, inputs));
kernel!(Col2Im, |o, inputs, _| col2im::col2im(o, inputs));
kernel!(Det, |_, inputs, _| det::run(inputs));
kernel!(CausalConvWithState, |o, inputs, _| causal_conv::run(
    o, inputs
));
kernel!(FusedConv, |o, inputs, _| fused::fused_conv(o, inputs));
kernel!(FusedGemm, |o, inputs, _| fused::fused_gemm(o, inputs));
kernel!(MatMulBias, |o, inputs, _| fused::matmul_bias(o, inputs));
kernel!(MatMulNBits, |o, inputs, _| nbits::run(o, inputs)
    .map(|t| vec![Value::Tensor(t)]));
