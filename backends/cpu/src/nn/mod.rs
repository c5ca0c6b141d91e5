//! Reference kernels of the `nn` family: matrix products, convolutions, pools,
//! quantization and einsum.

mod causal_conv;
mod col2im;
mod conv;
mod deform_conv;
mod det;
mod einsum;
pub mod fused;
mod matmul;
pub mod nbits;
pub mod nbits_fast;
mod num;
mod pool;
mod quantize;

use xnpu_core::{Result, Value};
use xnpu_ops::nn::Op;

/// Runs one op of the family on its inputs (`None` is an absent optional input) and returns
/// at least `n_outputs` values, in op order.
pub fn run(op: &Op, inputs: &[Option<&Value>], n_outputs: usize) -> Result<Vec<Value>> {
    match op {
        Op::MatMul(_) => matmul::matmul(inputs),
        Op::MatMulInteger(_) => matmul::matmul_integer(inputs),
        Op::QLinearMatMul(_) => matmul::qlinear_matmul(inputs),
        Op::Gemm(o) => matmul::gemm(o, inputs),
        Op::Conv(o) => conv::conv(o, inputs),
        Op::ConvInteger(o) => conv::conv_integer(o, inputs),
        Op::QLinearConv(o) => conv::qlinear_conv(o, inputs),
        Op::DeformConv(o) => deform_conv::run(o, inputs),
        Op::ConvTranspose(o) => col2im::conv_transpose(o, inputs),
        Op::Pool(o) => pool::pool(o, inputs, n_outputs),
        Op::GlobalPool(o) => pool::global_pool(o, inputs),
        Op::MaxUnpool(o) => pool::max_unpool(o, inputs),
        Op::MaxRoiPool(o) => pool::max_roi_pool(o, inputs),
        Op::QuantizeLinear(o) => quantize::quantize_linear(o, inputs),
        Op::DequantizeLinear(o) => quantize::dequantize_linear(o, inputs),
        Op::DynamicQuantizeLinear(_) => quantize::dynamic_quantize_linear(inputs),
        Op::Einsum(o) => einsum::einsum(o, inputs),
        Op::Col2Im(o) => col2im::col2im(o, inputs),
        Op::Det(_) => det::run(inputs),
        Op::CausalConvWithState(o) => causal_conv::run(o, inputs),
        Op::FusedConv(o) => fused::fused_conv(o, inputs),
        Op::FusedGemm(o) => fused::fused_gemm(o, inputs),
        Op::MatMulBias(o) => fused::matmul_bias(o, inputs),
        Op::MatMulNBits(o) => nbits::run(o, inputs).map(|t| vec![Value::Tensor(t)]),
    }
}
