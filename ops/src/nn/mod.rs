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

/// The `nn` family's ops, declared once: `nn_ops!(cb!(args))` calls
/// `cb!(args nn: Op Op …)`. From this list come [`Op`] (here), the ONNX import and export
/// tables (`xnpu-graph`) and the reference dispatch (`xnpu-backend-cpu`).
#[macro_export]
macro_rules! nn_ops {
    ($cb:ident!($($args:tt)*)) => {
        $cb!($($args)* nn:
            MatMul MatMulInteger QLinearMatMul Gemm Conv ConvInteger QLinearConv DeformConv
            ConvTranspose Pool GlobalPool MaxUnpool MaxRoiPool QuantizeLinear DequantizeLinear
            DynamicQuantizeLinear Einsum Col2Im Det CausalConvWithState FusedConv FusedGemm
            MatMulBias MatMulNBits
        );
    };
}

nn_ops!(family!());
