//! The `nn` family: matrix products, convolutions, pools, quantization and einsum.

mod causal_conv;
mod col2im;
mod conv;
mod conv_transpose;
mod det;
mod einsum;
mod fused;
mod gemm;
mod matmul;
mod nbits;
mod pool;
mod quantize;
mod window;

pub use causal_conv::CausalConvWithState;
pub use col2im::Col2Im;
pub use conv::{Conv, ConvInteger, DeformConv, QLinearConv};
pub use conv_transpose::{ConvTranspose, TransposeGeometry};
pub use det::Det;
pub use einsum::{Einsum, EinsumPlan, Label};
pub use fused::{FusedActivation, FusedConv, FusedGemm, MatMulBias};
pub use gemm::Gemm;
pub use matmul::{matmul_shape, MatMul, MatMulInteger, QLinearMatMul};
pub use nbits::MatMulNBits;
pub use pool::{GlobalKind, GlobalPool, MaxRoiPool, MaxUnpool, Pool, PoolKind};
pub use quantize::{DequantizeLinear, DynamicQuantizeLinear, QuantizeLinear};
pub use window::{AutoPad, Geometry, Window};

use xnpu_core::{Result, ValueType};

use crate::InferInput;

/// The ops of this family.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    MatMul(MatMul),
    MatMulInteger(MatMulInteger),
    QLinearMatMul(QLinearMatMul),
    Gemm(Gemm),
    Conv(Conv),
    ConvInteger(ConvInteger),
    QLinearConv(QLinearConv),
    DeformConv(DeformConv),
    ConvTranspose(ConvTranspose),
    Pool(Pool),
    GlobalPool(GlobalPool),
    MaxUnpool(MaxUnpool),
    MaxRoiPool(MaxRoiPool),
    QuantizeLinear(QuantizeLinear),
    DequantizeLinear(DequantizeLinear),
    DynamicQuantizeLinear(DynamicQuantizeLinear),
    Einsum(Einsum),
    Col2Im(Col2Im),
    Det(Det),
    CausalConvWithState(CausalConvWithState),
    FusedConv(FusedConv),
    FusedGemm(FusedGemm),
    MatMulBias(MatMulBias),
    MatMulNBits(MatMulNBits),
}

impl Op {
    /// The op's name as users know it (the ONNX op type where there is one).
    pub fn name(&self) -> &'static str {
        match self {
            Op::MatMul(_) => "MatMul",
            Op::MatMulInteger(_) => "MatMulInteger",
            Op::QLinearMatMul(_) => "QLinearMatMul",
            Op::Gemm(_) => "Gemm",
            Op::Conv(_) => "Conv",
            Op::ConvInteger(_) => "ConvInteger",
            Op::QLinearConv(_) => "QLinearConv",
            Op::DeformConv(_) => "DeformConv",
            Op::ConvTranspose(_) => "ConvTranspose",
            Op::Pool(o) => o.name(),
            Op::GlobalPool(o) => o.name(),
            Op::MaxUnpool(_) => "MaxUnpool",
            Op::MaxRoiPool(_) => "MaxRoiPool",
            Op::QuantizeLinear(_) => "QuantizeLinear",
            Op::DequantizeLinear(_) => "DequantizeLinear",
            Op::DynamicQuantizeLinear(_) => "DynamicQuantizeLinear",
            Op::Einsum(_) => "Einsum",
            Op::Col2Im(_) => "Col2Im",
            Op::Det(_) => "Det",
            Op::CausalConvWithState(_) => "CausalConvWithState",
            Op::FusedConv(_) => "FusedConv",
            Op::FusedGemm(_) => "FusedGemm",
            Op::MatMulBias(_) => "MatMulBias",
            Op::MatMulNBits(_) => "MatMulNBits",
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
            Op::MatMul(o) => o.infer(inputs, n_outputs),
            Op::MatMulInteger(o) => o.infer(inputs, n_outputs),
            Op::QLinearMatMul(o) => o.infer(inputs, n_outputs),
            Op::Gemm(o) => o.infer(inputs, n_outputs),
            Op::Conv(o) => o.infer(inputs, n_outputs),
            Op::ConvInteger(o) => o.infer(inputs, n_outputs),
            Op::QLinearConv(o) => o.infer(inputs, n_outputs),
            Op::DeformConv(o) => o.infer(inputs, n_outputs),
            Op::ConvTranspose(o) => o.infer(inputs, n_outputs),
            Op::Pool(o) => o.infer(inputs, n_outputs),
            Op::GlobalPool(o) => o.infer(inputs, n_outputs),
            Op::MaxUnpool(o) => o.infer(inputs, n_outputs),
            Op::MaxRoiPool(o) => o.infer(inputs, n_outputs),
            Op::QuantizeLinear(o) => o.infer(inputs, n_outputs),
            Op::DequantizeLinear(o) => o.infer(inputs, n_outputs),
            Op::DynamicQuantizeLinear(o) => o.infer(inputs, n_outputs),
            Op::Einsum(o) => o.infer(inputs, n_outputs),
            Op::Col2Im(o) => o.infer(inputs, n_outputs),
            Op::Det(o) => o.infer(inputs, n_outputs),
            Op::CausalConvWithState(o) => o.infer(inputs, n_outputs),
            Op::FusedConv(o) => o.infer(inputs, n_outputs),
            Op::FusedGemm(o) => o.infer(inputs, n_outputs),
            Op::MatMulBias(o) => o.infer(inputs, n_outputs),
            Op::MatMulNBits(o) => o.infer(inputs, n_outputs),
        }
    }
}
